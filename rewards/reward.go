package rewards

import (
	"context"
	"fmt"
	"sort"

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

// total sums weight*value over components. A component with weight 0 does not
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

// ConsensusDetail explains a consensus reward: the group's majority answer.
type ConsensusDetail struct {
	// Label is the majority answer as first stated in the group.
	Label string
	// Ratio is the majority cluster's size over the samples that responded.
	Ratio float64
	// LabelCorrect says whether the label equals the reference; nil when the
	// task has none.
	LabelCorrect *bool
}

// JudgeScore is one judge's verdict on one sample.
type JudgeScore struct {
	Judge  string
	Score  *float64 // normalised to [0, 1]; nil on failure
	Raw    *float64 // as written on the judge's scale
	Reason string   // why Score is nil
}

// JudgeDetail explains a judge reward.
type JudgeDetail struct {
	Scores []JudgeScore
	// Flagged is set when the response addresses the judge (prompt
	// injection); FlagReason names the pattern.
	Flagged    bool
	FlagReason string
}

// Score is what a Scorer decided for one sample.
type Score struct {
	// Answer is the final answer the response stated ("" when none);
	// ExtractRule says how it was found. Filled for every sample with a
	// response, with or without a reference.
	Answer      string
	ExtractRule string
	// Verdict is the grader's decision against the reference; nil when the
	// sample has no response or the task no reference.
	Verdict   *Verdict
	Reward    Reward
	Consensus *ConsensusDetail
	Judge     *JudgeDetail
	// Metadata holds details a part adds to the row's response_metadata
	// (self-verification: the verdict and the verified solution's grade).
	Metadata map[string]any
}

// Scorer scores every sample of a group at once, so that group-level rewards
// (consensus, pairwise judges) fit the same seam. It returns one Score per
// sample, in sample order. Implementations must be safe for concurrent use
// and deterministic. An error aborts the run: per-sample problems belong in
// the returned scores as nil components with reasons.
type Scorer interface {
	Score(ctx context.Context, g *rollout.Group) ([]Score, error)
}

// Part computes reward components for a group. Score appends one component
// per sample (with Weight left 0: Composite sets the weights) and may fill
// the sample's details. It runs after grading, so scores[i].Answer and
// scores[i].Verdict are set.
type Part interface {
	Name() string
	Score(ctx context.Context, g *rollout.Group, scores []Score) error
}

// Composite grades every sample, runs its parts, weights their components
// and totals them. It is the Scorer the pipeline uses.
type Composite struct {
	Grader Grader
	// Verifier, when set, decides the responses of the tasks it verifies
	// (Verifies) in place of the Grader.
	Verifier Verifier
	Parts    []Part
	// Weights maps component names to weights; a component without a
	// weight is stored with weight 0 and does not count.
	Weights map[string]float64
}

// Score implements Scorer.
func (c *Composite) Score(ctx context.Context, g *rollout.Group) ([]Score, error) {
	out := make([]Score, len(g.Samples))
	verified := c.Verifier != nil && c.Verifier.Verifies(g.Task)
	if verified {
		c.verify(ctx, g, out)
	}
	for i, smp := range g.Samples {
		// A verification's text is a verdict on another response, not an
		// answer to the task: its part reads it.
		if smp.Err != "" || smp.Verifies != nil || verified {
			continue
		}
		if g.Task.Reference != "" {
			v := grade(c.Grader, smp.Text, smp.FinishReason, g.Task.Reference)
			out[i].Verdict = &v
			out[i].Answer, out[i].ExtractRule = v.Answer, v.ExtractRule
		} else if a, rule, ok := c.Grader.Extract(smp.Text); ok && !(smp.FinishReason == "length" && rule == ExtractBare) {
			out[i].Answer, out[i].ExtractRule = a, rule
		}
	}
	for _, p := range c.Parts {
		if err := p.Score(ctx, g, out); err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name(), err)
		}
	}
	for i := range out {
		cs := out[i].Reward.Components
		for j := range cs {
			cs[j].Weight = c.Weights[cs[j].Name]
		}
		out[i].Reward.Total, out[i].Reward.Reason = total(cs)
	}
	return out, ctx.Err()
}

// verify has the Verifier decide the group's responses, filling their
// verdicts, answers and details.
func (c *Composite) verify(ctx context.Context, g *rollout.Group, out []Score) {
	var idx []int
	var samples []rollout.Sample
	for i, smp := range g.Samples {
		if smp.Err == "" && smp.Verifies == nil {
			idx = append(idx, i)
			samples = append(samples, smp)
		}
	}
	if len(samples) == 0 {
		return
	}
	vs := c.Verifier.Verify(ctx, g.Task, samples)
	for k, i := range idx {
		if k >= len(vs) {
			break
		}
		v := vs[k]
		out[i].Verdict = &v
		out[i].Answer, out[i].ExtractRule = v.Answer, v.ExtractRule
		if v.DetailKey != "" && v.Detail != nil {
			if out[i].Metadata == nil {
				out[i].Metadata = map[string]any{}
			}
			out[i].Metadata[v.DetailKey] = v.Detail
		}
	}
}

// ExtractBare is the extraction rule of a short response that is its own
// answer ("18", "$\frac12$").
const ExtractBare = "bare"

// grade grades a response against the reference, with the finish_reason
// the server reported when the grader takes it (FinishGrader); otherwise a
// truncated response's bare "answer" counts as no answer (see cutOff).
func grade(g Grader, text, finishReason, reference string) Verdict {
	if fg, ok := g.(FinishGrader); ok {
		return fg.GradeFinished(text, reference, finishReason)
	}
	v := g.Grade(text, reference)
	if finishReason == "length" && v.ExtractRule == ExtractBare {
		v = cutOff(v)
	}
	return v
}

