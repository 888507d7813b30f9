package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Protocol is the protocol's name and version: the subprocess's handshake
// line says it, and an HTTP verifier may.
const Protocol = "redraft-verifier/1"

// Request is one response to verify.
type Request struct {
	// ID is unique per request within a connection. Verify assigns it:
	// whatever the caller sets is replaced.
	ID         string `json:"id"`
	TaskID     string `json:"task_id"`
	DataSource string `json:"data_source,omitempty"`
	Reference  string `json:"reference,omitempty"`
	// Metadata is the task's metadata object, as in the task record.
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// Response is the response text.
	Response string `json:"response"`
}

// Result is the verifier's answer to one Request.
type Result struct {
	// Score is the reward the verifier gives; nil when there is none, and
	// then Reason says why.
	Score *float64 `json:"score"`
	// Correct is the verifier's verdict, when it gives one.
	Correct *bool `json:"correct,omitempty"`
	// Answer is the answer the verifier extracted from the response, if
	// it says.
	Answer string `json:"answer,omitempty"`
	// Reason says why Score is nil; with a Score it is the verifier's own
	// note, if any.
	Reason string `json:"reason,omitempty"`
	// Detail is a free-form JSON value the verifier returned, compacted.
	Detail json.RawMessage `json:"detail,omitempty"`
	// Failed says that no usable answer came back for the request (the
	// verifier exited, timed out, could not be reached, or wrote a
	// malformed answer): Score is nil and Reason is the client's. A nil
	// Score with Failed false is the verifier's own verdict.
	Failed bool `json:"failed,omitempty"`
}

// Hello is the handshake: what the verifier says about itself.
type Hello struct {
	Protocol string `json:"protocol"`
	Name     string `json:"name,omitempty"`
	Version  string `json:"version,omitempty"`
}

// failed is a Result for a request that got no usable answer.
func failed(format string, args ...any) Result {
	return Result{Failed: true, Reason: fmt.Sprintf(format, args...)}
}

// encodeRequest writes r as one JSON line (newline included) without HTML
// escaping, so that tags such as <answer> stay readable. It fails only
// when Metadata is not valid JSON.
func encodeRequest(r Request) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// snippet quotes at most n bytes of b (cut at a rune boundary, "..." when
// cut), for reasons.
func snippet(b []byte, n int) string {
	cut := len(b) > n
	if cut {
		b = b[:n]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	s := strconv.Quote(string(b))
	if cut {
		s += "..."
	}
	return s
}

// nonFinite marks a NaN or infinity that sanitize replaced: JSON has none,
// but Python's json.dumps writes NaN, Infinity and -Infinity.
const nonFinite = "\x00non-finite:"

// sanitize replaces the tokens NaN, Infinity and -Infinity outside strings
// with marked strings, so that such an answer still decodes and its
// problem can be named. Valid JSON has no capital letter outside a string,
// so valid input is returned unchanged. n counts the replacements.
func sanitize(b []byte) ([]byte, int) {
	var out []byte // nil until something is replaced
	n, from := 0, 0
	inString, escaped := false, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		if c == '"' {
			inString = true
			continue
		}
		for _, tok := range nonFiniteTokens {
			if bytes.HasPrefix(b[i:], []byte(tok)) {
				out = append(out, b[from:i]...)
				out = append(out, `"\u0000non-finite:`+tok+`"`...)
				i += len(tok) - 1
				from = i + 1
				n++
				break
			}
		}
	}
	if n == 0 {
		return b, 0
	}
	return append(out, b[from:]...), n
}

var nonFiniteTokens = []string{"NaN", "Infinity", "-Infinity"}

// idPattern finds an id in a line that is not valid JSON, so that the
// request it was meant for can be told what was wrong.
var idPattern = regexp.MustCompile(`"id"\s*:\s*("(?:[^"\\]|\\.)*")`)

// salvageID returns the id a malformed answer line names, if it names one.
func salvageID(line []byte) (string, bool) {
	m := idPattern.FindSubmatch(line)
	if m == nil {
		return "", false
	}
	var id string
	if json.Unmarshal(m[1], &id) != nil {
		return "", false
	}
	return id, true
}

