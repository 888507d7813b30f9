package audit

import (
	"fmt"
	"io"
	"math"
)

// Comparison says what moved between two audited runs, per slice.
type Comparison struct {
	A      RunRef       `json:"a"`
	B      RunRef       `json:"b"`
	Slices []SliceDelta `json:"slices"`
}

// RunRef names one side of a comparison.
type RunRef struct {
	Dir    string `json:"dir"`
	Recipe string `json:"recipe"`
	Rows   int64  `json:"rows"`
}

// SliceDelta holds the headline metrics of one slice in both runs.
type SliceDelta struct {
	Dimension string        `json:"dimension"`
	Key       string        `json:"key"`
	Metrics   []MetricDelta `json:"metrics"`
}

// MetricDelta is one headline metric in A and B and B - A; a side is null
// where the run lacks the slice or the metric.
type MetricDelta struct {
	Name  string   `json:"name"`
	A     *float64 `json:"a"`
	B     *float64 `json:"b"`
	Delta *float64 `json:"delta"`
}

// HeadlineMetrics names the metrics a comparison shows, in order. The mean
// length is two metrics, one per unit (completion tokens, or response
// characters for rows without a token count), so that a run measured in
// tokens is never subtracted from one measured in characters: a slice has
// the one of its unit, neither when its rows mix the two.
var HeadlineMetrics = []string{"rows", "reward_mean", "accuracy", "pass_at_k", "maj_at_k", "frac_zero_variance", "advantage_std",
	"delta_t1_t2", "answer_change_rate", "consensus_label_accuracy", "judge_agreement", "judge_flagged_rate",
	"length_mean_tokens", "length_mean_chars", "reward_length_correlation", "truncation_rate", "entropy_mean",
	"null_rate", "failed_rate", "distinct_correct_responses", "distinct_correct_answers", "reward_auroc", "reward_gap"}

// lengthMetric maps LengthReport.Unit to its headline metric.
var lengthMetric = map[string]string{"completion_tokens": "length_mean_tokens", "response_chars": "length_mean_chars"}

func headline(s *SliceReport) map[string]*float64 {
	m := map[string]*float64{
		"rows": fp(float64(s.Rows)), "reward_mean": s.Reward.Mean, "accuracy": s.Reward.Accuracy,
		"pass_at_k": s.PassMaj.PassAtK, "maj_at_k": s.PassMaj.MajAtK, "frac_zero_variance": s.Advantage.FracZeroVariance,
		"advantage_std": s.Advantage.Std, "delta_t1_t2": s.Transitions.DeltaT1T2, "answer_change_rate": s.AnswerChange.Rate,
		"consensus_label_accuracy": s.Consensus.LabelAccuracy, "judge_agreement": s.JudgeAgreement.Agreement,
		"judge_flagged_rate": s.JudgeFlagged.Rate, "reward_length_correlation": s.Length.RewardCorrelation,
		"truncation_rate": s.Length.TruncationRate, "entropy_mean": s.Entropy.Dist.Mean,
		"null_rate": s.Reward.NullRate, "failed_rate": s.Reward.FailedRate,
		"distinct_correct_responses": s.ExploreExploit.DistinctCorrectResponses, "distinct_correct_answers": s.ExploreExploit.DistinctCorrectAnswers,
		"reward_auroc": s.ExploreExploit.RewardAUROC, "reward_gap": s.ExploreExploit.RewardGap,
	}
	if name, ok := lengthMetric[s.Length.Unit]; ok {
		m[name] = s.Length.Mean
	}
	return m
}

// Compare lines up the slices of two audits (A's order, then slices only B
// has) and their headline metrics.
func Compare(a, b *Report) *Comparison {
	c := &Comparison{A: RunRef{a.Dir, a.Recipe, a.Overall.Rows}, B: RunRef{b.Dir, b.Recipe, b.Overall.Rows}}
	find := func(x *Report, dim, key string) *SliceReport {
		for i := range x.Slices {
			if x.Slices[i].Dimension == dim && x.Slices[i].Key == key {
				return &x.Slices[i]
			}
		}
		return nil
	}
	seen := map[sliceKey]bool{}
	var keys []sliceKey
	for _, x := range []*Report{a, b} {
		for _, s := range x.Slices {
			k := sliceKey{s.Dimension, s.Key}
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	for _, k := range keys {
		sa, sb := find(a, k.dim, k.key), find(b, k.dim, k.key)
		var ha, hb map[string]*float64
		if sa != nil {
			ha = headline(sa)
		}
		if sb != nil {
			hb = headline(sb)
		}
		d := SliceDelta{Dimension: k.dim, Key: k.key}
		for _, m := range HeadlineMetrics {
			md := MetricDelta{Name: m, A: ha[m], B: hb[m]}
			if md.A != nil && md.B != nil {
				md.Delta = fp(*md.B - *md.A)
			}
			d.Metrics = append(d.Metrics, md)
		}
		c.Slices = append(c.Slices, d)
	}
	return c
}

// WriteText prints, per slice, the headline metrics present in either run.
func (c *Comparison) WriteText(w io.Writer) {
	fmt.Fprintf(w, "compare A %s (%s, %d rows) with B %s (%s, %d rows)\n", c.A.Dir, c.A.Recipe, c.A.Rows, c.B.Dir, c.B.Recipe, c.B.Rows)
	for _, s := range c.Slices {
		label := s.Key
		if s.Dimension != DimAll {
			label = s.Dimension + "=" + s.Key
		}
		fmt.Fprintf(w, "\n%-28s %12s %12s %12s\n", label, "A", "B", "B - A")
		for _, m := range s.Metrics {
			if m.A == nil && m.B == nil {
				continue
			}
			fmt.Fprintf(w, "  %-26s %12s %12s %12s\n", m.Name, fmtMetric(m.Name, m.A), fmtMetric(m.Name, m.B), fmtDelta(m.Name, m.Delta))
		}
	}
}

// isRate says whether a metric is a fraction shown as a percentage.
func isRate(name string) bool {
	switch name {
	case "accuracy", "pass_at_k", "maj_at_k", "frac_zero_variance", "delta_t1_t2", "answer_change_rate",
		"consensus_label_accuracy", "judge_agreement", "judge_flagged_rate", "truncation_rate", "null_rate", "failed_rate":
		return true
	}
	return false
}

func isLength(name string) bool { return name == "length_mean_tokens" || name == "length_mean_chars" }

func fmtMetric(name string, v *float64) string {
	switch {
	case v == nil:
		return "-"
	case name == "rows":
		return fmt.Sprintf("%.0f", *v)
	case isRate(name):
		return fmt.Sprintf("%.1f%%", 100**v)
	case isLength(name):
		return fmt.Sprintf("%.1f", *v)
	}
	return fmt.Sprintf("%.4f", *v)
}

func fmtDelta(name string, v *float64) string {
	switch {
	case v == nil:
		return "-"
	case *v == 0 || math.Abs(*v) < 1e-12:
		return "0"
	case name == "rows":
		return fmt.Sprintf("%+.0f", *v)
	case isRate(name):
		return fmt.Sprintf("%+.1f pp", 100**v)
	case isLength(name):
		return fmt.Sprintf("%+.1f", *v)
	}
	return fmt.Sprintf("%+.4f", *v)
}
