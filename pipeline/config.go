package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/redraft/redraft/internal/redact"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rewards/judge"
	"github.com/redraft/redraft/rewards/plugin"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/tokenizer"
)

// Config is a run's full specification, read from YAML. Everything that
// changes what a run produces is in here, so its hash identifies the run.
// Relative paths are relative to the working directory.
type Config struct {
	Name      string                  `yaml:"name" json:"name"`
	Seed      int64                   `yaml:"seed" json:"seed"`
	Source    SourceConfig            `yaml:"source" json:"source"`
	Endpoint  *rollout.EndpointConfig `yaml:"endpoint" json:"endpoint,omitempty"`
	Sampling  SamplingConfig          `yaml:"sampling" json:"sampling"`
	Reward    RewardConfig            `yaml:"reward" json:"reward"`
	Advantage rewards.AdvantageConfig `yaml:"advantage" json:"advantage"`
	Episode   EpisodeConfig           `yaml:"episode" json:"episode"`
	Critique  *CritiqueConfig         `yaml:"critique" json:"critique,omitempty"`
	// SelfVerify turns sampling into Trust-but-Verify solve and verify
	// groups.
	SelfVerify *SelfVerifyConfig `yaml:"self_verify" json:"self_verify,omitempty"`
	AgentR     *AgentRConfig     `yaml:"agent_r" json:"agent_r,omitempty"`
	// Environment makes the run an agent job in an interactive environment
	// (source.kind environment), run by agents.Execute.
	Environment *EnvironmentConfig `yaml:"environment" json:"environment,omitempty"`
	// Splice makes the configuration a step-splicing job over labelled
	// steps (the step-splice recipe), run by splice.Execute; it reads
	// only the keys listed in spliceKeys (and mrGSM8KKeys).
	Splice   *SpliceConfig  `yaml:"splice" json:"splice,omitempty"`
	Pipeline PipelineConfig `yaml:"pipeline" json:"pipeline"`
	Output   OutputConfig   `yaml:"output" json:"output"`
}

// SourceConfig says where groups come from.
type SourceConfig struct {
	// Kind is "tasks" (generate from an endpoint), "rollouts" (recorded
	// responses; no generation) or "trajectories" (recorded agent
	// trajectories in OpenAI chat form; see executeTrajectories).
	Kind   string         `yaml:"kind" json:"kind"`
	Path   string         `yaml:"path" json:"path"`
	Format string         `yaml:"format" json:"format,omitempty"`
	Layout rollout.Layout `yaml:"layout" json:"layout,omitempty"`
	Fields rollout.Fields `yaml:"fields" json:"fields"`
	// DataSource is recorded for rows whose input has none.
	DataSource   string `yaml:"data_source" json:"data_source,omitempty"`
	SystemPrompt string `yaml:"system_prompt" json:"system_prompt,omitempty"`
	GenerateIDs  bool   `yaml:"generate_ids" json:"generate_ids,omitempty"`
	MaxLineBytes int    `yaml:"max_line_bytes" json:"max_line_bytes,omitempty"`
	// OnError is fail (default: the first bad record stops the run) or skip
	// (bad records are dropped whole and listed in the manifest). It decides
	// which tasks run, so it is part of the run's identity.
	OnError rollout.OnError `yaml:"on_error" json:"on_error,omitempty"`
	// ExtraFields is ignore (default) or error: what a key that redraft does
	// not read does.
	ExtraFields rollout.ExtraFields `yaml:"extra_fields" json:"extra_fields,omitempty"`
}

// InputOptions maps the section to the readers' options. Shard and resume
// settings come from the command line and the journal, not from here.
func (s SourceConfig) InputOptions() rollout.InputOptions {
	return rollout.InputOptions{
		Path: s.Path, Format: s.Format, Layout: s.Layout, Fields: s.Fields,
		DataSource: s.DataSource, SystemPrompt: s.SystemPrompt, GenerateIDs: s.GenerateIDs,
		MaxLineBytes: s.MaxLineBytes, OnError: s.OnError, ExtraFields: s.ExtraFields,
	}
}

// SamplingConfig is the number of samples per task and the settings sent
// with each request.
type SamplingConfig struct {
	N                int `yaml:"n" json:"n"`
	rollout.Sampling `yaml:",inline" json:",inline"`
}

// RewardConfig selects the grader and the reward components. A component is
// computed when it has a weight, even 0 (then stored but not counted). The
// components, their settings' keys, defaults and checks are declared in
// rewards.Components; their settings' types are the components' own.
type RewardConfig struct {
	// Grader decides the verifiable reward: "math", redraft's math answer
	// engine (rewards/mathgrade); "python": code tasks (tasks with tests)
	// run in the sandbox (rewards/execute, rewards/codegrade) and the
	// others are graded by the math engine; or "plugin": an external
	// verifier (Plugin) scores every response.
	Grader string `yaml:"grader" json:"grader"`
	// Plugin is the external verifier of reward.grader plugin.
	Plugin *PluginConfig `yaml:"plugin" json:"plugin,omitempty"`
	// Execution configures the sandbox code tasks run in (grader python).
	Execution ExecutionConfig `yaml:"execution" json:"execution,omitzero"`
	// Weights maps component names (rewards.Components) to weights; the
	// total is the weighted sum.
	Weights map[string]float64 `yaml:"weights" json:"weights"`
	// Format restricts which ways of stating the answer earn the format
	// reward (extraction rules such as boxed); empty: any.
	Format rewards.Format `yaml:"format" json:"format"`
	// Judges score responses with a rubric (component judge); several are
	// aggregated by JudgeAggregate.
	Judges []JudgeConfig `yaml:"judges" json:"judges,omitempty"`
	// JudgeAggregate is mean (default), median or majority.
	JudgeAggregate string `yaml:"judge_aggregate" json:"judge_aggregate,omitempty"`
	// JudgeCache is a directory for the persistent judge-call cache, keyed
	// by the full request; empty: no cache. It is not part of the run's
	// identity.
	JudgeCache string `yaml:"judge_cache" json:"-"`
	// ScoreBonus configures SCoRe's shaping term alpha * (r2 - r1) on
	// revisions (component score_bonus).
	ScoreBonus rewards.ScoreShaping `yaml:"score_bonus" json:"score_bonus"`
	// SRPO configures the reflection-aware term on revisions (component
	// srpo): flip_bonus for wrong->right (negated for right->wrong), and
	// length_weight * exp(-|L - length_target| / length_target).
	SRPO rewards.SRPOReflection `yaml:"srpo" json:"srpo"`
	// SelfVerify configures the self_verify_gen and self_verify_match
	// components: Require restricts the extraction rules that count as a
	// stated final answer (e.g. [boxed]; empty: any), and Verdict is the
	// kind of verdict read from verifications: label (\boxed{correct} or
	// \boxed{incorrect}, the default) or score (the predicted generation
	// reward, \boxed{1}, \boxed{-0.5} or \boxed{-1}).
	SelfVerify rewards.SelfVerify `yaml:"self_verify" json:"self_verify,omitzero"`
	// Overlong configures DAPO's overlong penalty.
	Overlong rewards.Overlong `yaml:"overlong" json:"overlong"`
}

