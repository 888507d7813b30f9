package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redraft/redraft/rollout"
)

// verifierServer is a fake HTTP verifier: it answers the handshake (an
// empty batch) and hands every other POST, with its number from 1, to
// reply, which writes the answer; score(r) is plainAnswer's.
type verifierServer struct {
	*httptest.Server
	mu      sync.Mutex
	posts   int
	sizes   []int
	auth    []string
	release chan struct{} // closed at the end: a handler that waits for it ends
}

func newVerifierServer(t *testing.T, reply func(w http.ResponseWriter, n int, reqs []Request)) *verifierServer {
	s := &verifierServer{release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Requests []Request `json:"requests"`
		}
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &body) != nil || body.Requests == nil {
			http.Error(w, "want a POST of {\"requests\": [...]}, got "+string(b), http.StatusBadRequest)
			return
		}
		if len(body.Requests) == 0 {
			fmt.Fprint(w, `{"protocol": "redraft-verifier/1", "name": "fake-http", "results": []}`)
			return
		}
		s.mu.Lock()
		s.posts++
		n := s.posts
		s.sizes = append(s.sizes, len(body.Requests))
		s.auth = append(s.auth, r.Header.Get("Authorization"))
		s.mu.Unlock()
		reply(w, n, body.Requests)
	}))
	t.Cleanup(func() {
		close(s.release)
		s.Close()
	})
	return s
}

// results writes the plain answers to reqs.
func results(w http.ResponseWriter, reqs []Request) {
	var out []json.RawMessage
	for _, r := range reqs {
		out = append(out, json.RawMessage(plainAnswer(r)))
	}
	json.NewEncoder(w).Encode(map[string]any{"results": out})
}

