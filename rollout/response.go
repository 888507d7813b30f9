package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/redraft/redraft/tokenizer"
)

// Reading a chat completion's answer.
//
// redraft reads every successful response body itself (patchingDoer hands
// go-openai an empty object in its place) for three reasons:
//
//   - Memory. go-openai decodes through json.Decoder, which buffers the body
//     in a buffer grown by doubling, then unquotes each string into a new
//     buffer and copies it into a string: about four times a response's
//     size in transient garbage, per response in flight. Here the body is
//     read once into a buffer of its exact size (Content-Length), and the
//     text fields are unquoted straight into one allocation of their exact
//     length, which becomes the string: the body plus the text at the peak
//     of one response, the text alone after it.
//   - Size. No more than EndpointConfig.MaxResponseBytes is ever read.
//   - Absence. A choice whose message is missing or null, or a message with
//     nothing in it, is told apart from a real empty answer (see
//     answerOf), which decoding into go-openai's structs cannot do.

// DefaultMaxResponseBytes bounds a response body when EndpointConfig leaves
// it 0. A reasoning model's 128k-token answer is about 0.5 MB of text, 10 MB
// with logprobs (about 80 bytes a token) and 26 MB streamed (about 200 bytes
// an event); top_logprobs add about 60 bytes a token per alternative. At 64
// requests in flight the limit also bounds the bodies in memory to 4 GiB.
const DefaultMaxResponseBytes = 64 << 20

// maxErrorBody bounds how much of an error response (4xx, 5xx) is read: its
// message is cut to one line of 300 characters anyway.
const maxErrorBody = 64 << 10

// errTooLarge is the failure of a response body over the size limit.
type errTooLarge struct {
	limit int64
	// declared is the Content-Length when that is what was over; -1
	// when the body was read up to the limit.
	declared int64
}

func (e *errTooLarge) Error() string {
	if e.declared >= 0 {
		return fmt.Sprintf("response of %d bytes (Content-Length) is over the limit of %s (endpoint.max_response_bytes)", e.declared, formatBytes(e.limit))
	}
	return fmt.Sprintf("response is over the limit of %s (endpoint.max_response_bytes)", formatBytes(e.limit))
}

// formatBytes writes a byte count in the unit it is a whole multiple of.
func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// limitedReader reads from r and fails with *errTooLarge once more than
// limit bytes arrive (it reads at most limit+1).
type limitedReader struct {
	r     io.Reader
	limit int64
	n     int64 // bytes read so far
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n > l.limit {
		return 0, &errTooLarge{limit: l.limit, declared: -1}
	}
	if rest := l.limit + 1 - l.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.limit {
		return n, &errTooLarge{limit: l.limit, declared: -1}
	}
	return n, err
}

// readBody reads a whole response body of at most limit bytes. With a
// Content-Length it allocates exactly that once; without one it reads in
// blocks and joins them (twice the body at the end, briefly).
func readBody(r io.Reader, contentLength, limit int64) ([]byte, error) {
	if contentLength > limit {
		return nil, &errTooLarge{limit: limit, declared: contentLength}
	}
	if contentLength >= 0 {
		buf := make([]byte, contentLength)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	lr := &limitedReader{r: r, limit: limit}
	var blocks [][]byte
	total, size := 0, 32<<10
	for {
		b := make([]byte, size)
		n, err := io.ReadFull(lr, b)
		if n > 0 {
			blocks = append(blocks, b[:n])
			total += n
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		size = min(2*size, 4<<20)
	}
	if len(blocks) == 1 {
		return blocks[0], nil
	}
	out := make([]byte, 0, total)
	for _, b := range blocks {
		out = append(out, b...)
	}
	return out, nil
}

// jsonText is a JSON string decoded into one allocation of its exact length
// (encoding/json would allocate twice for a string with escapes: the
// unquoted bytes, then the string).
type jsonText string

// UnmarshalJSON implements json.Unmarshaler. data is a JSON value already
// validated by encoding/json; anything but a string is refused.
func (t *jsonText) UnmarshalJSON(data []byte) error {
	s, ok := unquoteJSON(data)
	if !ok {
		return fmt.Errorf("want a string, got %.20s", data)
	}
	*t = jsonText(s)
	return nil
}

// unquoteJSON decodes a JSON string literal exactly as encoding/json does
// (invalid UTF-8 and lone surrogates become U+FFFD), counting the result
// first so that it is written once into its own buffer. It refuses what
// encoding/json's scanner refuses in a string (control characters, escapes
// other than \" \\ \/ \b \f \n \r \t \uXXXX), so it also checks
// literals that encoding/json never sees (extractBig).
func unquoteJSON(lit []byte) (string, bool) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return "", false
	}
	s := lit[1 : len(lit)-1]
	n, ok := unquoteTo(nil, s)
	if !ok {
		return "", false
	}
	if n == 0 {
		return "", true
	}
	b := make([]byte, n)
	unquoteTo(b, s)
	// b is this function's own and never written again.
	return unsafe.String(&b[0], n), true
}

