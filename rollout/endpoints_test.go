package rollout

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
	"testing"
	"time"

	"github.com/redraft/redraft/rollout/fakeserver"
)

// noLeak records the goroutine count; the returned function fails the test
// if, after a settle period, more goroutines run than before. Call it after
// closing servers and Endpoints.
func noLeak(t *testing.T) func() {
	t.Helper()
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines running, %d before the test:\n%s", n, before, buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// testAPIKey is the key the fleets of fastConfig send.
const testAPIKey = "sk-test-key-0123456789"

// fastConfig retries quickly so tests do not sleep.
func fastConfig(urls ...string) EndpointConfig {
	return EndpointConfig{
		BaseURLs: urls, Model: "m",
		// Generous enough that a normal reply never times out on a loaded
		// CI machine (the counts below are exact); hangs still end quickly.
		Timeout: Duration(1500 * time.Millisecond), Retries: 4,
		BackoffInitial: Duration(time.Millisecond), BackoffMax: Duration(5 * time.Millisecond),
		BreakerFailures: 1000, BreakerCooldown: Duration(time.Hour),
	}
}

// newEndpoints builds cfg's fleet with testAPIKey.
func newEndpoints(t *testing.T, cfg EndpointConfig) *Endpoints {
	t.Helper()
	e, err := buildEndpoints(cfg, testAPIKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func seedReq(seed int64) Request {
	mt := 8
	return Request{Messages: []Message{{Role: "user", Content: "What is 2+2?"}}, Seed: seed, Sampling: Sampling{MaxTokens: &mt}}
}

// attemptCounter counts attempts per seed, so a responder can fail the
// first k attempts of each request.
type attemptCounter struct {
	mu sync.Mutex
	n  map[int64]int
}

func (c *attemptCounter) next(seed int64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[int64]int{}
	}
	c.n[seed]++
	return c.n[seed]
}

const okText = "Two plus two. The answer is 4."

// Every retryable fault is retried until the request succeeds; every other
// failure is reported after one attempt; truncation is never retried. The
// same holds for streamed answers.
func TestEndpointsRetryClassification(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) { testRetryClassification(t, stream) })
	}
}

