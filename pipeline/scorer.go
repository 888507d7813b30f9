package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rewards/codegrade"
	"github.com/redraft/redraft/rewards/execute"
	"github.com/redraft/redraft/rewards/mathgrade"
	"github.com/redraft/redraft/rewards/plugin"
	"github.com/redraft/redraft/rollout"
)

// NewScorer builds the scorer a run of cfg scores every group with: the
// run's grading (the math grader and, with reward.grader python, the code
// verifier and its sandbox), the Parts of the weighted components and,
// when judge is weighted, the judge panel (whose calls go to the configured
// judges). Execute uses it; redraft probe scores its adversarial responses
// with it, so a probe earns exactly what the same response would earn in a
// run. closeFn releases the judge cache.
func NewScorer(cfg *Config) (scorer *rewards.Composite, closeFn func(), err error) {
	gr, err := newGrading(cfg)
	if err != nil {
		return nil, nil, err
	}
	scorer, closeScorer, err := newScorer(cfg, gr)
	if err != nil {
		gr.close()
		return nil, nil, err
	}
	return scorer, func() { closeScorer(); gr.close() }, nil
}

func newScorer(cfg *Config, gr grading) (*rewards.Composite, func(), error) {
	parts := cfg.Reward.Parts(gr.grader)
	closeFn := func() {}
	if _, ok := cfg.Reward.Weights["judge"]; ok {
		part, closeJudges, err := buildJudges(cfg.Reward)
		if err != nil {
			return nil, nil, err
		}
		parts = append(parts, part)
		closeFn = closeJudges
	}
	return &rewards.Composite{Grader: gr.grader, Verifier: gr.verifier, Parts: parts, Weights: cfg.Reward.Weights}, closeFn, nil
}

// grading is how a run decides responses: the math grader, and the
// verifier of the tasks it verifies (reward.grader python: code tasks run
// in the sandbox). The same grading scores the rows and decides the
// feedback of episodes and critiques.
type grading struct {
	grader   rewards.Grader
	verifier rewards.Verifier // nil: the grader decides every task
	close    func()           // stops the verifier (a plug-in's processes)
}

// mathGrading is the grading of reward.grader math.
func mathGrading() grading { return grading{grader: defaultGrader(), close: func() {}} }

// defaultGrader is the grader runs use.
func defaultGrader() rewards.Grader { return rewards.NewMathGrader(mathgrade.Options{}) }

// newGrading builds cfg's grading. With reward.grader python it starts the
// sandbox, which refuses (an error naming the opt-out) when isolation is
// unavailable on this machine.
func newGrading(cfg *Config) (grading, error) {
	gr := mathGrading()
	switch cfg.Reward.Grader {
	case "plugin":
		// The handshake is bounded by the plug-in's start_timeout.
		client, err := plugin.Open(context.Background(), cfg.Reward.Plugin.Config)
		if err != nil {
			return gr, fmt.Errorf("reward.plugin: %w", err)
		}
		gr.verifier = rewards.PluginVerifier{Client: client}
		gr.close = func() { client.Close() }
		return gr, nil
	case "python":
	default:
		return gr, nil
	}
	e := cfg.Reward.Execution
	lim := execute.Limits{Wall: time.Duration(e.Timeout), CPU: time.Duration(e.Timeout), Memory: int64(e.MemoryMB) << 20}
	sb, err := execute.New(execute.Options{Limits: lim, Slots: e.Jobs, UnsafeNoSandbox: e.UnsafeNoSandbox})
	if err != nil {
		return gr, fmt.Errorf("reward.grader python: %w (reward.execution.unsafe_no_sandbox runs model code without isolation)", err)
	}
	gr.verifier = rewards.CodeVerifier{Grader: codegrade.New(sb, codegrade.Options{})}
	return gr, nil
}

// Verify implements rollout.Verifier: the feedback decisions of episodes
// and critiques, made as the rows' verdicts are.
func (g grading) Verify(ctx context.Context, task rollout.Task, s rollout.Sample) rollout.Check {
	if g.verifier != nil && g.verifier.Verifies(task) {
		vs := g.verifier.Verify(ctx, task, []rollout.Sample{s})
		if len(vs) == 0 || vs[0].Unverified {
			return rollout.Check{}
		}
		ok := vs[0].Correct
		if vs[0].Value != nil {
			ok = *vs[0].Value >= 1
		}
		return rollout.Check{Correct: &ok, Feedback: vs[0].Feedback}
	}
	if task.Reference == "" {
		return rollout.Check{}
	}
	ok := g.grader.Grade(s.Text, task.Reference).Correct
	return rollout.Check{Correct: &ok}
}
