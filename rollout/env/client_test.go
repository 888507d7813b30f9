package env

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeEnv is a counting environment server: a world where "say K" counts
// up to the variation + 1, with faults on demand. It records every
// request so that tests can check what was sent and that every session it
// opened was closed.
type fakeEnv struct {
	t        *testing.T
	mu       sync.Mutex
	sessions map[string]int // open sessions: episode id -> steps taken
	goal     map[string]int
	maxOpen  int // the most sessions open at once
	resets   int
	steps    int
	closes   int
	bodies   []string // every request body, "PATH BODY"
	// fault, when set, may answer a request itself (returning true).
	fault func(w http.ResponseWriter, r *http.Request, path string, body []byte) bool
}

func newFake(t *testing.T) (*fakeEnv, *httptest.Server) {
	f := &fakeEnv{t: t, sessions: map[string]int{}, goal: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeEnv) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.bodies = append(f.bodies, r.URL.Path+" "+string(body))
	fault := f.fault
	f.mu.Unlock()
	if fault != nil && fault(w, r, r.URL.Path, body) {
		return
	}
	var req struct {
		EpisodeID string `json:"episode_id"`
		Variation int    `json:"variation"`
		Oracle    bool   `json:"oracle"`
		Action    struct {
			Text string `json:"text"`
		} `json:"action"`
	}
	json.Unmarshal(body, &req)
	answer := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/reset":
		f.resets++
		f.sessions[req.EpisodeID] = 0
		f.goal[req.EpisodeID] = req.Variation + 1
		f.maxOpen = max(f.maxOpen, len(f.sessions))
		obs := map[string]any{"text": fmt.Sprintf("Count to %d.", req.Variation+1), "actions": []string{"say NUMBER"}, "info": map[string]any{"goal": req.Variation + 1}}
		if req.Oracle {
			var gold []string
			for k := 1; k <= req.Variation+1; k++ {
				gold = append(gold, fmt.Sprintf("say %d", k))
			}
			obs["gold_actions"] = gold
		}
		answer(map[string]any{"observation": obs, "reward": nil, "done": false})
	case "/step":
		f.steps++
		n, ok := f.sessions[req.EpisodeID]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			answer(map[string]any{"detail": "no session " + req.EpisodeID})
			return
		}
		if req.Action.Text != fmt.Sprintf("say %d", n+1) {
			answer(map[string]any{"observation": map[string]any{"text": "No.", "invalid_action": true, "success": false}, "reward": 0.0, "done": false})
			return
		}
		f.sessions[req.EpisodeID] = n + 1
		won := n+1 == f.goal[req.EpisodeID]
		answer(map[string]any{"observation": map[string]any{"text": "Good.", "success": won}, "reward": 1.0 / float64(f.goal[req.EpisodeID]), "done": won})
	case "/state":
		id := r.URL.Query().Get("episode_id")
		answer(map[string]any{"episode_id": id, "step_count": f.sessions[id]})
	case "/close":
		f.closes++
		_, ok := f.sessions[req.EpisodeID]
		delete(f.sessions, req.EpisodeID)
		answer(map[string]any{"episode_id": req.EpisodeID, "closed": ok})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// open reports the sessions the server holds.
func (f *fakeEnv) open() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sessions)
}

