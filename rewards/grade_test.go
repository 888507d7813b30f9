package rewards

import (
	"context"
	"strings"
	"testing"

	"github.com/redraft/redraft/rewards/mathgrade"
	"github.com/redraft/redraft/rollout"
)

var testGrader = NewMathGrader(mathgrade.Options{})

func TestMathGrader(t *testing.T) {
	tests := []struct {
		name, response, reference string
		correct, found            bool
		rule                      string
	}{
		{"hash", "so 9*2=18\n#### 18", "18", true, true, "hash"},
		{"gsm8k A line", "She makes $18.\nA: 18", "Janet sells...\nA: 18", true, true, "answer_colon"},
		{"answer phrase with dollars", "Thus, the answer is $1,000.", "1000", true, true, "the_answer_is"},
		{"boxed wins over phrase", "The answer is 3. Wait: \\boxed{4}", "4", true, true, "boxed"},
		{"decimal equals integer", "#### 18.00", "18", true, true, "hash"},
		{"fraction", "#### 36/2", "18", true, true, "hash"},
		{"negative unicode minus", "#### −5", "-5", true, true, "hash"},
		{"wrong", "#### 17", "18", false, true, "hash"},
		{"two numbers state nothing", "The answer is 5 or 6.", "5", false, true, "the_answer_is"},
		{"cut-off last number does not count", "First 16 - 3 - 4 = 9 eggs are left.\nThen she sells them: 9 * 2 = 18", "18", false, false, ""},
		{"bare answer", "18", "18", true, true, "bare"},
		{"empty", "", "18", false, false, ""},
	}
	g := testGrader
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := g.Grade(tt.response, tt.reference)
			if v.Correct != tt.correct || v.Found != tt.found || v.ExtractRule != tt.rule {
				t.Fatalf("got %+v, want correct=%v found=%v rule=%q", v, tt.correct, tt.found, tt.rule)
			}
			if !v.Correct && v.Reason == "" {
				t.Errorf("incorrect verdict without a reason: %+v", v)
			}
		})
	}
}

func TestVerifiableScorerNulls(t *testing.T) {
	g := &rollout.Group{
		Task: rollout.Task{ID: "t", Reference: "4"},
		Samples: []rollout.Sample{
			{Text: "#### 4"},
			{Err: "endpoint: HTTP 500: boom"},
			{Text: "#### 5"},
		},
	}
	s := &Composite{Grader: testGrader, Parts: []Part{Verifiable{}}, Weights: map[string]float64{"verifiable": 1}}
	scores, err := s.Score(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	if *scores[0].Reward.Total != 1 || *scores[2].Reward.Total != 0 {
		t.Errorf("totals: %v %v", *scores[0].Reward.Total, *scores[2].Reward.Total)
	}
	if scores[1].Reward.Total != nil || scores[1].Reward.Reason == "" || scores[1].Reward.Components[0].Value != nil {
		t.Errorf("failed request should give a null reward with a reason: %+v", scores[1].Reward)
	}
	g.Task.Reference = ""
	scores, _ = s.Score(context.Background(), g)
	if scores[0].Reward.Total != nil || scores[0].Reward.Components[0].Reason != "the task has no reference answer" {
		t.Errorf("no reference: %+v", scores[0].Reward)
	}
	// A zero-weight component does not make the total null.
	s.Weights["verifiable"] = 0
	scores, _ = s.Score(context.Background(), g)
	if scores[0].Reward.Total == nil || *scores[0].Reward.Total != 0 {
		t.Errorf("zero weight: %+v", scores[0].Reward)
	}
}

// A truncated response earns nothing for a fragment that would pass as a bare
// answer: "so she makes 9 * 2 = 18" cut off is reasoning, not an answer.
func TestTruncatedBareAnswer(t *testing.T) {
	g := &rollout.Group{Task: rollout.Task{Reference: "18"}, Samples: []rollout.Sample{
		{Text: "so she makes 9 * 2 = 18", FinishReason: "length"},
		{Text: "so she makes 9 * 2 = 18", FinishReason: "stop"},
		{Text: "#### 18", FinishReason: "length"},
	}}
	c := &Composite{Grader: testGrader, Parts: []Part{Verifiable{}}, Weights: map[string]float64{"verifiable": 1}}
	scores, err := c.Score(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	if v := scores[0].Verdict; v.Correct || v.Found || v.Rule != "no_answer:cut_off" || scores[0].Answer != "" {
		t.Errorf("truncated bare: %+v", v)
	}
	if !scores[1].Verdict.Correct || scores[1].Verdict.ExtractRule != ExtractBare {
		t.Errorf("finished bare: %+v", scores[1].Verdict)
	}
	if !scores[2].Verdict.Correct {
		t.Errorf("truncated after a marked answer: %+v", scores[2].Verdict)
	}
}

// The 17 rows of issue 16: responses the server ended with finish_reason
// stop were graded no_answer:cut_off because their text did not end a
// sentence. A reported finish_reason decides; recorded text without one is
// still read by its ending.
func TestFinishReasonDecidesCutOff(t *testing.T) {
	text := "She makes 9 * 2 = 18 dollars.\nThen she spends 4 of them on"
	g := &rollout.Group{Task: rollout.Task{Reference: "18"}, Samples: []rollout.Sample{
		{Text: text, FinishReason: "stop"},
		{Text: text, FinishReason: "length"},
		{Text: text},
	}}
	c := &Composite{Grader: testGrader, Parts: []Part{Verifiable{}}, Weights: map[string]float64{"verifiable": 1}}
	scores, err := c.Score(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"no_answer:not_stated", "no_answer:cut_off", "no_answer:cut_off"} {
		v := scores[i].Verdict
		if v == nil || v.Rule != want || v.Correct {
			t.Errorf("sample %d (finish_reason %q): %+v, want %s", i, g.Samples[i].FinishReason, v, want)
		}
	}
	if r := scores[0].Verdict.Reason; strings.Contains(r, "cut off") {
		t.Errorf("a response that finished is said to be cut off: %q", r)
	}
}
