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
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/redraft/redraft/export/tokenizer"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rewards/judge"
	"github.com/redraft/redraft/rollout"
)

// Config is a run's full specification, read from YAML. Everything that
// changes what a run produces is in here, so its hash identifies the run.
// Relative paths are relative to the working directory.
type Config struct {
	Name      string                  `yaml:"name" json:"name"`
	Seed      int64                   `yaml:"seed" json:"seed"`
	Source    SourceConfig            `yaml:"source" json:"source"`
	Endpoint  *EndpointConfig         `yaml:"endpoint" json:"endpoint,omitempty"`
	Sampling  SamplingConfig          `yaml:"sampling" json:"sampling"`
	Reward    RewardConfig            `yaml:"reward" json:"reward"`
	Advantage rewards.AdvantageConfig `yaml:"advantage" json:"advantage"`
	Episode   EpisodeConfig           `yaml:"episode" json:"episode"`
	Critique  *CritiqueConfig         `yaml:"critique" json:"critique,omitempty"`
	// SelfVerify turns sampling into Trust-but-Verify solve and verify
	// groups.
	SelfVerify *SelfVerifyConfig `yaml:"self_verify" json:"self_verify,omitempty"`
	AgentR     *AgentRConfig     `yaml:"agent_r" json:"agent_r,omitempty"`
	// Splice makes the configuration a step-splicing job over labelled
	// steps (the step-splice recipe): redraft run hands it to redraft
	// splice; the other sections but output and endpoint do not apply.
	Splice   *SpliceConfig  `yaml:"splice" json:"splice,omitempty"`
	Pipeline PipelineConfig `yaml:"pipeline" json:"pipeline"`
	Output   OutputConfig   `yaml:"output" json:"output"`
}

