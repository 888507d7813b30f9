package export

import (
	"slices"
	"strings"
	"testing"

	"github.com/redraft/redraft/internal/pycheck"
	"github.com/redraft/redraft/tokenizer"
)

// An rl row's track is the sft track of the same conversation (the prompt,
// then the response as a trainable assistant message) split where training
// starts: input_ids are the sft ids up to the end-of-turn token, labels the
// sft labels there, and nothing of the prompt is trained.
func TestRLTrackAgreesWithSFT(t *testing.T) {
	prompt := []Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "What is 3 + 5? Ünïcödé, 数字 42."}}
	multi := append(slices.Clone(prompt), Message{Role: "assistant", Content: "It is 9."}, Message{Role: "user", Content: "Check again."})
	for _, tc := range []struct {
		name     string
		format   tokenizer.Format
		prompt   []Message
		response string
		// tail is the template text the sft track renders after the
		// end-of-turn token, which is no part of a generation.
		tail string
		// text is the response as the format renders it.
		text string
	}{
		{"chatml", tokenizer.FormatChatML, prompt, "3 + 5 = 8. The answer is \\boxed{8}.", "\n", ""},
		{"chatml multi-turn", tokenizer.FormatChatML, multi, "Sorry: 8.", "\n", ""},
		{"qwen3", tokenizer.FormatQwen3, prompt, "\n\nfoo bar 8", "\n", "foo bar 8"},
		{"qwen3 multi-turn", tokenizer.FormatQwen3, multi, "It is 8.", "\n", ""},
		{"llama3 trims", tokenizer.FormatLlama3, prompt, "  The answer is 8.\n", "", "The answer is 8."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := syntheticTrack(t, tc.format)
			tr, err := tt.RLTrack(tc.prompt, tc.response, false)
			if err != nil || tr.Reason != "" {
				t.Fatalf("track: %v %q", err, tr.Reason)
			}
			var r RLRow
			tr.Apply(&r)
			msgs := [][]any{}
			for _, m := range tc.prompt {
				msgs = append(msgs, []any{m.Role, m.Content, false})
			}
			msgs = append(msgs, []any{"assistant", tc.response, true})
			ids, labels, _, err := TokenTrack(tt.Tok, tt.Format, sftRow("x", msgs...))
			if err != nil {
				t.Fatal(err)
			}
			n := len(r.InputIDs)
			if n > len(ids) || !slices.Equal(r.InputIDs, ids[:n]) || !slices.Equal(r.Labels, labels[:n]) {
				t.Fatalf("rl track differs from the sft track:\nrl  %v %v\nsft %v %v", r.InputIDs, r.Labels, ids, labels)
			}
			if tail := tt.Tok.Decode(toInt(ids[n:])); tail != tc.tail || slices.ContainsFunc(labels[n:], func(l int32) bool { return l != -100 }) {
				t.Errorf("the sft track goes on with %q (labels %v), want untrained %q", tail, labels[n:], tc.tail)
			}
			np := len(r.PromptIDs)
			if !slices.Equal(r.InputIDs, slices.Concat(r.PromptIDs, r.ResponseIDs)) || len(r.AttentionMask) != n || r.TokenReason != nil {
				t.Fatalf("columns: %+v", r)
			}
			for k, l := range r.Labels {
				if (k < np) != (l == -100) {
					t.Fatalf("label %d at token %d of %d prompt tokens", l, k, np)
				}
			}
			// The prompt alone, with the generation prompt, tokenizes to
			// prompt_ids; the response tokens spell the response.
			text, _, err := tt.Tok.RenderText(tt.Format, mustMessages(t, sftRow("x", msgs...)))
			if err != nil {
				t.Fatal(err)
			}
			gen := tt.Tok.Decode(toInt(r.PromptIDs))
			if !strings.HasPrefix(text, gen) || !strings.HasSuffix(gen, map[tokenizer.Format]string{
				tokenizer.FormatChatML: "<|im_start|>assistant\n",
				tokenizer.FormatQwen3:  "<|im_start|>assistant\n<think>\n\n</think>\n\n",
				tokenizer.FormatLlama3: "<|start_header_id|>assistant<|end_header_id|>\n\n",
			}[tc.format]) {
				t.Errorf("prompt_ids decode to %q", gen)
			}
			want := tc.text
			if want == "" {
				want = tc.response
			}
			resp := tt.Tok.Decode(toInt(r.ResponseIDs))
			if eot := map[tokenizer.Format]string{tokenizer.FormatLlama3: "<|eot_id|>"}[tc.format]; eot != "" {
				want += eot
			} else {
				want += "<|im_end|>"
			}
			if resp != want {
				t.Errorf("response_ids decode to %q, want %q", resp, want)
			}
		})
	}
}

