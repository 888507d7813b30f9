package export

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/redraft/redraft/schemas"
)

// CardName is the dataset card's file name in the output directory.
const CardName = "README.md"

// WriteCard writes the dataset card, dir/README.md: the YAML header Hugging
// Face reads (configs with their data_files per dataset and split, and
// dataset_info with each dataset's features and split sizes), then prose
// saying what ran (recipe, model, source, code), what was written and the
// reward summary, and how to load it. Call it after the manifest is written;
// it is rewritten whole each time. A README.md that redraft did not write is
// never replaced (see CheckCard): runs refuse such a directory before they
// start, and this check keeps every other writer (merge) to the same rule.
func WriteCard(dir string, m *Manifest) error {
	if err := CheckCard(dir); err != nil {
		return err
	}
	b, err := Card(m)
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(filepath.Join(dir, CardName), b); err != nil {
		return fmt.Errorf("writing dataset card: %w", err)
	}
	return nil
}

// cardOrder puts the main dataset first: it is the default config.
var cardOrder = map[string]int{"rl": 0, "sft": 1, "pairs": 2, VerlDataset: 3}

// Card renders the dataset card of a manifest, without the credentials its
// URLs and messages may hold (see Manifest.Redacted): the card is the file
// people publish.
func Card(m *Manifest) ([]byte, error) {
	m, err := m.Redacted()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(m.Datasets))
	for n := range m.Datasets {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		oi, ok := cardOrder[names[i]]
		if !ok {
			oi = len(cardOrder)
		}
		oj, ok := cardOrder[names[j]]
		if !ok {
			oj = len(cardOrder)
		}
		if oi != oj {
			return oi < oj
		}
		return names[i] < names[j]
	})
	descs := map[string]*schemas.Description{}
	for _, n := range names {
		d, err := schemas.Load(m.Datasets[n].Schema)
		if err != nil {
			return nil, fmt.Errorf("dataset card: %w", err)
		}
		descs[n] = d
	}
	var b strings.Builder
	b.WriteString("---\nconfigs:\n")
	for i, n := range names {
		ds := m.Datasets[n]
		fmt.Fprintf(&b, "- config_name: %s\n  data_files:\n", n)
		for _, split := range splits(ds) {
			fmt.Fprintf(&b, "  - split: %s\n    path: %sdata/%s/%s-*.parquet\n", split, partsGlob(m), n, split)
		}
		if i == 0 {
			b.WriteString("  default: true\n")
		}
	}
	b.WriteString("dataset_info:\n")
	for _, n := range names {
		ds := m.Datasets[n]
		fmt.Fprintf(&b, "- config_name: %s\n  features:\n", n)
		for _, c := range descs[n].Columns {
			t, err := parseType(c.Type)
			if err != nil {
				return nil, fmt.Errorf("dataset card: %s column %s: %w", ds.Schema, c.Name, err)
			}
			writeFeature(&b, "  ", c.Name, t)
		}
		b.WriteString("  splits:\n")
		var size int64
		for _, split := range splits(ds) {
			var rows, bytes int64
			for _, s := range ds.Shards {
				if shardSplit(s.Path) == split {
					rows += s.Rows
					bytes += s.Bytes
				}
			}
			size += bytes
			// num_bytes is the split's size in its Parquet files, not
			// in Arrow memory (which the manifest does not record).
			fmt.Fprintf(&b, "  - name: %s\n    num_bytes: %d\n    num_examples: %d\n", split, bytes, rows)
		}
		fmt.Fprintf(&b, "  download_size: %d\n", size)
	}
	b.WriteString("tags:\n- redraft\n- self-correction\n- reinforcement-learning\n---\n\n")
	b.WriteString(CardMarker + "\n\n")
	writeProse(&b, m, names, descs)
	return []byte(b.String()), nil
}

// splits lists a dataset's splits from its shard names (train when it has
// none yet, so that the config still names its files).
func splits(ds DatasetInfo) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ds.Shards {
		if sp := shardSplit(s.Path); !seen[sp] {
			seen[sp] = true
			out = append(out, sp)
		}
	}
	if len(out) == 0 {
		out = []string{"train"}
	}
	sort.Strings(out)
	return out
}

// shardSplit is the split of data/<dataset>/<split>-NNNNN.parquet.
func shardSplit(path string) string {
	base := filepath.Base(path)
	if i := strings.LastIndexByte(base, '-'); i > 0 {
		return base[:i]
	}
	return strings.TrimSuffix(base, ".parquet")
}

// colType is a parsed type of redraft's schema language.
type colType struct {
	prim   string // string, bool, int32, int64, double
	elem   *colType
	fields []colField
}

type colField struct {
	name     string
	nullable bool
	t        *colType
}

// parseType parses the schema language of schemas/ (the language validate.DescribeType writes).
func parseType(s string) (*colType, error) {
	p := &typeParser{s: s}
	t, err := p.typ()
	if err != nil {
		return nil, err
	}
	if p.i != len(s) {
		return nil, fmt.Errorf("type %q: unexpected %q at %d", s, s[p.i:], p.i)
	}
	return t, nil
}