// SourceConfig says where groups come from.
type SourceConfig struct {
	// Kind is "tasks" (generate from an endpoint) or "rollouts" (recorded
	// responses; no generation).
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

// EndpointConfig is one OpenAI-compatible endpoint, or several serving the
// same model. The API key is read from the environment variable named by
// APIKeyEnv and is never stored. See rollout.Endpoints for what is retried
// and how the circuit breakers behave.
type EndpointConfig struct {
	// BaseURL is one base URL; BaseURLs is several, each request going to
	// the one with the fewest requests in flight. Exactly one of the two.
	BaseURL   string   `yaml:"base_url" json:"base_url,omitempty"`
	BaseURLs  []string `yaml:"base_urls" json:"base_urls,omitempty"`
	Model     string   `yaml:"model" json:"model"`
	APIKeyEnv string   `yaml:"api_key_env" json:"api_key_env"`
	// MaxInFlight bounds the requests outstanding over all URLs (default 64).
	MaxInFlight int `yaml:"max_in_flight" json:"max_in_flight"`
	// Timeout bounds one attempt of a request (default 10m).
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// MaxInFlightPerEndpoint bounds the requests outstanding at one URL
	// (default: max_in_flight, no bound of its own).
	MaxInFlightPerEndpoint int `yaml:"max_in_flight_per_endpoint" json:"max_in_flight_per_endpoint"`
	// Retries is the most attempts per request, the first included (default
	// 6; 1 never retries). Waiting for open circuit breakers uses attempts.
	Retries int `yaml:"retries" json:"retries"`
	// BackoffInitial and BackoffMax shape the wait before retry k, uniform in
	// [0, min(backoff_max, backoff_initial * 2^(k-1))] (defaults 500ms, 30s).
	BackoffInitial Duration `yaml:"backoff_initial" json:"backoff_initial"`
	BackoffMax     Duration `yaml:"backoff_max" json:"backoff_max"`
	// BreakerFailures consecutive server or network failures open a URL's
	// circuit breaker (default 5); BreakerCooldown later one probe request is
	// let through, whose success closes it (default 10s).
	BreakerFailures int      `yaml:"breaker_failures" json:"breaker_failures"`
	BreakerCooldown Duration `yaml:"breaker_cooldown" json:"breaker_cooldown"`
}

// URLs returns the configured base URLs, one or several.
func (e *EndpointConfig) URLs() []string {
	if e.BaseURL != "" {
		return []string{e.BaseURL}
	}
	return e.BaseURLs
}

// defaults fills the retry and breaker settings left out.
func (e *EndpointConfig) defaults() {
	if e.MaxInFlightPerEndpoint == 0 {
		e.MaxInFlightPerEndpoint = e.MaxInFlight
	}
	if e.Retries == 0 {
		e.Retries = rollout.DefaultMaxAttempts
	}
	if e.BackoffInitial == 0 {
		e.BackoffInitial = Duration(rollout.DefaultBackoffInitial)
	}
	if e.BackoffMax == 0 {
		e.BackoffMax = Duration(rollout.DefaultBackoffMax)
	}
	if e.BreakerFailures == 0 {
		e.BreakerFailures = rollout.DefaultBreakerFailures
	}
	if e.BreakerCooldown == 0 {
		e.BreakerCooldown = Duration(rollout.DefaultBreakerCooldown)
	}
}

// validateFleet checks the URLs and the retry and breaker settings.
func (e *EndpointConfig) validateFleet() error {
	switch {
	case e.BaseURL == "" && len(e.BaseURLs) == 0:
		return errors.New("endpoint.base_url: missing (or give several as endpoint.base_urls)")
	case e.BaseURL != "" && len(e.BaseURLs) > 0:
		return errors.New("endpoint: give base_url or base_urls, not both")
	}
	key := "endpoint.base_url"
	if e.BaseURL == "" {
		key = "endpoint.base_urls"
	}
	seen := map[string]bool{}
	for _, raw := range e.URLs() {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s: %q is not an http(s) URL like http://localhost:8000/v1", key, raw)
		}
		if seen[raw] {
			return fmt.Errorf("%s: %q is listed twice", key, raw)
		}
		seen[raw] = true
	}
	switch {
	case e.MaxInFlightPerEndpoint < 0:
		return errors.New("endpoint.max_in_flight_per_endpoint: must be >= 0")
	case e.Retries < 1:
		return errors.New("endpoint.retries: must be at least 1 (the first attempt)")
	case e.BackoffInitial < 0 || e.BackoffMax < e.BackoffInitial:
		return errors.New("endpoint: need 0 <= backoff_initial <= backoff_max")
	case e.BreakerFailures < 1:
		return errors.New("endpoint.breaker_failures: must be at least 1")
	case e.BreakerCooldown < 0 || e.Timeout < 0:
		return errors.New("endpoint: breaker_cooldown and timeout must be >= 0")
	}
	return nil
}

// SamplingConfig is the number of samples per task and the settings sent
// with each request.
type SamplingConfig struct {
	N                int `yaml:"n" json:"n"`
	rollout.Sampling `yaml:",inline" json:",inline"`
}

