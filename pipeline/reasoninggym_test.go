package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/internal/pycheck"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// The reasoning-gym preset for real: scripts/reasoning-gym.py writes tasks
// of 5 kinds, a run scores the responses of the in-process server through
// the script's verifier plug-in, and every row's verifiable reward equals
// score_answer called directly in Python on the same response and task.
func TestReasoningGymPreset(t *testing.T) {
	py := pycheck.Python(t)
	if out, err := exec.Command(py, "-c", "import reasoning_gym").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import reasoning_gym (rebuild the venv with scripts/python-env.sh): %v %s", py, err, out)
	}
	kinds := []string{"basic_arithmetic", "chain_sum", "leg_counting", "spell_backward", "letter_counting"}
	tasksPath := filepath.Join(t.TempDir(), "tasks.jsonl")
	gen := exec.Command(py, "../scripts/reasoning-gym.py", "tasks", "--kinds", strings.Join(kinds, ","), "--per-kind", "3", "--seed", "7")
	var stderr bytes.Buffer
	gen.Stderr = &stderr
	out, err := gen.Output()
	if err != nil {
		t.Fatalf("reasoning-gym.py tasks: %v: %s", err, stderr.String())
	}
	if err := os.WriteFile(tasksPath, out, 0o644); err != nil {
		t.Fatal(err)
	}
	answers := map[string]string{} // question -> reference
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var task struct{ Prompt, Reference string }
		if err := json.Unmarshal(sc.Bytes(), &task); err != nil {
			t.Fatal(err)
		}
		answers[task.Prompt] = task.Reference
	}
	if len(answers) != 15 {
		t.Fatalf("%d tasks, want 15", len(answers))
	}
	// Samples by seed parity and more: the reference in answer tags, a
	// wrong answer, the reference without tags, nothing useful.
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		ref := answers[req.Messages[len(req.Messages)-1].Content]
		switch *req.Seed % 4 {
		case 0:
			return fakeserver.Reply{Text: "Working it out.\n<answer>" + ref + "</answer>"}
		case 1:
			return fakeserver.Reply{Text: "<answer>" + ref + "x</answer>"}
		case 2:
			return fakeserver.Reply{Text: "The answer is " + ref}
		default:
			return fakeserver.Reply{Text: "<answer></answer>"}
		}
	})
	defer srv.Close()
	cfg, err := LoadConfig("../configs/presets/reasoning-gym.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Source.Path, cfg.Output.Dir = tasksPath, t.TempDir()
	cfg.Endpoint.BaseURL, cfg.Endpoint.Model = srv.BaseURL(), "policy"
	cfg.Sampling.N = 4
	cfg.Reward.Plugin.Dir = ".."
	m, err := Execute(context.Background(), cfg, JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkManifest(t, cfg.Output.Dir, m)
	rows := readAll(t, cfg.Output.Dir)
	if len(rows) != 60 {
		t.Fatalf("%d rows, want 60", len(rows))
	}
	// The same responses and tasks, scored by score_answer directly.
	var reqs bytes.Buffer
	sources := map[string]bool{}
	for i, r := range rows {
		sources[r.DataSource] = true
		json.NewEncoder(&reqs).Encode(map[string]any{"id": fmt.Sprint(i), "response": r.Response, "metadata": json.RawMessage(*r.TaskMetadata)})
	}
	if len(sources) != 5 {
		t.Errorf("data sources %v, want 5 kinds", sources)
	}
	direct := exec.Command(py, "../scripts/reasoning-gym.py", "score")
	direct.Stdin, direct.Stderr = &reqs, &stderr
	scored, err := direct.Output()
	if err != nil {
		t.Fatalf("reasoning-gym.py score: %v: %s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(scored)), "\n")
	if len(lines) != len(rows) {
		t.Fatalf("%d direct scores for %d rows", len(lines), len(rows))
	}
	var full, zero int
	for i, r := range rows {
		var d struct {
			Score *float64
			Error string
		}
		if err := json.Unmarshal([]byte(lines[i]), &d); err != nil || d.Score == nil {
			t.Fatalf("row %d: direct score %s", i, lines[i])
		}
		v := r.RewardComponents[0]
		if v.Name != "verifiable" || v.Value == nil || *v.Value != *d.Score || r.Reward == nil || *r.Reward != *d.Score {
			t.Errorf("row %d (%s, %q): verifiable %+v, score_answer %v", i, r.TaskID, r.Response, v, *d.Score)
		}
		if !strings.Contains(deref(r.ResponseMetadata), `"verifier"`) {
			t.Errorf("row %d: response_metadata %s lacks the verifier's reply", i, deref(r.ResponseMetadata))
		}
		switch {
		case *d.Score == 1:
			full++
		case *d.Score == 0:
			zero++
		}
	}
	if full < 15 || zero < 15 {
		t.Errorf("%d rows scored 1 and %d scored 0: the responses do not exercise the verifier", full, zero)
	}
}