type typeParser struct {
	s string
	i int
}

func (p *typeParser) eat(tok string) bool {
	if strings.HasPrefix(p.s[p.i:], tok) {
		p.i += len(tok)
		return true
	}
	return false
}

func (p *typeParser) ident() string {
	j := p.i
	for j < len(p.s) && (p.s[j] == '_' || p.s[j] >= 'a' && p.s[j] <= 'z' || p.s[j] >= 'A' && p.s[j] <= 'Z' || p.s[j] >= '0' && p.s[j] <= '9') {
		j++
	}
	id := p.s[p.i:j]
	p.i = j
	return id
}

func (p *typeParser) typ() (*colType, error) {
	switch {
	case p.eat("list<"):
		e, err := p.typ()
		if err != nil {
			return nil, err
		}
		if !p.eat(">") {
			return nil, fmt.Errorf("type %q: list not closed at %d", p.s, p.i)
		}
		return &colType{elem: e}, nil
	case p.eat("struct<"):
		t := &colType{}
		for {
			name := p.ident()
			if name == "" {
				return nil, fmt.Errorf("type %q: field name expected at %d", p.s, p.i)
			}
			f := colField{name: name, nullable: p.eat("?")}
			if !p.eat(": ") {
				return nil, fmt.Errorf("type %q: ': ' expected at %d", p.s, p.i)
			}
			var err error
			if f.t, err = p.typ(); err != nil {
				return nil, err
			}
			t.fields = append(t.fields, f)
			if p.eat(">") {
				return t, nil
			}
			if !p.eat(", ") {
				return nil, fmt.Errorf("type %q: ', ' or '>' expected at %d", p.s, p.i)
			}
		}
	}
	switch id := p.ident(); id {
	case "string", "bool", "int32", "int64", "double":
		return &colType{prim: id}, nil
	default:
		return nil, fmt.Errorf("type %q: unknown type %q", p.s, id)
	}
}

// String writes the type back in the schema language.
func (t *colType) String() string {
	switch {
	case t.elem != nil:
		return "list<" + t.elem.String() + ">"
	case t.fields != nil:
		parts := make([]string, len(t.fields))
		for i, f := range t.fields {
			q := ""
			if f.nullable {
				q = "?"
			}
			parts[i] = f.name + q + ": " + f.t.String()
		}
		return "struct<" + strings.Join(parts, ", ") + ">"
	}
	return t.prim
}

// hfDtype is the Hugging Face datasets Value dtype of a primitive.
func hfDtype(prim string) string {
	if prim == "double" {
		return "float64"
	}
	return prim
}

// writeFeature writes one feature of dataset_info in the YAML form
// Hugging Face datasets reads: dtype for a value, list for a list (of a
// dtype, or of a struct's fields), struct for a struct's fields.
func writeFeature(b *strings.Builder, ind, name string, t *colType) {
	fmt.Fprintf(b, "%s- name: %s\n", ind, name)
	writeFeatureBody(b, ind+"  ", t)
}

func writeFeatureBody(b *strings.Builder, ind string, t *colType) {
	switch {
	case t.elem != nil && t.elem.fields != nil:
		fmt.Fprintf(b, "%slist:\n", ind)
		for _, f := range t.elem.fields {
			writeFeature(b, ind, f.name, f.t)
		}
	case t.elem != nil && t.elem.elem == nil:
		fmt.Fprintf(b, "%slist: %s\n", ind, hfDtype(t.elem.prim))
	case t.elem != nil:
		// A list of lists.
		fmt.Fprintf(b, "%slist:\n", ind)
		writeFeatureBody(b, ind+"  ", t.elem)
	case t.fields != nil:
		fmt.Fprintf(b, "%sstruct:\n", ind)
		for _, f := range t.fields {
			writeFeature(b, ind, f.name, f.t)
		}
	default:
		fmt.Fprintf(b, "%sdtype: %s\n", ind, hfDtype(t.prim))
	}
}

// cardConfig is the part of the run configuration the card describes.
type cardConfig struct {
	Name      string `json:"name"`
	Advantage struct {
		Estimator string  `json:"estimator"`
		Eps       float64 `json:"eps"`
	} `json:"advantage"`
	Episode struct {
		Turns    int    `json:"turns"`
		Feedback string `json:"feedback"`
	} `json:"episode"`
	Reward struct {
		Weights map[string]float64 `json:"weights"`
	} `json:"reward"`
	Splice *struct {
		Format string `json:"format"`
		Input  string `json:"input"`
	} `json:"splice"`
}

