package rewards

import (
	"context"
	"fmt"

	"github.com/redraft/redraft/rollout"
)

// Component is one named part of a reward. Value is nil when the component
// could not be computed, and Reason then says why.
type Component struct {
	Name   string
	Value  *float64
	Weight float64
	Reason string
}

// Reward is a sample's reward: its components and their weighted total. Total
// is nil when a weighted component is nil; Reason then names it.
type Reward struct {
	Total      *float64
	Components []Component
	Reason     string
}

// Total sums weight*value over components. A component with weight 0 does not
// count, even when nil.
func total(cs []Component) (*float64, string) {
	var t float64
	for _, c := range cs {
		if c.Weight == 0 {
			continue
		}
		if c.Value == nil {
			return nil, fmt.Sprintf("%s: %s", c.Name, c.Reason)
		}
		t += c.Weight * *c.Value
	}
	return &t, ""
}

// Score is what a Scorer decided for one sample.
type Score struct {
	// Verdict is the grader's decision; nil when the sample was not graded
	// (no response, or no reference).
	Verdict *Verdict
	Reward  Reward
}

// Scorer scores every sample of a group at once, so that group-level rewards
// (consensus, pairwise judges) fit the same seam. It returns one Score per
// sample, in sample order. Implementations must be safe for concurrent use
// and deterministic. An error aborts the run: per-sample problems belong in
// the returned scores as nil components with reasons.
type Scorer interface {
	Score(ctx context.Context, g *rollout.Group) ([]Score, error)
}

// VerifiableScorer rewards 1 for a correct final answer and 0 otherwise, as
// the component "verifiable" with weight Weight.
type VerifiableScorer struct {
	Grader Grader
	Weight float64
}

// Score implements Scorer.
func (s *VerifiableScorer) Score(ctx context.Context, g *rollout.Group) ([]Score, error) {
	out := make([]Score, len(g.Samples))
	for i, smp := range g.Samples {
		c := Component{Name: "verifiable", Weight: s.Weight}
		switch {
		case smp.Err != "":
			c.Reason = "no response: " + smp.Err
		case g.Task.Reference == "":
			c.Reason = "the task has no reference answer"
		default:
			v := s.Grader.Grade(smp.Text, g.Task.Reference)
			out[i].Verdict = &v
			val := 0.0
			if v.Correct {
				val = 1
			}
			c.Value = &val
		}
		cs := []Component{c}
		t, why := total(cs)
		out[i].Reward = Reward{Total: t, Components: cs, Reason: why}
	}
	return out, ctx.Err()
}
