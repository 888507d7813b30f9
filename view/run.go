package view

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/tokenizer"
)

// Run is an output directory opened for viewing. Opening reads the manifest
// and the shards' footers only; rows are read when a page shows them, and
// the filter index of each dataset is built in the background (Index).
type Run struct {
	Dir      string
	Name     string           // as the pages show it
	Manifest *export.Manifest // nil when the directory has none (a run still writing its first checkpoint)
	Datasets []*Dataset

	opts Options

	tokMu sync.Mutex
	toks  map[string]*tokenizer.Tokenizer // by path; nil entry: could not load
	tokEr map[string]string
}

// Options configures Open.
type Options struct {
	// Tokenizer is a tokenizer.json that decodes token ids in the token
	// view; empty: the one a shard's metadata names (redraft.tokenizer),
	// used when its sha256 matches.
	Tokenizer string
	// NoIndex leaves the filter indexes unbuilt until a query needs one
	// (the default builds them in the background from Open).
	NoIndex bool
	// Name is what the pages call the run (default: the path opened).
	Name string
	// IndexWorkers bounds the goroutines that build an index (default 1:
	// the machine's other cores stay free for the pages).
	IndexWorkers int
}

// Dataset is one dataset of a run (rl, sft, pairs, verl): its shards with
// their row groups, located by global row number (shards in manifest order,
// rows in file order).
type Dataset struct {
	Name   string
	Schema string
	Rows   int64
	Shards []*Shard
	// Columns are the top-level columns every shard has.
	Columns map[string]bool
	// Meta is the first shard's key/value metadata.
	Meta map[string]string

	run *Run
	idx indexState
	// The last few query results, for paging.
	cacheMu sync.Mutex
	cache   map[string]*Result
}

// Shard is one Parquet file of a dataset.
type Shard struct {
	Path  string // absolute, or relative to the working directory
	Rel   string // as the manifest lists it
	First int64  // global row number of its first row
	Rows  int64
	// RowGroups[i] is the number of rows of row group i; rgFirst[i] the
	// global row number of its first row.
	RowGroups []int64
	rgFirst   []int64
}

// datasetOrder puts the datasets people read first first.
var datasetOrder = map[string]int{"rl": 0, "sft": 1, "pairs": 2, "verl": 3}

// Open reads dir's manifest (or, without one, the shards under data/*/) and
// every shard's footer. It reads no rows. PATH may also be one .parquet
// file, a dataset of its own.
func Open(ctx context.Context, dir string, opts Options) (*Run, error) {
	if opts.IndexWorkers <= 0 {
		opts.IndexWorkers = 1
	}
	r := &Run{Dir: dir, Name: opts.Name, opts: opts, toks: map[string]*tokenizer.Tokenizer{}, tokEr: map[string]string{}}
	if r.Name == "" {
		r.Name = dir
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	lists := map[string][]string{} // dataset -> shard paths relative to dir
	switch {
	case !st.IsDir():
		r.Dir = filepath.Dir(dir)
		lists[""] = []string{filepath.Base(dir)}
	default:
		m, err := export.ReadManifest(dir)
		switch {
		case err == nil:
			r.Manifest = m
			for name, ds := range m.Datasets {
				for _, s := range ds.Shards {
					lists[name] = append(lists[name], s.Path)
				}
			}
		case errors.Is(err, os.ErrNotExist):
			paths, _ := filepath.Glob(filepath.Join(dir, "data", "*", "*.parquet"))
			sort.Strings(paths)
			for _, p := range paths {
				rel, _ := filepath.Rel(dir, p)
				rel = filepath.ToSlash(rel)
				name := strings.Split(rel, "/")[1]
				lists[name] = append(lists[name], rel)
			}
		default:
			return nil, err
		}
	}
	names := make([]string, 0, len(lists))
	for n := range lists {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		oi, ok := datasetOrder[names[i]]
		if !ok {
			oi = len(datasetOrder)
		}
		oj, ok := datasetOrder[names[j]]
		if !ok {
			oj = len(datasetOrder)
		}
		if oi != oj {
			return oi < oj
		}
		return names[i] < names[j]
	})
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d, err := r.openDataset(name, lists[name])
		if err != nil {
			return nil, err
		}
		if len(d.Shards) > 0 {
			r.Datasets = append(r.Datasets, d)
		}
	}
	if len(r.Datasets) == 0 {
		return nil, fmt.Errorf("%s: no shards (no manifest.json listing any, no data/*/*.parquet)", dir)
	}
	if !opts.NoIndex {
		go func() {
			for _, d := range r.Datasets {
				d.index(context.Background())
			}
		}()
	}
	return r, nil
}

