package audit

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// A Bound is one gate of `redraft audit --fail-on`: METRIC OP VALUE, where
// OP is >, >=, < or <=. It is crossed when the run's metric (all rows)
// satisfies the comparison: "null_rate>0.05" fails a run with more than 5%
// null rewards.
type Bound struct {
	Metric string  `json:"metric"`
	Op     string  `json:"op"`
	Value  float64 `json:"value"`
}

func (b Bound) String() string {
	return b.Metric + b.Op + strconv.FormatFloat(b.Value, 'g', -1, 64)
}

// BoundMetrics are the metrics a Bound may name, over all rows: the
// headline metrics of a comparison (HeadlineMetrics) and these:
//
//	frac_zero_std        alias of frac_zero_variance (groups without signal)
//	judge_disagreement   1 - judge_agreement (judge score >= 0.5 vs verifier)
func BoundMetrics() []string {
	names := append([]string{}, HeadlineMetrics...)
	names = append(names, "frac_zero_std", "judge_disagreement")
	sort.Strings(names)
	return names
}

// BoundValue is metric's value over all rows of the report; nil when the
// run has none (no judge scores for judge_disagreement, no finish_reason
// for truncation_rate); ok is false for a name BoundMetrics does not list.
func (a *Report) BoundValue(metric string) (v *float64, ok bool) {
	if len(a.Slices) == 0 {
		return nil, contains(BoundMetrics(), metric)
	}
	all := &a.Slices[0]
	h := headline(all)
	switch metric {
	case "frac_zero_std":
		return h["frac_zero_variance"], true
	case "judge_disagreement":
		if g := all.JudgeAgreement.Agreement; g != nil {
			return fp(1 - *g), true
		}
		return nil, true
	}
	if !contains(HeadlineMetrics, metric) {
		return nil, false
	}
	return h[metric], true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ParseBounds reads a --fail-on list: bounds separated by commas (the flag
// may also be given several times, each value a list). A metric that
// BoundMetrics does not list is refused with the valid names.
func ParseBounds(list string) ([]Bound, error) {
	var out []Bound
	for _, expr := range strings.Split(list, ",") {
		expr = strings.TrimSpace(expr)
		if expr == "" {
			continue
		}
		i := strings.IndexAny(expr, "<>")
		if i <= 0 {
			return nil, fmt.Errorf("bound %q: want METRIC>VALUE, METRIC>=VALUE, METRIC<VALUE or METRIC<=VALUE", expr)
		}
		b := Bound{Metric: strings.TrimSpace(expr[:i]), Op: expr[i : i+1]}
		rest := expr[i+1:]
		if strings.HasPrefix(rest, "=") {
			b.Op += "="
			rest = rest[1:]
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("bound %q: %q is not a finite number", expr, strings.TrimSpace(rest))
		}
		b.Value = v
		if !contains(BoundMetrics(), b.Metric) {
			return nil, fmt.Errorf("bound %q: unknown metric %q; the metrics are %s", expr, b.Metric, strings.Join(BoundMetrics(), ", "))
		}
		out = append(out, b)
	}
	return out, nil
}

// BoundResult is one bound checked against a run.
type BoundResult struct {
	Bound
	// Actual is the run's value; nil when it has none, and then the bound
	// is not crossed (a run without judge scores has no disagreement).
	Actual  *float64 `json:"actual"`
	Crossed bool     `json:"crossed"`
}

// CheckBounds checks every bound against the run's all-rows metrics.
func (a *Report) CheckBounds(bounds []Bound) []BoundResult {
	out := make([]BoundResult, len(bounds))
	for i, b := range bounds {
		v, _ := a.BoundValue(b.Metric)
		r := BoundResult{Bound: b, Actual: v}
		if v != nil {
			switch b.Op {
			case ">":
				r.Crossed = *v > b.Value
			case ">=":
				r.Crossed = *v >= b.Value
			case "<":
				r.Crossed = *v < b.Value
			case "<=":
				r.Crossed = *v <= b.Value
			}
		}
		out[i] = r
	}
	return out
}
