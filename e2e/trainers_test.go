package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/rollout/fakeserver"
)

// TestTrainerDatasets runs python/test_trainer_datasets.py with the real
// trainers on CPU (the environment of scripts/trainers-env.sh,
// REDRAFT_TRAINERS_PYTHON: TRL, verl and OpenRLHF's dataset classes, the
// versions pinned in python/trainers-requirements.txt) on outputs made here
// with the real Qwen3 tokenizer (REDRAFT_TOKENIZERS): the PRM800K splice's
// sft/4 rows, and a SCoRe run (two turns, pairs, a qwen3 token track) whose
// rl, pairs and verl prompt set the trainers load as they are. The script's
// tests and what each proves are in its docstring and docs/trainers.md's
// truth table. REDRAFT_REQUIRE_TRAINERS=1 makes a missing environment a
// failure.
func TestTrainerDatasets(t *testing.T) {
	py, toks := os.Getenv("REDRAFT_TRAINERS_PYTHON"), os.Getenv("REDRAFT_TOKENIZERS")
	if py == "" || toks == "" {
		if os.Getenv("REDRAFT_REQUIRE_TRAINERS") == "1" {
			t.Fatalf("REDRAFT_REQUIRE_TRAINERS=1 but REDRAFT_TRAINERS_PYTHON=%q and REDRAFT_TOKENIZERS=%q: both are needed", py, toks)
		}
		t.Skip("REDRAFT_TRAINERS_PYTHON=$(scripts/trainers-env.sh) and REDRAFT_TOKENIZERS=$(scripts/fetch-tokenizers.sh) run the trainers")
	}
	qwen3 := filepath.Join(toks, "qwen3")
	splice := spliceOutput(t, filepath.Join(qwen3, "tokenizer.json"))

	var b strings.Builder
	answers := map[string]int{}
	for i := range 12 {
		q := fmt.Sprintf("What is %d+%d?", i, i+1)
		answers[q] = 2*i + 1
		fmt.Fprintf(&b, `{"id": "toy-%d", "prompt": %q, "reference": %d, "data_source": "toy"}`+"\n", i, q, 2*i+1)
	}
	tasks := filepath.Join(t.TempDir(), "tasks.jsonl")
	if err := os.WriteFile(tasks, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := fakeserver.New(fakeserver.AnswerBySeed(answers))
	t.Cleanup(srv.Close)
	score := runOutput(t, "score", fmt.Sprintf(`
name: trainers-score
seed: 7
source: {kind: tasks, path: %s}
endpoint: {base_url: %s, model: policy, max_in_flight: 8}
sampling: {n: 4, temperature: 1.0, max_tokens: 64}
episode: {turns: 2, feedback: fixed, pairs: true}
reward: {weights: {verifiable: 1, score_bonus: 1}}
output: {dir: %s, tokenizer: %s, chat_format: qwen3}
`, tasks, srv.BaseURL(), t.TempDir(), filepath.Join(qwen3, "tokenizer.json")))

	test, err := filepath.Abs("../python/test_trainer_datasets.py")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, test, "--sft", splice.dir, "--run", score.dir, "--tokenizer", qwen3)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "CUDA_VISIBLE_DEVICES=", "WANDB_MODE=disabled", "TOKENIZERS_PARALLELISM=false",
		"HF_HUB_OFFLINE=1", "HF_DATASETS_OFFLINE=1", "HF_HOME="+t.TempDir(), "PYTHONPATH=")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("python/test_trainer_datasets.py: %v", err)
	}
	if !strings.Contains(string(out), "\nOK") || strings.Contains(string(out), "skipped") {
		t.Errorf("python/test_trainer_datasets.py did not pass every test")
	}
}

// TestTrainersTruthTable keeps docs/trainers.md's truth table true: every
// line names tests of python/test_trainer_datasets.py that exist (Class.test),
// every test there is named by a line, each line says yes or no, and the
// versions it names are the ones python/trainers-requirements.txt and
// python/trainers-nodeps-requirements.txt pin.
func TestTrainersTruthTable(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(p)))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	doc := read("docs/trainers.md")
	script := read("python/test_trainer_datasets.py")
	pins := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Za-z0-9_.-]+)==(\S+)$`).FindAllStringSubmatch(read("python/trainers-requirements.txt")+read("python/trainers-nodeps-requirements.txt"), -1) {
		pins[strings.ToLower(m[1])] = m[2]
	}

	// The script's tests, as Class.test_name.
	tests := map[string]bool{}
	class := ""
	for _, line := range strings.Split(script, "\n") {
		if m := regexp.MustCompile(`^class (\w+)\(unittest\.TestCase\)`).FindStringSubmatch(line); m != nil {
			class = m[1]
		} else if regexp.MustCompile(`^\S`).MatchString(line) {
			class = ""
		} else if m := regexp.MustCompile(`^    def (test_\w+)\(self`).FindStringSubmatch(line); m != nil && class != "" {
			tests[class+"."+m[1]] = true
		}
	}
	if len(tests) < 10 {
		t.Fatalf("found %d tests in the script: the parser is off", len(tests))
	}

	_, table, ok := strings.Cut(doc, "<!-- checked by TestTrainersTruthTable -->\n")
	if !ok {
		t.Fatal("docs/trainers.md has no truth table marker")
	}
	var rows [][]string
	for i, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "|") {
			break
		}
		if i < 2 {
			continue // header and rule
		}
		line = strings.ReplaceAll(strings.Trim(line, "|"), `\|`, "\x00")
		var cells []string
		for _, c := range strings.Split(line, "|") {
			cells = append(cells, strings.TrimSpace(strings.ReplaceAll(c, "\x00", "|")))
		}
		rows = append(rows, cells)
	}
	if len(rows) == 0 {
		t.Fatal("the truth table has no lines")
	}
	named := map[string]bool{}
	versions := regexp.MustCompile(`\b(TRL|verl|OpenRLHF) (\d+\.\d+\.\d+)`)
	for _, r := range rows {
		if len(r) != 6 {
			t.Errorf("%q: %d cells, want 6 (trainer, dataset, settings, loads untouched, what is trained, proved by)", r, len(r))
			continue
		}
		if !strings.HasPrefix(r[3], "yes") && !strings.HasPrefix(r[3], "no") {
			t.Errorf("%q: loads untouched says neither yes nor no", r[3])
		}
		vs := versions.FindAllStringSubmatch(r[0], -1)
		if len(vs) == 0 {
			t.Errorf("%q names no trainer version", r[0])
		}
		for _, v := range vs {
			if want := pins[strings.ToLower(v[1])]; want != v[2] {
				t.Errorf("%q: %s %s, the environment pins %q", r[0], v[1], v[2], want)
			}
		}
		proofs := regexp.MustCompile("`(\\w+\\.test_\\w+)`").FindAllStringSubmatch(r[5], -1)
		if len(proofs) == 0 {
			t.Errorf("line %q names no test", r[0]+" / "+r[1]+" / "+r[2])
		}
		for _, p := range proofs {
			if !tests[p[1]] {
				t.Errorf("line %q names %s, which python/test_trainer_datasets.py does not have", r[0], p[1])
			}
			named[p[1]] = true
		}
	}
	for name := range tests {
		if !named[name] {
			t.Errorf("%s has no line in docs/trainers.md's truth table", name)
		}
	}
}
