package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/redraft/redraft/export"
)

// Options tunes an audit.
type Options struct {
	// Workers scan row groups in parallel; 0 means GOMAXPROCS.
	Workers int
	// Recipe names the run in the report; empty means the manifest's
	// config name, else its source.
	Recipe string
}

// Slice dimensions, in report order.
const (
	DimAll        = "all"
	DimDataSource = "data_source"
	DimTurn       = "turn"
	DimModel      = "model"
)

var dimOrder = map[string]int{DimAll: 0, DimDataSource: 1, DimTurn: 2, DimModel: 3}

// MetricGroups names the metric groups every slice of the report carries
// (the JSON keys of SliceReport).
var MetricGroups = []string{"reward", "reward_components", "advantage", "pass_maj", "transitions", "answer_change",
	"consensus", "judge_agreement", "length", "entropy", "judge_flagged", "explore_exploit"}

type sliceKey struct{ dim, key string }

type ansKey struct {
	task         string
	sample, turn int32
}

type revRec struct {
	ansKey
	answer        string
	hasAnswer     bool
	source, model string
}

// auditAcc is the accumulated audit of some groups.
type auditAcc struct {
	ranges  *auditRanges
	slices  map[sliceKey]*sliceAcc
	keep    bool // keep answers for the answer-change rate (multi-turn data)
	answers []revRec
	// scratch for partition
	keys  []string
	parts []auditRow
}

func newAuditAcc(r *auditRanges, keep bool) *auditAcc {
	return &auditAcc{ranges: r, slices: map[sliceKey]*sliceAcc{}, keep: keep}
}

func (a *auditAcc) slice(dim, key string) *sliceAcc {
	k := sliceKey{dim, key}
	s := a.slices[k]
	if s == nil {
		s = newSliceAcc(dim, key, a.ranges)
		a.slices[k] = s
	}
	return s
}

// addGroup adds the rows of one whole (task, turn) group.
func (a *auditAcc) addGroup(rows []auditRow) {
	if len(rows) == 0 {
		return
	}
	n, lo, hi := 0, 0.0, 0.0
	for i := range rows {
		if !rows[i].hasReward {
			continue
		}
		v := rows[i].reward
		if n == 0 || v < lo {
			lo = v
		}
		if n == 0 || v > hi {
			hi = v
		}
		n++
	}
	zero := n < 2 || lo == hi
	a.slice(DimAll, DimAll).addGroup(rows, true, zero, a.ranges)
	a.partition(rows, DimDataSource, func(r *auditRow) string { return r.source }, zero)
	a.partition(rows, DimTurn, func(r *auditRow) string { return strconv.Itoa(int(r.turn)) }, zero)
	a.partition(rows, DimModel, func(r *auditRow) string { return r.model }, zero)
	if a.keep {
		for i := range rows {
			r := &rows[i]
			a.answers = append(a.answers, revRec{ansKey: ansKey{r.task, r.sample, r.turn}, answer: r.answer, hasAnswer: r.hasAnswer, source: r.source, model: r.model})
		}
	}
}

func (a *auditAcc) partition(rows []auditRow, dim string, key func(*auditRow) string, zero bool) {
	k0 := key(&rows[0])
	same := true
	for i := 1; i < len(rows) && same; i++ {
		same = key(&rows[i]) == k0
	}
	if same {
		a.slice(dim, k0).addGroup(rows, true, zero, a.ranges)
		return
	}
	// The group's keys in order of first appearance, then each key's rows
	// in their order (a scratch buffer of the accumulator: no allocation
	// once it has grown).
	order := a.keys[:0]
	for i := range rows {
		k := key(&rows[i])
		if !slices.Contains(order, k) {
			order = append(order, k)
		}
	}
	for _, k := range order {
		part := a.parts[:0]
		for i := range rows {
			if key(&rows[i]) == k {
				part = append(part, rows[i])
			}
		}
		a.slice(dim, k).addGroup(part, false, zero, a.ranges)
		clear(part)
		a.parts = part[:0]
	}
	clear(order)
	a.keys = order[:0]
}

func (a *auditAcc) merge(o *auditAcc) {
	for k, os := range o.slices {
		if s := a.slices[k]; s != nil {
			s.merge(os)
		} else {
			a.slices[k] = os
		}
	}
	a.answers = append(a.answers, o.answers...)
}