// decodeAnswer reads one answer line of the subprocess protocol. hasID
// says whether the line names a request (a string "id"), which then gets
// res; a line that names none is not an answer at all. res.Score, when
// set, is a finite number, and a nil Score always comes with a Reason.
func decodeAnswer(line []byte) (id string, hasID bool, res Result) {
	line = bytes.TrimSpace(line)
	clean, n := sanitize(line)
	var obj map[string]json.RawMessage
	var err error
	if len(clean) == 0 || clean[0] != '{' {
		err = errors.New("not a JSON object")
	} else {
		err = json.Unmarshal(clean, &obj)
	}
	if err != nil {
		id, hasID = salvageID(line)
		return id, hasID, failed("malformed answer (%s): %s", jsonErr(err, clean), snippet(line, 200))
	}
	rawID, ok := obj["id"]
	if !ok || json.Unmarshal(rawID, &id) != nil {
		return "", false, failed("answer without a string id: %s", snippet(line, 200))
	}
	return id, true, decodeFields(obj, n)
}

// nonFiniteMark is how a replaced token reads in sanitized JSON text.
var nonFiniteMark = []byte(`"\u0000non-finite:`)

// decodeResult reads one element of an HTTP answer's results, sanitized:
// an answer object whose id, when present, must be want.
func decodeResult(raw json.RawMessage, want string) Result {
	var obj map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &obj) != nil {
		return failed("bad answer: not a JSON object: %s", snippet(raw, 200))
	}
	if rawID, ok := obj["id"]; ok && !isNull(rawID) {
		var id string
		if json.Unmarshal(rawID, &id) != nil {
			return failed("bad answer: id: want a string, got %s", rawText(rawID))
		}
		if id != want {
			return failed("bad answer: id %q, but the request in its place has id %q", id, want)
		}
	}
	return decodeFields(obj, bytes.Count(raw, nonFiniteMark))
}

// jsonErr words a JSON decoding error of text.
func jsonErr(err error, text []byte) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		if se.Offset >= int64(len(text)) {
			return "not JSON: it ends in the middle of a value"
		}
		return "not JSON: " + se.Error()
	}
	return err.Error()
}

// decodeFields reads an answer object's fields (score, correct, answer,
// reason, detail; others are ignored). nonFinites is how many NaN or
// infinity tokens sanitize replaced in it.
func decodeFields(obj map[string]json.RawMessage, nonFinites int) Result {
	bad := func(field, format string, args ...any) Result {
		return failed("bad answer: %s: %s", field, fmt.Sprintf(format, args...))
	}
	var res Result
	if raw, ok := obj["score"]; ok && !isNull(raw) {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if tok, ok := strings.CutPrefix(s, nonFinite); ok {
				return bad("score", "not a finite number (%s)", tok)
			}
			return bad("score", "want a number or null, got the string %s", snippet([]byte(s), 40))
		}
		if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
			return bad("score", "want a number or null, got %s", rawText(raw))
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return bad("score", "not a finite number (%s)", rawText(raw))
		}
		res.Score = &f
	}
	if raw, ok := obj["correct"]; ok && !isNull(raw) {
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return bad("correct", "want true, false or null, got %s", rawText(raw))
		}
		res.Correct = &b
	}
	for _, f := range []struct {
		name string
		to   *string
	}{{"answer", &res.Answer}, {"reason", &res.Reason}} {
		if raw, ok := obj[f.name]; ok && !isNull(raw) {
			if json.Unmarshal(raw, f.to) != nil {
				return bad(f.name, "want a string or null, got %s", rawText(raw))
			}
		}
	}
	if raw, ok := obj["detail"]; ok && !isNull(raw) {
		if nonFinites > 0 || !finiteNumbers(raw) {
			return bad("detail", "holds a number that is not finite")
		}
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return bad("detail", "%v", err)
		}
		res.Detail = b.Bytes()
	} else if nonFinites > 0 {
		return failed("bad answer: a number that is not finite outside score and detail")
	}
	if res.Score == nil && res.Reason == "" {
		res.Reason = "the verifier gave no score and no reason"
	}
	return res
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// rawText shows a JSON value as written, cut to 40 bytes.
func rawText(raw json.RawMessage) string {
	s := strings.ToValidUTF8(string(raw), "\uFFFD")
	if len(s) > 40 {
		s = strings.ToValidUTF8(s[:40], "") + "..."
	}
	return s
}

// finiteNumbers reports whether every number in the JSON value raw is a
// finite float64 (1e999 is not).
func finiteNumbers(raw json.RawMessage) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return err.Error() == "EOF"
		}
		if n, ok := tok.(json.Number); ok {
			f, err := n.Float64()
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return false
			}
		}
	}
}
