// Package agents is the job of runs in interactive environments
// (source.kind environment): for each task of a tasks file it plays
// sampling.n agent episodes (rollout/agent) in the environment the
// environment section names, and turns them into rows with one of four
// recipes:
//
//   - grpo: one rl row per episode, a task's episodes its group (the
//     episode's reward, its per-step rewards in response_metadata); the
//     successful episodes also as sft rows;
//   - agent-r (Agent-R): for each unsuccessful episode, its bad prefix
//     through the first bad action (masked), a revision thought and a good
//     branch from the state before that action (trained);
//   - step (STeP): the good steps (trained), the erroneous step and what it
//     showed (masked), a reflection and the corrected step, then the rest
//     of the continuation (trained);
//   - re-rest (Re-ReST): a reflector model reads the failed episode and the
//     environment's feedback and writes a repaired action sequence, which
//     is played in a fresh session and kept when it succeeds.
//
// Every recipe writes the rl rows of the episodes it played; observations
// are never trained. An environment or endpoint that fails ends one
// episode (its rl row carries the reason in error and failures.jsonl lists
// it); the run goes on. Like every job it runs through the harness
// (pipeline.Open, pipeline.RunSFT): journalled, resumable, sharded by task.
package agents

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/ordered"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/agent"
	"github.com/redraft/redraft/rollout/env"
	"github.com/redraft/redraft/tokenizer"
)

// job is what playing one task needs.
type job struct {
	cfg       *pipeline.Config
	env       env.Environment
	policy    rollout.Policy
	reflector rollout.Policy
	opts      agent.Options
	track     *export.TokenTrackConfig
}

// Execute runs a configuration with source.kind environment end to end.
func Execute(ctx context.Context, cfg *pipeline.Config, opts pipeline.JobOptions) (*export.Manifest, error) {
	e := cfg.Environment
	if e == nil || cfg.Source.Kind != "environment" {
		return nil, errors.New("config is not an environment run (source.kind environment with an environment section)")
	}
	var track *export.TokenTrackConfig
	if o := cfg.Output; o.Tokenizer != "" {
		var err error
		if track, err = export.LoadTokenTrack(o.Tokenizer, tokenizer.Format(o.ChatFormat)); err != nil {
			return nil, fmt.Errorf("output.tokenizer: %w", err)
		}
	}
	client, err := e.Client()
	if err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	j := &job{cfg: cfg, env: client, opts: cfg.EpisodeOptions(), track: track}
	if ep := cfg.Endpoint; ep != nil {
		policy, closeFleet, err := ep.Dial()
		if err != nil {
			return nil, err
		}
		defer closeFleet()
		j.policy = opts.Progress.Policy(policy)
	}
	if r := e.Reflector; r != nil {
		j.reflector = r.Policy()
	}
	h, err := pipeline.Open(cfg, "environment:"+e.Recipe, opts)
	if err != nil {
		return nil, err
	}
	j.opts.SessionName = sessionNamer(h.Dir, cfg.Seed)
	if ep := cfg.Endpoint; ep != nil {
		h.Manifest.Model, h.Manifest.Endpoint = ep.Model, ep.RedactedURLs()
	}
	sj := pipeline.SFTJob{Track: track, RL: true}
	sj.Produce = func(ctx context.Context, from pipeline.SFTResume, stopped func() bool, emit func(pipeline.SFTGroup) error) error {
		f, err := agent.OpenTasks(agent.TasksOptions{Path: cfg.Source.Path, Env: e.Env, MaxLineBytes: cfg.Source.MaxLineBytes, Shard: opts.Shard, Skip: from.Inputs})
		if err != nil {
			return err
		}
		defer f.Close()
		first, interrupted := true, false
		next := func() (agent.TaskRecord, bool, error) {
			if stopped() {
				interrupted = true
				return agent.TaskRecord{}, false, nil
			}
			rec, err := f.Next(ctx)
			if first && from.Inputs > 0 {
				// The file must still start with the tasks done.
				first = false
				if err == nil || errors.Is(err, io.EOF) {
					if f.Seen()-boolInt(err == nil) < from.Inputs || f.SkippedHash() != from.Hash {
						return rec, false, &rollout.InputError{File: cfg.Source.Path, Err: fmt.Errorf("resume: %w: its first %d tasks are not the ones the run did", rollout.ErrInputChanged, from.Inputs)}
					}
				}
			}
			if errors.Is(err, io.EOF) {
				return rec, false, nil
			}
			return rec, err == nil, err
		}
		// Tasks in flight: enough to keep every session busy.
		window := max(2, (e.MaxSessions+cfg.Sampling.N-1)/cfg.Sampling.N+1)
		err = ordered.Map(ctx, window, next, func(ctx context.Context, rec agent.TaskRecord) pipeline.SFTGroup {
			return j.task(ctx, rec)
		}, emit)
		if err == nil && interrupted {
			err = pipeline.ErrInterrupted
		}
		return err
	}
	return pipeline.RunSFT(ctx, h, sj, opts)
}

// sessionNamer names a run's environment sessions by the output directory,
// the run's seed, the task, the sample and what the session is for: a
// resumed run replays its unfinished tasks under the same names, so the
// server gives back the sessions a killed run left open. Two runs into
// different directories never share a name.
func sessionNamer(dir string, seed int64) func(env.Task, int, string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return func(t env.Task, index int, what string) string {
		h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%s\x00%d\x00%s", dir, seed, t.ID(), index, what)))
		return "redraft-" + hex.EncodeToString(h[:12])
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
