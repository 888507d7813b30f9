package audit

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/metadata"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
)

// The audit reads shards in units of one row group. Units are scanned by a
// pool of workers; their results are merged in (shard, row group) order, so
// the audit is the same for any number of workers.

// auditUnit is one row group of one shard.
type auditUnit struct {
	path string
	rg   int
	rows int64
}

// valueRange is the [min, max] of a numeric leaf column over every row group,
// from the Parquet statistics when each row group has them.
type valueRange struct {
	lo, hi float64
	seen   bool // some row group had a value
	known  bool // every row group with values had statistics
}

func (r *valueRange) widen(lo, hi float64) {
	if !r.seen || lo < r.lo {
		r.lo = lo
	}
	if !r.seen || hi > r.hi {
		r.hi = hi
	}
	r.seen = true
}

// auditPlan is what the footers say: the units, the schema version and the
// ranges of the histogrammed columns.
type auditPlan struct {
	shards  []string
	units   []auditUnit
	schema  string
	columns map[string]bool // top-level columns present in every shard
	ranges  map[string]*valueRange
	maxTurn int32
	turnOK  bool
}

// Leaf columns whose ranges fix the histogram bins.
const (
	leafReward    = "reward"
	leafAdvantage = "advantage"
	leafComponent = "reward_components.list.element.value"
	leafLogprob   = "logprobs.list.element.logprob"
	leafTurn      = "turn"
)

// auditPaths resolves what `redraft audit PATH` names: an output directory
// (its data/rl shards), a directory of Parquet files, or one Parquet file.
func auditPaths(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	paths, err := RLShards(path)
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		paths, _ = filepath.Glob(filepath.Join(path, "*.parquet"))
		sort.Strings(paths)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s: no rl shards under data/rl/", path)
	}
	return paths, nil
}

// shardPlan is what one shard's footer says.
type shardPlan struct {
	schema  string
	columns map[string]bool
	units   []auditUnit
	ranges  map[string]*valueRange
	maxTurn int32
	turnOK  bool
}

// planAudit reads the shards' footers, workers at a time (0: GOMAXPROCS),
// and combines them in shard order.
func planAudit(paths []string, workers int) (*auditPlan, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	shards := make([]*shardPlan, len(paths))
	errs := make([]error, len(paths))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(1, min(workers, len(paths))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(paths) {
					return
				}
				shards[i], errs[i] = planShard(paths[i])
			}
		}()
	}
	wg.Wait()
	p := &auditPlan{shards: paths, ranges: map[string]*valueRange{}}
	for _, l := range []string{leafReward, leafAdvantage, leafComponent, leafLogprob} {
		p.ranges[l] = &valueRange{known: true}
	}
	p.turnOK = true
	for i, sp := range shards {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if i == 0 {
			p.schema = sp.schema
			p.columns = sp.columns
		} else {
			if sp.schema != p.schema {
				return nil, fmt.Errorf("%s: schema %s differs from %s in earlier shards", paths[i], sp.schema, p.schema)
			}
			for c := range p.columns {
				if !sp.columns[c] {
					delete(p.columns, c)
				}
			}
		}
		p.units = append(p.units, sp.units...)
		for leaf, r := range sp.ranges {
			g := p.ranges[leaf]
			if r.seen {
				g.widen(r.lo, r.hi)
			}
			g.known = g.known && r.known
		}
		p.maxTurn = max(p.maxTurn, sp.maxTurn)
		p.turnOK = p.turnOK && sp.turnOK
	}
	return p, nil
}

