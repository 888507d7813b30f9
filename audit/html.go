package audit

import (
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
)

// The HTML report is one self-contained file: inline CSS, inline SVG plots,
// no external resource. Its one tiny script only records page errors into
// #page-errors, for the browser test. Key numbers carry
// data-metric="<JSON pointer into the --json output>" and data-value (the
// exact number), and data-format says how the text shows it.

const reportCSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:0;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:18px 32px}header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#c7cedb}
nav{padding:8px 32px;background:#e9ecf2;font-size:13px}nav a{margin-right:14px;color:#2a4d8f;text-decoration:none}
main{padding:8px 32px 40px;max-width:1220px}
section{background:#fff;border:1px solid #dde2ea;border-radius:6px;margin:18px 0;padding:12px 18px}
h2{font-size:17px;margin:4px 0 10px}h3{font-size:14px;margin:10px 0 4px;color:#3b4456}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:6px 0}
th,td{padding:3px 10px;border-bottom:1px solid #eceff4;text-align:right}th:first-child,td:first-child{text-align:left}
th{font-weight:600;color:#4a5468;background:#f3f5f8}
.grid{display:flex;flex-wrap:wrap;gap:14px}.card{border:1px solid #eceff4;border-radius:4px;padding:6px 8px}
.card h3{margin:0 0 2px}.note{color:#5d6779;font-size:12.5px}.empty{color:#8a93a5;font-style:italic}
.kpis{display:flex;flex-wrap:wrap;gap:12px;margin:6px 0}.kpi{background:#f3f5f8;border-radius:6px;padding:8px 14px;min-width:120px}
.kpi b{display:block;font-size:20px}.kpi span.l{font-size:12px;color:#5d6779}
td.m0{background:#fbe3e3}td.m1{background:#e2f3e6}
svg text{font:11px system-ui,sans-serif;fill:#4a5468}
`

const errorScript = `<script>(function(){function rec(m){var b=document.getElementById("page-errors")||document.documentElement;var d=document.createElement("div");d.className="page-error";d.textContent=String(m);b.appendChild(d)}window.onerror=function(m,s,l){rec(m+" at "+s+":"+l)};var ce=console.error;console.error=function(){rec(Array.prototype.join.call(arguments," "));ce.apply(console,arguments)}})();</script>`

type htmlw struct {
	w   io.Writer
	err error
}

func (h *htmlw) p(format string, args ...any) {
	if h.err == nil {
		_, h.err = fmt.Fprintf(h.w, format, args...)
	}
}

var esc = html.EscapeString

// metric renders a number tied to the JSON: ptr is its JSON pointer.
func metric(ptr string, v *float64, format string) string {
	if v == nil {
		return fmt.Sprintf(`<span data-metric="%s" data-value="null">-</span>`, esc(ptr))
	}
	return fmt.Sprintf(`<span data-metric="%s" data-value="%s" data-format="%s">%s</span>`, esc(ptr),
		strconv.FormatFloat(*v, 'g', -1, 64), format, esc(FormatMetric(*v, format)))
}

func metricInt(ptr string, v int64) string {
	f := float64(v)
	return metric(ptr, &f, "int")
}

// FormatMetric shows a number as the report does: "pct" one decimal percent,
// "f4" four decimals, "int" an integer.
func FormatMetric(v float64, format string) string {
	switch format {
	case "pct":
		return fmt.Sprintf("%.1f%%", 100*v)
	case "int":
		return fmt.Sprintf("%.0f", v)
	case "pp":
		return fmt.Sprintf("%+.1f pp", 100*v)
	}
	return fmt.Sprintf("%.4f", v)
}

func sliceLabel(s *SliceReport) string {
	if s.Dimension == DimAll {
		return "all rows"
	}
	return s.Dimension + " = " + s.Key
}

// WriteHTML writes the audit as a self-contained HTML page.
func (a *Report) WriteHTML(w io.Writer) error {
	h := &htmlw{w: w}
	title := "redraft audit: " + a.Recipe
	h.p("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title><style>%s</style>%s</head><body>\n", esc(title), reportCSS, errorScript)
	h.p(`<div id="page-errors" hidden></div>`)
	h.p("<header><h1>%s</h1><p>%s &middot; %d shard(s) &middot; schema %s &middot; %s rows &middot; %s groups</p></header>\n",
		esc(title), esc(a.Dir), a.Shards, esc(a.Schema), metricInt("/overall/rows", a.Overall.Rows), metricInt("/overall/groups", a.Overall.Groups))
	sections := [][2]string{{"overview", "Overview"}, {"rewards", "Rewards"}, {"components", "Reward components"}, {"advantages", "Advantages"},
		{"passk", "pass@k and maj@k"}, {"explore", "Exploration and exploitation"}, {"corrections", "Corrections"}, {"consensus", "Consensus"}, {"judge", "Judge"},
		{"length", "Length and truncation"}, {"entropy", "Entropy"}}
	h.p("<nav>")
	for _, s := range sections {
		h.p(`<a href="#%s">%s</a>`, s[0], s[1])
	}
	h.p("</nav>\n<main>\n")
	if len(a.Slices) == 0 {
		h.p("<p class=empty>no rows</p></main></body></html>\n")
		return h.err
	}
	all := &a.Slices[0]
	ptr := func(i int, rest string) string { return fmt.Sprintf("/slices/%d/%s", i, rest) }

	// Overview.
	h.p(`<section id="overview"><h2>Overview</h2><div class="kpis">`)
	kpi := func(label, val string) {
		h.p(`<div class="kpi"><b>%s</b><span class="l">%s</span></div>`, val, esc(label))
	}
	kpi("accuracy", metric(ptr(0, "reward/accuracy"), all.Reward.Accuracy, "pct"))
	kpi("reward mean", metric(ptr(0, "reward/mean"), all.Reward.Mean, "f4"))
	kpi(fmt.Sprintf("pass@%s", kLabel(all.PassMaj.K)), metric(ptr(0, "pass_maj/pass_at_k"), all.PassMaj.PassAtK, "pct"))
	kpi(fmt.Sprintf("maj@%s", kLabel(all.PassMaj.K)), metric(ptr(0, "pass_maj/maj_at_k"), all.PassMaj.MajAtK, "pct"))
	kpi("zero-variance groups", metric("/frac_reward_zero_std", a.FracZeroStd, "pct"))
	kpi("null rewards", metricInt("/overall/null_rewards", a.Overall.NullRewards))
	h.p("</div>")
	h.p("<table><tr><th>slice</th><th>rows</th><th>groups</th><th>reward mean</th><th>std</th><th>accuracy</th><th>pass@k</th><th>maj@k</th><th>zero-var groups</th><th>truncated</th></tr>\n")
	for i := range a.Slices {
		s := &a.Slices[i]
		h.p("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", esc(sliceLabel(s)),
			metricInt(ptr(i, "rows"), s.Rows), metricInt(ptr(i, "groups"), s.Groups), metric(ptr(i, "reward/mean"), s.Reward.Mean, "f4"),
			metric(ptr(i, "reward/std"), s.Reward.Std, "f4"), metric(ptr(i, "reward/accuracy"), s.Reward.Accuracy, "pct"),
			metric(ptr(i, "pass_maj/pass_at_k"), s.PassMaj.PassAtK, "pct"), metric(ptr(i, "pass_maj/maj_at_k"), s.PassMaj.MajAtK, "pct"),
			metric(ptr(i, "advantage/frac_zero_variance"), s.Advantage.FracZeroVariance, "pct"), metric(ptr(i, "length/truncation_rate"), s.Length.TruncationRate, "pct"))
	}
	h.p("</table><p class=note>Slices: all rows, then per data_source, turn and model. A model slice's groups are its rows of each (task, turn) group.</p></section>\n")

	// Rewards.
	h.p(`<section id="rewards"><h2>Rewards</h2><div class="grid">`)
	for i := range a.Slices {
		s := &a.Slices[i]
		h.p(`<div class="card"><h3>%s</h3>%s<div class=note>n %s, mean %s, null %s%s</div></div>`, esc(sliceLabel(s)), svgHist(s.Reward.Histogram, "#3e6fc9"),
			metricInt(ptr(i, "reward/n"), s.Reward.N), metric(ptr(i, "reward/mean"), s.Reward.Mean, "f4"), metricInt(ptr(i, "reward/null"), s.Reward.Null), esc(reasons(s.Reward.NullReasons)))
	}
	h.p("</div></section>\n")

	// Components.
	h.p(`<section id="components"><h2>Reward components</h2>`)
	if len(all.Components) == 0 {
		h.p("<p class=empty>no reward components</p>")
	}
	h.p(`<div class="grid">`)
	for j, c := range all.Components {
		h.p(`<div class="card"><h3>%s (weight %s)</h3>%s<div class=note>mean %s, null %s%s</div></div>`, esc(c.Name), esc(fmt.Sprint(c.Weights)), svgHist(c.Dist.Histogram, "#7a55c2"),
			metric(ptr(0, fmt.Sprintf("reward_components/%d/dist/mean", j)), c.Dist.Mean, "f4"), metricInt(ptr(0, fmt.Sprintf("reward_components/%d/null", j)), c.Null), esc(reasons(c.NullReasons)))
	}
	h.p("</div><table><tr><th>slice</th><th>component</th><th>n</th><th>mean</th><th>std</th><th>null</th><th>null reasons</th></tr>")
	for i := range a.Slices {
		for j, c := range a.Slices[i].Components {
			h.p("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>", esc(sliceLabel(&a.Slices[i])), esc(c.Name),
				metricInt(ptr(i, fmt.Sprintf("reward_components/%d/dist/n", j)), c.Dist.N), metric(ptr(i, fmt.Sprintf("reward_components/%d/dist/mean", j)), c.Dist.Mean, "f4"),
				metric(ptr(i, fmt.Sprintf("reward_components/%d/dist/std", j)), c.Dist.Std, "f4"), metricInt(ptr(i, fmt.Sprintf("reward_components/%d/null", j)), c.Null), esc(strings.Trim(reasons(c.NullReasons), " ()")))
		}
	}
	h.p("</table></section>\n")

	// Advantages.
	h.p(`<section id="advantages"><h2>Advantages</h2><div class="grid">`)
	for i := range a.Slices {
		s := &a.Slices[i]
		h.p(`<div class="card"><h3>%s</h3>%s<div class=note>std %s, zero-variance groups %s of %s (%s)</div></div>`, esc(sliceLabel(s)), svgHist(s.Advantage.Histogram, "#2f9c6a"),
			metric(ptr(i, "advantage/std"), s.Advantage.Std, "f4"), metricInt(ptr(i, "advantage/zero_variance_groups"), s.Advantage.ZeroVarianceGroups),
			metricInt(ptr(i, "groups"), s.Groups), metric(ptr(i, "advantage/frac_zero_variance"), s.Advantage.FracZeroVariance, "pct"))
	}
	h.p("</div><p class=note>A zero-variance group (all present rewards equal, or fewer than two) gives every sample advantage 0: no learning signal.</p></section>\n")

	// pass@k / maj@k.
	h.p(`<section id="passk"><h2>pass@k and maj@k</h2>`)
	var bars []barRow
	for i := range a.Slices {
		s := &a.Slices[i]
		bars = append(bars, barRow{sliceLabel(s), []*float64{s.Reward.Accuracy, s.PassMaj.PassAtK, s.PassMaj.MajAtK}})
	}
	h.p("%s", svgGroupedBars(bars, []string{"accuracy", "pass@k", "maj@k"}, []string{"#9aa7bd", "#3e6fc9", "#e08a2c"}))
	h.p("<table><tr><th>slice</th><th>groups</th><th>k</th><th>pass@k</th><th>maj@k</th><th>from consensus label</th><th>ties</th><th>no answer</th></tr>")
	for i := range a.Slices {
		s := &a.Slices[i]
		h.p("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%d</td><td>%d</td><td>%d</td></tr>", esc(sliceLabel(s)), metricInt(ptr(i, "pass_maj/groups"), s.PassMaj.Groups),
			kLabel(s.PassMaj.K), metric(ptr(i, "pass_maj/pass_at_k"), s.PassMaj.PassAtK, "pct"), metric(ptr(i, "pass_maj/maj_at_k"), s.PassMaj.MajAtK, "pct"),
			s.PassMaj.MajFromConsensus, s.PassMaj.MajTies, s.PassMaj.MajNoAnswer)
	}
	h.p("</table><p class=note>k is the group size. pass@k: any sample correct. maj@k: the group's consensus_label_correct when consensus ran (whole groups), else the most frequent extracted answer is correct; a tie goes to the answer stated first, a group without any answer counts as wrong.</p></section>\n")

	// Exploration and exploitation (B-STaR).
	h.p(`<section id="explore"><h2>Exploration and exploitation</h2>`)
	h.p("<table><tr><th>slice</th><th>groups</th><th>distinct correct responses</th><th>distinct correct answers</th><th>distinct answers</th><th>mixed groups</th><th>reward AUROC</th><th>reward gap</th></tr>")
	for i := range a.Slices {
		s := &a.Slices[i]
		e := &s.ExploreExploit
		h.p("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>", esc(sliceLabel(s)), metricInt(ptr(i, "explore_exploit/groups"), e.Groups),
			metric(ptr(i, "explore_exploit/distinct_correct_responses_mean"), e.DistinctCorrectResponses, "f4"), metric(ptr(i, "explore_exploit/distinct_correct_answers_mean"), e.DistinctCorrectAnswers, "f4"),
			metric(ptr(i, "explore_exploit/distinct_answers_mean"), e.DistinctAnswers, "f4"), metricInt(ptr(i, "explore_exploit/mixed_groups"), e.MixedGroups),
			metric(ptr(i, "explore_exploit/reward_auroc"), e.RewardAUROC, "f4"), metric(ptr(i, "explore_exploit/reward_gap"), e.RewardGap, "f4"))
	}
	h.p("</table><p class=note>B-STaR's balance. Exploration: per group with a graded sample, the number of distinct correct responses (texts) among its k samples, of distinct correct extracted answers and of distinct answers, averaged over groups. Exploitation: over the groups with correct and incorrect samples that have a reward, the reward AUROC (the fraction of (correct, incorrect) pairs of a group where the correct one has the higher reward, a tie counting half) and the mean within-group gap mean reward(correct) − mean reward(incorrect). A verifiable-only reward separates perfectly (AUROC 1); judges, format and shaping terms show here how much they blur it.</p></section>\n")

	// Corrections.
	h.p(`<section id="corrections"><h2>Corrections</h2>`)
	if len(a.ByTurn) > 1 {
		h.p("<table><tr><th>turn</th><th>rows</th><th>accuracy</th><th>reward mean</th></tr>")
		for _, t := range a.ByTurn {
			h.p("<tr><td>%s</td><td>%d</td><td>%s</td><td>%s</td></tr>", esc(t.Key), t.Rows, esc(fmtPct(t.Accuracy)), esc(fmtF(t.RewardMean, "%.4f")))
		}
		h.p("</table>")
		for j, d := range a.TurnDeltas {
			h.p("<p>acc(turn %s) &minus; acc(turn %s): %s</p>", esc(d.To), esc(d.From), metric(fmt.Sprintf("/turn_deltas/%d/accuracy_delta", j), d.AccuracyDelta, "pp"))
		}
	}
	if all.Transitions.Revisions == 0 {
		h.p("<p class=empty>no revisions: a single-turn run (the transition column is null everywhere)</p>")
	} else {
		t := all.Transitions
		cell := func(name string, good bool) string {
			return fmt.Sprintf(`<td class="m%d">%s</td>`, b2i(good), metricInt(ptr(0, "transitions/counts/"+name), t.Counts[name]))
		}
		h.p("<h3>transition matrix (all revisions: %s)</h3>", metricInt(ptr(0, "transitions/revisions"), t.Revisions))
		h.p("<table><tr><th>previous \\ revised</th><th>correct</th><th>incorrect</th></tr><tr><td>correct</td>%s%s</tr><tr><td>incorrect</td>%s%s</tr></table>",
			cell("c->c", true), cell("c->i", false), cell("i->c", true), cell("i->i", false))
		h.p("<div class=kpis>")
		kpi("Δ(t1,t2) = acc(t2) − acc(t1)", metric(ptr(0, "transitions/delta_t1_t2"), t.DeltaT1T2, "pp"))
		kpi("Δ i→c", metric(ptr(0, "transitions/delta_i_to_c"), t.DeltaIC, "pct"))
		kpi("Δ c→i", metric(ptr(0, "transitions/delta_c_to_i"), t.DeltaCI, "pct"))
		kpi("answer changed after reflection", metric(ptr(0, "answer_change/rate"), all.AnswerChange.Rate, "pct"))
		h.p("</div>")
	}
	h.p("<table><tr><th>slice</th><th>revisions</th><th>c→c</th><th>c→i</th><th>i→c</th><th>i→i</th><th>Δ(t1,t2)</th><th>answer changed</th></tr>")
	for i := range a.Slices {
		s := &a.Slices[i]
		if s.Transitions.Revisions == 0 && s.AnswerChange.Revisions == 0 {
			continue
		}
		c := s.Transitions.Counts
		h.p("<tr><td>%s</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%s</td><td>%s</td></tr>", esc(sliceLabel(s)), s.Transitions.Revisions,
			c["c->c"], c["c->i"], c["i->c"], c["i->i"], metric(ptr(i, "transitions/delta_t1_t2"), s.Transitions.DeltaT1T2, "pp"), metric(ptr(i, "answer_change/rate"), s.AnswerChange.Rate, "pct"))
	}
	h.p("</table><p class=note>Δ i→c and Δ c→i are fractions of all revisions (SCoRe). The answer-change rate compares a turn ≥ 1 row's extracted answer with the same sample's answer at the previous turn.</p></section>\n")

	// Consensus.
	h.p(`<section id="consensus"><h2>Consensus</h2>`)
	if all.Consensus.Groups == 0 && all.Consensus.MajorityRatioMean == nil {
		h.p("<p class=empty>consensus was not on in this run</p>")
	} else {
		h.p("<table><tr><th>slice</th><th>groups</th><th>label accuracy</th><th>mean majority ratio</th></tr>")
		for i := range a.Slices {
			s := &a.Slices[i]
			h.p("<tr><td>%s</td><td>%d</td><td>%s</td><td>%s</td></tr>", esc(sliceLabel(s)), s.Consensus.Groups, metric(ptr(i, "consensus/label_accuracy"), s.Consensus.LabelAccuracy, "pct"),
				metric(ptr(i, "consensus/majority_ratio_mean"), s.Consensus.MajorityRatioMean, "f4"))
		}
		h.p("</table>")
	}
	h.p("</section>\n")

	// Judge.
	h.p(`<section id="judge"><h2>Judge</h2>`)
	if j := all.JudgeAgreement; j.Rows == 0 {
		h.p("<p class=empty>no judge scores in this run</p>")
	} else {
		h.p("<h3>judge score ≥ 0.5 against the verifier (%s rows)</h3>", metricInt(ptr(0, "judge_agreement/rows"), j.Rows))
		h.p("<table><tr><th>judge \\ verifier</th><th>correct</th><th>incorrect</th></tr><tr><td>pass</td><td class=m1>%s</td><td class=m0>%s</td></tr><tr><td>fail</td><td class=m0>%s</td><td class=m1>%s</td></tr></table>",
			metricInt(ptr(0, "judge_agreement/judge_pass_correct"), j.PassCorrect), metricInt(ptr(0, "judge_agreement/judge_pass_incorrect"), j.PassIncorrect),
			metricInt(ptr(0, "judge_agreement/judge_fail_correct"), j.FailCorrect), metricInt(ptr(0, "judge_agreement/judge_fail_incorrect"), j.FailIncorrect))
		h.p("<p>agreement %s</p>", metric(ptr(0, "judge_agreement/agreement"), j.Agreement, "pct"))
	}
	if f := all.JudgeFlagged; f.Known > 0 {
		h.p("<p>flagged for addressing the judge: %s of %s rows (%s)</p>", metricInt(ptr(0, "judge_flagged/flagged"), f.Flagged), metricInt(ptr(0, "judge_flagged/known"), f.Known), metric(ptr(0, "judge_flagged/rate"), f.Rate, "pct"))
	} else {
		h.p("<p class=empty>judge_flagged is null everywhere (no judge ran)</p>")
	}
	h.p("</section>\n")

	// Length.
	h.p(`<section id="length"><h2>Length and truncation</h2>`)
	h.p("<p>length = %s; mean %s; reward correlation %s; truncated (finish_reason = length) %s of %d rows with a finish_reason</p>", esc(all.Length.Unit),
		metric(ptr(0, "length/mean"), all.Length.Mean, "f4"), metric(ptr(0, "length/reward_correlation"), all.Length.RewardCorrelation, "f4"),
		metricInt(ptr(0, "length/truncated"), all.Length.Truncated), all.Length.FinishKnown)
	h.p(`<div class="grid">`)
	for i := range a.Slices {
		s := &a.Slices[i]
		h.p(`<div class="card"><h3>%s</h3>%s<div class=note>mean reward per length bin; r = %s</div></div>`, esc(sliceLabel(s)), svgLength(s.Length.Bins),
			metric(ptr(i, "length/reward_correlation"), s.Length.RewardCorrelation, "f4"))
	}
	h.p("</div></section>\n")

	// Entropy.
	h.p(`<section id="entropy"><h2>Entropy</h2>`)
	if all.Entropy.Rows == 0 {
		h.p("<p class=empty>no logprobs in this run (sampling.logprobs was off or the rollouts were recorded)</p>")
	} else {
		h.p(`<div class="grid">`)
		for i := range a.Slices {
			s := &a.Slices[i]
			h.p(`<div class="card"><h3>%s</h3>%s<div class=note>mean %s over %d rows</div></div>`, esc(sliceLabel(s)), svgHist(s.Entropy.Dist.Histogram, "#c0506a"),
				metric(ptr(i, "entropy/dist/mean"), s.Entropy.Dist.Mean, "f4"), s.Entropy.Rows)
		}
		h.p("</div><p class=note>Per row: the mean negative log-probability per token.</p>")
	}
	h.p("</section>\n</main></body></html>\n")
	return h.err
}

func kLabel(k int) string {
	if k == 0 {
		return "k"
	}
	return strconv.Itoa(k)
}

func numLabel(v float64) string {
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// svgHist draws a histogram as inline SVG.
func svgHist(bins []Bin, color string) string {
	const W, H, left, bottom, top = 340.0, 150.0, 40.0, 22.0, 8.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%g" height="%g" viewBox="0 0 %g %g" role="img">`, W, H, W, H)
	if len(bins) == 0 {
		fmt.Fprintf(&b, `<text x="%g" y="%g">no values</text></svg>`, left, H/2)
		return b.String()
	}
	var maxC int64
	var total int64
	for _, bn := range bins {
		maxC = max(maxC, bn.Count)
		total += bn.Count
	}
	plotW, plotH := W-left-6, H-bottom-top
	bw := plotW / float64(len(bins))
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#b5bdcc"/>`, left, top+plotH, left+plotW, top+plotH)
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="end">%d</text><text x="%g" y="%g" text-anchor="end">0</text>`, left-4, top+9, maxC, left-4, top+plotH)
	for i, bn := range bins {
		hgt := 0.0
		if maxC > 0 {
			hgt = plotH * float64(bn.Count) / float64(maxC)
		}
		x := left + float64(i)*bw
		label := numLabel(bn.Lo)
		if bn.Lo != bn.Hi {
			label = "[" + numLabel(bn.Lo) + ", " + numLabel(bn.Hi) + ")"
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %d (%.1f%%)</title></rect>`,
			x+1, top+plotH-hgt, math.Max(bw-2, 1), hgt, color, esc(label), bn.Count, 100*float64(bn.Count)/float64(max(total, 1)))
		if bn.Lo == bn.Hi && len(bins) <= maxDistinct {
			fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`, x+bw/2, H-8, esc(label))
		}
	}
	if bins[0].Lo != bins[0].Hi {
		fmt.Fprintf(&b, `<text x="%g" y="%g">%s</text><text x="%g" y="%g" text-anchor="end">%s</text>`, left, H-8, numLabel(bins[0].Lo), left+plotW, H-8, numLabel(bins[len(bins)-1].Hi))
	}
	b.WriteString("</svg>")
	return b.String()
}

type barRow struct {
	label  string
	values []*float64
}

// svgGroupedBars draws horizontal grouped bars of fractions in [0, 1].
func svgGroupedBars(rows []barRow, series, colors []string) string {
	const labelW, plotW, barH, gap = 230.0, 520.0, 9.0, 10.0
	rowH := barH*float64(len(series)) + gap
	H := rowH*float64(len(rows)) + 30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%g" height="%g" viewBox="0 0 %g %g" role="img">`, labelW+plotW+60, H, labelW+plotW+60, H)
	for j, s := range series {
		fmt.Fprintf(&b, `<rect x="%g" y="4" width="10" height="10" fill="%s"/><text x="%g" y="13">%s</text>`, labelW+float64(j)*110, colors[j], labelW+float64(j)*110+14, esc(s))
	}
	for i, r := range rows {
		y0 := 24 + float64(i)*rowH
		fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="end">%s</text>`, labelW-8, y0+rowH/2, esc(trunc(r.label, 36)))
		for j, v := range r.values {
			if v == nil {
				continue
			}
			y := y0 + float64(j)*barH
			fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%.1f" height="%g" fill="%s"><title>%s %s: %.1f%%</title></rect><text x="%.1f" y="%g">%.1f%%</text>`,
				labelW, y, plotW**v, barH-1, colors[j], esc(r.label), esc(series[j]), 100**v, labelW+plotW**v+4, y+barH-1, 100**v)
		}
	}
	b.WriteString("</svg>")
	return b.String()
}

// svgLength draws the mean reward per length bin.
func svgLength(bins []LengthBin) string {
	const W, H, left, bottom, top = 340.0, 150.0, 40.0, 22.0, 8.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%g" height="%g" viewBox="0 0 %g %g" role="img">`, W, H, W, H)
	if len(bins) == 0 {
		fmt.Fprintf(&b, `<text x="%g" y="%g">no rows</text></svg>`, left, H/2)
		return b.String()
	}
	lo, hi := 0.0, 0.0
	for _, bn := range bins {
		if bn.RewardMean != nil {
			lo, hi = math.Min(lo, *bn.RewardMean), math.Max(hi, *bn.RewardMean)
		}
	}
	if hi == lo {
		hi = lo + 1
	}
	plotW, plotH := W-left-6, H-bottom-top
	bw := plotW / float64(len(bins))
	zeroY := top + plotH*hi/(hi-lo)
	fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#b5bdcc"/>`, left, zeroY, left+plotW, zeroY)
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="end">%s</text><text x="%g" y="%g" text-anchor="end">%s</text>`, left-4, top+9, numLabel(hi), left-4, top+plotH, numLabel(lo))
	for i, bn := range bins {
		x := left + float64(i)*bw
		rng := fmt.Sprintf("[%d, %d)", bn.Lo, bn.Hi)
		if bn.Hi < 0 {
			rng = fmt.Sprintf("≥ %d", bn.Lo)
		}
		if bn.RewardMean != nil {
			y := top + plotH*(hi-*bn.RewardMean)/(hi-lo)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#d9822b"><title>%s: %d rows, mean reward %.4f</title></rect>`,
				x+1, math.Min(y, zeroY), math.Max(bw-2, 1), math.Abs(zeroY-y), esc(rng), bn.Rows, *bn.RewardMean)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`, x+bw/2, H-8, shortInt(bn.Lo))
	}
	b.WriteString("</svg>")
	return b.String()
}

func shortInt(v int64) string {
	if v >= 1024 && v%1024 == 0 {
		return fmt.Sprintf("%dk", v/1024)
	}
	return strconv.FormatInt(v, 10)
}

// WriteHTML writes the comparison of two runs as a self-contained page.
func (c *Comparison) WriteHTML(w io.Writer, a, b *Report) error {
	h := &htmlw{w: w}
	title := fmt.Sprintf("redraft audit: %s vs %s", c.A.Recipe, c.B.Recipe)
	h.p("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title><style>%s</style>%s</head><body>\n", esc(title), reportCSS, errorScript)
	h.p(`<div id="page-errors" hidden></div>`)
	h.p("<header><h1>%s</h1><p>A: %s (%d rows) &middot; B: %s (%d rows)</p></header><main>\n", esc(title), esc(c.A.Dir), c.A.Rows, esc(c.B.Dir), c.B.Rows)
	for i, s := range c.Slices {
		label := "all rows"
		if s.Dimension != DimAll {
			label = s.Dimension + " = " + s.Key
		}
		h.p("<section><h2>%s</h2><table><tr><th>metric</th><th>A</th><th>B</th><th>B − A</th></tr>", esc(label))
		for j, m := range s.Metrics {
			if m.A == nil && m.B == nil {
				continue
			}
			f := "f4"
			df := "f4"
			if isRate(m.Name) {
				f, df = "pct", "pp"
			} else if m.Name == "rows" {
				f, df = "int", "int"
			}
			p := fmt.Sprintf("/slices/%d/metrics/%d/", i, j)
			h.p("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>", esc(m.Name), metric(p+"a", m.A, f), metric(p+"b", m.B, f), metric(p+"delta", m.Delta, df))
		}
		h.p("</table></section>\n")
	}
	h.p("</main></body></html>\n")
	return h.err
}
