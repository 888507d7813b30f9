package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rewards/judge"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/tokenizer"
)

// JobOptions are the per-invocation settings of Execute that are not part of
// a run's identity.
type JobOptions struct {
	// Overwrite removes a previous run's output first (start over).
	Overwrite bool
	// OnGroup is called after each group is written, with the number of
	// groups written since the run started (across resumes).
	OnGroup func(written int64, rows int)
	// Stop, when set, ends the run early and cleanly once stopped: no new
	// task is started, the tasks in flight are finished, the output is
	// checkpointed and Execute returns an error wrapping ErrInterrupted.
	// Cancelling ctx instead abandons the tasks in flight.
	Stop *rollout.Stopper
	// OnResume is called before generation starts when the run resumes a
	// previous one.
	OnResume func(ResumeInfo)
	// Shard selects the tasks of one shard of a sharded run (see
	// rollout.ShardOf); the zero value runs every task.
	Shard rollout.Shard
	// Progress, when set, is kept up to date as the job works: its
	// requests to the policy model, tokens, tasks and rows (see Progress).
	Progress *Progress
	// retry, set by RetryFailed, replays an earlier run's answered samples.
	retry *replay
}

// ResumeInfo describes where a resumed run starts.
type ResumeInfo struct {
	// Tasks and Groups are already written (committed or replayed from the
	// journal); Replayed of those groups came from the journal's log.
	Tasks, Groups, Replayed int64
	// Session numbers the process working on the run, from 1.
	Session int
}

// ErrAlreadyComplete is returned when the output directory already holds a
// complete run of the same configuration.
var ErrAlreadyComplete = errors.New("output already holds a complete run of this configuration")

