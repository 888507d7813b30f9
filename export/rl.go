package export

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
)

// RLSchema is the schema version of the rl dataset, written into every shard's
// metadata and the manifest. Bump it whenever RLRow changes; the schema test
// in this package fails until schemas/rl.v<N>.json is added to match. rl/3
// adds the token track (see RLTokens); rl/4 the messages and tools of rows
// that involve tool calls; rl/5 response_messages (see SetResponseMessages);
// rl/6 token_source, token_check, logprobs_reason and policy_version (see
// docs/token-track.md).
const RLSchema = "rl/6"

// Message is one chat message: the prompt of an rl row, a pair or a verl
// prompt, whose messages are plain text.
type Message struct {
	Role    string `parquet:"role" json:"role"`
	Content string `parquet:"content" json:"content"`
}

// ToolCall is one function call of an assistant message, in OpenAI's chat
// form: {id, type "function", function {name, arguments}}, arguments being
// JSON text. It is nested as OpenAI nests it so that pyarrow and Hugging
// Face datasets read a message back as the dict chat templates take
// (Qwen3's reads tool_call.function.name and .arguments).
type ToolCall struct {
	ID       string       `parquet:"id" json:"id"`
	Type     string       `parquet:"type" json:"type"`
	Function ToolFunction `parquet:"function" json:"function"`
}

// ToolFunction is the function a ToolCall calls.
type ToolFunction struct {
	Name      string `parquet:"name" json:"name"`
	Arguments string `parquet:"arguments" json:"arguments"`
}

// ChatMessage is one message of a conversation in OpenAI's chat form: an
// assistant message's tool calls (null when it calls none), a tool result's
// tool_call_id and name (null on other messages). Content is a string, ""
// for an assistant message that only calls tools (Qwen3's template needs a
// string there).
type ChatMessage struct {
	Role       string     `parquet:"role" json:"role"`
	Content    string     `parquet:"content" json:"content"`
	ToolCalls  []ToolCall `parquet:"tool_calls,list,optional" json:"tool_calls"`
	ToolCallID *string    `parquet:"tool_call_id,optional" json:"tool_call_id"`
	Name       *string    `parquet:"name,optional" json:"name"`
}

// RewardComponent is one stored reward component: value is null when it could
// not be computed, and reason then says why.
type RewardComponent struct {
	Name   string   `parquet:"name" json:"name"`
	Value  *float64 `parquet:"value,optional" json:"value"`
	Weight float64  `parquet:"weight" json:"weight"`
	Reason *string  `parquet:"reason,optional" json:"reason"`
}

// Sampling is the generation settings sent with a request.
type Sampling struct {
	Temperature *float64 `parquet:"temperature,optional" json:"temperature"`
	TopP        *float64 `parquet:"top_p,optional" json:"top_p"`
	MaxTokens   *int32   `parquet:"max_tokens,optional" json:"max_tokens"`
	Stop        []string `parquet:"stop,list" json:"stop"`
	Logprobs    bool     `parquet:"logprobs" json:"logprobs"`
	// rl/6: the other settings that shape the distribution.
	TopK             *int32   `parquet:"top_k,optional" json:"top_k"`
	MinP             *float64 `parquet:"min_p,optional" json:"min_p"`
	PresencePenalty  *float64 `parquet:"presence_penalty,optional" json:"presence_penalty"`
	FrequencyPenalty *float64 `parquet:"frequency_penalty,optional" json:"frequency_penalty"`
}

// JudgeScore is one judge's verdict on a response.
type JudgeScore struct {
	Judge  string   `parquet:"judge" json:"judge"`
	Score  *float64 `parquet:"score,optional" json:"score"`
	Raw    *float64 `parquet:"raw,optional" json:"raw"`
	Reason *string  `parquet:"reason,optional" json:"reason"`
}

// TokenLogprob is one generated token's log-probability.
type TokenLogprob struct {
	Token   string  `parquet:"token" json:"token"`
	Logprob float64 `parquet:"logprob" json:"logprob"`
}

