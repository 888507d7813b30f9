package pipeline

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/agent"
	"github.com/redraft/redraft/rollout/env"
)

// Agent recipes over environment episodes (environment.recipe).
const (
	// RecipeAgentGRPO: n episodes per task, one rl row each (a task's
	// episodes are its group); the successful ones also as sft rows.
	RecipeAgentGRPO = "grpo"
	// RecipeAgentR: Agent-R in the environment: each unsuccessful episode's
	// bad prefix through its first bad action (masked), a revision thought
	// and a good branch from the state before that action (trained).
	RecipeAgentR = "agent-r"
	// RecipeStep: STeP: the episode's good steps (trained), its first bad
	// step and what it showed (masked), a reflection and the corrected
	// step, then the rest of a successful continuation (trained).
	RecipeStep = "step"
	// RecipeReReST: Re-ReST: a reflector model reads a failed episode and
	// the environment's feedback and writes a repaired action sequence,
	// kept when the environment says it succeeds.
	RecipeReReST = "re-rest"
)

// EnvironmentConfig is the environment section of a run whose source.kind is
// environment: where the environment is served, how an episode runs and
// which recipe turns episodes into rows. The job is agents.Execute.
type EnvironmentConfig struct {
	// URL is the environment server's base URL (scripts/env-server.sh
	// prints it). Not part of the run's identity.
	URL string `yaml:"url" json:"-"`
	// Env is the environment's name ("scienceworld"): the default of task
	// records that name none, and the only one they may name.
	Env string `yaml:"env" json:"env"`
	// Recipe is grpo (default), agent-r, step or re-rest.
	Recipe string `yaml:"recipe" json:"recipe"`
	// Actor is policy (default: the endpoint acts) or oracle (the
	// environment's gold actions: demonstrations, and a check that the
	// plumbing solves what can be solved).
	Actor string `yaml:"actor" json:"actor"`
	// MaxSteps bounds an episode's actions (default 30).
	MaxSteps int `yaml:"max_steps" json:"max_steps"`
	// SystemPrompt is the episode's system message (default
	// agent.DefaultSystem).
	SystemPrompt string `yaml:"system_prompt" json:"system_prompt,omitempty"`
	// ListActions appends the actions the environment offers at reset to
	// the first observation (default true).
	ListActions *bool `yaml:"list_actions" json:"list_actions"`
	// Reward is what an episode's reward is: score (default: the sum of
	// the environment's step rewards, success 1/0 when it gives none) or
	// success (1 when the environment says the task is solved, else 0).
	Reward string `yaml:"reward" json:"reward"`
	// BadStep lists the signals that mark a bad action, in order (default
	// agent.DefaultSignals: invalid, reward_drop; off_gold on request).
	BadStep []string `yaml:"bad_step" json:"bad_step"`
	// Branch is where agent-r and step take the continuation after the
	// first bad step: oracle (the gold actions; needs the episode on the
	// gold path until then), policy (the endpoint continues from the
	// replayed state) or auto (default: oracle when it can, else policy).
	Branch string `yaml:"branch" json:"branch"`
	// Branches is how many policy continuations are tried per episode
	// until one succeeds (default 1).
	Branches int `yaml:"branches" json:"branches"`
	// Revisions is the pool of revision thoughts of agent-r (default
	// DefaultEnvRevisions); one is picked per row by its seed.
	Revisions []string `yaml:"revisions" json:"revisions,omitempty"`
	// Keep is success (default: a revised trajectory is written only when
	// its continuation solves the task) or all.
	Keep string `yaml:"keep" json:"keep"`
	// Reflector is the model that repairs failed episodes (re-rest), with
	// rollout.HelperDefaults.
	Reflector *rollout.EndpointConfig `yaml:"reflector" json:"reflector,omitempty"`
	// MaxSessions is how many environment sessions are open at once
	// (default 4; at most the server's --max-sessions). Not part of the
	// identity.
	MaxSessions int `yaml:"max_sessions" json:"-"`
	// ResetTimeout and StepTimeout bound one reset and one step (defaults
	// 120s and 30s). Not part of the identity.
	ResetTimeout rollout.Duration `yaml:"reset_timeout" json:"-"`
	StepTimeout  rollout.Duration `yaml:"step_timeout" json:"-"`
	// ActionField and TextField are the protocol's field names (default
	// "text"; see rollout/env.Config).
	ActionField string `yaml:"action_field" json:"action_field,omitempty"`
	TextField   string `yaml:"text_field" json:"text_field,omitempty"`
}

