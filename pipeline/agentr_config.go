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
	// StepJudge is the judge model that labels steps Good or Bad (with
	// rollout.HelperDefaults).
	StepJudge *rollout.EndpointConfig `yaml:"step_judge" json:"step_judge"`
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

// defaults fills the settings the file leaves out (set holds the keys it
// sets); a setting given as 0 or "" keeps it, for validateAgentR to refuse.
func (a *AgentRConfig) defaults(set keyLines) {
	if !set.has("agent_r.steps") {
		a.Steps = "lines"
	}
	if !set.has("agent_r.max_steps") {
		a.MaxSteps = 40
	}
	if !set.has("agent_r.continuation") {
		a.Continuation = rollout.ContinueAuto
	}
	if !set.has("agent_r.branches") {
		a.Branches = 1
	}
	if !set.has("agent_r.keep") {
		a.Keep = "correct"
	}
}

// validateAgentR checks the agent_r section and what it needs elsewhere;
// set holds the keys the file sets (nil: unknown).
func (c *Config) validateAgentR(set keyLines) error {
	if err := refuseUnread(set, "an agent_r job", agentRKeys, "source, endpoint, sampling, agent_r, seed, reward.judge_cache and output's dir, shard_bytes, shard_rows and row_group_rows"); err != nil {
		return err
	}
	a := c.AgentR
	switch {
	case c.Endpoint == nil:
		return atKey("agent_r", errors.New("agent_r needs an endpoint section: good branches are sampled from it"))
	case c.Critique != nil:
		return atKey("agent_r", errors.New("agent_r and critique cannot be combined"))
	case c.Episode.Turns > 1:
		return atKey("agent_r", errors.New("agent_r and episode.turns > 1 cannot be combined"))
	case a.StepJudge == nil:
		return keyErr("agent_r.step_judge", "base_url and model are required")
	}
	switch {
	case a.Steps != "lines" && a.Steps != "paragraphs":
		return keyErr("agent_r.steps", "%q is neither lines nor paragraphs", a.Steps)
	case a.MaxSteps < 1:
		return keyErr("agent_r.max_steps", "must be at least 1, got %d", a.MaxSteps)
	case a.JudgeMaxTokens < 0 || a.JudgeMaxTokens == 0 && set.has("agent_r.judge_max_tokens"):
		// 0 is what "not sent" is passed on as, so a 0 in the file would
		// silently become the server's default.
		return keyErr("agent_r.judge_max_tokens", "must be at least 1, got %d (leave the key out for the server's default)", a.JudgeMaxTokens)
	case !rollout.ValidContinueMode(a.Continuation):
		return keyErr("agent_r.continuation", "%q is not prefill, user-turn or auto", a.Continuation)
	case a.Branches < 1:
		return keyErr("agent_r.branches", "must be at least 1, got %d", a.Branches)
	case a.Keep != "correct" && a.Keep != "all":
		return keyErr("agent_r.keep", "%q is neither correct nor all", a.Keep)
	case set.has("agent_r.judge_template") && strings.TrimSpace(a.JudgeTemplate.System) == "" && strings.TrimSpace(a.JudgeTemplate.User) == "":
		// An empty template is what "the default rubric" is passed on as.
		return keyErr("agent_r.judge_template", "empty (leave the key out for the default rubric)")
	}
	for i, r := range a.Revisions {
		if strings.TrimSpace(r) == "" {
			return keyErr(fmt.Sprintf("agent_r.revisions[%d]", i), "empty")
		}
	}
	if err := a.JudgeTemplate.Validate(); err != nil {
		return keyErr("agent_r.judge_template", "%w", err)
	}
	if c.Source.Kind == "rollouts" {
		if err := c.Endpoint.Validate("endpoint", rollout.PolicyDefaults); err != nil {
			return keyed(err)
		}
	}
	return nil
}