func (f *fakeEnv) setFault(fn func(w http.ResponseWriter, r *http.Request, path string, body []byte) bool) {
	f.mu.Lock()
	f.fault = fn
	f.mu.Unlock()
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// allClosed checks that every session the client opened was closed, and
// that the server holds none.
func allClosed(t *testing.T, c *Client, f *fakeEnv) {
	t.Helper()
	if s := c.Stats(); s.Opened != s.Closed {
		t.Errorf("client: %d sessions opened, %d closed", s.Opened, s.Closed)
	}
	if f != nil && f.open() != 0 {
		t.Errorf("the server still holds %d sessions", f.open())
	}
}

// TestClientEpisode plays a whole episode with the gold actions and checks
// the requests on the wire: OpenEnv's shapes with the episode id.
func TestClientEpisode(t *testing.T) {
	f, srv := newFake(t)
	c := newClient(t, Config{URL: srv.URL + "/", Env: "counting"})
	ctx := context.Background()
	s, err := c.OpenHTTP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	task := Task{Env: "counting", Name: "count", Variation: 2, Seed: 11, Options: map[string]any{"step_limit": 5}, Oracle: true}
	obs, err := s.Reset(ctx, task)
	if err != nil {
		t.Fatal(err)
	}
	if obs.Text != "Count to 3." || len(obs.Actions) != 1 || strings.Join(obs.Gold, ",") != "say 1,say 2,say 3" || string(obs.Info) != `{"goal":3}` {
		t.Fatalf("reset: %+v", obs)
	}
	total := 0.0
	var last StepResult
	for i, a := range obs.Gold {
		last, err = s.Step(ctx, Action{Text: a})
		if err != nil {
			t.Fatal(err)
		}
		if last.Reward == nil || last.Invalid || last.Success == nil || *last.Success != (i == 2) || last.Done != (i == 2) {
			t.Fatalf("step %d: %s", i, describe(last))
		}
		total += *last.Reward
	}
	if total < 0.999 || total > 1.001 {
		t.Errorf("rewards add up to %v", total)
	}
	st, err := s.State(ctx)
	if err != nil || !strings.Contains(string(st), `"step_count":3`) {
		t.Errorf("state %s, %v", st, err)
	}
	if _, err := s.Step(ctx, Action{Text: "say 4"}); !isKind(err, KindUsage) || !strings.Contains(err.Error(), "the episode is over") {
		t.Errorf("a step after done: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
	allClosed(t, c, f)

	id := s.EpisodeID()
	want := []string{
		`/reset {"seed":11,"episode_id":"` + id + `","env":"counting","task":"count","variation":2,"options":{"step_limit":5},"oracle":true}`,
		`/step {"action":{"text":"say 1"},"timeout_s":30,"request_id":"` + id + `-1","episode_id":"` + id + `"}`,
		`/step {"action":{"text":"say 2"},"timeout_s":30,"request_id":"` + id + `-2","episode_id":"` + id + `"}`,
		`/step {"action":{"text":"say 3"},"timeout_s":30,"request_id":"` + id + `-3","episode_id":"` + id + `"}`,
		`/state `,
		`/close {"episode_id":"` + id + `"}`,
	}
	if got := strings.Join(f.bodies, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("requests\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

// TestClientFaults: a server that answers 500, hangs past the timeout
// (before its status, or in the middle of its body), sends malformed JSON
// or fields of the wrong type, forgets the session, or drops the
// connection gives an *Error with its kind and a reason that says so, in
// bounded time; the session is closed and the server told.
func TestClientFaults(t *testing.T) {
	const timeout = 300 * time.Millisecond
	hang := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
	faults := []struct {
		name   string
		kind   Kind
		reason string
		answer func(w http.ResponseWriter, r *http.Request)
	}{
		{"500", KindStatus, `answered HTTP 500: "the simulator crashed"`, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			io.WriteString(w, `{"detail": "the simulator crashed"}`)
		}},
		{"502 html", KindStatus, `HTTP 502: "<html>bad gateway</html>"`, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
			io.WriteString(w, `<html>bad gateway</html>`)
		}},
		{"503", KindStatus, "session capacity", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(503)
			io.WriteString(w, `{"detail": "at capacity"}`)
		}},
		{"hang", KindTimeout, "no complete answer within 300ms", hang},
		{"hang in body", KindTimeout, "no complete answer within 300ms (reading the answer, HTTP 200", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"observation": {"te`)
			w.(http.Flusher).Flush()
			hang(w, r)
		}},
		{"malformed", KindMalformed, "answered not a JSON object", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"observation": {"text": "a"`)
		}},
		{"not json", KindMalformed, `starts with "Internal Server Error"`, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `Internal Server Error`)
		}},
		{"wrong type", KindMalformed, `"done" is not a boolean`, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"observation": {"text": "a"}, "reward": 0, "done": "no"}`)
		}},
		{"broken off", KindMalformed, "broke off", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, `{"observation":`)
			w.(http.Flusher).Flush()
			conn, buf, _ := w.(http.Hijacker).Hijack()
			buf.Flush()
			conn.Close()
		}},
		{"dropped", KindUnreachable, "connection closed before an answer", func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}},
	}
	for _, op := range []string{"/reset", "/step"} {
		for _, fc := range faults {
			t.Run(strings.TrimPrefix(op, "/")+" "+fc.name, func(t *testing.T) {
				f, srv := newFake(t)
				var hits atomic.Int32
				f.setFault(func(w http.ResponseWriter, r *http.Request, path string, _ []byte) bool {
					if path != op {
						return false
					}
					hits.Add(1)
					fc.answer(w, r)
					return true
				})
				c := newClient(t, Config{URL: srv.URL, ResetTimeout: timeout, StepTimeout: timeout, ResetAttempts: 2})
				ctx := context.Background()
				s, err := c.Open(ctx)
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				_, err = s.Reset(ctx, Task{Env: "counting", Variation: 1})
				if op == "/step" {
					if err != nil {
						t.Fatal(err)
					}
					_, err = s.Step(ctx, Action{Text: "say 1"})
				}
				took := time.Since(start)
				var e *Error
				if !errors.As(err, &e) || e.Kind != fc.kind || !strings.Contains(e.Reason, fc.reason) {
					t.Fatalf("error %v, want kind %s with %q", err, fc.kind, fc.reason)
				}
				if !strings.HasPrefix(err.Error(), "environment "+strings.TrimPrefix(op, "/")+" "+srv.URL+": "+string(fc.kind)+": ") {
					t.Errorf("error text %q", err)
				}
				if took > 3*time.Second {
					t.Errorf("took %v", took)
				}
				// Only a reset whose connection failed is sent again.
				wantHits := int32(1)
				if op == "/reset" && fc.kind == KindUnreachable {
					wantHits = 2
				}
				if hits.Load() != wantHits {
					t.Errorf("%s sent %d times, want %d", op, hits.Load(), wantHits)
				}
				if op == "/step" {
					if _, err := s.Step(ctx, Action{Text: "say 2"}); !isKind(err, KindUsage) {
						t.Errorf("a step after a failed one: %v", err)
					}
				}
				if err := s.Close(ctx); err != nil {
					t.Errorf("close: %v", err)
				}
				allClosed(t, c, f)
				if f.closes != 1 {
					t.Errorf("%d closes sent, want 1", f.closes)
				}
			})
		}
	}
}

