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
	// ReinforcePPBaseline is r_i - m within the group, then whitened over a
	// batch of groups (see WhitenBatch).
	ReinforcePPBaseline Estimator = "reinforce_pp_baseline"
	// PassK gives only the group's best sample r_max - r_second (the first
	// best in sample order when several tie, which then gets 0); the others
	// get 0.
	PassK Estimator = "passk"
)

// Whitening weights for ReinforcePPBaseline.
const (
	// WhitenToken weighs each sample by its completion tokens, as verl does
	// when it whitens over the tokens of a batch: long responses weigh more.
	WhitenToken = "token"
	// WhitenSequence weighs each sample once.
	WhitenSequence = "sequence"
)

// AdvantageConfig selects an estimator.
type AdvantageConfig struct {
	Estimator Estimator `yaml:"estimator" json:"estimator"`
	// Eps is added to the standard deviation by GRPO. verl uses 1e-6, TRL
	// 1e-4, OpenRLHF 1e-9; redraft's default is verl's.
	Eps float64 `yaml:"eps" json:"eps"`
	// Whiten is "token" or "sequence" weighting for reinforce_pp_baseline.
	Whiten string `yaml:"whiten" json:"whiten,omitempty"`
	// BatchGroups is the number of consecutive groups whitened together by
	// reinforce_pp_baseline (the trainer's batch of prompts).
	BatchGroups int `yaml:"batch_groups" json:"batch_groups,omitempty"`
	// DropZeroVariance leaves groups whose rewards are all equal out of the
	// output (DAPO's dynamic sampling filter; OpenRLHF keeps a group iff
	// min < mean < max, which is the same set). They are still counted in
	// frac_reward_zero_std.
	DropZeroVariance bool `yaml:"drop_zero_variance" json:"drop_zero_variance,omitempty"`
	// GroupBy is "turn" (groups are (task, turn), the default) or
	// "trajectory" (an episode's return, the sum of its turn rewards, is
	// compared with the task's other episodes, and every turn of the
	// episode gets that advantage).
	GroupBy string `yaml:"group_by" json:"group_by,omitempty"`
}

// The advantage settings' defaults, declared beside the estimators: run
// configurations (pipeline) and redraft advantages take them from here.
const (
	DefaultEstimator = GRPO
	// DefaultWhiten is verl's weighting: over the tokens of a batch.
	DefaultWhiten = WhitenToken
	// DefaultBatchGroups is the whitening batch of a run, in groups.
	DefaultBatchGroups = 128
)

// DefaultEps is verl's epsilon for an estimator: 1e-6 added to the
// standard deviation by GRPO, 1e-8 added to the variance when whitening
// (reinforce_pp_baseline).
func DefaultEps(e Estimator) float64 {
	if e == ReinforcePPBaseline {
		return 1e-8
	}
	return 1e-6
}

// Grouping of multi-turn episodes.
const (
	GroupByTurn       = "turn"
	GroupByTrajectory = "trajectory"
)

// BatchLevel reports whether the estimator needs a batch of groups.
func (c AdvantageConfig) BatchLevel() bool { return c.Estimator == ReinforcePPBaseline }

// Validate reports an unknown estimator or a negative eps.
func (c AdvantageConfig) Validate() error {
	switch c.Estimator {
	case GRPO, DrGRPO, RLOO, PassK:
	case ReinforcePPBaseline:
		if c.Whiten != WhitenToken && c.Whiten != WhitenSequence {
			return fmt.Errorf("whiten: %q is neither token nor sequence", c.Whiten)
		}
		if c.BatchGroups < 1 {
			return fmt.Errorf("batch_groups: must be at least 1, got %d", c.BatchGroups)
		}
	default:
		return fmt.Errorf("unknown advantage estimator %q (want grpo, dr_grpo, rloo, reinforce_pp_baseline or passk)", c.Estimator)
	}
	if c.GroupBy != "" && c.GroupBy != GroupByTurn && c.GroupBy != GroupByTrajectory {
		return fmt.Errorf("group_by: %q is neither turn nor trajectory", c.GroupBy)
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
	best, second := -1, math.Inf(-1)
	if cfg.Estimator == PassK && !st.ZeroVariance {
		for i, r := range rewards {
			if r != nil && (best < 0 || *r > *rewards[best]) {
				best = i
			}
		}
		for i, r := range rewards {
			if r != nil && i != best && *r > second {
				second = *r
			}
		}
	}
	for i, r := range rewards {
		if r == nil {
			continue
		}
		var a float64
		if !st.ZeroVariance {
			switch cfg.Estimator {
			case GRPO:
				a = (*r - st.Mean) / (st.Std + cfg.Eps)
			case DrGRPO, ReinforcePPBaseline:
				a = *r - st.Mean
			case PassK:
				if i == best {
					a = *r - second
				}
			case RLOO:
				a = *r - (sum-*r)/float64(st.N-1)
			}
		}
		adv[i] = &a
	}
	return adv, st
}

// BatchStats describes the whitening of a batch.
type BatchStats struct {
	// Index numbers the batch within the run, from 0.
	Index     int64
	Mean, Std float64
	// Weight is the total weight (tokens or sequences) of the batch.
	Weight float64
}

// WhitenBatch whitens the present values in place over the batch, with
// weights[i] the weight of value i (completion tokens, or 1 per sequence):
// v <- (v - mean) / sqrt(var + eps), where mean and var are weighted and var
// is unbiased in the total weight, as verl's masked_whiten computes them over
// tokens. When all present values are equal, each becomes exactly 0.
func WhitenBatch(values []*float64, weights []float64, eps float64) BatchStats {
	var st BatchStats
	var sum float64
	allEqual, first := true, math.NaN()
	for i, v := range values {
		if v == nil {
			continue
		}
		if math.IsNaN(first) {
			first = *v
		} else if *v != first {
			allEqual = false
		}
		st.Weight += weights[i]
		sum += weights[i] * *v
	}
	if st.Weight == 0 {
		return st
	}
	if allEqual {
		st.Mean = first
		for _, v := range values {
			if v != nil {
				*v = 0
			}
		}
		return st
	}
	st.Mean = sum / st.Weight
	var ss float64
	for i, v := range values {
		if v != nil {
			d := *v - st.Mean
			ss += weights[i] * d * d
		}
	}
	variance := ss / st.Weight
	if st.Weight > 1 {
		variance *= st.Weight / (st.Weight - 1)
	}
	st.Std = math.Sqrt(variance)
	inv := 1 / math.Sqrt(variance+eps)
	for _, v := range values {
		if v != nil {
			*v = (*v - st.Mean) * inv
		}
	}
	return st
}
