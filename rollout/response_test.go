package rollout

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// unquoteJSON agrees with encoding/json on every string literal.
func TestUnquoteJSON(t *testing.T) {
	for _, lit := range []string{
		`""`, `"plain"`, `"a\"b\\c\/d\b\f\n\r\t"`, `"\u00e9\u4e2d"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00x"`,
		`"\ud83dA"`, `"\ud83d\u0041"`, "\"\xff\xfe\"", "\"caf\xc3\xa9\"", "\"\xe4\xb8\"", `"\u0000"`,
	} {
		var want string
		if err := json.Unmarshal([]byte(lit), &want); err != nil {
			t.Fatalf("%s: %v", lit, err)
		}
		got, ok := unquoteJSON([]byte(lit))
		if !ok || got != want {
			t.Errorf("unquoteJSON(%s) = %q %v, want %q", lit, got, ok, want)
		}
	}
	for _, bad := range []string{``, `"`, `x`, `"a`, `"\"`, `"\x"`, `"\'"`, `"\u12"`, "\"a\nb\"", `"a"b"`, `null`, `3`} {
		if s, ok := unquoteJSON([]byte(bad)); ok {
			t.Errorf("unquoteJSON(%s) = %q, want a refusal", bad, s)
		}
	}
}

// FuzzUnquoteJSON: for every valid JSON string literal, unquoteJSON gives
// what encoding/json gives; for anything else it refuses or agrees.
func FuzzUnquoteJSON(f *testing.F) {
	for _, s := range []string{`"a\nb"`, `"\ud83d\ude00"`, `"\ud83d"`, "\"\xff\"", `"\u00e9"`, `x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, lit []byte) {
		var want string
		err := json.Unmarshal(lit, &want)
		got, ok := unquoteJSON(lit)
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(lit), []byte(`"`)) {
			trimmed := bytes.TrimSpace(lit)
			got, ok = unquoteJSON(trimmed)
			if !ok || got != want {
				t.Fatalf("unquoteJSON(%q) = %q %v, encoding/json %q", trimmed, got, ok, want)
			}
			return
		}
		if ok && err == nil && got != want {
			t.Fatalf("unquoteJSON(%q) = %q, encoding/json %q", lit, got, want)
		}
	})
}

// FuzzDecodeCompletion: any body decodes or fails without panicking, and a
// body that encoding/json reads as a completion gives the same text and
// reasoning, whatever string literals are taken out as large (big, the
// threshold, is small here so that they are).
func FuzzDecodeCompletion(f *testing.F) {
	f.Add([]byte(`{"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"a\nb","reasoning_content":"r"},"finish_reason":"stop","logprobs":{"content":[{"token":"a","logprob":-1}]}}],"usage":{"prompt_tokens":3,"completion_tokens":2}}`), uint8(2))
	f.Add([]byte(`{"choices":[{"message":null}]}`), uint8(0))
	f.Add([]byte(`{"choices":[{}]}`), uint8(1))
	f.Add([]byte(`{"object":"error","message":"boom"}`), uint8(3))
	f.Add([]byte(`{"choices":[{"message":{"content":["x"]}}]}`), uint8(4))
	f.Add([]byte("{\"choices\":[{\"message\":{\"content\":\"caf\xc3\xa9 \\ud83d\\ude00 \xff \\\" end\"}}]}"), uint8(5))
	f.Fuzz(func(t *testing.T, body []byte, big uint8) {
		// The same body decoded whole, and with literals of big bytes on
		// taken out: the same verdict and the same answer.
		whole, errWhole := decodeCompletionAt(bytes.Clone(body), len(body)+1)
		a, err := decodeCompletionAt(bytes.Clone(body), int(big)+2)
		if (err == nil) != (errWhole == nil) {
			t.Fatalf("%q: decoded whole: %v; with literals taken out: %v", body, errWhole, err)
		}
		if err != nil {
			return
		}
		a.response()
		if a.text != whole.text || a.reasoning != whole.reasoning || a.content != whole.content || a.message != whole.message ||
			len(a.logprobs) != len(whole.logprobs) || a.finishReason != whole.finishReason {
			t.Fatalf("%q: answers differ:\n%+v\n%+v", body, a, whole)
		}
		// And the text is encoding/json's.
		var ref struct {
			Choices []struct {
				Message *struct {
					Content *string `json:"content"`
				} `json:"message"`
			} `json:"choices"`
		}
		if json.Unmarshal(body, &ref) != nil || len(ref.Choices) == 0 || ref.Choices[0].Message == nil || ref.Choices[0].Message.Content == nil {
			return
		}
		if a.text != *ref.Choices[0].Message.Content {
			t.Fatalf("text %q, encoding/json %q", a.text, *ref.Choices[0].Message.Content)
		}
	})
}