// RewardConfig selects the grader and the reward components. A component is
// computed when it has a weight, even 0 (then stored but not counted).
type RewardConfig struct {
	// Grader is "math", redraft's math answer engine (rewards/mathgrade).
	Grader string `yaml:"grader" json:"grader"`
	// Weights maps component names (verifiable, consensus, format,
	// overlong) to weights; the total is the weighted sum.
	Weights map[string]float64 `yaml:"weights" json:"weights"`
	// Format restricts which ways of stating the answer earn the format
	// reward (extraction rules such as boxed); empty: any.
	Format struct {
		Require []string `yaml:"require" json:"require,omitempty"`
	} `yaml:"format" json:"format"`
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
	ScoreBonus struct {
		Alpha float64 `yaml:"alpha" json:"alpha,omitempty"`
	} `yaml:"score_bonus" json:"score_bonus"`
	// SRPO configures the reflection-aware term on revisions (component
	// srpo): flip_bonus for wrong->right (negated for right->wrong), and
	// length_weight * exp(-|L - length_target| / length_target).
	SRPO struct {
		FlipBonus    float64 `yaml:"flip_bonus" json:"flip_bonus,omitempty"`
		LengthWeight float64 `yaml:"length_weight" json:"length_weight,omitempty"`
		LengthTarget int     `yaml:"length_target" json:"length_target,omitempty"`
	} `yaml:"srpo" json:"srpo"`
	// SelfVerify configures the self_verify_gen and self_verify_match
	// components: Require restricts the extraction rules that count as a
	// stated final answer (e.g. [boxed]; empty: any), and Verdict is the
	// kind of verdict read from verifications: label (\boxed{correct} or
	// \boxed{incorrect}, the default) or score (the predicted generation
	// reward, \boxed{1}, \boxed{-0.5} or \boxed{-1}).
	SelfVerify struct {
		Require []string `yaml:"require" json:"require,omitempty"`
		Verdict string   `yaml:"verdict" json:"verdict,omitempty"`
	} `yaml:"self_verify" json:"self_verify,omitzero"`
	// Overlong configures DAPO's overlong penalty.
	Overlong struct {
		MaxTokens int `yaml:"max_tokens" json:"max_tokens,omitempty"`
		Buffer    int `yaml:"buffer" json:"buffer,omitempty"`
	} `yaml:"overlong" json:"overlong"`
}

// Parts returns the reward parts the weights ask for, in a fixed order.
func (r RewardConfig) Parts(g rewards.Grader) []rewards.Part {
	var parts []rewards.Part
	if _, ok := r.Weights["verifiable"]; ok {
		parts = append(parts, rewards.Verifiable{})
	}
	if _, ok := r.Weights["consensus"]; ok {
		parts = append(parts, rewards.Consensus{Grader: g})
	}
	if _, ok := r.Weights["format"]; ok {
		parts = append(parts, rewards.Format{Require: r.Format.Require})
	}
	if _, ok := r.Weights["recorded"]; ok {
		parts = append(parts, rewards.Recorded{})
	}
	if _, ok := r.Weights["overlong"]; ok {
		parts = append(parts, rewards.Overlong{MaxTokens: r.Overlong.MaxTokens, Buffer: r.Overlong.Buffer})
	}
	if _, ok := r.Weights["score_bonus"]; ok {
		parts = append(parts, rewards.ScoreShaping{Alpha: r.ScoreBonus.Alpha})
	}
	if _, ok := r.Weights["srpo"]; ok {
		parts = append(parts, rewards.SRPOReflection{FlipBonus: r.SRPO.FlipBonus, LengthWeight: r.SRPO.LengthWeight, LengthTarget: r.SRPO.LengthTarget})
	}
	_, gen := r.Weights[rewards.SelfVerifyGen]
	_, match := r.Weights[rewards.SelfVerifyMatch]
	if gen || match {
		// One part writes both components.
		parts = append(parts, rewards.SelfVerify{Grader: g, Require: r.SelfVerify.Require, Verdict: r.SelfVerify.Verdict})
	}
	return parts
}

// ModelEndpoint is a helper model (judge, critic) behind an
// OpenAI-compatible endpoint.
type ModelEndpoint struct {
	BaseURL   string   `yaml:"base_url" json:"base_url"`
	Model     string   `yaml:"model" json:"model"`
	APIKeyEnv string   `yaml:"api_key_env" json:"api_key_env,omitempty"`
	Timeout   Duration `yaml:"timeout" json:"timeout,omitempty"`
}

// Policy returns the endpoint's policy; the key comes from APIKeyEnv
// (default OPENAI_API_KEY).
func (m ModelEndpoint) Policy() rollout.Policy {
	keyEnv := m.APIKeyEnv
	if keyEnv == "" {
		keyEnv = "OPENAI_API_KEY"
	}
	return rollout.NewOpenAIPolicy(rollout.EndpointConfig{BaseURL: m.BaseURL, Model: m.Model, APIKey: os.Getenv(keyEnv), Timeout: time.Duration(m.Timeout)})
}

