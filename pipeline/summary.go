package pipeline

import (
	"math"

	"github.com/redraft/redraft/export"
)

// summary accumulates the reward summary of written rows (Welford's method,
// so it is exact enough for millions of rows in one pass).
type summary struct {
	s        export.RewardSummary
	n        int64
	mean, m2 float64
	correct  int64
	zeroStd  int64
}

// SummaryState is a summary accumulator's state, saved in checkpoints so
// that a resumed run's summary covers the whole run.
type SummaryState struct {
	Summary export.RewardSummary `json:"summary"`
	N       int64                `json:"n"`
	Mean    float64              `json:"mean"`
	M2      float64              `json:"m2"`
	Correct int64                `json:"correct"`
	ZeroStd int64                `json:"zero_std"`
}

func (a *summary) state() SummaryState {
	st := SummaryState{Summary: a.s, N: a.n, Mean: a.mean, M2: a.m2, Correct: a.correct, ZeroStd: a.zeroStd}
	st.Summary.FinishReason = make(map[string]int64, len(a.s.FinishReason))
	for k, v := range a.s.FinishReason {
		st.Summary.FinishReason[k] = v
	}
	return st
}

func (a *summary) restore(st SummaryState) {
	a.s, a.n, a.mean, a.m2, a.correct, a.zeroStd = st.Summary, st.N, st.Mean, st.M2, st.Correct, st.ZeroStd
	if a.s.FinishReason == nil {
		a.s.FinishReason = map[string]int64{}
	}
}

func newSummary() *summary {
	return &summary{s: export.RewardSummary{FinishReason: map[string]int64{}}}
}

// add counts a written group, or a dropped one (rows is then empty).
func (a *summary) add(s *Scored, rows []export.RLRow, dropped bool) {
	a.s.Groups++
	if s.Stats.ZeroVariance {
		a.zeroStd++
	}
	if dropped {
		a.s.DroppedZeroStd++
	}
	for _, r := range rows {
		a.s.Rows++
		if r.Error != nil {
			a.s.Failed++
		}
		if r.FinishReason != nil {
			a.s.FinishReason[*r.FinishReason]++
		}
		if r.Correct != nil {
			a.s.Graded++
			if *r.Correct {
				a.correct++
			}
		}
		if r.Reward == nil {
			a.s.NullRewards++
			continue
		}
		a.n++
		d := *r.Reward - a.mean
		a.mean += d / float64(a.n)
		a.m2 += d * (*r.Reward - a.mean)
	}
}

func (a *summary) summary() export.RewardSummary {
	s := a.s
	if a.n > 0 {
		m := a.mean
		s.Mean = &m
	}
	if a.n > 1 {
		sd := math.Sqrt(a.m2 / float64(a.n-1))
		s.Std = &sd
	}
	if s.Graded > 0 {
		acc := float64(a.correct) / float64(s.Graded)
		s.Accuracy = &acc
	}
	if s.Groups > 0 {
		f := float64(a.zeroStd) / float64(s.Groups)
		s.FracZeroStd = &f
	}
	return s
}
