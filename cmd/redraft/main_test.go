package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/pycheck"
)

func redraft(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return redraftIn(t, "", args...)
}

func redraftIn(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunQuickstartAndAudit(t *testing.T) {
	out := t.TempDir()
	cfg := writeConfig(t, strings.ReplaceAll(mustRead(t, "../../configs/quickstart.yaml"), "testdata/", "../../testdata/"))
	code, stdout, stderr := redraft(t, "run", "--config", cfg, "--out", out, "--progress", "log")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"rows 5276, groups 1319", "175b_verification", "56.3%", "reward histogram"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "wrote 5276 rows (1319 groups)") {
		t.Errorf("stderr: %s", stderr)
	}
	// A second identical run is a no-op, not an error.
	code, _, stderr = redraft(t, "run", "--config", cfg, "--out", out, "--no-audit")
	if code != 0 || !strings.Contains(stderr, "nothing to do") {
		t.Errorf("rerun: exit %d: %s", code, stderr)
	}
	code, stdout, _ = redraft(t, "audit", "--json", out)
	if code != 0 || !strings.Contains(stdout, `"frac_reward_zero_std"`) {
		t.Errorf("audit --json: exit %d: %s", code, stdout)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(`{"id": "a", "prompt": "x", "responses": ["#### 1"]}`+"\n"+`{"id": "b", "responses": ["x"]}`+"\n"), 0o644)
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr []string
	}{
		{"no command", nil, 2, []string{"Commands:"}},
		{"unknown command", []string{"frobnicate"}, 2, []string{`unknown command "frobnicate"`}},
		{"missing --config", []string{"run"}, 2, []string{"--config is required"}},
		{"missing config file", []string{"run", "--config", filepath.Join(dir, "nope.yaml")}, 1, []string{"nope.yaml", "no such file"}},
		{"unknown config key", []string{"run", "--config", writeConfig(t, "source: {kind: rollouts, path: x}\noutput: {dir: o}\noutptu: {}\n")}, 1, []string{"c.yaml", "line 3", "outptu"}},
		{"missing input file", []string{"run", "--config", writeConfig(t, "source: {kind: rollouts, path: "+filepath.Join(dir, "missing.jsonl")+"}\noutput: {dir: "+filepath.Join(dir, "o1")+"}\n")}, 1, []string{"missing.jsonl", "no such file"}},
		{"missing field", []string{"run", "--config", writeConfig(t, "source: {kind: rollouts, path: "+bad+"}\noutput: {dir: "+filepath.Join(dir, "o2")+"}\n")}, 1, []string{bad + ":2", `field "prompt"`, "missing", "run failed"}},
		{"audit without shards", []string{"audit", dir}, 1, []string{"no rl shards"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := redraft(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (%s)", code, tt.code, stderr)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
		})
	}
	// The failed run left no half-written shard.
	if hidden, _ := filepath.Glob(filepath.Join(dir, "o2", "data", "rl", ".*")); len(hidden) > 0 {
		t.Errorf("half-written shards: %v", hidden)
	}
}

