package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// Whole runs against servers that misbehave as in issue 14: hung requests,
// answers without a message, answers too large to hold.

// readFailures reads failures.jsonl (none when the file is absent).
func readFailures(t *testing.T, dir string) []export.Failure {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, export.FailuresName))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []export.Failure
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var fl export.Failure
		if err := json.Unmarshal(sc.Bytes(), &fl); err != nil {
			t.Fatalf("failures.jsonl: %v", err)
		}
		out = append(out, fl)
	}
	return out
}

// With 2% of the samples hanging on every attempt, writing goes on: groups
// are written in input order, so a hung group holds back every group after
// it until its samples end, and they must end within the idle bound
// (streamed) or the sample deadline (not streamed), as failed samples with
// their reason, while the rest of the run keeps being written.
func TestExecuteHungRequestsKeepWriting(t *testing.T) {
	for _, tc := range []struct {
		name, endpoint, reason string
		// bound is how long a hung sample may take to fail.
		bound time.Duration
	}{
		{"streamed", "stream: true, idle_timeout: 300ms, timeout: 1m, retries: 2",
			"gave up after 2 attempts; last: stalled: no data for 300ms (endpoint.idle_timeout)", 2 * 300 * time.Millisecond},
		{"not streamed", "timeout: 400ms, sample_timeout: 1s, retries: 6",
			"no answer within endpoint.sample_timeout (1s)", time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			tasks, answers := writeTasks(t, 150)
			inner := fakeserver.AnswerBySeed(answers)
			srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
				if *req.Seed%50 == 7 {
					return fakeserver.Reply{Fault: fakeserver.Hang}
				}
				rep := inner(req)
				rep.Delay = 2 * time.Millisecond
				return rep
			})
			srv.NoLog = true
			cfg, err := ParseConfig("hung.yaml", strings.NewReader(fmt.Sprintf(`
name: hung
seed: 3
source: {kind: tasks, path: %q}
endpoint: {base_url: %s, model: policy, max_in_flight: 16, backoff_initial: 1ms, backoff_max: 5ms, %s}
sampling: {n: 4, max_tokens: 64}
pipeline: {groups_in_flight: 32}
output: {dir: %q}
`, tasks, srv.BaseURL(), tc.endpoint, t.TempDir())))
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var writes []time.Time
			start := time.Now()
			m, err := Execute(context.Background(), cfg, JobOptions{OnGroup: func(int64, int) {
				mu.Lock()
				writes = append(writes, time.Now())
				mu.Unlock()
			}})
			srv.Close()
			if err != nil || m.Status != export.StatusComplete {
				t.Fatalf("run: %v (status %s)", err, m.Status)
			}
			// Writing never stops for longer than a hung sample takes to
			// fail (plus slack for a loaded machine).
			gap, prev := time.Duration(0), start
			for _, w := range writes {
				gap, prev = max(gap, w.Sub(prev)), w
			}
			if limit := tc.bound + 2*time.Second; gap > limit {
				t.Errorf("writing stalled for %s (bound %s)", gap, limit)
			}
			if len(writes) != 150 {
				t.Errorf("%d groups written, want 150", len(writes))
			}
			// The hung samples are failed samples with their reason, in
			// the rows and in failures.jsonl.
			hung := 0
			for _, r := range readAll(t, cfg.Output.Dir) {
				if *r.Seed%50 != 7 {
					if r.Error != nil {
						t.Errorf("row %s/%d: %s", r.TaskID, r.SampleIndex, *r.Error)
					}
					continue
				}
				hung++
				if r.Error == nil || !strings.Contains(*r.Error, tc.reason) || r.Reward != nil {
					t.Errorf("hung row %s/%d: error %v, reward %v", r.TaskID, r.SampleIndex, r.Error, r.Reward)
				}
			}
			fails := readFailures(t, cfg.Output.Dir)
			if hung == 0 || len(fails) != hung || m.Failures == nil || m.Failures.Count != int64(hung) {
				t.Errorf("%d hung samples, %d lines in failures.jsonl, manifest %+v", hung, len(fails), m.Failures)
			}
			t.Logf("%d hung samples; longest pause in writing %s; run %s", hung, gap.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			settleGoroutines(t, before)
		})
	}
}

