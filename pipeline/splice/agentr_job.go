package splice

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rewards/judge"
	"github.com/redraft/redraft/rewards/mathgrade"
	"github.com/redraft/redraft/rollout"
)

// ExecuteAgentR runs a configuration with an agent_r section end to end
// through the job harness (pipeline.Open, pipeline.RunSFT): it reads tasks
// (sampling sampling.n solutions each from the endpoint) or recorded
// rollouts, revises every solution (see ReviseOne), and writes the sft
// dataset with a manifest that lists every solution without a row and why.
// A task's rows form one group. Like every job it is journalled, so a killed
// or interrupted run resumes where it stopped without revising a task twice,
// and it takes a shard (opts.Shard: tasks by id, rollout.ShardOf).
func ExecuteAgentR(ctx context.Context, cfg *pipeline.Config, opts pipeline.JobOptions) (*export.Manifest, error) {
	ar := cfg.AgentR
	if ar == nil {
		return nil, errors.New("config has no agent_r section")
	}
	ep := cfg.Endpoint
	policy, closeFleet, err := ep.Dial()
	if err != nil {
		return nil, err
	}
	defer closeFleet()
	policy = opts.Progress.Policy(policy)
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
	ropts := AgentROptions{
		Judge: sj, Continuer: &rollout.Continuer{Policy: policy, Mode: ar.Continuation, Instruction: ar.ContinueInstruction},
		Policy: policy, Sampling: cfg.Sampling.Sampling, Seed: cfg.Seed, Model: ep.Model,
		Steps: ar.Steps, MaxSteps: ar.MaxSteps, Revisions: ar.Revisions, Branches: ar.Branches,
		Keep: ar.Keep, JudgeCorrect: ar.JudgeCorrect, Grader: rewards.NewMathGrader(mathgrade.Options{}),
		Concurrency: ep.MaxInFlight,
	}
	h, err := pipeline.Open(cfg, "agent-r:"+cfg.Source.Kind, opts)
	if err != nil {
		return nil, err
	}
	h.Manifest.Model, h.Manifest.Endpoint = ep.Model, ep.RedactedURLs()
	// The source is opened by Produce (where a resume starts is known
	// then); the input records it dropped are listed after it.
	var inputSkipped func() ([]rollout.SkippedRecord, int64)
	job := pipeline.SFTJob{InputSkipped: func() ([]rollout.SkippedRecord, int64) {
		if inputSkipped == nil {
			return nil, 0
		}
		return inputSkipped()
	}}
	job.Produce = func(ctx context.Context, from pipeline.SFTResume, stopped func() bool, emit func(pipeline.SFTGroup) error) error {
		// The source section's own mapping, so that on_error and
		// extra_fields apply here as in every other run.
		in := cfg.Source.InputOptions()
		in.Shard, in.SkipTasks, in.SkipHash = opts.Shard, from.Inputs, from.Hash
		if p := opts.Progress; p != nil {
			count := cfg.Source.InputOptions()
			count.Shard = opts.Shard
			p.CountInput(ctx, count)
		}
		src, err := openAgentRItems(ctx, cfg, in, stopped)
		if err != nil {
			return err
		}
		defer src.close()
		inputSkipped = src.skipped
		// A task's results arrive together, in input order: its group is
		// complete when the next task's first result (or the end) comes.
		var g *pipeline.SFTGroup
		err = AgentR(ctx, src.next, ropts, func(r AgentRResult) error {
			if g != nil && r.Item.Task.ID != g.Key {
				if err := emit(*g); err != nil {
					return err
				}
				g = nil
			}
			if g == nil {
				g = &pipeline.SFTGroup{Key: r.Item.Task.ID}
			}
			if r.Trajectory == nil {
				g.Skipped = append(g.Skipped, export.Skipped{File: r.Item.Task.Origin.File, Line: r.Item.Task.Origin.Line,
					Reason: fmt.Sprintf("task %s sample %d: %s", r.Item.Task.ID, r.Item.Index, r.Reason)})
				return nil
			}
			g.Rows = append(g.Rows, r.Trajectory.SFTRow())
			return nil
		})
		if err == nil && g != nil {
			err = emit(*g)
		}
		if err == nil && src.stopped {
			err = pipeline.ErrInterrupted
		}
		return err
	}
	return pipeline.RunSFT(ctx, h, job, opts)
}

// agentRItems yields one item per solution: sampling.n per task, or every
// recorded response.
type agentRItems struct {
	next    func() (AgentRItem, bool, error)
	skipped func() ([]rollout.SkippedRecord, int64)
	close   func()
	// stopped is set when the input ended early because of a stop.
	stopped bool
}

func openAgentRItems(ctx context.Context, cfg *pipeline.Config, in rollout.InputOptions, stopped func() bool) (*agentRItems, error) {
	it := &agentRItems{}
	// A stop ends the input at a task boundary: the tasks begun are
	// revised whole.
	stop := func() bool {
		if stopped() {
			it.stopped = true
			return true
		}
		return false
	}
	if cfg.Source.Kind == "rollouts" {
		src, err := rollout.OpenRecorded(in)
		if err != nil {
			return nil, err
		}
		var g *rollout.Group
		i := 0
		it.next = func() (AgentRItem, bool, error) {
			for g == nil || i >= len(g.Samples) {
				if stop() {
					return AgentRItem{}, false, nil
				}
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
		}
		it.skipped = func() ([]rollout.SkippedRecord, int64) { return src.Skipped(), src.SkippedTotal() }
		it.close = func() { src.Close() }
		return it, nil
	}
	src, err := rollout.OpenTasks(in)
	if err != nil {
		return nil, err
	}
	var task rollout.Task
	i, n := 0, cfg.Sampling.N
	i = n // read a task first
	it.next = func() (AgentRItem, bool, error) {
		if i >= n {
			if stop() {
				return AgentRItem{}, false, nil
			}
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
	}
	it.skipped = func() ([]rollout.SkippedRecord, int64) { return src.Skipped(), src.SkippedTotal() }
	it.close = func() { src.Close() }
	return it, nil
}