// DefaultEnvRevisions are Agent-R's revision thoughts for environment
// episodes: the agent notices that its last action went wrong and turns
// back, as the paper's revision signals do.
var DefaultEnvRevisions = []string{
	"Wait, that action did not help. I went off track; let me go back to where I was before it and take the right step.",
	"I realize my last action was a mistake. Let me reconsider from the state before it.",
	"That did not work as I expected. I should undo my thinking and continue from the step before the mistake.",
}

// environmentKeys are the keys an environment job reads.
var environmentKeys = []string{"name", "seed", "source", "source.", "environment", "environment.", "endpoint", "endpoint.",
	"sampling", "sampling.", "advantage", "advantage.", "output", "output."}

// Client returns the environment client the section describes.
func (e *EnvironmentConfig) Client() (*env.Client, error) {
	return env.NewClient(env.Config{URL: e.URL, Env: e.Env, MaxSessions: e.MaxSessions,
		ResetTimeout: time.Duration(e.ResetTimeout), StepTimeout: time.Duration(e.StepTimeout),
		ActionField: e.ActionField, TextField: e.TextField})
}

// EpisodeOptions are the runner's options for this section.
func (c *Config) EpisodeOptions() agent.Options {
	e := c.Environment
	o := agent.Options{MaxSteps: e.MaxSteps, System: e.SystemPrompt, ListActions: e.ListActions == nil || *e.ListActions,
		Oracle: e.Actor == "oracle", Sampling: c.Sampling.Sampling, Seed: c.Seed,
		// The gold path marks off-gold steps and is the oracle's branch.
		Gold: slices.Contains(e.BadStep, agent.SignalOffGold) || (e.Recipe == RecipeAgentR || e.Recipe == RecipeStep) && e.Branch != "policy"}
	if c.Endpoint != nil {
		o.Model = c.Endpoint.Model
	}
	return o
}

func (e *EnvironmentConfig) defaults(set keyLines) {
	has := func(k string) bool { return set.has("environment." + k) }
	if !has("recipe") {
		e.Recipe = RecipeAgentGRPO
	}
	if !has("actor") {
		e.Actor = "policy"
	}
	if !has("max_steps") {
		e.MaxSteps = agent.DefaultMaxSteps
	}
	if !has("reward") {
		e.Reward = "score"
	}
	if !has("bad_step") {
		e.BadStep = slices.Clone(agent.DefaultSignals)
	}
	if !has("branch") {
		e.Branch = "auto"
	}
	if !has("branches") {
		e.Branches = 1
	}
	if !has("keep") {
		e.Keep = "success"
	}
	if !has("max_sessions") {
		e.MaxSessions = 4
	}
	if !has("reset_timeout") {
		e.ResetTimeout = rollout.Duration(120 * time.Second)
	}
	if !has("step_timeout") {
		e.StepTimeout = rollout.Duration(30 * time.Second)
	}
	if e.Recipe == RecipeAgentR && !has("revisions") {
		e.Revisions = slices.Clone(DefaultEnvRevisions)
	}
}

