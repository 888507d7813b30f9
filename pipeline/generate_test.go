package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// writeTasks writes n toy tasks "What is i+i?" with reference 2i and returns
// the path and the answers keyed by prompt.
func writeTasks(t *testing.T, n int) (string, map[string]int) {
	t.Helper()
	var b strings.Builder
	answers := map[string]int{}
	for i := range n {
		q := fmt.Sprintf("What is %d+%d?", i, i)
		answers[q] = 2 * i
		fmt.Fprintf(&b, `{"id": "toy-%d", "prompt": %q, "reference": %d, "data_source": "toy"}`+"\n", i, q, 2*i)
	}
	p := filepath.Join(t.TempDir(), "tasks.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, answers
}

func generationConfig(t *testing.T, srv *fakeserver.Server, tasks string) *Config {
	t.Helper()
	cfg, err := ParseConfig("test.yaml", strings.NewReader(fmt.Sprintf(`
name: gen-test
seed: 42
source: {kind: tasks, path: %q}
endpoint: {base_url: %s, model: policy, max_in_flight: 8, api_key_env: REDRAFT_TEST_KEY, retries: 2, backoff_initial: 1ms, backoff_max: 2ms}
sampling: {n: 4, temperature: 0, top_p: 0.95, max_tokens: 64, logprobs: true}
output: {dir: %q}
`, tasks, srv.BaseURL(), t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestGenerateEndToEnd(t *testing.T) {
	tasks, answers := writeTasks(t, 25)
	srv := fakeserver.New(fakeserver.AnswerBySeed(answers))
	defer srv.Close()
	t.Setenv("REDRAFT_TEST_KEY", "sk-secret-value-123")
	cfg := generationConfig(t, srv, tasks)
	m, err := Execute(context.Background(), cfg, JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkManifest(t, cfg.Output.Dir, m)
	if m.Model != "policy" || m.Endpoint != srv.BaseURL() || m.Source != "tasks" {
		t.Errorf("manifest model/endpoint: %q %q %q", m.Model, m.Endpoint, m.Source)
	}
	if got := srv.Count(); got != 100 {
		t.Errorf("server saw %d requests, want 100 (one per sample)", got)
	}
	for _, req := range srv.Requests() {
		// Explicit zeros must reach the server, not fall back to its default.
		if req.Temperature == nil || *req.Temperature != 0 || req.TopP == nil || *req.TopP != 0.95 ||
			req.MaxTokens == nil || *req.MaxTokens != 64 || req.Seed == nil || !req.Logprobs || req.Model != "policy" {
			t.Fatalf("request settings not sent as configured: %+v", req)
		}
	}
	rows := readAll(t, cfg.Output.Dir)
	if len(rows) != 100 {
		t.Fatalf("%d rows", len(rows))
	}
	for i, r := range rows {
		task := fmt.Sprintf("toy-%d", i/4)
		want := rollout.DeriveSeed(42, task, i%4, 0)
		if r.TaskID != task || int(r.SampleIndex) != i%4 || r.Seed == nil || *r.Seed != want {
			t.Fatalf("row %d: task %s sample %d seed %v, want %s %d %d", i, r.TaskID, r.SampleIndex, r.Seed, task, i%4, want)
		}
		if r.Correct == nil || *r.Correct != fakeserver.IsCorrectSeed(want) {
			t.Errorf("row %d: correct %v for seed %d", i, r.Correct, want)
		}
		words := len(strings.Fields(r.Response))
		if r.CompletionTokens == nil || int(*r.CompletionTokens) != words || r.PromptTokens == nil || *r.PromptTokens != 7 {
			t.Errorf("row %d: usage %v/%v for %d words", i, r.PromptTokens, r.CompletionTokens, words)
		}
		if len(r.Logprobs) != words || r.Logprobs[0].Logprob != fakeserver.TokenLogprob(r.Logprobs[0].Token) {
			t.Errorf("row %d: %d logprobs for %d tokens", i, len(r.Logprobs), words)
		}
		if r.Endpoint == nil || *r.Endpoint != srv.BaseURL() || r.Attempts == nil || *r.Attempts != 1 {
			t.Errorf("row %d: endpoint %v attempts %v", i, r.Endpoint, r.Attempts)
		}
		if r.Model != "fake/policy-1" || r.FinishReason == nil || *r.FinishReason != "stop" || r.LatencyMS == nil || r.DataSource != "toy" {
			t.Errorf("row %d: model %q finish %v latency %v", i, r.Model, r.FinishReason, r.LatencyMS)
		}
		if s := r.Sampling; s == nil || s.Temperature == nil || *s.Temperature != 0 || s.MaxTokens == nil || *s.MaxTokens != 64 || !s.Logprobs {
			t.Errorf("row %d: sampling %+v", i, r.Sampling)
		}
	}
	// The API key is never written anywhere in the output.
	filepath.Walk(cfg.Output.Dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(p)
			if strings.Contains(string(b), "sk-secret-value-123") {
				t.Errorf("%s contains the API key", p)
			}
		}
		return nil
	})
}

// Truncated samples are data (finish_reason=length), failed requests stay in
// their group with the error, a null reward with its reason, and no advantage.
func TestGenerateTruncationAndFailures(t *testing.T) {
	tasks, answers := writeTasks(t, 6)
	inner := fakeserver.AnswerBySeed(answers)
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		if *req.Seed%3 == 0 {
			return fakeserver.Reply{Status: 500}
		}
		return inner(req)
	})
	defer srv.Close()
	cfg := generationConfig(t, srv, tasks)
	five := 5
	cfg.Sampling.MaxTokens = &five
	allowFailures(cfg)
	m, err := Execute(context.Background(), cfg, JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rows := readAll(t, cfg.Output.Dir)
	if len(rows) != 24 {
		t.Fatalf("%d rows, want 24: failures must not drop rows", len(rows))
	}
	failed := 0
	for _, r := range rows {
		if *r.Seed%3 == 0 {
			failed++
			if r.Error == nil || !strings.Contains(*r.Error, "HTTP 500") || r.Reward != nil || r.RewardReason == nil ||
				r.Advantage != nil || r.RewardComponents[0].Value != nil || r.RewardComponents[0].Reason == nil {
				t.Errorf("failed sample row: %+v", r)
			}
			continue
		}
		if r.FinishReason == nil || *r.FinishReason != "length" || *r.CompletionTokens != 5 {
			t.Errorf("truncated row: finish %v tokens %v", r.FinishReason, r.CompletionTokens)
		}
		// Cut off before "The answer is": nothing stated, so not correct.
		if r.Correct == nil || *r.Correct || r.ExtractedAnswer != nil || r.Reward == nil || *r.Reward != 0 {
			t.Errorf("truncated row graded: %+v", r)
		}
	}
	if failed == 0 || m.Rewards.Failed != int64(failed) || m.Rewards.NullRewards != int64(failed) {
		t.Errorf("failed %d, manifest failed %d null %d", failed, m.Rewards.Failed, m.Rewards.NullRewards)
	}
	// The failures record lists every failed sample with its reason.
	if m.Failures == nil || m.Failures.Count != int64(failed) || m.Failures.Path != "failures.jsonl" {
		t.Fatalf("manifest failures: %+v", m.Failures)
	}
	b, err := os.ReadFile(filepath.Join(cfg.Output.Dir, m.Failures.Path))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != failed || hex.EncodeToString(sum[:]) != m.Failures.SHA256 {
		t.Errorf("failures.jsonl: %d lines for %d failures, checksum %v", len(lines), failed, hex.EncodeToString(sum[:]) == m.Failures.SHA256)
	}
	// Attempts are bounded by retries (2); fewer when the circuit breaker
	// opened and the wait for it used up the budget.
	for _, l := range lines {
		var f export.Failure
		if err := json.Unmarshal([]byte(l), &f); err != nil || f.TaskID == "" || !strings.Contains(f.Error, "HTTP 500") || f.Attempts < 1 || f.Attempts > 2 {
			t.Errorf("failure line %q: %+v %v", l, f, err)
		}
	}
}

// Every row written is read back by Arrow exactly as it was built.
func TestArrowRoundTrip(t *testing.T) {
	tasks, answers := writeTasks(t, 40)
	srv := fakeserver.New(fakeserver.AnswerBySeed(answers))
	defer srv.Close()
	cfg := generationConfig(t, srv, tasks)
	for _, src := range []string{"tasks", "rollouts"} {
		t.Run(src, func(t *testing.T) {
			var prod rollout.Producer
			if src == "tasks" {
				p, closeSrc, err := buildProducer(cfg, mathGrading(), nil)
				if err != nil {
					t.Fatal(err)
				}
				defer closeSrc()
				prod = p
			} else {
				q := quickstartConfig(t)
				p, closeSrc, err := buildProducer(q, mathGrading(), nil)
				if err != nil {
					t.Fatal(err)
				}
				defer closeSrc()
				prod = p
			}
			dir := t.TempDir()
			w, err := export.NewShardWriter[export.RLRow](export.ShardOptions{Dir: dir, Dataset: "rl", Schema: export.RLSchema, MaxBytes: 64 << 10, RowGroupRows: 100})
			if err != nil {
				t.Fatal(err)
			}
			sink := &teeSink{w: w}
			scorer := verifiableScorer()
			if _, err := Run(context.Background(), prod, scorer, sink, Options{Advantage: cfg.Advantage}); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			got := readAll(t, dir)
			if len(got) != len(sink.rows) || len(got) == 0 {
				t.Fatalf("read %d rows, wrote %d", len(got), len(sink.rows))
			}
			for i := range got {
				want := sink.rows[i]
				// Arrow reads empty lists back as empty, the writer may hold nil.
				norm := func(r *export.RLRow) {
					if len(r.Logprobs) == 0 {
						r.Logprobs = nil
					}
					if len(r.JudgeScores) == 0 {
						r.JudgeScores = nil
					}
					if r.Sampling != nil && len(r.Sampling.Stop) == 0 {
						r.Sampling.Stop = nil
					}
				}
				norm(&got[i])
				norm(&want)
				if !reflect.DeepEqual(got[i], want) {
					a, _ := json.Marshal(got[i])
					b, _ := json.Marshal(want)
					t.Fatalf("row %d differs:\nread  %s\nwrote %s", i, a, b)
				}
			}
		})
	}
}

// Bad input stops the run with an error naming file, line and field; the
// shards finished before it stay intact and listed, nothing half-written
// remains.
func TestBadInputMidStream(t *testing.T) {
	src, err := os.ReadFile("../testdata/gsm8k/example_model_solutions.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(src), "\n")
	bad := strings.Join(lines[:700], "") + `{"question": "q", "ground_truth": "x\nA: 1", "6b_finetuning": {"is_correct": true}}` + "\n" + strings.Join(lines[700:], "")
	p := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(p, []byte(bad), 0o644)
	cfg := quickstartConfig(t)
	cfg.Source.Path = p
	cfg.Output.ShardBytes = 128 << 10
	m, err := Execute(context.Background(), cfg, JobOptions{})
	var ie *rollout.InputError
	if !errors.As(err, &ie) || ie.Line != 701 || ie.Field != "6b_finetuning.solution" || !strings.Contains(err.Error(), p+":701") {
		t.Fatalf("got %v", err)
	}
	if m.Status != export.StatusFailed || !strings.Contains(m.Error, "6b_finetuning.solution") {
		t.Errorf("manifest status %s error %q", m.Status, m.Error)
	}
	if len(m.Datasets["rl"].Shards) == 0 {
		t.Fatal("expected finished shards before the bad line")
	}
	checkManifest(t, cfg.Output.Dir, m)
	onDisk, _ := export.ReadManifest(cfg.Output.Dir)
	if onDisk.Status != export.StatusFailed {
		t.Errorf("manifest on disk: %s", onDisk.Status)
	}
	// Rerunning resumes, and stops at the same line.
	if _, err := Execute(context.Background(), cfg, JobOptions{}); !errors.As(err, &ie) || ie.Line != 701 {
		t.Errorf("rerun: %v", err)
	}
	// Once the line is fixed, the run resumes to the end, and holds the
	// same rows as a clean run of the fixed file.
	os.WriteFile(p, []byte(strings.Join(lines[:700], "")+strings.Join(lines[700:], "")), 0o644)
	resumed := 0
	m, err = Execute(context.Background(), cfg, JobOptions{OnResume: func(ri ResumeInfo) { resumed = int(ri.Tasks) }})
	if err != nil || m.Status != export.StatusComplete {
		t.Fatalf("resume after the fix: %v", err)
	}
	// Groups in flight when the error stopped the run are redone.
	if resumed < 600 || resumed > 700 {
		t.Errorf("resumed after %d tasks, want most of the 700 before the bad line", resumed)
	}
	clean := quickstartConfig(t)
	if _, err := Execute(context.Background(), clean, JobOptions{}); err != nil {
		t.Fatal(err)
	}
	got, want := readAll(t, cfg.Output.Dir), readAll(t, clean.Output.Dir)
	if len(got) != len(want) {
		t.Fatalf("%d rows after resume, %d in a clean run", len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("row %d differs", i)
		}
	}
}