// PluginConfig is the external verifier's section (package
// rewards/plugin). In the run's identity the values of its env entries are
// left out (NAME=VALUE may hold a secret): their names stay.
type PluginConfig struct {
	plugin.Config `yaml:",inline"`
}

// MarshalJSON implements json.Marshaler: the identity's form.
func (p PluginConfig) MarshalJSON() ([]byte, error) {
	c := p.Config
	c.Env = make([]string, len(p.Env))
	for i, e := range p.Env {
		name, _, _ := strings.Cut(e, "=")
		c.Env[i] = name
	}
	return json.Marshal(c)
}

// ExecutionConfig configures the sandbox of reward.grader python. Its
// settings are not part of the run's identity when they only bound
// resources the host spends (jobs); the limits are, since they decide
// verdicts.
type ExecutionConfig struct {
	// Timeout is each program's wall-clock limit (default 10s); CPU time is
	// limited to the same.
	Timeout rollout.Duration `yaml:"timeout" json:"timeout,omitzero"`
	// MemoryMB is each process's address-space limit in MiB (default
	// 1024).
	MemoryMB int `yaml:"memory_mb" json:"memory_mb,omitzero"`
	// Jobs is how many programs run at once (default: the CPUs).
	Jobs int `yaml:"jobs" json:"-"`
	// UnsafeNoSandbox runs model code WITHOUT isolation when bubblewrap is
	// unavailable (host files and network reachable): trusted code only.
	UnsafeNoSandbox bool `yaml:"unsafe_no_sandbox" json:"unsafe_no_sandbox,omitempty"`
}

// JudgeConfig is one judge model: a name, its endpoint (with
// rollout.HelperDefaults) and its rubric.
type JudgeConfig struct {
	Name                   string `yaml:"name" json:"name"`
	rollout.EndpointConfig `yaml:",inline" json:",inline"`
	// Template is a built-in rubric: correctness (0-10), critique (0/1,
	// needs the reference) or helpfulness (1-10).
	Template string `yaml:"template" json:"template"`
}

// EpisodeConfig turns generation into multi-turn correction episodes:
// attempt, feedback, revision, for up to Turns turns.
type EpisodeConfig struct {
	// Turns is the number of attempts per episode (1: plain sampling).
	Turns int `yaml:"turns" json:"turns"`
	// Feedback is "fixed" (the same instruction after every attempt, SCoRe),
	// "retry_if_wrong" (only after a wrong attempt, RISE) or "execution"
	// (after a wrong attempt, what its verifier found, then the
	// instruction: self-debugging on code tasks).
	Feedback string `yaml:"feedback" json:"feedback,omitempty"`
	// Instruction is the feedback text; default SCoRe's instruction for
	// fixed, RISE's "Your answer is incorrect. Try again." for
	// retry_if_wrong, rollout.ExecutionInstruction for execution.
	Instruction string `yaml:"instruction" json:"instruction,omitempty"`
	// Pairs writes the pairs dataset (SCL/ReVISE): for every revision that
	// flipped correctness, the correct response is chosen over the wrong one,
	// with the original question as the prompt.
	Pairs bool `yaml:"pairs" json:"pairs,omitempty"`
	// SFT writes the sft dataset built from the episodes: "pam" (ISC with
	// Partial Answer Masking: 2 turns, first answer masked, correct finals
	// only), "ptr" (Progressive Thought Refinement: thoughts masked) or
	// "repair" (episodes whose first pass follows a failing attempt: the
	// conversation up to it, failed attempts and feedback masked, the
	// passing revision trained; self-debugging, Re-ReST). "none" or empty:
	// no sft dataset.
	SFT string `yaml:"sft" json:"sft,omitempty"`
}

// SFT modes of EpisodeConfig.SFT.
const (
	SFTPAM    = "pam"
	SFTPTR    = "ptr"
	SFTRepair = "repair"
)

// SelfVerifyConfig configures Trust-but-Verify self-verification: each
// solution is followed by a verification request built from Template.
type SelfVerifyConfig struct {
	// Template is the verification prompt, with {question} and {solution}
	// (default rollout.DefaultVerifyTemplate, which asks for
	// \boxed{correct} or \boxed{incorrect}, or with
	// reward.self_verify.verdict score rollout.DefaultVerifyScoreTemplate).
	Template string `yaml:"template" json:"template"`
}