// unquoteTo writes the unquoted s to dst and returns its length; with dst
// nil it only counts. dst must hold the count.
func unquoteTo(dst, s []byte) (int, bool) {
	w := 0
	put := func(c byte) {
		if dst != nil {
			dst[w] = c
		}
		w++
	}
	putRune := func(r rune) {
		if dst != nil {
			w += utf8.EncodeRune(dst[w:], r)
		} else {
			w += utf8.RuneLen(r)
		}
	}
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			r++
			if r >= len(s) {
				return 0, false
			}
			switch s[r] {
			case '"', '\\', '/':
				put(s[r])
			case 'b':
				put('\b')
			case 'f':
				put('\f')
			case 'n':
				put('\n')
			case 'r':
				put('\r')
			case 't':
				put('\t')
			case 'u':
				rr := getu4(s[r-1:])
				if rr < 0 {
					return 0, false
				}
				r += 5
				if utf16.IsSurrogate(rr) {
					if dec := utf16.DecodeRune(rr, getu4(s[r:])); dec != unicode.ReplacementChar {
						putRune(dec)
						r += 6
						continue
					}
					rr = unicode.ReplacementChar
				}
				putRune(rr)
				continue
			default:
				return 0, false
			}
			r++
		case c == '"', c < ' ':
			return 0, false
		case c < utf8.RuneSelf:
			put(c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			r += size
			putRune(rr)
		}
	}
	return w, true
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// The parts of a chat completion (or of one streamed chunk) that redraft
// reads. Pointers are nil when the field is absent or null.
type wireCompletion struct {
	Model   string       `json:"model"`
	Choices []wireChoice `json:"choices"`
	Usage   *wireUsage   `json:"usage"`
	// Error and Object: an error reported in a 200 (a proxy's, or one
	// sent in the middle of a stream).
	Error  json.RawMessage `json:"error"`
	Object string          `json:"object"`
	// Message is the message of an error object at the top level
	// (vLLM's {"object": "error", "message": ...}).
	Message string `json:"message"`
	// PromptTokenIDs is the prompt as the engine tokenized it (vLLM's
	// answer to return_token_ids; the first event of a stream).
	PromptTokenIDs []int32 `json:"prompt_token_ids"`
}

type wireChoice struct {
	Index int `json:"index"`
	// Message is a completion's, Delta a streamed chunk's.
	Message      *wireMessage  `json:"message"`
	Delta        *wireMessage  `json:"delta"`
	FinishReason *string       `json:"finish_reason"`
	Logprobs     *wireLogprobs `json:"logprobs"`
	// TokenIDs are the generated tokens' ids (vLLM's answer to
	// return_token_ids; a streamed chunk's are its delta's).
	TokenIDs []int32 `json:"token_ids"`
}

type wireMessage struct {
	Content *jsonText `json:"content"`
	// ReasoningContent is vLLM's, SGLang's and llama-server's separate
	// reasoning; Reasoning is the name newer vLLM releases use.
	ReasoningContent *jsonText       `json:"reasoning_content"`
	Reasoning        *jsonText       `json:"reasoning"`
	ToolCalls        json.RawMessage `json:"tool_calls"`
}

// reasoning is the message's reasoning under either name.
func (m *wireMessage) reasoning() string {
	if m.ReasoningContent != nil && *m.ReasoningContent != "" {
		return string(*m.ReasoningContent)
	}
	if m.Reasoning != nil {
		return string(*m.Reasoning)
	}
	return ""
}

// hasToolCalls reports a non-empty tool_calls list.
func (m *wireMessage) hasToolCalls() bool {
	t := strings.TrimSpace(string(m.ToolCalls))
	return t != "" && t != "null" && t != "[]"
}