func testRetryClassification(t *testing.T, stream bool) {
	cases := []struct {
		name      string
		fault     fakeserver.Reply
		failFirst int // attempts that get the fault (then a normal reply)
		attempts  int // want
		errHas    string
	}{
		{"429", fakeserver.Reply{Status: 429}, 2, 3, ""},
		{"408", fakeserver.Reply{Status: 408}, 1, 2, ""},
		{"500", fakeserver.Reply{Status: 500}, 3, 4, ""},
		{"502 html body", fakeserver.Reply{Status: 502, Message: "<html>\n<body>Bad Gateway</body>\n</html>"}, 1, 2, ""},
		{"503", fakeserver.Reply{Status: 503}, 1, 2, ""},
		{"hang past timeout", fakeserver.Reply{Fault: fakeserver.Hang}, 1, 2, ""},
		{"slow past timeout", fakeserver.Reply{Delay: 4 * time.Second, Text: okText}, 1, 2, ""},
		{"connection reset", fakeserver.Reply{Fault: fakeserver.Reset}, 2, 3, ""},
		{"truncated body", fakeserver.Reply{Fault: fakeserver.Truncated, Text: okText}, 1, 2, ""},
		{"malformed JSON", fakeserver.Reply{Fault: fakeserver.Malformed}, 1, 2, ""},
		{"empty choices", fakeserver.Reply{Fault: fakeserver.EmptyChoices, Text: okText}, 2, 3, ""},
		{"stall mid-body past timeout", fakeserver.Reply{Fault: fakeserver.Stall, Text: okText}, 1, 2, ""},
		{"no message", fakeserver.Reply{Fault: fakeserver.NoMessage, Text: okText}, 1, 2, ""},
		{"null message", fakeserver.Reply{Fault: fakeserver.NullMessage, Text: okText}, 2, 3, ""},
		{"nothing generated", fakeserver.Reply{Fault: fakeserver.EmptyGeneration}, 1, 2, ""},
		{"400 not retried", fakeserver.Reply{Status: 400, Message: "bad request"}, 10, 1, "HTTP 400: bad request"},
		{"401 not retried", fakeserver.Reply{Status: 401}, 10, 1, "HTTP 401"},
		{"404 not retried", fakeserver.Reply{Status: 404}, 10, 1, "HTTP 404"},
		{"413 not retried", fakeserver.Reply{Status: 413}, 10, 1, "HTTP 413"},
		{"always 503", fakeserver.Reply{Status: 503}, 10, 4, "gave up after 4 attempts; last: HTTP 503: injected failure from http://"},
		{"always reset", fakeserver.Reply{Fault: fakeserver.Reset}, 10, 4, "gave up after 4 attempts; last: no response:"},
		{"always hangs", fakeserver.Reply{Fault: fakeserver.Hang}, 10, 4, "gave up after 4 attempts; last: timeout after 1.5s"},
		{"always empty", fakeserver.Reply{Fault: fakeserver.EmptyChoices}, 10, 4, "HTTP 200: response has no choices"},
		{"always no message", fakeserver.Reply{Fault: fakeserver.NoMessage, Text: okText}, 10, 4, "HTTP 200: "},
		{"always nothing generated", fakeserver.Reply{Fault: fakeserver.EmptyGeneration}, 10, 4, "HTTP 200: empty answer with 0 completion tokens"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check := noLeak(t)
			var counter attemptCounter
			srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
				if counter.next(*req.Seed) <= tc.failFirst {
					return tc.fault
				}
				return fakeserver.Reply{Text: okText}
			})
			cfg := fastConfig(srv.BaseURL())
			cfg.Stream = stream
			e := newEndpoints(t, cfg)
			resp, err := e.Sample(context.Background(), seedReq(7))
			if tc.errHas == "" {
				if err != nil {
					t.Fatalf("want success after %d attempts, got %v", tc.attempts, err)
				}
				if resp.Text != okText || resp.Attempts != tc.attempts || resp.Endpoint != srv.BaseURL() || resp.FinishReason != "stop" {
					t.Errorf("response %+v, want %d attempts", resp, tc.attempts)
				}
			} else {
				var rf *RequestFailure
				if !errors.As(err, &rf) {
					t.Fatalf("want a RequestFailure, got %v", err)
				}
				if rf.Attempts != tc.attempts || !strings.Contains(err.Error(), tc.errHas) {
					t.Errorf("attempts %d (want %d), error %q (want it to contain %q)", rf.Attempts, tc.attempts, err, tc.errHas)
				}
				if strings.ContainsAny(err.Error(), "\n\r") || strings.Contains(err.Error(), "sk-test-key") {
					t.Errorf("error is not one clean line: %q", err)
				}
			}
			if got := srv.Count(); got != int64(tc.attempts) {
				t.Errorf("server saw %d requests, want %d", got, tc.attempts)
			}
			srv.Close()
			e.Close()
			check()
		})
	}
}

// A response cut off by max_tokens is data: returned after one attempt.
func TestEndpointsNeverRetryLength(t *testing.T) {
	srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply {
		return fakeserver.Reply{Text: "one two three four five six seven eight nine ten eleven"}
	})
	defer srv.Close()
	e := newEndpoints(t, fastConfig(srv.BaseURL()))
	defer e.Close()
	resp, err := e.Sample(context.Background(), seedReq(1))
	if err != nil || resp.FinishReason != "length" || resp.Attempts != 1 || resp.Text != "one two three four five six seven eight" {
		t.Fatalf("resp %+v err %v", resp, err)
	}
	if srv.Count() != 1 {
		t.Errorf("%d requests for a truncated response", srv.Count())
	}
}

// An answer given only in reasoning_content is kept, with empty content,
// and is not mistaken for an empty response.
func TestEndpointsReasoningOnly(t *testing.T) {
	srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply {
		return fakeserver.Reply{Reasoning: "2 and 2 make 4. The answer is 4."}
	})
	defer srv.Close()
	e := newEndpoints(t, fastConfig(srv.BaseURL()))
	defer e.Close()
	tasks := &sliceTasks{tasks: []Task{{ID: "t", Messages: []Message{{Role: "user", Content: "2+2?"}}}}}
	groups := runGenerator(t, &Generator{Tasks: tasks, Policy: e, Samples: 2, MaxInFlight: 2})
	for _, s := range groups[0].Samples {
		if s.Err != "" || s.Text != "" || s.Reasoning != "2 and 2 make 4. The answer is 4." || s.Attempts != 1 {
			t.Errorf("sample %+v", s)
		}
	}
}

