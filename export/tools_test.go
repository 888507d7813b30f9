package export_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/tokenizer"
)

func sp(s string) *string { return &s }

// toolRow is a small agent trajectory: a question, a tool call without content, its result,
// and the answer; the assistant messages are trained.
func toolRow() export.SFTRow {
	row := sftRow("traj-1",
		[]any{"user", "What is 12*34?", false},
		[]any{"assistant"},
		[]any{"tool", "408", false},
		[]any{"assistant", "12*34 = 408.", true})
	row.Messages[1].LossMask, row.Messages[1].Segments = 1, []export.SFTSpan{}
	row.Messages[1].ToolCalls = []export.ToolCall{{ID: "call_0", Type: "function", Function: export.ToolFunction{Name: "calculator", Arguments: `{"expression": "12*34"}`}}}
	row.Messages[2].ToolCallID, row.Messages[2].Name = sp("call_0"), sp("calculator")
	row.Tools = sp(`[{"type":"function","function":{"name":"calculator","parameters":{"type":"object","properties":{"expression":{"type":"string"}}}}}]`)
	return row
}

// Messages with tool calls come back from Parquet as they were written, with null
// tool_calls, tool_call_id and name where a message has none, in sft/3 and sft/4.
func TestToolCallsRoundTrip(t *testing.T) {
	row := toolRow()
	got, err := export.ReadRows[export.SFTRow](context.Background(), writeOne(t, "sft", export.SFTSchema, []export.SFTRow{row}))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(row)
	b, _ := json.Marshal(got[0])
	if string(a) != string(b) {
		t.Fatalf("read back\n %s\nwrote\n %s", b, a)
	}
	if got[0].Messages[0].ToolCalls != nil || got[0].Messages[0].ToolCallID != nil {
		t.Errorf("a message without tool calls reads back with %+v", got[0].Messages[0])
	}
	tt := syntheticTrack(t, tokenizer.FormatQwen3)
	tr, err := tt.Row(row)
	if err != nil {
		t.Fatal(err)
	}
	checkSchema(t, export.SFTTokensSchema, writeOne(t, "sft", export.SFTTokensSchema, []export.SFTTokensRow{tr}))
	trained := ""
	var ids []int
	for i, l := range tr.Labels {
		if l != -100 {
			ids = append(ids, int(tr.InputIDs[i]))
		}
	}
	trained = tt.Tok.Decode(ids)
	want := "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"12*34\"}}\n</tool_call><|im_end|>12*34 = 408.<|im_end|>"
	if trained != want {
		t.Errorf("trained %q, want %q", trained, want)
	}
	text, _, err := tt.Tok.RenderTextTools(tokenizer.FormatQwen3, mustTools(t, row.Tools), mustMsgs(t, row))
	if err != nil || !slices.Equal(tr.InputIDs, to32(tt.Tok.Encode(text))) {
		t.Errorf("input_ids are not the rendered text's tokens (%v)", err)
	}
	// chatml does not render tool calls: the row is refused with the reason.
	if _, err := syntheticTrack(t, tokenizer.FormatChatML).Row(row); err == nil {
		t.Error("chatml rendered tool calls")
	}
}

// An rl row of a recorded trajectory: the prompt untrained, then the response's assistant
// messages trained and its tool result masked, in one sequence.
func TestRLTrackMessages(t *testing.T) {
	row := toolRow()
	var conv []export.ChatMessage
	for _, m := range row.Messages {
		conv = append(conv, export.ChatMessage{Role: m.Role, Content: m.Content, ToolCalls: m.ToolCalls, ToolCallID: m.ToolCallID, Name: m.Name})
	}
	tt := syntheticTrack(t, tokenizer.FormatQwen3)
	tr, err := tt.RLTrackMessages(conv, 1, row.Tools, false)
	if err != nil || tr.Reason != "" {
		t.Fatal(err, tr.Reason)
	}
	var r export.RLRow
	tr.Apply(&r)
	sft, err := tt.Row(row)
	if err != nil {
		t.Fatal(err)
	}
	// The same tokens as the sft row, up to the template's newline after the last turn.
	n := len(r.InputIDs)
	if !slices.Equal(r.InputIDs, sft.InputIDs[:n]) || !slices.Equal(r.Labels, sft.Labels[:n]) || n != len(sft.InputIDs)-1 {
		t.Fatalf("rl track differs from the sft track:\n rl  %v %v\n sft %v %v", r.InputIDs, r.Labels, sft.InputIDs, sft.Labels)
	}
	if tr.ResponseLabels == nil || !slices.Contains(tr.ResponseLabels, -100) {
		t.Errorf("the tool result is not masked in the response: %v", tr.ResponseLabels)
	}
	// A single response that only calls a tool has a track too.
	one, err := tt.RLTrackMessages(conv[:2], 1, row.Tools, false)
	if err != nil || one.Reason != "" || one.ResponseLabels != nil {
		t.Errorf("tool-call response: %v %q %v", err, one.Reason, one.ResponseLabels)
	}
	empty, _ := tt.RLTrackMessages([]export.ChatMessage{conv[0], {Role: "assistant"}}, 1, nil, false)
	if empty.Reason == "" {
		t.Error("an empty response got a track")
	}
}

func mustTools(t *testing.T, s *string) []json.RawMessage {
	t.Helper()
	out, err := export.ParseTools(s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustMsgs(t *testing.T, row export.SFTRow) []tokenizer.Message {
	t.Helper()
	out, err := export.SFTTokenMessages(row)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func to32(xs []int) []int32 {
	out := make([]int32, len(xs))
	for i, x := range xs {
		out[i] = int32(x)
	}
	return out
}
