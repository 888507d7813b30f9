package view

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// The filter index of a dataset holds, per row, only what the filters and
// sorts need: the dictionary numbers of a few string columns, the reward
// and advantage, the turn and a few flags, and the task id of each run of
// consecutive rows of one task: about 35 bytes a row. It is built from a handful of small
// columns (indexColumns), never from prompts, responses or token tracks, a
// shard at a time in batches.

// indexColumns are the columns the index reads, where the dataset has them.
var indexColumns = []string{
	"task_id", "data_source", "turn", "transition", "reward", "advantage", "finish_reason",
	"reward_reason", "reward_components", "correct", "judge_flagged", "judge_scores", "error", "recipe",
}

// Row flags.
const (
	flagFlagged   = 1 << iota // judge_flagged
	flagDisagree              // judge score >= 0.5 disagrees with the verifier's correct
	flagFailed                // error set: the request failed
	flagTruncated             // finish_reason length
	flagCorrect               // correct true
	flagIncorrect             // correct false
)

// dict numbers the distinct values of a string column; 0 is null. Past
// maxDict values, the rest share one "(other values)" entry.
type dict struct {
	ids    map[string]uint16
	vals   []string // vals[0] == "" (null)
	counts []int64
}

const maxDict = 4096

func newDict() *dict { return &dict{ids: map[string]uint16{}, vals: []string{""}, counts: []int64{0}} }

func (d *dict) id(s string, null bool) uint16 {
	if null {
		d.counts[0]++
		return 0
	}
	if id, ok := d.ids[s]; ok {
		d.counts[id]++
		return id
	}
	if len(d.vals) >= maxDict {
		s = "(other values)"
		if id, ok := d.ids[s]; ok {
			d.counts[id]++
			return id
		}
	}
	id := uint16(len(d.vals))
	s = strings.Clone(s)
	d.ids[s] = id
	d.vals = append(d.vals, s)
	d.counts = append(d.counts, 1)
	return id
}

// Value is one value of a string column with the rows that have it.
type Value struct {
	Value string
	Rows  int64
}

// values lists the non-null values, most rows first.
func (d *dict) values() []Value {
	var out []Value
	for i := 1; i < len(d.vals); i++ {
		out = append(out, Value{d.vals[i], d.counts[i]})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Rows > out[j].Rows })
	return out
}

type index struct {
	rows int64
	// Consecutive rows of one task form a block; block b's task id is
	// tasks[taskEnd[b-1]:taskEnd[b]] (one string for all: no pointer per
	// block for the collector to follow).
	blockFirst []int64
	tasks      []byte
	taskEnd    []uint32

	source, trans, finish, reason, recipe *codes
	turn                                  []int16 // -1: none
	reward, adv                           []float64
	flags                                 []uint8
	maxTurn                               int16
	hasJudge                              bool
}

// codes is one string column of the index: each row's dictionary number,
// nil when the dataset has no such column (every row null).
type codes struct {
	d  *dict
	of []uint16
}

func newCodes(n int, present bool) *codes {
	c := &codes{d: newDict()}
	if present {
		c.of = make([]uint16, n)
	}
	return c
}

func (c *codes) set(row int64, v string, null bool) {
	if c.of != nil {
		c.of[row] = c.d.id(v, null)
	}
}

func (c *codes) at(row int64) uint16 {
	if c.of == nil {
		return 0
	}
	return c.of[row]
}

// taskBytes is block b's task id.
func (x *index) taskBytes(b int) []byte {
	lo := uint32(0)
	if b > 0 {
		lo = x.taskEnd[b-1]
	}
	return x.tasks[lo:x.taskEnd[b]]
}

type indexState struct {
	once    sync.Once
	done    chan struct{}
	idx     *index
	err     error
	scanned atomic.Int64
}

// IndexProgress reports the rows indexed so far and whether the index is
// complete (err is its failure).
func (d *Dataset) IndexProgress() (scanned int64, done bool, err error) {
	select {
	case <-d.idx.done:
		return d.Rows, true, d.idx.err
	default:
		return d.idx.scanned.Load(), false, nil
	}
}