// A server that answers every request with a 200 whose choice has no
// message (or message null, or nothing generated) gives failed samples with
// their reason, each a line in failures.jsonl: not empty answers graded 0.
// (Such a server gives no sign of life, so its breaker would open and the
// requests wait for it; breaker_failures keeps the test short.)
func TestExecuteAnswersWithoutMessage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reply  fakeserver.Reply
		stream bool
		reason string
	}{
		{"no message", fakeserver.Reply{Fault: fakeserver.NoMessage, Text: "The answer is 4."}, false, "HTTP 200: choice has no message"},
		{"message null", fakeserver.Reply{Fault: fakeserver.NullMessage, Text: "The answer is 4."}, false, "HTTP 200: choice has no message"},
		{"nothing generated", fakeserver.Reply{Fault: fakeserver.EmptyGeneration}, false, "HTTP 200: empty answer with 0 completion tokens"},
		{"streamed, no deltas", fakeserver.Reply{Fault: fakeserver.NoMessage, Text: "The answer is 4."}, true, "HTTP 200: stream has no message deltas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tasks, _ := writeTasks(t, 5)
			srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return tc.reply })
			defer srv.Close()
			cfg, err := ParseConfig("nomsg.yaml", strings.NewReader(fmt.Sprintf(`
name: nomsg
source: {kind: tasks, path: %q}
endpoint: {base_url: %s, model: policy, retries: 2, backoff_initial: 1ms, backoff_max: 2ms, breaker_failures: 100, stream: %v}
sampling: {n: 2}
output: {dir: %q}
`, tasks, srv.BaseURL(), tc.stream, t.TempDir())))
			if err != nil {
				t.Fatal(err)
			}
			allowFailures(cfg)
			m, err := Execute(context.Background(), cfg, JobOptions{})
			if err != nil {
				t.Fatal(err)
			}
			rows := readAll(t, cfg.Output.Dir)
			for _, r := range rows {
				if r.Error == nil || !strings.Contains(*r.Error, tc.reason) || r.Reward != nil {
					t.Errorf("row %s/%d: error %v reward %v response %q", r.TaskID, r.SampleIndex, r.Error, r.Reward, r.Response)
				}
			}
			fails := readFailures(t, cfg.Output.Dir)
			if len(rows) != 10 || len(fails) != 10 || m.Failures == nil || m.Failures.Count != 10 || m.Rewards.Failed != 10 {
				t.Errorf("%d rows, %d failures.jsonl lines, manifest failures %+v, rewards.failed %d; want 10 of each",
					len(rows), len(fails), m.Failures, m.Rewards.Failed)
			}
			for _, f := range fails {
				if !strings.Contains(f.Error, tc.reason) {
					t.Errorf("failures.jsonl: %+v", f)
				}
			}
		})
	}
}

