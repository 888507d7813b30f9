package validate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/schemas"
	"github.com/redraft/redraft/tokenizer"
)

// Violation is one way an output directory breaks its contract. Shard is the
// shard's path relative to the directory (empty for a dataset-level
// violation), Row the 0-based row within the shard (-1 when the violation is
// not about one row).
type Violation struct {
	Dataset string `json:"dataset"`
	Shard   string `json:"shard,omitempty"`
	Row     int64  `json:"row"`
	// ID names the row: its id, or group and sample for rl rows.
	ID  string `json:"id,omitempty"`
	Msg string `json:"message"`
}

func (v Violation) String() string {
	var b strings.Builder
	b.WriteString(v.Dataset)
	if v.Shard != "" {
		b.WriteString(": " + v.Shard)
	}
	if v.Row >= 0 {
		fmt.Fprintf(&b, ": row %d", v.Row)
		if v.ID != "" {
			fmt.Fprintf(&b, " (%s)", v.ID)
		}
	}
	return b.String() + ": " + v.Msg
}

// Options tunes Dir.
type Options struct {
	// Tokens, when set, re-renders every sft/2 and sft/4 row (and rl/3 on)
	// with this tokenizer and format and requires exactly the
	// stored token track, labels included: a mask shifted by one token is a
	// violation. The tokenizer's sha256 must match the shard's metadata,
	// and its Format the shard's (an empty Format takes the shard's).
	// Without it, token tracks are checked for shape only (lengths, labels
	// equal to ids or -100).
	Tokens *export.TokenTrackConfig
	// MaxViolations stops the row checks of a shard after this many
	// violations (default 100); shard-level checks always run.
	MaxViolations int
}

// DatasetCheck summarises what Dir read of one dataset.
type DatasetCheck struct {
	Dataset string `json:"dataset"`
	Schema  string `json:"schema"`
	Shards  int    `json:"shards"`
	Rows    int64  `json:"rows"`
	Groups  int64  `json:"groups"`
}

// Report is the result of Dir. The directory is valid when
// Violations is empty.
type Report struct {
	Dir        string         `json:"dir"`
	Status     string         `json:"status"`
	Datasets   []DatasetCheck `json:"datasets"`
	Violations []Violation    `json:"violations"`
	// Notes are facts worth knowing that are not violations (a run that
	// did not complete, token tracks checked for shape only).
	Notes []string `json:"notes,omitempty"`
}

// OK reports whether no violation was found.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// WriteText prints the report, one line per violation.
func (r *Report) WriteText(w io.Writer) {
	for _, v := range r.Violations {
		fmt.Fprintln(w, v.String())
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note: "+n)
	}
	var parts []string
	for _, d := range r.Datasets {
		parts = append(parts, fmt.Sprintf("%s (%s): %d shard(s), %d rows", d.Dataset, d.Schema, d.Shards, d.Rows))
	}
	verdict := "valid"
	if !r.OK() {
		verdict = fmt.Sprintf("INVALID: %d violation(s)", len(r.Violations))
	}
	fmt.Fprintf(w, "%s: %s; %s\n", r.Dir, verdict, strings.Join(parts, "; "))
}

// runConfig is the part of a manifest's configuration the checks need.
type runConfig struct {
	Advantage advConfig `json:"advantage"`
	Reward    struct {
		Weights map[string]float64 `json:"weights"`
	} `json:"reward"`
}

type advConfig struct {
	Estimator        string  `json:"estimator"`
	Eps              float64 `json:"eps"`
	DropZeroVariance bool    `json:"drop_zero_variance"`
}

// Dir reads dir's manifest and every shard it lists and checks the
// output contract: the shards on disk are exactly those listed, with their
// bytes, sha256 and row counts; each shard's schema version (metadata
// redraft.schema) is the manifest's and its columns are those of schemas/;
// sft segments tile their content, loss_mask agrees with them and a token
// track is well formed (or, with opts.Tokens, exactly reproducible); rl
// rewards are finite and equal the weighted sum of their components,
// groups are whole, their statistics recompute from their rewards, and every
// advantage recomputes from them under the manifest's estimator and eps.
// Every count the manifest states is cross-checked (see checkCounts): a
// mismatch is a violation naming both numbers.
// The error is for a directory that cannot be validated at all (no
// manifest); everything else is a violation in the report.
func Dir(ctx context.Context, dir string, opts Options) (*Report, error) {
	if opts.MaxViolations <= 0 {
		opts.MaxViolations = 100
	}
	m, err := export.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	rep := &Report{Dir: dir, Status: m.Status}
	if m.Status != export.StatusComplete {
		rep.Notes = append(rep.Notes, fmt.Sprintf("run status is %s (%s): the shards listed are the ones it finished", m.Status, m.Error))
	}
	var cfg runConfig
	if len(m.Config) > 0 {
		if err := json.Unmarshal(m.Config, &cfg); err != nil {
			rep.add(Violation{Dataset: "manifest", Row: -1, Msg: "config: " + err.Error()})
		}
	}
	names := make([]string, 0, len(m.Datasets))
	for n := range m.Datasets {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		rep.add(Violation{Dataset: "manifest", Row: -1, Msg: "lists no dataset"})
	}
	tally := &rlTally{finish: map[string]int64{}, byRoot: map[string]int64{}}
	complete := true // every listed row was read
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		v := &validator{ctx: ctx, dir: dir, dataset: name, ds: m.Datasets[name], cfg: cfg, opts: opts, rep: rep, roots: []string{""}, tally: tally,
			agentR: strings.HasPrefix(m.Source, "agent-r:") || m.Source == "trajectories" || strings.HasPrefix(m.Source, "environment:")}
		if len(m.Parts) > 0 {
			// A merged run: each part wrote under its own directory.
			v.roots = v.roots[:0]
			for _, p := range m.Parts {
				v.roots = append(v.roots, p.Dir+"/")
			}
		}
		if read := v.run(); read != v.ds.Rows {
			complete = false
		}
	}
	checkCounts(rep, dir, m, tally, complete)
	return rep, nil
}