// CritiqueConfig turns sampling into Critique-GRPO groups: sampling.n - 1
// initial responses and one critique-guided refinement.
type CritiqueConfig struct {
	// Mode is verdict_gt (verdict with the ground truth), verdict (verdict
	// only) or cot (a critic model's critique against the reference).
	Mode string `yaml:"mode" json:"mode"`
	// Critic is the critic model for mode cot (with
	// rollout.HelperDefaults).
	Critic *rollout.EndpointConfig `yaml:"critic" json:"critic,omitempty"`
}

// PipelineConfig sizes the worker pool and the window of groups in flight.
type PipelineConfig struct {
	Workers int `yaml:"workers" json:"workers"`
	Window  int `yaml:"groups_in_flight" json:"groups_in_flight"`
	// MaxFailureRate is the largest fraction of samples whose request may
	// fail for good before the run fails (default DefaultMaxFailureRate):
	// once 200 samples are written and more than this fraction failed,
	// the run stops; at the end it fails when more than this fraction
	// failed. A failed run's rows stay, and redraft run --retry-failed
	// redoes only the failed samples.
	MaxFailureRate *float64 `yaml:"max_failure_rate" json:"max_failure_rate,omitempty"`
}

// DefaultMaxFailureRate is pipeline.max_failure_rate's default: a run where
// one sample in ten failed is not a dataset anyone meant to train on.
const DefaultMaxFailureRate = 0.1

// FailureBound is pipeline.max_failure_rate, default applied.
func (p PipelineConfig) FailureBound() float64 {
	if p.MaxFailureRate == nil {
		return DefaultMaxFailureRate
	}
	return *p.MaxFailureRate
}

// OutputConfig says where and how shards are written.
type OutputConfig struct {
	Dir          string   `yaml:"dir" json:"dir"`
	ShardBytes   ByteSize `yaml:"shard_bytes" json:"shard_bytes"`
	ShardRows    int64    `yaml:"shard_rows" json:"shard_rows"`
	RowGroupRows int64    `yaml:"row_group_rows" json:"row_group_rows"`
	// Tokenizer is a Hugging Face tokenizer.json: the rl rows then carry
	// their token track (prompt_ids, response_ids, ...; schema rl/4) and
	// the sft dataset its own (schema sft/4), rendered with ChatFormat
	// (chatml, qwen3 or llama3; default chatml).
	Tokenizer  string `yaml:"tokenizer" json:"tokenizer,omitempty"`
	ChatFormat string `yaml:"chat_format" json:"chat_format,omitempty"`
}

// Duration is a time.Duration written as "30s" in YAML and JSON; ByteSize a
// size written as 268435456, "256MiB" or "1GB".
type (
	Duration = rollout.Duration
	ByteSize = rollout.ByteSize
)

// LoadConfig reads a YAML configuration. Unknown keys are an error, so a typo
// never silently falls back to a default.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return ParseConfig(path, f)
}

// ParseConfig reads a YAML configuration from r; name is used in errors,
// which are "name:line: key: problem" when they concern one key. A default
// applies only to a key the file leaves out: a key it sets is used as it is,
// or refused (sampling.n: 0 is an error, never 1).
func ParseConfig(name string, r io.Reader) (*Config, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty configuration", name)
		}
		// A value that did not decode (a bad duration or size, a string
		// for a number) is reported by yaml.v3 and our decoders with its
		// line only; the key at that line is added, so the error names it.
		msg := nameKeys(src, err.Error())
		// yaml.v3 quotes the value it could not decode, which may be a
		// base URL with a password.
		if red := redact.Text(msg); red != err.Error() {
			return nil, fmt.Errorf("%s: %s", name, red)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// The same document as nodes: which keys it sets, and on which line.
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(src)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	set := keyLines{}
	if err := scanKeys(&doc, reflect.TypeFor[Config](), "", set); err != nil {
		return nil, set.locate(name, err)
	}
	c.applyDefaults(set)
	if err := c.validate(set); err != nil {
		return nil, set.locate(name, err)
	}
	return &c, nil
}

// defaults fills a splicing job's settings the file leaves out.
func (sp *SpliceConfig) defaults(set keyLines) {
	if !set.has("splice.keep") {
		sp.Keep = "correct"
		if sp.Grade != nil && !*sp.Grade {
			sp.Keep = "all"
		}
	}
}

