package export

import (
	"fmt"
	"slices"
)

// NoTokenizer is the token_reason of rl rows written without
// output.tokenizer: their token columns are null, not empty, so that a
// trainer cannot mistake "not tokenized" for "tokenized to nothing".
const NoTokenizer = "no tokenizer configured (output.tokenizer)"

// RLTokens is the token track of one rl row (schemas rl/3 on).
//
// The row is rendered exactly as the sft track renders a conversation: the
// prompt messages untrained, then one assistant message whose whole content
// is the response, trainable, tokenized in one piece by TokenTrack. So an
// rl row and an sft row of the same conversation get the same ids, and the
// response is tokenized as it continues the rendered prompt. The ids are
// split where training starts:
//
//   - prompt_ids: the tokens before the first trained one, which are the
//     prompt rendered with the format's generation prompt ("<|im_start|>
//     assistant\n"; for qwen3 followed by an empty think block, as Qwen3's
//     template with enable_thinking=False; Llama 3's assistant header);
//   - response_ids: the trained tokens, the response as the format renders
//     it (qwen3 drops leading newlines, llama3 trims whitespace) and the
//     end-of-turn token, which a generation ends with.
//
// Template text after the end-of-turn token (the newline of chatml and
// qwen3) is no part of a generation and is left out. The reasoning column is
// not in the track.
type RLTokens struct {
	PromptIDs, ResponseIDs []int32
	// ResponseLabels, when set, are the labels over ResponseIDs of a
	// response of several messages (a recorded trajectory): -100 on the
	// tokens that are not trained (tool results, user turns, the template's
	// text between messages), the id elsewhere. Nil: every response token
	// is trained.
	ResponseLabels []int32
	// Reason says why the row has no track; empty when it has one.
	Reason string
	// Source is the track's token_source ("" on a track: tokenizer);
	// Check its token_check ("" for null).
	Source, Check string
}

// CompareTracks is the token_check of an engine track against the
// configured tokenizer's track of the same row: "match" when the prompt
// ids are equal and so are the response ids, the tokenizer's end-of-turn
// token aside (the engine reports it only when it generated it: not on a
// response cut off by max_tokens or a stop string); "mismatch" otherwise;
// "" when the tokenizer gives no track to compare with. The tokenizer's
// track of one response always ends with its end-of-turn token, so an
// engine track one token shorter is compared without it.
func CompareTracks(engine, tok RLTokens) string {
	if tok.Reason != "" || engine.Reason != "" {
		return ""
	}
	tr := tok.ResponseIDs
	if len(engine.ResponseIDs) == len(tr)-1 {
		tr = tr[:len(tr)-1]
	}
	if slices.Equal(engine.PromptIDs, tok.PromptIDs) && slices.Equal(engine.ResponseIDs, tr) {
		return TokenCheckMatch
	}
	return TokenCheckMismatch
}

// RLTrack tokenizes one rl row's prompt and response. A row without a
// response, or one whose rendering does not split into prompt and response
// tokens, gets no track and a reason; the error is for a conversation the
// chat format cannot render at all (qwen3 with a role it does not know),
// which is a configuration mistake rather than a property of one sample.
func (c *TokenTrackConfig) RLTrack(prompt []Message, response string, failed bool) (RLTokens, error) {
	conv := make([]ChatMessage, 0, len(prompt)+1)
	for _, m := range prompt {
		conv = append(conv, ChatMessage{Role: m.Role, Content: m.Content})
	}
	conv = append(conv, ChatMessage{Role: "assistant", Content: response})
	return c.RLTrackMessages(conv, len(prompt), nil, failed)
}