func planShard(path string) (*shardPlan, error) {
	p := &shardPlan{columns: map[string]bool{}, ranges: map[string]*valueRange{}, turnOK: true}
	for _, l := range []string{leafReward, leafAdvantage, leafComponent, leafLogprob} {
		p.ranges[l] = &valueRange{known: true}
	}
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer pf.Close()
	md := pf.MetaData()
	if kv := md.KeyValueMetadata().FindValue("redraft.schema"); kv != nil {
		p.schema = *kv
	}
	for f := 0; f < md.Schema.Root().NumFields(); f++ {
		p.columns[md.Schema.Root().Field(f).Name()] = true
	}
	for rg := 0; rg < pf.NumRowGroups(); rg++ {
		rgm := md.RowGroup(rg)
		p.units = append(p.units, auditUnit{path: path, rg: rg, rows: rgm.NumRows()})
		for c := 0; c < rgm.NumColumns(); c++ {
			cc, err := rgm.ColumnChunk(c)
			if err != nil {
				continue
			}
			leaf := md.Schema.Column(c).Path()
			r := p.ranges[leaf]
			if r == nil && leaf != leafTurn {
				continue
			}
			stats, _ := cc.Statistics()
			switch s := stats.(type) {
			case *metadata.Float64Statistics:
				if r == nil {
					continue
				}
				if s.HasMinMax() {
					r.widen(s.Min(), s.Max())
				} else if s.NullCount() < cc.NumValues() || !s.HasNullCount() {
					r.known = false
				}
			case *metadata.Int32Statistics:
				if leaf == leafTurn && s.HasMinMax() {
					p.maxTurn = max(p.maxTurn, s.Max())
				} else if leaf == leafTurn {
					p.turnOK = false
				}
			default:
				if r != nil {
					r.known = false
				} else if leaf == leafTurn {
					p.turnOK = false
				}
			}
		}
	}
	return p, nil
}

// scanUnits reads the given top-level columns (and, for nested columns, the
// listed leaves only) of every unit with workers goroutines and calls fn for
// every record of a unit, in order within the unit. fn for different units
// runs concurrently.
func scanUnits(ctx context.Context, units []auditUnit, leaves func(path string) bool, workers int, fn func(unit int, rec arrow.Record) error) error {
	return scanUnitsOrdered(ctx, units, leaves, workers, fn, nil)
}

// scanUnitsOrdered is scanUnits that also calls done(unit) for every unit
// after its last record, one call at a time and in unit order, and hands a
// unit to a worker only while fewer than 4 x workers units wait for their
// done call: what a caller holds per unit until done is bounded by that
// window, not by the number of units.
func scanUnitsOrdered(ctx context.Context, units []auditUnit, leaves func(path string) bool, workers int, fn func(unit int, rec arrow.Record) error, done func(unit int) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, len(units)))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	errs := make([]error, len(units))
	// In-order completion: finished[i] is set when unit i is scanned;
	// frontier is the first unit whose done has not run.
	var mu sync.Mutex
	advanced := make(chan struct{}, 1)
	finished := make([]bool, len(units))
	frontier := 0
	var doneErr error
	complete := func(i int) {
		mu.Lock()
		defer mu.Unlock()
		finished[i] = true
		for frontier < len(units) && finished[frontier] && doneErr == nil {
			if done != nil {
				if err := done(frontier); err != nil {
					doneErr = err
					cancel()
					break
				}
			}
			frontier++
		}
		select {
		case advanced <- struct{}{}:
		default:
		}
	}
	window := 4 * workers
	footers := newFooterCache(2 * workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := scanUnit(ctx, units[i], footers, leaves, func(rec arrow.Record) error { return fn(i, rec) }); err != nil {
					errs[i] = err
					cancel()
					continue
				}
				complete(i)
			}
		}()
	}
feed:
	for i := range units {
		for done != nil {
			mu.Lock()
			wait := i >= frontier+window
			mu.Unlock()
			if !wait {
				break
			}
			select {
			case <-advanced:
			case <-ctx.Done():
				break feed
			}
		}
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if doneErr != nil {
		return doneErr
	}
	return ctx.Err()
}

// footerCache holds the parsed footers of the last few shards scanned. Units
// are handed out in order, so the row groups of a shard are scanned close
// together, by different workers: with the cache its footer (thrift, every
// column of every row group: the larger part of a one-column scan) is
// parsed once, not once per row group. It keeps at most max footers.
type footerCache struct {
	mu    sync.Mutex
	max   int
	order []string
	byKey map[string]*footer
}

type footer struct {
	once sync.Once
	md   *metadata.FileMetaData
	err  error
}

