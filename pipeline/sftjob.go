package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout"
)

// SFTGroup is what one input (a task, a record of a file) produced: its sft
// rows, and for the solutions or records that produced none, the reason.
type SFTGroup struct {
	// Key identifies the input: the keys of the inputs done, hashed in
	// order (rollout.TaskIDHash), check that a resumed run reads the same
	// input.
	Key     string           `json:"key"`
	Rows    []export.SFTRow  `json:"rows"`
	Skipped []export.Skipped `json:"skipped,omitempty"`
	// RL is the input's rl rows (one group, written whole), for a job with
	// SFTJob.RL set.
	RL []export.RLRow `json:"rl,omitempty"`
}

// SFTResume is where a producer starts: after the first Inputs inputs of its
// part of the input, whose keys hash to Hash. The zero value starts at the
// beginning.
type SFTResume struct {
	Inputs int64
	Hash   uint64
}

// SFTJob is a job that writes one sft dataset, one group per input, in input
// order: the splicing jobs and Agent-R.
type SFTJob struct {
	// Produce calls emit once per input, in input order, from the input
	// after from's (checking the skipped inputs' keys against from.Hash). It
	// stops taking inputs once stopped reports true, finishing those in
	// flight, and then returns ErrInterrupted. It must return promptly once
	// ctx ends.
	Produce func(ctx context.Context, from SFTResume, stopped func() bool, emit func(SFTGroup) error) error
	// Track adds the token track (sft/4); nil writes sft/3.
	Track *export.TokenTrackConfig
	// RL makes the job write an rl dataset too, from each group's RL rows
	// (their token track computed by the job; shards with Track's
	// metadata when it is set). The manifest's rewards then summarise the
	// rl rows, as in a generation run.
	RL bool
	// InputSkipped, when set, lists after Produce the input records the
	// source dropped (source.on_error: skip) and counts them; a resumed
	// source reads them again, so they are not journalled.
	InputSkipped func() ([]rollout.SkippedRecord, int64)
}

// sftState is an sft job's progress, journalled at every checkpoint; a
// resumed run starts from the checkpoint's and replays the log's groups
// onto it, so its summary is the uninterrupted run's.
type sftState struct {
	Inputs int64  `json:"inputs"`
	Hash   uint64 `json:"hash"`
	// Rows, Graded, Correct, Sum and Sq summarise the rewards written.
	Rows    int64   `json:"rows"`
	Graded  int64   `json:"graded"`
	Correct int64   `json:"correct"`
	Sum     float64 `json:"sum"`
	Sq      float64 `json:"sq"`
	// Finishes counts the rows by their continuation's finish reason.
	Finishes map[string]int64 `json:"finishes,omitempty"`
	// Skipped lists the first rollout.MaxSkippedRecords inputs without a
	// row; SkippedTotal counts them all.
	Skipped      []export.Skipped `json:"skipped,omitempty"`
	SkippedTotal int64            `json:"skipped_total"`
	// RL summarises the rl rows written (SFTJob.RL).
	RL *rlSummary `json:"rl,omitempty"`
}

// rlSummary counts the rl rows of an sft job: rows, groups, the rows with a
// reward (N, Sum and Sq of their rewards) and the groups whose rewards are
// all equal.
type rlSummary struct {
	Rows     int64            `json:"rows"`
	Groups   int64            `json:"groups"`
	N        int64            `json:"n"`
	Sum      float64          `json:"sum"`
	Sq       float64          `json:"sq"`
	ZeroStd  int64            `json:"zero_std"`
	Finishes map[string]int64 `json:"finishes,omitempty"`
	// Failed counts the rows with an error, Graded those with correct
	// set.
	Failed int64 `json:"failed,omitempty"`
	Graded int64 `json:"graded,omitempty"`
}

func (s *sftState) clone() *sftState {
	c := *s
	c.Finishes = maps.Clone(s.Finishes)
	c.Skipped = slices.Clone(s.Skipped)
	if s.RL != nil {
		r := *s.RL
		r.Finishes = maps.Clone(s.RL.Finishes)
		c.RL = &r
	}
	return &c
}