// Execute runs cfg end to end: read, generate or replay, score, write shards
// and the manifest.
//
// Every run keeps a journal in the output directory (see journal.go): when a
// run was killed, interrupted or failed, running the same configuration on
// the same directory resumes it, writing every group exactly once; a
// different configuration is refused with the settings that changed. The
// manifest is written at every checkpoint (status running) and at the end,
// with status complete, failed or interrupted and the shards committed.
func Execute(ctx context.Context, cfg *Config, opts JobOptions) (*export.Manifest, error) {
	if cfg.Splice != nil {
		// Splices and Agent-R write sft trajectories; their jobs live in
		// pipeline/splice, which imports this package.
		return nil, errors.New("config has a splice section: run it with splice.Execute (redraft run does)")
	}
	if cfg.AgentR != nil {
		return nil, errors.New("config has an agent_r section: run it with splice.ExecuteAgentR (redraft run does)")
	}
	if cfg.Source.Kind == "trajectories" {
		return executeTrajectories(ctx, cfg, opts)
	}
	if cfg.Source.Kind == "environment" {
		// Agent episodes; their job lives in pipeline/agents, which
		// imports this package.
		return nil, errors.New("config is an environment run: run it with agents.Execute (redraft run does)")
	}
	// One tokenizer serves the rl and the sft token tracks, so that both
	// datasets are tokenized alike. It is loaded before the output
	// directory is opened, and a run that fails before it starts writing
	// removes what Open created (Harness.abandon): a typo leaves nothing.
	var track *export.TokenTrackConfig
	if o := cfg.Output; o.Tokenizer != "" {
		var err error
		if track, err = export.LoadTokenTrack(o.Tokenizer, tokenizer.Format(o.ChatFormat)); err != nil {
			return nil, fmt.Errorf("output.tokenizer: %w", err)
		}
	}
	h, err := Open(cfg, cfg.Source.Kind, opts)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	dir, j, prev, m := h.Dir, h.journal, h.prev, h.Manifest
	if cfg.Endpoint != nil && cfg.Source.Kind == "tasks" {
		m.Model, m.Endpoint = cfg.Endpoint.Model, cfg.Endpoint.RedactedURLs()
	}
	shardOpts := h.ShardOptions
	// last starts at the last checkpoint's state (nil for a new run).
	sink := &jobSink{journal: j, base: j.meta.Shards, last: j.meta.State, progress: opts.Progress,
		bound: &failureBound{max: cfg.Pipeline.FailureBound(), atEndOnly: opts.retry != nil, noRetry: retryable(cfg)}}
	if j.meta.State != nil {
		// The samples earlier sessions committed count too (those the
		// journal's log replays are counted as they are replayed).
		sum := sink.summary()
		sink.bound.rows, sink.bound.failed = sum.Rows, sum.Failed
	}
	if p := opts.Progress; p != nil {
		var rows int64
		for _, sh := range j.meta.Shards["rl"] {
			rows += sh.Rows
		}
		p.Rows.Store(rows)
		if st := j.meta.State; st != nil {
			p.Tasks.Store(st.Tasks)
			p.Groups.Store(st.Groups)
		}
		if cfg.Source.Kind == "tasks" || cfg.Source.Kind == "rollouts" {
			in := cfg.Source.InputOptions()
			in.Shard = opts.Shard
			countCtx, stopCount := context.WithCancel(ctx)
			defer stopCount()
			p.CountInput(countCtx, in)
		}
	}
	rlOpts := shardOpts("rl", export.RLSchema)
	if track != nil {
		maps.Copy(rlOpts.Metadata, track.Metadata())
	}
	if sink.rl, err = export.NewShardWriter[export.RLRow](rlOpts); err != nil {
		return nil, h.abandon(err)
	}
	if cfg.Episode.Pairs {
		if sink.pairs, err = export.NewShardWriter[export.PairRow](shardOpts("pairs", export.PairsSchema)); err != nil {
			return nil, h.abandon(err)
		}
	}
	if sink.verl, err = export.NewVerlPrompts(shardOpts(export.VerlDataset, export.VerlSchema), cfg.Reward.Grader); err != nil {
		return nil, h.abandon(err)
	}
	if cfg.Episode.SFT != "" {
		if sink.sft, err = newSFTSink(cfg, shardOpts("sft", ""), track); err != nil {
			return nil, h.abandon(err)
		}
		if j.meta.Filtered != nil {
			sink.sft.filtered = maps.Clone(j.meta.Filtered)
		}
	}
	// The datasets, in a fixed order: the same loops commit, roll back and
	// describe each.
	sink.sets = []dataset{{"rl", export.RLSchema, sink.rl}}
	if sink.pairs != nil {
		sink.sets = append(sink.sets, dataset{"pairs", export.PairsSchema, sink.pairs})
	}
	sink.sets = append(sink.sets, dataset{export.VerlDataset, export.VerlSchema, sink.verl})
	if sink.sft != nil {
		sink.sets = append(sink.sets, dataset{"sft", sink.sft.w.Schema(), sink.sft.w})
	}
	var verlRows int64
	for _, sh := range j.meta.Shards[export.VerlDataset] {
		verlRows += sh.Rows
	}
	sink.verl.StartAt(verlRows)
	if sink.failures, err = export.ResumeFailureLog(dir, j.meta.Failures.Count, j.meta.Failures.Bytes); err != nil {
		return nil, h.abandon(err)
	}
	sink.manifest = func(status string) error {
		m.Datasets = sink.datasets()
		if j.meta.State != nil {
			m.Rewards = sink.summary()
		}
		return h.WriteManifest(status)
	}

	// Replay the flushes logged since the last checkpoint, up to the last
	// one that ends a task; what follows it is redone.
	var resume *State
	if prev != nil {
		replayed, err := sink.replay()
		if err != nil {
			return nil, h.abandon(err)
		}
		resume = sink.last
		if opts.OnResume != nil {
			info := ResumeInfo{Replayed: replayed, Session: j.meta.Sessions}
			if resume != nil {
				info.Tasks, info.Groups = resume.Tasks, resume.Groups
			}
			opts.OnResume(info)
		}
	}

	gr, err := newGrading(cfg)
	if err != nil {
		return nil, h.abandon(err)
	}
	defer gr.close()
	so := &sourceOptions{Stop: opts.Stop, Shard: opts.Shard, SpillDir: journalPath(dir), Progress: opts.Progress, Replay: opts.retry}
	if resume != nil && resume.Tasks > 0 {
		so.Skip = resume
	}
	prod, closeSrc, err := buildProducer(cfg, gr, so)
	if err != nil {
		return nil, h.abandon(err)
	}
	defer closeSrc()
	scorer, closeScorer, err := newScorer(cfg, gr)
	if err != nil {
		return nil, h.abandon(err)
	}
	defer closeScorer()
	runOpts := Options{
		Workers: cfg.Pipeline.Workers, Window: cfg.Pipeline.Window,
		Advantage: cfg.Advantage, TurnsPerTask: turnsPerTask(cfg), OnGroup: opts.OnGroup,
		Resume: resume, Tokens: track,
	}
	if cfg.Endpoint != nil {
		runOpts.PolicyVersion = cfg.Endpoint.PolicyVersion
	}
	if opts.Stop != nil {
		runOpts.Stopped = opts.Stop.Stopped
	}
	_, runErr := Run(ctx, prod, scorer, sink, runOpts)
	switch {
	case sink.stopped != nil:
		// Reported as it is: no write failed (Run adds "writing group").
		runErr = sink.stopped
	case runErr == nil:
		runErr = sink.bound.check(true)
	}

	status := export.StatusComplete
	switch {
	case runErr == nil:
	case errors.Is(runErr, ErrInterrupted), errors.Is(runErr, context.Canceled):
		status, m.Error = export.StatusInterrupted, runErr.Error()
	default:
		status, m.Error = export.StatusFailed, runErr.Error()
	}
	// Commit what is written when it ends at a task boundary; otherwise,
	// or when a write failed, drop everything written since the last
	// checkpoint (the journal's log keeps those groups for the resume).
	var endErr error
	switch {
	case sink.failed != nil:
		endErr = sink.rollback()
	case sink.last == nil || sink.last.Resumable:
		if endErr = sink.checkpoint(); endErr != nil {
			endErr = errors.Join(endErr, sink.rollback())
		}
	default:
		endErr = sink.rollback()
	}
	runErr = errors.Join(runErr, endErr)
	if runErr != nil && status == export.StatusComplete {
		status, m.Error = export.StatusFailed, runErr.Error()
	}
	if so.Skipped != nil {
		list, total := so.Skipped()
		for _, r := range list {
			m.Skipped = append(m.Skipped, export.Skipped(r))
		}
		m.SkippedTotal = total
	}
	// The failures record is kept whatever the status: it lists the failed
	// samples of the committed groups.
	var closeErr error
	m.Failures, closeErr = sink.failures.Close()
	runErr = errors.Join(runErr, closeErr)
	m.Datasets = sink.datasets()
	if j.meta.State != nil {
		m.Rewards = sink.summary()
	}
	if err := h.Finish(status); err != nil {
		return m, errors.Join(runErr, err)
	}
	return m, runErr
}

