package splice

import (
	"testing"

	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rewards/mathgrade"
)

// TestGradeTakesFinishReason: a splice's continuation or branch is graded
// with the finish_reason its server reported, as a run's samples are: a
// response cut by its length limit states no answer even when its last
// words look like one, and a "stop" response is never taken for cut off.
func TestGradeTakesFinishReason(t *testing.T) {
	g := rewards.NewMathGrader(mathgrade.Options{})
	for _, tc := range []struct {
		text, finish string
		correct      bool
		rule         string
	}{
		{"5", "stop", true, "equal:"},
		{"5", "length", false, "no_answer:cut_off"},
		{"Step 3: so the answer is 5.", "stop", true, "equal:"},
		// A stated answer counts though the text was cut after it.
		{"Step 3: so the answer is 5.", "length", true, "equal:"},
	} {
		gm := grade(g, tc.text, tc.finish, "5", "task", "none")
		if gm.Correct == nil || *gm.Correct != tc.correct || len(gm.Rule) < len(tc.rule) || gm.Rule[:len(tc.rule)] != tc.rule {
			t.Errorf("%q finish %s: correct %v rule %q, want %v %q", tc.text, tc.finish, gm.Correct, gm.Rule, tc.correct, tc.rule)
		}
	}
}
