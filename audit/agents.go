package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/redraft/redraft/export"
)

// The agents audit is a pass of its own over a few columns: the rl rows'
// response_metadata and error, and the sft rows' recipe and metadata. An rl
// row is an agent episode when its response_metadata is a JSON object whose
// "episode" is an episode summary (rollout/agent.Info: an object with "end"
// and "steps"); an sft row belongs to an agent episode when its metadata is
// such an object, and is a revision when the metadata also has "revision".
// Every other row is left alone, so a run without agent rows has no agents
// section.

// AgentReport is the audit of a run's agent episodes, overall and per
// environment.
type AgentReport struct {
	Overall AgentSlice    `json:"overall"`
	ByEnv   []*AgentSlice `json:"by_env"`
	// SFTRows counts the sft rows of agent episodes per recipe (agent-grpo,
	// agent-r-env, step-env, re-rest); empty when the run wrote none or the
	// audit was given shards rather than an output directory.
	SFTRows map[string]int64 `json:"sft_rows"`
}

// AgentSlice summarises the episodes of one environment ("all": every
// episode).
type AgentSlice struct {
	Env      string `json:"env"`
	Episodes int64  `json:"episodes"`
	// SuccessRate is Successes over Judged, the episodes whose success the
	// environment said (success not null).
	Judged      int64    `json:"judged"`
	Successes   int64    `json:"successes"`
	SuccessRate *float64 `json:"success_rate"`
	// Steps is the number of actions of every episode together.
	Steps     int64    `json:"steps"`
	StepsMean *float64 `json:"steps_mean"`
	StepsMax  int64    `json:"steps_max"`
	// The rates are over Steps.
	InvalidActions    int64    `json:"invalid_actions"`
	InvalidActionRate *float64 `json:"invalid_action_rate"`
	ToolErrors        int64    `json:"tool_errors"`
	ToolErrorRate     *float64 `json:"tool_error_rate"`
	// Ends counts the episodes by how they ended (done, max_steps,
	// env_error, policy_error, no_gold, canceled); Failed and FailedByEnd
	// the episodes that failed (the row's error set).
	Ends        map[string]int64 `json:"ends"`
	Failed      int64            `json:"failed"`
	FailedByEnd map[string]int64 `json:"failed_by_end"`
	FirstBad    FirstBadReport   `json:"first_bad"`
	// Recovery is absent when the run wrote no revision rows.
	Recovery *RecoveryReport `json:"recovery,omitempty"`
}

// FirstBadReport says where the episodes' first bad steps are.
type FirstBadReport struct {
	// Episodes have a first bad step; Fraction is over all episodes.
	Episodes int64    `json:"episodes"`
	Fraction *float64 `json:"fraction"`
	StepMean *float64 `json:"step_mean"`
	// Histogram counts the episodes per first bad step (0-based), steps
	// without one left out; BySignal per signal (invalid, reward_drop,
	// off_gold).
	Histogram []StepCount      `json:"histogram"`
	BySignal  map[string]int64 `json:"by_signal"`
}

// StepCount is one bar of the first-bad-step histogram.
type StepCount struct {
	Step  int   `json:"step"`
	Count int64 `json:"count"`
}

// RecoveryReport says how often a revision recovers a failed episode:
// Rate = Recovered / Eligible, where Recovered counts the sft revision rows
// whose branch succeeded and Eligible the rl episodes that did not succeed
// (success false or null) and have a first bad step. Several revisions of
// one episode each count, so Rate can exceed 1.
type RecoveryReport struct {
	Eligible     int64    `json:"eligible"`
	RevisionRows int64    `json:"revision_rows"`
	Recovered    int64    `json:"recovered"`
	Rate         *float64 `json:"rate"`
}

// AddAgents reads the agent episodes of the run path names (as for Path)
// into a.Agents, which stays nil when there are none. workers as in
// Options.
func (a *Report) AddAgents(ctx context.Context, path string, workers int) error {
	r, err := Agents(ctx, path, workers)
	a.Agents = r
	return err
}