// RLRow is one row of the rl dataset: one sampled response with everything
// needed to explain its reward and advantage. Nullable columns are null when
// the value is unknown (recorded rollouts carry no seed) or could not be
// computed (then a reason column says why).
type RLRow struct {
	TaskID      string `parquet:"task_id" json:"task_id"`
	GroupID     string `parquet:"group_id" json:"group_id"`
	SampleIndex int32  `parquet:"sample_index" json:"sample_index"`
	Turn        int32  `parquet:"turn" json:"turn"`
	DataSource  string `parquet:"data_source,dict" json:"data_source"`
	Model       string `parquet:"model,dict" json:"model"`

	Prompt       []Message `parquet:"prompt,list" json:"prompt"`
	Response     string    `parquet:"response" json:"response"`
	Reasoning    *string   `parquet:"reasoning,optional" json:"reasoning"`
	FinishReason *string   `parquet:"finish_reason,optional,dict" json:"finish_reason"`
	Error        *string   `parquet:"error,optional" json:"error"`
	OffPolicy    bool      `parquet:"off_policy" json:"off_policy"`

	PromptTokens     *int32         `parquet:"prompt_tokens,optional" json:"prompt_tokens"`
	CompletionTokens *int32         `parquet:"completion_tokens,optional" json:"completion_tokens"`
	LatencyMS        *float64       `parquet:"latency_ms,optional" json:"latency_ms"`
	Endpoint         *string        `parquet:"endpoint,optional,dict" json:"endpoint"`
	Attempts         *int32         `parquet:"attempts,optional" json:"attempts"`
	Seed             *int64         `parquet:"seed,optional" json:"seed"`
	Sampling         *Sampling      `parquet:"sampling,optional" json:"sampling"`
	Logprobs         []TokenLogprob `parquet:"logprobs,list" json:"logprobs"`

	Reference       *string `parquet:"reference,optional" json:"reference"`
	ExtractedAnswer *string `parquet:"extracted_answer,optional" json:"extracted_answer"`
	ExtractRule     *string `parquet:"extract_rule,optional,dict" json:"extract_rule"`
	GradeRule       *string `parquet:"grade_rule,optional,dict" json:"grade_rule"`
	GradeReason     *string `parquet:"grade_reason,optional" json:"grade_reason"`
	Correct         *bool   `parquet:"correct,optional" json:"correct"`
	Transition      *string `parquet:"transition,optional,dict" json:"transition"`

	Reward           *float64          `parquet:"reward,optional" json:"reward"`
	RewardReason     *string           `parquet:"reward_reason,optional" json:"reward_reason"`
	RewardComponents []RewardComponent `parquet:"reward_components,list" json:"reward_components"`

	ConsensusLabel        *string      `parquet:"consensus_label,optional" json:"consensus_label"`
	ConsensusRatio        *float64     `parquet:"consensus_ratio,optional" json:"consensus_ratio"`
	ConsensusLabelCorrect *bool        `parquet:"consensus_label_correct,optional" json:"consensus_label_correct"`
	JudgeScores           []JudgeScore `parquet:"judge_scores,list" json:"judge_scores"`
	JudgeFlagged          *bool        `parquet:"judge_flagged,optional" json:"judge_flagged"`
	JudgeFlagReason       *string      `parquet:"judge_flag_reason,optional" json:"judge_flag_reason"`

	Advantage          *float64 `parquet:"advantage,optional" json:"advantage"`
	AdvantageEstimator string   `parquet:"advantage_estimator,dict" json:"advantage_estimator"`
	GroupSize          int32    `parquet:"group_size" json:"group_size"`
	GroupRewardMean    *float64 `parquet:"group_reward_mean,optional" json:"group_reward_mean"`
	GroupRewardStd     *float64 `parquet:"group_reward_std,optional" json:"group_reward_std"`
	AdvantageBatch     *int64   `parquet:"advantage_batch,optional" json:"advantage_batch"`
	AdvantageBatchMean *float64 `parquet:"advantage_batch_mean,optional" json:"advantage_batch_mean"`
	AdvantageBatchStd  *float64 `parquet:"advantage_batch_std,optional" json:"advantage_batch_std"`

	TaskMetadata     *string `parquet:"task_metadata,optional" json:"task_metadata"`
	ResponseMetadata *string `parquet:"response_metadata,optional" json:"response_metadata"`

	// The token track (output.tokenizer): null, with token_reason saying
	// why, when the row was not tokenized. See RLTokens.
	TokenReason   *string `parquet:"token_reason,optional" json:"token_reason"`
	PromptIDs     []int32 `parquet:"prompt_ids,list,optional" json:"prompt_ids"`
	ResponseIDs   []int32 `parquet:"response_ids,list,optional" json:"response_ids"`
	InputIDs      []int32 `parquet:"input_ids,list,optional" json:"input_ids"`
	Labels        []int32 `parquet:"labels,list,optional" json:"labels"`
	AttentionMask []int32 `parquet:"attention_mask,list,optional" json:"attention_mask"`

	// verl's columns, as in the verl prompt set, so an rl shard loads as a
	// verl dataset too: ability, reward_model{style, ground_truth} and
	// extra_info{split, index, task_id} (index: the task's position in the
	// prompt set). Null in rows made outside a run (pipeline.Run alone).
	Ability     *string          `parquet:"ability,optional,dict" json:"ability"`
	RewardModel *VerlRewardModel `parquet:"reward_model,optional" json:"reward_model"`
	ExtraInfo   *VerlExtraInfo   `parquet:"extra_info,optional" json:"extra_info"`

	// Messages is the row's whole conversation in OpenAI's chat form, on
	// rows that involve tools (a task that declares tools, a prompt with
	// tool calls or results, a response that calls tools, a recorded
	// trajectory): the prompt's messages, then the response's (one
	// assistant message with its tool calls; a trajectory's every message
	// after its prompt). Null on other rows, where prompt and response say
	// it all. Tools is the task's tools (OpenAI function schemas) as JSON
	// text, null when it declared none.
	Messages []ChatMessage `parquet:"messages,list,optional" json:"messages"`
	Tools    *string       `parquet:"tools,optional" json:"tools"`

	// ResponseMessages is the response as a list of messages in OpenAI's
	// chat form, so that trainers which join a prompt and a response list
	// (OpenRLHF's SFT dataset with --output_key) take the row as it is:
	// the messages after the prompt in Messages on rows that have them,
	// else one assistant message holding Response. Runs fill it on every
	// row (SetResponseMessages); null in rows made outside a run.
	ResponseMessages []ChatMessage `parquet:"response_messages,list,optional" json:"response_messages"`

	// TokenSource says where the token track's ids come from: "engine"
	// (the server that generated the response reported them) or
	// "tokenizer" (output.tokenizer rendered the prompt and response);
	// null when the row has no track. TokenCheck compares an engine track
	// with the configured tokenizer's: "match" or "mismatch" (see
	// CompareTracks), null when there is nothing to compare (a tokenizer
	// track, no tokenizer, or a tokenizer that gives no track).
	TokenSource *string `parquet:"token_source,optional,dict" json:"token_source"`
	TokenCheck  *string `parquet:"token_check,optional,dict" json:"token_check"`
	// LogprobsReason is null when logprobs is empty or holds exactly one
	// entry per response_ids token, in order; otherwise it says why they
	// are not aligned (a count that differs, no token track to align
	// with), so that no trainer takes them as aligned.
	LogprobsReason *string `parquet:"logprobs_reason,optional" json:"logprobs_reason"`
	// PolicyVersion is endpoint.policy_version (a checkpoint id or
	// training step) on generated rows; null when it is not set and on
	// recorded rollouts.
	PolicyVersion *string `parquet:"policy_version,optional,dict" json:"policy_version"`
}

