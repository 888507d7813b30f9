package export

// SFTSchema is the schema version of the sft dataset.
const SFTSchema = "sft/1"

// SFTSpan locates one segment in its message's content, in Unicode code
// points: content[start:end] in Python is the segment's text.
type SFTSpan struct {
	Role      string `parquet:"role" json:"role"`
	Start     int32  `parquet:"start" json:"start"`
	End       int32  `parquet:"end" json:"end"`
	Trainable bool   `parquet:"trainable" json:"trainable"`
}

// SFTMessage is one chat message with its masks: loss_mask is 1 when any of
// its text is trained (the per-message mask verl reads), and segments give
// the exact trained and masked spans.
type SFTMessage struct {
	Role     string    `parquet:"role" json:"role"`
	Content  string    `parquet:"content" json:"content"`
	LossMask int32     `parquet:"loss_mask" json:"loss_mask"`
	Segments []SFTSpan `parquet:"segments,list" json:"segments"`
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
}
