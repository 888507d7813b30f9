package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/redraft/redraft/rewards/codegrade"
	"github.com/redraft/redraft/rewards/execute"
	"github.com/redraft/redraft/rewards/mathgrade"
	"github.com/redraft/redraft/rewards/plugin"
	"github.com/redraft/redraft/rollout"
)

const serveAbout = `Serves grading over HTTP for RL trainers, on 127.0.0.1:5050 unless --addr says otherwise
(Ctrl+C stops it). POST /get_reward takes OpenRLHF's --reward.remote_url request, {"query": [...],
"prompts": [...], "labels": [...]}, and answers {"rewards": [...], "scores": [...], "extra_logs":
{...}}; POST /verl/compute_score takes the keyword arguments of verl's compute_score, one
({"data_source", "solution_str", "ground_truth", "extra_info"}: answers {"score", "acc", "pred",
"rule"}) or a batch (data_sources, solution_strs, ground_truths, extra_infos: answers a list);
GET /health says it is up. The verifier is the math grader (--verifier python runs code against
the tests in the label, plugin asks a verifier plug-in). Requests are bounded: bodies over
--max-body get 413, malformed JSON 400 with where it broke, a request waits at most
--queue-timeout for memory (--memory) and then gets 503, and takes at most --request-timeout.
Each request is logged to stderr. See docs/serve.md.`

// serveConfig holds redraft serve's limits.
type serveConfig struct {
	maxBody        int64         // largest request body, bytes (413 past it)
	maxItems       int           // most responses in one request (413 past it)
	memory         int64         // bytes of request bodies held at once
	workers        int           // responses graded at once, over all requests
	maxConns       int           // connections open at once
	queueTimeout   time.Duration // longest wait for memory before 503
	requestTimeout time.Duration // longest a request may take (503 past it)
	gradeTimeout   time.Duration // the math grader's limit per response
}

func defaultServeConfig() serveConfig {
	return serveConfig{maxBody: 32 << 20, maxItems: 16384, memory: 256 << 20, workers: runtime.NumCPU(),
		maxConns: 1024, queueTimeout: 60 * time.Second, requestTimeout: 5 * time.Minute, gradeTimeout: mathgrade.DefaultTimeout}
}

