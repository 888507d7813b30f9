package rollout

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unsafe"
)

// Streamed answers (EndpointConfig.Stream): the request asks for
// server-sent events ("stream": true, with "stream_options":
// {"include_usage": true} so that the token counts come too), and the
// answer is put together from the chunks' deltas as they arrive. A stream is
// what lets a hung request be told from a long one: tokens keep arriving
// while a model writes, so a silence longer than the idle timeout means the
// server stopped (see patchingDoer).

// sseReader reads the events of a text/event-stream body as the WHATWG
// specification defines them: lines end with "\r\n", "\n" or "\r"; an event
// is the lines up to a blank one; its data is its "data" fields joined by
// "\n". Comments (":..."), event names, ids and retry fields are ignored, as
// are events without data. What a line may hold is bounded by the reader it
// reads from (a limitedReader).
type sseReader struct {
	r *bufio.Reader
	// raw is the input line being read; lines the lines split from it
	// that are not yet used.
	raw   []byte
	lines [][]byte
	eof   bool
	data  []byte
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 16<<10)}
}

// next returns the data of the next event that has some, or io.EOF after
// the last one. At the end of the input, an event not closed by a blank
// line still counts. The slice is valid until the next call.
func (s *sseReader) next() ([]byte, error) {
	s.data = s.data[:0]
	has := false
	for {
		line, err := s.line()
		if errors.Is(err, io.EOF) {
			if has && len(s.data) > 0 {
				return s.data, nil
			}
			return nil, io.EOF
		}
		if err != nil {
			return nil, err
		}
		if len(line) == 0 {
			if has && len(s.data) > 0 {
				return s.data, nil
			}
			s.data, has = s.data[:0], false
			continue
		}
		if line[0] == ':' {
			continue // a comment (a keep-alive)
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if found && len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		if string(name) != "data" {
			continue
		}
		if has {
			s.data = append(s.data, '\n')
		}
		s.data = append(s.data, value...)
		has = true
	}
}

// line returns the next line without its terminator.
func (s *sseReader) line() ([]byte, error) {
	for len(s.lines) == 0 {
		if s.eof {
			return nil, io.EOF
		}
		s.raw = s.raw[:0]
		for {
			chunk, err := s.r.ReadSlice('\n')
			s.raw = append(s.raw, chunk...)
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if errors.Is(err, io.EOF) {
				s.eof = true
				if len(s.raw) == 0 {
					return nil, io.EOF
				}
				break
			}
			if err != nil {
				return nil, err
			}
			break
		}
		raw := s.raw
		if n := len(raw); n > 0 && raw[n-1] == '\n' {
			raw = raw[:n-1]
			if n := len(raw); n > 0 && raw[n-1] == '\r' {
				raw = raw[:n-1]
			}
		} else if n := len(raw); n > 0 && raw[n-1] == '\r' {
			raw = raw[:n-1] // a lone "\r" ends the input's last line
		}
		// A lone "\r" also ends a line.
		for {
			i := bytes.IndexByte(raw, '\r')
			if i < 0 {
				break
			}
			s.lines = append(s.lines, raw[:i])
			raw = raw[i+1:]
		}
		s.lines = append(s.lines, raw)
	}
	l := s.lines[0]
	s.lines = s.lines[1:]
	return l, nil
}

// readStream puts an answer together from a chat completion stream.
func readStream(body io.Reader) (*answer, error) {
	a := &answer{streamed: true}
	var text, reasoning textBuf
	sr := newSSEReader(body)
	for n := 1; ; n++ {
		data, err := sr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		data = bytes.TrimSpace(data)
		if len(data) == 0 {
			continue
		}
		if string(data) == "[DONE]" {
			a.streamComplete = true
			break
		}
		var c wireCompletion
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, fmt.Errorf("event %d: %w", n, err)
		}
		if msg := c.errorMessage(); msg != "" {
			return nil, &serverError{msg}
		}
		if c.Model != "" {
			a.model = c.Model
		}
		if c.Usage != nil {
			a.usage = c.Usage
		}
		if c.PromptTokenIDs != nil {
			a.promptIDs = c.PromptTokenIDs
		}
		for i := range c.Choices {
			ch := &c.Choices[i]
			if ch.Index != 0 {
				continue // redraft asks for one choice
			}
			a.choices = true
			m := ch.Delta
			if m == nil {
				m = ch.Message
			}
			if m != nil {
				a.message = true
				if m.Content != nil {
					a.content = true
					text.WriteString(string(*m.Content))
				}
				if m.ReasoningContent != nil {
					reasoning.WriteString(string(*m.ReasoningContent))
				} else if m.Reasoning != nil {
					reasoning.WriteString(string(*m.Reasoning))
				}
				a.toolCalls = a.toolCalls || m.hasToolCalls()
				for k, c := range m.toolCalls(func(s string) string { return s }) {
					a.calls.add(k, c)
				}
			}
			if ch.FinishReason != nil {
				a.finishReason, a.finished = *ch.FinishReason, true
			}
			if lp := ch.Logprobs; lp != nil {
				for _, e := range lp.Content {
					a.addLogprob(e, func(s string) string { return s })
				}
			}
			if ch.TokenIDs != nil {
				a.tokenIDs, a.tokenIDsSeen = append(a.tokenIDs, ch.TokenIDs...), true
			}
		}
	}
	a.text, a.reasoning = text.String(), reasoning.String()
	return a, nil
}

// textBuf accumulates a streamed text in blocks, so that growing it never
// copies what it holds; String joins them once, into one allocation of the
// text's size.
type textBuf struct {
	blocks [][]byte
	n      int
}

func (t *textBuf) WriteString(s string) {
	for len(s) > 0 {
		k := len(t.blocks) - 1
		if k < 0 || len(t.blocks[k]) == cap(t.blocks[k]) {
			size := 1 << 10
			if k >= 0 {
				size = min(2*cap(t.blocks[k]), 1<<20)
			}
			t.blocks = append(t.blocks, make([]byte, 0, size))
			k++
		}
		b := t.blocks[k]
		m := min(len(s), cap(b)-len(b))
		t.blocks[k] = append(b, s[:m]...)
		s = s[m:]
		t.n += m
	}
}

// String returns the text; the textBuf must not be written after.
func (t *textBuf) String() string {
	switch {
	case t.n == 0:
		return ""
	case len(t.blocks) == 1:
		// The block is the textBuf's own and is not written again.
		return unsafe.String(&t.blocks[0][0], t.n)
	}
	out := make([]byte, 0, t.n)
	for _, b := range t.blocks {
		out = append(out, b...)
	}
	return unsafe.String(&out[0], t.n)
}
