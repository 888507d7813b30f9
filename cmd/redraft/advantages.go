package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/redraft/redraft/rewards"
)

// cmdAdvantages reads one group per line, {"rewards": [..]} with nulls
// allowed (and "tokens": [..] for token-weighted whitening), and writes
// {"advantages": [..]} per line, in order.
func cmdAdvantages(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlagSet("advantages", "[flags] < groups.jsonl", advantagesAbout, stdout)
	est := fs.String("estimator", string(rewards.DefaultEstimator), "grpo, dr_grpo, rloo, reinforce_pp_baseline or passk")
	eps := float64NoDefault(fs, "eps", "epsilon (default: 1e-6 for grpo, 1e-8 for reinforce_pp_baseline)")
	whiten := fs.String("whiten", rewards.WhitenSequence, "reinforce_pp_baseline weighting: sequence, or token (needs \"tokens\" on every line)")
	batch := fs.Int("batch-groups", 0, "reinforce_pp_baseline: groups whitened together (default: all input lines)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	cfg := rewards.AdvantageConfig{Estimator: rewards.Estimator(*est), Eps: *eps, Whiten: *whiten, BatchGroups: *batch}
	// The defaults apply to flags left out only: --eps -1 or --batch-groups
	// 0 given on the command line are refused below, not taken for unset.
	set := setFlags(fs)
	if !set["eps"] {
		cfg.Eps = rewards.DefaultEps(cfg.Estimator)
	}
	if !set["batch-groups"] {
		cfg.BatchGroups = 1 << 62
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err.Error()}
	}
	type group struct {
		adv    []*float64
		tokens []float64
	}
	var pending []group
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	flush := func() error {
		if cfg.BatchLevel() {
			var vals []*float64
			var weights []float64
			for _, g := range pending {
				for i, a := range g.adv {
					if a != nil {
						vals = append(vals, a)
						weights = append(weights, g.tokens[i])
					}
				}
			}
			rewards.WhitenBatch(vals, weights, cfg.Eps)
		}
		for _, g := range pending {
			if err := enc.Encode(map[string][]*float64{"advantages": g.adv}); err != nil {
				return err
			}
		}
		pending = pending[:0]
		return out.Flush()
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		var in struct {
			Rewards []*float64 `json:"rewards"`
			Tokens  []float64  `json:"tokens"`
		}
		if err := json.Unmarshal(sc.Bytes(), &in); err != nil {
			return fmt.Errorf("stdin:%d: %w", line, err)
		}
		if in.Rewards == nil {
			return fmt.Errorf("stdin:%d: field \"rewards\": missing", line)
		}
		g := group{tokens: in.Tokens}
		if cfg.Whiten == rewards.WhitenToken && cfg.BatchLevel() {
			if len(in.Tokens) != len(in.Rewards) {
				return fmt.Errorf("stdin:%d: field \"tokens\": want one count per reward", line)
			}
		} else {
			g.tokens = make([]float64, len(in.Rewards))
			for i := range g.tokens {
				g.tokens[i] = 1
			}
		}
		g.adv, _ = rewards.GroupAdvantages(cfg, in.Rewards)
		pending = append(pending, g)
		if len(pending) >= cfg.BatchGroups || !cfg.BatchLevel() {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("stdin:%d: %w", line+1, err)
	}
	return flush()
}
