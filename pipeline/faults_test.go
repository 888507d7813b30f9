package pipeline

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// settleGoroutines fails the test if more goroutines than before remain
// after a settle period (servers and pools wind down asynchronously).
func settleGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines running, %d before:\n%s", runtime.NumGoroutine(), before, buf)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A whole run against two endpoints, one dead (nothing listens) and one
// flaky (429 storms with Retry-After, 500s, resets, truncated and malformed
// bodies, empty choices, hangs past the timeout, slow replies), some samples
// failing for good: every sample of every task is in the output exactly
// once, either with a graded response or with its error and a null reward.
func TestExecuteFlakyFleet(t *testing.T) {
	before := runtime.NumGoroutine()
	tasks, answers := writeTasks(t, 30)
	inner := fakeserver.AnswerBySeed(answers)
	faults := []fakeserver.Reply{
		{Status: 429, RetryAfter: "0"}, {Status: 500}, {Fault: fakeserver.Reset},
		{Fault: fakeserver.Truncated, Text: "cut off"}, {Fault: fakeserver.Malformed},
		{Fault: fakeserver.EmptyChoices}, {Fault: fakeserver.Hang}, {Status: 503, RetryAfter: "0"},
	}
	var mu sync.Mutex
	attempts := map[int64]int{}
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		seed := *req.Seed
		mu.Lock()
		attempts[seed]++
		k := attempts[seed]
		mu.Unlock()
		switch {
		case seed%11 == 0:
			return fakeserver.Reply{Status: 502} // fails for good
		case seed%13 == 0:
			return fakeserver.Reply{Status: 400, Message: "prompt too long"} // not retryable
		case k <= int(seed%3):
			return faults[(int(seed)+k)%len(faults)]
		case seed%5 == 0:
			rep := inner(req)
			rep.Delay = 5 * time.Millisecond
			return rep
		}
		return inner(req)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() + "/v1"
	l.Close()

	cfg, err := ParseConfig("faults.yaml", strings.NewReader(fmt.Sprintf(`
name: faults
seed: 7
source: {kind: tasks, path: %s}
endpoint:
  base_urls: [%s, %s]
  model: policy
  max_in_flight: 12
  max_in_flight_per_endpoint: 8
  timeout: 200ms
  retries: 4
  backoff_initial: 1ms
  backoff_max: 10ms
  breaker_failures: 3
  breaker_cooldown: 50ms
sampling: {n: 4, max_tokens: 64}
output: {dir: %s}
`, tasks, dead, srv.BaseURL(), t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	allowFailures(cfg)
	m, err := Execute(context.Background(), cfg, JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	checkManifest(t, cfg.Output.Dir, m)
	if m.Status != export.StatusComplete || m.Endpoint != dead+","+srv.BaseURL() {
		t.Errorf("manifest status %s endpoint %q", m.Status, m.Endpoint)
	}
	rows := readAll(t, cfg.Output.Dir)
	if len(rows) != 120 {
		t.Fatalf("%d rows, want 120 (30 tasks x 4): nothing may be dropped", len(rows))
	}
	seen := map[string]bool{}
	failed := 0
	for _, r := range rows {
		key := fmt.Sprintf("%s/%d", r.TaskID, r.SampleIndex)
		if seen[key] {
			t.Errorf("duplicate row %s", key)
		}
		seen[key] = true
		seed := *r.Seed
		switch {
		case r.Error == nil:
			if r.Reward == nil || r.Response == "" || r.FinishReason == nil || seed%11 == 0 || seed%13 == 0 {
				t.Errorf("row %s (seed %d): response %q reward %v", key, seed, r.Response, r.Reward)
			}
		default:
			failed++
			// Which endpoint a retry lands on depends on timing, so the
			// exact attempt count does too; the form does not.
			e := *r.Error
			ok := strings.HasPrefix(e, "gave up after ") && strings.Contains(e, " attempt")
			if seed%13 == 0 && seed%11 != 0 && strings.HasPrefix(e, "not retryable") {
				ok = strings.HasSuffix(e, "; last: HTTP 400: prompt too long from "+srv.BaseURL())
			}
			if !ok || r.Reward != nil || r.RewardReason == nil || strings.Contains(e, "\n") {
				t.Errorf("row %s (seed %d): error %q reward %v", key, seed, e, r.Reward)
			}
		}
	}
	if failed == 0 || m.Rewards.Failed != int64(failed) {
		t.Errorf("%d failed rows, manifest says %d", failed, m.Rewards.Failed)
	}
	settleGoroutines(t, before)
}

// Only one of base_url and base_urls, every URL http(s) and listed once.
func TestEndpointConfigValidation(t *testing.T) {
	for yaml, want := range map[string]string{
		`{model: m}`: "endpoint.base_url: missing",
		`{base_url: "http://a/v1", base_urls: ["http://b/v1"], model: m}`:           "not both",
		`{base_urls: ["http://a/v1", "ftp://b"], model: m}`:                         `endpoint.base_urls: "ftp://b" is not an http(s) URL`,
		`{base_urls: ["http://a/v1", "http://a/v1"], model: m}`:                     "listed twice",
		`{base_url: "http://a/v1", model: m, retries: -1}`:                          "endpoint.retries",
		`{base_url: "http://a/v1", model: m, backoff_initial: 2s, backoff_max: 1s}`: "backoff_initial <= backoff_max",
		`{base_url: "http://a/v1", model: m, breaker_failures: -2}`:                 "endpoint.breaker_failures",
	} {
		_, err := ParseConfig("c.yaml", strings.NewReader("source: {kind: tasks, path: t.jsonl}\noutput: {dir: o}\nendpoint: "+yaml+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", yaml, err, want)
		}
	}
	cfg, err := ParseConfig("c.yaml", strings.NewReader("source: {kind: tasks, path: t.jsonl}\noutput: {dir: o}\nendpoint: {base_urls: [\"http://a:1/v1\", \"http://b:2/v1\"], model: m, max_in_flight: 16}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ep := cfg.Endpoint
	if ep.MaxInFlightPerEndpoint != 16 || ep.Retries != 6 || ep.BreakerFailures != 5 ||
		time.Duration(ep.BackoffInitial) != 500*time.Millisecond || time.Duration(ep.BreakerCooldown) != 10*time.Second {
		t.Errorf("defaults: %+v", ep)
	}
}