// unitResult is one row group's audit: its interior groups accumulated, its
// first and last groups kept as rows, since they may continue in the
// neighbouring row groups.
type unitResult struct {
	acc         *auditAcc
	first, last []auditRow
	groups      int // groups seen in the unit
}

type unitState struct {
	res   unitResult
	cur   []auditRow
	curID string
	// comps holds the reward components of the rows in cur (filled by
	// recordDecoder.row, emptied by push when a group closes).
	comps []auditComp
}

func (u *unitState) push(r auditRow) {
	if len(u.cur) > 0 && r.group != u.curID {
		u.closeGroup()
		// The closed group's components are no longer needed: the arena
		// keeps only r's (its tail), moved to its start.
		n := copy(u.comps, r.comps)
		u.comps = u.comps[:n]
		r.comps = u.comps[:n:n]
	}
	if len(u.cur) == 0 {
		u.curID = r.group
		u.res.groups++
	}
	u.cur = append(u.cur, r)
}

func (u *unitState) closeGroup() {
	if u.res.groups == 1 {
		for i := range u.cur {
			u.cur[i].clone()
		}
		u.res.first = u.cur
		u.cur = nil
		return
	}
	u.res.acc.addGroup(u.cur)
	u.cur = u.cur[:0]
}

func (u *unitState) finish() unitResult {
	if u.res.groups > 1 {
		for i := range u.cur {
			u.cur[i].clone()
		}
		u.res.last = u.cur
	} else if len(u.cur) > 0 {
		u.closeGroup() // the only group: it is the first
	}
	return u.res
}

// Path audits the rl shards that path names: an output directory, a
// directory of Parquet files, or one shard.
func Path(ctx context.Context, path string, opts Options) (*Report, error) {
	paths, err := auditPaths(path)
	if err != nil {
		return nil, err
	}
	plan, err := planAudit(paths, opts.Workers)
	if err != nil {
		return nil, err
	}
	ranges, err := resolveRanges(ctx, plan, opts.Workers)
	if err != nil {
		return nil, err
	}
	keep := !plan.turnOK || plan.maxTurn > 0
	// Each unit's state lives from its first record until it is merged
	// into total, in unit order (scanUnitsOrdered bounds how many wait).
	// Units are merged in order, a unit's last group joined with the next
	// unit's first when they are the same group.
	states := make([]*unitState, len(plan.units))
	state := func(unit int) *unitState {
		if states[unit] == nil {
			states[unit] = &unitState{res: unitResult{acc: newAuditAcc(ranges, keep)}}
		}
		return states[unit]
	}
	total := newAuditAcc(ranges, keep)
	var pending []auditRow
	merge := func(unit int) error {
		res := state(unit).finish()
		states[unit] = nil
		total.merge(res.acc)
		if res.groups == 0 {
			return nil
		}
		if len(pending) > 0 && pending[0].group == res.first[0].group {
			pending = append(pending, res.first...)
		} else {
			total.addGroup(pending)
			pending = res.first
		}
		if res.groups > 1 {
			total.addGroup(pending)
			pending = res.last
		}
		return nil
	}
	err = scanUnitsOrdered(ctx, plan.units, auditLeaves(plan.columns), opts.Workers, func(unit int, rec arrow.Record) error {
		d, err := newRecordDecoder(rec)
		if err != nil {
			return fmt.Errorf("%s: %w", plan.units[unit].path, err)
		}
		st := state(unit)
		var row auditRow
		for i := 0; i < int(rec.NumRows()); i++ {
			d.row(i, &row, &st.comps)
			st.push(row)
		}
		return nil
	}, merge)
	if err != nil {
		return nil, err
	}
	// Every row group read as many rows as its footer lists (scanUnit);
	// together they must be the rows the manifest lists.
	if err := checkAuditRows(path, plan); err != nil {
		return nil, err
	}
	total.addGroup(pending)
	answerChanges(total)

	a := &Report{Dir: path, Shards: len(paths), Schema: plan.schema}
	a.Recipe = opts.Recipe
	if a.Recipe == "" {
		a.Recipe = recipeName(path)
	}
	a.MetricGroups = MetricGroups
	keys := make([]sliceKey, 0, len(total.slices))
	for k := range total.slices {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].dim != keys[j].dim {
			return dimOrder[keys[i].dim] < dimOrder[keys[j].dim]
		}
		if keys[i].dim == DimTurn {
			x, _ := strconv.Atoi(keys[i].key)
			y, _ := strconv.Atoi(keys[j].key)
			return x < y
		}
		return keys[i].key < keys[j].key
	})
	for _, k := range keys {
		s := total.slices[k]
		rep := s.report()
		a.Slices = append(a.Slices, rep)
		legacy := legacySlice(s)
		switch k.dim {
		case DimAll:
			a.Overall = *legacy
			a.ZeroStdGroups = s.zeroVar
			a.FracZeroStd = ratio(s.zeroVar, s.groups)
			a.Histogram = rep.Reward.Histogram
		case DimDataSource:
			a.BySource = append(a.BySource, legacy)
		case DimTurn:
			a.ByTurn = append(a.ByTurn, legacy)
		case DimModel:
			a.ByModel = append(a.ByModel, legacy)
		}
	}
	for i := 1; i < len(a.ByTurn); i++ {
		p, c := a.ByTurn[i-1], a.ByTurn[i]
		d := TurnDelta{From: p.Key, To: c.Key}
		if p.Accuracy != nil && c.Accuracy != nil {
			d.AccuracyDelta = fp(*c.Accuracy - *p.Accuracy)
		}
		if p.RewardMean != nil && c.RewardMean != nil {
			d.RewardMeanDelta = fp(*c.RewardMean - *p.RewardMean)
		}
		a.TurnDeltas = append(a.TurnDeltas, d)
	}
	return a, nil
}