func (r *Report) add(v Violation) { r.Violations = append(r.Violations, v) }

type validator struct {
	ctx     context.Context
	dir     string
	dataset string
	ds      export.DatasetInfo
	cfg     runConfig
	opts    Options
	rep     *Report
	desc    *schemas.Description

	shard string
	count int // violations in the current shard's rows
	// roots are the directories shards may be under: "" for a run, each
	// part's directory for a merged run.
	roots []string
	root  string // the current shard's

	// rl state across shards: groups already closed.
	seenGroups map[string]string
	rlGroups   int64
	verlIndex  int64
	// groups counts the groups in the rows of the current shard, -1 when
	// they are not counted.
	groups int64
	// tally counts the rl rows read, for checkCounts.
	tally *rlTally
	// agentR is set for an Agent-R run, a trajectories run and an
	// environment run, whose sft groups are a task's rows (other sft rows are one group each).
	agentR bool
}

// rlTally counts what the rl rows read hold.
type rlTally struct {
	rows, failed, nullRewards, graded int64
	finish                            map[string]int64
	// byRoot counts rows by the directory of their shards (a merged run's
	// parts).
	byRoot map[string]int64
}

func (t *rlTally) add(root string, rows []export.RLRow) {
	for _, r := range rows {
		t.rows++
		t.byRoot[root]++
		if r.Error != nil {
			t.failed++
		}
		if r.Reward == nil {
			t.nullRewards++
		}
		if r.Correct != nil {
			t.graded++
		}
		if r.FinishReason != nil {
			t.finish[*r.FinishReason]++
		}
	}
}

// groupRuns counts the runs of consecutive rows that same says belong
// together: the groups of a shard, since a group is contiguous.
func groupRuns[T any](rows []T, same func(a, b *T) bool) int64 {
	var n int64
	for i := range rows {
		if i == 0 || !same(&rows[i-1], &rows[i]) {
			n++
		}
	}
	return n
}

func (v *validator) fail(row int64, id, format string, args ...any) {
	v.rep.add(Violation{Dataset: v.dataset, Shard: v.shard, Row: row, ID: id, Msg: fmt.Sprintf(format, args...)})
	if row >= 0 {
		v.count++
	}
}

// full reports whether the current shard has used up its row violations.
func (v *validator) full() bool { return v.count >= v.opts.MaxViolations }

// run checks the dataset and returns the rows it read.
func (v *validator) run() int64 {
	check := DatasetCheck{Dataset: v.dataset, Schema: v.ds.Schema, Shards: len(v.ds.Shards)}
	defer func() { v.rep.Datasets = append(v.rep.Datasets, check) }()
	ds, _, ok := strings.Cut(v.ds.Schema, "/")
	if !ok || ds != v.dataset {
		v.fail(-1, "", "manifest schema %q is not a version of %s", v.ds.Schema, v.dataset)
	}
	desc, err := schemas.Load(v.ds.Schema)
	if err != nil {
		v.fail(-1, "", "%v", err)
	}
	v.desc = desc

	// The shards on disk are exactly the ones listed, with no temporary
	// leftovers.
	var listed []string
	var rows, groups int64
	for _, s := range v.ds.Shards {
		listed = append(listed, s.Path)
		rows += s.Rows
		groups += s.Groups
	}
	var onDisk []string
	for _, root := range v.roots {
		entries, err := os.ReadDir(filepath.Join(v.dir, filepath.FromSlash(root), "data", v.dataset))
		if err != nil && !(os.IsNotExist(err) && len(listed) == 0) {
			v.fail(-1, "", "reading shard directory: %v", err)
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".parquet") || strings.HasSuffix(e.Name(), ".tmp") {
				onDisk = append(onDisk, root+"data/"+v.dataset+"/"+e.Name())
			}
		}
	}
	for _, p := range onDisk {
		if !slices.Contains(listed, p) {
			v.fail(-1, "", "%s is on disk but not in the manifest", p)
		}
	}
	if rows != v.ds.Rows || groups != v.ds.Groups {
		v.fail(-1, "", "manifest totals %d rows, %d groups; its shards sum to %d rows, %d groups", v.ds.Rows, v.ds.Groups, rows, groups)
	}
	v.seenGroups = map[string]string{}
	for _, s := range v.ds.Shards {
		v.shard, v.count = s.Path, 0
		n := v.checkShard(s)
		check.Rows += n
	}
	v.shard = ""
	check.Groups = groups
	if v.dataset == "rl" && v.rlGroups != v.ds.Groups {
		v.fail(-1, "", "%d groups in the shards, manifest says %d", v.rlGroups, v.ds.Groups)
	}
	return check.Rows
}

