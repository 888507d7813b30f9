package rewards

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/redraft/redraft/rollout"
)

func groupOf(ref string, texts ...string) *rollout.Group {
	g := &rollout.Group{Task: rollout.Task{ID: "t", Reference: ref}}
	for i, s := range texts {
		smp := rollout.Sample{Index: i, Text: s}
		if s == "ERR" {
			smp = rollout.Sample{Index: i, Err: "endpoint: HTTP 503"}
		}
		g.Samples = append(g.Samples, smp)
	}
	return g
}

func component(s Score, name string) Component {
	for _, c := range s.Reward.Components {
		if c.Name == name {
			return c
		}
	}
	panic("no component " + name)
}

func TestConsensus(t *testing.T) {
	tests := []struct {
		name         string
		ref          string
		texts        []string
		label        string
		ratio        float64
		labelCorrect *bool
		want         []any // 1, 0 or nil per sample
	}{
		{"equivalence not strings", "", []string{"#### 0.5", "#### 1/2", "#### 3", "The answer is 0.50."},
			"0.5", 0.75, nil, []any{1.0, 1.0, 0.0, 1.0}},
		{"tie goes to the earliest cluster", "7", []string{"#### 8", "#### 7", "#### 7", "#### 8"},
			"8", 0.5, ptr(false), []any{1.0, 0.0, 0.0, 1.0}},
		{"no answer counts in the ratio, failures do not", "4", []string{"#### 4", "I am not sure.\nMaybe 4", "ERR", "#### 5"},
			"4", 1.0 / 3, ptr(true), []any{1.0, 0.0, nil, 0.0}},
		{"nobody answered", "", []string{"Let me think.\nFirst, 3 apples", "ERR"}, "", 0, nil, []any{nil, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Composite{Grader: testGrader, Parts: []Part{Consensus{Grader: testGrader}}, Weights: map[string]float64{"consensus": 1}}
			scores, err := c.Score(context.Background(), groupOf(tt.ref, tt.texts...))
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tt.want {
				got := component(scores[i], "consensus")
				if w == nil {
					if got.Value != nil || got.Reason == "" {
						t.Errorf("sample %d: %+v, want nil with a reason", i, got)
					}
					continue
				}
				if got.Value == nil || *got.Value != w.(float64) {
					t.Errorf("sample %d: %+v, want %v", i, got, w)
				}
			}
			d := scores[0].Consensus
			if tt.label == "" {
				if d != nil {
					t.Errorf("detail %+v, want none", d)
				}
				return
			}
			if d == nil || d.Label != tt.label || d.Ratio != tt.ratio {
				t.Fatalf("detail %+v, want label %s ratio %v", d, tt.label, tt.ratio)
			}
			if (d.LabelCorrect == nil) != (tt.labelCorrect == nil) || (d.LabelCorrect != nil && *d.LabelCorrect != *tt.labelCorrect) {
				t.Errorf("label correct %v, want %v", d.LabelCorrect, tt.labelCorrect)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestFormatAndOverlong(t *testing.T) {
	g := groupOf("4", "\\boxed{4}", "#### 4", "no answer", "ERR")
	g.Samples[0].Usage = &rollout.Usage{CompletionTokens: 90}
	g.Samples[1].Usage = &rollout.Usage{CompletionTokens: 100}
	c := &Composite{Grader: testGrader, Parts: []Part{
		Verifiable{}, Format{Require: []string{"boxed"}}, Overlong{MaxTokens: 100, Buffer: 20},
	}, Weights: map[string]float64{"verifiable": 1, "format": 0.5, "overlong": 1}}
	scores, err := c.Score(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	// Sample 0: correct, boxed, 90 tokens: penalty -(90-80)/20 = -0.5.
	if got := *scores[0].Reward.Total; got != 1+0.5-0.5 {
		t.Errorf("sample 0 total %v", got)
	}
	if c := component(scores[0], "overlong"); *c.Value != -0.5 || c.Weight != 1 {
		t.Errorf("overlong %+v", c)
	}
	// Sample 1: correct, not boxed, at max_tokens: penalty -1.
	if got := *scores[1].Reward.Total; got != 1+0-1 {
		t.Errorf("sample 1 total %v", got)
	}
	// Sample 2: no usage: overlong is nil, so the weighted total is nil.
	if scores[2].Reward.Total != nil || scores[2].Reward.Reason != "overlong: completion token count unknown" {
		t.Errorf("sample 2 %+v", scores[2].Reward)
	}
	if scores[3].Reward.Total != nil {
		t.Errorf("failed sample has a total")
	}
	for l, want := range map[int]float64{0: 0, 80: 0, 81: -0.05, 100: -1, 5000: -1} {
		if got := (Overlong{MaxTokens: 100, Buffer: 20}).Penalty(l); got != want {
			t.Errorf("Penalty(%d) = %v, want %v", l, got, want)
		}
	}
	if (Overlong{MaxTokens: 10, Buffer: 10}).Validate() == nil {
		t.Error("buffer == max_tokens accepted")
	}
	if ScoreBonus(10, 0, 1) != 10 || ScoreBonus(10, 1, 0) != -10 {
		t.Error("ScoreBonus")
	}
}

func TestSRPOReflection(t *testing.T) {
	tr, fa := true, false
	g := groupOf("4", "#### 4", "#### 5", "#### 4", "#### 5", "#### 4")
	g.Turn = 1
	prev := []*bool{&fa, &tr, &tr, &fa, nil}
	for i := range g.Samples {
		g.Samples[i].PrevCorrect = prev[i]
		g.Samples[i].Usage = &rollout.Usage{CompletionTokens: 100 * (i + 1)}
	}
	p := SRPOReflection{FlipBonus: 0.5, LengthWeight: 0.2, LengthTarget: 200}
	c := &Composite{Grader: testGrader, Parts: []Part{p}, Weights: map[string]float64{"srpo": 1}}
	scores, err := c.Score(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	length := func(l float64) float64 { return 0.2 * math.Exp(-math.Abs(l-200)/200) }
	want := []float64{0.5 + length(100), -0.5 + length(200), 0 + length(300), 0 + length(400)}
	for i, w := range want {
		if got := *component(scores[i], "srpo").Value; math.Abs(got-w) > 1e-15 {
			t.Errorf("sample %d: %v, want %v", i, got, w)
		}
	}
	if c := component(scores[4], "srpo"); c.Value != nil || c.Reason == "" {
		t.Errorf("ungraded previous attempt: %+v", c)
	}
	g.Turn = 0
	scores, _ = c.Score(context.Background(), g)
	if len(scores[0].Reward.Components) != 0 {
		t.Errorf("first attempts get no srpo component: %+v", scores[0].Reward.Components)
	}
}

func TestRecorded(t *testing.T) {
	g := groupOf("4", "#### 4", "#### 5", "#### 4", "ERR")
	g.Samples[0].RecordedReward = ptr(0.75)
	g.Samples[1].RecordedReward = ptr(-2.0)
	g.Samples[3].RecordedReward = ptr(1.0) // failed: its recorded reward is not used
	c := &Composite{Grader: testGrader, Parts: []Part{Verifiable{}, Recorded{}},
		Weights: map[string]float64{"verifiable": 1, "recorded": 0.5}}
	scores, err := c.Score(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		total  *float64
		value  *float64
		reason string
	}{
		{ptr(1 + 0.5*0.75), ptr(0.75), ""},
		{ptr(0 + 0.5*-2.0), ptr(-2.0), ""},
		{nil, nil, "the recorded response carried no reward"},
		{nil, nil, "no response: "},
	}
	for i, tt := range tests {
		got := component(scores[i], "recorded")
		if (got.Value == nil) != (tt.value == nil) || got.Value != nil && *got.Value != *tt.value || got.Weight != 0.5 ||
			!strings.HasPrefix(got.Reason, tt.reason) || (tt.reason == "") != (got.Reason == "") {
			t.Errorf("sample %d: component %+v", i, got)
		}
		tot := scores[i].Reward.Total
		if (tot == nil) != (tt.total == nil) || tot != nil && *tot != *tt.total {
			t.Errorf("sample %d: total %v, want %v", i, tot, tt.total)
		}
	}
	if r := scores[2].Reward.Reason; !strings.Contains(r, "recorded") {
		t.Errorf("null total's reason %q does not name the component", r)
	}
}
