package pipeline

import (
	"github.com/redraft/redraft/rewards"
)

// NewScorer builds the scorer a run of cfg scores every group with: the
// run's grader, the Parts of the weighted components and, when judge is
// weighted, the judge panel (whose calls go to the configured judges).
// Execute uses it; redraft probe scores its adversarial responses with it,
// so a probe earns exactly what the same response would earn in a run.
// closeFn releases the judge cache.
func NewScorer(cfg *Config) (scorer *rewards.Composite, closeFn func(), err error) {
	grader := defaultGrader()
	parts := cfg.Reward.Parts(grader)
	closeFn = func() {}
	if _, ok := cfg.Reward.Weights["judge"]; ok {
		part, closeJudges, err := buildJudges(cfg.Reward)
		if err != nil {
			return nil, nil, err
		}
		parts = append(parts, part)
		closeFn = closeJudges
	}
	return &rewards.Composite{Grader: grader, Parts: parts, Weights: cfg.Reward.Weights}, closeFn, nil
}
