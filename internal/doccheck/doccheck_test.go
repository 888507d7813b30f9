package doccheck

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	page := "text\n\n<!-- checked by TestA, TestB -->\n```json\n{\"a\": 1}\n```\n\n```yaml\nx: 1\n```\n" +
		"<!-- recorded 2026-01-02, a server; checked by TestC -->\n\n| case | output |\n|---|---|\n| a | `b` |\n\ntail\n"
	blocks := Parse("p.md", page)
	if len(blocks) != 3 {
		t.Fatalf("%d blocks: %+v", len(blocks), blocks)
	}
	if b := blocks[0]; b.Lang != "json" || b.Line != 4 || b.Text != "{\"a\": 1}\n" || strings.Join(b.Tests(), " ") != "TestA TestB" || b.Recorded() {
		t.Errorf("json block %+v %v", b, b.Tests())
	}
	if b := blocks[1]; b.Lang != "yaml" || b.Marker != "" || b.Tests() != nil {
		t.Errorf("yaml block %+v", b)
	}
	if b := blocks[2]; b.Lang != "table" || !b.Recorded() || strings.Join(b.Tests(), " ") != "TestC" || strings.Count(b.Text, "\n") != 3 {
		t.Errorf("table %+v", b)
	}
}

// Match accepts the docs' abbreviations and nothing else.
func TestMatch(t *testing.T) {
	got := map[string]any{
		"id": "toy-0#s0", "reward": 1.0, "advantage": -0.4999995, "n": 3, "flag": false, "none": nil,
		"response": "Let me work through this step by step. The answer is 41.",
		"meta":     `{"seed": 5, "why": "cut off", "list": [1, 2, 3]}`,
		"segments": []map[string]any{{"role": "attempt", "end": 92}, {"role": "answer", "end": 160}},
	}
	for _, tc := range []struct {
		doc        string
		structural []string
		ok         bool
	}{
		{`{"id": "toy-0#s0", "reward": 1.0, "n": 3}`, nil, true},
		{`{"advantage": -0.5}`, nil, true},
		{`{"advantage": -0.49}`, nil, false},
		{`{"n": 3.0}`, nil, true},
		{`{"n": 4}`, nil, false},
		{`{"flag": false, "none": null}`, nil, true},
		{`{"none": 0}`, nil, false},
		{`{"missing": 1}`, nil, false},
		{`{"response": "Let me work through this step by…"}`, nil, true},
		{`{"response": "Let me work through this step by step. ... is 41."}`, nil, true},
		{`{"response": "Let me work ... is 42."}`, nil, false},
		{`{"response": "Let me think…"}`, nil, false},
		{`{"response": "Let me work through this step by step. The answer is 41"}`, nil, false},
		{`{"meta": {"seed": 5, "...": "..."}}`, nil, true},
		{`{"meta": {"seed": 6}}`, nil, false},
		{`{"meta": {"list": [1, "..."]}}`, nil, true},
		{`{"meta": {"list": [1, 2]}}`, nil, false},
		{`{"meta": "{\"seed\": 5…"}`, nil, true},
		{`{"segments": [{"role": "attempt", "end": 92}, {"role": "answer", "end": 160}]}`, nil, true},
		{`{"segments": [{"role": "attempt", "end": 92}, {"role": "answer", "end": 161}]}`, nil, false},
		{`{"segments": [{"role": "attempt", "end": 92}, {"role": "answer", "end": 161}]}`, []string{"segments[1].end"}, true},
		{`{"meta": {"why": "anything", "seed": 9}}`, []string{"meta"}, true},
		{`{"meta": {"other": 1}}`, []string{"meta"}, false},
		{`{"response": "x"`, nil, false},
	} {
		err := Match(tc.doc, got, tc.structural...)
		if (err == nil) != tc.ok {
			t.Errorf("Match(%s, structural %v) = %v, want ok %v", tc.doc, tc.structural, err, tc.ok)
		}
	}
}