func TestHTTP(t *testing.T) {
	three := []Request{req("a", "1", "1"), req("b", "2", "1"), req("c", "1", "1")}
	right := []want{{score: f(1)}, {score: f(0)}, {score: f(1)}}
	all := func(w want) []want { return []want{w, w, w} }
	t.Setenv("VERIFIER_KEY", "sk-verifier-secret-42")
	for _, tc := range []struct {
		name  string
		cfg   Config
		reply func(w http.ResponseWriter, n int, reqs []Request)
		reqs  []Request
		want  []want
		posts int // POSTs the server gets, the handshake left out
		stats Stats
	}{
		{name: "answers in order, in batches", cfg: Config{Batch: 2, APIKeyEnv: "VERIFIER_KEY"},
			reply: func(w http.ResponseWriter, _ int, reqs []Request) { results(w, reqs) },
			reqs:  three, want: right, posts: 2, stats: Stats{Scored: 3}},
		{name: "500, then ok", reply: func(w http.ResponseWriter, n int, reqs []Request) {
			if n == 1 {
				http.Error(w, "upstream hiccup", http.StatusInternalServerError)
				return
			}
			results(w, reqs)
		}, reqs: three, want: right, posts: 2, stats: Stats{Scored: 3, Retries: 1}},
		{name: "429, then ok", reply: func(w http.ResponseWriter, n int, reqs []Request) {
			if n == 1 {
				w.Header().Set("Retry-After", "0")
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return
			}
			results(w, reqs)
		}, reqs: three, want: right, posts: 2, stats: Stats{Scored: 3, Retries: 1}},
		{name: "503 every time", cfg: Config{Retries: 2}, reply: func(w http.ResponseWriter, _ int, _ []Request) {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		}, reqs: three, posts: 2, stats: Stats{Failed: 3, Retries: 1},
			want: all(want{failed: true, reason: []string{`verifier answered 503 Service Unavailable: "overloaded\n" (attempt 2 of 2)`}})},
		{name: "400, the key it echoes removed", cfg: Config{APIKeyEnv: "VERIFIER_KEY"}, reply: func(w http.ResponseWriter, _ int, _ []Request) {
			http.Error(w, `{"error": "field reference is required", "you sent": "Bearer sk-verifier-secret-42"}`, http.StatusBadRequest)
		}, reqs: three, posts: 1, stats: Stats{Failed: 3},
			want: all(want{failed: true, reason: []string{`verifier answered 400 Bad Request: "{\"error\": \"field reference is required\", \"you sent\": \"Bearer [redacted]\"}\n"`}})},
		{name: "malformed JSON", reply: func(w http.ResponseWriter, _ int, _ []Request) {
			fmt.Fprint(w, `{"results": [{"score": 1}`)
		}, reqs: three, posts: 1, stats: Stats{Failed: 3},
			want: all(want{failed: true, reason: []string{`malformed answer (not JSON: it ends in the middle of a value): "{\"results\": [{\"score\": 1}"`}})},
		{name: "no results", reply: func(w http.ResponseWriter, _ int, _ []Request) {
			fmt.Fprint(w, `{"scores": [1, 0, 1]}`)
		}, reqs: three, posts: 1, stats: Stats{Failed: 3},
			want: all(want{failed: true, reason: []string{`malformed answer: no "results" array`}})},
		{name: "too few results", reply: func(w http.ResponseWriter, _ int, reqs []Request) {
			results(w, reqs[:2])
		}, reqs: three, posts: 1, stats: Stats{Failed: 3},
			want: all(want{failed: true, reason: []string{"malformed answer: 2 results for 3 requests"}})},
		{name: "a bad result fails only itself", reply: func(w http.ResponseWriter, _ int, reqs []Request) {
			fmt.Fprintf(w, `{"results": [%s, {"score": NaN}, {"id": "nope", "score": 1}]}`, plainAnswer(reqs[0]))
		}, reqs: three, posts: 1, stats: Stats{Scored: 1, Failed: 2},
			want: []want{{score: f(1)}, {failed: true, reason: []string{"bad answer: score: not a finite number (NaN)"}},
				{failed: true, reason: []string{`bad answer: id "nope", but the request in its place has id`}}}},
		{name: "the verifier's own nil", reply: func(w http.ResponseWriter, _ int, _ []Request) {
			fmt.Fprint(w, `{"results": [{"score": null, "reason": "unknown dataset"}, {"score": null}, {"score": 0.25, "reason": "partial"}]}`)
		}, reqs: three, posts: 1, stats: Stats{Scored: 1, Unscored: 2},
			want: []want{{reason: []string{"unknown dataset"}}, {reason: []string{"the verifier gave no score and no reason"}}, {score: f(0.25), reason: []string{"partial"}}}},
		{name: "slow: a timeout, not retried", cfg: Config{Timeout: rollout.Duration(200 * time.Millisecond)}, reply: nil,
			reqs: three, posts: 1, stats: Stats{Failed: 3, Timeouts: 3},
			want: all(want{failed: true, reason: []string{"timeout after 0.2s"}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var srv *verifierServer
			reply := tc.reply
			if reply == nil { // slow
				reply = func(w http.ResponseWriter, _ int, _ []Request) { <-srv.release }
			}
			srv = newVerifierServer(t, reply)
			cfg := tc.cfg
			cfg.URL = srv.URL + "/verify"
			c := open(t, cfg)
			if h := c.Hello(); h.Name != "fake-http" {
				t.Errorf("hello %+v", h)
			}
			res := c.Verify(context.Background(), tc.reqs)
			for i, w := range tc.want {
				check(t, tc.reqs[i].TaskID, res[i], w)
				if strings.Contains(res[i].Reason, "sk-verifier") {
					t.Errorf("the reason %q holds the key", res[i].Reason)
				}
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if srv.posts != tc.posts {
				t.Errorf("%d POSTs, want %d", srv.posts, tc.posts)
			}
			for _, n := range srv.sizes {
				if n > max(cfg.Batch, 1) && cfg.Batch > 0 {
					t.Errorf("a POST of %d requests, batch %d", n, cfg.Batch)
				}
			}
			for _, a := range srv.auth {
				if want := map[bool]string{true: "Bearer sk-verifier-secret-42"}[cfg.APIKeyEnv != ""]; a != want {
					t.Errorf("Authorization %q, want %q", a, want)
				}
			}
			s := c.Stats()
			s.Requests, s.LastStray = 0, ""
			if s != tc.stats {
				t.Errorf("stats %+v, want %+v", s, tc.stats)
			}
		})
	}
}

// TestHTTPConcurrentCallers: many goroutines share one HTTP client with a
// small batch and few POSTs in flight.
func TestHTTPConcurrentCallers(t *testing.T) {
	srv := newVerifierServer(t, func(w http.ResponseWriter, _ int, reqs []Request) { results(w, reqs) })
	c := open(t, Config{URL: srv.URL, Batch: 3, Concurrency: 2})
	var wg sync.WaitGroup
	for g := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var reqs []Request
			for i := range 10 {
				reqs = append(reqs, req(fmt.Sprintf("g%d-%d", g, i), fmt.Sprint(i%2), "1"))
			}
			for i, r := range c.Verify(context.Background(), reqs) {
				var d map[string]string
				if r.Score == nil || json.Unmarshal(r.Detail, &d) != nil || d["task_id"] != reqs[i].TaskID || *r.Score != float64(i%2) {
					t.Errorf("%s: %+v", reqs[i].TaskID, r)
				}
			}
		}()
	}
	wg.Wait()
}

// TestHTTPOpen: the handshake fails Open on a dead or wrong URL, naming
// the URL without its credentials.
func TestHTTPOpen(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	t.Setenv("UNSET_KEY_VAR", "")
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{URL: deadURL + "/v?token=abc123", Retries: 2}, []string{"/v: handshake (an empty POST): verifier unreachable:", "connection refused"}},
		{Config{URL: notFound.URL + "/verify"}, []string{`handshake (an empty POST): verifier answered 404 Not Found: "404 page not found\n"`}},
		{Config{URL: notFound.URL, APIKeyEnv: "UNSET_KEY_VAR"}, []string{"api_key_env names UNSET_KEY_VAR, which is not set"}},
	} {
		c, err := Open(context.Background(), tc.cfg)
		if err == nil {
			c.Close()
			t.Errorf("%+v: Open succeeded", tc.cfg)
			continue
		}
		for _, s := range tc.want {
			if !strings.Contains(err.Error(), s) || strings.Contains(err.Error(), "abc123") {
				t.Errorf("error %q lacks %q (or holds the token)", err, s)
			}
		}
	}
}
