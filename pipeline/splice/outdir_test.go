package splice

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/pipeline"
)

// An Agent-R job writes and deletes only what redraft owns: --overwrite
// refuses a file under data/ that is not a shard, and a README.md that is
// not redraft's card stops the job, each named and left as it was.
func TestAgentRKeepsForeignFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	write("data/sft/train-00000.parquet", "old shard")
	write(export.ManifestName, `{"status": "complete", "config_hash": "old"}`)
	write("data/notes.txt", "mine")
	cfg, err := pipeline.LoadConfig("../../configs/presets/agent-r.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Output.Dir = dir
	// The Agent-R job opens its directory through the harness.
	prepareDir := func(overwrite bool) error {
		h, err := pipeline.Open(cfg, "agent-r:tasks", pipeline.JobOptions{Overwrite: overwrite})
		if err == nil {
			h.Close()
		}
		return err
	}
	err = prepareDir(true)
	if err == nil || !strings.Contains(err.Error(), "data/notes.txt") {
		t.Fatalf("overwrite: got %v, want a refusal naming data/notes.txt", err)
	}
	for _, rel := range []string{"data/notes.txt", "data/sft/train-00000.parquet", export.ManifestName} {
		if _, err := os.Stat(filepath.Join(dir, rel)); err != nil {
			t.Errorf("%s removed by a refused overwrite: %v", rel, err)
		}
	}
	os.Remove(filepath.Join(dir, "data/notes.txt"))
	write("README.md", "# mine\n")
	if err := prepareDir(true); err == nil || !strings.Contains(err.Error(), "README.md") {
		t.Fatalf("overwrite over a user's README: %v", err)
	}
	if err := prepareDir(false); err == nil || !strings.Contains(err.Error(), "README.md") {
		t.Fatalf("a user's README: %v", err)
	}
	os.Remove(filepath.Join(dir, "README.md"))
	if err := prepareDir(true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data/sft/train-00000.parquet")); !os.IsNotExist(err) {
		t.Errorf("overwrite kept redraft's shard: %v", err)
	}
}