// Agents audits the agent episodes of the run path names: an output
// directory (its rl shards and, for recovery, its sft shards), a directory
// of rl shards or one rl shard. It returns nil when no rl row is an agent
// episode.
func Agents(ctx context.Context, path string, workers int) (*AgentReport, error) {
	rl, sft, err := agentShards(path)
	if err != nil {
		return nil, err
	}
	acc := newAgentAcc()
	if err := scanAgentColumns(ctx, rl, []string{"response_metadata", "error"}, workers, acc, (*agentAcc).addRL); err != nil {
		return nil, err
	}
	if acc.total().episodes == 0 {
		return nil, nil
	}
	if err := scanAgentColumns(ctx, sft, []string{"recipe", "metadata"}, workers, acc, (*agentAcc).addSFT); err != nil {
		return nil, err
	}
	return acc.report(), nil
}

// agentShards lists the rl shards as Path reads them and the sft shards of
// an output directory (its manifest's, else data/sft/*.parquet).
func agentShards(path string) (rl, sft []string, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil, nil
	}
	if rl, err = RLShards(path); err != nil {
		return nil, nil, err
	}
	if len(rl) == 0 {
		rl, _ = filepath.Glob(filepath.Join(path, "*.parquet"))
		sort.Strings(rl)
		return rl, nil, nil
	}
	if m, err := export.ReadManifest(path); err == nil {
		for _, s := range m.Datasets["sft"].Shards {
			sft = append(sft, filepath.Join(path, filepath.FromSlash(s.Path)))
		}
		return rl, sft, nil
	}
	sft, err = filepath.Glob(filepath.Join(path, "data", "sft", "*.parquet"))
	sort.Strings(sft)
	return rl, sft, err
}

// episodeView is the part of an episode summary (rollout/agent.Info) the
// audit reads.
type episodeView struct {
	Env            string  `json:"env"`
	Steps          *int64  `json:"steps"`
	InvalidActions int64   `json:"invalid_actions"`
	ToolErrors     int64   `json:"tool_errors"`
	Success        *bool   `json:"success"`
	End            *string `json:"end"`
	FirstBadStep   *int    `json:"first_bad_step"`
	FirstBadSignal string  `json:"first_bad_signal"`
}

type revisionView struct {
	BranchSuccess *bool `json:"branch_success"`
}

// parseEpisode decodes an "episode" object out of a metadata column; ok is
// false for every other value.
func parseEpisode(s string) (ep episodeView, rev *revisionView, ok bool) {
	if !strings.Contains(s, `"episode"`) {
		return ep, nil, false
	}
	var m struct {
		Episode  *episodeView  `json:"episode"`
		Revision *revisionView `json:"revision"`
	}
	if json.Unmarshal([]byte(s), &m) != nil || m.Episode == nil || m.Episode.End == nil || m.Episode.Steps == nil {
		return ep, nil, false
	}
	return *m.Episode, m.Revision, true
}

// envAcc accumulates one environment's episodes.
type envAcc struct {
	episodes, judged, successes          int64
	steps, stepsMax, invalid, toolErrors int64
	ends, failedByEnd                    map[string]int64
	failed                               int64
	firstBad                             map[int]int64
	firstBadSignal                       map[string]int64
	eligible, revisions, recovered       int64
}

func newEnvAcc() *envAcc {
	return &envAcc{ends: map[string]int64{}, failedByEnd: map[string]int64{}, firstBad: map[int]int64{}, firstBadSignal: map[string]int64{}}
}

func (e *envAcc) merge(o *envAcc) {
	e.episodes += o.episodes
	e.judged += o.judged
	e.successes += o.successes
	e.steps += o.steps
	e.stepsMax = max(e.stepsMax, o.stepsMax)
	e.invalid += o.invalid
	e.toolErrors += o.toolErrors
	e.failed += o.failed
	e.eligible += o.eligible
	e.revisions += o.revisions
	e.recovered += o.recovered
	for k, v := range o.ends {
		e.ends[k] += v
	}
	for k, v := range o.failedByEnd {
		e.failedByEnd[k] += v
	}
	for k, v := range o.firstBad {
		e.firstBad[k] += v
	}
	for k, v := range o.firstBadSignal {
		e.firstBadSignal[k] += v
	}
}

// agentAcc accumulates per environment; sums only, so the merge order does
// not change the report.
type agentAcc struct {
	envs    map[string]*envAcc
	sftRows map[string]int64
}

func newAgentAcc() *agentAcc {
	return &agentAcc{envs: map[string]*envAcc{}, sftRows: map[string]int64{}}
}