// turnsPerTask is the number of groups the producer emits per task.
func turnsPerTask(cfg *Config) int {
	if cfg.SelfVerify != nil {
		return 2 // solve, verify
	}
	return max(cfg.Episode.Turns, 1)
}

// jobSink writes a run's datasets from the pipeline's flushes, logging each
// flush in the journal first and checkpointing when the rl shard is full.
//
// A checkpoint commits in two phases: every dataset's open shard is finished
// and the failures record flushed (all durable), then journal.json names
// them, and only then are the writers told to commit. Once any write, flush,
// fsync or journal write fails, the sink is failed: it writes and commits
// nothing more in this process, and the run ends by rolling every writer
// back to the last checkpoint, whose journal.json the manifest then
// describes. The journal's log still holds the flushes since that
// checkpoint, so a resume writes them again.
type jobSink struct {
	rl    *export.ShardWriter[export.RLRow]
	pairs *export.ShardWriter[export.PairRow]
	// verl receives each task's prompt once, as verl's prompt set.
	verl *export.VerlPrompts
	// failures lists the samples whose request failed for good.
	failures *export.FailureLog
	journal  *journal
	// sets are the datasets above (and sft's), in their fixed order.
	sets []dataset
	// base are the shards committed by earlier sessions of the run.
	base map[string][]export.ShardInfo
	// last is the state after the last flush written.
	last *State
	// manifest writes the manifest with a status.
	manifest func(status string) error
	// sft builds trajectories from episodes (episode.sft); nil when off.
	sft *episodeSFT
	// task is the verl prompt of the task being written.
	task export.VerlRow
	// failed is the first error of a write or a checkpoint; once set, the
	// sink refuses every write and checkpoint.
	failed error
	// progress counts tasks, groups and rl rows written (nil: not kept).
	progress *Progress
	// bound stops the run when too many samples fail; stopped is its
	// error once it has.
	bound   *failureBound
	stopped error
}

