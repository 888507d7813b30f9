package rewards

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/redraft/redraft/rollout"
)

func TestParseSelfVerdict(t *testing.T) {
	tests := []struct {
		name, text string
		label      string // "" when no verdict
		rule       string
	}{
		{"boxed correct", `All steps check out. \boxed{correct}`, "correct", "boxed"},
		{"boxed incorrect", `Step 2 is wrong.\n\boxed{incorrect}`, "incorrect", "boxed"},
		{"incorrect is not correct", `\boxed{Incorrect}`, "incorrect", "boxed"},
		{"fbox", `\fbox{wrong}`, "incorrect", "boxed"},
		{"text wrapper", `$\boxed{\text{Correct}}$`, "correct", "boxed"},
		{"nested wrappers and punctuation", `\boxed{ \textbf{\text{ "Incorrect." }} }`, "incorrect", "boxed"},
		{"not correct", `\boxed{\text{not  correct}}`, "incorrect", "boxed"},
		{"latex space", `\boxed{\text{not\ correct}}`, "incorrect", "boxed"},
		{"last verdict wins", `At first \boxed{correct}? No: \boxed{incorrect}`, "incorrect", "boxed"},
		{"answer boxes are skipped", `\boxed{incorrect}: the right value is \boxed{12}`, "incorrect", "boxed"},
		{"partial wrapper is not a word", `\boxed{\text{in}correct}`, "", ""},
		{"longer command is not a box", `\boxedanswer{correct}`, "", ""},
		{"unclosed box", `\boxed{correct`, "", ""},
		{"escaped braces", `\boxed{\{correct\}}`, "", ""},
		{"verdict line", "The sum is right.\nVerdict: correct", "correct", "line"},
		{"bold verdict line", "**Final verdict:** the solution is incorrect.", "incorrect", "line"},
		{"last line wins", "Verdict: correct\nActually no.\nConclusion = wrong", "incorrect", "line"},
		{"box beats line", "Verdict: correct\n\\boxed{incorrect}", "incorrect", "boxed"},
		{"plain prose is not a verdict", "The solution is correct.", "", ""},
		{"a correct-looking answer box", `The answer is \boxed{correctly 4}`, "", ""},
		{"empty", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := ParseSelfVerdict(tt.text)
			if tt.label == "" {
				if !errors.Is(err, ErrNoVerdict) {
					t.Fatalf("got %+v, %v; want no verdict", v, err)
				}
				return
			}
			if err != nil || v.Label != tt.label || v.Rule != tt.rule || v.Correct != (tt.label == "correct") {
				t.Fatalf("got %+v, %v; want %s by %s", v, err, tt.label, tt.rule)
			}
		})
	}
}

func TestParseSelfScore(t *testing.T) {
	tests := []struct {
		name, text string
		score      any // float64, or nil when no score
		rule       string
	}{
		{"one", `\boxed{1}`, 1.0, "boxed"},
		{"minus half", `\boxed{-0.5}`, -0.5, "boxed"},
		{"minus one in text", `$\boxed{\text{-1}}$`, -1.0, "boxed"},
		{"unicode minus and fraction", "\\boxed{\u2212\\frac{1}{2}}", -0.5, "boxed"},
		{"slash fraction, spaced", `\boxed{ - 1/2 }`, -0.5, "boxed"},
		{"1.0 and plus", `\boxed{+1.0}`, 1.0, "boxed"},
		{"answers are skipped", `Score \boxed{-1}; the sum is \boxed{12}.`, -1.0, "boxed"},
		{"not a score", `\boxed{0.5}`, nil, ""},
		{"no exponents", `\boxed{1e0}`, nil, ""},
		{"a word is not a score", `\boxed{correct}`, nil, ""},
		{"score line", "Final score: -0.5", -0.5, "line"},
		{"last valid line", "Score: -1\nScore: 7", -1.0, "line"},
		{"nothing", "It looks fine.", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := ParseSelfScore(tt.text)
			if tt.score == nil {
				if !errors.Is(err, ErrNoVerdict) {
					t.Fatalf("got %+v, %v; want no score", v, err)
				}
				return
			}
			want := tt.score.(float64)
			if err != nil || v.Score == nil || *v.Score != want || v.Rule != tt.rule || v.Correct != (want == 1) {
				t.Fatalf("got %+v, %v; want %v by %s", v, err, want, tt.rule)
			}
		})
	}
}

