package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func redraft(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
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