// Write logs a flush in the journal, writes its rows and checkpoints when a
// shard is full. An error makes the sink failed.
func (s *jobSink) Write(ctx context.Context, f *Flush) error {
	if s.failed != nil {
		return fmt.Errorf("the output failed earlier: %w", s.failed)
	}
	if err := s.write(ctx, f); err != nil {
		if errors.Is(err, ErrTooManyFailures) {
			// The bound stops the run, but what is written is sound and
			// is committed; any other error is the output's.
			s.stopped = err
			return err
		}
		s.failed = err
		return err
	}
	return nil
}

func (s *jobSink) write(ctx context.Context, f *Flush) error {
	// Logged first: from here on the flush survives a crash.
	if err := s.journal.append(f); err != nil {
		return err
	}
	if err := s.apply(ctx, f); err != nil {
		return err
	}
	if f.State.Resumable {
		// At a task boundary, so that what is written can be committed.
		if err := s.bound.check(false); err != nil {
			return err
		}
	}
	full := false
	for _, d := range s.sets {
		full = full || d.w.Full()
	}
	if f.State.Resumable && full {
		if err := s.checkpoint(); err != nil {
			return err
		}
		return s.manifest(export.StatusRunning)
	}
	return nil
}

// apply writes a flush's rows to every dataset.
func (s *jobSink) apply(ctx context.Context, f *Flush) error {
	for _, g := range f.Groups {
		// Every task's prompt goes to the verl prompt set, also when its
		// group was dropped for zero variance: the prompt set is the task
		// list, and verl resamples it.
		if g.Turn == 0 {
			p, err := s.verl.Write(ctx, verlTask(g))
			if err != nil {
				return err
			}
			s.task = p
		}
		// The rows carry their task's verl columns (a task's later turns
		// follow its first in the same session: resumes start at task
		// boundaries).
		for i := range g.Rows {
			g.Rows[i].SetVerl(s.task)
		}
		if len(g.Rows) > 0 {
			if err := s.writeRows(ctx, g.Rows); err != nil {
				return err
			}
		}
		// A task's trajectories are complete at its last group (its later
		// turns may have no rows when every episode ended early).
		if s.sft != nil && !g.More {
			if err := s.sft.flush(ctx); err != nil {
				return err
			}
		}
	}
	st := f.State
	s.last = &st
	if p := s.progress; p != nil {
		for _, g := range f.Groups {
			p.Rows.Add(int64(len(g.Rows)))
		}
		p.Tasks.Store(st.Tasks)
		p.Groups.Store(st.Groups)
	}
	return nil
}

// writeRows writes one group's rows to the datasets made from rows.
func (s *jobSink) writeRows(ctx context.Context, rows []export.RLRow) error {
	export.SetResponseMessages(rows)
	if err := s.rl.WriteGroup(ctx, rows); err != nil {
		return err
	}
	s.bound.add(rows)
	if err := s.failures.Add(rows); err != nil {
		return err
	}
	if s.pairs != nil {
		if p := Pairs(rows); len(p) > 0 {
			if err := s.pairs.WriteGroup(ctx, p); err != nil {
				return err
			}
		}
	}
	if s.sft != nil {
		s.sft.add(rows)
	}
	return nil
}

func verlTask(g Out) export.VerlTask {
	t := export.VerlTask{TaskID: g.Task.ID, DataSource: g.Task.DataSource}
	if g.Task.Reference != "" {
		ref := g.Task.Reference
		t.Reference = &ref
	}
	for _, m := range g.Task.Messages {
		t.Messages = append(t.Messages, export.Message{Role: m.Role, Content: m.Content})
	}
	return t
}

// newSFTSink prepares the sft dataset of episode.sft, with the token track
// when output.tokenizer is set (track is then its tokenizer).
func newSFTSink(cfg *Config, opts export.ShardOptions, track *export.TokenTrackConfig) (*episodeSFT, error) {
	w, err := export.NewSFTWriter(opts, track)
	if err != nil {
		return nil, err
	}
	return newEpisodeSFT(cfg.Episode.SFT, cfg.Episode.Turns, w), nil
}

