package rewards

import (
	"fmt"
	"math"
)

// Estimator names a group advantage estimator.
type Estimator string

// The estimators. Formulas use a group's present rewards r_1..r_n, their mean
// m and unbiased standard deviation s (divided by n-1).
const (
	// GRPO is (r_i - m) / (s + eps) (DeepSeekMath).
	GRPO Estimator = "grpo"
	// DrGRPO is r_i - m, no std normalisation (Dr. GRPO, Critique-GRPO).
	DrGRPO Estimator = "dr_grpo"
	// RLOO is r_i - (sum - r_i)/(n - 1), the leave-one-out baseline.
	RLOO Estimator = "rloo"
)

// AdvantageConfig selects an estimator.
type AdvantageConfig struct {
	Estimator Estimator `yaml:"estimator" json:"estimator"`
	// Eps is added to the standard deviation by GRPO. verl uses 1e-6, TRL
	// 1e-4, OpenRLHF 1e-9; redraft's default is verl's.
	Eps float64 `yaml:"eps" json:"eps"`
}

// Validate reports an unknown estimator or a negative eps.
func (c AdvantageConfig) Validate() error {
	switch c.Estimator {
	case GRPO, DrGRPO, RLOO:
	default:
		return fmt.Errorf("unknown advantage estimator %q (want grpo, dr_grpo or rloo)", c.Estimator)
	}
	if c.Eps < 0 || math.IsNaN(c.Eps) || math.IsInf(c.Eps, 0) {
		return fmt.Errorf("advantage eps must be a finite number >= 0, got %v", c.Eps)
	}
	return nil
}

// GroupStats describes the rewards an advantage was computed from, so that a
// row can explain its advantage.
type GroupStats struct {
	// N is the number of present (non-nil) rewards in the group.
	N int
	// Mean and Std (unbiased) of the present rewards; Std is 0 when N < 2.
	Mean, Std float64
	// ZeroVariance is true when the present rewards are all equal (or N < 2):
	// such a group carries no learning signal.
	ZeroVariance bool
}

// GroupAdvantages returns one advantage per reward. A nil reward (one that
// could not be computed) is left out of the statistics and gets a nil
// advantage. When fewer than two rewards are present, or all present rewards
// are exactly equal, every present reward gets exactly 0: the check is on the
// values, not on a floating-point std, so no rounding residue leaks into an
// all-equal group.
func GroupAdvantages(cfg AdvantageConfig, rewards []*float64) ([]*float64, GroupStats) {
	adv := make([]*float64, len(rewards))
	var st GroupStats
	var first, sum float64
	allEqual := true
	for _, r := range rewards {
		if r == nil {
			continue
		}
		if st.N == 0 {
			first = *r
		} else if *r != first {
			allEqual = false
		}
		st.N++
		sum += *r
	}
	if st.N == 0 {
		st.ZeroVariance = true
		return adv, st
	}
	st.Mean = sum / float64(st.N)
	if allEqual {
		// Report the exact value rather than a sum divided back.
		st.Mean = first
	}
	if st.N >= 2 && !allEqual {
		var ss float64
		for _, r := range rewards {
			if r != nil {
				d := *r - st.Mean
				ss += d * d
			}
		}
		st.Std = math.Sqrt(ss / float64(st.N-1))
	}
	st.ZeroVariance = st.N < 2 || allEqual
	for i, r := range rewards {
		if r == nil {
			continue
		}
		var a float64
		if !st.ZeroVariance {
			switch cfg.Estimator {
			case GRPO:
				a = (*r - st.Mean) / (st.Std + cfg.Eps)
			case DrGRPO:
				a = *r - st.Mean
			case RLOO:
				a = *r - (sum-*r)/float64(st.N-1)
			}
		}
		adv[i] = &a
	}
	return adv, st
}
