package export

import (
	"context"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/redraft/redraft/schemas"
	"github.com/redraft/redraft/tokenizer"
)

// Every column type of every released schema parses and prints back as
// written.
func TestParseTypeRoundTrip(t *testing.T) {
	for _, v := range []string{"rl/1", "rl/2", "rl/3", "sft/1", "sft/2", "pairs/1", "verl/1"} {
		d, err := schemas.Load(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range d.Columns {
			ct, err := parseType(c.Type)
			if err != nil {
				t.Fatalf("%s %s: %v", v, c.Name, err)
			}
			if ct.String() != c.Type {
				t.Errorf("%s %s: %q printed back as %q", v, c.Name, c.Type, ct.String())
			}
		}
	}
	for _, bad := range []string{"list<string", "struct<a string>", "float32", "struct<a: int32,b: bool>", "list<int32>>"} {
		if _, err := parseType(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// The card's YAML header has a config per dataset with its data files and
// features that Hugging Face datasets reads.
func TestCard(t *testing.T) {
	dir := t.TempDir()
	newFixture().write(t, dir, syntheticTrack(t, tokenizer.FormatChatML))
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	m.Rewards = RewardSummary{Rows: 10, Groups: 3, Mean: f64(0.55), Std: f64(0.4), Accuracy: f64(0.5), Graded: 10, FracZeroStd: f64(1.0 / 3)}
	if err := WriteCard(dir, m); err != nil {
		t.Fatal(err)
	}
	b, err := Card(m)
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
	for _, want := range []string{"# fixture", "| recipe (config name) | fixture |", "| `sft` | `sft/2` | 2 | 2 | 1 |", "Reward mean 0.5500, std 0.4000. Accuracy 50.0% of 10 graded rows.", `load_dataset("path/to/this/directory", "verl", split="train")`, "| `input_ids` | `list<int32>` |"} {
		if !strings.Contains(body, want) {
			t.Errorf("card lacks %q:\n%s", want, body)
		}
	}
	// The card is not a shard: the directory still validates.
	rep, err := Validate(context.Background(), dir, ValidateOptions{})
	if err != nil || !rep.OK() {
		t.Errorf("validate after the card: %v %+v", err, rep.Violations)
	}
}
