package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/redraft/redraft/tokenizer"
)

// SFTTokensSchema is the schema version of sft rows with a token track:
// sft/3's columns plus input_ids, labels and attention_mask (sft/2 was
// sft/1's plus the same three). It is written instead of sft/3 when a
// tokenizer is configured.
const SFTTokensSchema = "sft/4"

// SFTTokensRow is an sft row with its token track: the chat template of the
// shard's format (metadata redraft.chat_format) applied to the messages and
// tokenized with the shard's tokenizer (metadata redraft.tokenizer_sha256).
// labels is input_ids where the token lies entirely inside trainable text and
// -100 elsewhere; attention_mask is all ones. TRL's SFTTrainer and a plain
// PyTorch loop take these columns as they are.
type SFTTokensRow struct {
	ID            string       `parquet:"id" json:"id"`
	TaskID        string       `parquet:"task_id" json:"task_id"`
	Recipe        string       `parquet:"recipe,dict" json:"recipe"`
	DataSource    string       `parquet:"data_source,dict" json:"data_source"`
	Messages      []SFTMessage `parquet:"messages,list" json:"messages"`
	Reward        *float64     `parquet:"reward,optional" json:"reward"`
	Metadata      *string      `parquet:"metadata,optional" json:"metadata"`
	InputIDs      []int32      `parquet:"input_ids,list" json:"input_ids"`
	Labels        []int32      `parquet:"labels,list" json:"labels"`
	AttentionMask []int32      `parquet:"attention_mask,list" json:"attention_mask"`
	Tools         *string      `parquet:"tools,optional" json:"tools"`
}

// SFT returns the row without its token track.
func (r SFTTokensRow) SFT() SFTRow {
	return SFTRow{ID: r.ID, TaskID: r.TaskID, Recipe: r.Recipe, DataSource: r.DataSource, Messages: r.Messages, Reward: r.Reward, Metadata: r.Metadata, Tools: r.Tools}
}