// Rows that cannot carry a track say why, with null columns.
func TestRLTrackReasons(t *testing.T) {
	prompt := []Message{{Role: "user", Content: "Q?"}}
	for _, tc := range []struct {
		name, response string
		format         tokenizer.Format
		prompt         []Message
		failed         bool
		reason, err    string
	}{
		{name: "failed request", format: tokenizer.FormatChatML, prompt: prompt, failed: true, reason: "request failed"},
		{name: "empty response", format: tokenizer.FormatChatML, prompt: prompt, reason: "empty response"},
		{name: "whitespace under llama3", response: " \n ", format: tokenizer.FormatLlama3, prompt: prompt, reason: "no trained token"},
		{name: "qwen3 moves thinking", response: "Let me think.</think>\n\nIt is 4.", format: tokenizer.FormatQwen3, prompt: prompt, reason: "rewrites the response"},
		{name: "qwen3 unknown role", response: "4", format: tokenizer.FormatQwen3, prompt: []Message{{Role: "critic", Content: "x"}}, err: "role \"critic\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := syntheticTrack(t, tc.format).RLTrack(tc.prompt, tc.response, tc.failed)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !strings.Contains(tr.Reason, tc.reason) {
				t.Fatalf("reason %q (error %v), want %q", tr.Reason, err, tc.reason)
			}
			r := RLRow{PromptIDs: []int32{1}}
			tr.Apply(&r)
			if r.TokenReason == nil || r.PromptIDs != nil || r.ResponseIDs != nil || r.InputIDs != nil || r.Labels != nil || r.AttentionMask != nil {
				t.Errorf("row: %+v", r)
			}
		})
	}
}

// qwen3Tokenizer is the real Qwen3 tokenizer.json (see pycheck.Tokenizer).
func qwen3Tokenizer(t *testing.T) string { return pycheck.Tokenizer(t, "qwen3") }

// With Qwen3's vocabulary, newlines merge: a chatml response that starts
// with newlines would share its first token with the generation prompt, so
// it gets no track rather than prompt_ids the model never saw.
func TestRLTrackTokenAcrossPromptEnd(t *testing.T) {
	tt, err := LoadTokenTrack(qwen3Tokenizer(t), tokenizer.FormatChatML)
	if err != nil {
		t.Fatal(err)
	}
	prompt := []Message{{Role: "user", Content: "Q?"}}
	for _, tc := range []struct{ response, reason string }{
		{"\n\nIt is 4.", "spans the end of the prompt"},
		{"It is 4.\n\n", ""},
	} {
		tr, err := tt.RLTrack(prompt, tc.response, false)
		if err != nil || !strings.Contains(tr.Reason, tc.reason) || (tc.reason == "") != (tr.Reason == "") {
			t.Errorf("%q: reason %q (error %v), want %q", tc.response, tr.Reason, err, tc.reason)
		}
	}
}

func toInt(xs []int32) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = int(x)
	}
	return out
}

func mustMessages(t *testing.T, row SFTRow) []tokenizer.Message {
	t.Helper()
	m, err := SFTTokenMessages(row)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