// replay applies the journal's logged flushes after a restart and reopens
// the log after the last one replayed. It returns the groups replayed.
func (s *jobSink) replay() (int64, error) {
	path := s.journal.walPath(s.journal.meta.Segment)
	end, n, err := resumePoint(path)
	if err != nil {
		return 0, err
	}
	var groups int64
	err = replayWAL(path, n, func(f *Flush) error {
		groups += int64(len(f.Groups))
		return s.apply(context.Background(), f)
	})
	if err != nil {
		// Nothing replayed is committed: the journal and its log stay as
		// they were for the next resume.
		return 0, errors.Join(fmt.Errorf("replaying the journal: %w", err), s.rollback())
	}
	if err := s.journal.openWAL(end); err != nil {
		return 0, err
	}
	return groups, nil
}

// txWriter is a dataset writer of the run (export.ShardWriter, SFTWriter,
// VerlPrompts): Flush finishes its open shard durably, Commit makes the
// finished shards part of the run, Rollback returns to the last Commit.
type txWriter interface {
	Full() bool
	Flush() ([]export.ShardInfo, error)
	Commit() []export.ShardInfo
	Rollback() ([]export.ShardInfo, error)
}

// dataset is one dataset of the run: its name, schema and writer.
type dataset struct {
	name, schema string
	w            txWriter
}

// checkpoint commits every dataset's open shard and the failures record,
// recording them in the journal. An error makes the sink failed; what it
// finished is not committed (rollback deletes it).
func (s *jobSink) checkpoint() error {
	if s.failed != nil {
		return fmt.Errorf("the output failed earlier: %w", s.failed)
	}
	if err := s.commit(); err != nil {
		s.failed = err
		return err
	}
	return nil
}

func (s *jobSink) commit() error {
	// Phase 1: durable on disk, not yet part of the run.
	shards := map[string][]export.ShardInfo{}
	for _, nw := range s.sets {
		finished, err := nw.w.Flush()
		if err != nil {
			return err
		}
		shards[nw.name] = append(append([]export.ShardInfo{}, s.base[nw.name]...), finished...)
	}
	count, size, err := s.failures.Flush()
	if err != nil {
		return err
	}
	var filtered map[string]int64
	if s.sft != nil {
		filtered = maps.Clone(s.sft.filtered)
	}
	// Phase 2: journal.json names them.
	if err := s.journal.checkpoint(shards, func(m *journalMeta) {
		m.State, m.Failures, m.Filtered = s.last, journalFailures{Count: count, Bytes: size}, filtered
	}); err != nil {
		return err
	}
	// Phase 3: the writers agree (in memory only; this cannot fail).
	for _, nw := range s.sets {
		nw.w.Commit()
	}
	s.failures.Commit()
	return nil
}

