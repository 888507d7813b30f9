// Package export writes redraft's datasets as Parquet shards with a manifest,
// and reads them back with Arrow for audits and checks.
package export

// RLSchema is the schema version of the rl dataset, written into every shard's
// metadata and the manifest. Bump it whenever RLRow changes; the schema test
// in this package fails until schemas/rl.json is updated to match.
const RLSchema = "rl/1"

// Message is one chat message.
type Message struct {
	Role    string `parquet:"role"`
	Content string `parquet:"content"`
}

// RewardComponent is one stored reward component: value is null when it could
// not be computed, and reason then says why.
type RewardComponent struct {
	Name   string   `parquet:"name"`
	Value  *float64 `parquet:"value,optional"`
	Weight float64  `parquet:"weight"`
	Reason *string  `parquet:"reason,optional"`
}

// Sampling is the generation settings sent with a request.
type Sampling struct {
	Temperature *float64 `parquet:"temperature,optional"`
	TopP        *float64 `parquet:"top_p,optional"`
	MaxTokens   *int32   `parquet:"max_tokens,optional"`
	Stop        []string `parquet:"stop,list"`
	Logprobs    bool     `parquet:"logprobs"`
}

// TokenLogprob is one generated token's log-probability.
type TokenLogprob struct {
	Token   string  `parquet:"token"`
	Logprob float64 `parquet:"logprob"`
}

// RLRow is one row of the rl dataset: one sampled response with everything
// needed to explain its reward and advantage. Nullable columns are null when
// the value is unknown (recorded rollouts carry no seed) or could not be
// computed (then a reason column says why).
type RLRow struct {
	TaskID      string `parquet:"task_id"`
	GroupID     string `parquet:"group_id"`
	SampleIndex int32  `parquet:"sample_index"`
	Turn        int32  `parquet:"turn"`
	DataSource  string `parquet:"data_source,dict"`
	Model       string `parquet:"model,dict"`

	Prompt       []Message `parquet:"prompt,list"`
	Response     string    `parquet:"response"`
	Reasoning    *string   `parquet:"reasoning,optional"`
	FinishReason *string   `parquet:"finish_reason,optional,dict"`
	Error        *string   `parquet:"error,optional"`

	PromptTokens     *int32         `parquet:"prompt_tokens,optional"`
	CompletionTokens *int32         `parquet:"completion_tokens,optional"`
	LatencyMS        *float64       `parquet:"latency_ms,optional"`
	Seed             *int64         `parquet:"seed,optional"`
	Sampling         *Sampling      `parquet:"sampling,optional"`
	Logprobs         []TokenLogprob `parquet:"logprobs,list"`

	Reference       *string `parquet:"reference,optional"`
	ExtractedAnswer *string `parquet:"extracted_answer,optional"`
	ExtractRule     *string `parquet:"extract_rule,optional,dict"`
	GradeRule       *string `parquet:"grade_rule,optional,dict"`
	GradeReason     *string `parquet:"grade_reason,optional"`
	Correct         *bool   `parquet:"correct,optional"`

	Reward           *float64          `parquet:"reward,optional"`
	RewardReason     *string           `parquet:"reward_reason,optional"`
	RewardComponents []RewardComponent `parquet:"reward_components,list"`

	Advantage          *float64 `parquet:"advantage,optional"`
	AdvantageEstimator string   `parquet:"advantage_estimator,dict"`
	GroupSize          int32    `parquet:"group_size"`
	GroupRewardMean    *float64 `parquet:"group_reward_mean,optional"`
	GroupRewardStd     *float64 `parquet:"group_reward_std,optional"`

	TaskMetadata     *string `parquet:"task_metadata,optional"`
	ResponseMetadata *string `parquet:"response_metadata,optional"`
}
