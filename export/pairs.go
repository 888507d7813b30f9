package export

// PairsSchema is the schema version of the pairs dataset. pairs/2 holds
// chosen and rejected as message lists (TRL's conversational preference
// form, which DPOTrainer and OpenRLHF's RewardDataset take with the prompt
// as it is), and their text in chosen_text and rejected_text; pairs/1 had
// the text in chosen and rejected.
const PairsSchema = "pairs/2"

// PairRow is one preference pair (SCL/ReVISE): for a revision that flipped
// correctness, the correct response is chosen over the wrong one. The prompt
// is the original question, not the episode's history.
type PairRow struct {
	ID         string    `parquet:"id" json:"id"`
	TaskID     string    `parquet:"task_id" json:"task_id"`
	DataSource string    `parquet:"data_source,dict" json:"data_source"`
	Prompt     []Message `parquet:"prompt,list" json:"prompt"`
	// Chosen and Rejected are each one assistant message holding the
	// response (see SetResponses); ChosenText and RejectedText are their
	// contents.
	Chosen       []Message `parquet:"chosen,list" json:"chosen"`
	Rejected     []Message `parquet:"rejected,list" json:"rejected"`
	ChosenText   string    `parquet:"chosen_text" json:"chosen_text"`
	RejectedText string    `parquet:"rejected_text" json:"rejected_text"`
	// Transition is "i->c" (the revision is chosen) or "c->i" (the first
	// attempt is chosen).
	Transition string `parquet:"transition,dict" json:"transition"`
	Turn       int32  `parquet:"turn" json:"turn"`
	// SampleIndex is the episode the pair came from.
	SampleIndex int32  `parquet:"sample_index" json:"sample_index"`
	Model       string `parquet:"model,dict" json:"model"`
}

// SetResponses sets a pair's chosen and rejected responses: the message
// lists and their text.
func (p *PairRow) SetResponses(chosen, rejected string) {
	p.Chosen = []Message{{Role: "assistant", Content: chosen}}
	p.Rejected = []Message{{Role: "assistant", Content: rejected}}
	p.ChosenText, p.RejectedText = chosen, rejected
}