// checkShard checks one shard and returns the rows it read.
func (v *validator) checkShard(s export.ShardInfo) int64 {
	path := filepath.Join(v.dir, filepath.FromSlash(s.Path))
	root := ""
	for _, r := range v.roots {
		if strings.HasPrefix(s.Path, r+"data/"+v.dataset+"/") {
			root = r + "."
		}
	}
	if filepath.IsAbs(s.Path) || strings.Contains(s.Path, "..") || root == "" {
		v.fail(-1, "", "shard path is not under data/%s/", v.dataset)
		return 0
	}
	if root != v.root {
		// Each part of a merged run numbers its verl prompts from 0.
		v.root, v.verlIndex = root, 0
	}
	f, err := os.Open(path)
	if err != nil {
		v.fail(-1, "", "%v", err)
		return 0
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	f.Close()
	if err != nil {
		v.fail(-1, "", "reading: %v", err)
		return 0
	}
	intact := true
	if n != s.Bytes {
		v.fail(-1, "", "%d bytes on disk, manifest says %d", n, s.Bytes)
		intact = false
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != s.SHA256 {
		v.fail(-1, "", "sha256 %s, manifest says %s", sum, s.SHA256)
		intact = false
	}
	md, err := shardMetadata(path)
	if err != nil {
		v.fail(-1, "", "not a readable Parquet file: %v", err)
		return 0
	}
	if md.schema != v.ds.Schema {
		v.fail(-1, "", "metadata redraft.schema %q, manifest says %q", md.schema, v.ds.Schema)
	}
	for i, p := range md.badPaths {
		if i == 3 {
			v.fail(-1, "", "... and %d more column chunks with a wrong path_in_schema", len(md.badPaths)-3)
			break
		}
		v.fail(-1, "", "footer: %s", p)
	}
	if md.dataset != v.dataset {
		v.fail(-1, "", "metadata redraft.dataset %q", md.dataset)
	}
	if md.rows != s.Rows {
		v.fail(-1, "", "%d rows in the footer, manifest says %d", md.rows, s.Rows)
	}
	if !intact {
		// A damaged file is not decoded: Arrow's column readers run in
		// goroutines of their own, and a panic there on corrupt pages
		// cannot be recovered from here.
		v.fail(-1, "", "rows not checked: the file is not the one the manifest describes")
		return 0
	}
	if v.desc != nil {
		v.checkColumns(path)
	}
	var read int64
	var err2 error
	v.groups = -1
	switch v.dataset {
	case "rl":
		read, err2 = readAndCheck(v, path, func(rows []export.RLRow) {
			v.groups = groupRuns(rows, func(a, b *export.RLRow) bool { return a.GroupID == b.GroupID })
			v.tally.add(strings.TrimSuffix(root, "."), rows)
			v.checkRL(rows)
			if rlTokenSchema(v.ds.Schema) && !v.full() {
				v.checkRLTokens(rows, md)
			}
			if (v.ds.Schema == "rl/5" || v.ds.Schema == export.RLSchema) && !v.full() {
				v.checkResponseMessages(rows)
			}
		})
	case "sft":
		if sftTokenSchema(v.ds.Schema) {
			read, err2 = readAndCheck(v, path, func(rows []export.SFTTokensRow) {
				if v.agentR {
					v.groups = groupRuns(rows, func(a, b *export.SFTTokensRow) bool { return a.TaskID == b.TaskID })
				}
				v.checkSFTTokens(rows, md)
			})
		} else {
			read, err2 = readAndCheck(v, path, func(rows []export.SFTRow) {
				if v.agentR {
					v.groups = groupRuns(rows, func(a, b *export.SFTRow) bool { return a.TaskID == b.TaskID })
				}
				for i, r := range rows {
					v.checkSFT(int64(i), r)
				}
			})
		}
	case "pairs":
		read, err2 = readAndCheck(v, path, func(rows []pairRow) {
			// Pairs are written by rl group: one (task, turn).
			v.groups = groupRuns(rows, func(a, b *pairRow) bool { return a.TaskID == b.TaskID && a.Turn == b.Turn })
			v.checkPairs(rows)
		})
	case export.VerlDataset:
		read, err2 = readAndCheck(v, path, v.checkVerl)
	default:
		v.fail(-1, "", "unknown dataset: rows not checked")
	}
	if err2 != nil {
		v.fail(-1, "", "reading rows: %v", err2)
		// Rows holding NaN or an infinity cannot be decoded into Go
		// values: find them column by column.
		for _, nf := range nonFinite(v.ctx, path) {
			v.fail(nf.row, "", "%s is %v, not a finite number", nf.column, nf.value)
			if v.full() {
				break
			}
		}
		return read
	}
	if read != s.Rows {
		v.fail(-1, "", "%d rows read, manifest says %d", read, s.Rows)
	}
	if v.groups >= 0 && v.groups != s.Groups {
		v.fail(-1, "", "%d groups in the rows, manifest says %d", v.groups, s.Groups)
	}
	if (v.dataset == "sft" && !v.agentR || v.dataset == export.VerlDataset) && s.Groups != s.Rows {
		// Both are written one row per group (but for Agent-R's sft rows,
		// grouped by task).
		v.fail(-1, "", "%d groups for %d rows", s.Groups, s.Rows)
	}
	return read
}

// rlTokenSchema reports whether rl rows of this version carry the token
// track (rl/3 on); sftTokenSchema whether sft rows do (sft/2 and sft/4).
func rlTokenSchema(v string) bool {
	return v == "rl/3" || v == "rl/4" || v == "rl/5" || v == export.RLSchema
}

func sftTokenSchema(v string) bool { return v == "sft/2" || v == export.SFTTokensSchema }

// readAndCheck reads a shard's rows and hands them to check. It recovers
// from a reader that panics in this goroutine; shards are decoded only once
// their checksum matched.
func readAndCheck[T any](v *validator, path string, check func([]T)) (n int64, err error) {
	var rows []T
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("reader failed: %v", r)
			}
		}()
		rows, err = export.ReadRows[T](v.ctx, path)
	}()
	if err != nil {
		return 0, err
	}
	check(rows)
	return int64(len(rows)), nil
}

type shardMD struct {
	schema, dataset string
	rows            int64
	kv              map[string]string
	// badPaths lists column chunks whose path_in_schema is not their
	// schema column's path (writers that reuse a Parquet writer across
	// files have left them empty).
	badPaths []string
}

func shardMetadata(path string) (md shardMD, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("reader failed: %v", r)
		}
	}()
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return md, err
	}
	defer pf.Close()
	md.rows = pf.NumRows()
	md.kv = map[string]string{}
	kv := pf.MetaData().KeyValueMetadata()
	for i, k := range kv.Keys() {
		md.kv[k] = kv.Values()[i]
	}
	md.schema, md.dataset = md.kv["redraft.schema"], md.kv["redraft.dataset"]
	meta := pf.MetaData()
	for i := range pf.NumRowGroups() {
		rg := meta.RowGroup(i)
		for j := range rg.NumColumns() {
			want := meta.Schema.Column(j).ColumnPath().String()
			cc, err := rg.ColumnChunk(j)
			if err != nil {
				return md, err
			}
			if got := cc.PathInSchema().String(); got != want {
				md.badPaths = append(md.badPaths, fmt.Sprintf("row group %d column %d: path_in_schema %q, the schema's column is %q", i, j, got, want))
			}
		}
	}
	return md, nil
}

