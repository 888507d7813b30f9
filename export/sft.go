package export

// SFTSchema is the schema version of the sft dataset. sft/3 is sft/1 with
// the messages' tool calls, tool_call_id and name, and the row's tools.
const SFTSchema = "sft/3"

// SFTSpan locates one segment in its message's content, in Unicode code
// points: content[start:end] in Python is the segment's text.
type SFTSpan struct {
	Role      string `parquet:"role" json:"role"`
	Start     int32  `parquet:"start" json:"start"`
	End       int32  `parquet:"end" json:"end"`
	Trainable bool   `parquet:"trainable" json:"trainable"`
}

// SFTMessage is one chat message with its masks: loss_mask is 1 when any of
// it is trained (the per-message mask verl reads), and segments give the
// exact trained and masked spans of its content. An assistant message's
// tool calls (OpenAI's form, as in ChatMessage) are trained when its
// loss_mask is 1; tool_call_id and name are a tool result's.
type SFTMessage struct {
	Role       string     `parquet:"role" json:"role"`
	Content    string     `parquet:"content" json:"content"`
	LossMask   int32      `parquet:"loss_mask" json:"loss_mask"`
	Segments   []SFTSpan  `parquet:"segments,list" json:"segments"`
	ToolCalls  []ToolCall `parquet:"tool_calls,list,optional" json:"tool_calls"`
	ToolCallID *string    `parquet:"tool_call_id,optional" json:"tool_call_id"`
	Name       *string    `parquet:"name,optional" json:"name"`
}

// SFTRow is one trajectory of a recipe.
type SFTRow struct {
	ID         string       `parquet:"id" json:"id"`
	TaskID     string       `parquet:"task_id" json:"task_id"`
	Recipe     string       `parquet:"recipe,dict" json:"recipe"`
	DataSource string       `parquet:"data_source,dict" json:"data_source"`
	Messages   []SFTMessage `parquet:"messages,list" json:"messages"`
	Reward     *float64     `parquet:"reward,optional" json:"reward"`
	Metadata   *string      `parquet:"metadata,optional" json:"metadata"`
	// Tools is the tools the conversation declared (OpenAI function
	// schemas) as JSON text, null when none.
	Tools *string `parquet:"tools,optional" json:"tools"`
}