// RLTrackMessages is RLTrack for a conversation in OpenAI's chat form (an
// rl row's messages column): conv[:promptLen] is the prompt, untrained, and
// conv[promptLen:] the response, whose assistant messages are trained
// (content and tool calls, and their end-of-turn token) and whose other
// messages (tool results, user turns) are not; tools is the row's tools
// column. prompt_ids are the tokens before the first trained one,
// response_ids run to the last trained one; a response of several messages
// carries its labels (ResponseLabels).
func (c *TokenTrackConfig) RLTrackMessages(conv []ChatMessage, promptLen int, tools *string, failed bool) (RLTokens, error) {
	empty := true
	for _, m := range conv[promptLen:] {
		if m.Role == "assistant" && (m.Content != "" || len(m.ToolCalls) > 0) {
			empty = false
		}
	}
	switch {
	case failed:
		return RLTokens{Reason: "no response: the request failed"}, nil
	case empty:
		return RLTokens{Reason: "empty response: no text to train on"}, nil
	}
	row := SFTRow{ID: "rl", Tools: tools}
	for i, m := range conv {
		n := int32(len([]rune(m.Content)))
		sm := SFTMessage{Role: m.Role, Content: m.Content, ToolCalls: m.ToolCalls, ToolCallID: m.ToolCallID, Name: m.Name}
		trained := i >= promptLen && m.Role == "assistant"
		role := "prompt"
		if i >= promptLen {
			role = "response"
		}
		if trained {
			sm.LossMask = 1
		}
		if n > 0 || !trained {
			sm.Segments = []SFTSpan{{Role: role, End: n, Trainable: trained}}
		}
		row.Messages = append(row.Messages, sm)
	}
	ids, labels, _, err := TokenTrack(c.Tok, c.Format, row)
	if err != nil {
		return RLTokens{}, fmt.Errorf("rendering the prompt with %s: %w", c.Format, err)
	}
	trained := func(l int32) bool { return l != -100 }
	first, last := slices.IndexFunc(labels, trained), len(labels)-1
	for last >= 0 && !trained(labels[last]) {
		last--
	}
	if first < 0 {
		return RLTokens{Reason: fmt.Sprintf("the %s format renders no trained token of the response (whitespace only)", c.Format)}, nil
	}
	gaps := slices.ContainsFunc(labels[first:last+1], func(l int32) bool { return !trained(l) })
	single := len(conv)-promptLen == 1
	if gaps && single {
		// Qwen3's template moves text before "</think>" into the think
		// block, with template text between: the response is no longer one
		// run of tokens after the prompt.
		return RLTokens{Reason: fmt.Sprintf("the %s format rewrites the response (text before </think>): it is not one run of tokens", c.Format)}, nil
	}
	// The prompt's tokens must be what tokenizing the rendered prompt alone
	// gives, which is what the model was sampled from. A token that spans
	// the end of the prompt and the start of the response ("\n" then a
	// response starting with "\n") breaks that.
	msgs, err := SFTTokenMessages(row)
	if err != nil {
		return RLTokens{}, err
	}
	toolList, err := ParseTools(tools)
	if err != nil {
		return RLTokens{}, err
	}
	text, spans, err := c.Tok.RenderTextTools(c.Format, toolList, msgs)
	if err != nil {
		return RLTokens{}, fmt.Errorf("rendering the prompt with %s: %w", c.Format, err)
	}
	if len(spans) == 0 || !slices.Equal(to32(c.Tok.Encode(text[:spans[0][0]])), ids[:first]) {
		return RLTokens{Reason: "a token spans the end of the prompt and the start of the response: the prompt's own tokens are not a prefix"}, nil
	}
	out := RLTokens{PromptIDs: ids[:first:first], ResponseIDs: ids[first : last+1]}
	if gaps {
		out.ResponseLabels = labels[first : last+1]
	}
	return out, nil
}

// Apply writes the track into a row: prompt_ids, response_ids, input_ids as
// their concatenation, labels -100 over the prompt and the response's ids
// over the response (or ResponseLabels), attention_mask all ones; or null
// columns and the reason.
func (t RLTokens) Apply(r *RLRow) {
	r.PromptIDs, r.ResponseIDs, r.InputIDs, r.Labels, r.AttentionMask = nil, nil, nil, nil, nil
	r.TokenSource, r.TokenCheck = nil, nil
	if t.Reason != "" {
		reason := t.Reason
		r.TokenReason = &reason
		return
	}
	r.TokenReason = nil
	src := t.Source
	if src == "" {
		src = TokenSourceTokenizer
	}
	r.TokenSource = &src
	if t.Check != "" {
		check := t.Check
		r.TokenCheck = &check
	}
	np := len(t.PromptIDs)
	r.PromptIDs, r.ResponseIDs = t.PromptIDs, t.ResponseIDs
	r.InputIDs = slices.Concat(t.PromptIDs, t.ResponseIDs)
	r.Labels = make([]int32, len(r.InputIDs))
	r.AttentionMask = make([]int32, len(r.InputIDs))
	for i := range r.InputIDs {
		r.Labels[i], r.AttentionMask[i] = -100, 1
		switch {
		case i < np:
		case t.ResponseLabels != nil:
			r.Labels[i] = t.ResponseLabels[i-np]
		default:
			r.Labels[i] = r.InputIDs[i]
		}
	}
}
