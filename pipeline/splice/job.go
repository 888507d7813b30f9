package splice

import (
	"context"
	"errors"
	"fmt"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rewards/mathgrade"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/tokenizer"
)

// Execute runs a configuration with a splice section end to end through the
// job harness (pipeline.Open, pipeline.RunSFT): one sft row per record that
// can be spliced, the others listed in the manifest with their reason. Like
// every job it is journalled, so a killed or interrupted run resumes where
// it stopped, and it takes a shard (opts.Shard: records by line number).
func Execute(ctx context.Context, cfg *pipeline.Config, opts pipeline.JobOptions) (*export.Manifest, error) {
	sp := cfg.Splice
	if sp == nil {
		return nil, errors.New("config has no splice section")
	}
	var track *export.TokenTrackConfig
	if sp.Tokenizer != "" {
		format := tokenizer.Format(sp.ChatFormat)
		if format == "" {
			format = tokenizer.FormatChatML
		}
		var err error
		if track, err = export.LoadTokenTrack(sp.Tokenizer, format); err != nil {
			return nil, fmt.Errorf("splice.tokenizer: %w", err)
		}
	}
	var produce func(context.Context, Cursor, func(Record) error) error
	var closeFleet func()
	switch sp.Format {
	case "prm800k":
		o := DefaultOptions()
		if len(sp.Reflections) > 0 {
			o.Reflections = sp.Reflections
		}
		if sp.Keep != "" {
			o.Keep = sp.Keep
		}
		produce = func(ctx context.Context, cur Cursor, emit func(Record) error) error {
			return PRM800K(ctx, sp.Input, cur, o, emit)
		}
	case "mr-gsm8k":
		ep := cfg.Endpoint
		policy, closeF, err := ep.Dial()
		if err != nil {
			return nil, err
		}
		closeFleet = closeF
		policy = opts.Progress.Policy(policy)
		o := DefaultMRGSM8KOptions(&rollout.Continuer{Policy: policy, Mode: sp.Continuation, Instruction: sp.ContinueInstruction})
		o.Sampling = rollout.Sampling{Temperature: cfg.Sampling.Temperature, TopP: cfg.Sampling.TopP, MaxTokens: cfg.Sampling.MaxTokens}
		o.Seed, o.Model, o.Concurrency = cfg.Seed, ep.Model, ep.MaxInFlight
		o.TrainPrefix = !sp.MaskPrefix
		if sp.Reflection != "" {
			o.ReflectionSource = sp.Reflection
		}
		if sp.Keep != "" {
			o.Keep = sp.Keep
		}
		if len(sp.Reflections) > 0 {
			o.Reflections = sp.Reflections
		}
		if sp.Grade == nil || *sp.Grade {
			o.Grader = rewards.NewMathGrader(mathgrade.Options{})
		}
		produce = func(ctx context.Context, cur Cursor, emit func(Record) error) error {
			return MRGSM8K(ctx, sp.Input, cur, o, emit)
		}
	default:
		return nil, fmt.Errorf("splice.format %q: want prm800k or mr-gsm8k", sp.Format)
	}
	if closeFleet != nil {
		defer closeFleet()
	}
	h, err := pipeline.Open(cfg, "splice:"+sp.Format, opts)
	if err != nil {
		return nil, err
	}
	if ep := cfg.Endpoint; ep != nil && sp.Format == "mr-gsm8k" {
		h.Manifest.Model, h.Manifest.Endpoint = ep.Model, ep.RedactedURLs()
	}
	job := pipeline.SFTJob{Track: track}
	job.Produce = func(ctx context.Context, from pipeline.SFTResume, stopped func() bool, emit func(pipeline.SFTGroup) error) error {
		cur := Cursor{From: from, Shard: opts.Shard, Stopped: stopped}
		return produce(ctx, cur, func(r Record) error {
			g := pipeline.SFTGroup{Key: r.Key}
			if r.Trajectory != nil {
				g.Rows = []export.SFTRow{r.Trajectory.SFTRow()}
			} else {
				g.Skipped = []export.Skipped{{File: sp.Input, Line: r.Line, Reason: r.Reason}}
			}
			return emit(g)
		})
	}
	return pipeline.RunSFT(ctx, h, job, opts)
}