// TestClientResetRetries: Reset connects again when the connection fails
// (up to ResetAttempts), and reports the attempts when it never works.
func TestClientResetRetries(t *testing.T) {
	f, srv := newFake(t)
	var drops atomic.Int32
	f.setFault(func(w http.ResponseWriter, r *http.Request, path string, _ []byte) bool {
		if path == "/reset" && drops.Add(1) <= 2 {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return true
		}
		return false
	})
	c := newClient(t, Config{URL: srv.URL})
	ctx := context.Background()
	s, _ := c.Open(ctx)
	if _, err := s.Reset(ctx, Task{Env: "counting"}); err != nil {
		t.Fatalf("reset after two dropped connections: %v", err)
	}
	s.Close(ctx)
	if c.Stats().Retries != 2 || f.resets != 1 {
		t.Errorf("retries %d, resets the server saw %d", c.Stats().Retries, f.resets)
	}
	allClosed(t, c, f)

	// Nobody listens.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c = newClient(t, Config{URL: "http://user:secret@" + addr})
	s, _ = c.Open(ctx)
	_, err = s.Reset(ctx, Task{Env: "x"})
	if !isKind(err, KindUnreachable) || !strings.Contains(err.Error(), "(attempt 3 of 3)") || strings.Contains(err.Error(), "secret") {
		t.Errorf("no server: %v", err)
	}
	if c.Stats().Retries != 2 {
		t.Errorf("retries %d", c.Stats().Retries)
	}
	// Nothing was ever held: closing still frees the place, and sends a
	// close that fails to connect.
	if err := s.Close(ctx); !isKind(err, KindUnreachable) {
		t.Errorf("close with no server: %v", err)
	}
	allClosed(t, c, nil)
}

