package validate

import (
	"encoding/json"
	"fmt"

	"github.com/redraft/redraft/export"
)

// pairRow reads a pairs row of either version: pairs/1 holds chosen and
// rejected as text, pairs/2 as message lists next to chosen_text and
// rejected_text.
type pairRow struct {
	export.PairRow
	Chosen   json.RawMessage `json:"chosen"`
	Rejected json.RawMessage `json:"rejected"`
}

func (v *validator) checkPairs(rows []pairRow) {
	v2 := v.ds.Schema == export.PairsSchema
	for i, r := range rows {
		if v.full() {
			return
		}
		row := int64(i)
		if len(r.Prompt) == 0 {
			v.fail(row, r.ID, "empty prompt")
		}
		var chosen, rejected string
		if v2 {
			chosen = v.pairResponse(row, r.ID, "chosen", r.Chosen, r.ChosenText)
			rejected = v.pairResponse(row, r.ID, "rejected", r.Rejected, r.RejectedText)
		} else {
			if json.Unmarshal(r.Chosen, &chosen) != nil || json.Unmarshal(r.Rejected, &rejected) != nil {
				v.fail(row, r.ID, "chosen or rejected is not text")
			}
		}
		if chosen == rejected {
			v.fail(row, r.ID, "chosen equals rejected")
		}
		if r.Transition != "i->c" && r.Transition != "c->i" {
			v.fail(row, r.ID, "transition %q is not a flip (i->c or c->i)", r.Transition)
		}
	}
}

// pairResponse checks a pairs/2 response column: one assistant message
// whose content is the text column's. It returns the text.
func (v *validator) pairResponse(row int64, id, name string, raw json.RawMessage, text string) string {
	var msgs []export.Message
	if err := json.Unmarshal(raw, &msgs); err != nil {
		v.fail(row, id, "%s is not a message list: %v", name, err)
		return text
	}
	if len(msgs) != 1 || msgs[0].Role != "assistant" {
		v.fail(row, id, "%s holds %d messages, not one assistant message", name, len(msgs))
		return text
	}
	if msgs[0].Content != text {
		v.fail(row, id, "%s's content is not %s_text", name, name)
	}
	return text
}

// checkResponseMessages checks rl/5's response_messages: the messages after
// the prompt in messages on rows that have them, else one assistant
// message holding the response.
func (v *validator) checkResponseMessages(rows []export.RLRow) {
	for i, r := range rows {
		if v.full() {
			return
		}
		id := fmt.Sprintf("group %s sample %d", r.GroupID, r.SampleIndex)
		got := r.ResponseMessages
		if got == nil {
			v.fail(int64(i), id, "response_messages is null")
			continue
		}
		want := []export.ChatMessage{{Role: "assistant", Content: r.Response}}
		if len(r.Messages) > len(r.Prompt) {
			want = r.Messages[len(r.Prompt):]
		}
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(want)
		if string(a) != string(b) {
			v.fail(int64(i), id, "response_messages %s, the response is %s", a, b)
		}
	}
}