func (a *agentAcc) env(name string) *envAcc {
	if name == "" {
		name = "unknown"
	}
	e := a.envs[name]
	if e == nil {
		e = newEnvAcc()
		a.envs[name] = e
	}
	return e
}

func (a *agentAcc) merge(o *agentAcc) {
	for k, v := range o.envs {
		a.env(k).merge(v)
	}
	for k, v := range o.sftRows {
		a.sftRows[k] += v
	}
}

func (a *agentAcc) total() *envAcc {
	t := newEnvAcc()
	for _, e := range a.envs {
		t.merge(e)
	}
	return t
}

// addRL adds the agent episodes of a record of rl rows.
func (a *agentAcc) addRL(rec arrow.Record) error {
	meta, errCol := recordStrings(rec, "response_metadata"), recordStrings(rec, "error")
	if meta == nil {
		return nil
	}
	for i := 0; i < int(rec.NumRows()); i++ {
		s, valid := meta(i)
		if !valid {
			continue
		}
		ep, _, ok := parseEpisode(s)
		if !ok {
			continue
		}
		e := a.env(ep.Env)
		e.episodes++
		e.steps += *ep.Steps
		e.stepsMax = max(e.stepsMax, *ep.Steps)
		e.invalid += ep.InvalidActions
		e.toolErrors += ep.ToolErrors
		e.ends[*ep.End]++
		if ep.Success != nil {
			e.judged++
			if *ep.Success {
				e.successes++
			}
		}
		if errCol != nil {
			if _, failed := errCol(i); failed {
				e.failed++
				e.failedByEnd[*ep.End]++
			}
		}
		if ep.FirstBadStep != nil && *ep.FirstBadStep >= 0 {
			e.firstBad[*ep.FirstBadStep]++
			if ep.FirstBadSignal != "" {
				e.firstBadSignal[ep.FirstBadSignal]++
			}
			if ep.Success == nil || !*ep.Success {
				e.eligible++
			}
		}
	}
	return nil
}

// addSFT adds the sft rows of agent episodes of a record.
func (a *agentAcc) addSFT(rec arrow.Record) error {
	meta, recipe := recordStrings(rec, "metadata"), recordStrings(rec, "recipe")
	if meta == nil {
		return nil
	}
	for i := 0; i < int(rec.NumRows()); i++ {
		s, valid := meta(i)
		if !valid {
			continue
		}
		ep, rev, ok := parseEpisode(s)
		if !ok {
			continue
		}
		name := ""
		if recipe != nil {
			name, _ = recipe(i)
		}
		a.sftRows[strings.Clone(name)]++
		if rev == nil {
			continue
		}
		e := a.env(ep.Env)
		e.revisions++
		if rev.BranchSuccess != nil && *rev.BranchSuccess {
			e.recovered++
		}
	}
	return nil
}

// recordStrings reads a string column of rec by name (nil when it has
// none); valid is false for a null.
func recordStrings(rec arrow.Record, name string) func(i int) (s string, valid bool) {
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return nil
	}
	switch c := rec.Column(idx[0]).(type) {
	case *array.String:
		return func(i int) (string, bool) { return c.Value(i), c.IsValid(i) }
	case *array.LargeString:
		return func(i int) (string, bool) { return c.Value(i), c.IsValid(i) }
	case *array.Binary:
		return func(i int) (string, bool) { return string(c.Value(i)), c.IsValid(i) }
	case *array.Dictionary:
		if d, ok := c.Dictionary().(*array.String); ok {
			return func(i int) (string, bool) {
				if !c.IsValid(i) {
					return "", false
				}
				return d.Value(c.GetValueIndex(i)), true
			}
		}
	}
	return nil
}

func (a *agentAcc) report() *AgentReport {
	revisions := a.total().revisions > 0
	r := &AgentReport{SFTRows: a.sftRows}
	names := make([]string, 0, len(a.envs))
	for k := range a.envs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		r.ByEnv = append(r.ByEnv, a.envs[k].slice(k, revisions))
	}
	r.Overall = *a.total().slice(DimAll, revisions)
	return r
}