// redraft serve [--addr HOST:PORT] [limits] [--verifier math|python|plugin ...]
func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "[flags]", serveAbout, stdout)
	cfg := defaultServeConfig()
	addr := fs.String("addr", "127.0.0.1:5050", "listen on `HOST:PORT` (port 0: a free one)")
	fs.Int64Var(&cfg.maxBody, "max-body", cfg.maxBody, "largest request body in `BYTES` (larger: 413)")
	fs.IntVar(&cfg.maxItems, "max-items", cfg.maxItems, "most responses in one request (more: 413)")
	fs.Int64Var(&cfg.memory, "memory", cfg.memory, "`BYTES` of request bodies held at once; a request waits for room (about twice this is in use at the peak)")
	fs.IntVar(&cfg.workers, "workers", 0, "responses graded at once, over all requests (default: the number of CPUs)")
	fs.IntVar(&cfg.maxConns, "max-conns", cfg.maxConns, "connections open at once; more wait to be accepted")
	fs.DurationVar(&cfg.queueTimeout, "queue-timeout", cfg.queueTimeout, "longest a request waits for memory before a 503")
	fs.DurationVar(&cfg.requestTimeout, "request-timeout", cfg.requestTimeout, "longest a request may take, waiting included (then 503)")
	fs.DurationVar(&cfg.gradeTimeout, "grade-timeout", cfg.gradeTimeout, "the math grader's time limit per response (error:timeout past it)")
	code := addCodeFlags(fs)
	// The verifier flags are redraft grade's; what they take here:
	fs.Lookup("verifier").Usage = "the verifier: math (the math grader), python (the program in each response runs against the tests of its label, a JSON object {tests, entry_point, prompt}, in the bubblewrap sandbox) or plugin (a verifier plug-in scores each response against its label: --plugin-command or --plugin-url)"
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.workers == 0 {
		cfg.workers = runtime.NumCPU()
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if cfg.maxBody <= 0 || cfg.maxItems <= 0 || cfg.memory < cfg.maxBody || cfg.workers <= 0 || cfg.maxConns <= 0 ||
		cfg.queueTimeout <= 0 || cfg.requestTimeout <= 0 || cfg.gradeTimeout <= 0 {
		return usageError{"--max-body, --max-items, --workers, --max-conns and the timeouts must be positive, and --memory at least --max-body"}
	}
	sc, err := newScorer(ctx, code, cfg)
	if err != nil {
		return err
	}
	defer sc.close()
	srv := newRewardServer(cfg, sc)
	srv.log = func(method, path string, status, n int, d time.Duration) {
		fmt.Fprintf(stderr, "%s %s %s %d n=%d %s\n", time.Now().Format("15:04:05"), method, path, status, n, d.Round(time.Microsecond))
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		fmt.Fprintf(stderr, "redraft serve: listening on %s, which is not a loopback address: anyone who can reach it can use the grader\n", ln.Addr())
	}
	fmt.Fprintf(stdout, "redraft serve: %s verifier at http://%s/ (Ctrl+C stops)\n", sc.name(), ln.Addr())
	hs := srv.httpServer()
	done := make(chan error, 1)
	go func() { done <- hs.Serve(limitListener(ln, cfg.maxConns)) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// scoreItem is one response to score, whichever request shape it came in.
type scoreItem struct {
	Response     string
	Reference    string
	DataSource   string
	FinishReason string
	// Metadata is verl's extra_info (the plug-in verifier's metadata).
	Metadata json.RawMessage
}

// scoreResult is one decision.
type scoreResult struct {
	Score   float64
	Correct bool
	Found   bool
	Answer  string
	Rule    string
	Reason  string
}

// scorer decides responses: the seam between the HTTP shapes and the
// verifiers (math now; code and plug-ins when configured).
type scorer interface {
	name() string
	// score decides items in order; it stops early (the remaining results
	// zero) when ctx ends.
	score(ctx context.Context, items []scoreItem) []scoreResult
	close()
}

func newScorer(ctx context.Context, c *codeFlags, cfg serveConfig) (scorer, error) {
	switch c.verifier {
	case "math", "":
		return &mathScorer{g: mathgrade.New(mathgrade.Options{Timeout: cfg.gradeTimeout}), slots: make(chan struct{}, cfg.workers)}, nil
	case "python":
		sb, err := execute.New(execute.Options{UnsafeNoSandbox: c.unsafe, Slots: c.slots, Limits: execute.Limits{Wall: c.timeout}})
		if err != nil {
			return nil, fmt.Errorf("%w (redraft serve --unsafe-no-sandbox runs without isolation)", err)
		}
		return &codeScorer{g: codegrade.New(sb, codegrade.Options{}), slots: make(chan struct{}, sb.Slots())}, nil
	case "plugin":
		pc := plugin.Config{Command: strings.Fields(c.command), URL: c.url, Timeout: rollout.Duration(c.timeout)}
		if (len(pc.Command) == 0) == (pc.URL == "") {
			return nil, usageError{"--verifier plugin needs exactly one of --plugin-command and --plugin-url"}
		}
		client, err := plugin.Open(ctx, pc)
		if err != nil {
			return nil, err
		}
		return &pluginScorer{c: client}, nil
	default:
		return nil, usageError{fmt.Sprintf("--verifier %q: want math, python or plugin", c.verifier)}
	}
}

// mathScorer grades with the math grader on a pool of slots shared by all
// requests.
type mathScorer struct {
	g     *mathgrade.Grader
	slots chan struct{}
}

func (m *mathScorer) name() string { return "math" }
func (m *mathScorer) close()       {}

func (m *mathScorer) score(ctx context.Context, items []scoreItem) []scoreResult {
	out := make([]scoreResult, len(items))
	var wg sync.WaitGroup
	for i := range items {
		select {
		case m.slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return out
		}
		wg.Add(1)
		go func(i int) {
			defer func() { <-m.slots; wg.Done() }()
			it := items[i]
			r := m.g.GradeFinished(it.Response, it.Reference, it.FinishReason)
			out[i] = scoreResult{Correct: r.Correct, Found: r.Found, Answer: r.Answer, Rule: r.Rule, Reason: r.Reason}
			if r.Correct {
				out[i].Score = 1
			}
		}(i)
	}
	wg.Wait()
	return out
}

// codeScorer runs the program in each response against the tests its
// reference holds: a JSON object {"tests", "entry_point", "prompt",
// "language"} (codegrade.Task), as a string (OpenRLHF's labels) or an
// object (verl's ground_truth).
type codeScorer struct {
	g     *codegrade.Grader
	slots chan struct{}
}

func (c *codeScorer) name() string { return "python" }
func (c *codeScorer) close()       {}

func (c *codeScorer) score(ctx context.Context, items []scoreItem) []scoreResult {
	out := make([]scoreResult, len(items))
	var wg sync.WaitGroup
	for i := range items {
		var t codegrade.Task
		if err := json.Unmarshal([]byte(items[i].Reference), &t); err != nil || t.Tests == "" {
			out[i] = scoreResult{Rule: "error:no_tests", Reason: `the label is not a JSON object {"tests", "entry_point", ...}`}
			continue
		}
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return out
		}
		wg.Add(1)
		go func(i int, t codegrade.Task) {
			defer func() { <-c.slots; wg.Done() }()
			v := c.g.Grade(ctx, items[i].Response, t)
			out[i] = scoreResult{Correct: v.Correct, Found: v.Found, Rule: "code:" + v.Reason, Reason: v.Message}
			if v.Correct {
				out[i] = scoreResult{Score: 1, Correct: true, Found: true, Rule: "code:pass"}
			}
		}(i, t)
	}
	wg.Wait()
	return out
}

// pluginScorer asks a verifier plug-in (docs/plugins.md).
type pluginScorer struct{ c *plugin.Client }

func (p *pluginScorer) name() string { return "plugin" }
func (p *pluginScorer) close()       { p.c.Close() }

func (p *pluginScorer) score(ctx context.Context, items []scoreItem) []scoreResult {
	reqs := make([]plugin.Request, len(items))
	for i, it := range items {
		reqs[i] = plugin.Request{Response: it.Response, Reference: it.Reference, DataSource: it.DataSource, Metadata: it.Metadata}
	}
	out := make([]scoreResult, len(items))
	for i, r := range p.c.Verify(ctx, reqs) {
		if r.Score == nil {
			out[i] = scoreResult{Rule: "error:unverified", Reason: r.Reason, Answer: r.Answer}
			continue
		}
		correct := *r.Score >= 1
		if r.Correct != nil {
			correct = *r.Correct
		}
		out[i] = scoreResult{Score: *r.Score, Correct: correct, Found: r.Answer != "", Answer: r.Answer, Rule: "plugin", Reason: r.Reason}
	}
	return out
}

// rewardServer is redraft serve's HTTP handler.
type rewardServer struct {
	cfg      serveConfig
	sc       scorer
	mem      *semaphore.Weighted
	inflight atomic.Int64
	served   atomic.Int64
	log      func(method, path string, status, items int, d time.Duration)
}

func newRewardServer(cfg serveConfig, sc scorer) *rewardServer {
	return &rewardServer{cfg: cfg, sc: sc, mem: semaphore.NewWeighted(cfg.memory)}
}

func (s *rewardServer) httpServer() *http.Server {
	return &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: s.cfg.queueTimeout + 2*time.Minute,
		WriteTimeout: s.cfg.requestTimeout + 30*time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
}

// httpError is a request's failure with its status.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

func (s *rewardServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	status, n := s.serve(w, r)
	if s.log != nil {
		s.log(r.Method, r.URL.Path, status, n, time.Since(start))
	}
}

// serve answers one request and returns its status and number of items.
func (s *rewardServer) serve(w http.ResponseWriter, r *http.Request) (int, int) {
	var handle func(ctx context.Context, body []byte) (any, int, error)
	switch r.URL.Path {
	case "/health":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return s.fail(w, errorf(http.StatusMethodNotAllowed, "%s /health: use GET", r.Method)), 0
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "verifier": s.sc.name(), "workers": s.cfg.workers,
			"in_flight": s.inflight.Load() - 1, "served": s.served.Load()})
		return http.StatusOK, 0
	case "/get_reward", "/":
		handle = s.openRLHF
	case "/verl/compute_score":
		handle = s.verl
	default:
		return s.fail(w, errorf(http.StatusNotFound, "no endpoint %s: POST /get_reward (OpenRLHF), POST /verl/compute_score (verl), GET /health", r.URL.Path)), 0
	}
	if r.Method != http.MethodPost {
		return s.fail(w, errorf(http.StatusMethodNotAllowed, "%s %s: use POST with a JSON body", r.Method, r.URL.Path)), 0
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.requestTimeout)
	defer cancel()
	body, release, err := s.readBody(ctx, w, r)
	if err != nil {
		return s.fail(w, err), 0
	}
	defer release()
	out, n, err := handle(ctx, body)
	if err != nil {
		return s.fail(w, err), n
	}
	if ctx.Err() != nil {
		return s.fail(w, errorf(http.StatusServiceUnavailable, "the request took longer than --request-timeout %v", s.cfg.requestTimeout)), n
	}
	s.served.Add(int64(n))
	writeJSON(w, http.StatusOK, out)
	return http.StatusOK, n
}