// Large string literals are decoded in place, or into their own buffer, to
// the same text as encoding/json's; the rest of the body is decoded as
// usual.
func TestExtractBig(t *testing.T) {
	long := strings.Repeat(`Step \"1\": caf\u00e9 \ud83d\ude00 \\ x\n\t`, 5000)
	for _, tc := range []struct{ name, body string }{
		{"answer is most of the body", `{"model":"m","choices":[{"message":{"content":"` + long + `"},"finish_reason":"stop"}]}`},
		{"answer and reasoning", `{"choices":[{"message":{"content":"` + long + `","reasoning_content":"` + long + `"}}]}`},
		{"answer beside larger logprobs", `{"choices":[{"message":{"content":"` + long + `"},"logprobs":{"content":[` +
			strings.Repeat(`{"token":"ab","logprob":-1.5,"bytes":[97,98],"top_logprobs":[]},`, 40000) + `{"token":"c","logprob":0}]}}]}`},
		{"invalid UTF-8", "{\"choices\":[{\"message\":{\"content\":\"" + long + "\xff\xfe" + long + "\"}}]}"},
		{"lone surrogates", `{"choices":[{"message":{"content":"` + long + `\ud83d \ude00x` + long + `"}}]}`},
	} {
		var ref struct {
			Choices []struct {
				Message struct {
					ReasoningContent string `json:"reasoning_content"`
				}
			}
		}
		var refText struct {
			Choices []struct {
				Message struct {
					Content string `json:"content"`
				} `json:"message"`
				Logprobs *struct {
					Content []struct{ Token string } `json:"content"`
				} `json:"logprobs"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(tc.body), &refText); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		json.Unmarshal([]byte(tc.body), &ref)
		a, err := decodeCompletion([]byte(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want := refText.Choices[0].Message.Content
		if a.text != want || a.reasoning != ref.Choices[0].Message.ReasoningContent {
			t.Errorf("%s: text differs from encoding/json's (%d and %d bytes)", tc.name, len(a.text), len(want))
		}
		if lp := refText.Choices[0].Logprobs; lp != nil && len(a.logprobs) != len(lp.Content) {
			t.Errorf("%s: %d logprobs, want %d", tc.name, len(a.logprobs), len(lp.Content))
		}
	}
	// A large literal that is not a valid string is refused.
	if _, err := decodeCompletion([]byte("{\"choices\":[{\"message\":{\"content\":\"" + long + "\x01\"}}]}")); err == nil {
		t.Error("a control character in a large string was accepted")
	}
}

// What counts as an answer (see answer.response).
func TestAnswerRule(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		why        string // "" for an answer
		text       string
	}{
		{"text", `{"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}],"usage":{"completion_tokens":1}}`, "", "hi"},
		{"empty answer with its end token counted", `{"choices":[{"message":{"content":""},"finish_reason":"stop"}],"usage":{"completion_tokens":1}}`, "", ""},
		{"empty answer, no usage", `{"choices":[{"message":{"content":""},"finish_reason":"stop"}]}`, "", ""},
		{"empty answer cut by length", `{"choices":[{"message":{"content":""},"finish_reason":"length"}],"usage":{"completion_tokens":0}}`, "", ""},
		{"reasoning only", `{"choices":[{"message":{"content":null,"reasoning_content":"think"},"finish_reason":"stop"}],"usage":{"completion_tokens":0}}`, "", ""},
		{"reasoning under its new name", `{"choices":[{"message":{"content":"","reasoning":"think"},"finish_reason":"stop"}]}`, "", ""},
		{"tool calls only", `{"choices":[{"message":{"content":null,"tool_calls":[{"id":"x"}]},"finish_reason":"tool_calls"}]}`, "", ""},
		{"no choices", `{"choices":[]}`, "response has no choices", ""},
		{"choices missing", `{"id":"x"}`, "response has no choices", ""},
		{"choice without message", `{"choices":[{"index":0,"finish_reason":"stop"}]}`, "choice has no message", ""},
		{"message null", `{"choices":[{"index":0,"message":null,"finish_reason":"stop"}]}`, "choice has no message", ""},
		{"message empty", `{"choices":[{"message":{},"finish_reason":"stop"}]}`, "message has no content, reasoning or tool calls", ""},
		{"content null", `{"choices":[{"message":{"content":null,"tool_calls":[]},"finish_reason":"stop"}]}`, "message has no content, reasoning or tool calls", ""},
		{"nothing generated", `{"choices":[{"message":{"content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":0}}`, "empty answer with 0 completion tokens", ""},
	} {
		a, err := decodeCompletion([]byte(tc.body))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		resp, why := a.response()
		if why != tc.why || resp.Text != tc.text {
			t.Errorf("%s: %+v %q, want %q %q", tc.name, resp, why, tc.text, tc.why)
		}
	}
	if _, err := decodeCompletion([]byte(`{"object":"error","message":"out of memory"}`)); err == nil || !strings.Contains(err.Error(), "out of memory") {
		t.Errorf("an error object in a 200: %v", err)
	}
	if _, err := decodeCompletion([]byte(`{"choices":[{"message":{"content":7}}]}`)); err == nil {
		t.Error("content 7 decoded")
	}
}

// readBody reads exactly the Content-Length, or up to the limit without
// one, and never more than the limit.
func TestReadBody(t *testing.T) {
	body := strings.Repeat("x", 100_000)
	for _, tc := range []struct {
		name          string
		cl, limit     int64
		wantErr, want bool
	}{
		{"exact length", 100_000, 1 << 20, false, true},
		{"unknown length", -1, 1 << 20, false, true},
		{"unknown length at the limit", -1, 100_000, false, true},
		{"unknown length over", -1, 99_999, true, false},
		{"declared over", 100_000, 99_999, true, false},
	} {
		src := &countingReader{r: iotest.HalfReader(strings.NewReader(body))}
		got, err := readBody(src, tc.cl, tc.limit)
		var tl *errTooLarge
		if tc.wantErr != errors.As(err, &tl) || (tc.want && string(got) != body) {
			t.Errorf("%s: %d bytes, %v", tc.name, len(got), err)
		}
		if src.n > tc.limit+1 {
			t.Errorf("%s: read %d bytes with a limit of %d", tc.name, src.n, tc.limit)
		}
	}
	if _, err := readBody(strings.NewReader("short"), 10, 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short body: %v", err)
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// The SSE reader follows the text/event-stream rules.
func TestSSEReader(t *testing.T) {
	in := ": keep-alive\n" +
		"data: one\n\n" +
		"event: message\r\ndata:two\r\ndata:  three\r\n\r\n" +
		"id: 7\n\n" + // no data: no event
		"data: four\rdata: five\r\r" +
		"retry: 10\ndata\n\n" + // an empty data field
		"data: {\"a\": 1}\n\n" +
		"data: [DONE]" // no blank line at the end
	want := []string{"one", "two\n three", "four\nfive", `{"a": 1}`, "[DONE]"}
	for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in))} {
		sr := newSSEReader(r)
		var got []string
		for {
			d, err := sr.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(d))
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("events %q, want %q", got, want)
		}
	}
}

// FuzzSSE: the reader never panics, returns no more data than it read, and
// gives back every event written in any of the three line-end styles.
func FuzzSSE(f *testing.F) {
	f.Add([]byte("data: a\n\ndata: b\r\n\r\n"), "x|y z|{\"k\": 1}")
	f.Add([]byte(":\n\n\r\r\ndata"), "")
	f.Fuzz(func(t *testing.T, raw []byte, payloads string) {
		sr := newSSEReader(bytes.NewReader(raw))
		total := 0
		for i := 0; ; i++ {
			d, err := sr.next()
			if err != nil {
				break
			}
			total += len(d)
			if total > len(raw) {
				t.Fatalf("%d bytes of data from %d of input", total, len(raw))
			}
		}
		var want []string
		for _, p := range strings.Split(payloads, "|") {
			if p != "" && !strings.ContainsAny(p, "\r\n") {
				want = append(want, p)
			}
		}
		for _, eol := range []string{"\n", "\r\n", "\r"} {
			var b strings.Builder
			for _, p := range want {
				b.WriteString("data: " + p + eol + eol)
			}
			sr := newSSEReader(strings.NewReader(b.String()))
			var got []string
			for {
				d, err := sr.next()
				if err != nil {
					break
				}
				got = append(got, string(d))
			}
			if strings.Join(got, "\x00") != strings.Join(want, "\x00") || len(got) != len(want) {
				t.Fatalf("eol %q: events %q, want %q", eol, got, want)
			}
		}
	})
}

// A stream is put together from its deltas: text, reasoning, logprobs,
// finish_reason and usage; a stream without its end is not an answer.
func TestReadStream(t *testing.T) {
	events := []string{
		`{"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}`,
		`{"choices":[{"index":0,"delta":{"reasoning_content":"think "}}]}`,
		`{"choices":[{"index":0,"delta":{"reasoning_content":"hard"}}]}`,
		`{"choices":[{"index":0,"delta":{"content":"The"},"logprobs":{"content":[{"token":"The","logprob":-0.5}]}}]}`,
		`{"choices":[{"index":0,"delta":{"content":" answer\n"},"logprobs":{"content":[{"token":" answer","logprob":-1.5}]}}]}`,
		`{"choices":[{"index":1,"delta":{"content":"other choice"}}]}`,
		`{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
		`{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2}}`,
	}
	stream := func(evs []string, done bool) string {
		var b strings.Builder
		for _, e := range evs {
			b.WriteString("data: " + e + "\n\n")
		}
		if done {
			b.WriteString("data: [DONE]\n\n")
		}
		return b.String()
	}
	a, err := readStream(strings.NewReader(stream(events, true)))
	if err != nil {
		t.Fatal(err)
	}
	resp, why := a.response()
	if why != "" || resp.Text != "The answer\n" || resp.Reasoning != "think hard" || resp.FinishReason != "stop" || resp.Model != "m" ||
		resp.Usage == nil || *resp.Usage != (Usage{4, 2}) || len(resp.Logprobs) != 2 || resp.Logprobs[1] != (TokenLogprob{" answer", -1.5}) {
		t.Errorf("%+v %q", resp, why)
	}
	for _, tc := range []struct {
		name, stream, why string
	}{
		{"cut before the finish", stream(events[:5], false), "stream ended before the answer was finished"},
		{"finished, no [DONE]", stream(events, false), ""},
		{"no choices", stream([]string{`{"choices":[]}`, `{"choices":[],"usage":{"completion_tokens":3}}`}, true), "response has no choices"},
		{"no deltas", stream([]string{`{"choices":[{"index":0,"finish_reason":"stop"}]}`}, true), "stream has no message deltas"},
		{"null deltas", stream([]string{`{"choices":[{"index":0,"delta":null,"finish_reason":"stop"}]}`}, true), "stream has no message deltas"},
		{"nothing generated", stream([]string{`{"choices":[{"index":0,"delta":{"content":""},"finish_reason":"stop"}]}`, `{"choices":[],"usage":{"completion_tokens":0}}`}, true), "empty answer with 0 completion tokens"},
	} {
		a, err := readStream(strings.NewReader(tc.stream))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if _, why := a.response(); !strings.Contains(why, tc.why) || (tc.why == "") != (why == "") {
			t.Errorf("%s: %q, want %q", tc.name, why, tc.why)
		}
	}
	if _, err := readStream(strings.NewReader(stream([]string{events[0], `{"error":{"message":"engine died"}}`}, false))); err == nil || !strings.Contains(err.Error(), "engine died") {
		t.Errorf("error event: %v", err)
	}
	if _, err := readStream(strings.NewReader("data: <html>\n\n")); err == nil {
		t.Error("malformed event read")
	}
}

// textBuf joins what it was given, over block boundaries.
func TestTextBuf(t *testing.T) {
	var tb textBuf
	var want strings.Builder
	for i := range 5000 {
		s := strings.Repeat(string(rune('a'+i%26)), i%700)
		tb.WriteString(s)
		want.WriteString(s)
	}
	if tb.String() != want.String() {
		t.Error("textBuf lost or reordered text")
	}
	var empty textBuf
	if empty.String() != "" {
		t.Error("empty textBuf")
	}
}
