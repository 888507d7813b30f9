package env

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redraft/redraft/internal/redact"
)

// Defaults of Config's zero fields.
const (
	DefaultMaxSessions   = 4
	DefaultResetTimeout  = 120 * time.Second
	DefaultStepTimeout   = 30 * time.Second
	DefaultCloseTimeout  = 10 * time.Second
	DefaultResetAttempts = 3
)

// maxBody bounds one answer; a larger one is malformed.
const maxBody = 16 << 20

// Config says how a Client reaches an environment server.
type Config struct {
	// URL is the server's base URL (http://127.0.0.1:8771); the protocol's
	// paths are appended to it.
	URL string
	// Env, when set, is the only Task.Env this client accepts (a task for
	// another environment fails Reset without being sent).
	Env string
	// MaxSessions is how many sessions may be open at once (Open waits for
	// a place): the environment's own concurrency limit, separate from any
	// model endpoint's. Set it to at most the server's session capacity.
	// Default 4.
	MaxSessions int
	// ResetTimeout, StepTimeout and CloseTimeout bound one call each,
	// including reading the whole answer (defaults 120 s, 30 s, 10 s;
	// loading a ScienceWorld task takes seconds).
	ResetTimeout time.Duration
	StepTimeout  time.Duration
	CloseTimeout time.Duration
	// ResetAttempts is how many times Reset sends its request when it
	// cannot connect (connection refused or reset before an answer); other
	// failures, and every other call, are never sent again. Default 3.
	ResetAttempts int
	// ActionField is the field of a step's action object that carries a
	// text command (default "text"; OpenEnv environments that expect
	// another name, such as "message", set it).
	ActionField string
	// TextField is the observation field read as the observation's text
	// (default "text").
	TextField string
	// HTTPClient sends the requests; nil for a client of the package's own.
	// Its Timeout should be 0: the call timeouts above bound every call.
	HTTPClient *http.Client
}

// Client is an Environment served over HTTP in the OpenEnv style (POST
// /reset, POST /step, GET /state, and this protocol's POST /close; see
// docs/environments.md). It is safe for concurrent use.
type Client struct {
	cfg   Config
	base  string // cfg.URL without a trailing slash
	shown string // cfg.URL without credentials, for errors
	http  *http.Client
	slots chan struct{}

	opened, closed, retries atomic.Int64
}

// NewClient checks cfg and fills its defaults. It does not contact the
// server.
func NewClient(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("environment URL %q: want http(s)://host[:port][/path]", redact.URL(cfg.URL))
	}
	if cfg.MaxSessions < 0 || cfg.ResetTimeout < 0 || cfg.StepTimeout < 0 || cfg.CloseTimeout < 0 || cfg.ResetAttempts < 0 {
		return nil, fmt.Errorf("environment %s: negative limits in %+v", redact.URL(cfg.URL), cfg)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.ResetTimeout, DefaultResetTimeout)
	def(&cfg.StepTimeout, DefaultStepTimeout)
	def(&cfg.CloseTimeout, DefaultCloseTimeout)
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.ResetAttempts == 0 {
		cfg.ResetAttempts = DefaultResetAttempts
	}
	if cfg.ActionField == "" {
		cfg.ActionField = "text"
	}
	if cfg.TextField == "" {
		cfg.TextField = "text"
	}
	c := &Client{
		cfg:   cfg,
		base:  strings.TrimRight(cfg.URL, "/"),
		shown: redact.URL(cfg.URL),
		http:  cfg.HTTPClient,
		slots: make(chan struct{}, cfg.MaxSessions),
	}
	if c.http == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = cfg.MaxSessions
		c.http = &http.Client{Transport: t}
	}
	return c, nil
}

// Config is the client's configuration with its defaults filled in.
func (c *Client) Config() Config { return c.cfg }

// ClientStats counts a Client's sessions since NewClient.
type ClientStats struct {
	Opened  int64 // sessions Open returned
	Closed  int64 // of those, sessions whose Close has run
	Retries int64 // reset requests sent again after a connection failure
}