func TestAdvantagesCommand(t *testing.T) {
	in := `{"rewards": [1, 0, 0, 1]}
{"rewards": [0.9, 0.9, 0.9]}
{"rewards": [1, null, 0]}
{"rewards": [5]}
`
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--estimator", "dr_grpo"}, `{"advantages":[0.5,-0.5,-0.5,0.5]}
{"advantages":[0,0,0]}
{"advantages":[0.5,null,-0.5]}
{"advantages":[0]}
`},
		{[]string{"--estimator", "rloo"}, `{"advantages":[0.6666666666666667,-0.6666666666666666,-0.6666666666666666,0.6666666666666667]}
{"advantages":[0,0,0]}
{"advantages":[1,null,-1]}
{"advantages":[0]}
`},
		{[]string{"--estimator", "grpo", "--eps", "0"}, `{"advantages":[0.8660254037844387,-0.8660254037844387,-0.8660254037844387,0.8660254037844387]}
{"advantages":[0,0,0]}
{"advantages":[0.7071067811865475,null,-0.7071067811865475]}
{"advantages":[0]}
`},
		{[]string{"--estimator", "passk"}, `{"advantages":[0,0,0,0]}
{"advantages":[0,0,0]}
{"advantages":[1,null,0]}
{"advantages":[0]}
`},
	}
	for _, tt := range tests {
		t.Run(tt.args[1], func(t *testing.T) {
			code, out, stderr := redraftIn(t, in, append([]string{"advantages"}, tt.args...)...)
			if code != 0 || out != tt.want {
				t.Errorf("exit %d, stderr %q\ngot:\n%s\nwant:\n%s", code, stderr, out, tt.want)
			}
		})
	}
	// reinforce_pp_baseline whitens the group-centred values over all lines.
	code, out, _ := redraftIn(t, "{\"rewards\": [1, 0]}\n{\"rewards\": [1, 0]}\n", "advantages", "--estimator", "reinforce_pp_baseline", "--eps", "0")
	// Centred: 0.5, -0.5, 0.5, -0.5; mean 0, unbiased var 1/3.
	if code != 0 || !strings.Contains(out, "0.8660254037844") || strings.Count(out, "\n") != 2 {
		t.Errorf("reinforce_pp_baseline: exit %d\n%s", code, out)
	}
	code, _, stderr := redraftIn(t, "{\"rewards\": [1]}\n{\"reward\": [1]}\n", "advantages")
	if code != 1 || !strings.Contains(stderr, "stdin:2") || !strings.Contains(stderr, "rewards") {
		t.Errorf("bad line: exit %d: %s", code, stderr)
	}
	code, _, stderr = redraftIn(t, "", "advantages", "--estimator", "ppo")
	if code != 2 || !strings.Contains(stderr, "ppo") {
		t.Errorf("bad estimator: exit %d: %s", code, stderr)
	}
}

func TestSpliceCommand(t *testing.T) {
	out := t.TempDir()
	code, _, stderr := redraft(t, "splice", "--format", "prm800k", "--input", "../../testdata/prm800k/phase1_reconstructed.jsonl.gz", "--out", out)
	if code != 0 || !strings.Contains(stderr, "spliced 781 trajectories") || !strings.Contains(stderr, "267 records skipped") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	m, err := export.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != export.StatusComplete || m.Datasets["sft"].Rows != 781 || len(m.Skipped) != 267 || m.Skipped[0].Reason == "" {
		t.Errorf("manifest: %+v", m)
	}
	if code, _, stderr := redraft(t, "splice", "--format", "mr-gsm8k", "--input", "x", "--out", out); code != 2 || !strings.Contains(stderr, "mr-gsm8k") {
		t.Errorf("mr-gsm8k: exit %d: %s", code, stderr)
	}
	// The same splice again finds it done, as redraft run does; other
	// settings (a seed) are refused over it.
	if code, _, stderr := redraft(t, "splice", "--format", "prm800k", "--input", "../../testdata/prm800k/phase1_reconstructed.jsonl.gz", "--out", out); code != 0 || !strings.Contains(stderr, "nothing to do") {
		t.Errorf("rerun: exit %d: %s", code, stderr)
	}
	if code, _, stderr := redraft(t, "splice", "--format", "prm800k", "--input", "../../testdata/prm800k/phase1_reconstructed.jsonl.gz", "--out", out, "--seed", "5"); code != 1 || !strings.Contains(stderr, "--overwrite") {
		t.Errorf("rerun with another seed: exit %d: %s", code, stderr)
	}
	// A model's flag given to a splice without a model is refused by its
	// key, not ignored.
	if code, _, stderr := redraft(t, "splice", "--format", "prm800k", "--input", "../../testdata/prm800k/phase1_reconstructed.jsonl.gz", "--out", t.TempDir(), "--mask-prefix"); code != 2 || !strings.Contains(stderr, "splice.mask_prefix: only an mr-gsm8k splice reads it") {
		t.Errorf("--mask-prefix on prm800k: exit %d: %s", code, stderr)
	}
	// --keep all turns the success filter off: every trajectory that can
	// be spliced is written.
	if code, _, stderr := redraft(t, "splice", "--format", "prm800k", "--input", "../../testdata/prm800k/phase1_reconstructed.jsonl.gz", "--out", t.TempDir(), "--keep", "all"); code != 0 || !strings.Contains(stderr, "spliced 796 trajectories") || !strings.Contains(stderr, "252 records skipped") {
		t.Errorf("--keep all: exit %d: %s", code, stderr)
	}
	pycheck.Check(t, "../..", out)
}

func TestGradeCommand(t *testing.T) {
	in := `{"gold": "\\frac{1}{2}", "prediction": "So x = 0.5.\nThe answer is $\\dfrac12$."}
{"gold": "18", "prediction": "Janet sells 9 eggs.\nShe makes 9 * 2 = 18"}
{"gold": "5", "prediction": "The answer is 5 or 6."}
`
	code, out, stderr := redraftIn(t, in, "grade")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("exit %d, %d lines: %s %s", code, len(lines), out, stderr)
	}
	for i, want := range []string{`"correct":true`, `"correct":false`, `"correct":false`} {
		if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], `"rule":`) || !strings.Contains(lines[i], `"answer":`) {
			t.Errorf("line %d: %s", i, lines[i])
		}
	}
	if !strings.Contains(lines[0], `"extract_rule":"the_answer_is"`) {
		t.Errorf("line 0: %s", lines[0])
	}
	code, _, stderr = redraftIn(t, `{"gold": "1"}`+"\n", "grade")
	if code != 1 || !strings.Contains(stderr, `stdin:1: field "prediction"`) {
		t.Errorf("missing prediction: exit %d %s", code, stderr)
	}
}

func TestTokenizeCommand(t *testing.T) {
	code, out, stderr := redraftIn(t, "hello world\n\nhello\n", "tokenize", "--tokenizer", "../../tokenizer/testdata/synthetic.json")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || len(lines) != 3 || lines[1] != "[]" || !strings.HasPrefix(lines[0], "[") || !strings.HasPrefix(lines[0], strings.TrimSuffix(lines[2], "]")) {
		t.Errorf("exit %d: %q %s", code, out, stderr)
	}
	if code, _, stderr := redraft(t, "tokenize", "--tokenizer", "/nonexistent.json"); code != 1 || !strings.Contains(stderr, "nonexistent.json") {
		t.Errorf("missing file: exit %d %s", code, stderr)
	}
}