// rollback discards everything written since the last checkpoint and clears
// the sink's failure.
func (s *jobSink) rollback() error {
	var errs []error
	for _, nw := range s.sets {
		if _, err := nw.w.Rollback(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.sft != nil {
		s.sft.filtered = maps.Clone(s.journal.meta.Filtered)
		if s.sft.filtered == nil {
			s.sft.filtered = map[string]int64{}
		}
		s.sft.reset()
	}
	s.last = s.journal.meta.State
	errs = append(errs, s.failures.Rollback())
	s.failed = nil
	return errors.Join(errs...)
}

// datasets describes the shards the journal committed, for the manifest:
// a manifest never lists a shard, or counts a row, that journal.json does
// not.
func (s *jobSink) datasets() map[string]export.DatasetInfo {
	out := map[string]export.DatasetInfo{}
	for _, nw := range s.sets {
		name := nw.name
		shards := append([]export.ShardInfo{}, s.journal.meta.Shards[name]...)
		ds := export.DatasetInfo{Schema: nw.schema, Shards: shards}
		for _, sh := range shards {
			ds.Rows += sh.Rows
			ds.Groups += sh.Groups
		}
		if name == "sft" && len(s.journal.meta.Filtered) > 0 {
			ds.Filtered = maps.Clone(s.journal.meta.Filtered)
		}
		out[name] = ds
	}
	return out
}

// summary is the reward summary of the groups the journal committed.
func (s *jobSink) summary() export.RewardSummary {
	acc := newSummary()
	if st := s.journal.meta.State; st != nil {
		acc.restore(st.Summary)
	}
	return acc.summary()
}

// buildJudges assembles the judge panel, with its cache when configured.
func buildJudges(rc RewardConfig) (rewards.Part, func(), error) {
	var cache *judge.Cache
	if rc.JudgeCache != "" {
		var err error
		if cache, err = judge.OpenCache(rc.JudgeCache); err != nil {
			return nil, nil, fmt.Errorf("reward.judge_cache: %w", err)
		}
	}
	panel := &judge.Panel{Method: rc.JudgeAggregate}
	for _, jc := range rc.Judges {
		tmpl, err := judge.BuiltinTemplate(jc.Template)
		if err != nil {
			return nil, nil, err
		}
		name := jc.Name
		if name == "" {
			name = jc.Model
		}
		panel.Judges = append(panel.Judges, &judge.Judge{
			Name: name, Model: jc.Model, Template: tmpl, Cache: cache,
			Policy: jc.Policy(),
		})
	}
	closeFn := func() {
		if cache != nil {
			cache.Close()
		}
	}
	return judge.Part{Panel: panel}, closeFn, nil
}

// openRun opens the journal of the run in dir: a new one, or the one a
// previous session of the same configuration left (prev is then its
// journal.json as found). It refuses to mix two runs in one directory.
//
// It writes and deletes only what redraft owns (see export.ForeignFiles): a
// README.md that is not redraft's dataset card, or a file under data/ not
// named as a shard, stops the run here, before anything is written, and
// --overwrite removes nothing when it finds one.
func openRun(dir string, identity json.RawMessage, hash string, started time.Time, overwrite bool, shard rollout.Shard) (j *journal, prev *journalMeta, err error) {
	if overwrite {
		if err := export.RemoveOutput(dir, journalDir); err != nil {
			return nil, nil, err
		}
	} else if err := export.CheckOwnership(dir); err != nil {
		return nil, nil, err
	}
	man, merr := export.ReadManifest(dir)
	if merr != nil && !errors.Is(merr, os.ErrNotExist) {
		return nil, nil, merr
	}
	if merr == nil && man.Status == export.StatusComplete && man.ConfigHash == hash {
		os.RemoveAll(journalPath(dir)) // left by a crash after the manifest
		return nil, nil, ErrAlreadyComplete
	}
	meta, jerr := readJournal(dir)
	switch {
	case jerr == nil && meta.ConfigHash != hash:
		return nil, nil, fmt.Errorf("output directory %s holds an unfinished run of another configuration; it cannot be resumed with this one. What changed:\n%s\nRun the original configuration to resume it, or pass --overwrite to start over", dir, describeChanges(identityDiff(meta.Identity, identity)))
	case jerr == nil && meta.Shard != shard:
		return nil, nil, fmt.Errorf("output directory %s holds an unfinished run of shard %d/%d, not %d/%d; pass --overwrite to start over", dir, meta.Shard.Index, meta.Shard.Count, shard.Index, shard.Count)
	case jerr == nil:
		if err := cleanData(dir, meta.Shards); err != nil {
			return nil, nil, err
		}
		meta.Sessions++
		j = &journal{dir: journalPath(dir), meta: *meta}
		if err := j.writeMeta(); err != nil {
			return nil, nil, err
		}
		return j, meta, nil
	case !errors.Is(jerr, os.ErrNotExist):
		return nil, nil, jerr
	}
	if merr == nil {
		return nil, nil, fmt.Errorf("output directory %s holds another run (status %s, config %.12s); pass --overwrite to replace it", dir, man.Status, man.ConfigHash)
	}
	if shards, err := export.HasShards(dir); err != nil {
		return nil, nil, err
	} else if shards {
		return nil, nil, fmt.Errorf("output directory %s already has shards but no manifest; pass --overwrite to replace them", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	j, err = createJournal(dir, identity, hash, started, shard)
	return j, nil, err
}

// sourceOptions are the per-invocation settings of a run's source.
type sourceOptions struct {
	// Stop, when set, ends the input early.
	Stop *rollout.Stopper
	// Skip, when set, is a resumed run's state, whose tasks the source
	// skips (checking their ids).
	Skip *State
	// Shard selects this process's part of a sharded run.
	Shard rollout.Shard
	// SpillDir is where the input's duplicate-id index spills to disk
	// (rollout.InputOptions.SpillDir).
	SpillDir string
	// Skipped is set to the source's record of skipped input.
	Skipped func() ([]rollout.SkippedRecord, int64)
	// Progress counts the policy's requests (nil: not counted).
	Progress *Progress
	// Replay serves an earlier run's answered samples (RetryFailed).
	Replay *replay
}

// buildProducer opens the source and the generator that cfg describes.
func buildProducer(cfg *Config, gr grading, so *sourceOptions) (rollout.Producer, func(), error) {
	if so == nil {
		so = &sourceOptions{}
	}
	in := cfg.Source.InputOptions()
	in.Shard, in.SpillDir = so.Shard, so.SpillDir
	if so.Skip != nil {
		in.SkipTasks, in.SkipHash = so.Skip.Tasks, so.Skip.TaskHash
	}
	if cfg.Source.Kind == "rollouts" {
		file, err := rollout.OpenRecorded(in)
		if err != nil {
			return nil, nil, err
		}
		so.Skipped = func() ([]rollout.SkippedRecord, int64) { return file.Skipped(), file.SkippedTotal() }
		var src rollout.GroupSource = file
		if so.Stop != nil {
			src = so.Stop.Groups(src)
		}
		return rollout.ReplayProducer{Source: src}, func() { file.Close() }, nil
	}
	file, err := rollout.OpenTasks(in)
	if err != nil {
		return nil, nil, err
	}
	so.Skipped = func() ([]rollout.SkippedRecord, int64) { return file.Skipped(), file.SkippedTotal() }
	var tasks rollout.TaskSource = file
	if so.Stop != nil {
		tasks = so.Stop.Tasks(tasks)
	}
	ep := cfg.Endpoint
	policy, closeFleet, err := ep.Dial()
	if err != nil {
		tasks.Close()
		return nil, nil, err
	}
	policy = so.Progress.Policy(policy)
	closeAll := func() { tasks.Close(); closeFleet() }
	if cr := cfg.Critique; cr != nil {
		gen := &rollout.CritiqueGenerator{
			Tasks: tasks, Policy: policy, Samples: cfg.Sampling.N, Sampling: cfg.Sampling.Sampling,
			RunSeed: cfg.Seed, MaxInFlight: cfg.Endpoint.MaxInFlight, Model: cfg.Endpoint.Model,
			Mode: cr.Mode, Verifier: gr,
		}
		if c := cr.Critic; c != nil {
			gen.Critic, gen.CriticModel = c.Policy(), c.Model
		}
		return gen, closeAll, nil
	}
	if sv := cfg.SelfVerify; sv != nil {
		return &rollout.SelfVerifyGenerator{
			Tasks: tasks, Policy: policy, Samples: cfg.Sampling.N, Sampling: cfg.Sampling.Sampling,
			RunSeed: cfg.Seed, MaxInFlight: ep.MaxInFlight, Model: ep.Model, Template: sv.Template,
		}, closeAll, nil
	}
	if episode := cfg.Episode; episode.Turns > 1 {
		var fb rollout.Feedback = rollout.FixedInstruction{Text: episode.Instruction}
		switch episode.Feedback {
		case "retry_if_wrong":
			fb = rollout.RetryIfWrong{Text: episode.Instruction}
		case "execution":
			fb = rollout.ExecutionFeedback{Text: episode.Instruction}
		}
		return &rollout.EpisodeGenerator{
			Tasks: tasks, Policy: policy, Samples: cfg.Sampling.N, Turns: episode.Turns, Sampling: cfg.Sampling.Sampling,
			RunSeed: cfg.Seed, MaxInFlight: cfg.Endpoint.MaxInFlight, Model: cfg.Endpoint.Model,
			Feedback: fb, Verifier: gr,
		}, closeAll, nil
	}
	gen := &rollout.Generator{
		Tasks: tasks, Policy: policy, Samples: cfg.Sampling.N, Sampling: cfg.Sampling.Sampling,
		RunSeed: cfg.Seed, MaxInFlight: ep.MaxInFlight, Model: ep.Model,
	}
	if so.Replay != nil {
		gen.Replay = so.Replay.lookup
	}
	return gen, closeAll, nil
}