// The API key is sent, but never appears in an error, even when the server
// echoes it.
func TestEndpointsScrubAPIKey(t *testing.T) {
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		return fakeserver.Reply{Status: 401, Message: "Incorrect API key provided: " + req.Authorization}
	})
	defer srv.Close()
	cfg := fastConfig(srv.BaseURL())
	e := newEndpoints(t, cfg)
	defer e.Close()
	_, err := e.Sample(context.Background(), seedReq(1))
	if err == nil || strings.Contains(err.Error(), testAPIKey) || !strings.Contains(err.Error(), "[api key]") {
		t.Fatalf("error %q", err)
	}
	if got := srv.Requests()[0].Authorization; got != "Bearer "+testAPIKey {
		t.Errorf("Authorization %q", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		" 120 ":                         2 * time.Minute,
		"0":                             0,
		"-5":                            0,
		"soon":                          0,
		"99999999":                      maxRetryAfter,
		"Thu, 02 Jan 2025 03:04:15 GMT": 10 * time.Second,
		"Thu, 02 Jan 2025 03:00:00 GMT": 0,
		"Fri, 03 Jan 2025 03:04:05 GMT": maxRetryAfter,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("Retry-After %q: %v, want %v", v, got, want)
		}
	}
}

// A 429 with Retry-After holds the endpoint back for that long: the retry
// (and any other request) waits at least that long, even though the backoff
// alone would retry at once.
func TestEndpointsHonourRetryAfter(t *testing.T) {
	for _, form := range []string{"seconds", "date"} {
		t.Run(form, func(t *testing.T) {
			var mu sync.Mutex
			var times []time.Time
			srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
				mu.Lock()
				defer mu.Unlock()
				times = append(times, time.Now())
				if len(times) == 1 {
					ra := "1"
					if form == "date" {
						ra = time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)
					}
					return fakeserver.Reply{Status: 429, RetryAfter: ra}
				}
				return fakeserver.Reply{Text: okText}
			})
			defer srv.Close()
			e := newEndpoints(t, fastConfig(srv.BaseURL()))
			defer e.Close()
			resp, err := e.Sample(context.Background(), seedReq(1))
			if err != nil || resp.Attempts != 2 {
				t.Fatalf("resp %+v err %v", resp, err)
			}
			// HTTP dates have whole seconds, so "now + 2s" is at least 1s away.
			if gap := times[1].Sub(times[0]); gap < 900*time.Millisecond {
				t.Errorf("retried after %v, before the Retry-After", gap)
			}
		})
	}
}

// A failing endpoint's breaker opens after BreakerFailures consecutive
// failures; while open, requests go to the healthy endpoint only.
func TestEndpointsBreakerOpens(t *testing.T) {
	check := noLeak(t)
	bad := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{Status: 500} })
	good := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{Text: okText} })
	cfg := fastConfig(bad.BaseURL(), good.BaseURL())
	cfg.BreakerFailures = 3
	e := newEndpoints(t, cfg)
	for i := range 40 {
		resp, err := e.Sample(context.Background(), seedReq(int64(i)))
		if err != nil || resp.Endpoint != good.BaseURL() {
			t.Fatalf("request %d: %+v %v", i, resp, err)
		}
	}
	if bad.Count() != 3 || good.Count() != 40 {
		t.Errorf("bad endpoint saw %d requests (want 3, then open), good %d", bad.Count(), good.Count())
	}
	st := e.States()
	if st[0].Breaker != "open" || st[0].Failed != 3 || st[1].Breaker != "closed" || st[1].Served != 40 {
		t.Errorf("states %+v", st)
	}
	bad.Close()
	good.Close()
	e.Close()
	check()
}