// validateEnvironment checks a configuration with source.kind environment.
func (c *Config) validateEnvironment(set keyLines) error {
	if err := refuseUnread(set, "an environment job", environmentKeys,
		"name, seed, source, environment, endpoint, sampling, advantage and output"); err != nil {
		return err
	}
	e := c.Environment
	if e == nil {
		return atKey("source.kind", errors.New("source.kind environment needs an environment section (its url and env)"))
	}
	switch {
	case c.Source.Path == "":
		return keyErr("source.path", "missing (a JSON lines file of environment tasks: {\"task\", \"variation\", ...})")
	case e.URL == "":
		return keyErr("environment.url", "missing (the environment server's base URL; scripts/env-server.sh start ENV prints it)")
	case e.Env == "":
		return keyErr("environment.env", "missing (the environment's name, scienceworld or textworld-express for the bundled servers)")
	case !slices.Contains([]string{RecipeAgentGRPO, RecipeAgentR, RecipeStep, RecipeReReST}, e.Recipe):
		return keyErr("environment.recipe", "%q is not grpo, agent-r, step or re-rest", e.Recipe)
	case e.Actor != "policy" && e.Actor != "oracle":
		return keyErr("environment.actor", "%q is neither policy nor oracle", e.Actor)
	case e.MaxSteps < 1:
		return keyErr("environment.max_steps", "must be at least 1, got %d", e.MaxSteps)
	case e.Reward != "score" && e.Reward != "success":
		return keyErr("environment.reward", "%q is neither score nor success", e.Reward)
	case e.Branch != "auto" && e.Branch != "oracle" && e.Branch != "policy":
		return keyErr("environment.branch", "%q is not auto, oracle or policy", e.Branch)
	case e.Branches < 1:
		return keyErr("environment.branches", "must be at least 1, got %d", e.Branches)
	case e.Keep != "success" && e.Keep != "all":
		return keyErr("environment.keep", "%q is neither success nor all", e.Keep)
	case e.MaxSessions < 1:
		return keyErr("environment.max_sessions", "must be at least 1, got %d", e.MaxSessions)
	case e.ResetTimeout <= 0 || e.StepTimeout <= 0:
		return keyErr("environment.step_timeout", "reset_timeout and step_timeout must be positive")
	case c.Sampling.N < 1:
		return keyErr("sampling.n", "must be at least 1, got %d", c.Sampling.N)
	}
	if len(e.BadStep) == 0 {
		return keyErr("environment.bad_step", "empty: name at least one of invalid, reward_drop, off_gold")
	}
	for i, s := range e.BadStep {
		if !agent.ValidSignal(s) {
			return keyErr(fmt.Sprintf("environment.bad_step[%d]", i), "%q is not invalid, reward_drop or off_gold", s)
		}
	}
	if e.Recipe == RecipeAgentR && len(e.Revisions) == 0 {
		return keyErr("environment.revisions", "empty: agent-r needs at least one revision thought")
	}
	needsPolicy := e.Actor == "policy" || e.Branch == "policy"
	if needsPolicy && c.Endpoint == nil {
		return atKey("environment.actor", fmt.Errorf("environment.actor %s needs an endpoint section (the model that acts)", e.Actor))
	}
	if c.Endpoint != nil {
		if err := c.Endpoint.Validate("endpoint", rollout.PolicyDefaults); err != nil {
			return keyed(err)
		}
	}
	if e.Recipe == RecipeReReST && e.Reflector == nil {
		return keyErr("environment.reflector", "missing: re-rest needs a reflector model (base_url and model)")
	}
	if e.Recipe != RecipeReReST && e.Reflector != nil {
		return keyErr("environment.reflector", "only re-rest uses a reflector (recipe is %s)", e.Recipe)
	}
	if e.Actor == "oracle" && e.Recipe != RecipeAgentGRPO {
		return keyErr("environment.actor", "oracle episodes are solved: there is nothing for %s to revise (use the oracle with recipe grpo)", e.Recipe)
	}
	for _, h := range c.helpers() {
		if err := h.ep.Validate(h.key, rollout.HelperDefaults); err != nil {
			return keyed(err)
		}
	}
	if err := c.validateOutputSizes(); err != nil {
		return err
	}
	if err := c.validateSampling(); err != nil {
		return err
	}
	if err := c.validateAdvantage(); err != nil {
		return err
	}
	switch a := c.Advantage; {
	case a.Estimator == rewards.ReinforcePPBaseline:
		return keyErr("advantage.estimator", "reinforce_pp_baseline whitens over a batch of groups, which an environment job does not form: use grpo, dr_grpo, rloo or passk")
	case a.DropZeroVariance:
		return keyErr("advantage.drop_zero_variance", "not supported by an environment job (every episode is a row)")
	case a.GroupBy == rewards.GroupByTrajectory:
		return keyErr("advantage.group_by", "an environment job groups by task; each episode is one rl row")
	}
	if err := c.validateMessageTrack(); err != nil {
		return err
	}
	if c.Output.Dir == "" {
		return keyErr("output.dir", "missing")
	}
	return nil
}