// Stats returns the client's counts. Opened - Closed sessions are open.
func (c *Client) Stats() ClientStats {
	return ClientStats{Opened: c.opened.Load(), Closed: c.closed.Load(), Retries: c.retries.Load()}
}

// Open implements Environment: it waits for a place under MaxSessions (or
// for ctx) and returns a session with a fresh episode id. It does not
// contact the server; Reset does.
func (c *Client) Open(ctx context.Context) (Session, error) {
	return c.OpenHTTP(ctx)
}

// OpenHTTP is Open returning the concrete session, which also has State and
// EpisodeID.
func (c *Client) OpenHTTP(ctx context.Context) (*HTTPSession, error) {
	return c.open(ctx, "")
}

// OpenNamed is Open with the episode id the session's requests carry,
// instead of a random one. A run that names its episodes by what they are
// (its output, task, sample) sends the same ids when it is resumed, so a
// server that reuses the session of a known id (scripts/envs' servers do)
// gives back the sessions a killed run left open, instead of holding them
// until its idle timeout. id must be 1 to 255 bytes.
func (c *Client) OpenNamed(ctx context.Context, id string) (Session, error) {
	if id == "" || len(id) > 255 {
		return nil, &Error{Op: "open", URL: c.shown, Kind: KindUsage, Reason: fmt.Sprintf("episode id of %d bytes (want 1 to 255)", len(id))}
	}
	return c.open(ctx, id)
}

func (c *Client) open(ctx context.Context, name string) (*HTTPSession, error) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, &Error{Op: "open", URL: c.shown, Kind: KindCanceled,
			Reason: fmt.Sprintf("waiting for one of %d sessions: %v", c.cfg.MaxSessions, context.Cause(ctx)), Err: ctx.Err()}
	}
	if name == "" {
		var id [12]byte
		if _, err := cryptoRead(id[:]); err != nil {
			<-c.slots
			return nil, &Error{Op: "open", URL: c.shown, Kind: KindUsage, Reason: "no episode id: " + err.Error(), Err: err}
		}
		name = "redraft-" + hex.EncodeToString(id[:])
	}
	c.opened.Add(1)
	return &HTTPSession{c: c, id: name}, nil
}

var cryptoRead = crand.Read

// HTTPSession is one session of a Client: its episode id names it in every
// request. See Session for what its methods guarantee.
type HTTPSession struct {
	c  *Client
	id string

	mu     sync.Mutex
	reset  bool // a reset was sent (the server may hold the session)
	ready  bool // the last reset succeeded and no step was Done since
	closed bool
	steps  int
}

// EpisodeID is the session's id in the protocol (the requests'
// "episode_id").
func (s *HTTPSession) EpisodeID() string { return s.id }

// Reset implements Session.
func (s *HTTPSession) Reset(ctx context.Context, task Task) (Observation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable("reset"); err != nil {
		return Observation{}, err
	}
	if err := task.validate(); err != nil {
		return Observation{}, s.fail("reset", KindUsage, err.Error(), nil)
	}
	if s.c.cfg.Env != "" && task.Env != s.c.cfg.Env {
		return Observation{}, s.fail("reset", KindUsage, fmt.Sprintf("task %s is for environment %q; this client serves %q", task.ID(), task.Env, s.c.cfg.Env), nil)
	}
	body, err := json.Marshal(resetRequest{
		Seed: task.Seed, EpisodeID: s.id, Env: task.Env, Task: task.Name,
		Variation: task.Variation, Options: task.Options, Oracle: task.Oracle,
	})
	if err != nil {
		return Observation{}, s.fail("reset", KindUsage, "encoding the request: "+err.Error(), err)
	}
	s.ready, s.steps = false, 0
	s.reset = true
	var resp []byte
	for attempt := 1; ; attempt++ {
		var e *Error
		resp, e = s.c.do(ctx, "reset", http.MethodPost, "/reset", body, s.c.cfg.ResetTimeout)
		if e == nil {
			break
		}
		if !e.connFailed() || attempt >= s.c.cfg.ResetAttempts {
			if e.connFailed() {
				e.Reason += fmt.Sprintf(" (attempt %d of %d)", attempt, s.c.cfg.ResetAttempts)
			}
			return Observation{}, e
		}
		if !sleep(ctx, backoff(attempt)) {
			return Observation{}, s.fail("reset", KindCanceled, "while waiting to retry: "+context.Cause(ctx).Error(), ctx.Err())
		}
		s.c.retries.Add(1)
	}
	r, err := decodeResponse(resp, s.c.cfg.TextField)
	if err != nil {
		return Observation{}, s.fail("reset", KindMalformed, "/reset answered "+err.Error(), err)
	}
	if r.Done {
		// An episode that is over before it starts has nothing to step.
		return r.Observation, s.fail("reset", KindMalformed, "/reset answered done: true (the episode is over before its first step)", nil)
	}
	s.ready = true
	return r.Observation, nil
}

