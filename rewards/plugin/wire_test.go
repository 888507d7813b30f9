package plugin

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestDecodeAnswer(t *testing.T) {
	for _, tc := range []struct {
		line   string
		id     string // "" with hasID false
		score  *float64
		failed bool
		reason string // a text the reason contains
		check  func(Result) bool
	}{
		{line: `{"id": "7", "score": 0.5}`, id: "7", score: f(0.5)},
		{line: `{"id": "7", "score": -3e2, "correct": false, "answer": "x", "reason": "close", "detail": {"a": [1, 2.5]}, "extra": true}`, id: "7", score: f(-300),
			check: func(r Result) bool {
				return r.Correct != nil && !*r.Correct && r.Answer == "x" && r.Reason == "close" && string(r.Detail) == `{"a":[1,2.5]}`
			}},
		{line: "  {\"id\": \"7\", \"score\": 1}\r", id: "7", score: f(1)},
		{line: `{"id": "7", "score": null, "reason": "no answer tags"}`, id: "7", reason: "no answer tags"},
		{line: `{"id": "7"}`, id: "7", reason: "the verifier gave no score and no reason"},
		{line: `{"id": "7", "score": NaN}`, id: "7", failed: true, reason: "bad answer: score: not a finite number (NaN)"},
		{line: `{"id": "7", "score": -Infinity}`, id: "7", failed: true, reason: "not a finite number (-Infinity)"},
		{line: `{"id": "7", "score": 1e400}`, id: "7", failed: true, reason: "not a finite number"},
		{line: `{"id": "7", "score": "NaN"}`, id: "7", failed: true, reason: `want a number or null, got the string "NaN"`},
		{line: `{"id": "7", "score": true}`, id: "7", failed: true, reason: "want a number or null, got true"},
		{line: `{"id": "7", "score": 1, "correct": "yes"}`, id: "7", failed: true, reason: "bad answer: correct: want true, false or null"},
		{line: `{"id": "7", "score": 1, "answer": 42}`, id: "7", failed: true, reason: "bad answer: answer: want a string or null"},
		{line: `{"id": "7", "score": 1, "detail": {"x": 1e999}}`, id: "7", failed: true, reason: "bad answer: detail: holds a number that is not finite"},
		{line: `{"id": "7", "score": 1, "note": NaN}`, id: "7", failed: true, reason: "a number that is not finite outside score and detail"},
		{line: `{"id": "7", "score": 1, "answer": "NaN and Infinity are words here"}`, id: "7", score: f(1)},
		{line: `{"id": "7", "score": 0.`, id: "7", failed: true, reason: "malformed answer (not JSON"},
		{line: `{"id": "7\"x", "score": 0.`, id: `7"x`, failed: true, reason: "malformed answer"},
		{line: `{"id": 7, "score": 1}`, failed: true, reason: "answer without a string id"},
		{line: `{"score": 1}`, failed: true, reason: "answer without a string id"},
		{line: `[{"id": "7"}]`, id: "7", failed: true, reason: "malformed answer (not a JSON object)"},
		{line: `null`, failed: true, reason: "not a JSON object"},
		{line: `Loading model...`, failed: true, reason: `"Loading model..."`},
		{line: ``, failed: true, reason: "malformed answer"},
	} {
		id, hasID, res := decodeAnswer([]byte(tc.line))
		switch {
		case id != tc.id || hasID != (tc.id != ""):
			t.Errorf("%s: id %q (%v), want %q", tc.line, id, hasID, tc.id)
		case (res.Score == nil) != (tc.score == nil) || res.Score != nil && *res.Score != *tc.score:
			t.Errorf("%s: score %s, want %s (%s)", tc.line, fmtScore(res.Score), fmtScore(tc.score), res.Reason)
		case res.Failed != tc.failed:
			t.Errorf("%s: failed %v (%s)", tc.line, res.Failed, res.Reason)
		case !strings.Contains(res.Reason, tc.reason):
			t.Errorf("%s: reason %q lacks %q", tc.line, res.Reason, tc.reason)
		case tc.check != nil && !tc.check(res):
			t.Errorf("%s: %+v", tc.line, res)
		}
	}
}

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		`{"a": NaN, "b": [Infinity, -Infinity], "c": "NaN \" Infinity"}`: `{"a": "\u0000non-finite:NaN", "b": ["\u0000non-finite:Infinity", "\u0000non-finite:-Infinity"], "c": "NaN \" Infinity"}`,
		`{"a": 1}`: `{"a": 1}`,
	} {
		if got, _ := sanitize([]byte(in)); string(got) != want {
			t.Errorf("sanitize(%s) = %s, want %s", in, got, want)
		}
	}
}

// FuzzDecodeAnswer: the parser of a plug-in's answer lines never panics,
// a score it returns is finite, a nil score comes with a reason, and a
// line that is a JSON object with a string id always names that id.
func FuzzDecodeAnswer(f *testing.F) {
	for _, s := range []string{
		`{"id": "1", "score": 1, "correct": true, "answer": "42", "detail": {"k": [1, "x"]}}`,
		`{"id": "1", "score": null, "reason": "r"}`,
		`{"id": "1", "score": NaN}`,
		`{"id": "1", "score": 1e999}`,
		`{"id": "1", "score": "0.5", "detail": {"a": -Infinity}}`,
		`{"id": "1", "score": 0.`,
		`{"id": "\"\\u0000", "score": 1}`,
		`not json at all`,
		`[1, 2, 3]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		id, hasID, res := decodeAnswer(line)
		if res.Score != nil && (math.IsNaN(*res.Score) || math.IsInf(*res.Score, 0)) {
			t.Fatalf("score %v from %q", *res.Score, line)
		}
		if res.Score == nil && res.Reason == "" {
			t.Fatalf("nil score without a reason from %q", line)
		}
		if res.Score != nil && res.Failed {
			t.Fatalf("a failed result with a score from %q", line)
		}
		if res.Detail != nil && !json.Valid(res.Detail) {
			t.Fatalf("detail %q is not JSON, from %q", res.Detail, line)
		}
		var obj map[string]any
		if json.Unmarshal(line, &obj) == nil && obj != nil {
			if want, ok := obj["id"].(string); ok && (!hasID || id != want) {
				t.Fatalf("id %q (%v), want %q, from %q", id, hasID, want, line)
			}
		}
	})
}
