// Tests that read what export's writers write back through the reader
// packages (validate, audit) and the shared fixture of internal/exporttest.
// They are an external test package: export itself never imports its
// readers.

package export_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"gopkg.in/yaml.v3"

	"github.com/redraft/redraft/audit"
	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/exporttest"
	"github.com/redraft/redraft/schemas"
	"github.com/redraft/redraft/tokenizer"
	"github.com/redraft/redraft/validate"
)

var (
	f64            = exporttest.F64
	sampleRows     = exporttest.SampleRows
	syntheticTrack = exporttest.SyntheticTrack
	sftRow         = exporttest.SFTRow
	editManifest   = exporttest.EditManifest
)

// The rl columns must match the released description of the current schema
// version. A column change without a version bump (and a new
// schemas/rl.v<N>.json) fails here.
func TestRLSchemaMatchesDescription(t *testing.T) {
	checkSchema(t, export.RLSchema, writeOne(t, "rl", export.RLSchema, sampleRows("a", f64(1), nil)))
}

func TestSFTSchemaMatchesDescription(t *testing.T) {
	checkSchema(t, export.SFTSchema, writeOne(t, "sft", export.SFTSchema, []export.SFTRow{{ID: "x", Messages: []export.SFTMessage{{Role: "user", Content: "q"}}}}))
}

func TestPairsSchemaMatchesDescription(t *testing.T) {
	checkSchema(t, export.PairsSchema, writeOne(t, "pairs", export.PairsSchema, []export.PairRow{{ID: "x", Prompt: []export.Message{{Role: "user", Content: "q"}}}}))
}