// waitIndex builds the index if nobody has started it and waits for it.
func (d *Dataset) waitIndex(ctx context.Context) (*index, error) {
	go d.index(context.Background())
	select {
	case <-d.idx.done:
		return d.idx.idx, d.idx.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// index builds the dataset's index once.
func (d *Dataset) index(ctx context.Context) {
	d.idx.once.Do(func() {
		d.idx.idx, d.idx.err = d.build(ctx)
		close(d.idx.done)
	})
}

func (d *Dataset) build(ctx context.Context) (*index, error) {
	n := int(d.Rows)
	cl := d.Columns
	x := &index{rows: d.Rows, maxTurn: -1,
		source: newCodes(n, cl["data_source"]), trans: newCodes(n, cl["transition"]), finish: newCodes(n, cl["finish_reason"]),
		reason: newCodes(n, cl["reward_reason"] || cl["reward_components"]), recipe: newCodes(n, cl["recipe"])}
	x.turn, x.flags = make([]int16, n), make([]uint8, n)
	x.reward, x.adv = make([]float64, n), make([]float64, n)
	want := map[string]bool{}
	for _, c := range indexColumns {
		if d.Columns[c] {
			want[c] = true
		}
	}
	if len(want) == 0 {
		for i := range n {
			x.turn[i], x.reward[i], x.adv[i] = -1, math.NaN(), math.NaN()
		}
		return x, nil
	}
	var lastTask []byte
	for _, s := range d.Shards {
		rgs := make([]int, len(s.RowGroups))
		for i := range rgs {
			rgs[i] = i
		}
		err := s.scan(ctx, rgs, want, 2048, func(rec arrow.Record, first int64) bool {
			c := columnsOf(rec)
			for i := 0; i < int(rec.NumRows()); i++ {
				row := first + int64(i)
				task, _ := c.str("task_id", i)
				if row == 0 || task != string(lastTask) {
					x.blockFirst = append(x.blockFirst, row)
					x.tasks = append(x.tasks, task...)
					x.taskEnd = append(x.taskEnd, uint32(len(x.tasks)))
					lastTask = x.tasks[len(x.tasks)-len(task):]
				}
				x.add(c, i, row)
			}
			d.idx.scanned.Store(first + rec.NumRows())
			return ctx.Err() == nil
		})
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			return nil, fmt.Errorf("indexing %s: %w", d.Name, err)
		}
	}
	return x, nil
}

// add indexes row i of a batch as global row row.
func (x *index) add(c cols, i int, row int64) {
	v, null := c.str("data_source", i)
	x.source.set(row, v, null)
	v, null = c.str("transition", i)
	x.trans.set(row, v, null)
	var f uint8
	v, null = c.str("finish_reason", i)
	x.finish.set(row, v, null)
	if !null && v == "length" {
		f |= flagTruncated
	}
	v, null = c.str("recipe", i)
	x.recipe.set(row, v, null)
	x.turn[row] = -1
	if t, ok := c.i32("turn", i); ok {
		x.turn[row] = int16(t)
		x.maxTurn = max(x.maxTurn, int16(t))
	}
	x.reward[row], x.adv[row] = math.NaN(), math.NaN()
	if r, ok := c.f64("reward", i); ok {
		x.reward[row] = r
	}
	if a, ok := c.f64("advantage", i); ok {
		x.adv[row] = a
	}
	// The null reason: the total's, else the first null component's.
	reason, null := c.str("reward_reason", i)
	if null {
		c.components(i, func(name string, value float64, hasValue bool, why string, hasWhy bool) {
			if null && !hasValue {
				reason, null = name+": "+why, false
				if !hasWhy {
					reason = name + ": null"
				}
			}
		})
	}
	x.reason.set(row, reason, null)
	if _, null := c.str("error", i); !null && c.has("error") {
		f |= flagFailed
	}
	if b, ok := c.boolean("judge_flagged", i); ok && b {
		f |= flagFlagged
	}
	correct, hasCorrect := c.boolean("correct", i)
	if hasCorrect {
		if correct {
			f |= flagCorrect
		} else {
			f |= flagIncorrect
		}
	}
	// The judge's score as the audit takes it: the judge component when
	// the reward has one, else the mean of the judges' scores.
	judge, hasJudge := 0.0, false
	c.components(i, func(name string, value float64, hasValue bool, _ string, _ bool) {
		if name == "judge" && hasValue {
			judge, hasJudge = value, true
		}
	})
	if !hasJudge {
		judge, hasJudge = c.judgeMean(i)
	}
	if hasJudge {
		x.hasJudge = true
		if hasCorrect && (judge >= 0.5) != correct {
			f |= flagDisagree
		}
	}
	x.flags[row] = f
}

// cols reads the columns of one batch by name.
type cols struct {
	byName map[string]arrow.Array
}

func columnsOf(rec arrow.Record) cols {
	c := cols{byName: map[string]arrow.Array{}}
	for i, f := range rec.Schema().Fields() {
		c.byName[f.Name] = rec.Column(i)
	}
	return c
}

func (c cols) has(name string) bool { return c.byName[name] != nil }

// str is a string column's value; null is true for a null or absent one.
func (c cols) str(name string, i int) (string, bool) {
	a, ok := c.byName[name].(*array.String)
	if !ok || a.IsNull(i) {
		return "", true
	}
	return a.Value(i), false
}

func (c cols) i32(name string, i int) (int32, bool) {
	a, ok := c.byName[name].(*array.Int32)
	if !ok || a.IsNull(i) {
		return 0, false
	}
	return a.Value(i), true
}

func (c cols) f64(name string, i int) (float64, bool) {
	a, ok := c.byName[name].(*array.Float64)
	if !ok || a.IsNull(i) {
		return 0, false
	}
	return a.Value(i), true
}

func (c cols) boolean(name string, i int) (bool, bool) {
	a, ok := c.byName[name].(*array.Boolean)
	if !ok || a.IsNull(i) {
		return false, false
	}
	return a.Value(i), true
}

// structList returns a list-of-struct column's struct values and row i's
// range in them.
func (c cols) structList(name string, i int) (*array.Struct, int, int) {
	l, ok := c.byName[name].(*array.List)
	if !ok || l.IsNull(i) {
		return nil, 0, 0
	}
	st, ok := l.ListValues().(*array.Struct)
	if !ok {
		return nil, 0, 0
	}
	s, e := l.ValueOffsets(i)
	return st, int(s), int(e)
}

func field(st *array.Struct, name string) arrow.Array {
	if j, ok := st.DataType().(*arrow.StructType).FieldIdx(name); ok {
		return st.Field(j)
	}
	return nil
}

// components calls fn with each reward component of row i.
func (c cols) components(i int, fn func(name string, value float64, hasValue bool, reason string, hasReason bool)) {
	st, s, e := c.structList("reward_components", i)
	if st == nil {
		return
	}
	names, _ := field(st, "name").(*array.String)
	values, _ := field(st, "value").(*array.Float64)
	reasons, _ := field(st, "reason").(*array.String)
	if names == nil || values == nil {
		return
	}
	for j := s; j < e; j++ {
		why, hasWhy := "", false
		if reasons != nil && reasons.IsValid(j) {
			why, hasWhy = reasons.Value(j), true
		}
		fn(names.Value(j), values.Value(j), values.IsValid(j), why, hasWhy)
	}
}

func (c cols) judgeMean(i int) (float64, bool) {
	st, s, e := c.structList("judge_scores", i)
	if st == nil {
		return 0, false
	}
	scores, _ := field(st, "score").(*array.Float64)
	if scores == nil {
		return 0, false
	}
	sum, n := 0.0, 0
	for j := s; j < e; j++ {
		if scores.IsValid(j) {
			sum += scores.Value(j)
			n++
		}
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}

// texts appends every string value of row i of a column (a string, or a
// list or struct holding strings: prompts, messages), for text search.
func texts(a arrow.Array, i int, out []string) []string {
	if a == nil || a.IsNull(i) {
		return out
	}
	switch a := a.(type) {
	case *array.String:
		return append(out, a.Value(i))
	case *array.List:
		s, e := a.ValueOffsets(i)
		for j := int(s); j < int(e); j++ {
			out = texts(a.ListValues(), j, out)
		}
	case *array.Struct:
		for f := 0; f < a.NumField(); f++ {
			out = texts(a.Field(f), i, out)
		}
	}
	return out
}

// textColumns are the columns text search scans, per dataset.
func textColumns(d *Dataset) []string {
	var out []string
	for _, c := range []string{"response", "reasoning", "messages", "chosen", "rejected"} {
		if d.Columns[c] {
			out = append(out, c)
		}
	}
	if len(out) == 0 && d.Columns["prompt"] {
		out = append(out, "prompt")
	}
	return out
}

// Query selects and orders rows of a dataset.
type Query struct {
	Dataset    string
	Source     string   // data_source; "" any
	Recipe     string   // sft's recipe; "" any
	Turn       *int     // nil any
	Transition string   // "" any; "none" for null
	Finish     string   // finish_reason; "" any; "none" for null
	RewardMin  *float64 // inclusive
	RewardMax  *float64 // inclusive
	NullReason string   // "" any; "*" any null reward or component; else that reason
	Truncated  bool
	Disagree   bool
	Flagged    bool
	Failed     bool
	Task       string // substring of the task id
	Text       string // substring of the text columns (case-insensitive)
	Sort       string // "" file order, "reward", "-reward", "advantage", "-advantage"
}

// TextLimit bounds a text search: it stops at this many matches.
const TextLimit = 1000

// Result is the rows a query selects.
type Result struct {
	Rows []int64
	// Text search: rows whose text was scanned, and whether it stopped at
	// TextLimit matches.
	TextScanned int64
	TextLimited bool
}

// Filtered says whether the query needs the index (anything but the
// dataset in file order).
func (q Query) Filtered() bool {
	q.Dataset = ""
	return q != Query{}
}

// key identifies a query's result in the cache.
func (q Query) key() string {
	turn, lo, hi := deref(q.Turn), deref(q.RewardMin), deref(q.RewardMax)
	q.Turn, q.RewardMin, q.RewardMax = nil, nil, nil
	return fmt.Sprintf("%+v|%v|%v|%v", q, turn, lo, hi)
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// match applies the index filters to one row.
func (x *index) match(q *Query, row int64, src, rec, trans, fin, reason uint16, wantReason bool) bool {
	f := x.flags[row]
	switch {
	case q.Source != "" && x.source.at(row) != src,
		q.Recipe != "" && x.recipe.at(row) != rec,
		q.Transition != "" && x.trans.at(row) != trans,
		q.Finish != "" && x.finish.at(row) != fin,
		q.Turn != nil && int(x.turn[row]) != *q.Turn,
		q.Truncated && f&flagTruncated == 0,
		q.Disagree && f&flagDisagree == 0,
		q.Flagged && f&flagFlagged == 0,
		q.Failed && f&flagFailed == 0:
		return false
	}
	if q.RewardMin != nil || q.RewardMax != nil {
		r := x.reward[row]
		if math.IsNaN(r) || q.RewardMin != nil && r < *q.RewardMin || q.RewardMax != nil && r > *q.RewardMax {
			return false
		}
	}
	if q.NullReason == "*" && x.reason.at(row) == 0 || wantReason && x.reason.at(row) != reason {
		return false
	}
	return true
}

// lookup finds a dictionary value for a filter: ok is false when no row
// has it ("none" is the null value).
func lookup(d *dict, v string) (uint16, bool) {
	if v == "none" {
		return 0, d.counts[0] > 0
	}
	id, ok := d.ids[v]
	return id, ok
}

// Select runs a query. A query in file order with no filter needs no index
// (rows is nil: every row); any other waits for the dataset's index.
func (d *Dataset) Select(ctx context.Context, q Query) (*Result, error) {
	if !q.Filtered() {
		return &Result{}, nil
	}
	d.cacheMu.Lock()
	if r, ok := d.cache[q.key()]; ok {
		d.cacheMu.Unlock()
		return r, nil
	}
	d.cacheMu.Unlock()
	x, err := d.waitIndex(ctx)
	if err != nil {
		return nil, err
	}
	var src, rec, trans, fin, reason uint16
	ok := true
	look := func(dd *codes, v string, id *uint16) {
		if v != "" {
			var found bool
			*id, found = lookup(dd.d, v)
			ok = ok && found
		}
	}
	look(x.source, q.Source, &src)
	look(x.recipe, q.Recipe, &rec)
	look(x.trans, q.Transition, &trans)
	look(x.finish, q.Finish, &fin)
	wantReason := q.NullReason != "" && q.NullReason != "*"
	if wantReason {
		look(x.reason, q.NullReason, &reason)
	}
	res := &Result{Rows: []int64{}}
	if ok {
		// The task filter: the blocks whose task id matches.
		var blocks [][2]int64
		if task := []byte(q.Task); q.Task != "" {
			for b := range x.blockFirst {
				if bytes.Contains(x.taskBytes(b), task) {
					end := x.rows
					if b+1 < len(x.blockFirst) {
						end = x.blockFirst[b+1]
					}
					blocks = append(blocks, [2]int64{x.blockFirst[b], end})
				}
			}
		} else {
			blocks = [][2]int64{{0, x.rows}}
		}
		for _, b := range blocks {
			for row := b[0]; row < b[1]; row++ {
				if x.match(&q, row, src, rec, trans, fin, reason, wantReason) {
					res.Rows = append(res.Rows, row)
				}
			}
		}
	}
	if q.Text != "" && len(res.Rows) > 0 {
		if err := d.textSearch(ctx, q.Text, res); err != nil {
			return nil, err
		}
	}
	switch q.Sort {
	case "reward", "-reward", "advantage", "-advantage":
		vals := x.reward
		if strings.HasSuffix(q.Sort, "advantage") {
			vals = x.adv
		}
		desc := strings.HasPrefix(q.Sort, "-")
		sort.SliceStable(res.Rows, func(i, j int) bool {
			a, b := vals[res.Rows[i]], vals[res.Rows[j]]
			switch {
			case math.IsNaN(a) || math.IsNaN(b):
				return !math.IsNaN(a) && math.IsNaN(b) // nulls last
			case desc:
				return a > b
			default:
				return a < b
			}
		})
	}
	d.cacheMu.Lock()
	if d.cache == nil || len(d.cache) >= 4 {
		d.cache = map[string]*Result{}
	}
	d.cache[q.key()] = res
	d.cacheMu.Unlock()
	return res, nil
}

// textSearch keeps the rows of res whose text contains text (ignoring
// case), scanning the text columns of the row groups that hold candidate
// rows, in order, and stopping at TextLimit matches.
func (d *Dataset) textSearch(ctx context.Context, text string, res *Result) error {
	want := map[string]bool{}
	for _, c := range textColumns(d) {
		want[c] = true
	}
	if len(want) == 0 {
		res.Rows = res.Rows[:0]
		return nil
	}
	needle := strings.ToLower(text)
	ascii := isASCII(needle)
	cand := res.Rows
	var kept []int64
	k := 0 // next candidate
	var buf []string
	for _, s := range d.Shards {
		if k >= len(cand) || len(kept) >= TextLimit {
			break
		}
		var rgs []int
		for rg := range s.RowGroups {
			lo, hi := s.rgFirst[rg], s.rgFirst[rg]+s.RowGroups[rg]
			j := sort.Search(len(cand), func(i int) bool { return cand[i] >= lo })
			if j < len(cand) && cand[j] < hi {
				rgs = append(rgs, rg)
			}
		}
		if len(rgs) == 0 {
			continue
		}
		err := s.scan(ctx, rgs, want, pageBatch, func(rec arrow.Record, first int64) bool {
			end := first + rec.NumRows()
			for k < len(cand) && cand[k] < first {
				k++
			}
			for ; k < len(cand) && cand[k] < end; k++ {
				i := int(cand[k] - first)
				buf = buf[:0]
				for c := 0; c < int(rec.NumCols()); c++ {
					buf = texts(rec.Column(c), i, buf)
				}
				res.TextScanned++
				for _, t := range buf {
					if ascii && containsFoldASCII(t, needle) || !ascii && strings.Contains(strings.ToLower(t), needle) {
						kept = append(kept, cand[k])
						break
					}
				}
				if len(kept) >= TextLimit {
					res.TextLimited = k+1 < len(cand)
					return false
				}
			}
			return k < len(cand)
		})
		if err != nil {
			return err
		}
	}
	res.Rows = kept
	if res.Rows == nil {
		res.Rows = []int64{}
	}
	return ctx.Err()
}

// Facets are the values the filters offer, from the index.
type Facets struct {
	Sources, Recipes, Transitions, Finishes, NullReasons []Value
	MaxTurn                                              int
	HasJudge                                             bool
	Flagged, Disagree, Failed, Truncated                 int64
}

// Facets returns the filter values once the index is built; ok is false
// before.
func (d *Dataset) Facets() (Facets, bool) {
	select {
	case <-d.idx.done:
	default:
		return Facets{}, false
	}
	x := d.idx.idx
	if x == nil {
		return Facets{}, false
	}
	f := Facets{Sources: x.source.d.values(), Recipes: x.recipe.d.values(), Transitions: x.trans.d.values(),
		Finishes: x.finish.d.values(), NullReasons: x.reason.d.values(), MaxTurn: int(x.maxTurn), HasJudge: x.hasJudge}
	for _, fl := range x.flags {
		if fl&flagFlagged != 0 {
			f.Flagged++
		}
		if fl&flagDisagree != 0 {
			f.Disagree++
		}
		if fl&flagFailed != 0 {
			f.Failed++
		}
		if fl&flagTruncated != 0 {
			f.Truncated++
		}
	}
	return f, true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// containsFoldASCII reports whether s contains needle (ASCII, lower case)
// ignoring ASCII case, without allocating.
func containsFoldASCII(s, needle string) bool {
	n := len(needle)
	if n == 0 {
		return true
	}
	c0 := needle[0]
	for i := 0; i+n <= len(s); i++ {
		if lower(s[i]) != c0 {
			continue
		}
		j := 1
		for j < n && lower(s[i+j]) == needle[j] {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

func lower(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}