// Token sources and checks of an rl row (token_source, token_check).
const (
	TokenSourceEngine    = "engine"
	TokenSourceTokenizer = "tokenizer"
	TokenCheckMatch      = "match"
	TokenCheckMismatch   = "mismatch"
)

// LogprobsAlignment is the logprobs_reason of a row with n logprobs and
// the given response ids: "" when they are aligned (one per token) or
// there are none.
func LogprobsAlignment(n int, responseIDs []int32) string {
	switch {
	case n == 0:
		return ""
	case responseIDs == nil:
		return fmt.Sprintf("%d logprobs and no token track to align them with (token_reason)", n)
	case n != len(responseIDs):
		return fmt.Sprintf("%d logprobs for %d response tokens: not one per token", n, len(responseIDs))
	}
	return ""
}

// SetResponseMessages fills the response_messages column of rows from
// their messages or response.
func SetResponseMessages(rows []RLRow) {
	for i := range rows {
		r := &rows[i]
		if r.Messages != nil && len(r.Messages) > len(r.Prompt) {
			r.ResponseMessages = r.Messages[len(r.Prompt):]
			continue
		}
		r.ResponseMessages = []ChatMessage{{Role: "assistant", Content: r.Response}}
	}
}

// SetVerl fills a row's verl columns from its task's verl prompt.
func (r *RLRow) SetVerl(p VerlRow) {
	ability, rm, ei := p.Ability, p.RewardModel, p.ExtraInfo
	r.Ability, r.RewardModel, r.ExtraInfo = &ability, &rm, &ei
}

// ReadRL reads every row of an rl shard with Arrow. It is the columnar read
// path that audits and round-trip checks use, independent of the writer.
func ReadRL(ctx context.Context, path string) ([]RLRow, error) { return ReadRows[RLRow](ctx, path) }

// ReadRows reads every row of a shard with Arrow into T, whose JSON names
// are the column names (see ScanRows).
func ReadRows[T any](ctx context.Context, path string) ([]T, error) {
	var rows []T
	err := ScanRows(ctx, path, func(r T) error {
		rows = append(rows, r)
		return nil
	})
	return rows, err
}

// ScanRows calls fn with each row of a shard, in order, read with Arrow
// into T (whose JSON names are the column names) a batch at a time, so that
// a shard of any size is read in bounded memory. An error of fn stops the
// scan and is returned. Reading fewer rows than the footer lists is an
// error: Arrow Go (v17) ends a column chunk without an error at a page it
// cannot read (a page header over its 4 MiB limit, for one), so a shard
// could otherwise read as shorter than it is.
func ScanRows[T any](ctx context.Context, path string, fn func(T) error) error {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 4096}, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer rr.Release()
	var n int64
	var buf bytes.Buffer
	for rr.Next() {
		buf.Reset()
		// Arrow's JSON form of a row uses the column names, which are also
		// the row types' JSON names.
		if err := array.RecordToJSON(rr.Record(), &buf); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		dec := json.NewDecoder(&buf)
		for dec.More() {
			var r T
			if err := dec.Decode(&r); err != nil {
				return fmt.Errorf("%s: row %d: %w", path, n+1, err)
			}
			n++
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", path, err)
	}
	if want := pf.NumRows(); n != want {
		return fmt.Errorf("%s: read %d rows, its footer lists %d: the Parquet reader stopped early", path, n, want)
	}
	return nil
}