func (v *validator) checkColumns(path string) {
	var got []Column
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("reader failed: %v", r)
			}
		}()
		got, err = DescribeFile(path)
	}()
	if err != nil {
		v.fail(-1, "", "columns: %v", err)
		return
	}
	want := v.desc.Columns
	if len(got) != len(want) {
		v.fail(-1, "", "%d columns, schema %s has %d", len(got), v.ds.Schema, len(want))
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Type != w.Type || g.Nullable != w.Nullable {
			v.fail(-1, "", "column %d is %s %s nullable=%v, schema %s says %s %s nullable=%v", i, g.Name, g.Type, g.Nullable, v.ds.Schema, w.Name, w.Type, w.Nullable)
		}
	}
}

// close enough: the same float64 computation in another order differs in
// its last bits.
func near(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func (v *validator) checkRL(rows []export.RLRow) {
	adv := v.cfg.Advantage
	for start := 0; start < len(rows); {
		end := start + 1
		for end < len(rows) && rows[end].GroupID == rows[start].GroupID {
			end++
		}
		g := rows[start:end]
		gid := g[0].GroupID
		if prev, ok := v.seenGroups[gid]; ok {
			v.fail(int64(start), gid, "group %s appears again (first in %s): a group must be whole and contiguous", gid, prev)
		}
		v.seenGroups[gid] = v.shard
		v.rlGroups++
		v.checkRLGroup(int64(start), g, adv)
		if v.full() {
			v.fail(-1, "", "stopped after %d row violations", v.count)
			return
		}
		start = end
	}
}

func (v *validator) checkRLGroup(first int64, g []export.RLRow, adv advConfig) {
	id := func(i int) string { return fmt.Sprintf("group %s sample %d", g[i].GroupID, g[i].SampleIndex) }
	// Rewards: finite, and the weighted sum of the components that count.
	var present []float64
	allEqual := true
	for i, r := range g {
		row := first + int64(i)
		// A first turn holds every sample; a later turn holds the episodes
		// still running (an episode ends early after a failed request, a
		// correct answer under RISE, an unverified solution), in sample
		// order.
		switch {
		case r.Turn == 0 && int(r.SampleIndex) != i:
			v.fail(row, id(i), "sample_index %d at position %d of its group", r.SampleIndex, i)
		case r.Turn > 0 && (r.SampleIndex < int32(i) || (i > 0 && r.SampleIndex <= g[i-1].SampleIndex)):
			v.fail(row, id(i), "sample_index %d at position %d of its group, not in increasing sample order", r.SampleIndex, i)
		}
		if r.ExtraInfo != nil && (r.ExtraInfo.TaskID != r.TaskID || r.RewardModel == nil || !sameString(r.RewardModel.GroundTruth, r.Reference)) {
			v.fail(row, id(i), "verl columns (extra_info.task_id, reward_model.ground_truth) do not match task_id and reference")
		}
		if r.TaskID != g[0].TaskID || r.Turn != g[0].Turn {
			v.fail(row, id(i), "task %s turn %d in a group of task %s turn %d", r.TaskID, r.Turn, g[0].TaskID, g[0].Turn)
		}
		v.checkRLMessages(row, id(i), r)
		if r.AdvantageEstimator != adv.Estimator && adv.Estimator != "" {
			v.fail(row, id(i), "advantage_estimator %q, the run's is %q", r.AdvantageEstimator, adv.Estimator)
		}
		var sum float64
		missing := ""
		for _, c := range r.RewardComponents {
			if !finite(c.Weight) {
				v.fail(row, id(i), "component %s has weight %v", c.Name, c.Weight)
			}
			if c.Value != nil && !finite(*c.Value) {
				v.fail(row, id(i), "component %s has value %v", c.Name, *c.Value)
			}
			if c.Value == nil && c.Reason == nil {
				v.fail(row, id(i), "component %s is null without a reason", c.Name)
			}
			if w, ok := v.cfg.Reward.Weights[c.Name]; ok && w != c.Weight {
				v.fail(row, id(i), "component %s has weight %v, the run's is %v", c.Name, c.Weight, w)
			}
			if c.Weight == 0 {
				continue
			}
			if c.Value == nil {
				if missing == "" {
					missing = c.Name
				}
				continue
			}
			sum += c.Weight * *c.Value
		}
		switch {
		case r.Reward == nil:
			if r.RewardReason == nil {
				v.fail(row, id(i), "null reward without a reward_reason")
			}
			if missing == "" && r.Error == nil && len(r.RewardComponents) > 0 {
				v.fail(row, id(i), "null reward, but every weighted component is present (weighted sum %v)", sum)
			}
			if r.Advantage != nil {
				v.fail(row, id(i), "null reward with advantage %v", *r.Advantage)
			}
		case !finite(*r.Reward):
			v.fail(row, id(i), "reward %v is not finite", *r.Reward)
		case missing != "":
			v.fail(row, id(i), "reward %v, but the weighted component %s is null", *r.Reward, missing)
		case !near(*r.Reward, sum):
			v.fail(row, id(i), "reward %v is not the weighted sum of its components (%v)", *r.Reward, sum)
		}
		if r.Reward != nil && finite(*r.Reward) {
			if len(present) > 0 && *r.Reward != present[0] {
				allEqual = false
			}
			present = append(present, *r.Reward)
		}
		if r.Advantage != nil && !finite(*r.Advantage) {
			v.fail(row, id(i), "advantage %v is not finite", *r.Advantage)
		}
	}
	// Group statistics from the rewards.
	n := len(present)
	zero := n < 2 || allEqual
	var mean, std, sum float64
	for _, x := range present {
		sum += x
	}
	if n > 0 {
		mean = sum / float64(n)
		if allEqual {
			mean = present[0]
		}
	}
	if !zero {
		var ss float64
		for _, x := range present {
			ss += (x - mean) * (x - mean)
		}
		std = math.Sqrt(ss / float64(n-1))
	}
	if zero && n > 0 && adv.DropZeroVariance {
		v.fail(first, id(0), "zero-variance group written although advantage.drop_zero_variance is on")
	}
	for i, r := range g {
		row := first + int64(i)
		if int(r.GroupSize) != n {
			v.fail(row, id(i), "group_size %d, the group has %d present rewards", r.GroupSize, n)
		}
		if n == 0 {
			continue
		}
		if r.GroupRewardMean == nil || r.GroupRewardStd == nil {
			v.fail(row, id(i), "group statistics are null for a group with %d rewards", n)
			continue
		}
		if !near(*r.GroupRewardMean, mean) || !near(*r.GroupRewardStd, std) {
			v.fail(row, id(i), "group_reward_mean %v / std %v, the rewards give %v / %v", *r.GroupRewardMean, *r.GroupRewardStd, mean, std)
		}
	}
	if n == 0 {
		return
	}
	// Advantages from the stored statistics, under the run's estimator.
	gm, gs := *g[0].GroupRewardMean, *g[0].GroupRewardStd
	best, second := -1, math.Inf(-1)
	if adv.Estimator == "passk" && !zero {
		for i, r := range g {
			if r.Reward != nil && (best < 0 || *r.Reward > *g[best].Reward) {
				best = i
			}
		}
		for i, r := range g {
			if r.Reward != nil && i != best && *r.Reward > second {
				second = *r.Reward
			}
		}
	}
	for i, r := range g {
		if r.Reward == nil {
			continue
		}
		row := first + int64(i)
		if r.Advantage == nil {
			v.fail(row, id(i), "reward %v but a null advantage", *r.Reward)
			continue
		}
		var want float64
		known := true
		if adv.Estimator == "reinforce_pp_baseline" {
			// The group's advantages (0 in a zero-variance group) are
			// whitened over their batch afterwards.
			raw := 0.0
			if !zero {
				raw = *r.Reward - gm
			}
			want, known = v.whitened(row, id(i), r, raw, adv.Eps)
		} else if !zero {
			x := *r.Reward
			switch adv.Estimator {
			case "grpo":
				want = (x - gm) / (gs + adv.Eps)
			case "dr_grpo":
				want = x - gm
			case "rloo":
				want = x - (sum-x)/float64(n-1)
			case "passk":
				if i == best {
					want = x - second
				}
			default:
				known = false
			}
		}
		if !known {
			continue
		}
		if zero && adv.Estimator != "reinforce_pp_baseline" && *r.Advantage != 0 {
			v.fail(row, id(i), "advantage %v in a zero-variance group (must be exactly 0)", *r.Advantage)
		} else if !near(*r.Advantage, want) {
			v.fail(row, id(i), "advantage %v, the group statistics give %v under %s eps %v", *r.Advantage, want, adv.Estimator, adv.Eps)
		}
	}
	if adv.Estimator != "" && !slices.Contains([]string{"grpo", "dr_grpo", "rloo", "passk", "reinforce_pp_baseline"}, adv.Estimator) {
		v.fail(first, id(0), "unknown advantage estimator %q: advantages not checked", adv.Estimator)
	}
}

// checkRLMessages checks an rl row's conversation (rl/4's messages, on rows
// that involve tools): the prompt's messages first, then at least one
// message of the response, tool fields where they belong, and tools that
// parse.
func (v *validator) checkRLMessages(row int64, id string, r export.RLRow) {
	if _, err := export.ParseTools(r.Tools); err != nil {
		v.fail(row, id, "tools: %v", err)
	}
	if r.Messages == nil {
		return
	}
	if len(r.Messages) <= len(r.Prompt) {
		v.fail(row, id, "messages holds %d messages, the prompt alone %d", len(r.Messages), len(r.Prompt))
		return
	}
	for i, p := range r.Prompt {
		if m := r.Messages[i]; m.Role != p.Role || m.Content != p.Content {
			v.fail(row, id, "messages[%d] (%s) is not prompt[%d] (%s)", i, m.Role, i, p.Role)
			return
		}
	}
	for i, m := range r.Messages {
		v.checkToolFields(row, id, i, m.Role, m.ToolCalls, m.ToolCallID)
	}
}

// whitened is a reinforce_pp_baseline advantage from the row's batch
// statistics: (a - mean) / sqrt(std^2 + eps), and exactly 0 for a batch
// whose values were all equal (std 0).
func (v *validator) whitened(row int64, id string, r export.RLRow, a, eps float64) (float64, bool) {
	if r.AdvantageBatch == nil || r.AdvantageBatchMean == nil || r.AdvantageBatchStd == nil {
		v.fail(row, id, "reinforce_pp_baseline row without advantage_batch statistics")
		return 0, false
	}
	if *r.AdvantageBatchStd == 0 {
		return 0, true
	}
	return (a - *r.AdvantageBatchMean) / math.Sqrt(*r.AdvantageBatchStd**r.AdvantageBatchStd+eps), true
}

// checkSFT checks that every message's segments tile its content in code
// points and that loss_mask says whether any of it is trained.
func (v *validator) checkSFT(row int64, r export.SFTRow) {
	if v.full() {
		return
	}
	if r.ID == "" {
		v.fail(row, r.ID, "empty id")
	}
	if len(r.Messages) == 0 {
		v.fail(row, r.ID, "no messages")
	}
	for mi, m := range r.Messages {
		if !utf8.ValidString(m.Content) {
			v.fail(row, r.ID, "message %d: content is not valid UTF-8", mi)
			continue
		}
		n := int32(utf8.RuneCountInString(m.Content))
		pos := int32(0)
		trained := false
		for si, s := range m.Segments {
			if s.Start != pos || s.End < s.Start {
				v.fail(row, r.ID, "message %d segment %d (%s): [%d, %d) does not continue at %d", mi, si, s.Role, s.Start, s.End, pos)
				break
			}
			pos = s.End
			trained = trained || (s.Trainable && s.End > s.Start)
		}
		if pos != n && len(m.Segments) > 0 {
			v.fail(row, r.ID, "message %d: segments end at %d, content has %d code points", mi, pos, n)
		}
		want := int32(0)
		if trained {
			want = 1
		}
		// An assistant message's tool calls are trained with its
		// loss_mask: 1 without a trainable segment trains the calls alone.
		if m.LossMask != want && !(m.LossMask == 1 && len(m.ToolCalls) > 0) {
			v.fail(row, r.ID, "message %d: loss_mask %d, but its trainable segments say %d", mi, m.LossMask, want)
		}
		v.checkToolFields(row, r.ID, mi, m.Role, m.ToolCalls, m.ToolCallID)
	}
	if _, err := export.ParseTools(r.Tools); err != nil {
		v.fail(row, r.ID, "tools: %v", err)
	}
}

// checkToolFields checks one message's tool calls and tool_call_id: calls
// only on an assistant message, each with type function and a function
// name; a tool_call_id only on a tool result.
func (v *validator) checkToolFields(row int64, id string, mi int, role string, calls []export.ToolCall, callID *string) {
	if len(calls) > 0 && role != "assistant" {
		v.fail(row, id, "message %d: a %s message with tool calls", mi, role)
	}
	for k, c := range calls {
		if c.Type != "function" || c.Function.Name == "" {
			v.fail(row, id, "message %d tool call %d: type %q, function name %q (want type function and a name)", mi, k, c.Type, c.Function.Name)
		}
	}
	if callID != nil && role != "tool" {
		v.fail(row, id, "message %d: a %s message with a tool_call_id", mi, role)
	}
}

// shardTrack is the tokenizer to re-render a shard's token track with:
// opts.Tokens when it is the one the shard's metadata names, nil (with a
// violation) when it is another, and nil (with a note that the track was
// checked for shape only) without one. tracked says whether the shard has
// any track to check.
func (v *validator) shardTrack(md shardMD, tracked bool) *export.TokenTrackConfig {
	tok := v.opts.Tokens
	if tok != nil && tok.Format == "" {
		// The format the shard says it was rendered with.
		c := *tok
		c.Format = tokenizer.Format(md.kv["redraft.chat_format"])
		tok = &c
	}
	if tok != nil {
		if sha := md.kv["redraft.tokenizer_sha256"]; sha != tok.SHA256 {
			v.fail(-1, "", "token track made with tokenizer sha256 %s, --tokenizer is %s: tokens not re-rendered", sha, tok.SHA256)
			tok = nil
		} else if f := md.kv["redraft.chat_format"]; f != string(tok.Format) {
			v.fail(-1, "", "token track made with chat format %q, validating with %q: tokens not re-rendered", f, tok.Format)
			tok = nil
		}
	} else if tracked {
		note := fmt.Sprintf("%s: token track checked for shape only (pass the tokenizer to re-render it)", v.shard)
		v.rep.Notes = append(v.rep.Notes, note)
	}
	return tok
}

func (v *validator) checkSFTTokens(rows []export.SFTTokensRow, md shardMD) {
	tok := v.shardTrack(md, len(rows) > 0)
	for i, r := range rows {
		row := int64(i)
		v.checkSFT(row, r.SFT())
		if v.full() {
			return
		}
		if len(r.InputIDs) == 0 || len(r.Labels) != len(r.InputIDs) || len(r.AttentionMask) != len(r.InputIDs) {
			v.fail(row, r.ID, "token track lengths: %d input_ids, %d labels, %d attention_mask", len(r.InputIDs), len(r.Labels), len(r.AttentionMask))
			continue
		}
		trained := 0
		for k, id := range r.InputIDs {
			if l := r.Labels[k]; l != -100 && l != id {
				v.fail(row, r.ID, "token %d: label %d is neither -100 nor its id %d", k, l, id)
				break
			}
			if r.Labels[k] != -100 {
				trained++
			}
			if r.AttentionMask[k] != 1 {
				v.fail(row, r.ID, "token %d: attention_mask %d in an unpadded row", k, r.AttentionMask[k])
				break
			}
		}
		anyTrainable := false
		for _, m := range r.Messages {
			anyTrainable = anyTrainable || m.LossMask == 1
		}
		if anyTrainable && trained == 0 {
			v.fail(row, r.ID, "trainable text but no trained token")
		}
		if !anyTrainable && trained > 0 {
			v.fail(row, r.ID, "%d trained tokens but no trainable text", trained)
		}
		if tok == nil {
			continue
		}
		ids, labels, attn, err := export.TokenTrack(tok.Tok, tok.Format, r.SFT())
		switch {
		case err != nil:
			v.fail(row, r.ID, "re-rendering: %v", err)
		case !slices.Equal(ids, r.InputIDs):
			v.fail(row, r.ID, "input_ids differ from the messages rendered with %s (first difference at token %d)", tok.Format, firstDiff(ids, r.InputIDs))
		case !slices.Equal(labels, r.Labels):
			v.fail(row, r.ID, "labels do not match the trainable spans of the text (first difference at token %d)", firstDiff(labels, r.Labels))
		case !slices.Equal(attn, r.AttentionMask):
			v.fail(row, r.ID, "attention_mask differs from a re-render")
		}
	}
}

// checkRLTokens checks the token track of rl/3 to rl/6 rows: null columns exactly
// when token_reason says why, and otherwise input_ids = prompt_ids +
// response_ids, labels -100 exactly over prompt_ids and equal to the ids
// over response_ids, attention_mask all ones. With the shard's tokenizer,
// every track is recomputed and must be the stored one, and the response
// tokens (end-of-turn token left out) must decode to the response as the
// chat format renders it. rl/6 rows also say where their track comes from
// (token_source): an engine track is not recomputed, but its token_check
// must be what comparing it with the shard tokenizer's gives; and their
// logprobs are one per response token unless logprobs_reason says why not.
func (v *validator) checkRLTokens(rows []export.RLRow, md shardMD) {
	v6 := v.ds.Schema != "rl/3" && v.ds.Schema != "rl/4" && v.ds.Schema != "rl/5"
	if v6 {
		v.checkRLProvenance(rows)
	}
	hasTok := md.kv["redraft.tokenizer_sha256"] != ""
	tracked := slices.ContainsFunc(rows, func(r export.RLRow) bool { return r.TokenReason == nil })
	var tok *export.TokenTrackConfig
	if hasTok {
		tok = v.shardTrack(md, tracked)
	}
	for i, r := range rows {
		row := int64(i)
		id := fmt.Sprintf("group %s sample %d", r.GroupID, r.SampleIndex)
		if v.full() {
			return
		}
		cols := [][]int32{r.PromptIDs, r.ResponseIDs, r.InputIDs, r.Labels, r.AttentionMask}
		if r.TokenReason != nil {
			if slices.ContainsFunc(cols, func(c []int32) bool { return c != nil }) {
				v.fail(row, id, "token_reason %q, but the token columns are not all null", *r.TokenReason)
			}
			if hasTok && *r.TokenReason == export.NoTokenizer {
				v.fail(row, id, "token_reason says no tokenizer, but the shard was written with tokenizer %s", md.kv["redraft.tokenizer"])
			}
			continue
		}
		engine := v6 && r.TokenSource != nil && *r.TokenSource == export.TokenSourceEngine
		if !hasTok && !engine {
			v.fail(row, id, "a token track in a shard whose metadata names no tokenizer (redraft.tokenizer_sha256)")
			continue
		}
		np := len(r.PromptIDs)
		switch {
		case np == 0 || len(r.ResponseIDs) == 0:
			v.fail(row, id, "token track with %d prompt_ids and %d response_ids", np, len(r.ResponseIDs))
			continue
		case !slices.Equal(r.InputIDs, slices.Concat(r.PromptIDs, r.ResponseIDs)):
			v.fail(row, id, "input_ids are not prompt_ids + response_ids (first difference at token %d)", firstDiff(r.InputIDs, slices.Concat(r.PromptIDs, r.ResponseIDs)))
			continue
		case len(r.Labels) != len(r.InputIDs) || len(r.AttentionMask) != len(r.InputIDs):
			v.fail(row, id, "token track lengths: %d input_ids, %d labels, %d attention_mask", len(r.InputIDs), len(r.Labels), len(r.AttentionMask))
			continue
		}
		// A trajectory's response (several messages) has masked tokens
		// inside it: its tool results and the template text around them.
		multi := r.Messages != nil && len(r.Messages)-len(r.Prompt) > 1
		for k, l := range r.Labels {
			want := r.InputIDs[k]
			if k < np {
				want = -100
			}
			if l != want && !(multi && k >= np && l == -100) {
				v.fail(row, id, "token %d: label %d, want %d (-100 over the %d prompt tokens, the id over the response)", k, l, want, np)
				break
			}
		}
		if multi && (r.Labels[np] == -100 || r.Labels[len(r.Labels)-1] == -100) {
			v.fail(row, id, "response_ids do not start and end with trained tokens")
		}
		if k := slices.IndexFunc(r.AttentionMask, func(a int32) bool { return a != 1 }); k >= 0 {
			v.fail(row, id, "token %d: attention_mask %d in an unpadded row", k, r.AttentionMask[k])
		}
		if engine {
			v.checkEngineCheck(row, id, tok, r)
			continue
		}
		if tok == nil {
			continue
		}
		var want export.RLTokens
		var err error
		if r.Messages != nil {
			want, err = tok.RLTrackMessages(r.Messages, len(r.Prompt), r.Tools, r.Error != nil)
		} else {
			want, err = tok.RLTrack(r.Prompt, r.Response, r.Error != nil)
		}
		var wantRow export.RLRow
		want.Apply(&wantRow)
		switch {
		case err != nil:
			v.fail(row, id, "re-rendering: %v", err)
		case want.Reason != "":
			v.fail(row, id, "a token track, but re-rendering gives none: %s", want.Reason)
		case !slices.Equal(want.PromptIDs, r.PromptIDs):
			v.fail(row, id, "prompt_ids differ from the prompt rendered with %s (first difference at token %d)", tok.Format, firstDiff(want.PromptIDs, r.PromptIDs))
		case !slices.Equal(want.ResponseIDs, r.ResponseIDs):
			v.fail(row, id, "response_ids differ from the response tokenized after the prompt (first difference at token %d)", firstDiff(want.ResponseIDs, r.ResponseIDs))
		case !slices.Equal(wantRow.Labels, r.Labels):
			v.fail(row, id, "labels do not match the trained messages of the response (first difference at token %d)", firstDiff(wantRow.Labels, r.Labels))
		case r.Messages == nil:
			v.checkRLDecode(row, id, tok, r)
		}
	}
}

// checkRLProvenance checks rl/6's token_source, token_check and
// logprobs_reason columns: a source (engine or tokenizer) exactly on rows
// with a track, a check only on engine tracks, and logprobs one per
// response token when logprobs_reason is null (and, on an engine track or
// none, only then).
func (v *validator) checkRLProvenance(rows []export.RLRow) {
	for i, r := range rows {
		row := int64(i)
		id := fmt.Sprintf("group %s sample %d", r.GroupID, r.SampleIndex)
		if v.full() {
			return
		}
		src := ""
		if r.TokenSource != nil {
			src = *r.TokenSource
		}
		switch {
		case r.TokenReason == nil && src != export.TokenSourceEngine && src != export.TokenSourceTokenizer:
			v.fail(row, id, "token_source %q on a row with a token track (want engine or tokenizer)", src)
		case r.TokenReason != nil && r.TokenSource != nil:
			v.fail(row, id, "token_source %q on a row without a token track", src)
		case r.TokenCheck != nil && src != export.TokenSourceEngine:
			v.fail(row, id, "token_check %q on a row whose track is not the engine's", *r.TokenCheck)
		case r.TokenCheck != nil && *r.TokenCheck != export.TokenCheckMatch && *r.TokenCheck != export.TokenCheckMismatch:
			v.fail(row, id, "token_check %q (want match, mismatch or null)", *r.TokenCheck)
		}
		want := export.LogprobsAlignment(len(r.Logprobs), r.ResponseIDs)
		switch {
		case r.LogprobsReason == nil && want != "":
			v.fail(row, id, "logprobs are not aligned with response_ids, and logprobs_reason is null: %s", want)
		case r.LogprobsReason != nil && want == "" && src != export.TokenSourceTokenizer:
			// (A tokenizer track may have as many ids as the server's
			// logprobs and still other tokens.)
			v.fail(row, id, "logprobs_reason %q, but the %d logprobs are one per response token", *r.LogprobsReason, len(r.Logprobs))
		}
	}
}

// checkEngineCheck checks an engine track's token_check: with the shard's
// tokenizer it is what comparing the track with the tokenizer's gives (see
// export.CompareTracks); without one, null.
func (v *validator) checkEngineCheck(row int64, id string, tok *export.TokenTrackConfig, r export.RLRow) {
	got := ""
	if r.TokenCheck != nil {
		got = *r.TokenCheck
	}
	want := ""
	if tok != nil {
		var mine export.RLTokens
		var err error
		if r.Messages != nil {
			mine, err = tok.RLTrackMessages(r.Messages, len(r.Prompt), r.Tools, r.Error != nil)
		} else {
			mine, err = tok.RLTrack(r.Prompt, r.Response, r.Error != nil)
		}
		if err != nil {
			v.fail(row, id, "re-rendering: %v", err)
			return
		}
		want = export.CompareTracks(export.RLTokens{PromptIDs: r.PromptIDs, ResponseIDs: r.ResponseIDs}, mine)
	}
	if got != want {
		v.fail(row, id, "token_check %q, but comparing the engine's ids with the shard's tokenizer gives %q", got, want)
	}
}

// checkRLDecode checks that the response tokens spell the response: the
// response_ids without their end-of-turn token decode to the response as
// the chat format renders it (llama3 trims whitespace, qwen3 drops leading
// newlines), when the tokenizer round-trips that text (a normalizer may
// not).
func (v *validator) checkRLDecode(row int64, id string, tok *export.TokenTrackConfig, r export.RLRow) {
	ids := r.ResponseIDs
	if !tok.Tok.IsSpecial(int(ids[len(ids)-1])) {
		v.fail(row, id, "response_ids end with %d, not the end-of-turn token", ids[len(ids)-1])
		return
	}
	text := r.Response
	switch tok.Format {
	case tokenizer.FormatLlama3:
		// Jinja's trim is Python's str.strip: Unicode whitespace and the
		// separators U+001C to U+001F.
		text = strings.TrimFunc(text, func(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1C && r <= 0x1F) })
	case tokenizer.FormatQwen3:
		text = strings.TrimLeft(text, "\n")
	}
	body := make([]int, len(ids)-1)
	for k, x := range ids[:len(ids)-1] {
		body[k] = int(x)
	}
	if tok.Tok.Decode(tok.Tok.Encode(text)) != text {
		return
	}
	if got := tok.Tok.Decode(body); got != text {
		v.fail(row, id, "response_ids decode to %q, not the response %q", clip(got), clip(text))
	}
}

