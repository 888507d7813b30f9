package rewards

import (
	"context"
	"math"
	"slices"

	"github.com/redraft/redraft/rollout"
)

// Format rewards a response that states its final answer in an accepted form
// (component "format"): 1 when it does, 0 when it does not. With Require
// set, only those extraction rules count (e.g. ["boxed"]). Its settings
// are a configuration's reward.format.
type Format struct {
	Require []string `yaml:"require" json:"require,omitempty"`
}

// Name implements Part.
func (Format) Name() string { return "format" }

// Score implements Part.
func (f Format) Score(_ context.Context, g *rollout.Group, scores []Score) error {
	for i, smp := range g.Samples {
		s := &scores[i]
		switch {
		case smp.Err != "":
			appendComponent(s, "format", nil, noResponse(smp))
		case s.Answer != "" && (len(f.Require) == 0 || slices.Contains(f.Require, s.ExtractRule)):
			appendComponent(s, "format", f64(1), "")
		default:
			appendComponent(s, "format", f64(0), "")
		}
	}
	return nil
}

// Overlong is DAPO's soft overlong penalty (component "overlong"): for a
// response of L completion tokens, 0 while L <= MaxTokens - Buffer, then
// -(L - (MaxTokens - Buffer)) / Buffer, down to -1 at MaxTokens and beyond.
// It is nil, with the reason, when the token count is unknown. Its settings
// are a configuration's reward.overlong.
type Overlong struct {
	MaxTokens int `yaml:"max_tokens" json:"max_tokens,omitempty"`
	Buffer    int `yaml:"buffer" json:"buffer,omitempty"`
}

// Name implements Part.
func (Overlong) Name() string { return "overlong" }

// Validate reports settings the penalty cannot use, as a *SettingError.
func (o Overlong) Validate() error {
	if o.Buffer < 1 || o.MaxTokens <= o.Buffer {
		return settingErr("overlong", "need 0 < buffer (%d) < max_tokens (%d)", o.Buffer, o.MaxTokens)
	}
	return nil
}

// Penalty returns the penalty for a response of l tokens.
func (o Overlong) Penalty(l int) float64 {
	free := o.MaxTokens - o.Buffer
	if l <= free {
		return 0
	}
	return max(-float64(l-free)/float64(o.Buffer), -1)
}

// Score implements Part.
func (o Overlong) Score(_ context.Context, g *rollout.Group, scores []Score) error {
	for i, smp := range g.Samples {
		switch {
		case smp.Err != "":
			appendComponent(&scores[i], "overlong", nil, noResponse(smp))
		case smp.Usage == nil:
			appendComponent(&scores[i], "overlong", nil, "completion token count unknown")
		default:
			appendComponent(&scores[i], "overlong", f64(o.Penalty(smp.Usage.CompletionTokens)), "")
		}
	}
	return nil
}

// ScoreBonus is SCoRe's turn-2 shaping term alpha * (r2 - r1): positive for
// a revision that fixes the first attempt, negative for one that breaks it.
// Public reimplementations use alpha around 10.
func ScoreBonus(alpha, r1, r2 float64) float64 { return alpha * (r2 - r1) }

// ScoreShaping is SCoRe's shaping term on revisions (component
// "score_bonus"): alpha * (r2 - r1) with r the 0/1 correctness of the
// revision and of the attempt before it in the same episode. First attempts
// get no component (the term does not apply to them). Its settings are a
// configuration's reward.score_bonus.
type ScoreShaping struct {
	Alpha float64 `yaml:"alpha" json:"alpha,omitempty"`
}

// Name implements Part.
func (ScoreShaping) Name() string { return "score_bonus" }

// Score implements Part.
func (p ScoreShaping) Score(_ context.Context, g *rollout.Group, scores []Score) error {
	if g.Turn == 0 {
		return nil
	}
	for i, smp := range g.Samples {
		s := &scores[i]
		if why := revisionUngraded(smp, s); why != "" {
			appendComponent(s, "score_bonus", nil, why)
			continue
		}
		r1, r2 := 0.0, 0.0
		if *smp.PrevCorrect {
			r1 = 1
		}
		if s.Verdict.Correct {
			r2 = 1
		}
		appendComponent(s, "score_bonus", f64(ScoreBonus(p.Alpha, r1, r2)), "")
	}
	return nil
}

// revisionUngraded says why a revision's correctness transition is unknown,
// or "" when both it and the previous attempt were graded.
func revisionUngraded(smp rollout.Sample, s *Score) string {
	switch {
	case smp.Err != "":
		return noResponse(smp)
	case s.Verdict == nil:
		return "the task has no reference answer"
	case smp.PrevCorrect == nil:
		return "the previous attempt was not graded"
	}
	return ""
}

// SRPOReflection is a reflection-aware shaping term in the spirit of SRPO
// (component "srpo") on a revision (turn >= 1): +FlipBonus when the revision
// turns a wrong attempt right, -FlipBonus when it turns a right one wrong, 0
// when correctness does not change; plus LengthWeight * exp(-|L - T| / T) for
// a revision of L completion tokens against the target length T, which
// rewards reflections of about the intended length (off when LengthWeight is
// 0). Every constant is a setting (a configuration's reward.srpo); first
// attempts get no component.
type SRPOReflection struct {
	FlipBonus    float64 `yaml:"flip_bonus" json:"flip_bonus,omitempty"`
	LengthWeight float64 `yaml:"length_weight" json:"length_weight,omitempty"`
	LengthTarget int     `yaml:"length_target" json:"length_target,omitempty"`
}

// Name implements Part.
func (SRPOReflection) Name() string { return "srpo" }

// Score implements Part.
func (p SRPOReflection) Score(_ context.Context, g *rollout.Group, scores []Score) error {
	if g.Turn == 0 {
		return nil
	}
	for i, smp := range g.Samples {
		s := &scores[i]
		switch why := revisionUngraded(smp, s); {
		case why != "":
			appendComponent(s, "srpo", nil, why)
		case p.LengthWeight != 0 && smp.Usage == nil:
			appendComponent(s, "srpo", nil, "completion token count unknown")
		default:
			v := 0.0
			switch {
			case !*smp.PrevCorrect && s.Verdict.Correct:
				v = p.FlipBonus
			case *smp.PrevCorrect && !s.Verdict.Correct:
				v = -p.FlipBonus
			}
			if p.LengthWeight != 0 {
				t := float64(p.LengthTarget)
				v += p.LengthWeight * math.Exp(-math.Abs(float64(smp.Usage.CompletionTokens)-t)/t)
			}
			appendComponent(s, "srpo", f64(v), "")
		}
	}
	return nil
}

// Recorded passes on the reward a recorded response carried (component
// "recorded": its "reward" key, such as a reward model's score where it was
// generated), so that it can be weighted with, or instead of, the rewards
// computed here. It is null, with the reason, for a failed response and for
// one that carried none.
type Recorded struct{}

// Name implements Part.
func (Recorded) Name() string { return "recorded" }

// Score implements Part.
func (Recorded) Score(_ context.Context, g *rollout.Group, scores []Score) error {
	for i, smp := range g.Samples {
		s := &scores[i]
		switch {
		case smp.Err != "":
			appendComponent(s, "recorded", nil, noResponse(smp))
		case smp.RecordedReward == nil:
			appendComponent(s, "recorded", nil, "the recorded response carried no reward")
		default:
			appendComponent(s, "recorded", f64(*smp.RecordedReward), "")
		}
	}
	return nil
}
