package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/probe"
	"github.com/redraft/redraft/rollout"
)

const probeAbout = `Scores a battery of adversarial responses against the reward a YAML
configuration defines, without a model: for the first --tasks tasks with a reference answer in
source.path (tasks or recorded rollouts), an honest correct response (the baseline), the bare answer,
a wrong answer, several different final answers, the answer only in the reasoning field, a truncated
response, a format-only response, the question repeated, an instruction to the judge and an overlong
padded response, each scored by the same scorer a run builds (judges are called). Code tasks (with
reward.grader python) get the code battery: a program that special-cases the prompt's examples, no
program, a stub, a stub that exits or prints a pass before the tests, an instruction to the grader
in a comment, the honest program tagged as another language. Prints per probe
and per reward component the mean reward against the honest baseline (--json writes it as JSON) and
exits 1 when a --forbid probe earns a mean reward above --threshold. See docs/probes.md.`

// redraft probe --config FILE [--tasks N] [--forbid LIST] [--threshold X] [--json FILE]
func cmdProbe(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("probe", "--config FILE [flags]", probeAbout, stdout)
	config := fs.String("config", "", "the run configuration `FILE` whose reward is probed")
	tasks := fs.Int("tasks", 20, "probe the first `N` tasks that have a reference answer")
	forbid := fs.String("forbid", "", "probes that must not earn reward, comma-separated (`LIST`; none for no probe; default "+strings.Join(probe.DefaultForbidden, ",")+" for answers, "+strings.Join(probe.DefaultCodeForbidden, ",")+" for code tasks)")
	threshold := fs.Float64("threshold", 0, "a probe earns reward when its mean total reward is above `X`")
	jsonOut := fs.String("json", "", "write the report as JSON to `FILE` (- for stdout)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if *config == "" {
		return usageError{"--config FILE is required"}
	}
	if *tasks < 1 {
		return usageError{"--tasks must be at least 1"}
	}
	forbidden, err := probe.ParseForbid(*forbid)
	if err != nil {
		return usageError{err.Error()}
	}
	cfg, err := pipeline.LoadConfig(*config)
	if err != nil {
		return err
	}
	if cfg.Splice != nil || cfg.AgentR != nil {
		return errors.New("a splice or agent_r configuration has no reward to probe")
	}
	scorer, closeScorer, err := pipeline.NewScorer(cfg)
	if err != nil {
		return err
	}
	defer closeScorer()
	cases, err := probeCases(ctx, cfg, *tasks, func(task rollout.Task, candidates []string) string {
		if task.Code != nil {
			if scorer.Verifier == nil || !scorer.Verifier.Verifies(task) {
				return "" // not graded by running it: nothing to probe
			}
			return probe.CodeHonestText(task, candidates, func(text string) bool {
				vs := scorer.Verifier.Verify(ctx, task, []rollout.Sample{{Text: text, FinishReason: "stop"}})
				return len(vs) == 1 && vs[0].Correct
			})
		}
		return probe.HonestText(scorer.Grader, task, candidates)
	})
	if err != nil {
		return err
	}
	set := probe.Settings{PadTokens: cfg.Reward.Overlong.MaxTokens}
	if m := cfg.Sampling.MaxTokens; m != nil {
		set.MaxTokens = *m
		if set.PadTokens == 0 {
			set.PadTokens = *m
		}
	}
	rep, err := probe.Run(ctx, scorer, cfg.Reward.Weights, cases, probe.Options{Forbidden: forbidden, Threshold: *threshold, Settings: set})
	if err != nil {
		return err
	}
	rep.Config = *config
	if *jsonOut != "-" {
		rep.WriteText(stdout)
	}
	if err := writeOutputs(stdout, *jsonOut, "", rep, nil); err != nil {
		return err
	}
	if len(rep.Failed) > 0 {
		return fmt.Errorf("forbidden probes earn reward: %s", strings.Join(rep.Failed, ", "))
	}
	return nil
}

// probeCases reads the first n tasks with a reference (or, when the first
// such task is a code task, with tests and an honest program) from the
// configuration's source, with the honest text honest picks (from the
// recorded responses, for rollouts).
func probeCases(ctx context.Context, cfg *pipeline.Config, n int, honest func(rollout.Task, []string) string) ([]probe.Case, error) {
	var cases []probe.Case
	add := func(t rollout.Task, candidates []string) {
		if len(cases) >= n || (len(cases) > 0 && (t.Code != nil) != probe.IsCode(cases[0])) {
			return
		}
		if t.Code == nil && strings.TrimSpace(t.Reference) == "" {
			return
		}
		h := honest(t, candidates)
		if t.Code != nil && h == "" {
			return
		}
		cases = append(cases, probe.Case{Task: t, Honest: h})
	}
	in := cfg.Source.InputOptions()
	if cfg.Source.Kind == "rollouts" {
		f, err := rollout.OpenRecorded(in)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		for len(cases) < n {
			g, err := f.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			var texts []string
			for _, s := range g.Samples {
				if s.Err == "" && s.FinishReason != "length" {
					texts = append(texts, s.Text)
				}
			}
			add(g.Task, texts)
		}
		return cases, nil
	}
	f, err := rollout.OpenTasks(in)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	for len(cases) < n {
		t, err := f.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		add(t, nil)
	}
	return cases, nil
}
