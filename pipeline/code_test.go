package pipeline

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/rewards/execute"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// requireSandbox skips (or, with REDRAFT_REQUIRE_SANDBOX=1, fails) a test
// that runs model code when this machine cannot isolate it.
func requireSandbox(t *testing.T) {
	t.Helper()
	if _, err := execute.New(execute.Options{Slots: 1}); err != nil {
		if errors.Is(err, execute.ErrUnavailable) && os.Getenv("REDRAFT_REQUIRE_SANDBOX") != "1" {
			t.Skipf("SKIPPING: no sandbox on this machine (set REDRAFT_REQUIRE_SANDBOX=1 to fail instead): %v", err)
		}
		t.Fatal(err)
	}
}

// humanEvalFile writes the first n problems of the bundled HumanEval as a
// file of the humaneval layout and returns it with the problems.
func humanEvalFile(t *testing.T, n int) (string, []map[string]string) {
	t.Helper()
	f, err := os.Open("../rewards/codegrade/testdata/humaneval/HumanEval.jsonl.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(z)
	sc.Buffer(nil, 1<<20)
	var lines []string
	var probs []map[string]string
	for len(probs) < n && sc.Scan() {
		var p map[string]string
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		probs = append(probs, p)
		lines = append(lines, sc.Text())
	}
	path := filepath.Join(t.TempDir(), "humaneval.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, probs
}

// A GRPO run on HumanEval problems with reward.grader python: each
// response's program runs against the problem's tests in the sandbox; the
// rows carry the all-pass reward, the pass rate, the per-test verdicts and
// the tests they were run against.
func TestCodeTasksGradedByExecution(t *testing.T) {
	requireSandbox(t)
	path, probs := humanEvalFile(t, 4)
	byPrompt := map[string]map[string]string{}
	for _, p := range probs {
		byPrompt[p["prompt"]] = p
	}
	// Sample 0 answers with the canonical solution in a python block, 1
	// with a wrong body, 2 with prose, 3 with a syntax error.
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		q := req.Messages[len(req.Messages)-1].Content
		var p map[string]string
		for prompt, pp := range byPrompt {
			if strings.Contains(q, prompt) {
				p = pp
			}
		}
		if p == nil {
			return fakeserver.Reply{Status: 400, Message: "unknown problem"}
		}
		sample := -1
		for i := range 4 {
			if rollout.DeriveSeed(3, p["task_id"], i, 0) == *req.Seed {
				sample = i
			}
		}
		switch sample {
		case 0:
			return fakeserver.Reply{Text: "Here it is:\n```python\n" + p["prompt"] + p["canonical_solution"] + "```"}
		case 1:
			return fakeserver.Reply{Text: "```python\n" + p["prompt"] + "    return None\n```"}
		case 2:
			return fakeserver.Reply{Text: "I am not sure:\n```text\nno idea\n```"}
		default:
			return fakeserver.Reply{Text: "```python\ndef " + p["entry_point"] + "(:\n```"}
		}
	})
	defer srv.Close()
	cfg, err := ParseConfig("code.yaml", strings.NewReader(fmt.Sprintf(`
seed: 3
source: {kind: tasks, path: %q, layout: humaneval}
endpoint: {base_url: %s, model: policy, max_in_flight: 8}
sampling: {n: 4, max_tokens: 512}
reward: {grader: python, weights: {verifiable: 1, pass_rate: 0}, execution: {timeout: 20s}}
output: {dir: %q}
`, path, srv.BaseURL(), t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Execute(context.Background(), cfg, JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkManifest(t, cfg.Output.Dir, m)
	rows := readAll(t, cfg.Output.Dir)
	if len(rows) != 16 {
		t.Fatalf("%d rows, want 16", len(rows))
	}
	passed := 0
	for _, r := range rows {
		canonical := r.SampleIndex == 0
		var comp = map[string]*float64{}
		for _, c := range r.RewardComponents {
			comp[c.Name] = c.Value
		}
		if comp["verifiable"] == nil {
			t.Fatalf("%s sample %d: verifiable null: %+v", r.TaskID, r.SampleIndex, r.RewardComponents)
		}
		if got := *comp["verifiable"] == 1; got != canonical {
			t.Errorf("%s sample %d: verifiable %v, canonical %v (%s)\n%s", r.TaskID, r.SampleIndex, *comp["verifiable"], canonical, deref(r.GradeReason), r.Response)
		}
		if canonical {
			passed++
		}
		// The pass rate: 1 for the canonical solution, 0 for no program or
		// a syntax error, never null.
		if pr := comp["pass_rate"]; pr == nil || (canonical && *pr != 1) || (r.SampleIndex >= 2 && *pr != 0) {
			t.Errorf("%s sample %d: pass_rate %v", r.TaskID, r.SampleIndex, pr)
		}
		if want := []string{"", "tests_failed", "no_code", "syntax_error"}[r.SampleIndex]; !strings.HasPrefix(deref(r.GradeReason), want) || (want == "") != (r.GradeReason == nil) {
			t.Errorf("%s sample %d: grade reason %q, want %q...", r.TaskID, r.SampleIndex, deref(r.GradeReason), want)
		}
		if deref(r.GradeRule) != "tests" {
			t.Errorf("%s sample %d: grade rule %q", r.TaskID, r.SampleIndex, deref(r.GradeRule))
		}
		var meta struct {
			Execution struct {
				Passed, Total int
				Tests         []struct {
					Test   string
					Passed bool
				}
			}
		}
		var task struct{ Code rollout.CodeSpec }
		if r.ResponseMetadata == nil || json.Unmarshal([]byte(*r.ResponseMetadata), &meta) != nil {
			t.Fatalf("%s: response_metadata %v", r.TaskID, r.ResponseMetadata)
		}
		if r.TaskMetadata == nil || json.Unmarshal([]byte(*r.TaskMetadata), &task) != nil || task.Code.EntryPoint == "" || !strings.Contains(task.Code.Tests, "def check") {
			t.Fatalf("%s: task_metadata %v", r.TaskID, r.TaskMetadata)
		}
		if canonical && (meta.Execution.Total == 0 || meta.Execution.Passed != meta.Execution.Total || len(meta.Execution.Tests) != meta.Execution.Total) {
			t.Errorf("%s canonical: execution %+v", r.TaskID, meta.Execution)
		}
	}
	if passed != 4 {
		t.Errorf("%d canonical responses, want one per task", passed)
	}
}