// readBody waits for room in the memory budget (a 503 after
// --queue-timeout) and reads the body, refusing one over --max-body (413).
// release gives the room back.
func (s *rewardServer) readBody(ctx context.Context, w http.ResponseWriter, r *http.Request) ([]byte, func(), error) {
	if r.ContentLength > s.cfg.maxBody {
		return nil, nil, errorf(http.StatusRequestEntityTooLarge, "the body is %d bytes, over the %d-byte limit (--max-body)", r.ContentLength, s.cfg.maxBody)
	}
	need := s.cfg.maxBody
	if r.ContentLength >= 0 {
		need = r.ContentLength
	}
	if need < 1 {
		need = 1
	}
	qctx, cancel := context.WithTimeout(ctx, s.cfg.queueTimeout)
	defer cancel()
	if err := s.mem.Acquire(qctx, need); err != nil {
		if r.Context().Err() != nil {
			return nil, nil, errorf(499, "the client went away while the request waited")
		}
		w.Header().Set("Retry-After", "1")
		return nil, nil, errorf(http.StatusServiceUnavailable, "the server is busy: no room for a %d-byte body within %v (--memory %d)", need, s.cfg.queueTimeout, s.cfg.memory)
	}
	release := func() { s.mem.Release(need) }
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.cfg.maxBody))
	if err != nil {
		release()
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, nil, errorf(http.StatusRequestEntityTooLarge, "the body is over the %d-byte limit (--max-body)", s.cfg.maxBody)
		}
		return nil, nil, errorf(http.StatusBadRequest, "reading the body: %v", err)
	}
	return buf.Bytes(), release, nil
}

