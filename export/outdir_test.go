package export

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIsShardPath(t *testing.T) {
	for rel, want := range map[string]bool{
		"data/rl/train-00000.parquet":          true,
		"data/sft/test-00012.parquet":          true,
		"data/verl/train-00000.parquet":        true,
		"data/pairs/.train-00003.parquet.tmp":  true,
		"data/rl/train-123456.parquet":         true,
		"data/rl/train-0000.parquet":           false, // four digits: not redraft's
		"data/rl/notes.txt":                    false,
		"data/rl/train-00000.parquet.bak":      false,
		"data/mydata/train-00000.parquet":      false, // not one of redraft's datasets
		"data/train-00000.parquet":             false,
		"data/rl/sub/train-00000.parquet":      false,
		"README.md":                            false,
		"data/rl/.train-00000.parquet":         false,
		"data/rl/my eval-00000.parquet":        false,
		"shards/shard-00000-of-00002/manifest": false,
	} {
		if got := IsShardPath(rel); got != want {
			t.Errorf("IsShardPath(%q) = %v", rel, got)
		}
	}
}

// The card carries its marker; cards written before the marker are still
// recognised; a user's README is not, even one that mentions redraft.
func TestIsCard(t *testing.T) {
	m := &Manifest{Status: StatusComplete, Source: "rollouts", Datasets: map[string]DatasetInfo{"rl": {Schema: RLSchema}}}
	b, err := Card(m)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\n---\n\n"+CardMarker+"\n") || !IsCard(b) {
		t.Fatalf("card without its marker after the YAML header:\n%s", b)
	}
	legacy := strings.Replace(string(b), CardMarker+"\n\n", "", 1)
	if !IsCard([]byte(legacy)) {
		t.Error("a card written before the marker is not recognised")
	}
	for _, user := range []string{"# My dataset\n", "Made with [redraft](https://github.com/redraft/redraft).\n", "---\nconfigs:\n---\n# mine\n"} {
		if IsCard([]byte(user)) {
			t.Errorf("%q taken for a card", user)
		}
	}
}

// A README.md that redraft did not write is never replaced: WriteCard and
// Merge refuse it, naming it, before writing anything.
func TestCardNeverReplacesAUsersReadme(t *testing.T) {
	dir := t.TempDir()
	const readme = "# Notes\n"
	os.WriteFile(filepath.Join(dir, CardName), []byte(readme), 0o644)
	m := &Manifest{Status: StatusComplete, Datasets: map[string]DatasetInfo{"rl": {Schema: RLSchema}}}
	if err := WriteCard(dir, m); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, CardName)) {
		t.Fatalf("WriteCard over a user's README: %v", err)
	}
	// Merge: a complete part is there, the merged card would go over the
	// README.
	part := filepath.Join(dir, ShardDir(ShardSpec{Index: 0, Count: 1}))
	os.MkdirAll(part, 0o755)
	pm := &Manifest{Status: StatusComplete, Shard: &ShardSpec{Index: 0, Count: 1}, ConfigHash: "h", Started: time.Now(), Finished: time.Now(),
		Datasets: map[string]DatasetInfo{"rl": {Schema: RLSchema, Shards: []ShardInfo{}}}}
	if err := WriteManifest(part, pm); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(part, SuccessName), nil, 0o644)
	if _, err := Merge(dir, MergeOptions{}); err == nil || !strings.Contains(err.Error(), CardName) {
		t.Fatalf("Merge over a user's README: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, CardName)); string(b) != readme {
		t.Errorf("README replaced: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("merge wrote its manifest before refusing: %v", err)
	}
	os.Remove(filepath.Join(dir, CardName))
	if _, err := Merge(dir, MergeOptions{}); err != nil {
		t.Fatalf("merge without the README: %v", err)
	}
	if err := CheckCard(dir); err != nil {
		t.Errorf("redraft's own merged card refused: %v", err)
	}
}

// RemoveOutput removes what redraft wrote and nothing else; with a foreign
// file where redraft writes, it removes nothing.
func TestRemoveOutput(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := &Manifest{Status: StatusComplete, Datasets: map[string]DatasetInfo{"rl": {Schema: RLSchema}}}
	card, _ := Card(m)
	owned := []string{"data/rl/train-00000.parquet", "data/rl/.train-00001.parquet.tmp", "data/verl/train-00000.parquet",
		ManifestName, "." + ManifestName + ".tmp", FailuresName, "." + FailuresName + ".tmp", SuccessName, ".redraft/journal.json"}
	for _, rel := range owned {
		write(rel, "x")
	}
	write(CardName, string(card))
	write("notes.txt", "mine")
	write("config.yaml", "mine")

	write("data/rl/eval.csv", "mine")
	write("data/other/x.parquet", "mine")
	err := RemoveOutput(dir, ".redraft")
	if err == nil || !strings.Contains(err.Error(), "data/other/x.parquet, data/rl/eval.csv") {
		t.Fatalf("got %v, want both foreign files named", err)
	}
	for _, rel := range append(owned, CardName) {
		if _, err := os.Stat(filepath.Join(dir, rel)); err != nil {
			t.Errorf("%s removed by a refused overwrite: %v", rel, err)
		}
	}
	os.Remove(filepath.Join(dir, "data/rl/eval.csv"))
	os.RemoveAll(filepath.Join(dir, "data/other"))
	if err := RemoveOutput(dir, ".redraft"); err != nil {
		t.Fatal(err)
	}
	for _, rel := range append(owned, CardName, "data") {
		if _, err := os.Stat(filepath.Join(dir, rel)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived: %v", rel, err)
		}
	}
	for _, rel := range []string{"notes.txt", "config.yaml"} {
		if b, err := os.ReadFile(filepath.Join(dir, rel)); err != nil || string(b) != "mine" {
			t.Errorf("%s: %q %v", rel, b, err)
		}
	}
	if err := RemoveOutput(dir, "../x"); err == nil {
		t.Error("a path outside the directory was accepted")
	}
}

// The manifest and the card hold no credential of a base URL, whatever
// field it is in.
func TestManifestAndCardRedacted(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := json.Marshal(map[string]any{
		"name":     "run",
		"endpoint": map[string]any{"base_urls": []string{"http://u:SECRET1@h/v1", "http://h2/v1?api-key=SECRET2"}, "api_key_env": "sk-SECRET3"},
		"critique": map[string]any{"critic": map[string]any{"base_url": "http://c/v1?sig=SECRET4"}},
	})
	m := &Manifest{Status: StatusFailed, Config: cfg, Endpoint: "http://u:SECRET1@h/v1,http://h2/v1?api-key=SECRET2",
		Error:    `no response: Post "http://u:***@h/v1/chat/completions?api-key=SECRET2": refused`,
		Skipped:  []Skipped{{File: "t.jsonl", Line: 1, Reason: "endpoint http://h2/v1?api-key=SECRET2 failed"}},
		Datasets: map[string]DatasetInfo{"rl": {Schema: RLSchema}}}
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	if err := WriteCard(dir, m); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{ManifestName, CardName} {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		for _, s := range []string{"SECRET1", "SECRET2", "SECRET3", "SECRET4", "//u:"} {
			if strings.Contains(string(b), s) {
				t.Errorf("%s holds %q", name, s)
			}
		}
		if !strings.Contains(string(b), "http://h/v1,http://h2/v1") {
			t.Errorf("%s lost the endpoints", name)
		}
	}
	if m.Endpoint != "http://u:SECRET1@h/v1,http://h2/v1?api-key=SECRET2" {
		t.Error("WriteManifest changed the caller's manifest")
	}
}
