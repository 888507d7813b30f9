package audit_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/redraft/redraft/audit"
	"github.com/redraft/redraft/export"
)

// B-STaR's numbers on a hand-computed run: exploration counts distinct
// correct responses and answers per group, exploitation orders the rewards
// of a group's correct samples against its incorrect ones.
func TestExploreExploit(t *testing.T) {
	dir := t.TempDir()
	w, _ := export.NewShardWriter[export.RLRow](export.ShardOptions{Dir: dir, Dataset: "rl", Schema: export.RLSchema})
	ctx := context.Background()
	row := func(group string, i int, resp, ans string, correct bool, reward float64) export.RLRow {
		r := sampleRows(group, f64(reward))[0]
		r.SampleIndex, r.Response, r.ExtractedAnswer, r.Correct = int32(i), resp, &ans, &correct
		return r
	}
	// Group a: correct "x" twice (one text), correct "y"; wrong "z" with a
	// higher reward than one correct sample. Distinct correct responses 2,
	// correct answers 2 ("5", "5.0"), answers 3. Pairs (correct, wrong):
	// 0.9>0.5, 0.2<0.5, 0.9>0.5: AUROC 2/3; gap (0.9+0.2+0.9)/3 - 0.5.
	w.WriteGroup(ctx, []export.RLRow{
		row("a", 0, "x", "5", true, 0.9), row("a", 1, "y", "5.0", true, 0.2),
		row("a", 2, "x", "5", true, 0.9), row("a", 3, "z", "7", false, 0.5),
	})
	// Group b: no correct sample: 0 distinct correct, 1 answer; not mixed.
	w.WriteGroup(ctx, []export.RLRow{row("b", 0, "p", "1", false, 0), row("b", 1, "q", "1", false, 0)})
	// Group c: one tie pair.
	e := "boom"
	failed := sampleRows("c", nil)[0]
	failed.SampleIndex, failed.Error = 2, &e
	w.WriteGroup(ctx, []export.RLRow{row("c", 0, "r", "2", true, 1), row("c", 1, "s", "3", false, 1), failed})
	if _, err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	a, err := audit.Dir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	ee := a.Slices[0].ExploreExploit
	if ee.Groups != 3 || ee.MixedGroups != 2 || ee.Pairs != 4 {
		t.Fatalf("explore_exploit %+v", ee)
	}
	near := func(name string, got *float64, want float64) {
		t.Helper()
		if got == nil || *got-want > 1e-12 || want-*got > 1e-12 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	near("distinct correct responses", ee.DistinctCorrectResponses, (2.0+0+1)/3)
	near("distinct correct answers", ee.DistinctCorrectAnswers, (2.0+0+1)/3)
	near("distinct answers", ee.DistinctAnswers, (3.0+1+2)/3)
	near("auroc", ee.RewardAUROC, (2+0.5)/4)
	near("gap", ee.RewardGap, ((2.0/3-0.5)+0)/2)
	near("failed rate", a.Slices[0].Reward.FailedRate, 1.0/9)
	near("null rate", a.Slices[0].Reward.NullRate, 1.0/9)
	var buf bytes.Buffer
	a.WriteText(&buf)
	if !strings.Contains(buf.String(), "explore / exploit") || !strings.Contains(buf.String(), "0.625") {
		t.Errorf("text lacks the explore / exploit table:\n%s", buf.String())
	}
	buf.Reset()
	if err := a.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `data-metric="/slices/0/explore_exploit/reward_auroc" data-value="0.625"`) {
		t.Error("HTML lacks the reward AUROC")
	}

	// --fail-on's bounds over the same run.
	bounds, err := audit.ParseBounds("failed_rate>0.1, reward_auroc<0.7,null_rate>=0.2, judge_disagreement>0")
	if err != nil {
		t.Fatal(err)
	}
	res := a.CheckBounds(bounds)
	got := []bool{res[0].Crossed, res[1].Crossed, res[2].Crossed, res[3].Crossed}
	if got[0] != true || got[1] != true || got[2] != false || got[3] != false || res[3].Actual != nil {
		t.Errorf("bounds: %+v", res)
	}
	for _, bad := range []string{"nope>1", "null_rate", "null_rate>x", "null_rate=1", ">1"} {
		if _, err := audit.ParseBounds(bad); err == nil {
			t.Errorf("ParseBounds(%q) accepted", bad)
		} else if strings.HasPrefix(bad, "nope") && !strings.Contains(err.Error(), "null_rate, pass_at_k") {
			t.Errorf("unknown metric: %v does not list the metrics", err)
		}
	}
}