// TurnDelta compares consecutive turns over all rows: SCoRe's
// delta(t1, t2) = acc(t2) - acc(t1) when From is 0 and To is 1.
type TurnDelta struct {
	From            string   `json:"from"`
	To              string   `json:"to"`
	AccuracyDelta   *float64 `json:"accuracy_delta"`
	RewardMeanDelta *float64 `json:"reward_mean_delta"`
}

func legacySlice(s *sliceAcc) *Slice {
	l := &Slice{Key: s.key, Rows: s.rows, Groups: s.groups, NullRewards: s.nullReward, Graded: s.graded, Accuracy: ratio(s.correct, s.graded)}
	if s.reward.n > 0 {
		l.RewardMean = fp(s.reward.mean)
	}
	if s.reward.n > 1 {
		l.RewardStd = fp(math.Sqrt(s.reward.m2 / (s.reward.n - 1)))
	}
	return l
}

// answerChanges counts, per slice, the revisions (turn >= 1 rows) whose
// extracted answer differs from the same sample's answer at the previous
// turn. Two missing answers are the same; one missing is a change.
func answerChanges(a *auditAcc) {
	if !a.keep {
		return
	}
	prev := make(map[ansKey]*revRec, len(a.answers))
	for i := range a.answers {
		prev[a.answers[i].ansKey] = &a.answers[i]
	}
	for _, r := range a.answers {
		if r.turn < 1 {
			continue
		}
		p, ok := prev[ansKey{r.task, r.sample, r.turn - 1}]
		if !ok {
			continue
		}
		changed := p.hasAnswer != r.hasAnswer || p.answer != r.answer
		for _, k := range []sliceKey{{DimAll, DimAll}, {DimDataSource, r.source}, {DimTurn, strconv.Itoa(int(r.turn))}, {DimModel, r.model}} {
			if s := a.slices[k]; s != nil {
				s.revisions++
				if changed {
					s.changed++
				}
			}
		}
	}
	a.answers = nil
}

