package validate_test

import (
	"context"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/exporttest"
	"github.com/redraft/redraft/tokenizer"
	"github.com/redraft/redraft/validate"
)

func strp(s string) *string { return &s }

// toolTrajectory is an agent trajectory: a question, a tool call, its result, the answer.
func toolTrajectory() export.SFTRow {
	row := exporttest.SFTRow("traj",
		[]any{"system", "Use the calculator.", false},
		[]any{"user", "What is 12*34?", false},
		[]any{"assistant"},
		[]any{"tool", "408", false},
		[]any{"assistant", "12*34 = 408.", true})
	row.Messages[2].LossMask, row.Messages[2].Segments = 1, []export.SFTSpan{}
	row.Messages[2].ToolCalls = []export.ToolCall{{ID: "c0", Type: "function", Function: export.ToolFunction{Name: "calculator", Arguments: `{"expression": "12*34"}`}}}
	row.Messages[3].ToolCallID = strp("c0")
	row.Tools = strp(`[{"type":"function","function":{"name":"calculator","parameters":{"type":"object"}}}]`)
	return row
}

// The same trajectory as an rl row: the prompt, then the response's three messages.
func toolRLGroup() []export.RLRow {
	g := exporttest.GRPOGroup("t", 1, 0)
	row := toolTrajectory()
	for i := range g {
		r := &g[i]
		r.Prompt = []export.Message{{Role: "system", Content: row.Messages[0].Content}, {Role: "user", Content: row.Messages[1].Content}}
		r.Response = row.Messages[4].Content
		r.Tools = row.Tools
		for _, m := range row.Messages {
			r.Messages = append(r.Messages, export.ChatMessage{Role: m.Role, Content: m.Content, ToolCalls: m.ToolCalls, ToolCallID: m.ToolCallID})
		}
	}
	return g
}

// validate re-renders the token tracks of tool-call rows (sft and rl) and fails on a mask
// shifted by one token, on tool fields where they do not belong and on a loss_mask that
// says nothing is trained while the tool calls are.
func TestValidateToolCalls(t *testing.T) {
	trainedAt := func(labels []int32) int {
		for i, l := range labels {
			if l != -100 {
				return i
			}
		}
		return -1
	}
	for _, tc := range []struct {
		name   string
		before func(*exporttest.Fixture)
		want   string
	}{
		{name: "valid"},
		{name: "sft mask shifted by one token", before: func(fx *exporttest.Fixture) {
			fx.SFTRows = func(rows []export.SFTTokensRow) {
				// The first trained token (the tool call's) becomes masked and the
				// one before it (template text) trained: one mask bit shifted.
				r := &rows[2]
				k := trainedAt(r.Labels)
				r.Labels[k-1], r.Labels[k] = r.InputIDs[k-1], -100
			}
		}, want: "(traj): labels do not match the trainable spans"},
		{name: "sft tool result trained", before: func(fx *exporttest.Fixture) {
			fx.SFTRows = func(rows []export.SFTTokensRow) {
				r := &rows[2]
				for i := len(r.Labels) - 1; i > 0; i-- {
					if r.Labels[i] != -100 && r.Labels[i-1] == -100 {
						r.Labels[i-1] = r.InputIDs[i-1] // the template text just before the answer
						return
					}
				}
			}
		}, want: "(traj): labels do not match the trainable spans"},
		{name: "rl mask shifted inside the response", before: func(fx *exporttest.Fixture) {
			fx.RLRows = func(gs [][]export.RLRow) {
				r := &gs[3][0]
				np := len(r.PromptIDs)
				for i := np; i < len(r.Labels)-1; i++ {
					if r.Labels[i] == -100 {
						r.Labels[i] = r.InputIDs[i] // the first masked token of the tool result trained
						return
					}
				}
			}
		}, want: "(group t#t0 sample 0): labels do not match the trained messages"},
		{name: "tool calls on a user message", before: func(fx *exporttest.Fixture) {
			fx.SFTRows = func(rows []export.SFTTokensRow) {
				rows[2].Messages[1].ToolCalls = rows[2].Messages[2].ToolCalls
			}
		}, want: "(traj): message 1: a user message with tool calls"},
		{name: "tool_call_id on an assistant message", before: func(fx *exporttest.Fixture) {
			fx.RL[3][0].Messages[2].ToolCallID = strp("c0")
		}, want: "(group t#t0 sample 0): message 2: a assistant message with a tool_call_id"},
		{name: "loss_mask 0 on trained text", before: func(fx *exporttest.Fixture) {
			fx.SFT[2].Messages[4].LossMask = 0
		}, want: "(traj): message 4: loss_mask 0"},
		{name: "rl messages do not start with the prompt", before: func(fx *exporttest.Fixture) {
			fx.RL[3][1].Messages[1].Content = "another question"
		}, want: "(group t#t0 sample 1): messages[1] (user) is not prompt[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fx := exporttest.New()
			fx.RL = append(fx.RL, toolRLGroup())
			fx.SFT = append(fx.SFT, toolTrajectory())
			if tc.before != nil {
				tc.before(fx)
			}
			track := exporttest.SyntheticTrack(t, tokenizer.FormatQwen3)
			fx.Write(t, dir, track)
			rep, err := validate.Dir(context.Background(), dir, validate.Options{Tokens: track})
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, v := range rep.Violations {
				lines = append(lines, v.String())
			}
			all := strings.Join(lines, "\n")
			switch {
			case tc.want == "" && !rep.OK():
				t.Fatalf("valid output rejected:\n%s", all)
			case tc.want != "" && !strings.Contains(all, tc.want):
				t.Fatalf("want a violation containing %q, got:\n%s", tc.want, all)
			}
		})
	}
}