// applyDefaults fills the settings the file leaves out; set holds the keys
// it sets. A default applies only to an absent key: a key set to 0, "" or
// false keeps that value, and Validate uses it or refuses it with its key
// and line. (Testing for the zero value instead ran n: 0 as 1 and eps: 0 as
// 1e-6.) The values filled in are the ones earlier versions filled in for
// the same absent keys, so an unchanged configuration keeps its identity.
func (c *Config) applyDefaults(set keyLines) {
	absent := func(key string) bool { return !set.has(key) }
	if absent("name") {
		c.Name = "redraft"
	}
	if c.Splice != nil {
		c.Splice.defaults(set)
	}
	if absent("source.layout") {
		c.Source.Layout = rollout.LayoutRedraft
	}
	if absent("sampling.n") {
		c.Sampling.N = 1
	}
	if absent("reward.grader") {
		c.Reward.Grader = "math"
	}
	if c.Reward.Plugin != nil {
		c.Reward.Plugin.ApplyDefaults()
	}
	if absent("reward.weights") {
		c.Reward.Weights = map[string]float64{"verifiable": 1}
	}
	if absent("advantage.estimator") {
		c.Advantage.Estimator = rewards.DefaultEstimator
	}
	if absent("advantage.eps") {
		c.Advantage.Eps = rewards.DefaultEps(c.Advantage.Estimator)
	}
	if c.Advantage.Estimator == rewards.ReinforcePPBaseline {
		if absent("advantage.whiten") {
			c.Advantage.Whiten = rewards.DefaultWhiten
		}
		if absent("advantage.batch_groups") {
			c.Advantage.BatchGroups = rewards.DefaultBatchGroups
		}
	}
	if c.Endpoint != nil {
		c.Endpoint.ApplyDefaults(rollout.PolicyDefaults, set.under("endpoint"))
	}
	for _, h := range c.helpers() {
		h.ep.ApplyDefaults(rollout.HelperDefaults, set.under(h.key))
	}
	if absent("episode.turns") {
		c.Episode.Turns = 1
	}
	if c.Episode.SFT == "none" {
		c.Episode.SFT = ""
	}
	if c.AgentR != nil {
		c.AgentR.defaults(set)
	}
	if c.Environment != nil {
		c.Environment.defaults(set)
	}
	if c.Episode.Turns > 1 && absent("episode.instruction") {
		switch c.Episode.Feedback {
		case "fixed":
			switch c.Episode.SFT {
			case SFTPAM:
				c.Episode.Instruction = rollout.PAMInstruction
			case SFTPTR:
				c.Episode.Instruction = rollout.PTRInstruction
			default:
				c.Episode.Instruction = rollout.SCoReInstruction
			}
		case "retry_if_wrong":
			c.Episode.Instruction = rollout.RISEFeedback
		case "execution":
			c.Episode.Instruction = rollout.ExecutionInstruction
		}
	}
	c.Reward.defaults(set)
	if sv := c.SelfVerify; sv != nil {
		if absent("self_verify.template") {
			sv.Template = rollout.DefaultVerifyTemplate
			if c.Reward.SelfVerify.Verdict == rewards.VerdictScore {
				sv.Template = rollout.DefaultVerifyScoreTemplate
			}
		}
	}
	if c.Output.Tokenizer != "" && absent("output.chat_format") {
		c.Output.ChatFormat = string(tokenizer.FormatChatML)
	}
	if absent("output.shard_bytes") {
		c.Output.ShardBytes = 256 << 20
	}
	if absent("output.row_group_rows") {
		c.Output.RowGroupRows = 4096
	}
	if absent("output.shard_rows") {
		// 32 row groups of 4096: the open shard's footer stays near 1 MiB
		// however well the rows compress.
		c.Output.ShardRows = 32 * c.Output.RowGroupRows
	}
}

// SpliceConfig is a step-splicing job: the settings of redraft splice.
type SpliceConfig struct {
	// Format is prm800k (no model) or mr-gsm8k (a model writes the
	// corrected continuation: needs the endpoint section).
	Format string `yaml:"format" json:"format"`
	Input  string `yaml:"input" json:"input"`
	// Reflection is pool (default) or label-reason (mr-gsm8k).
	Reflection string `yaml:"reflection" json:"reflection,omitempty"`
	// Keep is correct (default: only trajectories whose corrected solution
	// is graded correct against the reference, where one exists; STeP's
	// success filter) or all. With grade false (mr-gsm8k) the default is
	// all.
	Keep string `yaml:"keep" json:"keep,omitempty"`
	// Tokenizer, when set, adds the token track (sft/4).
	Tokenizer  string `yaml:"tokenizer" json:"tokenizer,omitempty"`
	ChatFormat string `yaml:"chat_format" json:"chat_format,omitempty"`
	// Reflections replaces the built-in pool of reflection texts.
	Reflections []string `yaml:"reflections" json:"reflections,omitempty"`
	// Continuation (mr-gsm8k) is how the continuation is asked for:
	// prefill, user-turn or auto (default).
	Continuation string `yaml:"continuation" json:"continuation,omitempty"`
	// ContinueInstruction (mr-gsm8k) is the user turn of user-turn
	// continuations.
	ContinueInstruction string `yaml:"continue_instruction" json:"continue_instruction,omitempty"`
	// MaskPrefix (mr-gsm8k) masks the correct steps before the error too
	// (default: trained, as in STeP).
	MaskPrefix bool `yaml:"mask_prefix" json:"mask_prefix,omitempty"`
	// Grade (mr-gsm8k) grades the continuation against the reference
	// answer (default true; keep: correct needs it).
	Grade *bool `yaml:"grade" json:"grade,omitempty"`
}

// Validate reports the first problem with a configuration, naming its key
// (as a *keyError, so that ParseConfig can add its line).
func (c *Config) Validate() error { return c.validate(nil) }