// After the cool-down exactly one probe goes to an open endpoint while the
// others keep using the healthy one; the probe's success closes the breaker.
func TestEndpointsHalfOpenProbe(t *testing.T) {
	check := noLeak(t)
	release := make(chan struct{})
	var n atomic.Int64
	flaky := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply {
		switch n.Add(1) {
		case 1, 2:
			return fakeserver.Reply{Status: 503}
		case 3:
			<-release // the probe, held until the test has seen the rest
		}
		return fakeserver.Reply{Text: okText}
	})
	good := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{Text: okText} })
	cfg := fastConfig(flaky.BaseURL(), good.BaseURL())
	cfg.BreakerFailures, cfg.BreakerCooldown, cfg.Timeout = 2, Duration(20*time.Millisecond), 0
	e := newEndpoints(t, cfg)
	ctx := context.Background()
	// Two requests, each failing once on flaky: the breaker opens.
	for i := range 2 {
		if _, err := e.Sample(ctx, seedReq(int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if st := e.States(); st[0].Breaker != "open" {
		t.Fatalf("states %+v", st)
	}
	time.Sleep(2 * time.Duration(cfg.BreakerCooldown))
	var wg sync.WaitGroup
	var probe atomic.Value
	done := make(chan string, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.Sample(ctx, seedReq(int64(100+i)))
			if err != nil {
				t.Error(err)
				done <- ""
				return
			}
			if resp.Endpoint == flaky.BaseURL() {
				probe.Store(i)
				return
			}
			done <- resp.Endpoint
		}()
	}
	// One of the 20 is the probe, held by the server; the other 19 finish on
	// the good endpoint without touching the half-open one. (The probe may
	// reach the server after the others finish: wait for it.)
	for range 19 {
		<-done
	}
	for deadline := time.Now().Add(5 * time.Second); flaky.Count() < 3 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if got := flaky.Count(); got != 3 {
		t.Errorf("half-open endpoint saw %d requests, want 2 failures + 1 probe", got)
	}
	close(release)
	wg.Wait()
	if probe.Load() == nil {
		t.Error("no request was the probe")
	}
	if st := e.States(); st[0].Breaker != "closed" {
		t.Errorf("after a successful probe: %+v", st)
	}
	flaky.Close()
	good.Close()
	e.Close()
	check()
}

// With every breaker open a request waits for the cool-down instead of
// failing, and succeeds when the fleet recovers; a dead fleet fails every
// request once its attempts or its BreakerWait are spent, naming the
// breaker waits. Waiting uses no attempt.
func TestEndpointsAllOpenWait(t *testing.T) {
	check := noLeak(t)
	var n atomic.Int64
	srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply {
		if n.Add(1) <= 2 {
			return fakeserver.Reply{Status: 500}
		}
		return fakeserver.Reply{Text: okText}
	})
	cfg := fastConfig(srv.BaseURL())
	cfg.BreakerFailures, cfg.BreakerCooldown, cfg.Retries = 2, Duration(30*time.Millisecond), 5
	e := newEndpoints(t, cfg)
	resp, err := e.Sample(context.Background(), seedReq(1))
	if err != nil || resp.Attempts != 3 {
		t.Fatalf("resp %+v err %v", resp, err)
	}
	srv.Close()
	e.Close()

	// A dead fleet: nothing listens on either URL.
	dead := []string{deadURL(t), deadURL(t)}
	cfg = fastConfig(dead...)
	cfg.BreakerFailures, cfg.BreakerCooldown, cfg.Retries = 1, Duration(20*time.Millisecond), 4
	cfg.BreakerWait = Duration(200 * time.Millisecond)
	e = newEndpoints(t, cfg)
	var wg sync.WaitGroup
	errs := make([]error, 16)
	start := time.Now()
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.Sample(context.Background(), seedReq(int64(i)))
		}()
	}
	wg.Wait()
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("a dead fleet took %s to fail 16 requests", el)
	}
	waited, outOfTime := 0, 0
	for i, err := range errs {
		var rf *RequestFailure
		if !errors.As(err, &rf) || rf.Attempts > 4 || !strings.Contains(err.Error(), "gave up after") {
			t.Errorf("request %d: %v", i, err)
			continue
		}
		if rf.BreakerWaited > time.Duration(cfg.BreakerWait)+100*time.Millisecond {
			t.Errorf("request %d waited %s for breakers, bound %s", i, rf.BreakerWaited, cfg.BreakerWait)
		}
		if rf.BreakerWaits > 0 {
			waited++
			if !strings.Contains(err.Error(), "waiting for open circuit breakers") {
				t.Errorf("request %d: %q does not mention the breakers", i, err)
			}
		}
		if rf.Reason != "" {
			outOfTime++
			if !strings.Contains(err.Error(), "circuit breaker is open") {
				t.Errorf("request %d: %q", i, err)
			}
		}
	}
	if waited == 0 || outOfTime == 0 {
		t.Errorf("%d requests waited for an open breaker, %d ran out of breaker wait", waited, outOfTime)
	}
	e.Close()
	check()
}