// JudgeConfig is one judge model.
type JudgeConfig struct {
	Name          string `yaml:"name" json:"name"`
	ModelEndpoint `yaml:",inline" json:",inline"`
	// Template is a built-in rubric: correctness (0-10), critique (0/1,
	// needs the reference) or helpfulness (1-10).
	Template string `yaml:"template" json:"template"`
}

// EpisodeConfig turns generation into multi-turn correction episodes:
// attempt, feedback, revision, for up to Turns turns.
type EpisodeConfig struct {
	// Turns is the number of attempts per episode (1: plain sampling).
	Turns int `yaml:"turns" json:"turns"`
	// Feedback is "fixed" (the same instruction after every attempt, SCoRe)
	// or "retry_if_wrong" (only after a wrong attempt, RISE).
	Feedback string `yaml:"feedback" json:"feedback,omitempty"`
	// Instruction is the feedback text; default SCoRe's instruction for
	// fixed, RISE's "Your answer is incorrect. Try again." for retry_if_wrong.
	Instruction string `yaml:"instruction" json:"instruction,omitempty"`
	// Pairs writes the pairs dataset (SCL/ReVISE): for every revision that
	// flipped correctness, the correct response is chosen over the wrong one,
	// with the original question as the prompt.
	Pairs bool `yaml:"pairs" json:"pairs,omitempty"`
	// SFT writes the sft dataset built from the episodes: "pam" (ISC with
	// Partial Answer Masking: 2 turns, first answer masked, correct finals
	// only) or "ptr" (Progressive Thought Refinement: thoughts masked).
	// "none" or empty: no sft dataset.
	SFT string `yaml:"sft" json:"sft,omitempty"`
}

// SFT modes of EpisodeConfig.SFT.
const (
	SFTPAM = "pam"
	SFTPTR = "ptr"
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
	// Critic is the critic model for mode cot.
	Critic *ModelEndpoint `yaml:"critic" json:"critic,omitempty"`
}

// PipelineConfig sizes the worker pool and the window of groups in flight.
type PipelineConfig struct {
	Workers int `yaml:"workers" json:"workers"`
	Window  int `yaml:"groups_in_flight" json:"groups_in_flight"`
}

// OutputConfig says where and how shards are written.
type OutputConfig struct {
	Dir          string   `yaml:"dir" json:"dir"`
	ShardBytes   ByteSize `yaml:"shard_bytes" json:"shard_bytes"`
	ShardRows    int64    `yaml:"shard_rows" json:"shard_rows"`
	RowGroupRows int64    `yaml:"row_group_rows" json:"row_group_rows"`
	// Tokenizer is a Hugging Face tokenizer.json: the rl rows then carry
	// their token track (prompt_ids, response_ids, ...; schema rl/3) and
	// the sft dataset its own (schema sft/2), rendered with ChatFormat
	// (chatml, qwen3 or llama3; default chatml).
	Tokenizer  string `yaml:"tokenizer" json:"tokenizer,omitempty"`
	ChatFormat string `yaml:"chat_format" json:"chat_format,omitempty"`
}

// Duration is a time.Duration written as "30s" in YAML and JSON.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 30s or 2m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// ByteSize is a size written as 268435456, "256MiB" or "1GB".
type ByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.m
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return fmt.Errorf("line %d: %q is not a size like 256MiB", n.Line, n.Value)
	}
	*b = ByteSize(v * mult)
	return nil
}

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

