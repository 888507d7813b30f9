package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
)

// Recorded rollouts that carry a reward: the recorded component passes it
// on, weighted with the verifiable reward, and a response without one has
// a null total that says why.
func TestRecordedRewardComponent(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "rollouts.jsonl")
	os.WriteFile(in, []byte(`{"id": "a", "prompt": "1+1?", "reference": 2, "responses": [{"text": "#### 2", "reward": 0.8}, {"text": "#### 3", "reward": 0.1}]}
{"id": "b", "prompt": "2+2?", "reference": 4, "responses": [{"text": "#### 4", "reward": 1}, {"text": "#### 4"}]}
`), 0o644)
	cfg, err := ParseConfig("c.yaml", strings.NewReader(`source: {kind: rollouts, path: `+in+`}
reward: {weights: {verifiable: 1, recorded: 0.5}}
advantage: {estimator: grpo}
output: {dir: `+filepath.Join(dir, "out")+`}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
		t.Fatal(err)
	}
	rows := readAll(t, cfg.Output.Dir)
	want := map[string]*float64{"a/0": f64p(1 + 0.4), "a/1": f64p(0 + 0.05), "b/0": f64p(1 + 0.5), "b/1": nil}
	if len(rows) != len(want) {
		t.Fatalf("%d rows", len(rows))
	}
	for _, r := range rows {
		key := r.TaskID + "/" + string(rune('0'+r.SampleIndex))
		w, ok := want[key]
		if !ok {
			t.Fatalf("unexpected row %s", key)
		}
		if (r.Reward == nil) != (w == nil) || r.Reward != nil && !near(*r.Reward, *w) {
			t.Errorf("%s: reward %v, want %v", key, r.Reward, w)
		}
		var rec *export.RewardComponent
		for i := range r.RewardComponents {
			if r.RewardComponents[i].Name == "recorded" {
				rec = &r.RewardComponents[i]
			}
		}
		if rec == nil || rec.Weight != 0.5 {
			t.Fatalf("%s: recorded component %+v", key, rec)
		}
		if w == nil && (r.RewardReason == nil || !strings.Contains(*r.RewardReason, "recorded") || rec.Reason == nil) {
			t.Errorf("%s: null reward without the reason: %v, component %+v", key, r.RewardReason, rec)
		}
	}
	// Tasks have no recorded reward to pass on.
	_, err = ParseConfig("c.yaml", strings.NewReader("source: {kind: tasks, path: x}\nendpoint: {base_url: http://h, model: m}\nreward: {weights: {recorded: 1}}\noutput: {dir: o}\n"))
	if err == nil || !strings.Contains(err.Error(), "reward.weights.recorded needs source.kind: rollouts") {
		t.Fatalf("tasks with the recorded component: %v", err)
	}
}

func f64p(v float64) *float64 { return &v }

func near(a, b float64) bool { return a-b < 1e-12 && b-a < 1e-12 }