func clip(s string) string {
	if r := []rune(s); len(r) > 80 {
		return string(r[:80]) + "..."
	}
	return s
}

func firstDiff(a, b []int32) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func (v *validator) checkVerl(rows []export.VerlRow) {
	for i, r := range rows {
		if v.full() {
			return
		}
		row := int64(i)
		id := r.ExtraInfo.TaskID
		if len(r.Prompt) == 0 {
			v.fail(row, id, "empty prompt")
		}
		for mi, m := range r.Prompt {
			if m.Role == "" || m.Content == "" {
				v.fail(row, id, "prompt message %d has role %q and %d bytes of content", mi, m.Role, len(m.Content))
			}
		}
		if r.Ability == "" || r.DataSource == "" {
			v.fail(row, id, "empty ability or data_source")
		}
		switch {
		case r.RewardModel.Style == "rule" && r.RewardModel.GroundTruth == nil:
			v.fail(row, id, "reward_model style rule without a ground_truth")
		case r.RewardModel.Style != "rule" && r.RewardModel.Style != "model":
			v.fail(row, id, "reward_model style %q", r.RewardModel.Style)
		}
		if id == "" {
			v.fail(row, id, "extra_info.task_id is empty")
		}
		if prev, ok := v.seenGroups[id]; ok && id != "" {
			v.fail(row, id, "task %s has a prompt already (in %s)", id, prev)
		}
		v.seenGroups[id] = v.shard
		if r.ExtraInfo.Index != v.verlIndex {
			v.fail(row, id, "extra_info.index %d, expected %d (0-based, in order)", r.ExtraInfo.Index, v.verlIndex)
		}
		v.verlIndex++
	}
}

type nonFiniteValue struct {
	row    int64
	column string
	value  float64
}

// nonFinite lists the rows whose top-level double columns hold NaN or an
// infinity.
func nonFinite(ctx context.Context, path string) (out []nonFiniteValue) {
	defer func() {
		if recover() != nil {
			out = nil
		}
	}()
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 4096}, memory.DefaultAllocator)
	if err != nil {
		return nil
	}
	tbl, err := fr.ReadTable(ctx)
	if err != nil {
		return nil
	}
	defer tbl.Release()
	for i, f := range tbl.Schema().Fields() {
		if f.Type.ID() != arrow.FLOAT64 {
			continue
		}
		var base int64
		for _, chunk := range tbl.Column(i).Data().Chunks() {
			a := chunk.(*array.Float64)
			for k := 0; k < a.Len(); k++ {
				if x := a.Value(k); a.IsValid(k) && !finite(x) {
					out = append(out, nonFiniteValue{row: base + int64(k), column: f.Name, value: x})
				}
			}
			base += int64(a.Len())
		}
	}
	return out
}

func sameString(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