func (e *envAcc) slice(name string, revisions bool) *AgentSlice {
	s := &AgentSlice{Env: name, Episodes: e.episodes, Judged: e.judged, Successes: e.successes, SuccessRate: ratio(e.successes, e.judged),
		Steps: e.steps, StepsMean: ratio(e.steps, e.episodes), StepsMax: e.stepsMax,
		InvalidActions: e.invalid, InvalidActionRate: ratio(e.invalid, e.steps), ToolErrors: e.toolErrors, ToolErrorRate: ratio(e.toolErrors, e.steps),
		Ends: e.ends, Failed: e.failed, FailedByEnd: e.failedByEnd}
	fb := &s.FirstBad
	fb.BySignal = e.firstBadSignal
	fb.Histogram = []StepCount{}
	var sum int64
	for k, n := range e.firstBad {
		fb.Episodes += n
		sum += int64(k) * n
		fb.Histogram = append(fb.Histogram, StepCount{Step: k, Count: n})
	}
	sort.Slice(fb.Histogram, func(i, j int) bool { return fb.Histogram[i].Step < fb.Histogram[j].Step })
	fb.Fraction = ratio(fb.Episodes, e.episodes)
	fb.StepMean = ratio(sum, fb.Episodes)
	if revisions {
		s.Recovery = &RecoveryReport{Eligible: e.eligible, RevisionRows: e.revisions, Recovered: e.recovered, Rate: ratio(e.recovered, e.eligible)}
	}
	return s
}

// scanAgentColumns reads the named top-level columns of every row group of
// paths with a pool of workers, each adding its row groups to an
// accumulator of its own; the accumulators are then merged into acc. Like
// Path, it fails when a row group yields other than the rows its footer
// lists.
func scanAgentColumns(ctx context.Context, paths []string, cols []string, workers int, acc *agentAcc, add func(*agentAcc, arrow.Record) error) error {
	type unit struct {
		path string
		rg   int
		rows int64
	}
	var units []unit
	for _, p := range paths {
		pf, err := file.OpenParquetFile(p, false)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for rg := 0; rg < pf.NumRowGroups(); rg++ {
			units = append(units, unit{p, rg, pf.MetaData().RowGroup(rg).NumRows()})
		}
		pf.Close()
	}
	if len(units) == 0 {
		return nil
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(units))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan unit)
	accs := make([]*agentAcc, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		accs[w] = newAgentAcc()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range next {
				if errs[w] != nil {
					continue
				}
				if err := scanAgentUnit(ctx, u.path, u.rg, u.rows, cols, func(rec arrow.Record) error { return add(accs[w], rec) }); err != nil {
					errs[w] = err
					cancel()
				}
			}
		}()
	}
