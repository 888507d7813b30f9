// Package pipeline joins redraft's stages: a Producer of groups, a pool of
// scoring workers, group advantages, and a Sink of rows.
//
// Stages are connected by bounded channels, and a window bounds the groups in
// flight from the moment a group is started until it is written, so memory is
// proportional to the window, never to the dataset. Groups are written whole
// and in input order, so the output does not depend on the number of workers
// or on the order in which requests complete.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rollout"
)

// Sink receives the pipeline's output one flush at a time, in input order.
// A flush is one group, or the groups that must be written together (a
// whitening batch, a task's turns under trajectory-level advantages). Write
// is called with a context that is not cancelled, so a flush is written whole
// or not at all; a Sink that must stop early returns an error.
type Sink interface {
	Write(ctx context.Context, f *Flush) error
}

// Flush is what Run hands a Sink: the groups written together and the run's
// state once they are.
type Flush struct {
	Groups []Out
	State  State
}

// Out is one group's output.
type Out struct {
	Task rollout.Task
	Turn int
	// More is the group's More: further groups of the task follow.
	More bool
	// Rows are the group's rl rows; empty when the group was dropped or has
	// no samples.
	Rows []export.RLRow
	// Dropped is true when drop_zero_variance removed the group.
	Dropped bool
}

// State is a run's progress after a flush: enough to resume it. Counters
// count from the start of the run, across resumes.
type State struct {
	// Groups is the number of groups flushed.
	Groups int64 `json:"groups"`
	// Tasks is the number of tasks whose last group is flushed, and TaskHash
	// the rollout.TaskIDHash of their ids in order: a resumed source skips
	// that many tasks and checks the hash.
	Tasks    int64  `json:"tasks"`
	TaskHash uint64 `json:"task_hash"`
	// Batches is the number of whitening batches flushed.
	Batches int64 `json:"batches"`
	// Summary is the reward summary of what has been flushed.
	Summary SummaryState `json:"summary"`
	// Resumable is true when the flush ends a task, so that a run resumed
	// from this state redoes no part of a task twice.
	Resumable bool `json:"resumable"`
}

// Options configures Run.
type Options struct {
	// Workers is the size of the scoring pool (0: GOMAXPROCS).
	Workers int
	// Window is the number of groups in flight (0: 64 per worker).
	Window    int
	Advantage rewards.AdvantageConfig
	// TurnsPerTask is the number of groups a producer emits per task (1, or
	// the episode's turns), so the window can hold a whole task.
	TurnsPerTask int
	// OnGroup, when set, is called after each group is written, from the
	// writing goroutine, with the number of groups written since the run
	// started (Resume's included).
	OnGroup func(written int64, rows int)
	// Resume, when set, is the state a resumed run starts from; the producer
	// must already skip the tasks it counts.
	Resume *State
	// Stopped, when set, reports whether the producer's input ended because
	// the run was asked to stop rather than at its end. Run then leaves out
	// a final incomplete whitening batch (it is redone on resume) and
	// returns ErrInterrupted.
	Stopped func() bool
	// Tokens, when set, gives every rl row its token track (rl/3's
	// prompt_ids, response_ids, ...). It is computed by the scoring workers:
	// tokenizing is CPU work that would serialise in the writer.
	Tokens *export.TokenTrackConfig
	// PolicyVersion is written into the policy_version column of every
	// generated row (endpoint.policy_version); "" leaves it null.
	PolicyVersion string
}

// ErrInterrupted is returned by Run when the producer stopped taking tasks
// because the run was asked to stop.
var ErrInterrupted = errors.New("interrupted")

// Scored is a group with its scores and advantages.
type Scored struct {
	Group      *rollout.Group
	Scores     []rewards.Score
	Advantages []*float64
	Stats      rewards.GroupStats
	// Batch is the whitening applied to the group's batch, for estimators
	// that whiten over a batch; nil otherwise.
	Batch *rewards.BatchStats
	// Tokens is each sample's token track; nil when no tokenizer is
	// configured and the server reported no token ids.
	Tokens []export.RLTokens
	// PolicyVersion is Options.PolicyVersion.
	PolicyVersion string
}

