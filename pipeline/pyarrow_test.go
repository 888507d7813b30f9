package pipeline

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/redraft/redraft/internal/pycheck"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// TestPyarrowReadsShards hands real outputs to pyarrow (scripts/check_shards.py):
// schema types, checksums, counts, and every group's advantages recomputed by an
// independent implementation. scripts/test.sh sets REDRAFT_PYTHON to a
// virtual environment with pyarrow, and REDRAFT_REQUIRE_PYTHON=1 so that this
// test fails rather than skips when that environment is missing.
func TestPyarrowReadsShards(t *testing.T) {
	pycheck.Python(t)
	check := func(t *testing.T, dir string) { pycheck.Check(t, "..", dir) }
	t.Run("quickstart in several shards", func(t *testing.T) {
		cfg := quickstartConfig(t)
		cfg.Output.ShardBytes = 256 << 10
		if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
			t.Fatal(err)
		}
		check(t, cfg.Output.Dir)
	})
	for _, adv := range []rewards.AdvantageConfig{
		{Estimator: rewards.GRPO, Eps: 1e-4},
		{Estimator: rewards.DrGRPO},
		{Estimator: rewards.RLOO, DropZeroVariance: true},
		{Estimator: rewards.PassK},
		{Estimator: rewards.ReinforcePPBaseline, Eps: 1e-8, Whiten: rewards.WhitenToken, BatchGroups: 7},
		{Estimator: rewards.ReinforcePPBaseline, Eps: 1e-8, Whiten: rewards.WhitenSequence, BatchGroups: 4, DropZeroVariance: true},
	} {
		t.Run(fmt.Sprintf("generation with failures %s %s drop=%v", adv.Estimator, adv.Whiten, adv.DropZeroVariance), func(t *testing.T) {
			tasks, answers := writeTasks(t, 30)
			inner := fakeserver.AnswerBySeed(answers)
			srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
				if *req.Seed%5 == 0 {
					return fakeserver.Reply{Status: 503}
				}
				rep := inner(req)
				// Vary lengths so that token weighting matters.
				rep.Text = strings.Repeat("so ", int(*req.Seed%7)) + rep.Text
				return rep
			})
			defer srv.Close()
			cfg := generationConfig(t, srv, tasks)
			cfg.Advantage = adv
			cfg.Reward.Weights = map[string]float64{"verifiable": 1, "consensus": 0.5, "format": 0.1}
			allowFailures(cfg) // a fifth of the requests fail on purpose
			m, err := Execute(context.Background(), cfg, JobOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if adv.DropZeroVariance && m.Rewards.DroppedZeroStd == 0 {
				t.Error("expected some zero-variance groups to be dropped")
			}
			check(t, cfg.Output.Dir)
		})
	}
	t.Run("score episodes with pairs", func(t *testing.T) {
		tasks, answers := writeTasks(t, 20)
		srv := fakeserver.New(fakeserver.AnswerBySeed(answers))
		defer srv.Close()
		cfg := episodeConfig(t, srv, tasks, "episode: {turns: 2, feedback: fixed, pairs: true}\nreward: {weights: {verifiable: 1, score_bonus: 1}}\n")
		if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
			t.Fatal(err)
		}
		check(t, cfg.Output.Dir)
	})
	t.Run("rise episodes, trajectory advantages", func(t *testing.T) {
		tasks, answers := writeTasks(t, 20)
		srv := fakeserver.New(fakeserver.AnswerBySeed(answers))
		defer srv.Close()
		cfg := episodeConfig(t, srv, tasks, "episode: {turns: 3, feedback: retry_if_wrong}\nadvantage: {estimator: grpo, group_by: trajectory}\n")
		if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
			t.Fatal(err)
		}
		check(t, cfg.Output.Dir)
	})
	t.Run("rise episodes, turn groups", func(t *testing.T) {
		tasks, answers := writeTasks(t, 20)
		srv := fakeserver.New(fakeserver.AnswerBySeed(answers))
		defer srv.Close()
		cfg := episodeConfig(t, srv, tasks, "episode: {turns: 3, feedback: retry_if_wrong}\nadvantage: {estimator: rloo}\n")
		if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
			t.Fatal(err)
		}
		check(t, cfg.Output.Dir)
	})
	t.Run("quickstart reinforce_pp_baseline sequence", func(t *testing.T) {
		cfg := quickstartConfig(t)
		cfg.Advantage = rewards.AdvantageConfig{Estimator: rewards.ReinforcePPBaseline, Eps: 1e-8, Whiten: rewards.WhitenSequence, BatchGroups: 100}
		if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
			t.Fatal(err)
		}
		check(t, cfg.Output.Dir)
	})
}
