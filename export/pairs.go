package export

// PairsSchema is the schema version of the pairs dataset.
const PairsSchema = "pairs/1"

// PairRow is one preference pair (SCL/ReVISE): for a revision that flipped
// correctness, the correct response is chosen over the wrong one. The prompt
// is the original question, not the episode's history.
type PairRow struct {
	ID         string    `parquet:"id" json:"id"`
	TaskID     string    `parquet:"task_id" json:"task_id"`
	DataSource string    `parquet:"data_source,dict" json:"data_source"`
	Prompt     []Message `parquet:"prompt,list" json:"prompt"`
	Chosen     string    `parquet:"chosen" json:"chosen"`
	Rejected   string    `parquet:"rejected" json:"rejected"`
	// Transition is "i->c" (the revision is chosen) or "c->i" (the first
	// attempt is chosen).
	Transition string `parquet:"transition,dict" json:"transition"`
	Turn       int32  `parquet:"turn" json:"turn"`
	// SampleIndex is the episode the pair came from.
	SampleIndex int32  `parquet:"sample_index" json:"sample_index"`
	Model       string `parquet:"model,dict" json:"model"`
}