// validate is Validate knowing which keys the file sets: a setting whose
// default is applied downstream (0 passed on means "the default") is
// refused when the file sets it to 0, rather than silently replaced.
func (c *Config) validate(set keyLines) error {
	zero := func(key string, v int64) bool { return v == 0 && set.has(key) }
	if c.Name == "" {
		return keyErr("name", "empty (leave the key out for the default, redraft)")
	}
	// Choices whose empty value is what "the default" is passed on as: set
	// to "" in the file, they would silently become the default.
	for _, k := range []struct{ key, value, def string }{
		{"source.format", c.Source.Format, "by extension"},
		{"source.on_error", string(c.Source.OnError), "fail"},
		{"source.extra_fields", string(c.Source.ExtraFields), "ignore"},
		{"reward.judge_aggregate", c.Reward.JudgeAggregate, "mean"},
		{"advantage.group_by", c.Advantage.GroupBy, "turn"},
	} {
		if k.value == "" && set.has(k.key) {
			return keyErr(k.key, "empty (leave the key out for the default, %s)", k.def)
		}
	}
	if sp := c.Splice; sp != nil {
		return c.validateSplice(set)
	}
	if c.Source.Kind == "trajectories" {
		return c.validateTrajectories(set)
	}
	if c.Source.Kind == "environment" {
		return c.validateEnvironment(set)
	}
	if c.Environment != nil {
		return atKey("environment", fmt.Errorf("an environment section needs source.kind environment (source.kind is %s)", c.Source.Kind))
	}
	switch c.Source.Kind {
	case "tasks":
		if c.Endpoint == nil {
			return atKey("source.kind", errors.New("source.kind tasks needs an endpoint section"))
		}
		if err := c.Endpoint.Validate("endpoint", rollout.PolicyDefaults); err != nil {
			return keyed(err)
		}
	case "rollouts":
	case "":
		return keyErr("source.kind", "missing (tasks, rollouts, trajectories or environment)")
	default:
		return keyErr("source.kind", "%q is not tasks, rollouts, trajectories or environment", c.Source.Kind)
	}
	if c.Source.Path == "" {
		return keyErr("source.path", "missing")
	}
	switch c.Source.Layout {
	case rollout.LayoutRedraft, rollout.LayoutGSM8KSolutions:
	case rollout.LayoutHumanEval:
		if c.Source.Kind != "tasks" {
			return keyErr("source.layout", "humaneval holds problems, not responses: it needs source.kind tasks")
		}
	default:
		return keyErr("source.layout", "unknown layout %q (want redraft, gsm8k-example-solutions or humaneval)", c.Source.Layout)
	}
	switch c.Source.OnError {
	case "", rollout.OnErrorFail, rollout.OnErrorSkip:
	default:
		return keyErr("source.on_error", "%q is neither fail nor skip", c.Source.OnError)
	}
	switch c.Source.ExtraFields {
	case "", rollout.ExtraFieldsIgnore, rollout.ExtraFieldsError:
	default:
		return keyErr("source.extra_fields", "%q is neither ignore nor error", c.Source.ExtraFields)
	}
	if c.Source.MaxLineBytes < 0 || zero("source.max_line_bytes", int64(c.Source.MaxLineBytes)) {
		return keyErr("source.max_line_bytes", "must be at least 1, got %d (leave the key out for the default, 64 MiB)", c.Source.MaxLineBytes)
	}
	if err := c.validateOutputSizes(); err != nil {
		return err
	}
	if c.Sampling.N < 1 {
		return keyErr("sampling.n", "must be at least 1, got %d", c.Sampling.N)
	}
	if err := c.validateSampling(); err != nil {
		return err
	}
	if c.Sampling.TopLogprobs < 0 {
		return keyErr("sampling.top_logprobs", "must be >= 0, got %d", c.Sampling.TopLogprobs)
	}
	if c.Episode.Turns < 1 {
		return keyErr("episode.turns", "must be at least 1, got %d", c.Episode.Turns)
	}
	if cr := c.Critique; cr != nil {
		switch {
		case c.Source.Kind != "tasks":
			return atKey("critique", errors.New("critique needs source.kind tasks"))
		case c.Episode.Turns > 1:
			return atKey("critique", errors.New("critique and episode.turns > 1 cannot be combined"))
		case c.Sampling.N < 2:
			return atKey("sampling.n", errors.New("critique needs sampling.n >= 2 (n-1 initial responses and one refinement)"))
		case cr.Mode != rollout.CritiqueVerdictGT && cr.Mode != rollout.CritiqueVerdict && cr.Mode != rollout.CritiqueCoT:
			return keyErr("critique.mode", "%q is not verdict_gt, verdict or cot", cr.Mode)
		case cr.Mode == rollout.CritiqueCoT && cr.Critic == nil:
			return keyErr("critique.critic", "base_url and model are required for mode cot")
		}
	}
	for _, h := range c.helpers() {
		if err := h.ep.Validate(h.key, rollout.HelperDefaults); err != nil {
			return keyed(err)
		}
	}
	if c.AgentR != nil {
		if err := c.validateAgentR(set); err != nil {
			return err
		}
	}
	for i, j := range c.Reward.Judges {
		if _, err := judge.BuiltinTemplate(j.Template); err != nil {
			return keyErr(fmt.Sprintf("reward.judges[%d].template", i), "%w", err)
		}
	}
	switch c.Reward.JudgeAggregate {
	case "", "mean", "median", "majority":
	default:
		return keyErr("reward.judge_aggregate", "%q is not mean, median or majority", c.Reward.JudgeAggregate)
	}
	if c.Episode.Turns > 1 {
		if c.Source.Kind != "tasks" {
			return atKey("episode.turns", errors.New("episode.turns > 1 needs source.kind tasks: episodes are generated"))
		}
		if f := c.Episode.Feedback; f != "fixed" && f != "retry_if_wrong" && f != "execution" {
			return keyErr("episode.feedback", "%q is not fixed, retry_if_wrong or execution", f)
		}
		if strings.TrimSpace(c.Episode.Instruction) == "" {
			return keyErr("episode.instruction", "empty (leave the key out for the recipe's instruction)")
		}
	} else if c.Episode.Pairs {
		return atKey("episode.pairs", errors.New("episode.pairs needs episode.turns >= 2"))
	}
	if err := c.validateRecipes(); err != nil {
		return err
	}
	switch c.Reward.Grader {
	case "math":
	case "python":
		if e := c.Reward.Execution; e.Timeout < 0 || e.MemoryMB < 0 || e.Jobs < 0 {
			return keyErr("reward.execution", "timeout, memory_mb and jobs must not be negative")
		}
	case "plugin":
		if c.Reward.Plugin == nil {
			return keyErr("reward.plugin", "missing: reward.grader plugin needs the verifier's command or url")
		}
		if err := c.Reward.Plugin.Validate("reward.plugin"); err != nil {
			return keyed(err)
		}
	default:
		return keyErr("reward.grader", "unknown grader %q (want math, python or plugin)", c.Reward.Grader)
	}
	if c.Reward.Grader != "plugin" && c.Reward.Plugin != nil {
		return keyErr("reward.plugin", "configures the verifier of reward.grader plugin")
	}
	if c.Reward.Grader != "python" && c.Reward.Execution != (ExecutionConfig{}) {
		return keyErr("reward.execution", "configures the sandbox of reward.grader python")
	}
	if err := c.Reward.validateWeights(); err != nil {
		return err
	}
	// Components that need another section.
	if _, ok := c.Reward.Weights["recorded"]; ok && c.Source.Kind != "rollouts" {
		return atKey("reward.weights.recorded", errors.New("reward.weights.recorded needs source.kind: rollouts (the reward each recorded response carried)"))
	}
	if _, ok := c.Reward.Weights["judge"]; ok && len(c.Reward.Judges) == 0 {
		return atKey("reward.weights.judge", errors.New("reward.weights.judge needs reward.judges"))
	}
	if err := c.validateAdvantage(); err != nil {
		return err
	}
	if c.Output.Dir == "" {
		return keyErr("output.dir", "missing")
	}
	if c.Pipeline.Workers < 0 || zero("pipeline.workers", int64(c.Pipeline.Workers)) {
		return keyErr("pipeline.workers", "must be at least 1, got %d (leave the key out for one per core)", c.Pipeline.Workers)
	}
	if c.Pipeline.Window < 0 || zero("pipeline.groups_in_flight", int64(c.Pipeline.Window)) {
		return keyErr("pipeline.groups_in_flight", "must be at least 1, got %d (leave the key out for 64 per worker)", c.Pipeline.Window)
	}
	if r := c.Pipeline.MaxFailureRate; r != nil && !(*r >= 0 && *r <= 1) {
		return keyErr("pipeline.max_failure_rate", "must be a fraction in [0, 1], got %v (leave the key out for the default, %v)", *r, DefaultMaxFailureRate)
	}
	return nil
}