func (s *rewardServer) fail(w http.ResponseWriter, err error) int {
	var he *httpError
	if !errors.As(err, &he) {
		he = errorf(http.StatusInternalServerError, "%v", err)
	}
	if he.status == 499 { // nobody to answer
		return he.status
	}
	if he.status == http.StatusRequestEntityTooLarge {
		w.Header().Set("Connection", "close")
	}
	writeJSON(w, he.status, map[string]string{"error": he.msg})
	return he.status
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// decodeJSON decodes body into v; a malformed body is a 400 that says where.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errorf(http.StatusBadRequest, "the body is empty: want a JSON object")
	}
	err := json.Unmarshal(body, v)
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return errorf(http.StatusBadRequest, "malformed JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "the body"
		}
		return errorf(http.StatusBadRequest, "field %q: want %s, got JSON %s (at byte %d)", field, jsonKind(te.Type.String()), te.Value, te.Offset)
	default:
		return errorf(http.StatusBadRequest, "malformed JSON: %v", err)
	}
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map") || strings.HasPrefix(goType, "struct") || strings.HasPrefix(goType, "main."):
		return "an object"
	case goType == "string" || goType == "main.flexString":
		return "a string"
	default:
		return goType
	}
}

// flexString is a label or ground truth: a JSON string, number or bool as
// text, an object or list as its JSON (a code task), null as "".
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	case bytes.Equal(b, []byte("null")):
		*f = ""
	default:
		*f = flexString(b)
	}
	return nil
}

