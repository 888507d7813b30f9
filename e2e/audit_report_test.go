package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/redraft/redraft/audit"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// quickstartRun writes the quickstart (bundled GSM8K solutions) to a
// temporary directory.
func quickstartRun(t *testing.T) string {
	t.Helper()
	cfg, err := pipeline.LoadConfig("../configs/quickstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Source.Path = filepath.Join("..", cfg.Source.Path)
	cfg.Output.Dir = filepath.Join(t.TempDir(), "quickstart")
	if _, err := pipeline.Execute(context.Background(), cfg, pipeline.JobOptions{}); err != nil {
		t.Fatal(err)
	}
	return cfg.Output.Dir
}

// scoreSetup writes 12 toy tasks ("What is i+i?") and starts the policy
// that answers them by seed and a judge that always scores 7, both closed
// when the test ends.
func scoreSetup(t *testing.T) (tasks string, policy, judge *fakeserver.Server) {
	t.Helper()
	var b strings.Builder
	answers := map[string]int{}
	for i := range 12 {
		q := fmt.Sprintf("What is %d+%d?", i, i)
		answers[q] = 2 * i
		fmt.Fprintf(&b, `{"id": "toy-%d", "prompt": %q, "reference": %d, "data_source": "toy"}`+"\n", i, q, 2*i)
	}
	tasks = filepath.Join(t.TempDir(), "tasks.jsonl")
	if err := os.WriteFile(tasks, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	policy = fakeserver.New(fakeserver.AnswerBySeed(answers))
	t.Cleanup(policy.Close)
	judge = fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{Text: "Score: 7"} })
	t.Cleanup(judge.Close)
	return tasks, policy, judge
}

// scoreRun writes a two-turn SCoRe run with a judge, consensus and logprobs
// against the in-process server: 12 tasks, 4 samples, 2 turns.
func scoreRun(t *testing.T, rowGroupRows int) string {
	t.Helper()
	tasks, policy, judge := scoreSetup(t)
	out := filepath.Join(t.TempDir(), "score")
	cfg, err := pipeline.ParseConfig("score.yaml", strings.NewReader(fmt.Sprintf(`
name: score-audit
seed: 7
source: {kind: tasks, path: %s}
endpoint: {base_url: %s, model: policy, max_in_flight: 8, retries: 2, backoff_initial: 1ms, backoff_max: 2ms}
sampling: {n: 4, temperature: 1.0, max_tokens: 64, logprobs: true}
episode: {turns: 2, feedback: fixed}
reward:
  weights: {verifiable: 1, score_bonus: 1, judge: 0.5, consensus: 0}
  score_bonus: {alpha: 10}
  judges: [{name: j1, base_url: %s, model: judge-model, template: correctness}]
output: {dir: %s, row_group_rows: %d}
`, tasks, policy.BaseURL(), judge.BaseURL(), out, rowGroupRows)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Execute(context.Background(), cfg, pipeline.JobOptions{}); err != nil {
		t.Fatal(err)
	}
	return out
}

func slice(t *testing.T, a *audit.Report, dim, key string) *audit.SliceReport {
	t.Helper()
	for i := range a.Slices {
		if a.Slices[i].Dimension == dim && a.Slices[i].Key == key {
			return &a.Slices[i]
		}
	}
	t.Fatalf("no slice %s=%s", dim, key)
	return nil
}

func TestAuditMultiTurn(t *testing.T) {
	// Row groups of 3 rows split the 4-row groups across row groups: the
	// audit must join them and give the same answer as with whole groups.
	small := scoreRun(t, 3)
	big := scoreRun(t, 4096)
	ctx := context.Background()
	var ref, refSmall any
	for _, c := range []struct {
		dir     string
		workers int
	}{{big, 1}, {small, 1}, {small, 2}, {small, 7}} {
		a, err := audit.Path(ctx, c.dir, audit.Options{Workers: c.workers})
		if err != nil {
			t.Fatal(err)
		}
		a.Dir, a.Shards = "", 0
		b, _ := json.Marshal(a)
		var doc any
		json.Unmarshal(b, &doc)
		switch {
		case ref == nil:
			ref = doc
			checkScoreAudit(t, a)
		case refSmall == nil:
			// Other row groups sum in another order: equal to rounding.
			refSmall = doc
			if p := sameJSON(ref, doc, ""); p != "" {
				t.Errorf("audit with 3-row row groups differs at %s", p)
			}
		default:
			// The same shards give the same bits with any number of workers.
			if !reflect.DeepEqual(doc, refSmall) {
				t.Errorf("audit with %d workers differs", c.workers)
			}
		}
	}
}

// sameJSON returns the first path where two JSON documents differ beyond a
// relative 1e-9 on numbers, or "".
func sameJSON(a, b any, path string) string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return path
		}
		for k := range x {
			if p := sameJSON(x[k], y[k], path+"/"+k); p != "" {
				return p
			}
		}
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return path
		}
		for i := range x {
			if p := sameJSON(x[i], y[i], fmt.Sprintf("%s/%d", path, i)); p != "" {
				return p
			}
		}
	case float64:
		y, ok := b.(float64)
		if !ok || math.Abs(x-y) > 1e-9*math.Max(1, math.Abs(x)) {
			return path
		}
	default:
		if !reflect.DeepEqual(a, b) {
			return path
		}
	}
	return ""
}

