package mathgrade

import (
	"strings"
	"testing"
)

type math500Row struct {
	Answer   string `json:"answer"`
	UniqueID string `json:"unique_id"`
}

// math500Variants writes a MATH-500 reference answer the ways a model
// might state it.
func math500Variants(ans string) map[string]string {
	spaced := strings.NewReplacer("+", " + ", "=", " = ", `\frac`, ` \frac `, `\cup`, ` \cup `).Replace(ans)
	return map[string]string{
		"boxed_in_sentence": "We simplify step by step.\n\nHence the result is $\\boxed{" + ans + "}$, as required.",
		"the_answer_is":     "Putting it together, the answer is " + ans + ".",
		"final_answer":      "Final Answer: The final answer is $" + ans + "$. I hope it is correct.",
		"dfrac":             "So $\\boxed{" + strings.ReplaceAll(ans, `\frac`, `\dfrac`) + "}$.",
		"extra_spaces":      "Thus \\boxed{  " + spaced + "  }",
		"bare":              ans,
	}
}

// TestMATH500SelfConsistency checks that every MATH-500 reference answer
// grades equal to itself however it is written.
func TestMATH500SelfConsistency(t *testing.T) {
	rows := readJSONL[math500Row](t, "testdata/math500_test.jsonl")
	if len(rows) != 500 {
		t.Fatalf("read %d MATH-500 rows, want 500", len(rows))
	}
	g := New(Options{})
	for _, row := range rows {
		for name, resp := range math500Variants(row.Answer) {
			r := g.Grade(resp, row.Answer)
			if !r.Correct {
				t.Errorf("%s %s: %q graded %s (answer %q, pred %q, gold %q): %s", row.UniqueID, name, row.Answer, r.Rule, r.Answer, r.Pred, r.Gold, r.Reason)
			}
		}
	}
}