// openRLHF answers OpenRLHF's remote reward request. Each query is the
// decoded prompt and response (OpenRLHF decodes both together); the
// response is what follows the prompt in it (the whole query when the
// prompt is not found).
func (s *rewardServer) openRLHF(ctx context.Context, body []byte) (any, int, error) {
	var req struct {
		Query   []string     `json:"query"`
		Prompts []string     `json:"prompts"`
		Labels  []flexString `json:"labels"`
	}
	if err := decodeJSON(body, &req); err != nil {
		return nil, 0, err
	}
	n := len(req.Query)
	switch {
	case req.Query == nil:
		return nil, 0, errorf(http.StatusBadRequest, `field "query": missing (want {"query": [...], "prompts": [...], "labels": [...]})`)
	case n > s.cfg.maxItems:
		return nil, n, errorf(http.StatusRequestEntityTooLarge, "%d queries, over the %d limit (--max-items)", n, s.cfg.maxItems)
	case req.Prompts != nil && len(req.Prompts) != n:
		return nil, n, errorf(http.StatusBadRequest, `field "prompts": %d entries for %d queries`, len(req.Prompts), n)
	case req.Labels == nil:
		return nil, n, errorf(http.StatusBadRequest, `field "labels": missing: the reference answers (OpenRLHF's --label_key)`)
	case len(req.Labels) != n:
		return nil, n, errorf(http.StatusBadRequest, `field "labels": %d entries for %d queries`, len(req.Labels), n)
	}
	items := make([]scoreItem, n)
	for i, q := range req.Query {
		prompt := ""
		if req.Prompts != nil {
			prompt = req.Prompts[i]
		}
		items[i] = scoreItem{Response: responseOf(q, prompt), Reference: string(req.Labels[i])}
	}
	res := s.sc.score(ctx, items)
	rewards := make([]float64, n)
	found := make([]float64, n)
	rules := make([]string, n)
	for i, r := range res {
		rewards[i], rules[i] = r.Score, r.Rule
		if r.Found {
			found[i] = 1
		}
	}
	return map[string]any{"rewards": rewards, "scores": rewards, "extra_logs": map[string]any{"answer_found": found}, "rules": rules}, n, nil
}

// responseOf is the response part of an OpenRLHF query: the text after the
// prompt (exact, or without its surrounding white space), else the query.
func responseOf(query, prompt string) string {
	if prompt == "" {
		return query
	}
	if strings.HasPrefix(query, prompt) {
		return query[len(prompt):]
	}
	if i := strings.Index(query, prompt); i >= 0 {
		return query[i+len(prompt):]
	}
	if p := strings.TrimSpace(prompt); p != "" {
		if i := strings.Index(query, p); i >= 0 {
			return query[i+len(p):]
		}
	}
	return query
}

// verlResult is what verl's compute_score returns: "score" is the reward,
// every other key is logged.
type verlResult struct {
	Score  float64 `json:"score"`
	Acc    bool    `json:"acc"`
	Pred   string  `json:"pred"`
	Rule   string  `json:"rule"`
	Reason string  `json:"reason,omitempty"`
}