// TestClientConcurrencyLimit: at most MaxSessions sessions are open; Open
// waits for a Close or for its context; many episodes at once all end
// closed.
func TestClientConcurrencyLimit(t *testing.T) {
	f, srv := newFake(t)
	c := newClient(t, Config{URL: srv.URL, MaxSessions: 2})
	ctx := context.Background()
	a, _ := c.Open(ctx)
	b, _ := c.Open(ctx)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.Open(short); !isKind(err, KindCanceled) || !strings.Contains(err.Error(), "waiting for one of 2 sessions") {
		t.Fatalf("a third Open: %v", err)
	}
	got := make(chan error, 1)
	go func() {
		s, err := c.Open(ctx)
		if err == nil {
			err = s.Close(ctx)
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("a third Open returned (%v) while two are open", err)
	case <-time.After(50 * time.Millisecond):
	}
	a.Close(ctx)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	b.Close(ctx)
	allClosed(t, c, f)

	// 24 episodes on 3 places, each with its own world.
	c = newClient(t, Config{URL: srv.URL, MaxSessions: 3})
	var wg sync.WaitGroup
	errs := make(chan error, 24)
	for i := range 24 {
		wg.Go(func() {
			errs <- playCounting(ctx, c, i%4, i%3 == 0)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if f.maxOpen > 3 {
		t.Errorf("the server held %d sessions at once, the limit is 3", f.maxOpen)
	}
	allClosed(t, c, f)
}

// playCounting plays one counting episode (with one wrong move when
// stumble), checking each answer, and closes the session.
func playCounting(ctx context.Context, c *Client, variation int, stumble bool) (err error) {
	s, err := c.Open(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := s.Close(ctx); err == nil {
			err = cerr
		}
	}()
	obs, err := s.Reset(ctx, Task{Env: "counting", Variation: variation, Oracle: true})
	if err != nil {
		return err
	}
	if stumble {
		r, err := s.Step(ctx, Action{Text: "say 99"})
		if err != nil || !r.Invalid || r.Done {
			return fmt.Errorf("a wrong move: %s, %v", describe(r), err)
		}
	}
	for i, a := range obs.Gold {
		r, err := s.Step(ctx, Action{Text: a})
		if err != nil {
			return err
		}
		if r.Invalid || r.Done != (i == len(obs.Gold)-1) {
			return fmt.Errorf("variation %d step %d: %s", variation, i, describe(r))
		}
	}
	return nil
}

// TestClientClose: Close reaches the server even when the caller's context
// is canceled, gives up after CloseTimeout on a server that hangs, and
// frees the place either way; a server without /close counts as closed.
func TestClientClose(t *testing.T) {
	f, srv := newFake(t)
	c := newClient(t, Config{URL: srv.URL, MaxSessions: 1, CloseTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	s, _ := c.Open(ctx)
	if _, err := s.Reset(ctx, Task{Env: "counting"}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := s.Step(ctx, Action{Text: "say 1"}); !isKind(err, KindCanceled) {
		t.Errorf("a step with a canceled context: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("close with a canceled context: %v", err)
	}
	allClosed(t, c, f)

	ctx = context.Background()
	f.setFault(func(w http.ResponseWriter, r *http.Request, path string, _ []byte) bool {
		if path == "/close" {
			<-r.Context().Done()
			return true
		}
		return false
	})
	s, _ = c.Open(ctx)
	s.Reset(ctx, Task{Env: "counting"})
	start := time.Now()
	if err := s.Close(ctx); !isKind(err, KindTimeout) || time.Since(start) > 2*time.Second {
		t.Errorf("close on a hanging server: %v after %v", err, time.Since(start))
	}
	// The place is free again.
	short, stop := context.WithTimeout(ctx, time.Second)
	defer stop()
	s, err := c.Open(short)
	if err != nil {
		t.Fatalf("Open after a failed close: %v", err)
	}
	f.setFault(func(w http.ResponseWriter, r *http.Request, path string, _ []byte) bool {
		if path == "/close" {
			w.WriteHeader(http.StatusNotFound)
			return true
		}
		return false
	})
	s.Reset(ctx, Task{Env: "counting"})
	if err := s.Close(ctx); err != nil {
		t.Errorf("close on a server without /close: %v", err)
	}
	if s := c.Stats(); s.Opened != s.Closed {
		t.Errorf("stats %+v", s)
	}
}

// TestClientUsage: what a session refuses without contacting the server,
// and a tool call whose arguments are not JSON, which leaves the episode
// going.
func TestClientUsage(t *testing.T) {
	f, srv := newFake(t)
	c := newClient(t, Config{URL: srv.URL, Env: "counting"})
	ctx := context.Background()
	s, _ := c.Open(ctx)
	if _, err := s.Step(ctx, Action{Text: "say 1"}); !isKind(err, KindUsage) || !strings.Contains(err.Error(), "call Reset first") {
		t.Errorf("step before reset: %v", err)
	}
	if _, err := s.Reset(ctx, Task{Env: "scienceworld"}); !isKind(err, KindUsage) || !strings.Contains(err.Error(), `this client serves "counting"`) {
		t.Errorf("a task for another environment: %v", err)
	}
	if _, err := s.Reset(ctx, Task{Env: "counting", Seed: -1}); !isKind(err, KindUsage) {
		t.Errorf("a negative seed: %v", err)
	}
	if len(f.bodies) != 0 {
		t.Errorf("requests sent: %q", f.bodies)
	}
	if _, err := s.Reset(ctx, Task{Env: "counting", Variation: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Step(ctx, Action{Tool: &ToolCall{ID: "c", Name: "act", Arguments: `{"command": "say`}}); !isKind(err, KindBadAction) {
		t.Errorf("bad tool arguments: %v", err)
	}
	if r, err := s.Step(ctx, Action{Text: "say 1"}); err != nil || r.Invalid {
		t.Errorf("a step after bad tool arguments: %s, %v", describe(r), err)
	}
	s.Close(ctx)
	if _, err := s.Reset(ctx, Task{Env: "counting"}); !isKind(err, KindUsage) || !strings.Contains(err.Error(), "closed") {
		t.Errorf("reset after close: %v", err)
	}
	allClosed(t, c, f)
	for _, bad := range []string{"", "ftp://x", "localhost:8000", "http://"} {
		if _, err := NewClient(Config{URL: bad}); err == nil {
			t.Errorf("URL %q accepted", bad)
		}
	}
}

func isKind(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}