func writeProse(b *strings.Builder, m *Manifest, names []string, descs map[string]*schemas.Description) {
	var cfg cardConfig
	_ = json.Unmarshal(m.Config, &cfg) // a config the card cannot read only leaves lines out
	title := cfg.Name
	if title == "" {
		title = m.Source
	}
	fmt.Fprintf(b, "# %s\n\n", mdText(title))
	fmt.Fprintf(b, "Made by [redraft](https://github.com/redraft/redraft) (%s, %s). Run status: **%s**", mdText(m.CodeVersion), mdText(m.GoVersion), m.Status)
	if m.Error != "" {
		fmt.Fprintf(b, " (%s)", mdText(m.Error))
	}
	b.WriteString(".\n\n")
	b.WriteString("| | |\n|---|---|\n")
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(b, "| %s | %s |\n", k, mdCell(v))
		}
	}
	row("recipe (config name)", cfg.Name)
	row("source", m.Source)
	if cfg.Splice != nil {
		row("spliced from", cfg.Splice.Format+": "+cfg.Splice.Input)
	}
	row("model", m.Model)
	row("endpoint", m.Endpoint)
	if cfg.Advantage.Estimator != "" {
		row("advantage", fmt.Sprintf("%s, eps %g", cfg.Advantage.Estimator, cfg.Advantage.Eps))
	}
	if cfg.Episode.Turns > 1 {
		row("episode", fmt.Sprintf("%d turns, feedback %s", cfg.Episode.Turns, cfg.Episode.Feedback))
	}
	if len(cfg.Reward.Weights) > 0 {
		keys := make([]string, 0, len(cfg.Reward.Weights))
		for k := range cfg.Reward.Weights {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s %g", k, cfg.Reward.Weights[k])
		}
		row("reward weights", strings.Join(parts, ", "))
	}
	row("config hash", m.ConfigHash)
	if !m.Started.IsZero() {
		row("started", m.Started.Format("2006-01-02 15:04:05 UTC"))
		row("finished", m.Finished.Format("2006-01-02 15:04:05 UTC"))
	}
	b.WriteString("\nThe full configuration, every shard's sha256 and the counts below are in `manifest.json`;\n`redraft validate DIR` checks the directory against it.\n\n## Datasets\n\n")
	b.WriteString("| config | schema | rows | groups | shards | bytes |\n|---|---|---|---|---|---|\n")
	for _, n := range names {
		ds := m.Datasets[n]
		var size int64
		for _, s := range ds.Shards {
			size += s.Bytes
		}
		fmt.Fprintf(b, "| `%s` | `%s` | %d | %d | %d | %d |\n", n, ds.Schema, ds.Rows, ds.Groups, len(ds.Shards), size)
	}
	if r := m.Rewards; r.Rows > 0 {
		b.WriteString("\n## Rewards\n\n")
		fmt.Fprintf(b, "%d rows in %d groups; %d failed samples, %d null rewards.", r.Rows, r.Groups, r.Failed, r.NullRewards)
		if r.Mean != nil && r.Std != nil {
			fmt.Fprintf(b, " Reward mean %.4f, std %.4f.", *r.Mean, *r.Std)
		}
		if r.Accuracy != nil {
			fmt.Fprintf(b, " Accuracy %.1f%% of %d graded rows.", 100**r.Accuracy, r.Graded)
		}
		if r.FracZeroStd != nil {
			fmt.Fprintf(b, " Zero-variance groups: %.3f (frac_reward_zero_std)", *r.FracZeroStd)
			if r.DroppedZeroStd > 0 {
				fmt.Fprintf(b, ", %d dropped", r.DroppedZeroStd)
			}
			b.WriteString(".")
		}
		b.WriteString("\n")
		if len(r.FinishReason) > 0 {
			keys := make([]string, 0, len(r.FinishReason))
			for k := range r.FinishReason {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			parts := make([]string, len(keys))
			for i, k := range keys {
				parts[i] = fmt.Sprintf("%s %d", mdText(k), r.FinishReason[k])
			}
			fmt.Fprintf(b, "\nfinish_reason: %s.\n", strings.Join(parts, ", "))
		}
	}
	if len(m.Skipped) > 0 {
		fmt.Fprintf(b, "\n%d input records produced no output; `manifest.json` lists each with its reason.\n", len(m.Skipped))
	}
	b.WriteString("\n## Loading\n\n```python\nfrom datasets import load_dataset\n")
	for _, n := range names {
		fmt.Fprintf(b, "%s = load_dataset(\"path/to/this/directory\", %q, split=\"train\")\n", n, n)
	}
	b.WriteString("```\n\nEvery shard is a zstd Parquet file that pyarrow reads as it is; its schema version is in its\nmetadata (`redraft.schema`).\n")
	for _, n := range names {
		d := descs[n]
		fmt.Fprintf(b, "\n### `%s` (%s)\n\n%s\n\n| column | type | null | description |\n|---|---|---|---|\n", n, d.Version, mdText(d.Description))
		for _, c := range d.Columns {
			null := ""
			if c.Nullable {
				null = "yes"
			}
			fmt.Fprintf(b, "| `%s` | `%s` | %s | %s |\n", c.Name, c.Type, null, mdCell(c.Description))
		}
	}
}

// mdText keeps a value on one line.
func mdText(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// mdCell makes a value safe inside a Markdown table cell.
func mdCell(s string) string {
	return strings.ReplaceAll(mdText(s), "|", `\|`)
}

// partsGlob is the prefix of a merged run's shard files (each part wrote
// under shards/<part>/), empty for a run written in one directory.
func partsGlob(m *Manifest) string {
	if len(m.Parts) > 0 {
		return "shards/*/"
	}
	return ""
}
