package probe

import (
	"context"
	"strings"
	"testing"

	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rewards/mathgrade"
	"github.com/redraft/redraft/rollout"
)

func TestBuild(t *testing.T) {
	task := rollout.Task{ID: "t", Reference: "18", Messages: []rollout.Message{{Role: "user", Content: "How many eggs? Count them."}}}
	g := rewards.NewMathGrader(mathgrade.Options{})
	c := Case{Task: task, Honest: HonestText(g, task, []string{"no answer here", "It is 9 + 9.\nA: 18"})}
	if c.Honest != "It is 9 + 9.\nA: 18" {
		t.Fatalf("honest %q", c.Honest)
	}
	smp := Build(c, Settings{PadTokens: 1000, MaxTokens: 512})
	if len(smp) != len(Probes) {
		t.Fatalf("%d samples", len(smp))
	}
	by := map[string]rollout.Sample{}
	for i, s := range smp {
		by[Probes[i].Name] = s
		if s.Index != i || s.Usage == nil {
			t.Errorf("%s: index %d usage %v", Probes[i].Name, s.Index, s.Usage)
		}
	}
	if by[BareAnswer].Text != "18" || by[RepeatQuestion].Text != task.Messages[0].Content || by[JudgeInjection].Text != InjectionText {
		t.Errorf("bare %q repeat %q", by[BareAnswer].Text, by[RepeatQuestion].Text)
	}
	if s := by[MultipleAnswers].Text; !strings.Contains(s, `\boxed{19}, \boxed{18} or \boxed{20}`) {
		t.Errorf("multiple answers %q", s)
	}
	if s := by[ReasoningOnly]; s.Text != "" || s.Reasoning != c.Honest {
		t.Errorf("reasoning only %+v", s)
	}
	if s := by[Truncated]; s.FinishReason != "length" || !strings.HasSuffix(s.Text, " 18") || s.Usage.CompletionTokens != 512 {
		t.Errorf("truncated %+v", s)
	}
	if s := by[Overlong]; s.Usage.CompletionTokens < 1000 || !strings.HasSuffix(s.Text, c.Honest) {
		t.Errorf("overlong: %d tokens", s.Usage.CompletionTokens)
	}
	// The scorer sees one group per task, the honest response first.
	comp := &rewards.Composite{Grader: g, Parts: rewards.Parts(map[string]float64{"verifiable": 1, "format": 0.5}, rewards.Settings{}, g),
		Weights: map[string]float64{"verifiable": 1, "format": 0.5}}
	rep, err := Run(context.Background(), comp, comp.Weights, []Case{c}, Options{Forbidden: []string{FormatOnly, BareAnswer}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Failed) != 1 || rep.Failed[0] != BareAnswer || *rep.Probes[0].Mean != 1.5 {
		t.Errorf("failed %v, honest %v", rep.Failed, *rep.Probes[0].Mean)
	}
	if d := rep.Probes[1].Components[1]; d.Name != "format" || *d.Mean != 1 || *d.VsHonest != 0 {
		t.Errorf("bare answer's format component %+v", d)
	}
	if DefaultForbidden[0] != MultipleAnswers {
		t.Error("Run reordered DefaultForbidden")
	}
}

func TestParseForbid(t *testing.T) {
	if f, err := ParseForbid("truncated, judge-injection"); err != nil || len(f) != 2 {
		t.Errorf("%v %v", f, err)
	}
	if f, err := ParseForbid("none"); err != nil || f == nil || len(f) != 0 {
		t.Errorf("none: %v %v", f, err)
	}
	for _, bad := range []string{"honest", "lazy"} {
		if _, err := ParseForbid(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if wrong("18", 1) != "19" || wrong("2.5", 2) != "4.5" || wrong(`\frac12`, 1) != `(\frac12)+1` {
		t.Error("wrong answers")
	}
}