func writeOne[T any](t *testing.T, dataset, schema string, rows []T) string {
	t.Helper()
	dir := t.TempDir()
	w, err := export.NewShardWriter[T](export.ShardOptions{Dir: dir, Dataset: dataset, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteGroup(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	shards, err := w.Flush()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, shards[0].Path)
}

func checkSchema(t *testing.T, version, path string) {
	t.Helper()
	got, err := validate.DescribeFile(path)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := schemas.Load(version)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(desc.Columns) {
		t.Fatalf("shards have %d columns, %s describes %d: bump the schema version and add a new schemas file", len(got), version, len(desc.Columns))
	}
	for i, c := range desc.Columns {
		if got[i].Name != c.Name || got[i].Type != c.Type || got[i].Nullable != c.Nullable {
			t.Errorf("column %d: shard has %s %s nullable=%v, %s says %s %s nullable=%v: bump the schema version and add a new schemas file",
				i, got[i].Name, got[i].Type, got[i].Nullable, version, c.Name, c.Type, c.Nullable)
		}
		if c.Description == "" {
			t.Errorf("column %s has no description", c.Name)
		}
	}
}

func TestRLTokensSchemaMatchesDescription(t *testing.T) {
	rows := sampleRows("a", f64(1), f64(0))
	tr, err := syntheticTrack(t, tokenizer.FormatChatML).RLTrack(rows[0].Prompt, rows[0].Response, false)
	if err != nil {
		t.Fatal(err)
	}
	tr.Apply(&rows[0])
	export.RLTokens{Reason: export.NoTokenizer}.Apply(&rows[1])
	checkSchema(t, export.RLSchema, writeOne(t, "rl", export.RLSchema, rows))
}

func TestSFTTokensSchemaMatchesDescription(t *testing.T) {
	tt := syntheticTrack(t, tokenizer.FormatChatML)
	r, err := tt.Row(sftRow("x", []any{"user", "q", false}, []any{"assistant", "a", true}))
	if err != nil {
		t.Fatal(err)
	}
	checkSchema(t, export.SFTTokensSchema, writeOne(t, "sft", export.SFTTokensSchema, []export.SFTTokensRow{r}))
}

func TestVerlSchemaMatchesDescription(t *testing.T) {
	ref := "3"
	checkSchema(t, export.VerlSchema, writeOne(t, export.VerlDataset, export.VerlSchema, []export.VerlRow{
		export.VerlPrompt(export.VerlTask{TaskID: "a", DataSource: "ds", Messages: []export.Message{{Role: "user", Content: "q"}}, Reference: &ref}, "math", "train", 0),
	}))
}

// The card's YAML header has a config per dataset with its data files and
// features that Hugging Face datasets reads.
func TestCard(t *testing.T) {
	dir := t.TempDir()
	exporttest.New().Write(t, dir, syntheticTrack(t, tokenizer.FormatChatML))
	m, err := export.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	m.Rewards = export.RewardSummary{Rows: 10, Groups: 3, Mean: f64(0.55), Std: f64(0.4), Accuracy: f64(0.5), Graded: 10, FracZeroStd: f64(1.0 / 3)}
	if err := export.WriteCard(dir, m); err != nil {
		t.Fatal(err)
	}
	b, err := export.Card(m)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	head, body, ok := strings.Cut(strings.TrimPrefix(text, "---\n"), "\n---\n")
	if !strings.HasPrefix(text, "---\n") || !ok {
		t.Fatalf("no YAML header:\n%s", text)
	}
	type feature struct {
		Name   string    `yaml:"name"`
		Dtype  string    `yaml:"dtype"`
		List   yaml.Node `yaml:"list"`
		Struct []feature `yaml:"struct"`
	}
	var card struct {
		Configs []struct {
			ConfigName string                         `yaml:"config_name"`
			DataFiles  []struct{ Split, Path string } `yaml:"data_files"`
			Default    bool                           `yaml:"default"`
		} `yaml:"configs"`
		DatasetInfo []struct {
			ConfigName string    `yaml:"config_name"`
			Features   []feature `yaml:"features"`
			Splits     []struct {
				Name        string `yaml:"name"`
				NumExamples int64  `yaml:"num_examples"`
			} `yaml:"splits"`
		} `yaml:"dataset_info"`
	}
	if err := yaml.Unmarshal([]byte(head), &card); err != nil {
		t.Fatalf("YAML header: %v\n%s", err, head)
	}
	wantConfigs := []string{"rl", "sft", "pairs", "verl"}
	wantRows := map[string]int64{"rl": 10, "sft": 2, "pairs": 1, "verl": 3}
	if len(card.Configs) != 4 || len(card.DatasetInfo) != 4 {
		t.Fatalf("configs %+v", card.Configs)
	}
	for i, n := range wantConfigs {
		c, info := card.Configs[i], card.DatasetInfo[i]
		if c.ConfigName != n || len(c.DataFiles) != 1 || c.DataFiles[0].Split != "train" || c.DataFiles[0].Path != "data/"+n+"/train-*.parquet" || c.Default != (i == 0) {
			t.Errorf("config %d: %+v", i, c)
		}
		if info.ConfigName != n || len(info.Splits) != 1 || info.Splits[0].NumExamples != wantRows[n] {
			t.Errorf("dataset_info %d: %+v", i, info)
		}
		d, _ := schemas.Load(m.Datasets[n].Schema)
		if len(info.Features) != len(d.Columns) {
			t.Errorf("%s: %d features, %d columns", n, len(info.Features), len(d.Columns))
		}
	}
	// Spot checks of the feature forms.
	feat := func(cfg int, name string) feature {
		for _, f := range card.DatasetInfo[cfg].Features {
			if f.Name == name {
				return f
			}
		}
		t.Fatalf("no feature %s in config %d", name, cfg)
		return feature{}
	}
	if f := feat(1, "input_ids"); f.List.Value != "int32" {
		t.Errorf("input_ids: %+v", f)
	}
	if f := feat(0, "reward"); f.Dtype != "float64" {
		t.Errorf("reward: %+v", f)
	}
	if f := feat(3, "reward_model"); len(f.Struct) != 2 || f.Struct[1].Name != "ground_truth" || f.Struct[1].Dtype != "string" {
		t.Errorf("reward_model: %+v", f)
	}
	if f := feat(3, "prompt"); f.List.Kind != yaml.SequenceNode || len(f.List.Content) != 2 {
		t.Errorf("prompt: %+v", f)
	}
	for _, want := range []string{"# fixture", "| recipe (config name) | fixture |", "| `sft` | `sft/4` | 2 | 2 | 1 |", "Reward mean 0.5500, std 0.4000. Accuracy 50.0% of 10 graded rows.", `load_dataset("path/to/this/directory", "verl", split="train")`, "| `input_ids` | `list<int32>` |"} {
		if !strings.Contains(body, want) {
			t.Errorf("card lacks %q:\n%s", want, body)
		}
	}
	// The card is not a shard: the directory still validates.
	rep, err := validate.Dir(context.Background(), dir, validate.Options{})
	if err != nil || !rep.OK() {
		t.Errorf("validate after the card: %v %+v", err, rep.Violations)
	}
}

// A shard as parquet-go writes it by default, with a 5 MiB response: its
// page header holds the value four times, more than Arrow Go reads, and
// Arrow Go then ends the column without an error. Reading it is an error
// naming both counts, never fewer rows: for ReadRows, validate and audit.
func TestShortReadIsAnError(t *testing.T) {
	dir := t.TempDir()
	fx := exporttest.New()
	fx.Write(t, dir, nil)
	rows := make([]export.RLRow, 0, 10)
	for _, g := range fx.RL {
		rows = append(rows, g...)
	}
	rows[0].Response = strings.Repeat("long response ", 5<<20/14)
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[export.RLRow](&buf, parquet.KeyValueMetadata("redraft.schema", export.RLSchema), parquet.KeyValueMetadata("redraft.dataset", "rl"))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "data", "rl", "train-00000.parquet")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	editManifest(t, dir, func(m *export.Manifest) {
		ds := m.Datasets["rl"]
		ds.Shards[0].Bytes, ds.Shards[0].SHA256 = int64(buf.Len()), hex.EncodeToString(sum[:])
		m.Datasets["rl"] = ds
	})
	ctx := context.Background()
	if got, err := export.ReadRL(ctx, path); err == nil || !strings.Contains(err.Error(), "read 0 rows, its footer lists 10") {
		t.Errorf("ReadRL: %d rows, %v", len(got), err)
	}
	rep, err := validate.Dir(ctx, dir, validate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, v := range rep.Violations {
		all = append(all, v.String())
	}
	if !strings.Contains(strings.Join(all, "\n"), "read 0 rows, its footer lists 10") {
		t.Errorf("validate:\n%s", strings.Join(all, "\n"))
	}
	if a, err := audit.Path(ctx, dir, audit.Options{}); err == nil || !strings.Contains(err.Error(), "read 0 rows, the footer lists 10") {
		t.Errorf("audit: %v, %+v", err, a)
	}
}