// verl answers a compute_score call (or a batch of them) made over HTTP.
func (s *rewardServer) verl(ctx context.Context, body []byte) (any, int, error) {
	var req struct {
		DataSource   *string           `json:"data_source"`
		SolutionStr  *string           `json:"solution_str"`
		GroundTruth  json.RawMessage   `json:"ground_truth"`
		ExtraInfo    json.RawMessage   `json:"extra_info"`
		DataSources  []string          `json:"data_sources"`
		SolutionStrs []string          `json:"solution_strs"`
		GroundTruths []json.RawMessage `json:"ground_truths"`
		ExtraInfos   []json.RawMessage `json:"extra_infos"`
	}
	if err := decodeJSON(body, &req); err != nil {
		return nil, 0, err
	}
	single := req.SolutionStrs == nil
	if single {
		if req.SolutionStr == nil {
			return nil, 0, errorf(http.StatusBadRequest, `field "solution_str": missing (want compute_score's keyword arguments, or "solution_strs" for a batch)`)
		}
		ds := ""
		if req.DataSource != nil {
			ds = *req.DataSource
		}
		req.SolutionStrs = []string{*req.SolutionStr}
		req.DataSources = []string{ds}
		req.GroundTruths = []json.RawMessage{req.GroundTruth}
		req.ExtraInfos = []json.RawMessage{req.ExtraInfo}
	}
	n := len(req.SolutionStrs)
	switch {
	case n > s.cfg.maxItems:
		return nil, n, errorf(http.StatusRequestEntityTooLarge, "%d solutions, over the %d limit (--max-items)", n, s.cfg.maxItems)
	case len(req.GroundTruths) != n:
		return nil, n, errorf(http.StatusBadRequest, `field "ground_truths": %d entries for %d solutions`, len(req.GroundTruths), n)
	case req.DataSources != nil && len(req.DataSources) != n:
		return nil, n, errorf(http.StatusBadRequest, `field "data_sources": %d entries for %d solutions`, len(req.DataSources), n)
	case req.ExtraInfos != nil && len(req.ExtraInfos) != n:
		return nil, n, errorf(http.StatusBadRequest, `field "extra_infos": %d entries for %d solutions`, len(req.ExtraInfos), n)
	}
	// A ground truth that is a list of strings or numbers lists acceptable
	// answers: the response is correct when it states any of them.
	var items []scoreItem
	owner := make([]int, 0, n)
	for i := 0; i < n; i++ {
		it := scoreItem{Response: req.SolutionStrs[i]}
		if req.DataSources != nil {
			it.DataSource = req.DataSources[i]
		}
		if req.ExtraInfos != nil && len(req.ExtraInfos[i]) > 0 && !bytes.Equal(req.ExtraInfos[i], []byte("null")) {
			it.Metadata = req.ExtraInfos[i]
			var ei struct {
				FinishReason string `json:"finish_reason"`
			}
			if json.Unmarshal(it.Metadata, &ei) == nil {
				it.FinishReason = ei.FinishReason
			}
		}
		refs, err := groundTruths(req.GroundTruths[i], s.sc.name() == "math")
		if err != nil {
			return nil, n, errorf(http.StatusBadRequest, "ground truth %d: %v", i, err)
		}
		for _, ref := range refs {
			it.Reference = ref
			items = append(items, it)
			owner = append(owner, i)
		}
	}
	if len(items) > s.cfg.maxItems {
		return nil, n, errorf(http.StatusRequestEntityTooLarge, "%d ground-truth answers, over the %d limit (--max-items)", len(items), s.cfg.maxItems)
	}
	res := s.sc.score(ctx, items)
	out := make([]*verlResult, n)
	for k, r := range res {
		i := owner[k]
		if out[i] != nil && (out[i].Acc || !r.Correct) {
			continue
		}
		out[i] = &verlResult{Score: r.Score, Acc: r.Correct, Pred: r.Answer, Rule: r.Rule}
		if r.Rule == "error:unverified" {
			out[i].Reason = r.Reason
		}
	}
	if single {
		return out[0], n, nil
	}
	return out, n, nil
}

// groundTruths reads verl's ground_truth: a string, number or bool is one
// answer; null is ""; a list of them (for the math grader) lists acceptable
// answers; an object (a code task) is passed on as its JSON.
func groundTruths(raw json.RawMessage, lists bool) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return []string{""}, nil
	}
	if raw[0] == '[' && lists {
		var vs []flexString
		if err := json.Unmarshal(raw, &vs); err != nil {
			return nil, err
		}
		if len(vs) == 0 {
			return []string{""}, nil
		}
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = string(v)
		}
		return out, nil
	}
	var f flexString
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, err
	}
	return []string{string(f)}, nil
}

// limitListener accepts at most n connections at once; the others wait in
// the kernel's backlog.
func limitListener(l net.Listener, n int) net.Listener {
	return &limitedListener{Listener: l, sem: make(chan struct{}, n)}
}

type limitedListener struct {
	net.Listener
	sem chan struct{}
}

func (l *limitedListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
