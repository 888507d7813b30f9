package splice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rewards/judge"
	"github.com/redraft/redraft/rewards/mathgrade"
	"github.com/redraft/redraft/rollout"
)

// ExecuteAgentR runs a configuration with an agent_r section end to end: it
// reads tasks (sampling sampling.n solutions each from the endpoint) or
// recorded rollouts, revises every solution (see ReviseOne), and writes the
// sft dataset with a manifest that lists every solution without a row and
// why. A task's rows form one group. The manifest is written whatever
// happens; a previous complete run of the same configuration is left alone
// (pipeline.ErrAlreadyComplete).
func ExecuteAgentR(ctx context.Context, cfg *pipeline.Config, opts pipeline.JobOptions) (*export.Manifest, error) {
	ar := cfg.AgentR
	if ar == nil {
		return nil, errors.New("config has no agent_r section")
	}
	if opts.Shard.Count > 1 {
		return nil, errors.New("agent_r runs cannot be sharded yet: run them whole")
	}
	full, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	_, hash, err := cfg.Identity()
	if err != nil {
		return nil, fmt.Errorf("hashing config: %w", err)
	}
	dir := cfg.Output.Dir
	if err := prepareDir(dir, hash, opts.Overwrite); err != nil {
		return nil, err
	}
	ep := cfg.Endpoint
	fleet, err := rollout.NewEndpoints(rollout.EndpointsConfig{
		URLs: ep.URLs(), Model: ep.Model, APIKey: os.Getenv(ep.APIKeyEnv),
		Timeout: time.Duration(ep.Timeout), MaxInFlight: ep.MaxInFlightPerEndpoint,
		MaxAttempts: ep.Retries, BackoffInitial: time.Duration(ep.BackoffInitial), BackoffMax: time.Duration(ep.BackoffMax),
		BreakerFailures: ep.BreakerFailures, BreakerCooldown: time.Duration(ep.BreakerCooldown),
	})
	if err != nil {
		return nil, err
	}
	defer fleet.Close()
	// Requests go through the scrubbed view: no error recorded quotes a
	// credential of a base URL (the step judge's Policy is scrubbed too).
	policy := ep.Scrub(fleet)
	sj := &judge.StepJudge{Name: ar.StepJudge.Model, Model: ar.StepJudge.Model, Policy: ar.StepJudge.Policy(), Template: ar.JudgeTemplate, Seed: cfg.Seed}
	if n := ar.JudgeMaxTokens; n > 0 {
		sj.Sampling.MaxTokens = &n
	}
	if cfg.Reward.JudgeCache != "" {
		cache, err := judge.OpenCache(cfg.Reward.JudgeCache)
		if err != nil {
			return nil, fmt.Errorf("reward.judge_cache: %w", err)
		}
		defer cache.Close()
		sj.Cache = cache
	}
	// The source section's own mapping, so that on_error and extra_fields
	// apply here as in every other run.
	next, inputSkipped, closeSrc, err := agentRItems(ctx, cfg, cfg.Source.InputOptions())
	if err != nil {
		return nil, err
	}
	defer closeSrc()

	m := &export.Manifest{
		Started: time.Now().UTC(), CodeVersion: export.CodeVersion(), GoVersion: runtime.Version(),
		Config: full, ConfigHash: hash, Source: "agent-r:" + cfg.Source.Kind,
		Model: ep.Model, Endpoint: ep.RedactedURLs(),
	}
	w, err := export.NewSFTWriter(export.ShardOptions{
		Dir: dir, Split: "train", MaxBytes: int64(cfg.Output.ShardBytes), MaxRows: cfg.Output.ShardRows, RowGroupRows: cfg.Output.RowGroupRows,
		Metadata: map[string]string{"redraft.config_hash": hash},
	}, nil)
	if err != nil {
		return nil, err
	}
	ropts := AgentROptions{
		Judge: sj, Continuer: &rollout.Continuer{Policy: policy, Mode: ar.Continuation, Instruction: ar.ContinueInstruction},
		Policy: policy, Sampling: cfg.Sampling.Sampling, Seed: cfg.Seed, Model: ep.Model,
		Steps: ar.Steps, MaxSteps: ar.MaxSteps, Revisions: ar.Revisions, Branches: ar.Branches,
		Keep: ar.Keep, JudgeCorrect: ar.JudgeCorrect, Grader: rewards.NewMathGrader(mathgrade.Options{}),
		Concurrency: ep.MaxInFlight,
	}
	var (
		group []export.SFTRow
		// groupFinish is the continuation's finish reason of each row of
		// group, nil when its metadata has none.
		groupFinish []*string
		groupID     string
		written     int64
		// sum and finishes cover the rows written.
		sum      rewardSum
		finishes = map[string]int64{}
		// solutionSkips counts the solutions that produced no row.
		solutionSkips int64
	)
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		if err := w.WriteGroup(ctx, group); err != nil {
			return fmt.Errorf("writing task %q: %w", groupID, err)
		}
		written++
		for i, row := range group {
			sum.add(row.Reward)
			if f := groupFinish[i]; f != nil {
				finishes[*f]++
			}
		}
		if opts.OnGroup != nil {
			opts.OnGroup(written, len(group))
		}
		group, groupFinish = group[:0], groupFinish[:0]
		return nil
	}
	runErr := AgentR(ctx, next, ropts, func(r AgentRResult) error {
		if r.Item.Task.ID != groupID {
			if err := flush(); err != nil {
				return err
			}
			groupID = r.Item.Task.ID
		}
		if r.Trajectory == nil {
			// The first MaxSkippedRecords are listed and all are counted,
			// so that millions of skipped solutions do not pile up.
			solutionSkips++
			if len(m.Skipped) < rollout.MaxSkippedRecords {
				m.Skipped = append(m.Skipped, export.Skipped{File: r.Item.Task.Origin.File, Line: r.Item.Task.Origin.Line,
					Reason: fmt.Sprintf("task %s sample %d: %s", r.Item.Task.ID, r.Item.Index, r.Reason)})
			}
			return nil
		}
		var meta struct {
			Continuation struct {
				FinishReason string `json:"finish_reason"`
			} `json:"continuation"`
		}
		var finish *string
		if json.Unmarshal([]byte(r.Trajectory.Metadata), &meta) == nil {
			finish = &meta.Continuation.FinishReason
		}
		group = append(group, r.Trajectory.SFTRow())
		groupFinish = append(groupFinish, finish)
		return nil
	})
	if runErr == nil {
		runErr = flush()
	}
	// The manifest lists the shards finished intact, and is complete only
	// when every row is in them: a write error fails the writer, which
	// then refuses to close, so the run fails.
	if runErr == nil {
		_, runErr = w.Close()
	}
	shards := w.Commit()
	if runErr != nil {
		// The open shard (after a failure: the rows since the last shard
		// finished) is deleted; the summary never counted them.
		if _, err := w.Rollback(); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	ds := export.DatasetInfo{Schema: w.Schema(), Shards: shards}
	if ds.Shards == nil {
		ds.Shards = []export.ShardInfo{}
	}
	for _, s := range shards {
		ds.Rows += s.Rows
		ds.Groups += s.Groups
	}
	// Input records dropped by source.on_error: skip, after the solutions
	// that produced no row.
	list, total := inputSkipped()
	for _, r := range list {
		if len(m.Skipped) == rollout.MaxSkippedRecords {
			break
		}
		m.Skipped = append(m.Skipped, export.Skipped(r))
	}
	m.SkippedTotal = solutionSkips + total
	m.Datasets = map[string]export.DatasetInfo{"sft": ds}
	m.Rewards = sum.summary(ds.Groups, finishes)
	m.Finished = time.Now().UTC()
	switch {
	case runErr == nil:
		m.Status = export.StatusComplete
	case errors.Is(runErr, context.Canceled):
		m.Status, m.Error = export.StatusInterrupted, runErr.Error()
	default:
		m.Status, m.Error = export.StatusFailed, runErr.Error()
	}
	if err := export.WriteManifest(dir, m); err != nil {
		return m, errors.Join(runErr, err)
	}
	if err := export.WriteCard(dir, m); err != nil {
		return m, errors.Join(runErr, err)
	}
	return m, runErr
}

