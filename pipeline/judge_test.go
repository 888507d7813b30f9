package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/redraft/redraft/rollout/fakeserver"
)

// A run with a judge: every row carries the judge's score, and a rerun with
// the cache makes no judge call at all.
func TestJudgeRewardWithCache(t *testing.T) {
	tasks, answers := writeTasks(t, 5)
	policy := fakeserver.New(fakeserver.AnswerBySeed(answers))
	defer policy.Close()
	judgeSrv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{Text: "Score: 7"} })
	defer judgeSrv.Close()
	cache := filepath.Join(t.TempDir(), "judge-cache")
	extra := fmt.Sprintf(`reward:
  weights: {verifiable: 1, judge: 0.5}
  judges: [{name: j1, base_url: %s, model: judge-model, template: correctness}]
  judge_cache: %s
`, judgeSrv.BaseURL(), cache)
	cfg := episodeConfig(t, policy, tasks, extra)
	if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
		t.Fatal(err)
	}
	// Identical (question, response) pairs are the same judge request: the
	// cache answers the repeats within the run too.
	calls := judgeSrv.Count()
	distinct := map[string]bool{}
	rows := readAll(t, cfg.Output.Dir)
	for _, r := range rows {
		distinct[r.TaskID+"\x00"+r.Response] = true
	}
	if len(rows) != 20 || calls != int64(len(distinct)) {
		t.Errorf("%d judge calls for %d distinct responses in %d rows", calls, len(distinct), len(rows))
	}
	for _, r := range rows {
		if len(r.JudgeScores) != 1 || *r.JudgeScores[0].Score != 0.7 || *r.JudgeScores[0].Raw != 7 || r.JudgeFlagged == nil || *r.JudgeFlagged {
			t.Fatalf("judge columns: %+v flagged %v", r.JudgeScores, r.JudgeFlagged)
		}
		if want := 0.5 * 0.7; *r.Reward != want && *r.Reward != 1+want {
			t.Fatalf("reward %v", *r.Reward)
		}
	}
	if _, err := Execute(context.Background(), cfg, JobOptions{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if judgeSrv.Count() != calls {
		t.Errorf("rerun made %d judge calls; the cache should answer all", judgeSrv.Count()-calls)
	}
}