// validateSampling checks the sampling settings sent with each request.
func (c *Config) validateSampling() error {
	if t := c.Sampling.Temperature; t != nil && !(*t >= 0 && !math.IsInf(*t, 0)) {
		return keyErr("sampling.temperature", "must be a finite number >= 0, got %v", *t)
	}
	if p := c.Sampling.TopP; p != nil && !(*p > 0 && *p <= 1) {
		return keyErr("sampling.top_p", "must be in (0, 1], got %v", *p)
	}
	if m := c.Sampling.MaxTokens; m != nil && *m < 1 {
		return keyErr("sampling.max_tokens", "must be at least 1, got %d", *m)
	}
	if k := c.Sampling.TopK; k != nil && *k < -1 {
		return keyErr("sampling.top_k", "must be at least -1 (-1 and 0: no top-k), got %d", *k)
	}
	if m := c.Sampling.MinP; m != nil && !(*m >= 0 && *m <= 1) {
		return keyErr("sampling.min_p", "must be in [0, 1], got %v", *m)
	}
	for _, p := range []struct {
		key string
		v   *float64
	}{{"sampling.presence_penalty", c.Sampling.PresencePenalty}, {"sampling.frequency_penalty", c.Sampling.FrequencyPenalty}} {
		if p.v != nil && !(*p.v >= -2 && *p.v <= 2) {
			return keyErr(p.key, "must be in [-2, 2], got %v", *p.v)
		}
	}
	return nil
}

// validateAdvantage checks the advantage section key by key (so that each
// error names its key), then as rewards validates it.
func (c *Config) validateAdvantage() error {
	a := c.Advantage
	switch a.Estimator {
	case rewards.GRPO, rewards.DrGRPO, rewards.RLOO, rewards.PassK, rewards.ReinforcePPBaseline:
	default:
		return keyErr("advantage.estimator", "unknown advantage estimator %q (want grpo, dr_grpo, rloo, reinforce_pp_baseline or passk)", a.Estimator)
	}
	if a.Eps < 0 || math.IsNaN(a.Eps) || math.IsInf(a.Eps, 0) {
		return keyErr("advantage.eps", "must be a finite number >= 0, got %v", a.Eps)
	}
	if a.Estimator == rewards.ReinforcePPBaseline {
		if a.Whiten != rewards.WhitenToken && a.Whiten != rewards.WhitenSequence {
			return keyErr("advantage.whiten", "%q is neither token nor sequence", a.Whiten)
		}
		if a.BatchGroups < 1 {
			return keyErr("advantage.batch_groups", "must be at least 1, got %d", a.BatchGroups)
		}
	}
	if a.GroupBy != "" && a.GroupBy != rewards.GroupByTurn && a.GroupBy != rewards.GroupByTrajectory {
		return keyErr("advantage.group_by", "%q is neither turn nor trajectory", a.GroupBy)
	}
	if err := a.Validate(); err != nil {
		return atKey("advantage", fmt.Errorf("advantage: %w", err))
	}
	return nil
}

// validateOutputSizes checks the shard sizes: each at least 1 when set (a
// left-out size gets its default; 0 is no longer taken to mean it).
func (c *Config) validateOutputSizes() error {
	o := c.Output
	switch {
	case o.ShardBytes < 1:
		return keyErr("output.shard_bytes", "must be at least 1 byte, got %d", o.ShardBytes)
	case o.RowGroupRows < 1:
		// Before shard_rows, whose default is derived from it.
		return keyErr("output.row_group_rows", "must be at least 1, got %d (leave the key out for the default, 4096)", o.RowGroupRows)
	case o.ShardRows < 1:
		return keyErr("output.shard_rows", "must be at least 1, got %d (leave the key out for the default, 32 row groups)", o.ShardRows)
	}
	return nil
}