// ParseConfig reads a YAML configuration from r; name is used in errors.
func ParseConfig(name string, r io.Reader) (*Config, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty configuration", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
	if c.Name == "" {
		c.Name = "redraft"
	}
	if c.Source.Layout == "" {
		c.Source.Layout = rollout.LayoutRedraft
	}
	if c.Sampling.N == 0 {
		c.Sampling.N = 1
	}
	if c.Reward.Grader == "" {
		c.Reward.Grader = "math"
	}
	if c.Reward.Weights == nil {
		c.Reward.Weights = map[string]float64{"verifiable": 1}
	}
	if c.Advantage.Estimator == "" {
		c.Advantage.Estimator = rewards.GRPO
	}
	if c.Advantage.Eps == 0 {
		// verl's values: 1e-6 added to the std for GRPO, 1e-8 added to the
		// variance when whitening.
		c.Advantage.Eps = 1e-6
		if c.Advantage.Estimator == rewards.ReinforcePPBaseline {
			c.Advantage.Eps = 1e-8
		}
	}
	if c.Advantage.Estimator == rewards.ReinforcePPBaseline {
		if c.Advantage.Whiten == "" {
			c.Advantage.Whiten = rewards.WhitenToken
		}
		if c.Advantage.BatchGroups == 0 {
			c.Advantage.BatchGroups = 128
		}
	}
	if c.Endpoint != nil {
		if c.Endpoint.APIKeyEnv == "" {
			c.Endpoint.APIKeyEnv = "OPENAI_API_KEY"
		}
		if c.Endpoint.MaxInFlight == 0 {
			c.Endpoint.MaxInFlight = 64
		}
		if c.Endpoint.Timeout == 0 {
			c.Endpoint.Timeout = Duration(10 * time.Minute)
		}
		c.Endpoint.defaults()
	}
	if c.Episode.Turns == 0 {
		c.Episode.Turns = 1
	}
	if c.Episode.SFT == "none" {
		c.Episode.SFT = ""
	}
	if c.AgentR != nil {
		c.AgentR.defaults()
	}
	if c.Episode.Turns > 1 && c.Episode.Instruction == "" {
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
		}
	}
	if _, ok := c.Reward.Weights["srpo"]; ok && c.Reward.SRPO.FlipBonus == 0 {
		c.Reward.SRPO.FlipBonus = 0.5
	}
	if _, ok := c.Reward.Weights["score_bonus"]; ok && c.Reward.ScoreBonus.Alpha == 0 {
		c.Reward.ScoreBonus.Alpha = 10
	}
	if sv := c.SelfVerify; sv != nil {
		if c.Reward.SelfVerify.Verdict == "" {
			c.Reward.SelfVerify.Verdict = rewards.VerdictLabel
		}
		if sv.Template == "" {
			sv.Template = rollout.DefaultVerifyTemplate
			if c.Reward.SelfVerify.Verdict == rewards.VerdictScore {
				sv.Template = rollout.DefaultVerifyScoreTemplate
			}
		}
	}
	if c.Output.Tokenizer != "" && c.Output.ChatFormat == "" {
		c.Output.ChatFormat = string(tokenizer.FormatChatML)
	}
	if c.Output.ShardBytes == 0 {
		c.Output.ShardBytes = 256 << 20
	}
	if c.Output.RowGroupRows == 0 {
		c.Output.RowGroupRows = 4096
	}
	if c.Output.ShardRows == 0 {
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
	// Keep is all (default) or correct (mr-gsm8k).
	Keep string `yaml:"keep" json:"keep,omitempty"`
	// Tokenizer, when set, adds the token track (sft/2).
	Tokenizer  string `yaml:"tokenizer" json:"tokenizer,omitempty"`
	ChatFormat string `yaml:"chat_format" json:"chat_format,omitempty"`
}

