package pipeline

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// Judges, critics and step judges are endpoint sections like the policy's,
// with the helper defaults: 3 attempts of at most 2m, 30s of breaker wait.
func TestHelperEndpointDefaults(t *testing.T) {
	c, err := ParseConfig("c.yaml", strings.NewReader(`source: {kind: tasks, path: t.jsonl}
endpoint: {base_url: http://h/v1, model: m}
sampling: {n: 2}
output: {dir: o}
critique: {mode: cot, critic: {base_urls: [http://c1/v1, http://c2/v1], model: cm, retries: 5}}
reward:
  weights: {judge: 1}
  judges: [{base_url: http://j/v1, model: jm, template: correctness, timeout: 30s}]
`))
	if err != nil {
		t.Fatal(err)
	}
	d := rollout.HelperDefaults
	j := c.Reward.Judges[0].EndpointConfig
	if j.Retries != d.Retries || j.Retries != 3 || time.Duration(j.BreakerWait) != 30*time.Second || time.Duration(j.Timeout) != 30*time.Second ||
		time.Duration(j.SampleTimeout) != 90*time.Second || j.APIKeyEnv != "OPENAI_API_KEY" || j.MaxInFlight != 64 || j.MaxInFlightPerEndpoint != 64 {
		t.Errorf("judge defaults: %+v", j)
	}
	cr := c.Critique.Critic
	if cr.Retries != 5 || time.Duration(cr.Timeout) != 2*time.Minute || time.Duration(cr.SampleTimeout) != 6*time.Minute || len(cr.URLs()) != 2 {
		t.Errorf("critic: %+v", cr)
	}
	// The policy keeps its own.
	if ep := c.Endpoint; ep.Retries != 6 || time.Duration(ep.BreakerWait) != 5*time.Minute || time.Duration(ep.Timeout) != 10*time.Minute {
		t.Errorf("policy defaults: %+v", ep)
	}
	// Every key is checked and named with its line.
	for _, tt := range []struct{ yaml, want string }{
		{"    - {base_url: http://j/v1, model: jm, template: correctness, retries: 0}\n", "c.yaml:6: reward.judges[0].retries: must be at least 1 (the first attempt), got 0"},
		{"    - {base_url: http://j/v1, model: jm, template: correctness, breaker_wait: 0s}\n", "c.yaml:6: reward.judges[0].breaker_wait: must be > 0, got 0s (leave the key out for the default, 30s)"},
		{"    - {base_urls: [http://j/v1, http://j/v1], model: jm, template: correctness}\n", `reward.judges[0].base_urls: "http://j/v1" is listed twice`},
		{"    - {model: jm, template: correctness}\n", "c.yaml:6: reward.judges[0].base_url: missing"},
		{"    - base_url: http://j/v1\n      model: jm\n      sample_timeout: 1m\n      timeout: 2m\n", "c.yaml:8: reward.judges[0].sample_timeout: 1m0s is shorter than one attempt's reward.judges[0].timeout (2m0s)"},
	} {
		_, err := ParseConfig("c.yaml", strings.NewReader("source: {kind: rollouts, path: r.jsonl}\noutput: {dir: o}\nreward:\n  weights: {judge: 1}\n  judges:\n"+tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("got %v, want %q", err, tt.want)
		}
	}
}

// A judge that answers 503 to the first two attempts of every request is
// retried, as the policy would be, and every response gets its score; one
// that always answers 503 gets 3 attempts per request (the default), and the
// judge component is null with the reason.
func TestJudgeRetried(t *testing.T) {
	for _, failures := range []int{2, 1000} {
		t.Run(fmt.Sprint(min(failures, 3), " failures"), func(t *testing.T) {
			tasks, answers := writeTasks(t, 4)
			policy := fakeserver.New(fakeserver.AnswerBySeed(answers))
			defer policy.Close()
			var mu sync.Mutex
			attempts := map[string]int{} // by prompt
			judgeSrv := fakeserver.New(func(r *fakeserver.Request) fakeserver.Reply {
				key := fmt.Sprint(r.Messages)
				mu.Lock()
				attempts[key]++
				k := attempts[key]
				mu.Unlock()
				if k <= failures {
					return fakeserver.Reply{Status: 503, Message: "loading"}
				}
				return fakeserver.Reply{Text: "Score: 7"}
			})
			defer judgeSrv.Close()
			// The breaker is kept shut so that the concurrent first
			// attempts do not open it; the retries are the default.
			cfg := episodeConfig(t, policy, tasks, fmt.Sprintf(`reward:
  weights: {verifiable: 1, judge: 0.5}
  judges: [{name: j1, base_url: %s, model: judge-model, template: correctness, backoff_initial: 1ms, backoff_max: 2ms, breaker_failures: 1000}]
`, judgeSrv.BaseURL()))
			if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
				t.Fatal(err)
			}
			rows := readAll(t, cfg.Output.Dir)
			if len(rows) != 16 {
				t.Fatalf("%d rows", len(rows))
			}
			for _, r := range rows {
				s := r.JudgeScores
				switch {
				case len(s) != 1:
					t.Fatalf("judge scores %+v", s)
				case failures == 2 && (s[0].Score == nil || *s[0].Score != 0.7):
					t.Fatalf("not scored after 2 failures: %+v (%v)", s[0], deref(s[0].Reason))
				case failures > 2 && (s[0].Score != nil || !strings.Contains(deref(s[0].Reason), "gave up after 3 attempts") || !strings.Contains(deref(s[0].Reason), "HTTP 503")):
					t.Fatalf("always 503: score %v, reason %q", s[0].Score, deref(s[0].Reason))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			var failed, total int
			for _, k := range attempts {
				failed += min(k, failures)
				total += k
			}
			switch {
			case failures == 2 && failed != 2*len(attempts):
				// Every distinct prompt failed twice and was retried.
				t.Errorf("%d failed attempts over %d prompts", failed, len(attempts))
			case failures > 2 && total != 3*len(rows):
				t.Errorf("%d attempts for %d judged rows, want 3 each", total, len(rows))
			}
		})
	}
}

// A dead judge (nothing listens) fails its samples' judge component, null
// with the reason, within its bounds: 3 quick attempts, then at most
// breaker_wait waiting for its open breaker; the run completes.
func TestDeadJudgeFailsFast(t *testing.T) {
	tasks, answers := writeTasks(t, 6)
	policy := fakeserver.New(fakeserver.AnswerBySeed(answers))
	defer policy.Close()
	closed := httptest.NewServer(nil)
	dead := closed.URL + "/v1"
	closed.Close()
	const wait = 300 * time.Millisecond
	cfg := episodeConfig(t, policy, tasks, fmt.Sprintf(`reward:
  weights: {verifiable: 1, judge: 0.5}
  judges: [{name: j1, base_url: %s, model: judge-model, template: correctness, breaker_wait: %s, breaker_cooldown: 100ms}]
pipeline: {workers: 2}
`, dead, wait))
	start := time.Now()
	if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	// Per request: 3 attempts with backoffs of at most 500ms and 1s, then at
	// most breaker_wait; 6 groups judged 2 at a time (their 4 samples
	// together).
	if bound := 3 * (1500*time.Millisecond + wait + time.Second); took > bound {
		t.Errorf("the run took %s with a dead judge, bound %s", took, bound)
	}
	rows := readAll(t, cfg.Output.Dir)
	if len(rows) != 24 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, r := range rows {
		var judge *float64
		found := false
		for _, c := range r.RewardComponents {
			if c.Name == "judge" {
				judge, found = c.Value, true
			}
		}
		why := ""
		if len(r.JudgeScores) == 1 {
			why = deref(r.JudgeScores[0].Reason)
		}
		if !found || judge != nil || r.Reward != nil || !strings.Contains(why, "judge call failed") ||
			!strings.Contains(why, "connection refused") && !strings.Contains(why, "circuit breaker") {
			t.Fatalf("row %s: judge component %v (found %v), reward %v, reason %q", r.TaskID, judge, found, r.Reward, why)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