// validateSplice checks a splicing job's section and refuses every key the
// job does not read; a choice set to "" is refused rather than taken for
// its default.
func (c *Config) validateSplice(set keyLines) error {
	sp := c.Splice
	if sp.Format != "prm800k" && sp.Format != "mr-gsm8k" {
		return keyErr("splice.format", "%q is neither prm800k nor mr-gsm8k", sp.Format)
	}
	if err := spliceReads(set, sp.Format); err != nil {
		return err
	}
	switch {
	case sp.Input == "":
		return keyErr("splice.input", "missing")
	case sp.Format == "mr-gsm8k" && (c.Endpoint == nil || c.Endpoint.BaseURL == "" || c.Endpoint.Model == ""):
		return atKey("splice.format", errors.New("splice.format mr-gsm8k needs an endpoint section with base_url and model: a model writes the continuations"))
	case (sp.Reflection != "" || set.has("splice.reflection")) && sp.Reflection != "pool" && sp.Reflection != "label-reason":
		return keyErr("splice.reflection", "%q is neither pool nor label-reason", sp.Reflection)
	case (sp.Keep != "" || set.has("splice.keep")) && sp.Keep != "all" && sp.Keep != "correct":
		return keyErr("splice.keep", "%q is neither all nor correct", sp.Keep)
	case (sp.ChatFormat != "" || set.has("splice.chat_format")) && sp.Tokenizer == "":
		return keyErr("splice.chat_format", "needs splice.tokenizer")
	case set.has("splice.chat_format") && !slices.Contains([]string{"chatml", "qwen3", "llama3"}, sp.ChatFormat):
		return keyErr("splice.chat_format", "%q is not chatml, qwen3 or llama3", sp.ChatFormat)
	case (sp.Continuation != "" || set.has("splice.continuation")) && !rollout.ValidContinueMode(sp.Continuation):
		return keyErr("splice.continuation", "%q is not prefill, user-turn or auto", sp.Continuation)
	case sp.Keep == "correct" && sp.Grade != nil && !*sp.Grade:
		return keyErr("splice.keep", "correct needs splice.grade")
	case set.has("splice.reflections") && len(sp.Reflections) == 0:
		return keyErr("splice.reflections", "empty (leave the key out for the built-in pool)")
	}
	for i, r := range sp.Reflections {
		if strings.TrimSpace(r) == "" {
			return keyErr(fmt.Sprintf("splice.reflections[%d]", i), "empty")
		}
	}
	if sp.Format == "mr-gsm8k" {
		if err := c.Endpoint.Validate("endpoint", rollout.PolicyDefaults); err != nil {
			return keyed(err)
		}
		return c.validateSampling()
	}
	return nil
}

// spliceKeys are the keys every splicing job reads; whole sections end in
// ".". mrGSM8KKeys are the ones a model adds (mr-gsm8k), and mrGSM8KOnly
// the splice keys only mr-gsm8k reads.
var (
	spliceKeys  = []string{"name", "seed", "splice", "splice.", "output", "output.dir", "output.shard_bytes", "output.shard_rows", "output.row_group_rows"}
	mrGSM8KKeys = []string{"endpoint", "endpoint.", "sampling", "sampling.temperature", "sampling.top_p", "sampling.max_tokens"}
	mrGSM8KOnly = []string{"splice.continuation", "splice.continue_instruction", "splice.mask_prefix", "splice.grade", "splice.reflection"}
)

// agentRKeys are the keys an Agent-R job reads: it samples solutions and
// branches (source, endpoint, sampling), judges steps (agent_r, the judge
// cache), grades with the math grader and writes sft shards.
var agentRKeys = []string{"name", "seed", "source", "source.", "endpoint", "endpoint.", "sampling", "sampling.", "agent_r", "agent_r.",
	"reward", "reward.judge_cache", "output", "output.dir", "output.shard_bytes", "output.shard_rows", "output.row_group_rows"}

// spliceReads refuses a key that a splicing job of format would not read.
func spliceReads(set keyLines, format string) error {
	if format == "mr-gsm8k" {
		return refuseUnread(set, "an mr-gsm8k splice job", append(slices.Clone(spliceKeys), mrGSM8KKeys...),
			"splice.*, name, seed, output's dir, shard_bytes, shard_rows and row_group_rows, endpoint.* and sampling's temperature, top_p and max_tokens")
	}
	for _, k := range mrGSM8KOnly {
		if set.has(k) {
			return keyErr(k, "only an mr-gsm8k splice reads it (a model writes its continuations); splice.format is %s", format)
		}
	}
	return refuseUnread(set, "a "+format+" splice job", spliceKeys,
		"splice's format, input, reflections, tokenizer and chat_format, name, seed and output's dir, shard_bytes, shard_rows and row_group_rows")
}

// refuseUnread refuses the first key in the file that a job does not read
// (reads lists them; an entry ending in "." stands for a whole section), so
// that a setting never loads without error and then has no effect (a
// sampling.temperature a splice would not send, an output.tokenizer an
// Agent-R job would not use).
func refuseUnread(set keyLines, job string, reads []string, what string) error {
	var unread []string
	for key := range set {
		read := false
		for _, k := range reads {
			if key == k || strings.HasSuffix(k, ".") && strings.HasPrefix(key, k) {
				read = true
				break
			}
		}
		if !read {
			unread = append(unread, key)
		}
	}
	if len(unread) == 0 {
		return nil
	}
	slices.SortFunc(unread, func(a, b string) int {
		if set[a] != set[b] {
			return set[a] - set[b]
		}
		return len(a) - len(b) // a section before its keys
	})
	key := unread[0]
	section, _, _ := strings.Cut(key, ".")
	if slices.Contains(reads, section) {
		return keyErr(key, "%s does not read this key (it reads %s)", job, what)
	}
	return keyErr(section, "%s does not read this section (it reads %s)", job, what)
}