// An answer over endpoint.max_response_bytes fails its sample, once, with
// the limit in its reason; the run goes on.
func TestExecuteResponseTooLarge(t *testing.T) {
	tasks, answers := writeTasks(t, 6)
	inner := fakeserver.AnswerBySeed(answers)
	big := strings.Repeat("blah ", 30_000)
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		if *req.Seed%3 == 0 {
			return fakeserver.Reply{Text: big}
		}
		return inner(req)
	})
	defer srv.Close()
	cfg, err := ParseConfig("big.yaml", strings.NewReader(fmt.Sprintf(`
name: big
source: {kind: tasks, path: %q}
endpoint: {base_url: %s, model: policy, max_response_bytes: 64KiB, retries: 3, backoff_initial: 1ms, backoff_max: 2ms}
sampling: {n: 3}
output: {dir: %q}
`, tasks, srv.BaseURL(), t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	allowFailures(cfg)
	m, err := Execute(context.Background(), cfg, JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	big0 := 0
	for _, r := range readAll(t, cfg.Output.Dir) {
		if *r.Seed%3 != 0 {
			if r.Error != nil {
				t.Errorf("row %s/%d: %s", r.TaskID, r.SampleIndex, *r.Error)
			}
			continue
		}
		big0++
		want := "not retryable, after 1 attempt; last: HTTP 200: response of "
		if r.Error == nil || !strings.HasPrefix(*r.Error, want) || !strings.Contains(*r.Error, "over the limit of 64KiB (endpoint.max_response_bytes)") {
			t.Errorf("row %s/%d: %v", r.TaskID, r.SampleIndex, r.Error)
		}
	}
	if big0 == 0 || m.Failures == nil || m.Failures.Count != int64(big0) || srv.Count() != 18 {
		t.Errorf("%d too-large samples, manifest %+v, %d requests (want 18: none retried)", big0, m.Failures, srv.Count())
	}
}

// The endpoint settings of issue 14: defaults when left out, used as given,
// refused with key and line when 0 or negative.
func TestEndpointFaultSettings(t *testing.T) {
	parse := func(endpoint string) (*Config, error) {
		return ParseConfig("c.yaml", strings.NewReader("source: {kind: tasks, path: t.jsonl}\noutput: {dir: o}\nendpoint:\n  base_url: http://a/v1\n  model: m\n"+endpoint))
	}
	cfg, err := parse("")
	if err != nil {
		t.Fatal(err)
	}
	ep := cfg.Endpoint
	if ep.Stream || ep.MaxResponseBytes != 64<<20 || time.Duration(ep.IdleTimeout) != 2*time.Minute ||
		time.Duration(ep.BreakerWait) != 5*time.Minute || time.Duration(ep.SampleTimeout) != 30*time.Minute {
		t.Errorf("defaults: %+v", ep)
	}
	cfg, err = parse("  timeout: 1h\n  stream: true\n  max_response_bytes: 1GiB\n  idle_timeout: 10s\n  breaker_wait: 1m\n")
	if err != nil {
		t.Fatal(err)
	}
	ep = cfg.Endpoint
	if !ep.Stream || ep.MaxResponseBytes != 1<<30 || time.Duration(ep.IdleTimeout) != 10*time.Second ||
		time.Duration(ep.BreakerWait) != time.Minute || time.Duration(ep.SampleTimeout) != 3*time.Hour {
		t.Errorf("as given: %+v", ep)
	}
	if cfg, err = parse("  timeout: 0s\n"); err != nil || cfg.Endpoint.SampleTimeout != 0 {
		t.Errorf("timeout 0 (no bound): sample_timeout %v, %v", cfg.Endpoint.SampleTimeout, err)
	}
	for setting, want := range map[string]string{
		"  idle_timeout: 0s\n":                   "c.yaml:6: endpoint.idle_timeout: must be > 0",
		"  idle_timeout: -1s\n":                  "c.yaml:6: endpoint.idle_timeout: must be > 0",
		"  breaker_wait: 0s\n":                   "c.yaml:6: endpoint.breaker_wait: must be > 0",
		"  sample_timeout: -1s\n":                "c.yaml:6: endpoint.sample_timeout: must be >= 0",
		"  timeout: 10m\n  sample_timeout: 5m\n": "c.yaml:7: endpoint.sample_timeout: 5m0s is shorter than one attempt's endpoint.timeout (10m0s)",
		// ByteSize refuses these while decoding: the line, not the key.
		"  max_response_bytes: 0\n":  "line 6",
		"  max_response_bytes: -5\n": "line 6",
		"  idle_timeout: soon\n":     "line 6",
		"  stream: maybe\n":          "line 6",
	} {
		_, err := parse(setting)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", setting, err, want)
		}
	}
}