// Step implements Session.
func (s *HTTPSession) Step(ctx context.Context, a Action) (StepResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable("step"); err != nil {
		return StepResult{}, err
	}
	if !s.ready {
		reason := "no episode: call Reset first"
		if s.steps > 0 {
			reason = fmt.Sprintf("the episode is over (done after step %d)", s.steps)
		}
		return StepResult{}, s.fail("step", KindUsage, reason, nil)
	}
	action, err := encodeAction(a, s.c.cfg.ActionField)
	if err != nil {
		return StepResult{}, s.fail("step", KindBadAction, err.Error(), err)
	}
	s.steps++
	body, err := json.Marshal(stepRequest{
		Action: action, TimeoutS: s.c.cfg.StepTimeout.Seconds(),
		RequestID: s.id + "-" + strconv.Itoa(s.steps), EpisodeID: s.id,
	})
	if err != nil {
		return StepResult{}, s.fail("step", KindBadAction, "encoding the request: "+err.Error(), err)
	}
	resp, e := s.c.do(ctx, "step", http.MethodPost, "/step", body, s.c.cfg.StepTimeout)
	if e != nil {
		// The step may or may not have happened: the episode cannot go on.
		s.ready = false
		return StepResult{}, e
	}
	r, err := decodeResponse(resp, s.c.cfg.TextField)
	if err != nil {
		s.ready = false
		return StepResult{}, s.fail("step", KindMalformed, "/step answered "+err.Error(), err)
	}
	if r.Done {
		s.ready = false
	}
	return r, nil
}

// State returns GET /state's answer for the session (OpenEnv's State:
// {"episode_id", "step_count", ...}), as received. It is for diagnostics:
// nothing in an episode needs it.
func (s *HTTPSession) State(ctx context.Context) (json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable("state"); err != nil {
		return nil, err
	}
	resp, e := s.c.do(ctx, "state", http.MethodGet, "/state?episode_id="+url.QueryEscape(s.id), nil, s.c.cfg.StepTimeout)
	if e != nil {
		return nil, e
	}
	var m map[string]json.RawMessage
	if err := strictObject(resp, &m); err != nil {
		return nil, s.fail("state", KindMalformed, "/state answered "+err.Error(), err)
	}
	return json.RawMessage(bytes.TrimSpace(resp)), nil
}

// Close implements Session. It POSTs /close only when a reset was sent; a
// server without /close (404 or 405) counts as closed.
func (s *HTTPSession) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed, s.ready = true, false
	defer func() {
		<-s.c.slots
		s.c.closed.Add(1)
	}()
	if !s.reset {
		return nil
	}
	body, _ := json.Marshal(closeRequest{EpisodeID: s.id})
	_, e := s.c.do(context.WithoutCancel(ctx), "close", http.MethodPost, "/close", body, s.c.cfg.CloseTimeout)
	if e != nil && e.Kind == KindStatus && (e.Status == http.StatusNotFound || e.Status == http.StatusMethodNotAllowed) {
		return nil
	}
	if e != nil {
		return e
	}
	return nil
}

func (s *HTTPSession) usable(op string) error {
	if s.closed {
		return s.fail(op, KindUsage, "the session is closed", nil)
	}
	return nil
}