func newFooterCache(max int) *footerCache {
	return &footerCache{max: max, byKey: map[string]*footer{}}
}

func (c *footerCache) get(path string) (*metadata.FileMetaData, error) {
	c.mu.Lock()
	f := c.byKey[path]
	if f == nil {
		f = &footer{}
		c.byKey[path] = f
		c.order = append(c.order, path)
		if len(c.order) > c.max {
			delete(c.byKey, c.order[0])
			c.order = c.order[1:]
		}
	}
	c.mu.Unlock()
	f.once.Do(func() {
		pf, err := file.OpenParquetFile(path, false)
		if err != nil {
			f.err = err
			return
		}
		f.md = pf.MetaData()
		f.err = pf.Close()
	})
	return f.md, f.err
}

func scanUnit(ctx context.Context, u auditUnit, footers *footerCache, leaves func(path string) bool, fn func(arrow.Record) error) error {
	md, err := footers.get(u.path)
	if err != nil {
		return fmt.Errorf("%s: %w", u.path, err)
	}
	pf, err := file.OpenParquetFile(u.path, false, file.WithMetadata(md))
	if err != nil {
		return fmt.Errorf("%s: %w", u.path, err)
	}
	defer pf.Close()
	var idx []int
	for c := 0; c < pf.MetaData().Schema.NumColumns(); c++ {
		if leaves(pf.MetaData().Schema.Column(c).Path()) {
			idx = append(idx, c)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: max(1, min(u.rows, 64<<10))}, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("%s: %w", u.path, err)
	}
	rr, err := fr.GetRecordReader(ctx, idx, []int{u.rg})
	if err != nil {
		return fmt.Errorf("%s: %w", u.path, err)
	}
	defer rr.Release()
	var rows int64
	for rr.Next() {
		rows += rr.Record().NumRows()
		if err := fn(rr.Record()); err != nil {
			return err
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s row group %d: %w", u.path, u.rg, err)
	}
	// Arrow Go ends a column chunk without an error at a page it cannot
	// read: a short read is an error here, never fewer rows.
	if rows != u.rows {
		return fmt.Errorf("%s row group %d: read %d rows, the footer lists %d: the Parquet reader stopped early", u.path, u.rg, rows, u.rows)
	}
	return nil
}

// auditColumns are the top-level columns the audit reads; of logprobs and
// judge_scores only the numbers.
var auditColumns = []string{
	"task_id", "group_id", "sample_index", "turn", "data_source", "model", "response",
	"finish_reason", "completion_tokens", "logprobs", "extracted_answer", "correct",
	"transition", "reward", "reward_reason", "reward_components", "consensus_ratio",
	"consensus_label_correct", "judge_scores", "judge_flagged", "advantage", "error",
}

func auditLeaves(present map[string]bool) func(string) bool {
	want := map[string]bool{}
	for _, c := range auditColumns {
		if present[c] {
			want[c] = true
		}
	}
	return func(path string) bool {
		top, _, _ := strings.Cut(path, ".")
		if !want[top] {
			return false
		}
		switch top {
		case "logprobs":
			return path == leafLogprob
		case "judge_scores":
			return path == "judge_scores.list.element.score"
		}
		return true
	}
}

// respSeed hashes response texts for the distinct-correct-responses count
// (only the number of distinct hashes is reported, so the seed does not
// change the report).
var respSeed = maphash.MakeSeed()

// auditRow is one row as the audit sees it.
type auditRow struct {
	task, group, source, model string
	sample, turn               int32
	length                     int64 // completion tokens, else response characters
	lengthTokens               bool
	finish                     string // "" when null
	nlpSum                     float64
	nlpN                       int32
	answer                     string // "" when null (hasAnswer false)
	hasAnswer                  bool
	correct                    int8   // -1 null, 0, 1
	respHash                   uint64 // of the response text, for correct rows
	failed                     bool   // the sample has no response (error set)
	transition                 string
	reward                     float64
	hasReward                  bool
	rewardReason               string
	comps                      []auditComp
	consRatio                  float64
	hasConsRatio               bool
	consCorrect                int8
	judge                      float64
	hasJudge                   bool
	flagged                    int8
	adv                        float64
	hasAdv                     bool
}

type auditComp struct {
	name, reason string
	value, w     float64
	has          bool
}

// clone copies the strings a row shares with Arrow buffers, for rows kept
// beyond their batch.
func (r *auditRow) clone() {
	r.task, r.group = strings.Clone(r.task), strings.Clone(r.group)
	r.source, r.model = strings.Clone(r.source), strings.Clone(r.model)
	r.finish, r.transition, r.rewardReason = strings.Clone(r.finish), strings.Clone(r.transition), strings.Clone(r.rewardReason)
	r.answer = strings.Clone(r.answer)
	comps := make([]auditComp, len(r.comps))
	for i, c := range r.comps {
		c.name, c.reason = strings.Clone(c.name), strings.Clone(c.reason)
		comps[i] = c
	}
	r.comps = comps
}

// recordDecoder pulls audit rows out of one record. Its columns are looked
// up once per record; a row costs no allocation (its strings point into the
// record's buffers, its components into the caller's arena).
type recordDecoder struct {
	task, group, source, model, response *array.String
	sample, turn                         *array.Int32
	// optional columns (nil when absent or of another type)
	complTokens                                      *array.Int32
	finish, answer, errCol, transition, rewardReason *array.String
	correct, consCorrect, flagged                    *array.Boolean
	reward, consRatio, adv                           *array.Float64
	comp                                             *array.List
	// reward_components struct children
	cName, cReason *array.String
	cValue, cW     *array.Float64
	lp             *array.List
	lpV            *array.Float64
	js             *array.List
	jsV            *array.Float64
}

func newRecordDecoder(rec arrow.Record) (*recordDecoder, error) {
	d := &recordDecoder{}
	str := map[string]**array.String{"task_id": &d.task, "group_id": &d.group, "data_source": &d.source, "model": &d.model,
		"response": &d.response, "finish_reason": &d.finish, "extracted_answer": &d.answer, "error": &d.errCol,
		"transition": &d.transition, "reward_reason": &d.rewardReason}
	i32 := map[string]**array.Int32{"sample_index": &d.sample, "turn": &d.turn, "completion_tokens": &d.complTokens}
	f64 := map[string]**array.Float64{"reward": &d.reward, "consensus_ratio": &d.consRatio, "advantage": &d.adv}
	bl := map[string]**array.Boolean{"correct": &d.correct, "consensus_label_correct": &d.consCorrect, "judge_flagged": &d.flagged}
	for i, f := range rec.Schema().Fields() {
		col := rec.Column(i)
		switch c := col.(type) {
		case *array.String:
			if p := str[f.Name]; p != nil {
				*p = c
			}
		case *array.Int32:
			if p := i32[f.Name]; p != nil {
				*p = c
			}
		case *array.Float64:
			if p := f64[f.Name]; p != nil {
				*p = c
			}
		case *array.Boolean:
			if p := bl[f.Name]; p != nil {
				*p = c
			}
		case *array.List:
			st, ok := c.ListValues().(*array.Struct)
			if !ok {
				continue
			}
			field := func(name string) arrow.Array {
				if j, ok := st.DataType().(*arrow.StructType).FieldIdx(name); ok {
					return st.Field(j)
				}
				return nil
			}
			switch f.Name {
			case "reward_components":
				d.comp = c
				d.cName, _ = field("name").(*array.String)
				d.cReason, _ = field("reason").(*array.String)
				d.cValue, _ = field("value").(*array.Float64)
				d.cW, _ = field("weight").(*array.Float64)
				if d.cName == nil || d.cValue == nil || d.cW == nil {
					return nil, fmt.Errorf("reward_components: unexpected type %s", c.DataType())
				}
			case "logprobs":
				if v, ok := field("logprob").(*array.Float64); ok {
					d.lp, d.lpV = c, v
				}
			case "judge_scores":
				if v, ok := field("score").(*array.Float64); ok {
					d.js, d.jsV = c, v
				}
			}
		}
	}
	for _, c := range []string{"task_id", "group_id", "data_source", "model", "response"} {
		if *str[c] == nil {
			return nil, fmt.Errorf("column %s missing or not a string", c)
		}
	}
	for _, c := range []string{"sample_index", "turn"} {
		if *i32[c] == nil {
			return nil, fmt.Errorf("column %s missing or not int32", c)
		}
	}
	return d, nil
}

func optStr(a *array.String, i int) string {
	if a == nil || a.IsNull(i) {
		return ""
	}
	return a.Value(i)
}

// row decodes row i into r; its reward components are appended to *arena
// and r.comps is their slice of it.
func (d *recordDecoder) row(i int, r *auditRow, arena *[]auditComp) {
	*r = auditRow{
		task:    d.task.Value(i),
		group:   d.group.Value(i),
		source:  d.source.Value(i),
		model:   d.model.Value(i),
		sample:  d.sample.Value(i),
		turn:    d.turn.Value(i),
		correct: -1, consCorrect: -1, flagged: -1,
	}
	if ct := d.complTokens; ct != nil && ct.IsValid(i) {
		r.length, r.lengthTokens = int64(ct.Value(i)), true
	} else {
		r.length = int64(utf8.RuneCountInString(d.response.Value(i)))
	}
	r.finish = optStr(d.finish, i)
	if a := d.answer; a != nil && a.IsValid(i) {
		r.answer, r.hasAnswer = a.Value(i), true
	}
	if b := d.correct; b != nil && b.IsValid(i) {
		r.correct = b2i(b.Value(i))
		if r.correct == 1 {
			r.respHash = maphash.String(respSeed, d.response.Value(i))
		}
	}
	if e := d.errCol; e != nil && e.IsValid(i) {
		r.failed = true
	}
	r.transition = optStr(d.transition, i)
	if f := d.reward; f != nil && f.IsValid(i) {
		r.reward, r.hasReward = f.Value(i), true
	}
	r.rewardReason = optStr(d.rewardReason, i)
	if d.comp != nil && d.comp.IsValid(i) {
		s, e := d.comp.ValueOffsets(i)
		start := len(*arena)
		for j := int(s); j < int(e); j++ {
			c := auditComp{name: d.cName.Value(j), w: d.cW.Value(j)}
			if d.cValue.IsValid(j) {
				c.value, c.has = d.cValue.Value(j), true
			} else {
				c.reason = optStr(d.cReason, j)
			}
			*arena = append(*arena, c)
		}
		r.comps = (*arena)[start:len(*arena):len(*arena)]
	}
	if f := d.consRatio; f != nil && f.IsValid(i) {
		r.consRatio, r.hasConsRatio = f.Value(i), true
	}
	if b := d.consCorrect; b != nil && b.IsValid(i) {
		r.consCorrect = b2i(b.Value(i))
	}
	if b := d.flagged; b != nil && b.IsValid(i) {
		r.flagged = b2i(b.Value(i))
	}
	if f := d.adv; f != nil && f.IsValid(i) {
		r.adv, r.hasAdv = f.Value(i), true
	}
	if d.lp != nil && d.lp.IsValid(i) {
		s, e := d.lp.ValueOffsets(i)
		for j := int(s); j < int(e); j++ {
			if d.lpV.IsValid(j) && !math.IsInf(d.lpV.Value(j), 0) {
				r.nlpSum -= d.lpV.Value(j)
				r.nlpN++
			}
		}
	}
	// The judge score is the judge component when the reward has one (the
	// aggregate over judges), else the mean of the judges' scores.
	for _, c := range r.comps {
		if c.name == "judge" && c.has {
			r.judge, r.hasJudge = c.value, true
		}
	}
	if !r.hasJudge && d.js != nil && d.js.IsValid(i) {
		s, e := d.js.ValueOffsets(i)
		n := 0
		for j := int(s); j < int(e); j++ {
			if d.jsV.IsValid(j) {
				r.judge += d.jsV.Value(j)
				n++
			}
		}
		if n > 0 {
			r.judge /= float64(n)
			r.hasJudge = true
		} else {
			r.judge = 0
		}
	}
}

func b2i(b bool) int8 {
	if b {
		return 1
	}
	return 0
}
