package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout"
)

// writeFile writes a user's file under dir and returns its content.
func writeUserFile(t *testing.T, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func checkUserFile(t *testing.T, dir, rel, content string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil || string(b) != content {
		t.Errorf("%s: %q, %v; want the user's file untouched", rel, b, err)
	}
}

// A README.md that redraft did not write stops a run before it writes
// anything; redraft's own card is recognised and rewritten.
func TestRunRefusesForeignReadme(t *testing.T) {
	cfg := quickstartConfig(t)
	dir := cfg.Output.Dir
	const readme = "# My experiments\n\nNotes I keep next to the data.\n"
	writeUserFile(t, dir, "README.md", readme)
	_, err := Execute(context.Background(), cfg, JobOptions{})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "README.md")) || !strings.Contains(err.Error(), "not written by redraft") {
		t.Fatalf("got %v, want a refusal naming README.md", err)
	}
	checkUserFile(t, dir, "README.md", readme)
	for _, p := range []string{export.ManifestName, "data", journalDir, export.FailuresName} {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s written before the refusal: %v", p, err)
		}
	}
	if _, err := Execute(context.Background(), cfg, JobOptions{Overwrite: true}); err == nil || !strings.Contains(err.Error(), "README.md") {
		t.Fatalf("--overwrite: got %v, want the same refusal", err)
	}
	checkUserFile(t, dir, "README.md", readme)

	// Without it, the run writes its card; the card is its own, so the
	// same directory runs again (complete) and is overwritten.
	os.Remove(filepath.Join(dir, "README.md"))
	if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
		t.Fatal(err)
	}
	card, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil || !export.IsCard(card) || !strings.Contains(string(card), export.CardMarker) {
		t.Fatalf("card without its marker: %v", err)
	}
	if _, err := Execute(context.Background(), cfg, JobOptions{}); !errors.Is(err, ErrAlreadyComplete) {
		t.Fatalf("rerun: %v", err)
	}
	if _, err := Execute(context.Background(), cfg, JobOptions{Overwrite: true}); err != nil {
		t.Fatalf("overwrite of redraft's own output: %v", err)
	}
}

// --overwrite removes redraft's own files only: a file under data/ that is
// not a shard is refused by name, and nothing is removed.
func TestOverwriteKeepsForeignFiles(t *testing.T) {
	cfg := quickstartConfig(t)
	dir := cfg.Output.Dir
	m, err := Execute(context.Background(), cfg, JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"data/notes.txt", "data/rl/my-eval.csv", "data/mydata/train-00000.parquet"} {
		t.Run(rel, func(t *testing.T) {
			writeUserFile(t, dir, rel, "mine")
			_, err := Execute(context.Background(), cfg, JobOptions{Overwrite: true})
			if err == nil || !strings.Contains(err.Error(), rel) || !strings.Contains(err.Error(), "did not write") {
				t.Fatalf("got %v, want a refusal naming %s", err, rel)
			}
			checkUserFile(t, dir, rel, "mine")
			// Nothing of the previous run was removed either.
			if _, err := os.Stat(filepath.Join(dir, m.Datasets["rl"].Shards[0].Path)); err != nil {
				t.Errorf("a shard was removed before the refusal: %v", err)
			}
			if _, err := export.ReadManifest(dir); err != nil {
				t.Errorf("the manifest was removed before the refusal: %v", err)
			}
			os.Remove(filepath.Join(dir, filepath.FromSlash(rel)))
		})
	}
	// A file beside the run's (not under data/) is the user's and stays.
	writeUserFile(t, dir, "notes.txt", "mine")
	if _, err := Execute(context.Background(), cfg, JobOptions{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	checkUserFile(t, dir, "notes.txt", "mine")
}

// A new run does not call a foreign file under data/ a shard: it names it.
func TestForeignFileUnderDataIsNotAShard(t *testing.T) {
	cfg := quickstartConfig(t)
	dir := cfg.Output.Dir
	writeUserFile(t, dir, "data/rl/scores.json", "{}")
	_, err := Execute(context.Background(), cfg, JobOptions{})
	if err == nil || !strings.Contains(err.Error(), "data/rl/scores.json") || strings.Contains(err.Error(), "already has shards") {
		t.Fatalf("got %v, want a refusal naming data/rl/scores.json", err)
	}
	checkUserFile(t, dir, "data/rl/scores.json", "{}")
}

// A resume deletes the shard files its journal does not list, and never a
// file that is not named as one.
func TestResumeKeepsForeignFiles(t *testing.T) {
	cfg := quickstartConfig(t)
	cfg.Output.ShardBytes = 128 << 10
	dir := cfg.Output.Dir
	stop := rollout.NewStopper()
	_, err := Execute(context.Background(), cfg, JobOptions{Stop: stop, OnGroup: func(written int64, _ int) {
		if written == 600 {
			stop.Stop()
		}
	}})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("stopped run: %v", err)
	}
	writeUserFile(t, dir, "data/rl/extra.parquet", "mine")
	if _, err := Execute(context.Background(), cfg, JobOptions{}); err == nil || !strings.Contains(err.Error(), "data/rl/extra.parquet") {
		t.Fatalf("resume: got %v, want a refusal naming data/rl/extra.parquet", err)
	}
	checkUserFile(t, dir, "data/rl/extra.parquet", "mine")
	// cleanData on its own (openRun checks first) refuses it too.
	if err := cleanData(dir, nil); err == nil || !strings.Contains(err.Error(), "data/rl/extra.parquet") {
		t.Fatalf("cleanData: %v", err)
	}
	checkUserFile(t, dir, "data/rl/extra.parquet", "mine")
	os.Remove(filepath.Join(dir, "data/rl/extra.parquet"))
	m, err := Execute(context.Background(), cfg, JobOptions{})
	if err != nil || m.Datasets["rl"].Rows != 5276 {
		t.Fatalf("resume: %v", err)
	}
}