func (s *HTTPSession) fail(op string, k Kind, reason string, err error) *Error {
	return &Error{Op: op, URL: s.c.shown, Kind: k, Reason: reason, Err: err}
}

// do sends one request under timeout and returns the answer's body when
// the status is 200.
func (c *Client) do(ctx context.Context, op, method, path string, body []byte, timeout time.Duration) ([]byte, *Error) {
	fail := func(k Kind, status int, reason string, err error) *Error {
		return &Error{Op: op, URL: c.shown, Kind: k, Status: status, Reason: reason, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, fail(KindCanceled, 0, context.Cause(ctx).Error(), err)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(cctx, method, c.base+path, rd)
	if err != nil {
		return nil, fail(KindUsage, 0, "building the request: "+redact.Text(err.Error()), err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	// ended reports a failure caused by the caller's context or the
	// timeout, nil for another.
	ended := func(err error, during string) *Error {
		switch {
		case ctx.Err() != nil:
			return fail(KindCanceled, 0, during+": "+context.Cause(ctx).Error(), err)
		case cctx.Err() != nil:
			return fail(KindTimeout, 0, fmt.Sprintf("no complete answer within %s (%s)", timeout, during), err)
		}
		return nil
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if e := ended(err, "waiting for the answer"); e != nil {
			return nil, e
		}
		if isConnFailure(err) {
			return nil, fail(KindUnreachable, 0, "cannot connect, or the connection closed before an answer: "+redact.Text(rootCause(err)), err)
		}
		return nil, fail(KindUnreachable, 0, redact.Text(rootCause(err)), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		if e := ended(err, fmt.Sprintf("reading the answer, HTTP %d, after %d bytes", resp.StatusCode, len(b))); e != nil {
			return nil, e
		}
		return nil, fail(KindMalformed, resp.StatusCode, fmt.Sprintf("the answer (HTTP %d) broke off after %d bytes: %s", resp.StatusCode, len(b), rootCause(err)), err)
	}
	if len(b) > maxBody {
		return nil, fail(KindMalformed, resp.StatusCode, fmt.Sprintf("answer longer than %d bytes", maxBody), nil)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fail(KindStatus, resp.StatusCode, statusReason(path, resp.StatusCode, b), nil)
	}
	return b, nil
}

// statusReason says what an error status means, with the answer's detail
// (FastAPI's and this protocol's {"detail": ...}) or its first bytes.
func statusReason(path string, status int, body []byte) string {
	reason := fmt.Sprintf("%s answered HTTP %d", strings.SplitN(path, "?", 2)[0], status)
	var d struct {
		Detail json.RawMessage `json:"detail"`
	}
	detail := ""
	if json.Unmarshal(body, &d) == nil && !isNull(d.Detail) {
		var s string
		if json.Unmarshal(d.Detail, &s) == nil {
			detail = quote([]byte(s), 300)
		} else {
			detail = quote(d.Detail, 300)
		}
	} else if len(bytes.TrimSpace(body)) > 0 {
		detail = quote(body, 300)
	}
	if detail != "" {
		reason += ": " + detail
	}
	switch status {
	case http.StatusNotFound:
		if !strings.HasPrefix(path, "/reset") {
			reason += " (no such session: the server may have restarted, or closed it as idle)"
		}
	case http.StatusServiceUnavailable:
		reason += " (the server is at its session capacity: lower Config.MaxSessions or raise the server's)"
	}
	return reason
}

// connFailed says the request never got to the server: the only failure
// Reset retries.
func (e *Error) connFailed() bool {
	return e.Kind == KindUnreachable && isConnFailure(e.Err)
}

// isConnFailure: the connection could not be made, or the server dropped it
// before answering (connection refused or reset, EOF before a status line).
func isConnFailure(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// rootCause is err's innermost message, without url.Error's "Post
// URL:" prefix.
func rootCause(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// backoff is the wait before attempt+1: uniform in [d/2, d], d = 0.25 s·2^(k-1),
// at most 2 s.
func backoff(attempt int) time.Duration {
	d := min(2*time.Second, 250*time.Millisecond<<(attempt-1))
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