// deadURL is a base URL where nothing listens (connection refused).
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/v1"
}

// No endpoint ever has more than MaxInFlight requests, and the least loaded
// endpoint gets the next one, so both share the load.
func TestEndpointsConcurrencyLimitAndBalance(t *testing.T) {
	check := noLeak(t)
	mk := func(peak *atomic.Int64) *fakeserver.Server {
		var cur atomic.Int64
		return fakeserver.New(func(*fakeserver.Request) fakeserver.Reply {
			c := cur.Add(1)
			for {
				p := peak.Load()
				if c <= p || peak.CompareAndSwap(p, c) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
			cur.Add(-1)
			return fakeserver.Reply{Text: okText}
		})
	}
	var peakA, peakB atomic.Int64
	a, b := mk(&peakA), mk(&peakB)
	cfg := fastConfig(a.BaseURL(), b.BaseURL())
	cfg.MaxInFlightPerEndpoint = 3
	e := newEndpoints(t, cfg)
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.Sample(context.Background(), seedReq(int64(i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if peakA.Load() > 3 || peakB.Load() > 3 {
		t.Errorf("peak in flight %d and %d, limit 3", peakA.Load(), peakB.Load())
	}
	if a.Count() == 0 || b.Count() == 0 || a.Count()+b.Count() != 60 {
		t.Errorf("requests %d + %d", a.Count(), b.Count())
	}
	a.Close()
	b.Close()
	e.Close()
	check()
}

// Cancelling the caller's context ends waiting and hanging requests at once,
// without retrying them, and leaves no goroutine behind.
func TestEndpointsCancel(t *testing.T) {
	check := noLeak(t)
	srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{Fault: fakeserver.Hang} })
	cfg := fastConfig(srv.BaseURL())
	cfg.Timeout, cfg.MaxInFlightPerEndpoint = 0, 2 // requests beyond 2 wait for a slot
	e := newEndpoints(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.Sample(ctx, seedReq(int64(i)))
		}()
	}
	for srv.Count() < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "cancelled after") {
			t.Errorf("request %d: %v", i, err)
		}
	}
	if srv.Count() != 2 {
		t.Errorf("%d requests sent, want 2 (no retries after cancel)", srv.Count())
	}
	srv.Close()
	e.Close()
	check()
}

// sliceTasks is a TaskSource over a slice.
type sliceTasks struct {
	tasks []Task
	i     int
}

func (s *sliceTasks) Next(ctx context.Context) (Task, error) {
	if s.i == len(s.tasks) {
		return Task{}, io.EOF
	}
	s.i++
	return s.tasks[s.i-1], nil
}

func (s *sliceTasks) Close() error { return nil }