// resolveRanges fixes the histogram ranges from the Parquet statistics, or
// from a first pass over the columns whose row groups lack them.
func resolveRanges(ctx context.Context, plan *auditPlan, workers int) (*auditRanges, error) {
	var missing []string
	for leaf, r := range plan.ranges {
		if !r.known {
			missing = append(missing, leaf)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		want := map[string]bool{}
		for _, l := range missing {
			want[l] = true
			*plan.ranges[l] = valueRange{known: true}
		}
		var mu sync.Mutex
		err := scanUnits(ctx, plan.units, func(p string) bool { return want[p] }, workers, func(_ int, rec arrow.Record) error {
			local := map[string]*valueRange{}
			for i, f := range rec.Schema().Fields() {
				leaf := f.Name
				var vals []float64
				collectFloats(rec.Column(i), &vals)
				switch f.Name {
				case "reward_components":
					leaf = leafComponent
				case "logprobs":
					leaf = leafLogprob
				}
				r := &valueRange{}
				for _, v := range vals {
					if !math.IsNaN(v) && !math.IsInf(v, 0) {
						r.widen(v, v)
					}
				}
				local[leaf] = r
			}
			mu.Lock()
			defer mu.Unlock()
			for leaf, r := range local {
				if g := plan.ranges[leaf]; g != nil && r.seen {
					g.widen(r.lo, r.hi)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	r := &auditRanges{reward: *plan.ranges[leafReward], adv: *plan.ranges[leafAdvantage], comp: *plan.ranges[leafComponent]}
	// Entropy per row lies in [0, -min logprob].
	if lp := plan.ranges[leafLogprob]; lp.seen {
		r.entropy = valueRange{lo: 0, hi: math.Max(0, -lp.lo), seen: true, known: true}
	}
	return r, nil
}

// collectFloats appends the float64 values under an array (lists and structs
// walked through).
func collectFloats(a arrow.Array, out *[]float64) {
	switch c := a.(type) {
	case interface {
		Len() int
		IsValid(int) bool
		Value(int) float64
	}:
		for i := 0; i < c.Len(); i++ {
			if c.IsValid(i) {
				*out = append(*out, c.Value(i))
			}
		}
	case interface{ ListValues() arrow.Array }:
		collectFloats(c.ListValues(), out)
	case interface {
		NumField() int
		Field(int) arrow.Array
	}:
		for i := 0; i < c.NumField(); i++ {
			collectFloats(c.Field(i), out)
		}
	}
}

// recipeName is the run's name from its manifest (config name, else source),
// else the path's base name.
func recipeName(path string) string {
	b, err := os.ReadFile(filepath.Join(path, "manifest.json"))
	if err == nil {
		var m struct {
			Config struct {
				Name string `json:"name"`
			} `json:"config"`
			Source string `json:"source"`
		}
		if json.Unmarshal(b, &m) == nil {
			if m.Config.Name != "" {
				return m.Config.Name
			}
			if m.Source != "" {
				return m.Source
			}
		}
	}
	return filepath.Base(filepath.Clean(path))
}

// RewardHistogram scans only the reward column of the shards path names,
// with the audit's worker pool and accumulator: the benchmark's unit of work.
func RewardHistogram(ctx context.Context, path string, workers int) (Dist, int64, error) {
	paths, err := auditPaths(path)
	if err != nil {
		return Dist{}, 0, err
	}
	plan, err := planAudit(paths, workers)
	if err != nil {
		return Dist{}, 0, err
	}
	ranges, err := resolveRanges(ctx, plan, workers)
	if err != nil {
		return Dist{}, 0, err
	}
	parts := make([]*dist, len(plan.units))
	var rows int64
	for i, u := range plan.units {
		parts[i] = newDist(ranges.reward)
		rows += u.rows
	}
	err = scanUnits(ctx, plan.units, func(p string) bool { return p == leafReward }, workers, func(unit int, rec arrow.Record) error {
		col, ok := rec.Column(0).(*array.Float64)
		if !ok {
			return fmt.Errorf("reward is %s, not double", rec.Column(0).DataType())
		}
		d := parts[unit]
		vals := col.Float64Values()
		if col.NullN() == 0 {
			for _, v := range vals {
				d.add(v)
			}
			return nil
		}
		for i, v := range vals {
			if col.IsValid(i) {
				d.add(v)
			}
		}
		return nil
	})
	if err != nil {
		return Dist{}, 0, err
	}
	total := newDist(ranges.reward)
	for _, p := range parts {
		total.merge(p)
	}
	return total.summary(), rows, nil
}

// checkAuditRows fails when the rows of an output directory's rl shards are
// not the rows its manifest lists (a path without a manifest is not checked).
func checkAuditRows(path string, plan *auditPlan) error {
	m, err := export.ReadManifest(path)
	if err != nil {
		return nil
	}
	var read int64
	for _, u := range plan.units {
		read += u.rows
	}
	if want := m.Datasets["rl"].Rows; read != want {
		return fmt.Errorf("%s: audit read %d rl rows, the manifest lists %d", path, read, want)
	}
	return nil
}
