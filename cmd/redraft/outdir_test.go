package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
)

// redraft splice writes and deletes only what redraft owns (issue 14 item
// 8): --overwrite refuses, naming it, a file under data/ that is not a
// shard, and a README.md that is not its card stops it before anything is
// written; with those moved away, --overwrite replaces redraft's own output
// and leaves the user's other files.
func TestSpliceKeepsForeignFiles(t *testing.T) {
	const input = "../../testdata/prm800k/phase1_reconstructed.jsonl.gz"
	out := t.TempDir()
	if code, _, stderr := redraft(t, "splice", "--format", "prm800k", "--input", input, "--out", out); code != 0 {
		t.Fatal(stderr)
	}
	mine := func(rel string) string {
		p := filepath.Join(out, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("mine"), 0o644)
		return p
	}
	kept := func(p string) {
		t.Helper()
		if b, err := os.ReadFile(p); err != nil || string(b) != "mine" {
			t.Errorf("%s: %q %v; want the user's file untouched", p, b, err)
		}
	}
	notes := mine("data/sft/notes.md")
	code, _, stderr := redraft(t, "splice", "--format", "prm800k", "--input", input, "--out", out, "--overwrite")
	if code != 1 || !strings.Contains(stderr, "data/sft/notes.md") {
		t.Fatalf("overwrite with a foreign file under data/: exit %d: %s", code, stderr)
	}
	kept(notes)
	if m, err := export.ReadManifest(out); err != nil || m.Datasets["sft"].Rows != 781 {
		t.Errorf("the previous run was touched by a refused overwrite: %v", err)
	}
	os.Remove(notes)

	card := filepath.Join(out, export.CardName)
	os.WriteFile(card, []byte("mine"), 0o644)
	code, _, stderr = redraft(t, "splice", "--format", "prm800k", "--input", input, "--out", out, "--overwrite")
	if code != 1 || !strings.Contains(stderr, card) {
		t.Fatalf("overwrite over a user's README.md: exit %d: %s", code, stderr)
	}
	kept(card)
	os.Remove(card)

	beside := mine("my-notes.txt")
	if code, _, stderr := redraft(t, "splice", "--format", "prm800k", "--input", input, "--out", out, "--overwrite"); code != 0 {
		t.Fatalf("overwrite of redraft's own output: %s", stderr)
	}
	kept(beside)

	// A new directory with a user's README.md: refused before anything is
	// written.
	fresh := t.TempDir()
	readme := filepath.Join(fresh, export.CardName)
	os.WriteFile(readme, []byte("mine"), 0o644)
	if code, _, stderr := redraft(t, "splice", "--format", "prm800k", "--input", input, "--out", fresh); code != 1 || !strings.Contains(stderr, readme) {
		t.Fatalf("a user's README.md: exit %d: %s", code, stderr)
	}
	kept(readme)
	if entries, _ := os.ReadDir(fresh); len(entries) != 1 {
		t.Errorf("written before the refusal: %v", entries)
	}
}

// A run that fails before it starts writing (a typo in an input path) leaves
// nothing behind: no directory, no journal, so the corrected rerun starts
// afresh instead of being refused as another configuration's run (issue 16
// item 5). Every job kind: a grading run, a splice, an Agent-R run.
func TestTypoLeavesNoDebris(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, config, good string }{
		{"run", "source: {kind: rollouts, path: %s, layout: gsm8k-example-solutions}\n", "../../testdata/gsm8k/example_model_solutions.jsonl"},
		{"splice", "splice: {format: prm800k, input: %s}\n", "../../testdata/prm800k/phase1_reconstructed.jsonl.gz"},
		{"agent-r", "source: {kind: tasks, path: %s}\nendpoint: {base_url: http://127.0.0.1:9/v1, model: m}\nagent_r: {step_judge: {base_url: http://127.0.0.1:9/v1, model: j}}\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name)
			cfg := writeConfig(t, "name: typo\noutput: {dir: set-by-out}\n"+strings.Replace(tc.config, "%s", filepath.Join(dir, "no-such-file.jsonl"), 1))
			code, _, stderr := redraft(t, "run", "--config", cfg, "--out", out, "--progress", "off")
			if code == 0 || !strings.Contains(stderr, "no-such-file.jsonl") {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				entries, _ := os.ReadDir(out)
				t.Fatalf("the failed run left %s behind: %v %v", out, err, entries)
			}
			if tc.good == "" {
				return
			}
			// An existing empty directory is kept, and still empty.
			os.MkdirAll(out, 0o755)
			if code, _, _ := redraft(t, "run", "--config", cfg, "--out", out, "--progress", "off"); code == 0 {
				t.Fatal("the typo run succeeded")
			}
			if entries, err := os.ReadDir(out); err != nil || len(entries) != 0 {
				t.Fatalf("the failed run left %v in an existing directory (%v)", entries, err)
			}
			fixed := writeConfig(t, "name: typo\noutput: {dir: set-by-out}\n"+strings.Replace(tc.config, "%s", tc.good, 1))
			if code, _, stderr := redraft(t, "run", "--config", fixed, "--out", out, "--progress", "off", "--no-audit"); code != 0 {
				t.Fatalf("corrected rerun: exit %d: %s", code, stderr)
			}
		})
	}
}
