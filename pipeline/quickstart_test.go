package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/redraft/redraft/audit"
	"github.com/redraft/redraft/export"
)

// quickstartConfig loads the README's quickstart configuration, with paths
// made relative to this package and output in a temporary directory.
func quickstartConfig(t *testing.T) *Config {
	t.Helper()
	cfg, err := LoadConfig("../configs/quickstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Source.Path = filepath.Join("..", cfg.Source.Path)
	cfg.Output.Dir = t.TempDir()
	return cfg
}

func readAll(t *testing.T, dir string) []export.RLRow {
	t.Helper()
	paths, err := audit.RLShards(dir)
	if err != nil {
		t.Fatal(err)
	}
	var rows []export.RLRow
	for _, p := range paths {
		r, err := export.ReadRL(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r...)
	}
	return rows
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkManifest verifies that the manifest lists exactly the shards on disk,
// with their row counts and checksums.
func checkManifest(t *testing.T, dir string, m *export.Manifest) {
	t.Helper()
	paths, _ := audit.RLShards(dir)
	ds := m.Datasets["rl"]
	if len(ds.Shards) != len(paths) {
		t.Fatalf("manifest lists %d shards, %d on disk", len(ds.Shards), len(paths))
	}
	for i, s := range ds.Shards {
		p := filepath.Join(dir, filepath.FromSlash(s.Path))
		if p != paths[i] {
			t.Errorf("shard %d: manifest %s, disk %s", i, p, paths[i])
		}
		if got := fileSHA(t, p); got != s.SHA256 {
			t.Errorf("%s: sha256 %s, manifest says %s", p, got, s.SHA256)
		}
		rows, err := export.ReadRL(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(rows)) != s.Rows {
			t.Errorf("%s: %d rows, manifest says %d", p, len(rows), s.Rows)
		}
	}
	tmps, _ := filepath.Glob(filepath.Join(dir, "data", "rl", ".*"))
	if len(tmps) > 0 {
		t.Errorf("temporary files left behind: %v", tmps)
	}
}

func TestQuickstart(t *testing.T) {
	cfg := quickstartConfig(t)
	m, err := Execute(context.Background(), cfg, JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != export.StatusComplete || m.Datasets["rl"].Rows != 5276 || m.Datasets["rl"].Groups != 1319 {
		t.Fatalf("manifest: status %s, %d rows, %d groups", m.Status, m.Datasets["rl"].Rows, m.Datasets["rl"].Groups)
	}
	checkManifest(t, cfg.Output.Dir, m)
	rows := readAll(t, cfg.Output.Dir)
	if len(rows) != 5276 {
		t.Fatalf("read back %d rows", len(rows))
	}

	// Per source model, redraft's verdict against the dataset's own labels.
	type tally struct{ agree, disagree, labelled int }
	byModel := map[string]*tally{}
	var disagreements []string
	for i, r := range rows {
		if r.GroupID != r.TaskID+"#t0" || int(r.SampleIndex) != i%4 || r.GroupSize != 4 {
			t.Fatalf("row %d: group %s sample %d size %d", i, r.GroupID, r.SampleIndex, r.GroupSize)
		}
		if r.Correct == nil || r.Reward == nil || r.Advantage == nil || r.ResponseMetadata == nil {
			t.Fatalf("row %d has nulls: %+v", i, r)
		}
		var label struct {
			IsCorrect bool `json:"is_correct"`
		}
		if err := json.Unmarshal([]byte(*r.ResponseMetadata), &label); err != nil {
			t.Fatal(err)
		}
		tl := byModel[r.Model]
		if tl == nil {
			tl = &tally{}
			byModel[r.Model] = tl
		}
		if label.IsCorrect {
			tl.labelled++
		}
		if *r.Correct == label.IsCorrect {
			tl.agree++
		} else {
			tl.disagree++
			disagreements = append(disagreements, r.TaskID+" "+r.Model)
		}
	}
	// Pinned: the dataset's labels count 286 / 515 / 458 / 742 correct.
	want := map[string]tally{
		"6b_finetuning":     {agree: 1319, labelled: 286},
		"6b_verification":   {agree: 1319, labelled: 515},
		"175b_finetuning":   {agree: 1319, labelled: 458},
		"175b_verification": {agree: 1319, labelled: 742},
	}
	for model, w := range want {
		if got := byModel[model]; got == nil || *got != w {
			t.Errorf("%s: got %+v, want %+v", model, got, w)
		}
	}
	if len(disagreements) > 0 {
		t.Errorf("disagreements with is_correct: %v", disagreements)
	}
}

// The output must not depend on the number of workers or the window.
func TestOutputIndependentOfWorkers(t *testing.T) {
	var shas [][]string
	for _, p := range []PipelineConfig{{Workers: 1, Window: 1}, {Workers: 3, Window: 5}, {Workers: 8, Window: 200}} {
		cfg := quickstartConfig(t)
		cfg.Pipeline = p
		cfg.Output.ShardBytes = 256 << 10 // several shards
		m, err := Execute(context.Background(), cfg, JobOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, sh := range m.Datasets["rl"].Shards {
			s = append(s, sh.SHA256)
		}
		shas = append(shas, s)
	}
	if len(shas[0]) < 2 {
		t.Fatalf("expected rotation into several shards, got %d", len(shas[0]))
	}
	for i := 1; i < len(shas); i++ {
		if !reflect.DeepEqual(shas[0], shas[i]) {
			t.Errorf("run %d wrote different shards:\n%v\n%v", i, shas[0], shas[i])
		}
	}
}

// teeSink keeps every row it writes, to compare with what Arrow reads back.
type teeSink struct {
	w    *export.ShardWriter[export.RLRow]
	rows []export.RLRow
}

func (s *teeSink) Write(ctx context.Context, f *Flush) error {
	for _, g := range f.Groups {
		s.rows = append(s.rows, g.Rows...)
		if err := s.w.WriteGroup(ctx, g.Rows); err != nil {
			return err
		}
	}
	return nil
}

// Consensus on the real GSM8K solutions: how often the majority answer of the
// four models is the ground truth. Pinned, and quoted in the README.
func TestConsensusOnGSM8K(t *testing.T) {
	cfg := quickstartConfig(t)
	cfg.Reward.Weights = map[string]float64{"verifiable": 1, "consensus": 0}
	if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
		t.Fatal(err)
	}
	rows := readAll(t, cfg.Output.Dir)
	var groups, labelled, right, unanimous int
	var agreeAndCorrect, agree int
	for i, r := range rows {
		if r.ConsensusRatio != nil && *r.ConsensusRatio == 0 {
			t.Fatalf("row %d: ratio 0", i)
		}
		c := r.RewardComponents[1]
		if c.Name != "consensus" || c.Weight != 0 || c.Value == nil {
			t.Fatalf("row %d: consensus component %+v", i, c)
		}
		if *c.Value == 1 {
			agree++
			if *r.Correct {
				agreeAndCorrect++
			}
		}
		if r.SampleIndex != 0 {
			continue
		}
		groups++
		if r.ConsensusLabel != nil {
			labelled++
			if *r.ConsensusLabelCorrect {
				right++
			}
			if *r.ConsensusRatio == 1 {
				unanimous++
			}
		}
	}
	t.Logf("groups %d, labelled %d, label correct %d (%.1f%%), unanimous %d; samples agreeing with the label %d, of which correct %d",
		groups, labelled, right, 100*float64(right)/float64(labelled), unanimous, agree, agreeAndCorrect)
	if groups != 1319 || labelled != 1319 || right != 584 || unanimous != 163 || agree != 2721 || agreeAndCorrect != 1678 {
		t.Errorf("pinned consensus numbers changed: labelled %d, right %d, unanimous %d", labelled, right, unanimous)
	}
}
