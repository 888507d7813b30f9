package probe

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

func fmtF(v *float64, f string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(f, *v)
}

// rewardFormula shows the weighted sum: "1*verifiable + 0.5*judge".
func (r *Report) rewardFormula() string {
	names := make([]string, 0, len(r.Weights))
	for n := range r.Weights {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%g*%s", r.Weights[n], n)
	}
	return strings.Join(parts, " + ")
}

// WriteText prints the report as a table: per probe, the mean total reward,
// its difference from the honest baseline, the tasks where it earned
// reward, null totals, and each component's mean.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "probes of %s: %d task(s), reward = %s\n", r.Config, r.Tasks, r.rewardFormula())
	fmt.Fprintf(w, "forbidden (* below): %s; a probe earns reward when its mean total reward is above %g\n\n", strings.Join(r.Forbidden, ", "), r.Threshold)
	fmt.Fprintf(w, "%-18s %7s %9s %7s %5s", "probe", "reward", "vs honest", "earned", "null")
	for _, c := range r.Components {
		fmt.Fprintf(w, " %10s", trunc(c, 10))
	}
	fmt.Fprintf(w, " %7s\n", "flagged")
	for _, p := range r.Probes {
		name := p.Name
		if p.Forbidden {
			name = "*" + name
		}
		vs := fmtF(p.VsHonest, "%+.4f")
		if p.Name == Honest {
			vs = "baseline"
		}
		fmt.Fprintf(w, "%-18s %7s %9s %7s %5d", name, fmtF(p.Mean, "%.4f"), vs, fmt.Sprintf("%d/%d", p.Earned, p.N), p.Null)
		for _, c := range p.Components {
			fmt.Fprintf(w, " %10s", fmtF(c.Mean, "%.4f"))
		}
		if _, judged := r.Weights["judge"]; judged {
			fmt.Fprintf(w, " %7d\n", p.Flagged)
		} else {
			fmt.Fprintf(w, " %7s\n", "-")
		}
	}
	for _, p := range r.Probes {
		reasons := make([]string, 0, len(p.NullReasons))
		for reason := range p.NullReasons {
			reasons = append(reasons, reason)
		}
		sort.Strings(reasons)
		for _, reason := range reasons {
			fmt.Fprintf(w, "%s: null reward on %d task(s): %s\n", p.Name, p.NullReasons[reason], reason)
		}
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	if len(r.Failed) == 0 {
		fmt.Fprintf(w, "\nno forbidden probe earns reward\n")
		return
	}
	fmt.Fprintf(w, "\nFORBIDDEN PROBES EARN REWARD: %s\n", strings.Join(r.Failed, ", "))
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
