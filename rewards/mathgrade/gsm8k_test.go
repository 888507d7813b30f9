package mathgrade

import (
	"testing"
)

type gsm8kSolution struct {
	IsCorrect bool   `json:"is_correct"`
	Solution  string `json:"solution"`
}

type gsm8kRow struct {
	Question    string        `json:"question"`
	GroundTruth string        `json:"ground_truth"`
	FT6B        gsm8kSolution `json:"6b_finetuning"`
	Ver6B       gsm8kSolution `json:"6b_verification"`
	FT175B      gsm8kSolution `json:"175b_finetuning"`
	Ver175B     gsm8kSolution `json:"175b_verification"`
}

const gsm8kPath = "../../testdata/gsm8k/example_model_solutions.jsonl"

// TestGSM8KExampleSolutions grades the OpenAI GSM8K example model
// solutions against their ground truth (which ends "A: <n>") and compares
// with the is_correct labels. The agreement per model is pinned; see
// testdata/gsm8k_disagreements.md for the disagreement classes.
func TestGSM8KExampleSolutions(t *testing.T) {
	rows := readJSONL[gsm8kRow](t, gsm8kPath)
	if len(rows) != 1319 {
		t.Fatalf("read %d GSM8K rows, want 1319", len(rows))
	}
	want := map[string]int{ // agreement with is_correct, out of 1319
		"6b_finetuning":     1319,
		"6b_verification":   1319,
		"175b_finetuning":   1319,
		"175b_verification": 1319,
	}
	g := New(Options{})
	got := map[string]int{}
	for i, row := range rows {
		for name, sol := range map[string]gsm8kSolution{
			"6b_finetuning": row.FT6B, "6b_verification": row.Ver6B,
			"175b_finetuning": row.FT175B, "175b_verification": row.Ver175B,
		} {
			r := g.Grade(sol.Solution, row.GroundTruth)
			if r.Correct == sol.IsCorrect {
				got[name]++
				continue
			}
			t.Logf("row %d %s: label %v, redraft %v (%s, answer %q, gold %q): %s", i, name, sol.IsCorrect, r.Correct, r.Rule, r.Answer, r.Gold, r.Reason)
		}
	}
	for name, n := range want {
		t.Logf("%s: %d/%d agree with is_correct", name, got[name], len(rows))
		if got[name] != n {
			t.Errorf("%s: %d/%d agree with is_correct, pinned %d", name, got[name], len(rows), n)
		}
	}
}