// validateRecipes checks the settings of the self-verify, PAM and PTR
// recipes and what they cannot be combined with.
func (c *Config) validateRecipes() error {
	switch c.Episode.SFT {
	case "":
	case SFTPAM, SFTPTR:
		switch {
		case c.Episode.SFT == SFTPAM && c.Episode.Turns != 2:
			return atKey("episode.sft", errors.New("episode.sft pam needs episode.turns 2 (answer, then self-verification and modified answer)"))
		case c.Episode.Turns < 2:
			return atKey("episode.sft", errors.New("episode.sft ptr needs episode.turns >= 2 (an attempt and at least one refinement round)"))
		case c.Episode.Feedback != "fixed":
			return atKey("episode.sft", fmt.Errorf("episode.sft %s needs episode.feedback fixed: every episode must run all its turns", c.Episode.SFT))
		case c.Advantage.DropZeroVariance:
			// The sft rows are built from the rl rows written, and dropped
			// groups are never written.
			return atKey("episode.sft", fmt.Errorf("episode.sft %s cannot be combined with advantage.drop_zero_variance", c.Episode.SFT))
		}
	case SFTRepair:
		// Any feedback: execution and retry_if_wrong end an episode at its
		// first pass, fixed runs every turn and the row stops at the first
		// pass.
		switch {
		case c.Episode.Turns < 2:
			return atKey("episode.sft", errors.New("episode.sft repair needs episode.turns >= 2 (an attempt and at least one revision)"))
		case c.Advantage.DropZeroVariance:
			return atKey("episode.sft", errors.New("episode.sft repair cannot be combined with advantage.drop_zero_variance"))
		}
	default:
		return atKey("episode.sft", fmt.Errorf("episode.sft: %q is not pam, ptr, repair or none", c.Episode.SFT))
	}
	if o := c.Output; o.Tokenizer != "" {
		switch tokenizer.Format(o.ChatFormat) {
		case tokenizer.FormatChatML, tokenizer.FormatQwen3, tokenizer.FormatLlama3:
		default:
			return atKey("output.chat_format", fmt.Errorf("output.chat_format: %q is not chatml, qwen3 or llama3", o.ChatFormat))
		}
	} else if o.ChatFormat != "" {
		return atKey("output.chat_format", errors.New("output.chat_format needs output.tokenizer"))
	}
	_, gen := c.Reward.Weights[rewards.SelfVerifyGen]
	_, match := c.Reward.Weights[rewards.SelfVerifyMatch]
	sv := c.SelfVerify
	if sv == nil {
		if gen || match {
			return atKey("reward.weights", errors.New("reward.weights: self_verify_gen and self_verify_match need the self_verify section"))
		}
		return nil
	}
	switch {
	case c.Source.Kind != "tasks":
		return atKey("self_verify", errors.New("self_verify needs source.kind tasks"))
	case c.Episode.Turns > 1 || c.Critique != nil:
		return atKey("self_verify", errors.New("self_verify cannot be combined with episode.turns > 1 or critique"))
	case !gen || !match:
		return atKey("self_verify", errors.New("self_verify needs both self_verify_gen and self_verify_match in reward.weights (a weight of 0 stores a component without counting it)"))
	case c.Advantage.GroupBy == rewards.GroupByTrajectory:
		return atKey("self_verify", errors.New("self_verify keeps solve and verify groups separate; advantage.group_by trajectory would merge them"))
	case !strings.Contains(sv.Template, "{solution}") || !strings.Contains(sv.Template, "{question}"):
		return atKey("self_verify.template", errors.New("self_verify.template: must contain {question} and {solution}"))
	}
	for k := range c.Reward.Weights {
		switch k {
		case rewards.SelfVerifyGen, rewards.SelfVerifyMatch, "overlong":
		default:
			// Other parts would read a verification's verdict as an answer.
			return atKey("reward.weights", fmt.Errorf("reward.weights.%s: self_verify rows take only self_verify_gen, self_verify_match and overlong", k))
		}
	}
	return nil
}

// Identity returns the configuration as canonical JSON and its sha256. Only
// what decides the rows is in it: the output directory, pool sizes, server
// URLs, concurrency, timeouts, retries and breakers change where and how fast
// rows are made, not what they are, and are left out. The model and every
// generation setting are in.
func (c *Config) Identity() (json.RawMessage, string, error) {
	id := *c
	// Spelling out a default must not change the identity of a run that
	// left it out (and of runs made before the key existed).
	if id.Source.OnError == rollout.OnErrorFail {
		id.Source.OnError = ""
	}
	if id.Source.ExtraFields == rollout.ExtraFieldsIgnore {
		id.Source.ExtraFields = ""
	}
	id.Output.Dir = ""
	id.Pipeline = PipelineConfig{}
	// Of an endpoint section, policy or helper, only the model.
	model := func(e *rollout.EndpointConfig) *rollout.EndpointConfig {
		return &rollout.EndpointConfig{Model: e.Model}
	}
	if c.Endpoint != nil {
		id.Endpoint = model(c.Endpoint)
	}
	if cr := c.Critique; cr != nil && cr.Critic != nil {
		id.Critique = &CritiqueConfig{Mode: cr.Mode, Critic: model(cr.Critic)}
	}
	if a := c.AgentR; a != nil && a.StepJudge != nil {
		ar := *a
		ar.StepJudge = model(a.StepJudge)
		id.AgentR = &ar
	}
	if e := c.Environment; e != nil && e.Reflector != nil {
		en := *e
		en.Reflector = model(e.Reflector)
		id.Environment = &en
	}
	if len(c.Reward.Judges) > 0 {
		id.Reward.Judges = make([]JudgeConfig, len(c.Reward.Judges))
		for i, j := range c.Reward.Judges {
			id.Reward.Judges[i] = JudgeConfig{Name: j.Name, EndpointConfig: *model(&j.EndpointConfig), Template: j.Template}
		}
	}
	b, err := json.Marshal(id)
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(sum[:]), nil
}