func checkScoreAudit(t *testing.T, a *audit.Report) {
	t.Helper()
	if a.Recipe != "score-audit" || a.Overall.Rows != 96 || a.Overall.Groups != 24 || len(a.ByTurn) != 2 {
		t.Fatalf("audit: recipe %q rows %d groups %d turns %d", a.Recipe, a.Overall.Rows, a.Overall.Groups, len(a.ByTurn))
	}
	var doc map[string]map[string]any
	b, _ := json.Marshal(a.Slices[0])
	json.Unmarshal(b, &doc)
	for _, g := range audit.MetricGroups {
		if _, ok := doc[g]; !ok {
			t.Errorf("slice lacks metric group %s", g)
		}
	}
	all := slice(t, a, audit.DimAll, audit.DimAll)
	t0, t1 := slice(t, a, audit.DimTurn, "0"), slice(t, a, audit.DimTurn, "1")
	tr := t1.Transitions
	if tr.Revisions != 48 || all.Transitions.Revisions != 48 || t0.Transitions.Revisions != 0 {
		t.Fatalf("transitions: %+v", tr)
	}
	// delta(t1, t2) from the transitions equals acc(t2) - acc(t1).
	acc0, acc1 := *t0.Reward.Accuracy, *t1.Reward.Accuracy
	if d := *tr.DeltaT1T2 - (acc1 - acc0); d > 1e-12 || d < -1e-12 {
		t.Errorf("delta %v, accuracies %v -> %v", *tr.DeltaT1T2, acc0, acc1)
	}
	if *a.TurnDeltas[0].AccuracyDelta != acc1-acc0 {
		t.Errorf("turn delta %v", *a.TurnDeltas[0].AccuracyDelta)
	}
	// The fake server answers right for even seeds, reference+1 otherwise:
	// a changed verdict is a changed answer and vice versa.
	flips := tr.Counts["c->i"] + tr.Counts["i->c"]
	if t1.AnswerChange.Revisions != 48 || t1.AnswerChange.Changed != flips {
		t.Errorf("answer change %+v, flips %d", t1.AnswerChange, flips)
	}
	if all.JudgeAgreement.Rows != 96 || all.JudgeAgreement.PassCorrect+all.JudgeAgreement.PassIncorrect != 96 {
		t.Errorf("judge: %+v", all.JudgeAgreement)
	}
	if all.JudgeFlagged.Known != 96 || all.Entropy.Rows != 96 || all.Entropy.Dist.Mean == nil {
		t.Errorf("flags %+v entropy %+v", all.JudgeFlagged, all.Entropy)
	}
	if all.Consensus.Groups != 24 || all.PassMaj.MajFromConsensus != 24 || all.PassMaj.K != 4 {
		t.Errorf("consensus %+v pass/maj %+v", all.Consensus, all.PassMaj)
	}
	names := []string{}
	for _, c := range all.Components {
		names = append(names, c.Name)
	}
	if !reflect.DeepEqual(names, []string{"consensus", "judge", "score_bonus", "verifiable"}) {
		t.Errorf("components %v", names)
	}
	if all.Length.Unit != "completion_tokens" || all.Length.TruncationRate == nil {
		t.Errorf("length %+v", all.Length)
	}
	var buf bytes.Buffer
	a.WriteText(&buf)
	for _, want := range []string{"by turn", "transitions (48 revisions)", "answer changed after reflection", "judge vs verifier", "entropy"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, buf.String())
		}
	}
	buf.Reset()
	if err := a.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	checkSelfContained(t, buf.String())
}

func checkSelfContained(t *testing.T, page string) {
	t.Helper()
	for _, bad := range []string{"<link", "src=", "@import", "url(", "http://", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("report is not self-contained: it has %q", bad)
		}
	}
	if n := strings.Count(page, "<script"); n != 1 {
		t.Errorf("%d scripts in the report, want the one error recorder", n)
	}
}

func TestAuditCompare(t *testing.T) {
	ctx := context.Background()
	q := quickstartRun(t)
	s := scoreRun(t, 4096)
	a, err := audit.Path(ctx, q, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := audit.Path(ctx, s, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := audit.Compare(a, b)
	all := c.Slices[0]
	if all.Dimension != audit.DimAll || all.Metrics[0].Name != "rows" || *all.Metrics[0].Delta != 96-5276 {
		t.Fatalf("compare: %+v", all.Metrics[0])
	}
	var buf bytes.Buffer
	c.WriteText(&buf)
	if !strings.Contains(buf.String(), "model=175b_verification") || !strings.Contains(buf.String(), "-5180") {
		t.Errorf("compare text:\n%s", buf.String())
	}
	buf.Reset()
	if err := c.WriteHTML(&buf, a, b); err != nil {
		t.Fatal(err)
	}
	checkSelfContained(t, buf.String())
}
