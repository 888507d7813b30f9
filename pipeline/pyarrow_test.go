package pipeline

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// TestPyarrowReadsShards hands real outputs to pyarrow (scripts/check_shards.py):
// schema types, checksums, counts, and every group's advantages recomputed by an
// independent implementation. scripts/test.sh sets REDRAFT_PYTHON to a
// virtual environment with pyarrow, and REDRAFT_REQUIRE_PYTHON=1 so that this
// test fails rather than skips when that environment is missing.
func TestPyarrowReadsShards(t *testing.T) {
	py := os.Getenv("REDRAFT_PYTHON")
	if py == "" {
		if os.Getenv("REDRAFT_REQUIRE_PYTHON") != "" {
			t.Fatal("REDRAFT_REQUIRE_PYTHON is set but REDRAFT_PYTHON is not")
		}
		t.Skip("REDRAFT_PYTHON is not set: run scripts/test.sh for the pyarrow check")
	}
	check := func(t *testing.T, dir string) {
		out, err := exec.Command(py, "../scripts/check_shards.py", dir, "--schemas", "../schemas").CombinedOutput()
		t.Logf("%s", out)
		if err != nil {
			t.Fatalf("pyarrow check failed: %v", err)
		}
	}
	t.Run("quickstart in several shards", func(t *testing.T) {
		cfg := quickstartConfig(t)
		cfg.Output.ShardBytes = 256 << 10
		if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
			t.Fatal(err)
		}
		check(t, cfg.Output.Dir)
	})
	for _, est := range []rewards.Estimator{rewards.GRPO, rewards.DrGRPO, rewards.RLOO} {
		t.Run("generation with failures "+string(est), func(t *testing.T) {
			tasks, answers := writeTasks(t, 30)
			inner := fakeserver.AnswerBySeed(answers)
			srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
				if *req.Seed%5 == 0 {
					return fakeserver.Reply{Status: 503}
				}
				return inner(req)
			})
			defer srv.Close()
			cfg := generationConfig(t, srv, tasks)
			cfg.Advantage = rewards.AdvantageConfig{Estimator: est, Eps: 1e-4}
			if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
				t.Fatal(err)
			}
			check(t, cfg.Output.Dir)
		})
	}
}