// Run drives prod through scorer into sink until the input ends, an error
// occurs, or ctx is done. It returns the summary of what was written; on
// error, the summary covers the groups written before it.
func Run(ctx context.Context, prod rollout.Producer, scorer rewards.Scorer, sink Sink, opts Options) (export.RewardSummary, error) {
	if err := opts.Advantage.Validate(); err != nil {
		return export.RewardSummary{}, err
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	window := opts.Window
	if window <= 0 {
		window = 64 * workers
	}
	if opts.Advantage.BatchLevel() {
		// A batch is held until complete, so the window must fit it and
		// still keep every worker busy.
		window = max(window, opts.Advantage.BatchGroups+2*workers)
	}
	if opts.Advantage.GroupBy == rewards.GroupByTrajectory {
		// A task's turn groups are held until the task is complete.
		window += opts.TurnsPerTask
	}
	win := rollout.NewWindow(window)
	groups := make(chan *rollout.Group, workers)
	scored := make(chan *Scored, workers)
	acc := newSummary()

	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		defer close(groups)
		if err := prod.Produce(ctx, win, groups); err != nil {
			return fmt.Errorf("reading input: %w", err)
		}
		return nil
	})
	var working sync.WaitGroup
	for range workers {
		working.Add(1)
		eg.Go(func() error {
			defer working.Done()
			for g := range groups {
				s, err := score(ctx, scorer, opts.Advantage, g)
				if err != nil {
					return err
				}
				if s.Tokens, err = tokenize(opts.Tokens, g); err != nil {
					return err
				}
				s.PolicyVersion = opts.PolicyVersion
				select {
				case scored <- s:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
	}
	eg.Go(func() error {
		working.Wait()
		close(scored)
		return nil
	})
	eg.Go(func() error {
		// Reorder by Seq: at most `window` groups can be pending here. Groups
		// go out in flushes: one group at a time, or BatchGroups groups for
		// an estimator that whitens over a batch.
		pending := map[int64]*Scored{}
		var next int64
		var batch, task []*Scored
		st := State{}
		if opts.Resume != nil {
			st = *opts.Resume
			acc.restore(st.Summary)
		}
		// Writes are not cancelled midway: a flush is written whole.
		wctx := context.WithoutCancel(ctx)
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			if opts.Advantage.BatchLevel() {
				if err := whiten(batch, st.Batches, opts.Advantage); err != nil {
					return err
				}
				st.Batches++
			}
			f := &Flush{Groups: make([]Out, 0, len(batch))}
			for _, s := range batch {
				g := s.Group
				out := Out{Task: g.Task, Turn: g.Turn, More: g.More}
				out.Dropped = opts.Advantage.DropZeroVariance && s.Stats.ZeroVariance
				if !out.Dropped && len(g.Samples) > 0 {
					out.Rows = Rows(s, opts.Advantage)
				}
				if len(g.Samples) > 0 {
					acc.add(s, out.Rows, out.Dropped)
				}
				st.Groups++
				if !g.More {
					st.Tasks++
					st.TaskHash = rollout.TaskIDHash(st.TaskHash, g.Task.ID)
				}
				f.Groups = append(f.Groups, out)
			}
			st.Resumable = !batch[len(batch)-1].Group.More
			st.Summary = acc.state()
			f.State = st
			if err := sink.Write(wctx, f); err != nil {
				return fmt.Errorf("writing group %q: %w", batch[0].Group.Task.ID, err)
			}
			for i, out := range f.Groups {
				win.Release()
				if opts.OnGroup != nil {
					opts.OnGroup(st.Groups-int64(len(f.Groups)-1-i), len(out.Rows))
				}
			}
			batch = batch[:0]
			return nil
		}
		size := 1
		if opts.Advantage.BatchLevel() {
			size = opts.Advantage.BatchGroups
		}
		for s := range scored {
			pending[s.Group.Seq] = s
			for {
				s, ok := pending[next]
				if !ok {
					break
				}
				delete(pending, next)
				next++
				if opts.Advantage.GroupBy == rewards.GroupByTrajectory {
					// A task's turn groups are consecutive; hold them until
					// the task is complete, then give each episode the
					// advantage of its return.
					task = append(task, s)
					if s.Group.More {
						continue
					}
					trajectoryAdvantages(task, opts.Advantage)
					batch, task = append(batch, task...), task[:0]
				} else {
					batch = append(batch, s)
				}
				if len(batch) >= size {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(pending) > 0 {
			return fmt.Errorf("internal error: %d groups never became writable (next seq %d)", len(pending), next)
		}
		if len(task) > 0 {
			return fmt.Errorf("internal error: task %q ended without its last group", task[0].Group.Task.ID)
		}
		if opts.Stopped != nil && opts.Stopped() {
			// Every complete batch is flushed; an incomplete whitening
			// batch would be whitened differently from the uninterrupted
			// run's, so it is left to the resume.
			return ErrInterrupted
		}
		return flush()
	})
	// errgroup returns the first error, the one that cancelled the others.
	err := eg.Wait()
	return acc.summary(), err
}

// trajectoryAdvantages replaces the per-turn advantages of one task's groups
// with trajectory-level ones: episode i's return is the sum of its rewards
// over the turns it took (nil when any is nil), advantages are computed over
// the returns of the task's episodes, and every turn row of episode i gets
// episode i's advantage. Each group's Stats then describe the returns.
func trajectoryAdvantages(groups []*Scored, cfg rewards.AdvantageConfig) {
	returns := map[int]*float64{}
	var order []int
	for _, s := range groups {
		for i, smp := range s.Group.Samples {
			r := s.Scores[i].Reward.Total
			prev, seen := returns[smp.Index]
			if !seen {
				order = append(order, smp.Index)
				if r != nil {
					v := *r
					returns[smp.Index] = &v
				} else {
					returns[smp.Index] = nil
				}
				continue
			}
			if prev == nil || r == nil {
				returns[smp.Index] = nil
				continue
			}
			*prev += *r
		}
	}
	vals := make([]*float64, len(order))
	for k, idx := range order {
		vals[k] = returns[idx]
	}
	adv, st := rewards.GroupAdvantages(cfg, vals)
	byIndex := map[int]*float64{}
	for k, idx := range order {
		byIndex[idx] = adv[k]
	}
	for _, s := range groups {
		s.Stats = st
		for i, smp := range s.Group.Samples {
			s.Advantages[i] = byIndex[smp.Index]
		}
	}
}

// whiten applies batch whitening to the group-centred advantages of a batch
// of groups (reinforce_pp_baseline), before the batch is written.
func whiten(batch []*Scored, index int64, cfg rewards.AdvantageConfig) error {
	var vals []*float64
	var weights []float64
	for _, s := range batch {
		if cfg.DropZeroVariance && s.Stats.ZeroVariance {
			continue
		}
		for i, a := range s.Advantages {
			if a == nil {
				continue
			}
			w := 1.0
			if cfg.Whiten == rewards.WhitenToken {
				u := s.Group.Samples[i].Usage
				if u == nil {
					return fmt.Errorf("group %q sample %d: token-weighted whitening needs completion_tokens, which this sample lacks (set advantage.whiten: sequence)", s.Group.Task.ID, i)
				}
				w = float64(u.CompletionTokens)
			}
			vals = append(vals, a)
			weights = append(weights, w)
		}
	}
	st := rewards.WhitenBatch(vals, weights, cfg.Eps)
	st.Index = index
	for _, s := range batch {
		s.Batch = &st
	}
	return nil
}

// score grades a group and computes its advantages.
func score(ctx context.Context, scorer rewards.Scorer, cfg rewards.AdvantageConfig, g *rollout.Group) (*Scored, error) {
	scores, err := scorer.Score(ctx, g)
	if err != nil {
		return nil, fmt.Errorf("scoring group %q: %w", g.Task.ID, err)
	}
	if len(scores) != len(g.Samples) {
		return nil, fmt.Errorf("scoring group %q: %d scores for %d samples", g.Task.ID, len(scores), len(g.Samples))
	}
	totals := make([]*float64, len(scores))
	for i, s := range scores {
		if t := s.Reward.Total; t != nil && !math.IsNaN(*t) && !math.IsInf(*t, 0) {
			totals[i] = t
		}
	}
	adv, st := rewards.GroupAdvantages(cfg, totals)
	return &Scored{Group: g, Scores: scores, Advantages: adv, Stats: st}, nil
}