// Validate reports the first problem with a configuration, naming its key.
func (c *Config) Validate() error {
	if sp := c.Splice; sp != nil {
		switch {
		case sp.Format != "prm800k" && sp.Format != "mr-gsm8k":
			return fmt.Errorf("splice.format: %q is neither prm800k nor mr-gsm8k", sp.Format)
		case sp.Input == "":
			return errors.New("splice.input: missing")
		case sp.Format == "mr-gsm8k" && (c.Endpoint == nil || c.Endpoint.BaseURL == "" || c.Endpoint.Model == ""):
			return errors.New("splice.format mr-gsm8k needs an endpoint section with base_url and model: a model writes the continuations")
		case c.Source.Kind != "" || c.Episode.Turns > 1 || c.Critique != nil || c.SelfVerify != nil || c.AgentR != nil:
			return errors.New("splice: a splicing job has no source, episode, critique, self_verify or agent_r section")
		}
		return nil
	}
	switch c.Source.Kind {
	case "tasks":
		if c.Endpoint == nil {
			return errors.New("source.kind tasks needs an endpoint section")
		}
		if err := c.Endpoint.validateFleet(); err != nil {
			return err
		}
		if c.Endpoint.Model == "" {
			return errors.New("endpoint.model: missing")
		}
		if c.Endpoint.MaxInFlight < 1 {
			return errors.New("endpoint.max_in_flight: must be at least 1")
		}
	case "rollouts":
	case "":
		return errors.New("source.kind: missing (tasks or rollouts)")
	default:
		return fmt.Errorf("source.kind: %q is neither tasks nor rollouts", c.Source.Kind)
	}
	if c.Source.Path == "" {
		return errors.New("source.path: missing")
	}
	switch c.Source.Layout {
	case rollout.LayoutRedraft, rollout.LayoutGSM8KSolutions:
	default:
		return fmt.Errorf("source.layout: unknown layout %q (want redraft or gsm8k-example-solutions)", c.Source.Layout)
	}
	switch c.Source.OnError {
	case "", rollout.OnErrorFail, rollout.OnErrorSkip:
	default:
		return fmt.Errorf("source.on_error: %q is neither fail nor skip", c.Source.OnError)
	}
	switch c.Source.ExtraFields {
	case "", rollout.ExtraFieldsIgnore, rollout.ExtraFieldsError:
	default:
		return fmt.Errorf("source.extra_fields: %q is neither ignore nor error", c.Source.ExtraFields)
	}
	if c.Source.MaxLineBytes < 0 {
		return errors.New("source.max_line_bytes: must be >= 0 (0: the default, 64 MiB)")
	}
	if c.Output.ShardRows < 0 || c.Output.RowGroupRows < 0 || c.Output.ShardBytes < 0 {
		return errors.New("output.shard_bytes, shard_rows and row_group_rows: must be >= 0 (0: the default)")
	}
	if c.Sampling.N < 1 {
		return errors.New("sampling.n: must be at least 1")
	}
	if t := c.Sampling.Temperature; t != nil && *t < 0 {
		return errors.New("sampling.temperature: must be >= 0")
	}
	if p := c.Sampling.TopP; p != nil && (*p <= 0 || *p > 1) {
		return errors.New("sampling.top_p: must be in (0, 1]")
	}
	if m := c.Sampling.MaxTokens; m != nil && *m < 1 {
		return errors.New("sampling.max_tokens: must be at least 1")
	}
	if c.Episode.Turns < 1 {
		return errors.New("episode.turns: must be at least 1")
	}
	if cr := c.Critique; cr != nil {
		switch {
		case c.Source.Kind != "tasks":
			return errors.New("critique needs source.kind tasks")
		case c.Episode.Turns > 1:
			return errors.New("critique and episode.turns > 1 cannot be combined")
		case c.Sampling.N < 2:
			return errors.New("critique needs sampling.n >= 2 (n-1 initial responses and one refinement)")
		case cr.Mode != rollout.CritiqueVerdictGT && cr.Mode != rollout.CritiqueVerdict && cr.Mode != rollout.CritiqueCoT:
			return fmt.Errorf("critique.mode: %q is not verdict_gt, verdict or cot", cr.Mode)
		case cr.Mode == rollout.CritiqueCoT && (cr.Critic == nil || cr.Critic.BaseURL == "" || cr.Critic.Model == ""):
			return errors.New("critique.critic: base_url and model are required for mode cot")
		}
	}
	if cr := c.Critique; cr != nil {
		switch {
		case c.Source.Kind != "tasks":
			return errors.New("critique needs source.kind tasks")
		case c.Episode.Turns > 1:
			return errors.New("critique and episode.turns > 1 cannot be combined")
		case c.Sampling.N < 2:
			return errors.New("critique needs sampling.n >= 2 (n-1 initial responses and one refinement)")
		case cr.Mode != rollout.CritiqueVerdictGT && cr.Mode != rollout.CritiqueVerdict && cr.Mode != rollout.CritiqueCoT:
			return fmt.Errorf("critique.mode: %q is not verdict_gt, verdict or cot", cr.Mode)
		case cr.Mode == rollout.CritiqueCoT && (cr.Critic == nil || cr.Critic.BaseURL == "" || cr.Critic.Model == ""):
			return errors.New("critique.critic: base_url and model are required for mode cot")
		}
	}
	if c.AgentR != nil {
		if err := c.validateAgentR(); err != nil {
			return err
		}
	}
	for i, j := range c.Reward.Judges {
		if j.BaseURL == "" || j.Model == "" {
			return fmt.Errorf("reward.judges[%d]: base_url and model are required", i)
		}
		if _, err := judge.BuiltinTemplate(j.Template); err != nil {
			return fmt.Errorf("reward.judges[%d].template: %w", i, err)
		}
	}
	switch c.Reward.JudgeAggregate {
	case "", "mean", "median", "majority":
	default:
		return fmt.Errorf("reward.judge_aggregate: %q is not mean, median or majority", c.Reward.JudgeAggregate)
	}
	if c.Episode.Turns > 1 {
		if c.Source.Kind != "tasks" {
			return errors.New("episode.turns > 1 needs source.kind tasks: episodes are generated")
		}
		if c.Episode.Feedback != "fixed" && c.Episode.Feedback != "retry_if_wrong" {
			return fmt.Errorf("episode.feedback: %q is neither fixed nor retry_if_wrong", c.Episode.Feedback)
		}
	} else if c.Episode.Pairs {
		return errors.New("episode.pairs needs episode.turns >= 2")
	}
	if err := c.validateRecipes(); err != nil {
		return err
	}
	if c.Reward.Grader != "math" {
		return fmt.Errorf("reward.grader: unknown grader %q (want math)", c.Reward.Grader)
	}
	for k, w := range c.Reward.Weights {
		switch k {
		case "verifiable", "consensus", "format", "score_bonus", rewards.SelfVerifyGen, rewards.SelfVerifyMatch:
		case "srpo":
			if c.Reward.SRPO.LengthWeight != 0 && c.Reward.SRPO.LengthTarget < 1 {
				return errors.New("reward.srpo.length_target: must be at least 1 when length_weight is set")
			}
		case "recorded":
			if c.Source.Kind != "rollouts" {
				return errors.New("reward.weights.recorded needs source.kind: rollouts (the reward each recorded response carried)")
			}
		case "judge":
			if len(c.Reward.Judges) == 0 {
				return errors.New("reward.weights.judge needs reward.judges")
			}
		case "overlong":
			o := rewards.Overlong{MaxTokens: c.Reward.Overlong.MaxTokens, Buffer: c.Reward.Overlong.Buffer}
			if err := o.Validate(); err != nil {
				return fmt.Errorf("reward.%w", err)
			}
		default:
			return fmt.Errorf("reward.weights: unknown component %q (want verifiable, consensus, format, overlong, recorded, score_bonus, srpo, judge, self_verify_gen or self_verify_match)", k)
		}
		if math.IsNaN(w) || math.IsInf(w, 0) {
			return fmt.Errorf("reward.weights.%s: not a finite number", k)
		}
	}
	if err := c.Advantage.Validate(); err != nil {
		return fmt.Errorf("advantage: %w", err)
	}
	if c.Output.Dir == "" {
		return errors.New("output.dir: missing")
	}
	if c.Pipeline.Workers < 0 || c.Pipeline.Window < 0 {
		return errors.New("pipeline: workers and groups_in_flight must be >= 0")
	}
	return nil
}