// cutOff turns the verdict on a truncated response (finish_reason=length)
// that stated no marked final answer into "nothing stated": its text is a
// fragment of reasoning, not an answer, whatever it happens to end with.
func cutOff(v Verdict) Verdict {
	return Verdict{Gold: v.Gold, Rule: "no_answer:cut_off",
		Reason: "the response was cut off (finish_reason=length) before stating a final answer"}
}

// noResponse is the reason a component of a failed sample is nil.
func noResponse(s rollout.Sample) string { return "no response: " + s.Err }

func appendComponent(s *Score, name string, v *float64, reason string) {
	s.Reward.Components = append(s.Reward.Components, Component{Name: name, Value: v, Reason: reason})
}

func f64(v float64) *float64 { return &v }

// Verifiable rewards 1 for a final answer equal to the reference, 0 otherwise
// (component "verifiable").
type Verifiable struct{}

// Name implements Part.
func (Verifiable) Name() string { return "verifiable" }

// Score implements Part.
func (Verifiable) Score(_ context.Context, g *rollout.Group, scores []Score) error {
	for i, smp := range g.Samples {
		switch {
		case smp.Err != "":
			appendComponent(&scores[i], "verifiable", nil, noResponse(smp))
		case scores[i].Verdict == nil && g.Task.Reference == "":
			appendComponent(&scores[i], "verifiable", nil, "the task has no reference answer")
		case scores[i].Verdict == nil:
			appendComponent(&scores[i], "verifiable", nil, "the response is not an answer to the task (a verification)")
		case scores[i].Verdict.Unverified:
			appendComponent(&scores[i], "verifiable", nil, "not verified: "+scores[i].Verdict.Reason)
		case scores[i].Verdict.Value != nil:
			appendComponent(&scores[i], "verifiable", f64(*scores[i].Verdict.Value), "")
		case scores[i].Verdict.Correct:
			appendComponent(&scores[i], "verifiable", f64(1), "")
		default:
			appendComponent(&scores[i], "verifiable", f64(0), "")
		}
	}
	return nil
}

// PassRate rewards the fraction of a code task's tests that the response's
// program passed (component "pass_rate"); null for tasks whose verifier
// runs no tests.
type PassRate struct{}

// Name implements Part.
func (PassRate) Name() string { return "pass_rate" }

// Score implements Part.
func (PassRate) Score(_ context.Context, g *rollout.Group, scores []Score) error {
	for i, smp := range g.Samples {
		v := scores[i].Verdict
		switch {
		case smp.Err != "":
			appendComponent(&scores[i], "pass_rate", nil, noResponse(smp))
		case v != nil && v.Unverified:
			appendComponent(&scores[i], "pass_rate", nil, "not verified: "+v.Reason)
		case v == nil || v.PassRate == nil:
			appendComponent(&scores[i], "pass_rate", nil, "no tests were run for this response")
		default:
			appendComponent(&scores[i], "pass_rate", f64(*v.PassRate), "")
		}
	}
	return nil
}

// Consensus rewards agreement with the group's majority answer (TTRL,
// KnowRL), needing no reference (component "consensus"). Answers are
// clustered by the grader's equivalence, not by their strings: "0.5", "1/2"
// and "\frac12" are one cluster. The majority is the largest cluster; a tie
// goes to the cluster whose first answer comes earliest in sample order, so
// the label is deterministic. A sample that stated no answer gets 0 and
// counts in the ratio's denominator; a failed sample gets nil and does not.
type Consensus struct{ Grader Grader }

// Name implements Part.
func (Consensus) Name() string { return "consensus" }

// Score implements Part.
func (c Consensus) Score(_ context.Context, g *rollout.Group, scores []Score) error {
	type cluster struct {
		rep     string
		first   int
		members []int
	}
	var clusters []*cluster
	responded := 0
	for i, smp := range g.Samples {
		if smp.Err != "" {
			continue
		}
		responded++
		a := scores[i].Answer
		if a == "" {
			continue
		}
		joined := false
		for _, cl := range clusters {
			if a == cl.rep || c.Grader.Equivalent(a, cl.rep) {
				cl.members = append(cl.members, i)
				joined = true
				break
			}
		}
		if !joined {
			clusters = append(clusters, &cluster{rep: a, first: i, members: []int{i}})
		}
	}
	sort.SliceStable(clusters, func(a, b int) bool {
		if len(clusters[a].members) != len(clusters[b].members) {
			return len(clusters[a].members) > len(clusters[b].members)
		}
		return clusters[a].first < clusters[b].first
	})
	var detail *ConsensusDetail
	inMajority := map[int]bool{}
	if len(clusters) > 0 {
		top := clusters[0]
		detail = &ConsensusDetail{Label: top.rep, Ratio: float64(len(top.members)) / float64(responded)}
		// The label is right when the sample that first stated it was graded
		// correct: the grader already decided, against the reference.
		if v := scores[top.first].Verdict; v != nil {
			ok := v.Correct
			detail.LabelCorrect = &ok
		}
		for _, i := range top.members {
			inMajority[i] = true
		}
	}
	for i, smp := range g.Samples {
		scores[i].Consensus = detail
		switch {
		case smp.Err != "":
			appendComponent(&scores[i], "consensus", nil, noResponse(smp))
		case detail == nil:
			appendComponent(&scores[i], "consensus", nil, "no sample in the group stated an answer")
		case inMajority[i]:
			appendComponent(&scores[i], "consensus", f64(1), "")
		default:
			appendComponent(&scores[i], "consensus", f64(0), "")
		}
	}
	return nil
}