// skippedInput lists the input records a source dropped and counts them.
type skippedInput func() ([]rollout.SkippedRecord, int64)

// agentRItems yields one item per solution: sampling.n per task, or every
// recorded response.
func agentRItems(ctx context.Context, cfg *pipeline.Config, in rollout.InputOptions) (func() (AgentRItem, bool, error), skippedInput, func(), error) {
	if cfg.Source.Kind == "rollouts" {
		src, err := rollout.OpenRecorded(in)
		if err != nil {
			return nil, nil, nil, err
		}
		var g *rollout.Group
		i := 0
		return func() (AgentRItem, bool, error) {
			for g == nil || i >= len(g.Samples) {
				var err error
				if g, err = src.Next(ctx); errors.Is(err, io.EOF) {
					return AgentRItem{}, false, nil
				} else if err != nil {
					return AgentRItem{}, false, err
				}
				i = 0
			}
			s := g.Samples[i]
			i++
			return AgentRItem{Task: g.Task, Index: s.Index, Sample: &s}, true, nil
		}, func() ([]rollout.SkippedRecord, int64) { return src.Skipped(), src.SkippedTotal() }, func() { src.Close() }, nil
	}
	src, err := rollout.OpenTasks(in)
	if err != nil {
		return nil, nil, nil, err
	}
	var task rollout.Task
	i, n := 0, cfg.Sampling.N
	i = n // read a task first
	return func() (AgentRItem, bool, error) {
		if i >= n {
			var err error
			if task, err = src.Next(ctx); errors.Is(err, io.EOF) {
				return AgentRItem{}, false, nil
			} else if err != nil {
				return AgentRItem{}, false, err
			}
			i = 0
		}
		i++
		return AgentRItem{Task: task, Index: i - 1}, true, nil
	}, func() ([]rollout.SkippedRecord, int64) { return src.Skipped(), src.SkippedTotal() }, func() { src.Close() }, nil
}