// The verdict parser reads untrusted model text: whatever precedes it, a
// final boxed verdict decides, and the parser never panics.
func FuzzParseSelfVerdict(f *testing.F) {
	for _, s := range []string{"", `\boxed{correct}`, `\boxed{-\frac{1}{2}}`, "Score: -1", `\boxed{\text{in}correct}`, `\boxed{`, `\fbox{\`, "Verdict: no",
		`\boxed{\textbf{\text{\mbox{x}}}}`, "\\boxed{\\{}}}\\", strings.Repeat(`\boxed{`, 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseSelfVerdict(s)
		if err == nil && (v.Label != verdictLabel(v.Correct) || (v.Rule != "boxed" && v.Rule != "line")) {
			t.Fatalf("inconsistent verdict %+v", v)
		}
		if err != nil && !errors.Is(err, ErrNoVerdict) {
			t.Fatalf("error %v does not wrap ErrNoVerdict", err)
		}
		for _, tail := range []string{"correct", "incorrect"} {
			w, err := ParseSelfVerdict(s + "\n\\boxed{" + tail + "}")
			if err != nil || w.Label != tail || w.Rule != "boxed" {
				t.Fatalf("%q + boxed %s: %+v, %v", s, tail, w, err)
			}
		}
		if v, err := ParseSelfScore(s); err == nil && (v.Score == nil || (*v.Score != 1 && *v.Score != -0.5 && *v.Score != -1)) {
			t.Fatalf("score %+v is not 1, -0.5 or -1", v)
		}
		for _, tail := range []float64{1, -0.5, -1} {
			w, err := ParseSelfScore(s + fmt.Sprintf("\n\\boxed{%g}", tail))
			if err != nil || *w.Score != tail || w.Rule != "boxed" {
				t.Fatalf("%q + boxed %g: %+v, %v", s, tail, w, err)
			}
		}
	})
}

// Generation rewards on solutions, match rewards on verifications, and null
// with a reason wherever a value cannot be known.
func TestSelfVerifyPart(t *testing.T) {
	const ref = "4"
	solutions := []string{
		`So 2+2 = \boxed{4}.`,            // correct: 1
		`So 2+2 = \boxed{5}.`,            // wrong: -0.5
		"Let me think.\nFirst, 2 apples", // no final answer: -1
		"The answer is 4.",               // correct, but not boxed
		"ERR",
	}
	wantGen := []any{1.0, -0.5, -1.0, 1.0, nil}
	part := SelfVerify{Grader: testGrader}
	c := &Composite{Grader: testGrader, Parts: []Part{part}, Weights: map[string]float64{SelfVerifyGen: 1, SelfVerifyMatch: 1}}
	scores, err := c.Score(context.Background(), groupOf(ref, solutions...))
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range wantGen {
		checkComponent(t, scores[i], SelfVerifyGen, w)
	}
	// Requiring a boxed answer turns the unboxed correct answer into "no
	// final answer".
	strict := SelfVerify{Grader: testGrader, Require: []string{"boxed"}}
	if got := strict.GenerationReward(*scores[3].Verdict); got != -1 {
		t.Errorf("unboxed answer with require boxed: %v, want -1", got)
	}

	verify := []struct {
		solution, verdict string
		err               string
		ref               string
		match             any
		expected          string
	}{
		{solutions[0], `Checked. \boxed{correct}`, "", ref, 1.0, "correct"},
		{solutions[0], `\boxed{incorrect}`, "", ref, 0.0, "correct"},
		{solutions[1], `\boxed{incorrect}`, "", ref, 1.0, "incorrect"},
		{solutions[2], "Verdict: incorrect", "", ref, 1.0, "incorrect"}, // no answer is not correct
		{solutions[2], `\boxed{correct}`, "", ref, 0.0, "incorrect"},
		{solutions[0], "I think it is fine.", "", ref, nil, "correct"}, // no verdict
		{solutions[0], "", "endpoint: HTTP 503", ref, nil, ""},         // failed verification
		{solutions[0], `\boxed{correct}`, "", "", nil, ""},             // solution cannot be graded
	}
	for k, v := range verify {
		g := &rollout.Group{Task: rollout.Task{ID: "t", Reference: v.ref}, Turn: 1, Samples: []rollout.Sample{{
			Index: 0, Text: v.verdict, Err: v.err, Verifies: &rollout.VerifyTarget{Index: 2, Text: v.solution, FinishReason: "stop"},
		}}}
		scores, err := c.Score(context.Background(), g)
		if err != nil {
			t.Fatal(err)
		}
		s := scores[0]
		checkComponent(t, s, SelfVerifyMatch, v.match)
		if len(s.Reward.Components) != 1 || s.Verdict != nil {
			t.Errorf("case %d: a verification is not graded as an answer: %+v", k, s)
		}
		detail := s.Metadata["self_verify"].(map[string]any)
		if detail["solution_sample"] != 2 {
			t.Errorf("case %d: detail %v", k, detail)
		}
		if v.expected != "" && detail["expected_verdict"] != v.expected {
			t.Errorf("case %d: expected verdict %v, want %s", k, detail["expected_verdict"], v.expected)
		}
		if _, parsed := detail["verdict"]; parsed && (s.Answer != detail["verdict"] || !strings.HasPrefix(s.ExtractRule, "verdict_")) {
			t.Errorf("case %d: answer %q rule %q, detail %v", k, s.Answer, s.ExtractRule, detail)
		}
	}
}

// Score verdicts match the exact generation reward.
func TestSelfVerifyPartScores(t *testing.T) {
	part := SelfVerify{Grader: testGrader, Verdict: VerdictScore}
	tests := []struct {
		solution, verdict string
		match             any
	}{
		{`\boxed{4}`, `\boxed{1}`, 1.0},
		{`\boxed{5}`, `\boxed{-0.5}`, 1.0},
		{`\boxed{5}`, `\boxed{-1}`, 0.0}, // wrong, but it did state a final answer
		{"Let me think.\nFirst, 2 apples", `\boxed{-1}`, 1.0},
		{`\boxed{4}`, `\boxed{correct}`, nil}, // a label is not a score
	}
	for k, tt := range tests {
		g := &rollout.Group{Task: rollout.Task{ID: "t", Reference: "4"}, Turn: 1, Samples: []rollout.Sample{{
			Text: tt.verdict, Verifies: &rollout.VerifyTarget{Text: tt.solution, FinishReason: "stop"},
		}}}
		scores := make([]Score, 1)
		if err := part.Score(context.Background(), g, scores); err != nil {
			t.Fatal(err)
		}
		checkComponent(t, scores[0], SelfVerifyMatch, tt.match)
		d := scores[0].Metadata["self_verify"].(map[string]any)
		if d["expected_verdict"] != d["solution_reward"] {
			t.Errorf("case %d: expected verdict %v for solution reward %v", k, d["expected_verdict"], d["solution_reward"])
		}
	}
}

// A truncated solution whose text only happens to end in the reference
// states no final answer.
func TestSelfVerifyTruncatedSolution(t *testing.T) {
	part := SelfVerify{Grader: testGrader}
	g := &rollout.Group{Task: rollout.Task{ID: "t", Reference: "4"}, Turn: 1, Samples: []rollout.Sample{{
		Text: `\boxed{incorrect}`, Verifies: &rollout.VerifyTarget{Text: "4", FinishReason: "length"},
	}}}
	scores := make([]Score, 1)
	if err := part.Score(context.Background(), g, scores); err != nil {
		t.Fatal(err)
	}
	d := scores[0].Metadata["self_verify"].(map[string]any)
	if d["solution_reward"] != -1.0 {
		t.Errorf("solution reward %v, want -1", d["solution_reward"])
	}
	checkComponent(t, scores[0], SelfVerifyMatch, 1.0)
}

func checkComponent(t *testing.T, s Score, name string, want any) {
	t.Helper()
	got := component(s, name)
	if want == nil {
		if got.Value != nil || got.Reason == "" {
			t.Errorf("%s: %+v, want null with a reason", name, got)
		}
		return
	}
	if got.Value == nil || *got.Value != want.(float64) {
		t.Errorf("%s: %+v, want %v", name, got, want)
	}
}