// SFTTokenMessages turns an sft row's messages into the tokenizer's messages:
// each segment's [start, end) code points of the content become one piece
// of text with its trainable flag, and an assistant message's tool calls are
// trained when its loss_mask is 1. It fails when the segments do not tile the
// content.
func SFTTokenMessages(row SFTRow) ([]tokenizer.Message, error) {
	out := make([]tokenizer.Message, len(row.Messages))
	for i, m := range row.Messages {
		runes := []rune(m.Content)
		msg := tokenizer.Message{Role: m.Role, ToolCallsTrainable: m.LossMask == 1}
		for _, tc := range m.ToolCalls {
			msg.ToolCalls = append(msg.ToolCalls, tokenizer.ToolCall{Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
		pos := int32(0)
		for j, s := range m.Segments {
			if s.Start != pos || s.End < s.Start || int(s.End) > len(runes) {
				return nil, fmt.Errorf("row %s message %d segment %d (%s): span [%d, %d) does not continue at %d within %d code points", row.ID, i, j, s.Role, s.Start, s.End, pos, len(runes))
			}
			msg.Segments = append(msg.Segments, tokenizer.Segment{Text: string(runes[s.Start:s.End]), Trainable: s.Trainable})
			pos = s.End
		}
		if int(pos) != len(runes) {
			return nil, fmt.Errorf("row %s message %d: segments end at %d, content has %d code points", row.ID, i, pos, len(runes))
		}
		if len(m.Segments) == 0 && m.Content != "" {
			// A message without segments is plain, untrained text.
			msg.Segments = []tokenizer.Segment{{Text: m.Content}}
		}
		out[i] = msg
	}
	return out, nil
}

// TokenTrack renders an sft row with a chat format and tokenizes it:
// input_ids, labels (-100 where masked) and attention_mask, as
// tokenizer.Render defines them. A token is trained only if its bytes lie
// entirely inside a trainable segment (or it is the end-of-turn token of an
// assistant message that ends in trainable text).
func TokenTrack(tok *tokenizer.Tokenizer, format tokenizer.Format, row SFTRow) (ids, labels, attn []int32, err error) {
	msgs, err := SFTTokenMessages(row)
	if err != nil {
		return nil, nil, nil, err
	}
	tools, err := ParseTools(row.Tools)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("row %s: tools: %w", row.ID, err)
	}
	i, l, a, err := tok.RenderTools(format, tools, msgs)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("row %s: %w", row.ID, err)
	}
	return to32(i), to32(l), to32(a), nil
}

// ParseTools splits a tools column (a JSON array of tool schemas) into its
// elements; nil or "null" is no tools.
func ParseTools(tools *string) ([]json.RawMessage, error) {
	if tools == nil || *tools == "null" {
		return nil, nil
	}
	var out []json.RawMessage
	if err := json.Unmarshal([]byte(*tools), &out); err != nil {
		return nil, fmt.Errorf("want a JSON array of tool schemas: %w", err)
	}
	for i, t := range out {
		if len(t) == 0 || t[0] != '{' {
			return nil, fmt.Errorf("tool %d is not a JSON object", i)
		}
	}
	return out, nil
}

func to32(xs []int) []int32 {
	out := make([]int32, len(xs))
	for i, x := range xs {
		out[i] = int32(x)
	}
	return out
}

// TokenTrackConfig is a loaded tokenizer with the chat format it renders and
// the sha256 of its tokenizer.json, which every sft/2 shard records.
type TokenTrackConfig struct {
	Tok    *tokenizer.Tokenizer
	Format tokenizer.Format
	SHA256 string
	// Name is what the manifest and shard metadata call the tokenizer
	// (its path as given).
	Name string
}

// LoadTokenTrack loads a tokenizer.json for the token track. An empty format
// is allowed for validate.Dir, which then uses each shard's.
func LoadTokenTrack(path string, format tokenizer.Format) (*TokenTrackConfig, error) {
	switch format {
	case tokenizer.FormatChatML, tokenizer.FormatQwen3, tokenizer.FormatLlama3:
	case "":
		// Validation only: the format comes from each shard's metadata.
	default:
		return nil, fmt.Errorf("chat format %q: want chatml, qwen3 or llama3", format)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	h := sha256.Sum256(b)
	return &TokenTrackConfig{Tok: tok, Format: format, SHA256: hex.EncodeToString(h[:]), Name: path}, nil
}

// Metadata is the shard metadata of an sft/2 shard.
func (c *TokenTrackConfig) Metadata() map[string]string {
	return map[string]string{
		"redraft.tokenizer":        c.Name,
		"redraft.tokenizer_sha256": c.SHA256,
		"redraft.chat_format":      string(c.Format),
	}
}

// Row adds the token track to an sft row.
func (c *TokenTrackConfig) Row(row SFTRow) (SFTTokensRow, error) {
	ids, labels, attn, err := TokenTrack(c.Tok, c.Format, row)
	if err != nil {
		return SFTTokensRow{}, err
	}
	return SFTTokensRow{ID: row.ID, TaskID: row.TaskID, Recipe: row.Recipe, DataSource: row.DataSource, Messages: row.Messages,
		Reward: row.Reward, Metadata: row.Metadata, InputIDs: ids, Labels: labels, AttentionMask: attn, Tools: row.Tools}, nil
}

// SFTWriter writes the sft dataset: sft/1 rows, or sft/2 rows with the token
// track when it has a tokenizer. It has ShardWriter's methods, so a caller
// that wrote SFTRow groups through a ShardWriter switches by construction
// alone.
type SFTWriter struct {
	plain  *ShardWriter[SFTRow]
	tokens *ShardWriter[SFTTokensRow]
	track  *TokenTrackConfig
}

// NewSFTWriter prepares the sft writer; track may be nil (no token track).
// opts.Dataset and opts.Schema are set here.
func NewSFTWriter(opts ShardOptions, track *TokenTrackConfig) (*SFTWriter, error) {
	opts.Dataset = "sft"
	w := &SFTWriter{track: track}
	var err error
	if track == nil {
		opts.Schema = SFTSchema
		w.plain, err = NewShardWriter[SFTRow](opts)
		return w, err
	}
	opts.Schema = SFTTokensSchema
	md := map[string]string{}
	for k, v := range opts.Metadata {
		md[k] = v
	}
	for k, v := range track.Metadata() {
		md[k] = v
	}
	opts.Metadata = md
	w.tokens, err = NewShardWriter[SFTTokensRow](opts)
	return w, err
}

// Schema is the schema version being written.
func (w *SFTWriter) Schema() string {
	if w.track != nil {
		return SFTTokensSchema
	}
	return SFTSchema
}

// WriteGroup appends the rows of one group, with their token track when
// configured.
func (w *SFTWriter) WriteGroup(ctx context.Context, rows []SFTRow) error {
	if w.track == nil {
		return w.plain.WriteGroup(ctx, rows)
	}
	out := make([]SFTTokensRow, len(rows))
	for i, r := range rows {
		var err error
		if out[i], err = w.track.Row(r); err != nil {
			return err
		}
	}
	return w.tokens.WriteGroup(ctx, out)
}

// Flush finishes the open shard and returns every shard finished (see
// ShardWriter.Flush).
func (w *SFTWriter) Flush() ([]ShardInfo, error) {
	if w.track == nil {
		return w.plain.Flush()
	}
	return w.tokens.Flush()
}

// Commit commits the finished shards (see ShardWriter.Commit).
func (w *SFTWriter) Commit() []ShardInfo {
	if w.track == nil {
		return w.plain.Commit()
	}
	return w.tokens.Commit()
}

// Rollback returns to the last Commit (see ShardWriter.Rollback).
func (w *SFTWriter) Rollback() ([]ShardInfo, error) {
	if w.track == nil {
		return w.plain.Rollback()
	}
	return w.tokens.Rollback()
}

// Err is the failure that stops the writer, nil when it can write.
func (w *SFTWriter) Err() error {
	if w.track == nil {
		return w.plain.Err()
	}
	return w.tokens.Err()
}

// Full reports whether the current shard has reached its size limit.
func (w *SFTWriter) Full() bool {
	if w.track == nil {
		return w.plain.Full()
	}
	return w.tokens.Full()
}

// Shards returns every finished shard, committed or not.
func (w *SFTWriter) Shards() []ShardInfo {
	if w.track == nil {
		return w.plain.Shards()
	}
	return w.tokens.Shards()
}