// applyRL counts one group's rl rows.
func (s *sftState) applyRL(rows []export.RLRow) {
	if s.RL == nil {
		s.RL = &rlSummary{}
	}
	r := s.RL
	if len(rows) == 0 {
		return
	}
	r.Groups++
	var first *float64
	equal, n := true, 0
	for _, row := range rows {
		r.Rows++
		if row.Error != nil {
			r.Failed++
		}
		if row.Correct != nil {
			r.Graded++
		}
		if row.FinishReason != nil {
			if r.Finishes == nil {
				r.Finishes = map[string]int64{}
			}
			r.Finishes[*row.FinishReason]++
		}
		if row.Reward == nil {
			continue
		}
		v := *row.Reward
		r.N++
		r.Sum += v
		r.Sq += v * v
		if first == nil {
			first = row.Reward
		} else if v != *first {
			equal = false
		}
		n++
	}
	if n < 2 || equal {
		// As rewards.GroupStats.ZeroVariance: no learning signal.
		r.ZeroStd++
	}
}

// summary is the rewards block of an rl dataset's rows.
func (r *rlSummary) summary() export.RewardSummary {
	out := export.RewardSummary{Rows: r.Rows, Groups: r.Groups, NullRewards: r.Rows - r.N, Failed: r.Failed, Graded: r.Graded, FinishReason: maps.Clone(r.Finishes)}
	if r.N > 0 {
		n := float64(r.N)
		mean := r.Sum / n
		out.Mean = &mean
		if r.N > 1 {
			sd := math.Sqrt(max(0, (r.Sq-n*mean*mean)/(n-1)))
			out.Std = &sd
		}
	}
	if r.Groups > 0 {
		f := float64(r.ZeroStd) / float64(r.Groups)
		out.FracZeroStd = &f
	}
	if out.FinishReason == nil {
		out.FinishReason = map[string]int64{}
	}
	return out
}

// apply counts one input's group.
func (s *sftState) apply(g *SFTGroup) {
	s.Inputs++
	s.Hash = rollout.TaskIDHash(s.Hash, g.Key)
	for _, row := range g.Rows {
		s.Rows++
		if r := row.Reward; r != nil {
			s.Graded++
			s.Sum += *r
			s.Sq += *r * *r
			if *r == 1 {
				s.Correct++
			}
		}
		var meta struct {
			Continuation *struct {
				FinishReason string `json:"finish_reason"`
			} `json:"continuation"`
		}
		if row.Metadata != nil && json.Unmarshal([]byte(*row.Metadata), &meta) == nil && meta.Continuation != nil {
			if s.Finishes == nil {
				s.Finishes = map[string]int64{}
			}
			s.Finishes[meta.Continuation.FinishReason]++
		}
	}
	for _, sk := range g.Skipped {
		s.SkippedTotal++
		if len(s.Skipped) < rollout.MaxSkippedRecords {
			s.Skipped = append(s.Skipped, sk)
		}
	}
}

func (s *sftState) summary(groups int64) export.RewardSummary {
	out := export.RewardSummary{Rows: s.Rows, Graded: s.Graded, Groups: groups, NullRewards: s.Rows - s.Graded, FinishReason: maps.Clone(s.Finishes)}
	if s.Graded > 0 {
		n := float64(s.Graded)
		mean, acc := s.Sum/n, float64(s.Correct)/n
		out.Mean, out.Accuracy = &mean, &acc
		if s.Graded > 1 {
			sd := math.Sqrt(max(0, (s.Sq-n*mean*mean)/(n-1)))
			out.Std = &sd
		}
	}
	if out.FinishReason == nil {
		out.FinishReason = map[string]int64{}
	}
	return out
}

