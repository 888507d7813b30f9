package judge

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
)

// Aggregate combines several judges' normalised scores with method:
//
//	mean      the arithmetic mean ("" means mean)
//	median    the middle score; with an even count, the mean of the two
//	          middle scores
//	majority  1 if a strict majority of the judges pass the response, else 0.
//	          A judge passes it when its score is >= 0.5. Tie rule: an equal
//	          number of passes and fails gives 0 (a pass needs a strict
//	          majority), and the reason says it was a tie.
//
// Nil scores (and NaN or infinite ones) are left out; reasons[i] is the
// reason for scores[i] and is quoted verbatim in the returned reason. When no
// score is left the result is nil and the reason lists every judge's reason.
// The reason is never empty: on success it says what was combined and what
// was left out.
func Aggregate(method string, scores []*float64, reasons []string) (*float64, string) {
	if method == "" {
		method = "mean"
	}
	reasonOf := func(i int) string {
		if i < len(reasons) && reasons[i] != "" {
			return reasons[i]
		}
		return fmt.Sprintf("judge %d: no reason given", i)
	}
	var vals []float64
	var left []string
	for i, s := range scores {
		switch {
		case s == nil:
			left = append(left, reasonOf(i))
		case math.IsNaN(*s) || math.IsInf(*s, 0):
			left = append(left, fmt.Sprintf("judge %d: score %v is not finite", i, *s))
		default:
			vals = append(vals, *s)
		}
	}
	if method != "mean" && method != "median" && method != "majority" {
		return nil, fmt.Sprintf("unknown aggregation method %q (want mean, median or majority)", method)
	}
	if len(scores) == 0 {
		return nil, "no judges"
	}
	if len(vals) == 0 {
		return nil, "no judge produced a score: " + strings.Join(left, "; ")
	}
	var out float64
	var what string
	switch method {
	case "mean":
		for _, v := range vals {
			out += v
		}
		out /= float64(len(vals))
		what = fmt.Sprintf("mean of %d/%d judges", len(vals), len(scores))
	case "median":
		sort.Float64s(vals)
		n := len(vals)
		if n%2 == 1 {
			out = vals[n/2]
		} else {
			out = (vals[n/2-1] + vals[n/2]) / 2
		}
		what = fmt.Sprintf("median of %d/%d judges", len(vals), len(scores))
	case "majority":
		pass := 0
		for _, v := range vals {
			if v >= 0.5 {
				pass++
			}
		}
		fail := len(vals) - pass
		switch {
		case pass > fail:
			out = 1
			what = fmt.Sprintf("majority of %d/%d judges: %d pass, %d fail", len(vals), len(scores), pass, fail)
		case pass < fail:
			what = fmt.Sprintf("majority of %d/%d judges: %d pass, %d fail", len(vals), len(scores), pass, fail)
		default:
			what = fmt.Sprintf("tie among %d/%d judges: %d pass, %d fail; a tie fails (a pass needs a strict majority)", len(vals), len(scores), pass, fail)
		}
	}
	if len(left) > 0 {
		what += "; left out: " + strings.Join(left, "; ")
	}
	return &out, what
}

// Panel evaluates several judges and aggregates their scores.
type Panel struct {
	Judges []*Judge
	Method string // "mean" (default when ""), "median" or "majority"
	// Concurrency bounds the judge calls in flight for one Evaluate; <= 0
	// means all judges at once.
	Concurrency int
}

// PanelResult is a panel's decision on one response.
type PanelResult struct {
	Score    *float64 // the aggregate; nil when no judge produced a score
	Reason   string   // what Aggregate said (never empty)
	PerJudge []Verdict
	// Flagged is set when the response addresses the judge (DetectInjection);
	// FlagReason names the pattern. Flagging does not change Score.
	Flagged    bool
	FlagReason string
}

// Evaluate runs every judge on the response (at most Concurrency at a time)
// and aggregates their scores. PerJudge[i] is Judges[i]'s verdict. Each
// judge's reason is passed to Aggregate prefixed with its name (or "judge i"
// when it has none).
func (p *Panel) Evaluate(ctx context.Context, question, response, reference string) PanelResult {
	res := PanelResult{PerJudge: make([]Verdict, len(p.Judges))}
	res.Flagged, res.FlagReason = DetectInjection(response)
	limit := p.Concurrency
	if limit <= 0 || limit > len(p.Judges) {
		limit = len(p.Judges)
	}
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i, j := range p.Judges {
		if j == nil {
			res.PerJudge[i] = Verdict{Reason: "no judge configured"}
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			res.PerJudge[i] = j.Evaluate(ctx, question, response, reference)
		})
	}
	wg.Wait()
	scores := make([]*float64, len(p.Judges))
	reasons := make([]string, len(p.Judges))
	for i, v := range res.PerJudge {
		name := v.Judge
		if name == "" {
			name = fmt.Sprintf("judge %d", i)
		}
		scores[i] = v.Score
		reasons[i] = name + ": " + v.Reason
	}
	res.Score, res.Reason = Aggregate(p.Method, scores, reasons)
	return res
}