// validateRecipes checks the settings of the self-verify, PAM and PTR
// recipes and what they cannot be combined with.
func (c *Config) validateRecipes() error {
	switch c.Episode.SFT {
	case "":
	case SFTPAM, SFTPTR:
		switch {
		case c.Episode.SFT == SFTPAM && c.Episode.Turns != 2:
			return errors.New("episode.sft pam needs episode.turns 2 (answer, then self-verification and modified answer)")
		case c.Episode.Turns < 2:
			return errors.New("episode.sft ptr needs episode.turns >= 2 (an attempt and at least one refinement round)")
		case c.Episode.Feedback != "fixed":
			return fmt.Errorf("episode.sft %s needs episode.feedback fixed: every episode must run all its turns", c.Episode.SFT)
		case c.Advantage.DropZeroVariance:
			// The sft rows are built from the rl rows written, and dropped
			// groups are never written.
			return fmt.Errorf("episode.sft %s cannot be combined with advantage.drop_zero_variance", c.Episode.SFT)
		}
	default:
		return fmt.Errorf("episode.sft: %q is not pam, ptr or none", c.Episode.SFT)
	}
	if o := c.Output; o.Tokenizer != "" {
		switch tokenizer.Format(o.ChatFormat) {
		case tokenizer.FormatChatML, tokenizer.FormatQwen3, tokenizer.FormatLlama3:
		default:
			return fmt.Errorf("output.chat_format: %q is not chatml, qwen3 or llama3", o.ChatFormat)
		}
	} else if o.ChatFormat != "" {
		return errors.New("output.chat_format needs output.tokenizer")
	}
	_, gen := c.Reward.Weights[rewards.SelfVerifyGen]
	_, match := c.Reward.Weights[rewards.SelfVerifyMatch]
	sv := c.SelfVerify
	if sv == nil {
		if gen || match {
			return errors.New("reward.weights: self_verify_gen and self_verify_match need the self_verify section")
		}
		return nil
	}
	switch {
	case c.Source.Kind != "tasks":
		return errors.New("self_verify needs source.kind tasks")
	case c.Episode.Turns > 1 || c.Critique != nil:
		return errors.New("self_verify cannot be combined with episode.turns > 1 or critique")
	case !gen || !match:
		return errors.New("self_verify needs both self_verify_gen and self_verify_match in reward.weights (a weight of 0 stores a component without counting it)")
	case c.Advantage.GroupBy == rewards.GroupByTrajectory:
		return errors.New("self_verify keeps solve and verify groups separate; advantage.group_by trajectory would merge them")
	case !strings.Contains(sv.Template, "{solution}") || !strings.Contains(sv.Template, "{question}"):
		return errors.New("self_verify.template: must contain {question} and {solution}")
	case c.Reward.SelfVerify.Verdict != rewards.VerdictLabel && c.Reward.SelfVerify.Verdict != rewards.VerdictScore:
		return fmt.Errorf("reward.self_verify.verdict: %q is neither label nor score", c.Reward.SelfVerify.Verdict)
	}
	for k := range c.Reward.Weights {
		switch k {
		case rewards.SelfVerifyGen, rewards.SelfVerifyMatch, "overlong":
		default:
			// Other parts would read a verification's verdict as an answer.
			return fmt.Errorf("reward.weights.%s: self_verify rows take only self_verify_gen, self_verify_match and overlong", k)
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
	if c.Endpoint != nil {
		id.Endpoint = &EndpointConfig{Model: c.Endpoint.Model}
	}
	if cr := c.Critique; cr != nil && cr.Critic != nil {
		id.Critique = &CritiqueConfig{Mode: cr.Mode, Critic: &ModelEndpoint{Model: cr.Critic.Model}}
	}
	if a := c.AgentR; a != nil && a.StepJudge != nil {
		ar := *a
		ar.StepJudge = &ModelEndpoint{Model: a.StepJudge.Model}
		id.AgentR = &ar
	}
	if len(c.Reward.Judges) > 0 {
		id.Reward.Judges = make([]JudgeConfig, len(c.Reward.Judges))
		for i, j := range c.Reward.Judges {
			id.Reward.Judges[i] = JudgeConfig{Name: j.Name, ModelEndpoint: ModelEndpoint{Model: j.Model}, Template: j.Template}
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
