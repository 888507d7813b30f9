package pipeline

import (
	"errors"
	"fmt"
	"strings"

	"github.com/redraft/redraft/rewards/judge"
	"github.com/redraft/redraft/rollout"
)

// AgentRConfig turns a run into Agent-R revision trajectories (sft): for each
// solution (sampled from the endpoint, or recorded), a step judge walks its
// steps and finds the first bad one; a good branch is sampled from the steps
// before it; the row is the bad prefix through the first bad step (masked),
// a revision thought and the good branch (trained). It runs through
// splice.ExecuteAgentR (redraft run dispatches there), not Execute.
type AgentRConfig struct {
	// StepJudge is the judge model that labels steps Good or Bad.
	StepJudge *ModelEndpoint `yaml:"step_judge" json:"step_judge"`
	// JudgeTemplate overrides the step rubric (judge.DefaultStepTemplate).
	JudgeTemplate judge.StepTemplate `yaml:"judge_template" json:"judge_template"`
	// JudgeMaxTokens bounds each step verdict (0: the server's default); a
	// verdict cut off without its final line is a skip with that reason.
	JudgeMaxTokens int `yaml:"judge_max_tokens" json:"judge_max_tokens,omitempty"`
	// Steps is how a solution is cut into steps: lines (default) or
	// paragraphs.
	Steps string `yaml:"steps" json:"steps"`
	// MaxSteps skips solutions with more steps (default 40): the judge is
	// called once per step.
	MaxSteps int `yaml:"max_steps" json:"max_steps"`
	// Revisions is the pool of revision thoughts (default: splice's pool).
	Revisions []string `yaml:"revisions" json:"revisions,omitempty"`
	// Continuation is prefill, user-turn or auto (default).
	Continuation string `yaml:"continuation" json:"continuation"`
	// ContinueInstruction is the user turn of user-turn continuations.
	ContinueInstruction string `yaml:"continue_instruction" json:"continue_instruction,omitempty"`
	// Branches is the number of good branches tried per solution until one
	// is kept (default 1).
	Branches int `yaml:"branches" json:"branches"`
	// Keep is correct (default: only branches the verifier grades correct)
	// or all.
	Keep string `yaml:"keep" json:"keep"`
	// JudgeCorrect also walks solutions the verifier grades correct (by
	// default they are skipped: there is nothing to revise).
	JudgeCorrect bool `yaml:"judge_correct" json:"judge_correct,omitempty"`
}

func (a *AgentRConfig) defaults() {
	if a.Steps == "" {
		a.Steps = "lines"
	}
	if a.MaxSteps == 0 {
		a.MaxSteps = 40
	}
	if a.Continuation == "" {
		a.Continuation = rollout.ContinueAuto
	}
	if a.Branches == 0 {
		a.Branches = 1
	}
	if a.Keep == "" {
		a.Keep = "correct"
	}
}

// validateAgentR checks the agent_r section and what it needs elsewhere.
func (c *Config) validateAgentR() error {
	a := c.AgentR
	switch {
	case c.Endpoint == nil:
		return errors.New("agent_r needs an endpoint section: good branches are sampled from it")
	case c.Critique != nil:
		return errors.New("agent_r and critique cannot be combined")
	case c.Episode.Turns > 1:
		return errors.New("agent_r and episode.turns > 1 cannot be combined")
	case a.StepJudge == nil || a.StepJudge.BaseURL == "" || a.StepJudge.Model == "":
		return errors.New("agent_r.step_judge: base_url and model are required")
	case a.Steps != "lines" && a.Steps != "paragraphs":
		return fmt.Errorf("agent_r.steps: %q is neither lines nor paragraphs", a.Steps)
	case a.MaxSteps < 1:
		return errors.New("agent_r.max_steps: must be at least 1")
	case a.JudgeMaxTokens < 0:
		return errors.New("agent_r.judge_max_tokens: must be >= 0")
	case !rollout.ValidContinueMode(a.Continuation):
		return fmt.Errorf("agent_r.continuation: %q is not prefill, user-turn or auto", a.Continuation)
	case a.Branches < 1:
		return errors.New("agent_r.branches: must be at least 1")
	case a.Keep != "correct" && a.Keep != "all":
		return fmt.Errorf("agent_r.keep: %q is neither correct nor all", a.Keep)
	}
	for i, r := range a.Revisions {
		if strings.TrimSpace(r) == "" {
			return fmt.Errorf("agent_r.revisions[%d]: empty", i)
		}
	}
	if err := a.JudgeTemplate.Validate(); err != nil {
		return fmt.Errorf("agent_r.judge_template: %w", err)
	}
	if c.Source.Kind == "rollouts" {
		if err := c.Endpoint.validateFleet(); err != nil {
			return err
		}
		if c.Endpoint.Model == "" {
			return errors.New("endpoint.model: missing")
		}
	}
	return nil
}
