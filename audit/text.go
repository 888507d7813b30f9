package audit

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// writeDetails prints the metric groups beyond today's summary: per turn,
// then every group of the all-rows slice that has data.
func (a *Report) writeDetails(w io.Writer) {
	if len(a.ByTurn) > 1 {
		fmt.Fprintf(w, "\n%-24s %8s %7s %11s %7s %9s\n", "by turn", "rows", "groups", "reward mean", "std", "accuracy")
		for _, s := range a.ByTurn {
			fmt.Fprintf(w, "%-24s %8d %7d %11s %7s %9s\n", s.Key, s.Rows, s.Groups, fmtF(s.RewardMean, "%.4f"), fmtF(s.RewardStd, "%.4f"), fmtPct(s.Accuracy))
		}
		for _, d := range a.TurnDeltas {
			fmt.Fprintf(w, "turn %s -> %s: accuracy %s, reward mean %s\n", d.From, d.To, fmtSigned(d.AccuracyDelta, true), fmtSigned(d.RewardMeanDelta, false))
		}
	}
	if len(a.Slices) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%-24s %7s %7s %7s %9s %9s %9s\n", "groups and length", "k", "pass@k", "maj@k", "zero-var", "len corr", "truncated")
	for _, s := range a.Slices {
		label := s.Key
		if s.Dimension != DimAll {
			label = s.Dimension + "=" + s.Key
		}
		k := "mixed"
		if s.PassMaj.K > 0 {
			k = fmt.Sprint(s.PassMaj.K)
		}
		fmt.Fprintf(w, "%-24s %7s %7s %7s %9s %9s %9s\n", trunc(label, 24), k, fmtPct(s.PassMaj.PassAtK), fmtPct(s.PassMaj.MajAtK),
			fmtPct(s.Advantage.FracZeroVariance), fmtF(s.Length.RewardCorrelation, "%+.3f"), fmtPct(s.Length.TruncationRate))
	}
	all := a.Slices[0]
	if all.PassMaj.MajTies > 0 || all.PassMaj.MajNoAnswer > 0 {
		fmt.Fprintf(w, "maj@k: %d tied groups (first stated answer wins), %d without an answer\n", all.PassMaj.MajTies, all.PassMaj.MajNoAnswer)
	}
	fmt.Fprintf(w, "\n%-24s %7s %9s %9s %9s %7s %8s\n", "explore / exploit", "groups", "corr resp", "corr ans", "answers", "auroc", "gap")
	for _, s := range a.Slices {
		label := s.Key
		if s.Dimension != DimAll {
			label = s.Dimension + "=" + s.Key
		}
		e := s.ExploreExploit
		fmt.Fprintf(w, "%-24s %7d %9s %9s %9s %7s %8s\n", trunc(label, 24), e.Groups, fmtF(e.DistinctCorrectResponses, "%.3f"), fmtF(e.DistinctCorrectAnswers, "%.3f"),
			fmtF(e.DistinctAnswers, "%.3f"), fmtF(e.RewardAUROC, "%.3f"), fmtF(e.RewardGap, "%+.3f"))
	}
	fmt.Fprintln(w, "(means per group: distinct correct responses, correct answers, answers; reward AUROC and gap, correct over incorrect)")
	fmt.Fprintf(w, "\nadvantage: mean %s std %s min %s max %s\n", fmtF(all.Advantage.Mean, "%.4f"), fmtF(all.Advantage.Std, "%.4f"), fmtF(all.Advantage.Min, "%.4f"), fmtF(all.Advantage.Max, "%.4f"))
	for _, c := range all.Components {
		fmt.Fprintf(w, "component %-14s weight %v  mean %s  null %d%s\n", c.Name, c.Weights, fmtF(c.Dist.Mean, "%.4f"), c.Null, reasons(c.NullReasons))
	}
	if t := all.Transitions; t.Revisions > 0 {
		fmt.Fprintf(w, "transitions (%d revisions): c->c %d, c->i %d, i->c %d, i->i %d; delta(t1,t2) %s, delta i->c %s, delta c->i %s\n",
			t.Revisions, t.Counts["c->c"], t.Counts["c->i"], t.Counts["i->c"], t.Counts["i->i"], fmtSigned(t.DeltaT1T2, true), fmtPct(t.DeltaIC), fmtPct(t.DeltaCI))
	}
	if c := all.AnswerChange; c.Revisions > 0 {
		fmt.Fprintf(w, "answer changed after reflection: %d of %d (%s)\n", c.Changed, c.Revisions, fmtPct(c.Rate))
	}
	if c := all.Consensus; c.Groups > 0 || c.MajorityRatioMean != nil {
		fmt.Fprintf(w, "consensus: label accuracy %s over %d groups, mean majority ratio %s\n", fmtPct(c.LabelAccuracy), c.Groups, fmtF(c.MajorityRatioMean, "%.3f"))
	}
	if j := all.JudgeAgreement; j.Rows > 0 {
		fmt.Fprintf(w, "judge vs verifier (%d rows): agreement %s; judge pass & correct %d, pass & wrong %d, fail & correct %d, fail & wrong %d\n",
			j.Rows, fmtPct(j.Agreement), j.PassCorrect, j.PassIncorrect, j.FailCorrect, j.FailIncorrect)
	}
	if f := all.JudgeFlagged; f.Known > 0 {
		fmt.Fprintf(w, "flagged for addressing the judge: %d of %d (%s)\n", f.Flagged, f.Known, fmtPct(f.Rate))
	}
	if e := all.Entropy; e.Rows > 0 {
		fmt.Fprintf(w, "entropy (mean -logprob per token): %s over %d rows, %d tokens\n", fmtF(e.Dist.Mean, "%.4f"), e.Rows, e.Tokens)
	}
	fmt.Fprintf(w, "length (%s): mean %s, reward correlation %s\n", all.Length.Unit, fmtF(all.Length.Mean, "%.1f"), fmtF(all.Length.RewardCorrelation, "%+.3f"))
}

func reasons(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func fmtSigned(v *float64, pct bool) string {
	if v == nil {
		return "-"
	}
	if pct {
		return fmt.Sprintf("%+.1f pp", 100**v)
	}
	return fmt.Sprintf("%+.4f", *v)
}
