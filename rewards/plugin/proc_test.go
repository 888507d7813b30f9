package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redraft/redraft/rollout"
)

// open starts a Client for cfg and closes it when the test ends.
func open(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func req(task, response, reference string) Request {
	return Request{TaskID: task, Response: response, Reference: reference, DataSource: "toy", Metadata: json.RawMessage(`{"level": 1}`)}
}

// want is what a Result should be: a score (nil for none), Failed, and
// texts its Reason must contain (none: it must be empty).
type want struct {
	score  *float64
	failed bool
	reason []string
}

func f(v float64) *float64 { return &v }

func check(t *testing.T, what string, got Result, w want) {
	t.Helper()
	switch {
	case (got.Score == nil) != (w.score == nil) || got.Score != nil && *got.Score != *w.score:
		t.Errorf("%s: score %v, want %v (reason %q)", what, fmtScore(got.Score), fmtScore(w.score), got.Reason)
	case got.Failed != w.failed:
		t.Errorf("%s: failed %v, want %v (reason %q)", what, got.Failed, w.failed, got.Reason)
	case len(w.reason) == 0 && got.Reason != "":
		t.Errorf("%s: reason %q, want none", what, got.Reason)
	}
	for _, s := range w.reason {
		if !strings.Contains(got.Reason, s) {
			t.Errorf("%s: reason %q lacks %q", what, got.Reason, s)
		}
	}
}

func fmtScore(s *float64) string {
	if s == nil {
		return "nil"
	}
	return fmt.Sprint(*s)
}

// TestSubprocessAnswers sends one request of each kind to the fake
// plug-in: good answers, the verifier's own nil, and every kind of
// malformed answer, each failing only its own request.
func TestSubprocessAnswers(t *testing.T) {
	c := open(t, Config{Command: helperCommand("echo"), Timeout: rollout.Duration(2 * time.Second)})
	if h := c.Hello(); h != (Hello{Protocol: Protocol, Name: "fake", Version: "0"}) {
		t.Errorf("hello %+v", h)
	}
	for _, tc := range []struct {
		name     string
		response string
		want     want
	}{
		{"correct", "42", want{score: f(1)}},
		{"wrong", "41", want{score: f(0)}},
		{"empty response", "", want{score: f(0)}},
		{"verifier's own nil with a reason", "honest", want{reason: []string{"cannot parse the response"}}},
		{"verifier's nil without a reason", "null", want{reason: []string{"the verifier gave no score and no reason"}}},
		{"NaN score", "nan", want{failed: true, reason: []string{"bad answer: score: not a finite number (NaN)"}}},
		{"score too large for a float64", "inf", want{failed: true, reason: []string{"bad answer: score: not a finite number", "1e999"}}},
		{"score a string", "string", want{failed: true, reason: []string{"bad answer: score: want a number or null, got the string", `0.5`}}},
		{"truncated JSON", "truncated", want{failed: true, reason: []string{"malformed answer (not JSON", `\"score\": 0.`}}},
		{"NaN in detail", "detail-nan", want{failed: true, reason: []string{"bad answer: detail: holds a number that is not finite"}}},
		{"an unknown id first", "unknown", want{score: f(0)}},
		{"prose instead of an answer", "prose", want{failed: true, reason: []string{"timeout after 2s", "answered no request", `"some library printed this"`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := c.Verify(context.Background(), []Request{req("t1", tc.response, "42")})
			if len(res) != 1 {
				t.Fatalf("%d results", len(res))
			}
			check(t, tc.response, res[0], tc.want)
			if tc.want.score != nil && tc.response != "unknown" {
				var d map[string]string
				if err := json.Unmarshal(res[0].Detail, &d); err != nil || d["task_id"] != "t1" || d["response"] != tc.response {
					t.Errorf("detail %s (%v)", res[0].Detail, err)
				}
				if res[0].Answer != tc.response || res[0].Correct == nil || *res[0].Correct != (tc.response == "42") {
					t.Errorf("answer %q correct %v", res[0].Answer, res[0].Correct)
				}
			}
		})
	}
	s := c.Stats()
	if s.Stray < 2 || !strings.Contains(s.LastStray, "some library printed this") {
		t.Errorf("stats %+v: want the unknown id and the prose line counted as stray", s)
	}
	if s.Requests != 12 || s.Scored != 4 || s.Unscored != 2 || s.Failed != 6 || s.Timeouts != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestSubprocessOutOfOrder: answers that come in reverse order still go
// to their own requests, and Verify returns them in request order.
func TestSubprocessOutOfOrder(t *testing.T) {
	c := open(t, Config{Command: helperCommand("reverse", "5"), Batch: 8})
	for round := range 3 {
		var reqs []Request
		for i := range 5 {
			reqs = append(reqs, req(fmt.Sprintf("t%d-%d", round, i), fmt.Sprint(i), "3"))
		}
		for i, r := range c.Verify(context.Background(), reqs) {
			wantScore := 0.0
			if i == 3 {
				wantScore = 1
			}
			check(t, reqs[i].TaskID, r, want{score: f(wantScore)})
			var d map[string]string
			if json.Unmarshal(r.Detail, &d) != nil || d["task_id"] != reqs[i].TaskID {
				t.Errorf("request %s got the answer %s", reqs[i].TaskID, r.Detail)
			}
		}
	}
}

// TestSubprocessConcurrentCallers: many goroutines share three plug-in
// processes that answer out of order; every request gets its own answer.
func TestSubprocessConcurrentCallers(t *testing.T) {
	c := open(t, Config{Command: helperCommand("shuffle"), Concurrency: 3, Batch: 4})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var reqs []Request
			for i := range 25 {
				reqs = append(reqs, req(fmt.Sprintf("g%d-%d", g, i), fmt.Sprintf("r%d", (g+i)%3), "r0"))
			}
			for i, r := range c.Verify(context.Background(), reqs) {
				var d map[string]string
				if r.Score == nil || json.Unmarshal(r.Detail, &d) != nil || d["task_id"] != reqs[i].TaskID || d["response"] != reqs[i].Response {
					t.Errorf("request %s: %+v", reqs[i].TaskID, r)
					continue
				}
				if want := map[bool]float64{true: 1, false: 0}[reqs[i].Response == "r0"]; *r.Score != want {
					t.Errorf("request %s: score %v, want %v", reqs[i].TaskID, *r.Score, want)
				}
			}
		}()
	}
	wg.Wait()
	if s := c.Stats(); s.Requests != 400 || s.Scored != 400 || s.Restarts != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestSubprocessCrashMidBatch: a plug-in that dies with requests in
// flight fails exactly those, with its exit status and stderr, and is
// started again for the next requests.
func TestSubprocessCrashMidBatch(t *testing.T) {
	c := open(t, Config{Command: helperCommand("crash", "4"), Batch: 4})
	reqs := []Request{req("a", "1", "1"), req("b", "2", "1"), req("c", "crash", "1"), req("d", "1", "1")}
	res := c.Verify(context.Background(), reqs)
	exited := want{failed: true, reason: []string{"verifier exited: exit status 3; stderr: boom: the verifier fell over"}}
	for i, w := range []want{{score: f(1)}, {score: f(0)}, exited, exited} {
		check(t, reqs[i].TaskID, res[i], w)
	}
	// Restarted: the next batch is answered.
	for i, r := range c.Verify(context.Background(), []Request{req("e", "1", "1"), req("f", "1", "1"), req("g", "1", "1"), req("h", "0", "1")}) {
		check(t, fmt.Sprint("after the restart ", i), r, want{score: f(map[bool]float64{true: 0, false: 1}[i == 3])})
	}
	if s := c.Stats(); s.Restarts != 1 {
		t.Errorf("stats %+v: want one restart", s)
	}
}

// TestSubprocessRestartsAreBounded: a plug-in that dies at every request
// is restarted Restarts times in a row, then given up.
func TestSubprocessRestartsAreBounded(t *testing.T) {
	c := open(t, Config{Command: helperCommand("die"), Restarts: 2})
	exited := want{failed: true, reason: []string{"verifier exited: exit status 1; stderr: dying on request"}}
	for i := range 3 {
		check(t, fmt.Sprint("request ", i), c.Verify(context.Background(), []Request{req("t", "x", "x")})[0], exited)
	}
	check(t, "after the last restart", c.Verify(context.Background(), []Request{req("t", "x", "x")})[0],
		want{failed: true, reason: []string{"verifier unavailable (not restarted after 2 restarts in a row without an answer): verifier exited: exit status 1"}})
	if s := c.Stats(); s.Restarts != 2 {
		t.Errorf("stats %+v: want two restarts", s)
	}
}

// TestSubprocessTimeout: a request without an answer gets the timeout;
// the plug-in, which answered nothing meanwhile, is killed as stuck and
// restarted for the next request.
func TestSubprocessTimeout(t *testing.T) {
	c := open(t, Config{Command: helperCommand("echo"), Timeout: rollout.Duration(time.Second)})
	check(t, "hung", c.Verify(context.Background(), []Request{req("t", "hang", "x")})[0],
		want{failed: true, reason: []string{"timeout after 1s", "answered nothing in 1s and was killed"}})
	check(t, "next", c.Verify(context.Background(), []Request{req("t", "x", "x")})[0], want{score: f(1)})
	if s := c.Stats(); s.Timeouts != 1 || s.Restarts != 1 {
		t.Errorf("stats %+v", s)
	}
}

// waitStray waits until the plug-in has written n stray lines (the "hang"
// request's sign that it arrived).
func waitStray(t *testing.T, c *Client, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for c.Stats().Stray < n {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the plug-in")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSubprocessCancelAndClose: a caller's canceled context ends its
// outstanding requests; Close ends the others and every later call.
func TestSubprocessCancelAndClose(t *testing.T) {
	c, err := Open(context.Background(), Config{Command: helperCommand("echo")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result)
	go func() { done <- c.Verify(ctx, []Request{req("t", "hang", "x")})[0] }()
	waitStray(t, c, 1)
	cancel()
	check(t, "canceled", <-done, want{failed: true, reason: []string{"canceled: context canceled"}})

	go func() { done <- c.Verify(context.Background(), []Request{req("t", "hang", "x")})[0] }()
	waitStray(t, c, 2)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	check(t, "in flight at Close", <-done, want{failed: true, reason: []string{"verifier closed"}})
	check(t, "after Close", c.Verify(context.Background(), []Request{req("t", "x", "x")})[0], want{failed: true, reason: []string{"verifier closed"}})
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestSubprocessEnvironment: the plug-in gets PATH, HOME, LANG, PYTHON*
// and what the config lists, and nothing else: no API key of the host's.
func TestSubprocessEnvironment(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-host-secret-0123456789")
	t.Setenv("HF_TOKEN", "hf_host_secret")
	t.Setenv("PYTHONUNBUFFERED", "1")
	t.Setenv("REDRAFT_PLUGIN_PASSED", "passed through")
	t.Setenv("PATH", "/usr/bin:/bin")
	c := open(t, Config{Command: helperCommand("echo"), Env: []string{"REDRAFT_PLUGIN_PASSED", "SET_HERE=value", "NOT_SET_ANYWHERE"}})
	r := c.Verify(context.Background(), []Request{req("t", "env", "x")})[0]
	var env map[string]string
	if err := json.Unmarshal(r.Detail, &env); err != nil {
		t.Fatalf("%+v: %v", r, err)
	}
	for _, k := range []string{"OPENAI_API_KEY", "HF_TOKEN", "NOT_SET_ANYWHERE"} {
		if v, ok := env[k]; ok {
			t.Errorf("the plug-in sees %s=%q", k, v)
		}
	}
	for k, v := range map[string]string{"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1", "REDRAFT_PLUGIN_PASSED": "passed through", "SET_HERE": "value"} {
		if env[k] != v {
			t.Errorf("the plug-in sees %s=%q, want %q", k, env[k], v)
		}
	}
	for k := range env {
		switch k {
		case "PATH", "HOME", "LANG", "PYTHONUNBUFFERED", "REDRAFT_PLUGIN_PASSED", "SET_HERE":
		default:
			if !strings.HasPrefix(k, "PYTHON") {
				t.Errorf("the plug-in sees %s", k)
			}
		}
	}
}

func TestChildEnv(t *testing.T) {
	host := []string{"PATH=/bin", "HOME=/root", "LANG=C.UTF-8", "PYTHONPATH=/lib", "OPENAI_API_KEY=sk-1", "AWS_SECRET_ACCESS_KEY=x", "KEEP=me", "LC_ALL=C"}
	for _, tc := range []struct {
		extra []string
		want  string
	}{
		{nil, "HOME=/root LANG=C.UTF-8 PATH=/bin PYTHONPATH=/lib"},
		{[]string{"KEEP", "ABSENT"}, "HOME=/root KEEP=me LANG=C.UTF-8 PATH=/bin PYTHONPATH=/lib"},
		{[]string{"PATH=/opt/bin", "NEW=1=2"}, "HOME=/root LANG=C.UTF-8 NEW=1=2 PATH=/opt/bin PYTHONPATH=/lib"},
		{[]string{"OPENAI_API_KEY"}, "HOME=/root LANG=C.UTF-8 OPENAI_API_KEY=sk-1 PATH=/bin PYTHONPATH=/lib"},
	} {
		if got := strings.Join(childEnv(host, tc.extra), " "); got != tc.want {
			t.Errorf("childEnv(%v) = %s, want %s", tc.extra, got, tc.want)
		}
	}
}

// TestSubprocessHandshake: Open fails, quoting the plug-in, when the
// first line is not the handshake.
func TestSubprocessHandshake(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"not a handshake", Config{Command: helperCommand("nohello")}, []string{`handshake: the first line is not {"protocol": "redraft-verifier/1", ...}: "hello there"`}},
		{"another protocol", Config{Command: helperCommand("wrongproto")}, []string{`handshake: it speaks "redraft-verifier/9", redraft speaks "redraft-verifier/1"`}},
		{"exits first", Config{Command: helperCommand("exitearly")}, []string{"it exited (exit status 2) before its first line", "stderr: Traceback (most recent call last): | ModuleNotFoundError: No module named 'reasoning_gym'"}},
		{"says nothing", Config{Command: helperCommand("silent"), StartTimeout: rollout.Duration(200 * time.Millisecond)}, []string{"no first line within 0.2s", "stderr: (empty)"}},
		{"no such program", Config{Command: []string{"/nonexistent/verifier"}}, []string{`verifier "/nonexistent/verifier" did not start`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Open(context.Background(), tc.cfg)
			if err == nil {
				c.Close()
				t.Fatal("Open succeeded")
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string // "" for valid
	}{
		{Config{Command: []string{"x"}}, ""},
		{Config{URL: "http://localhost:8080/verify"}, ""},
		{Config{}, "plugin.command: missing: give the plug-in's command, or a url"},
		{Config{Command: []string{"x"}, URL: "http://h/"}, "plugin: give command or url, not both"},
		{Config{Command: []string{""}}, "plugin.command: the program (the first word) is empty"},
		{Config{URL: "ftp://user:pw@h/x?key=1"}, `plugin.url: "ftp://h/x" is not an http(s) URL`},
		{Config{URL: "http://h/", Env: []string{"A"}}, "plugin.env: env and dir are for a command"},
		{Config{Command: []string{"x"}, APIKeyEnv: "K"}, "plugin.api_key_env: only for a url"},
		{Config{URL: "http://h/", APIKeyEnv: "sk-abc"}, "plugin.api_key_env: not an environment variable name"},
		{Config{Command: []string{"x"}, Env: []string{"OK", "BAD-NAME=1"}}, "plugin.env: entry 1: want NAME or NAME=VALUE"},
		{Config{Command: []string{"x"}, Batch: -1}, "plugin.batch: must be at least 1, got -1"},
		{Config{Command: []string{"x"}, Timeout: rollout.Duration(-time.Second)}, "plugin.timeout: must be > 0, got -1s"},
		{Config{URL: "http://h/", Retries: -2}, "plugin.retries: must be at least 1"},
	} {
		cfg := tc.cfg
		cfg.ApplyDefaults()
		err := cfg.Validate("plugin")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
	cfg := Config{URL: "http://h/"}
	cfg.ApplyDefaults()
	if cfg.Concurrency != DefaultHTTPConcurrency || cfg.Batch != DefaultBatch || cfg.Retries != DefaultRetries || time.Duration(cfg.Timeout) != DefaultTimeout {
		t.Errorf("defaults %+v", cfg)
	}
}