// RunSFT runs job in h's directory and finishes it. Like Execute it is
// journalled: each input's group is logged before it is written, a
// checkpoint commits the open shard when it is full, and a killed or
// interrupted run resumes where it stopped, writing every input's rows
// exactly once. The manifest describes what the last checkpoint committed.
func RunSFT(ctx context.Context, h *Harness, job SFTJob, opts JobOptions) (*export.Manifest, error) {
	defer h.Close()
	j := h.journal
	w, err := export.NewSFTWriter(h.ShardOptions("sft", ""), job.Track)
	if err != nil {
		return nil, err
	}
	// The rl dataset of a job that writes one, beside the sft dataset.
	var rlw *export.ShardWriter[export.RLRow]
	if job.RL {
		o := h.ShardOptions("rl", export.RLSchema)
		if job.Track != nil {
			maps.Copy(o.Metadata, job.Track.Metadata())
		}
		if rlw, err = export.NewShardWriter[export.RLRow](o); err != nil {
			return nil, err
		}
	}
	// The failures record lists the rl rows that carry an error (an
	// episode the environment or the endpoint ended), as a generation
	// run's does.
	var failures *export.FailureLog
	if job.RL {
		if failures, err = export.ResumeFailureLog(h.Dir, j.meta.Failures.Count, j.meta.Failures.Bytes); err != nil {
			return nil, err
		}
	}
	committed := &sftState{}
	if j.meta.SFT != nil {
		committed = j.meta.SFT.clone()
	}
	st := committed.clone()
	// base is what earlier sessions committed; the writer's Flush returns
	// every shard this session finished.
	base, rlBase := slices.Clone(j.meta.Shards["sft"]), slices.Clone(j.meta.Shards["rl"])
	checkpoint := func() error {
		finished, err := w.Flush()
		if err != nil {
			return err
		}
		shards := map[string][]export.ShardInfo{"sft": append(slices.Clone(base), finished...)}
		if rlw != nil {
			rlFinished, err := rlw.Flush()
			if err != nil {
				return err
			}
			shards["rl"] = append(slices.Clone(rlBase), rlFinished...)
		}
		var fails journalFailures
		if failures != nil {
			if fails.Count, fails.Bytes, err = failures.Flush(); err != nil {
				return err
			}
		}
		next := st.clone()
		if err := j.checkpoint(shards, func(m *journalMeta) { m.SFT, m.Failures = next, fails }); err != nil {
			return err
		}
		w.Commit()
		if rlw != nil {
			rlw.Commit()
		}
		if failures != nil {
			failures.Commit()
		}
		committed = next
		return nil
	}
	full := func() bool { return w.Full() || (rlw != nil && rlw.Full()) }
	writeErr := func() error {
		if err := w.Err(); err != nil || rlw == nil {
			return err
		}
		return rlw.Err()
	}
	rollback := func() error {
		_, err := w.Rollback()
		if rlw != nil {
			_, rerr := rlw.Rollback()
			err = errors.Join(err, rerr)
		}
		if failures != nil {
			err = errors.Join(err, failures.Rollback())
		}
		return err
	}
	manifest := func(status string) error {
		ds := export.DatasetInfo{Schema: w.Schema(), Shards: slices.Clone(j.meta.Shards["sft"])}
		if ds.Shards == nil {
			ds.Shards = []export.ShardInfo{}
		}
		for _, s := range ds.Shards {
			ds.Rows += s.Rows
			ds.Groups += s.Groups
		}
		h.Manifest.Datasets = map[string]export.DatasetInfo{"sft": ds}
		h.Manifest.Rewards = committed.summary(ds.Groups)
		if rlw != nil {
			rl := export.DatasetInfo{Schema: export.RLSchema, Shards: slices.Clone(j.meta.Shards["rl"])}
			if rl.Shards == nil {
				rl.Shards = []export.ShardInfo{}
			}
			for _, s := range rl.Shards {
				rl.Rows += s.Rows
				rl.Groups += s.Groups
			}
			h.Manifest.Datasets["rl"] = rl
			sum := &rlSummary{}
			if committed.RL != nil {
				sum = committed.RL
			}
			h.Manifest.Rewards = sum.summary()
		}
		h.Manifest.Skipped, h.Manifest.SkippedTotal = slices.Clone(committed.Skipped), committed.SkippedTotal
		return h.WriteManifest(status)
	}
	var written int64
	for _, s := range j.meta.Shards["sft"] {
		written += s.Groups
	}
	prog := opts.Progress
	if prog != nil {
		prog.Tasks.Store(st.Inputs)
		prog.Groups.Store(written)
		prog.Rows.Store(st.Rows)
	}
	apply := func(ctx context.Context, g *SFTGroup) error {
		if rlw != nil && len(g.RL) > 0 {
			export.SetResponseMessages(g.RL)
			if err := rlw.WriteGroup(ctx, g.RL); err != nil {
				return err
			}
			if err := failures.Add(g.RL); err != nil {
				return err
			}
		}
		if job.RL {
			st.applyRL(g.RL)
		}
		if len(g.Rows) > 0 {
			if err := w.WriteGroup(ctx, g.Rows); err != nil {
				return err
			}
			written++
			if opts.OnGroup != nil {
				opts.OnGroup(written, len(g.Rows))
			}
		}
		st.apply(g)
		if prog != nil {
			prog.Tasks.Store(st.Inputs)
			prog.Groups.Store(written)
			prog.Rows.Store(st.Rows)
		}
		return nil
	}

	if h.Resumed() {
		// Replay the groups logged since the last checkpoint; the
		// producer starts after them.
		path := j.walPath(j.meta.Segment)
		var replayed int64
		end, err := scanWAL(path, func(g *SFTGroup, _ int64) error {
			replayed++
			return apply(context.Background(), g)
		})
		if err == nil {
			err = j.openWAL(end)
		}
		if err == nil && full() {
			err = checkpoint()
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("replaying the journal: %w", err), rollback())
		}
		if opts.OnResume != nil {
			opts.OnResume(ResumeInfo{Tasks: st.Inputs, Groups: written, Replayed: replayed, Session: j.meta.Sessions})
		}
	}

	stopped := func() bool {
		if opts.Stop == nil {
			return false
		}
		select {
		case <-opts.Stop.Done():
			return true
		default:
			return false
		}
	}
	runErr := job.Produce(ctx, SFTResume{Inputs: st.Inputs, Hash: st.Hash}, stopped, func(g SFTGroup) error {
		// Logged first: from here on the group survives a crash.
		if err := j.appendJSON(&g); err != nil {
			return err
		}
		if err := apply(ctx, &g); err != nil {
			return err
		}
		if full() {
			if err := checkpoint(); err != nil {
				return err
			}
			return manifest(export.StatusRunning)
		}
		return nil
	})
	if runErr != nil && !h.Resumed() && st.Inputs == 0 && !errors.Is(runErr, ErrInterrupted) && !errors.Is(runErr, context.Canceled) {
		// It never started (an input file that does not exist): nothing is
		// left to resume.
		return nil, errors.Join(h.abandon(runErr), rollback())
	}
	status := export.StatusComplete
	switch {
	case runErr == nil:
	case errors.Is(runErr, ErrInterrupted), errors.Is(runErr, context.Canceled):
		status, h.Manifest.Error = export.StatusInterrupted, runErr.Error()
	default:
		status, h.Manifest.Error = export.StatusFailed, runErr.Error()
	}
	// Commit what is written, unless a write failed: then everything since
	// the last checkpoint is dropped (the journal's log keeps it for the
	// resume).
	failed := writeErr()
	if failed == nil {
		failed = checkpoint()
	}
	if failed != nil {
		runErr = errors.Join(runErr, failed, rollback())
		if status == export.StatusComplete {
			status, h.Manifest.Error = export.StatusFailed, runErr.Error()
		}
	}
	if failures != nil {
		// Kept whatever the status: it lists the failed rows of the
		// committed groups.
		var closeErr error
		h.Manifest.Failures, closeErr = failures.Close()
		runErr = errors.Join(runErr, closeErr)
	}
	if err := manifest(status); err != nil {
		return h.Manifest, errors.Join(runErr, err)
	}
	// Input records the source dropped, after the inputs without a row.
	if job.InputSkipped != nil && status == export.StatusComplete {
		list, total := job.InputSkipped()
		for _, r := range list {
			if len(h.Manifest.Skipped) == rollout.MaxSkippedRecords {
				break
			}
			h.Manifest.Skipped = append(h.Manifest.Skipped, export.Skipped(r))
		}
		h.Manifest.SkippedTotal += total
	}
	if err := h.Finish(status); err != nil {
		return h.Manifest, errors.Join(runErr, err)
	}
	return h.Manifest, runErr
}
