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
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/redraft/redraft/rewards"
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
	Pipeline  PipelineConfig          `yaml:"pipeline" json:"pipeline"`
	Output    OutputConfig            `yaml:"output" json:"output"`
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
}

// EndpointConfig is an OpenAI-compatible endpoint. The API key is read from
// the environment variable named by APIKeyEnv and is never stored.
type EndpointConfig struct {
	BaseURL     string   `yaml:"base_url" json:"base_url"`
	Model       string   `yaml:"model" json:"model"`
	APIKeyEnv   string   `yaml:"api_key_env" json:"api_key_env"`
	MaxInFlight int      `yaml:"max_in_flight" json:"max_in_flight"`
	Timeout     Duration `yaml:"timeout" json:"timeout"`
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
	// Grader is "numeric" (GSM8K-style numbers).
	Grader string `yaml:"grader" json:"grader"`
	// Weights maps component names (verifiable, consensus, format,
	// overlong) to weights; the total is the weighted sum.
	Weights map[string]float64 `yaml:"weights" json:"weights"`
	// Format restricts which ways of stating the answer earn the format
	// reward (extraction rules such as boxed); empty: any.
	Format struct {
		Require []string `yaml:"require" json:"require,omitempty"`
	} `yaml:"format" json:"format"`
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
	if _, ok := r.Weights["overlong"]; ok {
		parts = append(parts, rewards.Overlong{MaxTokens: r.Overlong.MaxTokens, Buffer: r.Overlong.Buffer})
	}
	return parts
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
	RowGroupRows int64    `yaml:"row_group_rows" json:"row_group_rows"`
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
		c.Reward.Grader = "numeric"
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
	}
	if c.Output.ShardBytes == 0 {
		c.Output.ShardBytes = 256 << 20
	}
	if c.Output.RowGroupRows == 0 {
		c.Output.RowGroupRows = 4096
	}
}

// Validate reports the first problem with a configuration, naming its key.
func (c *Config) Validate() error {
	switch c.Source.Kind {
	case "tasks":
		if c.Endpoint == nil {
			return errors.New("source.kind tasks needs an endpoint section")
		}
		if c.Endpoint.BaseURL == "" {
			return errors.New("endpoint.base_url: missing")
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
	if c.Reward.Grader != "numeric" {
		return fmt.Errorf("reward.grader: unknown grader %q (want numeric)", c.Reward.Grader)
	}
	for k, w := range c.Reward.Weights {
		switch k {
		case "verifiable", "consensus", "format":
		case "overlong":
			o := rewards.Overlong{MaxTokens: c.Reward.Overlong.MaxTokens, Buffer: c.Reward.Overlong.Buffer}
			if err := o.Validate(); err != nil {
				return fmt.Errorf("reward.%w", err)
			}
		default:
			return fmt.Errorf("reward.weights: unknown component %q (want verifiable, consensus, format or overlong)", k)
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

// Identity returns the configuration as canonical JSON and its sha256. The
// output directory and the pool sizes are left out: they change where and how
// fast rows are written, not what they are.
func (c *Config) Identity() (json.RawMessage, string, error) {
	id := *c
	id.Output.Dir = ""
	id.Pipeline = PipelineConfig{}
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
