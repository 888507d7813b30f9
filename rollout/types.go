package rollout

import (
	"encoding/json"
	"time"
)

// Message is one chat message in OpenAI form: an assistant message's tool
// calls, a tool result's tool_call_id and name. Content is "" on an
// assistant message that only calls tools (null in OpenAI's form).
type Message struct {
	Role       string     `json:"role"`
	Content    string     `json:"content"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	Name       string     `json:"name,omitempty"`
}

// ToolCall is one function call of an assistant message, in OpenAI's form:
// Type is "function" and Function.Arguments JSON text, as the model wrote it.
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function ToolFunction `json:"function"`
}

// ToolFunction is the function a ToolCall calls.
type ToolFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// Origin says where an input item came from, for error messages and
// explainability.
type Origin struct {
	File string // path as given in the configuration
	Line int    // 1-based line (JSONL) or row (Parquet) number
}

// Task is one prompt to sample, with its reference answer when one exists.
type Task struct {
	ID         string
	DataSource string
	Messages   []Message
	// Reference is the ground-truth answer; "" means the task has none.
	Reference string
	// Metadata is the task's free-form metadata as JSON (nil when absent).
	Metadata json.RawMessage
	// Code holds the tests of a code task (nil for other tasks): a response
	// to it is graded by running its program against them.
	Code *CodeSpec `json:",omitempty"`
	// Tools is the tools the task declares (its "tools" key: a JSON array
	// of OpenAI function schemas), compact JSON sent with every request for
	// it; nil when it declares none.
	Tools  json.RawMessage `json:",omitempty"`
	Origin Origin
}

// CodeSpec is what a code task's program is tested against.
type CodeSpec struct {
	// Tests is test code: a check(candidate) function called with
	// EntryPoint (HumanEval's form) or plain assert statements.
	Tests string `json:"tests"`
	// EntryPoint names the function under test (needed by check).
	EntryPoint string `json:"entry_point,omitempty"`
	// Prefix is code placed before the response's program (HumanEval's
	// prompt: imports, the signature and the docstring); may be empty.
	Prefix string `json:"prefix,omitempty"`
	// Language is the program's language; "" means python, the only one
	// that runs today.
	Language string `json:"language,omitempty"`
}

// Usage is the token accounting an endpoint reported for one sample.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
}

// Sampling holds the generation settings of one request. Pointers are nil
// when a setting was not sent (the server default applied) or, for recorded
// rollouts, is unknown.
type Sampling struct {
	Temperature *float64 `json:"temperature,omitempty" yaml:"temperature"`
	TopP        *float64 `json:"top_p,omitempty" yaml:"top_p"`
	MaxTokens   *int     `json:"max_tokens,omitempty" yaml:"max_tokens"`
	Stop        []string `json:"stop,omitempty" yaml:"stop"`
	// Logprobs asks the endpoint for per-token log-probabilities.
	Logprobs bool `json:"logprobs,omitempty" yaml:"logprobs"`
	// TopLogprobs is the number of alternatives per token (0: none).
	TopLogprobs int `json:"top_logprobs,omitempty" yaml:"top_logprobs"`
	// TopK, MinP, PresencePenalty and FrequencyPenalty shape the
	// distribution tokens are drawn from (and their logprobs): sent only
	// when set (vLLM and llama-server take all four under these names;
	// OpenAI refuses top_k and min_p).
	TopK             *int     `json:"top_k,omitempty" yaml:"top_k"`
	MinP             *float64 `json:"min_p,omitempty" yaml:"min_p"`
	PresencePenalty  *float64 `json:"presence_penalty,omitempty" yaml:"presence_penalty"`
	FrequencyPenalty *float64 `json:"frequency_penalty,omitempty" yaml:"frequency_penalty"`
}

// TokenLogprob is the log-probability of one generated token.
type TokenLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
}

// Sample is one sampled (or recorded) response.
type Sample struct {
	Index int // position within the group, 0-based
	Model string
	// Text is the response content; Reasoning is a separate reasoning field
	// (reasoning_content) when the server returned one; ToolCalls are the
	// functions the response calls (tool_calls), in order.
	Text      string
	Reasoning string
	ToolCalls []ToolCall
	// FinishReason is "stop", "length", ... as reported; "" when unknown.
	FinishReason string
	Usage        *Usage        // nil when unknown
	Latency      time.Duration // 0 when unknown
	Seed         *int64        // the seed sent; nil for recorded rollouts
	Sampling     *Sampling     // settings sent; nil for recorded rollouts
	Logprobs     []TokenLogprob
	// PromptIDs and ResponseIDs are the engine's token ids (see
	// Response.PromptIDs); nil when it reported none.
	PromptIDs, ResponseIDs []int32
	// Metadata is per-response metadata carried from recorded input.
	Metadata json.RawMessage
	// RecordedReward is the reward a recorded response carried (its
	// "reward" key, always finite); nil when it had none and for generated
	// samples.
	RecordedReward *float64
	// Prompt is the exact message list sent for this sample when it differs
	// from the task's (turns after the first carry the episode's history);
	// nil means the task's messages.
	Prompt []Message
	// PrevCorrect is whether the same episode's previous attempt was
	// correct: nil at turn 0 or when it was not graded.
	PrevCorrect *bool
	// OffPolicy marks a response that the policy did not sample for this
	// prompt (Critique-GRPO's refinement, generated with a critique in the
	// context and placed as a response to the original prompt).
	OffPolicy bool
	// Verifies is set on a self-verification sample: the solution it was
	// asked to check. Its own text is a verdict on that solution, not an
	// answer to the task, so it is not graded against the reference.
	Verifies *VerifyTarget
	// Err is why the sample has no response ("" when it has one). The sample
	// still flows through the pipeline so that nothing is dropped silently.
	Err string
	// Endpoint is the base URL (without credentials) that served the sample,
	// or that failed it last; Attempts is the number of requests sent. Both
	// are zero values for recorded rollouts and Policies that do not report
	// them.
	Endpoint string
	Attempts int
}

// Which limit ended a response that the server cut off (finish_reason
// length): see Sample.LengthLimit.
const (
	// LimitMaxTokens: the response reached the max_tokens that was sent.
	LimitMaxTokens = "max_tokens"
	// LimitContext: a limit of the server's own ended it before max_tokens
	// (or without one sent): its context window was full (llama-server:
	// the slot's context, --ctx-size divided by --parallel; vLLM:
	// max_model_len), or a server-side cap on generated tokens.
	LimitContext = "context"
)

// LengthLimit says which limit ended a response the server reported as
// cut off, from what the server reported and what was sent: LimitMaxTokens
// when its completion tokens reached the max_tokens sent, LimitContext when
// they stopped short of it (llama-server reports a slot whose context
// filled up as finish_reason length, exactly as it reports max_tokens) or
// no max_tokens was sent. "" when the response was not cut off, or when it
// cannot be told: a recorded rollout (no settings sent) or a response
// without token usage.
func (s *Sample) LengthLimit() string {
	if s.FinishReason != "length" || s.Usage == nil || s.Sampling == nil {
		return ""
	}
	if m := s.Sampling.MaxTokens; m != nil && s.Usage.CompletionTokens >= *m {
		return LimitMaxTokens
	}
	return LimitContext
}

// Group is every sample for one task at one turn. Seq is the task's position
// in the input; the pipeline writes groups in Seq order so that its output does
// not depend on scheduling.
type Group struct {
	Seq     int64
	Task    Task
	Turn    int
	Samples []Sample
	// More is true when further groups of the same task follow (the turns of
	// a correction episode before its last). A producer emits a task's groups
	// at consecutive Seqs; the group with More false closes the task, which
	// is where a run can be checkpointed and resumed.
	More bool
}