// prepareDir refuses to mix two runs in one directory, as pipeline.Execute
// does, and like it writes and deletes only what redraft owns: a foreign
// README.md or file under data/ stops the run, --overwrite included (see
// export.ForeignFiles).
func prepareDir(dir, hash string, overwrite bool) error {
	if overwrite {
		if err := export.RemoveOutput(dir); err != nil {
			return err
		}
	} else if err := export.CheckOwnership(dir); err != nil {
		return err
	}
	prev, err := export.ReadManifest(dir)
	switch {
	case err == nil && prev.Status == export.StatusComplete && prev.ConfigHash == hash:
		return pipeline.ErrAlreadyComplete
	case err == nil:
		return fmt.Errorf("output directory %s holds another run (status %s, config %.12s); pass --overwrite to replace it", dir, prev.Status, prev.ConfigHash)
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	if shards, err := export.HasShards(dir); err != nil {
		return err
	} else if shards {
		return fmt.Errorf("output directory %s already has shards but no manifest; pass --overwrite to replace them", dir)
	}
	return os.MkdirAll(dir, 0o755)
}

// rewardSum summarises the rewards of the rows written.
type rewardSum struct {
	rows, graded, correct int64
	sum, sq               float64
}

func (s *rewardSum) add(r *float64) {
	s.rows++
	if r == nil {
		return
	}
	s.graded++
	s.sum += *r
	s.sq += *r * *r
	if *r == 1 {
		s.correct++
	}
}

func (s *rewardSum) summary(groups int64, finishes map[string]int64) export.RewardSummary {
	out := export.RewardSummary{Rows: s.rows, Graded: s.graded, Groups: groups, NullRewards: s.rows - s.graded, FinishReason: finishes}
	if s.graded > 0 {
		n := float64(s.graded)
		mean, acc := s.sum/n, float64(s.correct)/n
		out.Mean, out.Accuracy = &mean, &acc
		if s.graded > 1 {
			sd := math.Sqrt(max(0, (s.sq-n*mean*mean)/(n-1)))
			out.Std = &sd
		}
	}
	return out
}