feed:
	for _, u := range units {
		select {
		case next <- u:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, a := range accs {
		acc.merge(a)
	}
	return nil
}

func scanAgentUnit(ctx context.Context, path string, rg int, rows int64, cols []string, fn func(arrow.Record) error) error {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer pf.Close()
	want := map[string]bool{}
	for _, c := range cols {
		want[c] = true
	}
	var idx []int
	schema := pf.MetaData().Schema
	for c := 0; c < schema.NumColumns(); c++ {
		if want[schema.Column(c).Path()] {
			idx = append(idx, c)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 16 << 10}, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	rr, err := fr.GetRecordReader(ctx, idx, []int{rg})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer rr.Release()
	var n int64
	for rr.Next() {
		n += rr.Record().NumRows()
		if err := fn(rr.Record()); err != nil {
			return fmt.Errorf("%s row group %d: %w", path, rg, err)
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s row group %d: %w", path, rg, err)
	}
	if n != rows {
		return fmt.Errorf("%s row group %d: read %d rows, the footer lists %d: the Parquet reader stopped early", path, rg, n, rows)
	}
	return nil
}

// Order of the ends in the text report; others follow by name.
var endOrder = []string{"done", "max_steps", "env_error", "policy_error", "no_gold", "canceled"}

// writeAgents prints the agents section (nothing without agent rows).
func (a *Report) writeAgents(w io.Writer) {
	r := a.Agents
	if r == nil {
		return
	}
	all := r.Overall
	slices := append(append([]*AgentSlice{}, r.ByEnv...), &all)
	fmt.Fprintf(w, "\n%-24s %8s %8s %6s %5s %8s %8s %6s %9s %8s\n", "agents by env", "episodes", "success", "steps", "max", "invalid", "tool err", "failed", "first bad", "recovery")
	for _, s := range slices {
		recovery := "-"
		if s.Recovery != nil {
			recovery = fmtPct(s.Recovery.Rate)
		}
		fmt.Fprintf(w, "%-24s %8d %8s %6s %5d %8s %8s %6d %9s %8s\n", trunc(s.Env, 24), s.Episodes, fmtPct(s.SuccessRate), fmtF(s.StepsMean, "%.1f"), s.StepsMax,
			fmtPct(s.InvalidActionRate), fmtPct(s.ToolErrorRate), s.Failed, fmtPct(s.FirstBad.Fraction), recovery)
	}
	fmt.Fprintln(w, "(success over episodes the environment judged; steps: mean per episode; invalid actions and tool errors over steps;")
	fmt.Fprintln(w, " failed: the row's error set; first bad: episodes with a first bad step)")

	// Episodes by end: a column per end that occurs.
	var ends []string
	seen := map[string]bool{}
	for _, e := range endOrder {
		if all.Ends[e] > 0 {
			ends, seen[e] = append(ends, e), true
		}
	}
	var other []string
	for e := range all.Ends {
		if !seen[e] {
			other = append(other, e)
		}
	}
	sort.Strings(other)
	ends = append(ends, other...)
	fmt.Fprintf(w, "\n%-24s", "episodes by end")
	for _, e := range ends {
		fmt.Fprintf(w, " %*s", max(len(e), 6), e)
	}
	fmt.Fprintln(w)
	for _, s := range slices {
		fmt.Fprintf(w, "%-24s", trunc(s.Env, 24))
		for _, e := range ends {
			fmt.Fprintf(w, " %*d", max(len(e), 6), s.Ends[e])
		}
		fmt.Fprintln(w)
	}
	if all.Failed > 0 {
		fmt.Fprintf(w, "failed episodes (error set) by end:%s\n", countList(all.FailedByEnd))
	}

	fb := all.FirstBad
	fmt.Fprintf(w, "\nfirst bad step: %d of %d episodes (%s), mean step %s", fb.Episodes, all.Episodes, fmtPct(fb.Fraction), fmtF(fb.StepMean, "%.1f"))
	if len(fb.BySignal) > 0 {
		fmt.Fprintf(w, "; by signal:%s", countList(fb.BySignal))
	}
	fmt.Fprintln(w)
	bins := stepBins(fb.Histogram)
	var most int64
	for _, b := range bins {
		most = max(most, b.count)
	}
	for _, b := range bins {
		bar := strings.Repeat("█", int(math.Round(40*float64(b.count)/float64(most))))
		fmt.Fprintf(w, "%16s | %-40s %d (%.1f%%)\n", b.label, bar, b.count, 100*float64(b.count)/float64(fb.Episodes))
	}
	if rc := all.Recovery; rc != nil {
		fmt.Fprintf(w, "\nrecovery: %d revision row(s), %d whose branch succeeded, over %d unsuccessful episode(s) with a first bad step: %s\n",
			rc.RevisionRows, rc.Recovered, rc.Eligible, fmtPct(rc.Rate))
	}
	if len(r.SFTRows) > 0 {
		fmt.Fprintf(w, "sft rows of agent episodes by recipe:%s\n", countList(r.SFTRows))
	}
}

type stepBin struct {
	label string
	count int64
}

// stepBins are the text histogram's bars: one per first bad step, or ten
// ranges of steps when more than twelve steps occur.
func stepBins(h []StepCount) []stepBin {
	if len(h) <= 12 {
		out := make([]stepBin, len(h))
		for i, c := range h {
			out[i] = stepBin{fmt.Sprint(c.Step), c.Count}
		}
		return out
	}
	last := h[len(h)-1].Step
	width := (last + 10) / 10
	out := make([]stepBin, (last+width)/width)
	for i := range out {
		lo, hi := i*width, min((i+1)*width-1, last)
		out[i].label = fmt.Sprintf("%d-%d", lo, hi)
		if lo == hi {
			out[i].label = fmt.Sprint(lo)
		}
	}
	for _, c := range h {
		out[c.Step/width].count += c.Count
	}
	return out
}

// countList is " a 1, b 2" over m's keys in order.
func countList(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %s %d", k, m[k])
	}
	return b.String()
}