// runGenerator drives g to the end and returns its groups by Seq, releasing
// window slots as a pipeline would.
func runGenerator(t *testing.T, g *Generator) []*Group {
	t.Helper()
	w := NewWindow(8)
	out := make(chan *Group)
	errc := make(chan error, 1)
	go func() {
		errc <- g.Produce(context.Background(), w, out)
		close(out)
	}()
	var groups []*Group
	for grp := range out {
		groups = append(groups, grp)
		w.Release()
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	byseq := make([]*Group, len(groups))
	for _, grp := range groups {
		if grp.Seq < 0 || int(grp.Seq) >= len(groups) || byseq[grp.Seq] != nil {
			t.Fatalf("group seq %d duplicated or out of range", grp.Seq)
		}
		byseq[grp.Seq] = grp
	}
	return byseq
}

// A storm of every fault on two endpoints: every sample of every task ends
// with a response or an error naming its attempts and last status; none is
// lost or duplicated, and no goroutine outlives the run.
func TestGeneratorFaultStorm(t *testing.T) {
	check := noLeak(t)
	faults := []fakeserver.Reply{
		{Status: 429, RetryAfter: "0"}, {Status: 500}, {Status: 503, RetryAfter: "0"},
		{Fault: fakeserver.Hang}, {Fault: fakeserver.Reset}, {Fault: fakeserver.Truncated, Text: okText},
		{Fault: fakeserver.Malformed}, {Fault: fakeserver.EmptyChoices}, {Delay: 20 * time.Millisecond, Text: okText},
		{Reasoning: "only here: the answer is 4"}, {Text: okText}, {Text: okText},
	}
	var counter attemptCounter
	respond := func(req *fakeserver.Request) fakeserver.Reply {
		k := counter.next(*req.Seed)
		return faults[(int(*req.Seed)+3*k)%len(faults)]
	}
	a, b := fakeserver.New(respond), fakeserver.New(respond)
	cfg := fastConfig(a.BaseURL(), b.BaseURL())
	cfg.Timeout, cfg.Retries, cfg.MaxInFlightPerEndpoint = Duration(100*time.Millisecond), 3, 6
	cfg.BreakerFailures, cfg.BreakerCooldown = 4, Duration(10*time.Millisecond)
	e := newEndpoints(t, cfg)
	var tasks []Task
	for i := range 40 {
		tasks = append(tasks, Task{ID: fmt.Sprint("task-", i), Messages: []Message{{Role: "user", Content: fmt.Sprint("q", i)}}})
	}
	groups := runGenerator(t, &Generator{Tasks: &sliceTasks{tasks: tasks}, Policy: e, Samples: 4, MaxInFlight: 16})
	if len(groups) != 40 {
		t.Fatalf("%d groups, want 40", len(groups))
	}
	ok, failed := 0, 0
	for gi, grp := range groups {
		if grp.Task.ID != tasks[gi].ID || len(grp.Samples) != 4 {
			t.Fatalf("group %d: task %s with %d samples", gi, grp.Task.ID, len(grp.Samples))
		}
		for si, s := range grp.Samples {
			switch {
			case s.Index != si:
				t.Errorf("group %d sample %d has index %d", gi, si, s.Index)
			case s.Err == "" && (s.Text != "" || s.Reasoning != "") && s.Attempts >= 1 && s.Endpoint != "":
				ok++
			// A request either failed its last attempt, or found every
			// breaker open with no budget left (possibly before sending).
			case s.Err != "" && strings.HasPrefix(s.Err, fmt.Sprintf("gave up after %d attempt", s.Attempts)) &&
				(strings.Contains(s.Err, "; last: ") || strings.Contains(s.Err, "circuit breaker is open")) &&
				!strings.ContainsAny(s.Err, "\r\n") && !strings.Contains(s.Err, testAPIKey):
				failed++
			default:
				t.Errorf("group %d sample %d: %+v", gi, si, s)
			}
		}
	}
	if ok == 0 || failed == 0 {
		t.Errorf("%d ok, %d failed: the storm should produce both", ok, failed)
	}
	a.Close()
	b.Close()
	e.Close()
	check()
}

// Patched fields end up exactly once with the configured value, on the fast
// path (key absent) and on the slow one (key present, or mentioned in a
// message).
func TestPatchJSON(t *testing.T) {
	patch := []patchField{{"temperature", 0.0}, {"max_tokens", 5}}
	for _, body := range []string{
		`{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
		`{}`,
		`{"model":"m","temperature":0.7}`,
		`{"model":"m","messages":[{"role":"user","content":"set \"temperature\": 2"}]}`,
	} {
		out, err := patchJSON([]byte(body), patch)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.Token() // {
		keys := map[string]int{}
		for dec.More() {
			k, _ := dec.Token()
			keys[k.(string)]++
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("%s -> %s: %v", body, out, err)
			}
		}
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s -> %s: %v", body, out, err)
		}
		if keys["temperature"] != 1 || keys["max_tokens"] != 1 || got["temperature"] != 0.0 || got["max_tokens"] != 5.0 {
			t.Errorf("%s -> %s", body, out)
		}
	}
}