func (r *Run) openDataset(name string, rels []string) (*Dataset, error) {
	d := &Dataset{Name: name, run: r}
	d.idx.done = make(chan struct{})
	for i, rel := range rels {
		path := filepath.Join(r.Dir, filepath.FromSlash(rel))
		pf, err := file.OpenParquetFile(path, false)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		md := pf.MetaData()
		kv := map[string]string{}
		for _, k := range md.KeyValueMetadata().Keys() {
			if v := md.KeyValueMetadata().FindValue(k); v != nil {
				kv[k] = *v
			}
		}
		cols := map[string]bool{}
		for f := 0; f < md.Schema.Root().NumFields(); f++ {
			cols[md.Schema.Root().Field(f).Name()] = true
		}
		s := &Shard{Path: path, Rel: rel, First: d.Rows}
		for rg := 0; rg < pf.NumRowGroups(); rg++ {
			n := md.RowGroup(rg).NumRows()
			s.rgFirst = append(s.rgFirst, d.Rows+s.Rows)
			s.RowGroups = append(s.RowGroups, n)
			s.Rows += n
		}
		pf.Close()
		if i == 0 {
			d.Meta, d.Columns, d.Schema = kv, cols, kv["redraft.schema"]
			if d.Name == "" {
				d.Name = kv["redraft.dataset"]
				if d.Name == "" {
					d.Name = strings.TrimSuffix(filepath.Base(path), ".parquet")
				}
			}
		} else {
			for c := range d.Columns {
				if !cols[c] {
					delete(d.Columns, c)
				}
			}
		}
		d.Rows += s.Rows
		d.Shards = append(d.Shards, s)
	}
	return d, nil
}

// Dataset returns the named dataset, or nil.
func (r *Run) Dataset(name string) *Dataset {
	for _, d := range r.Datasets {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// locate finds the shard, row group and offset in the row group of a
// global row number.
func (d *Dataset) locate(row int64) (s *Shard, rg int, off int64, ok bool) {
	if row < 0 || row >= d.Rows {
		return nil, 0, 0, false
	}
	i := sort.Search(len(d.Shards), func(i int) bool { return d.Shards[i].First+d.Shards[i].Rows > row })
	s = d.Shards[i]
	rg = sort.Search(len(s.rgFirst), func(j int) bool { return s.rgFirst[j]+s.RowGroups[j] > row })
	return s, rg, row - s.rgFirst[rg], true
}

// leafIndexes are the Parquet leaf columns under the given top-level
// columns.
func leafIndexes(pf *file.Reader, cols map[string]bool) []int {
	var idx []int
	sc := pf.MetaData().Schema
	for c := 0; c < sc.NumColumns(); c++ {
		top, _, _ := strings.Cut(sc.Column(c).Path(), ".")
		if cols[top] {
			idx = append(idx, c)
		}
	}
	return idx
}

// scanRowGroups reads the given top-level columns of row groups rgs of one
// shard in batches of batch rows and calls fn with each batch and the
// global row number of its first row. fn returns false to stop. Reading
// fewer rows than the footer lists is an error (Arrow Go can end a column
// chunk early without one; see export.ScanRows).
func (s *Shard) scan(ctx context.Context, rgs []int, cols map[string]bool, batch int64, fn func(rec arrow.Record, first int64) bool) error {
	pf, err := file.OpenParquetFile(s.Path, false)
	if err != nil {
		return fmt.Errorf("%s: %w", s.Path, err)
	}
	defer pf.Close()
	idx := leafIndexes(pf, cols)
	if len(idx) == 0 {
		return fmt.Errorf("%s: none of the columns %v", s.Path, keys(cols))
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: batch}, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("%s: %w", s.Path, err)
	}
	// Consecutive row groups are read by one reader; rows are numbered
	// from the first one's start.
	for len(rgs) > 0 {
		n := 1
		for n < len(rgs) && rgs[n] == rgs[n-1]+1 {
			n++
		}
		run := rgs[:n]
		rgs = rgs[n:]
		rowGroupsRead.Add(int64(len(run)))
		var want int64
		for _, rg := range run {
			want += s.RowGroups[rg]
		}
		rr, err := fr.GetRecordReader(ctx, idx, run)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Path, err)
		}
		first := s.rgFirst[run[0]]
		var got int64
		stopped := false
		for rr.Next() {
			rec := rr.Record()
			if !fn(rec, first+got) {
				stopped = true
				break
			}
			got += rec.NumRows()
		}
		err = rr.Err()
		rr.Release()
		if stopped {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s row groups %v: %w", s.Path, run, err)
		}
		if got != want {
			return fmt.Errorf("%s row groups %v: read %d rows, the footer lists %d: the Parquet reader stopped early", s.Path, run, got, want)
		}
	}
	return nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// rowGroupsRead counts the row groups scans have started to read, for the