// wireToolCall is one tool call of a message, or a piece of one in a
// streamed delta (which carries its index; its id, type and name come once,
// its arguments in pieces).
type wireToolCall struct {
	Index    *int   `json:"index"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
		// Arguments is JSON text in a string (OpenAI's form); a server
		// that sends an object gets it written as JSON text.
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

// toolCalls decodes the message's tool_calls; str maps strings a large body
// had taken out back to their text. A list that does not decode gives none
// (the answer still counts as calling tools, see hasToolCalls).
func (m *wireMessage) toolCalls(str func(string) string) []wireToolCall {
	if !m.hasToolCalls() {
		return nil
	}
	var calls []wireToolCall
	if json.Unmarshal(m.ToolCalls, &calls) != nil {
		return nil
	}
	for i := range calls {
		c := &calls[i]
		c.ID, c.Type, c.Function.Name = str(c.ID), str(c.Type), str(c.Function.Name)
		var s string
		if json.Unmarshal(c.Function.Arguments, &s) == nil {
			c.Function.Arguments = json.RawMessage(str(s))
		} else if isNull(c.Function.Arguments) {
			c.Function.Arguments = nil
		} else if t, err := tokenizer.PyJSON(c.Function.Arguments); err == nil {
			c.Function.Arguments = json.RawMessage(t)
		}
	}
	return calls
}

// toolCallSet puts tool calls together, from one message or from the deltas
// of a stream, in the order their indexes first appear.
type toolCallSet struct {
	calls []ToolCall
	index map[int]int
}

func (t *toolCallSet) add(pos int, c wireToolCall) {
	k := pos
	if c.Index != nil {
		k = *c.Index
	}
	if t.index == nil {
		t.index = map[int]int{}
	}
	i, ok := t.index[k]
	if !ok {
		i = len(t.calls)
		t.index[k] = i
		t.calls = append(t.calls, ToolCall{})
	}
	tc := &t.calls[i]
	if c.ID != "" {
		tc.ID = c.ID
	}
	if c.Type != "" {
		tc.Type = c.Type
	}
	tc.Function.Name += c.Function.Name
	tc.Function.Arguments += string(c.Function.Arguments)
}

// list is the calls put together, each of type function unless it said
// otherwise.
func (t *toolCallSet) list() []ToolCall {
	for i := range t.calls {
		if t.calls[i].Type == "" {
			t.calls[i].Type = "function"
		}
	}
	return t.calls
}

type wireLogprobs struct {
	Content []wireLogprob `json:"content"`
}

type wireLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	// ID is the token's id: llama-server sends it with every entry.
	ID *int32 `json:"id"`
}

type wireUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

// errorMessage is the message of an error reported inside a 200 body, ""
// when there is none.
func (c *wireCompletion) errorMessage() string {
	if len(c.Error) > 0 && string(c.Error) != "null" {
		var e struct {
			Message string `json:"message"`
		}
		var s string
		switch {
		case json.Unmarshal(c.Error, &e) == nil && e.Message != "":
			return e.Message
		case json.Unmarshal(c.Error, &s) == nil && s != "":
			return s
		}
		return string(c.Error)
	}
	if c.Object == "error" {
		if c.Message != "" {
			return c.Message
		}
		return "error"
	}
	return ""
}

// answer is what a completion or a stream said about its first choice,
// before it is judged to be an answer or not.
type answer struct {
	model string
	// choices: the response had at least one choice; message: the
	// choice had a message object (delta, streamed).
	choices, message bool
	// content: the message had content that was a string (even "").
	content                  bool
	text, reasoning          string
	toolCalls                bool
	calls                    toolCallSet
	finishReason             string
	finished                 bool // finish_reason was a string
	usage                    *wireUsage
	logprobs                 []TokenLogprob
	streamed, streamComplete bool
	// promptIDs and tokenIDs are the engine's token ids (vLLM's
	// prompt_token_ids and token_ids), nil when it sent none; tokenIDs
	// seen marks a choice that carried token_ids. lpIDs are the ids of
	// the logprob entries (llama-server), kept while every entry had one.
	promptIDs, tokenIDs []int32
	tokenIDsSeen        bool
	lpIDs               []int32
	lpNoID              bool
}

// addLogprob appends one logprob entry and its id.
func (a *answer) addLogprob(e wireLogprob, str func(string) string) {
	a.logprobs = append(a.logprobs, TokenLogprob{Token: str(e.Token), Logprob: e.Logprob})
	if e.ID == nil {
		a.lpNoID = true
		return
	}
	a.lpIDs = append(a.lpIDs, *e.ID)
}

// engineIDs is the response's token ids as the engine reported them: the
// choice's token_ids, else the ids of its logprob entries when every entry
// had one; nil when the server sent neither.
func (a *answer) engineIDs() []int32 {
	if a.tokenIDsSeen {
		if a.tokenIDs == nil {
			return []int32{}
		}
		return a.tokenIDs
	}
	if !a.lpNoID && len(a.lpIDs) > 0 && len(a.lpIDs) == len(a.logprobs) {
		return a.lpIDs
	}
	return nil
}

// response judges an answer: a Response, or why it is not one (a server
// fault, worth a retry).
//
// What counts as an answer: a choice with a message that holds content (a
// string, "" included), reasoning or tool calls. Not an answer: no choices;
// a choice without a message or with message null; a message with neither
// content nor reasoning nor tool calls; content "" with nothing else when
// the server reports finish_reason stop and 0 completion tokens (a model
// that answers "" at once still generates its end-of-sequence token, which
// vLLM, SGLang and llama-server count); a stream that ended before its
// finish_reason. A model may legitimately answer "": with a token count, or
// with no usage reported, it is kept as an empty answer.
func (a *answer) response() (Response, string) {
	switch {
	case a.streamed && !a.streamComplete && !a.finished:
		return Response{}, "stream ended before the answer was finished (no finish_reason)"
	case !a.choices:
		return Response{}, "response has no choices"
	case !a.message && a.streamed:
		return Response{}, "stream has no message deltas"
	case !a.message:
		return Response{}, "choice has no message"
	case !a.content && a.reasoning == "" && !a.toolCalls:
		return Response{}, "message has no content, reasoning or tool calls"
	case a.text == "" && a.reasoning == "" && !a.toolCalls && a.finishReason == "stop" && a.usage != nil && a.usage.CompletionTokens == 0:
		return Response{}, "empty answer with 0 completion tokens"
	}
	out := Response{Text: a.text, Reasoning: a.reasoning, ToolCalls: a.calls.list(), FinishReason: a.finishReason, Model: a.model, Logprobs: a.logprobs,
		PromptIDs: a.promptIDs, ResponseIDs: a.engineIDs()}
	if u := a.usage; u != nil && (u.PromptTokens != 0 || u.CompletionTokens != 0) {
		out.Usage = &Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}
	}
	return out, ""
}

// bigString is the length from which a string literal of a body is decoded
// in place (see extractBig).
const bigString = 64 << 10

// decodeCompletion reads a non-streamed chat completion body. It takes the
// body over: the text of a large answer may be decoded in place and kept in
// it (see extractBig).
func decodeCompletion(body []byte) (*answer, error) {
	return decodeCompletionAt(body, bigString)
}

// decodeCompletionAt is decodeCompletion with string literals from big bytes
// on handled by extractBig.
func decodeCompletionAt(body []byte, big int) (*answer, error) {
	small, bigs, err := extractBig(body, big)
	if err != nil {
		return nil, err
	}
	var c wireCompletion
	if err := json.Unmarshal(small, &c); err != nil {
		return nil, err
	}
	// Every string read is looked up (only the answer's text is large in
	// practice, but any value may have been taken out).
	str := func(s string) string {
		if v, ok := bigs[s]; ok {
			return v
		}
		return s
	}
	text := func(t *jsonText) {
		if t != nil {
			*t = jsonText(str(string(*t)))
		}
	}
	c.Model, c.Object, c.Message = str(c.Model), str(c.Object), str(c.Message)
	if msg := c.errorMessage(); msg != "" && len(c.Choices) == 0 {
		return nil, &serverError{str(msg)}
	}
	a := &answer{model: c.Model, usage: c.Usage, promptIDs: c.PromptTokenIDs}
	if len(c.Choices) == 0 {
		return a, nil
	}
	a.choices = true
	ch := &c.Choices[0]
	if ch.FinishReason != nil {
		a.finishReason, a.finished = str(*ch.FinishReason), true
	}
	if m := ch.Message; m != nil {
		text(m.Content)
		text(m.ReasoningContent)
		text(m.Reasoning)
		a.message = true
		if m.Content != nil {
			a.content, a.text = true, string(*m.Content)
		}
		a.reasoning, a.toolCalls = m.reasoning(), m.hasToolCalls()
		for i, c := range m.toolCalls(str) {
			c.Index = nil // one message: its calls in their order
			a.calls.add(i, c)
		}
	}
	if lp := ch.Logprobs; lp != nil && lp.Content != nil {
		a.logprobs = make([]TokenLogprob, 0, len(lp.Content))
		for _, e := range lp.Content {
			a.addLogprob(e, str)
		}
	}
	if ch.TokenIDs != nil {
		a.tokenIDs, a.tokenIDsSeen = ch.TokenIDs, true
	}
	return a, nil
}

// extractBig takes the string values of body of at least big bytes (keys
// stay) out of it, so that encoding/json never sees them: it returns a copy of body with
// each replaced by a short placeholder string, and each one's decoded text
// by its placeholder's. A literal is decoded in place, inside body, and its
// text points there when such literals make up at least half of body (body
// is then kept as long as the text, at most twice its size); otherwise, or
// when the literal holds invalid UTF-8 (whose replacement characters take
// more room than the bytes they replace), into a buffer of its own. Either
// way a large answer costs its body and nothing more while it is decoded,
// and encoding/json checks the rest of the body as usual; the literals are
// checked as unquoteJSON checks a string.
func extractBig(body []byte, big int) ([]byte, map[string]string, error) {
	// Find the literals: outside a string, '"' opens one; inside, '\\'
	// escapes the next byte and '"' closes it. For a body that is not
	// JSON the spans may be anything, and the checks below refuse it.
	var spans [][2]int
	total := 0
	for i, in, start := 0, false, 0; i < len(body); i++ {
		switch c := body[i]; {
		case !in:
			if c == '"' {
				in, start = true, i
			}
		case c == '\\':
			i++
		case c == '"':
			in = false
			if i+1-start >= big && !isKey(body[i+1:]) {
				spans = append(spans, [2]int{start, i + 1})
				total += i + 1 - start
			}
		}
	}
	if len(spans) == 0 {
		return body, nil, nil
	}
	inPlace := 2*total >= len(body)
	// A placeholder no server can send by chance: a random tag per body.
	tag := rand.Uint64()
	small := make([]byte, 0, len(body)-total+32*len(spans))
	bigs := make(map[string]string, len(spans))
	prev := 0
	for k, sp := range spans {
		lit := body[sp[0]:sp[1]]
		var text string
		var ok bool
		if inPlace && utf8.Valid(lit) {
			text, ok = unquoteInPlace(lit)
		} else {
			text, ok = unquoteJSON(lit)
		}
		if !ok {
			return nil, nil, fmt.Errorf("invalid string literal at offset %d", sp[0])
		}
		small = append(small, body[prev:sp[0]]...)
		ph := fmt.Sprintf("\x00redraft:%x:%d", tag, k)
		small = append(small, `"\u0000`...)
		small = append(small, ph[1:]...)
		small = append(small, '"')
		bigs[ph] = text
		prev = sp[1]
	}
	small = append(small, body[prev:]...)
	return small, bigs, nil
}

// isKey reports whether the string literal that rest follows is an
// object's key: the next byte that is not JSON whitespace is ':'.
func isKey(rest []byte) bool {
	for _, c := range rest {
		switch c {
		case ' ', '\t', '\n', '\r':
		case ':':
			return true
		default:
			return false
		}
	}
	return false
}

// unquoteInPlace decodes the JSON string literal lit into lit itself and
// returns the text, which points into lit: lit must not be written again.
// It is for valid UTF-8 only, where the text is never longer than the
// literal and each step writes no further than it has read.
func unquoteInPlace(lit []byte) (string, bool) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return "", false
	}
	n, ok := unquoteTo(nil, lit[1:len(lit)-1])
	if !ok {
		return "", false
	}
	if n == 0 {
		return "", true
	}
	unquoteTo(lit, lit[1:len(lit)-1])
	return unsafe.String(&lit[0], n), true
}

// serverError is an error the server reported inside a 200 body.
type serverError struct{ msg string }

func (e *serverError) Error() string { return "server error: " + e.msg }