// tests that check the reading is lazy.
var rowGroupsRead atomic.Int64

// pageBatch is the batch size of page reads: the rows before the wanted
// ones in their row group are decoded a batch at a time and dropped.
const pageBatch = 256

// readJSON reads the given rows (global numbers) with the given top-level
// columns (nil: every column) and returns each row as the JSON object of
// its column values, keyed by row number. Only the row groups that hold the
// rows are read, and of those only up to the last wanted row.
func (d *Dataset) readJSON(ctx context.Context, rows []int64, cols []string) (map[int64][]byte, error) {
	want := map[string]bool{}
	for _, c := range cols {
		if d.Columns[c] {
			want[c] = true
		}
	}
	if cols == nil {
		want = d.Columns
	}
	type unit struct {
		s  *Shard
		rg int
	}
	byUnit := map[unit][]int64{}
	var units []unit
	for _, row := range rows {
		s, rg, _, ok := d.locate(row)
		if !ok {
			return nil, fmt.Errorf("%s: no row %d (the dataset has %d)", d.Name, row, d.Rows)
		}
		u := unit{s, rg}
		if _, ok := byUnit[u]; !ok {
			units = append(units, u)
		}
		byUnit[u] = append(byUnit[u], row)
	}
	out := map[int64][]byte{}
	for _, u := range units {
		need := byUnit[u]
		sort.Slice(need, func(i, j int) bool { return need[i] < need[j] })
		last := need[len(need)-1]
		var err error
		scanErr := u.s.scan(ctx, []int{u.rg}, want, pageBatch, func(rec arrow.Record, first int64) bool {
			end := first + rec.NumRows()
			for _, row := range need {
				if row < first || row >= end {
					continue
				}
				sl := rec.NewSlice(row-first, row-first+1)
				var b strings.Builder
				err = array.RecordToJSON(sl, &b)
				sl.Release()
				if err != nil {
					return false
				}
				out[row] = []byte(strings.TrimSpace(b.String()))
			}
			return end <= last
		})
		if err == nil {
			err = scanErr
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readRows reads rows into T (whose JSON names are column names).
func readRows[T any](ctx context.Context, d *Dataset, rows []int64, cols []string) (map[int64]*T, error) {
	js, err := d.readJSON(ctx, rows, cols)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]*T, len(js))
	for row, b := range js {
		v := new(T)
		if err := json.Unmarshal(b, v); err != nil {
			return nil, fmt.Errorf("%s row %d: %w", d.Name, row, err)
		}
		out[row] = v
	}
	return out, nil
}

// tokenizerFor loads the tokenizer that decodes this dataset's token ids:
// Options.Tokenizer, else the file the shards' metadata names when it
// exists and its sha256 is the one recorded. It returns nil and why not
// when there is none.
func (d *Dataset) tokenizerFor() (*tokenizer.Tokenizer, string) {
	path, sha := d.run.opts.Tokenizer, ""
	if path == "" {
		path, sha = d.Meta["redraft.tokenizer"], d.Meta["redraft.tokenizer_sha256"]
		if path == "" {
			return nil, "the shards name no tokenizer (redraft view --tokenizer FILE decodes the ids)"
		}
	}
	r := d.run
	r.tokMu.Lock()
	defer r.tokMu.Unlock()
	if t, ok := r.toks[path]; ok {
		return t, r.tokEr[path]
	}
	cfg, err := export.LoadTokenTrack(path, "")
	switch {
	case err != nil:
		r.toks[path], r.tokEr[path] = nil, fmt.Sprintf("tokenizer %s: %v (redraft view --tokenizer FILE decodes the ids)", path, err)
	case sha != "" && cfg.SHA256 != sha:
		r.toks[path], r.tokEr[path] = nil, fmt.Sprintf("tokenizer %s has sha256 %.12s, the shards were made with %.12s (redraft view --tokenizer FILE)", path, cfg.SHA256, sha)
	default:
		r.toks[path] = cfg.Tok
	}
	return r.toks[path], r.tokEr[path]
}
