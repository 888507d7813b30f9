package splice

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rewards/judge"
	"github.com/redraft/redraft/rewards/mathgrade"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// branchPolicy answers every request with the rest of a solution: the
// reference answer for even seeds, a wrong one for odd seeds, naming the
// kind of request it saw.
func branchPolicy(answers map[string]int) fakeserver.Responder {
	return func(req *fakeserver.Request) fakeserver.Reply {
		ans := answers[req.Messages[0].Content]
		if req.Seed != nil && *req.Seed%2 == 1 {
			ans++
		}
		kind := "fresh"
		switch {
		case req.ContinueFinalMessage != nil && *req.ContinueFinalMessage:
			kind = "prefill"
		case len(req.Messages) > 1:
			kind = "user-turn"
		}
		return fakeserver.Reply{Text: fmt.Sprintf("Step 2: Count again (%s): the total is %d.\n#### %d", kind, ans, ans)}
	}
}

var judgedStepRe = regexp.MustCompile(`whether step (\d+),`)

// stepJudgeServer answers per question: "bad:K" says Bad at step K and Good
// before it, "none" says Good everywhere, "garbage:K" answers without a
// verdict at step K.
func stepJudgeServer(plan map[string]string) fakeserver.Responder {
	return func(req *fakeserver.Request) fakeserver.Reply {
		user := req.Messages[len(req.Messages)-1].Content
		q := strings.TrimPrefix(user[:strings.Index(user, "\n\nSolution steps")], "Problem:\n")
		k, _ := strconv.Atoi(judgedStepRe.FindStringSubmatch(req.Messages[0].Content)[1])
		kind, at, _ := strings.Cut(plan[q], ":")
		n, _ := strconv.Atoi(at)
		switch {
		case kind == "bad" && k == n:
			return fakeserver.Reply{Text: fmt.Sprintf("Step %d does not follow.\n**Verdict:** Bad", k)}
		case kind == "garbage" && k == n:
			return fakeserver.Reply{Text: "Hard to say, it depends."}
		}
		return fakeserver.Reply{Text: "The step is fine.\nVerdict: Good"}
	}
}

// agentRCase is one solution with what the judge will say about it.
type agentRCase struct {
	name     string
	steps    []string
	seps     []string // between steps; default "\n"
	plan     string
	answer   int
	sample   *rollout.Sample
	badStep  int    // 0: no row expected
	skip     string // expected skip reason when badStep is 0
	calls    int    // judge calls expected
	modeHint string // "fresh" when the bad step is the first
}

func (c agentRCase) text() string {
	var b strings.Builder
	for i, s := range c.steps {
		if i > 0 {
			sep := "\n"
			if c.seps != nil {
				sep = c.seps[i-1]
			}
			b.WriteString(sep)
		}
		b.WriteString(s)
	}
	return b.String()
}

var agentRCases = []agentRCase{
	{name: "bad at step 2", steps: []string{"Step 1: Tom has 3 apples and 4 pears.", "Step 2: 3 + 4 = 8 fruits.", "Step 3: So he has 8.", "#### 8"}, plan: "bad:2", answer: 7, badStep: 2, calls: 2},
	{name: "bad at step 1", steps: []string{"Step 1: 6 * 2 = 11.", "#### 11"}, plan: "bad:1", answer: 12, badStep: 1, calls: 1, modeHint: "fresh"},
	{name: "bad at step 3 after blank lines", steps: []string{"First, the pool holds 10 litres.", "Then 4 litres leak out, leaving 6.", "Then 3 are added: 6 + 3 = 10.", "The answer is 10."}, seps: []string{"\n\n", "  \n \n", "\n"}, plan: "bad:3", answer: 9, badStep: 3, calls: 3},
	{name: "judge output unparseable", steps: []string{"a = 1", "b = 3", "#### 4"}, plan: "garbage:2", answer: 3, skip: "step judge at step 2: no Good/Bad verdict found in step judge output", calls: 2},
	{name: "no bad step", steps: []string{"x = 2", "y = 2", "x + y = 5", "#### 5"}, plan: "none", answer: 4, skip: "step judge found no bad step in 4 steps", calls: 4},
	{name: "already correct", steps: []string{"2 + 2 = 4", "#### 4"}, plan: "bad:1", answer: 4, skip: "solution is already correct: nothing to revise", calls: 0},
	{name: "failed sample", steps: []string{"unused"}, plan: "bad:1", answer: 1, sample: &rollout.Sample{Err: "gave up after 6 attempts"}, skip: "recorded sample failed: gave up after 6 attempts", calls: 0},
	{name: "too many steps", steps: []string{"1", "2", "3", "4", "5", "6", "7"}, plan: "bad:1", answer: 1, skip: "solution has 7 steps, more than max_steps 6", calls: 0},
}

type agentRMeta struct {
	FirstBad  int                 `json:"first_bad_step"`
	LocatedBy string              `json:"located_by"`
	Verdicts  []judge.StepVerdict `json:"judge_verdicts"`
	Revision  struct {
		PoolIndex int `json:"pool_index"`
	} `json:"revision"`
	Continuation  continuationMeta `json:"continuation"`
	BranchesTried []branchMeta     `json:"branches_tried"`
	Grade         *gradeMeta       `json:"grade"`
	Solution      solutionMeta     `json:"solution"`
}

func TestAgentR(t *testing.T) {
	for _, cfg := range []struct {
		name      string
		mode      string
		noPrefill bool
		keep      string
		branches  int
		wantMode  string
	}{
		{"prefill, keep all", rollout.ContinuePrefill, false, KeepAll, 1, rollout.ContinuePrefill},
		{"auto without prefill, keep all", rollout.ContinueAuto, true, KeepAll, 1, rollout.ContinueUserTurn},
		{"auto, keep correct, 3 branches", rollout.ContinueAuto, false, KeepCorrect, 3, rollout.ContinuePrefill},
		{"user turn, keep correct, 1 branch", rollout.ContinueUserTurn, false, KeepCorrect, 1, rollout.ContinueUserTurn},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			answers, plan := map[string]int{}, map[string]string{}
			var items []AgentRItem
			for i, c := range agentRCases {
				q := fmt.Sprintf("Question %d: %s?", i, c.name)
				answers[q], plan[q] = c.answer, c.plan
				s := c.sample
				if s == nil {
					s = &rollout.Sample{Text: c.text()}
				}
				items = append(items, AgentRItem{Task: rollout.Task{ID: fmt.Sprintf("t%d", i), DataSource: "toy", Reference: strconv.Itoa(c.answer),
					Messages: []rollout.Message{{Role: "user", Content: q}}}, Index: 0, Sample: s})
			}
			pol := fakeserver.New(branchPolicy(answers))
			pol.NoPrefill = cfg.noPrefill
			defer pol.Close()
			js := fakeserver.New(stepJudgeServer(plan))
			defer js.Close()
			opts := AgentROptions{
				Judge:     &judge.StepJudge{Name: "sj", Model: "judge", Policy: rollout.NewOpenAIPolicy(rollout.EndpointConfig{BaseURL: js.BaseURL(), Model: "judge"})},
				Continuer: &rollout.Continuer{Policy: rollout.NewOpenAIPolicy(rollout.EndpointConfig{BaseURL: pol.BaseURL(), Model: "policy"}), Mode: cfg.mode},
				Seed:      11, MaxSteps: 6, Keep: cfg.keep, Branches: cfg.branches, Grader: rewards.NewMathGrader(mathgrade.Options{}),
				Concurrency: 3,
			}
			pos := 0
			next := func() (AgentRItem, bool, error) {
				if pos == len(items) {
					return AgentRItem{}, false, nil
				}
				pos++
				return items[pos-1], true, nil
			}
			seen := 0
			err := AgentR(context.Background(), next, opts, func(r AgentRResult) error {
				i := seen
				seen++
				c := agentRCases[i]
				if r.Item.Task.ID != items[i].Task.ID {
					t.Fatalf("result %d is for %s", i, r.Item.Task.ID)
				}
				// The branch kept: the first with an even seed under keep
				// correct, else the first.
				kept := 0
				if cfg.keep == KeepCorrect {
					kept = -1
					for b := range cfg.branches {
						if rollout.DeriveSeed(11, r.Item.Task.ID, 0, 1+b)%2 == 0 {
							kept = b
							break
						}
					}
				}
				switch {
				case c.badStep == 0:
					if r.Trajectory != nil || r.Reason != c.skip {
						t.Fatalf("%s: reason %q, want %q", c.name, r.Reason, c.skip)
					}
				case kept < 0:
					want := "good branch graded incorrect (answer "
					if cfg.branches > 1 {
						want = fmt.Sprintf("no good branch kept in %d tries (last: %s", cfg.branches, want)
					}
					if r.Trajectory != nil || !strings.HasPrefix(r.Reason, want) {
						t.Fatalf("%s: reason %q", c.name, r.Reason)
					}
				default:
					if r.Trajectory == nil {
						t.Fatalf("%s: skipped: %s", c.name, r.Reason)
					}
					checkAgentRRow(t, c, r.Trajectory, cfg.wantMode, kept)
				}
				return nil
			})
			if err != nil || seen != len(items) {
				t.Fatalf("err %v after %d results", err, seen)
			}
			want := 0
			for _, c := range agentRCases {
				want += c.calls
			}
			if int(js.Count()) != want {
				t.Fatalf("%d judge calls, want %d", js.Count(), want)
			}
		})
	}
}

// checkAgentRRow: masked text is exactly steps 1..k of the solution with the
// text between them; trained text is exactly the revision thought and the
// good branch; the branch was sampled from exactly steps 1..k-1.
func checkAgentRRow(t *testing.T, c agentRCase, tr *pipeline.Trajectory, wantMode string, kept int) {
	t.Helper()
	row := tr.SFTRow()
	var m agentRMeta
	if err := json.Unmarshal([]byte(*row.Metadata), &m); err != nil {
		t.Fatal(err)
	}
	if len(row.Messages) != 2 || row.Messages[0].LossMask != 0 || row.Recipe != "agent-r" || row.DataSource != "toy" {
		t.Fatalf("%s: row %+v", c.name, row)
	}
	text := c.text()
	k := c.badStep
	end := strings.Index(text, c.steps[k-1]) + len(c.steps[k-1])
	content := []rune(row.Messages[1].Content)
	var masked, trained strings.Builder
	var revision, branch string
	for i, sp := range row.Messages[1].Segments {
		seg := tr.Messages[1].Segments[i]
		if string(content[sp.Start:sp.End]) != seg.Text {
			t.Fatalf("%s: span %d does not hold its segment", c.name, i)
		}
		if sp.Trainable {
			trained.WriteString(seg.Text)
		} else {
			masked.WriteString(seg.Text)
		}
		switch sp.Role {
		case pipeline.SegRevision:
			revision = seg.Text
		case pipeline.SegContinuation:
			branch = seg.Text
		}
	}
	if masked.String() != text[:end] {
		t.Fatalf("%s: masked %q, want steps 1..%d %q", c.name, masked.String(), k, text[:end])
	}
	if trained.String() != "\n"+revision+"\n"+branch || row.Messages[1].Content != text[:end]+"\n"+revision+"\n"+branch {
		t.Fatalf("%s: trained %q (revision %q, branch %q)", c.name, trained.String(), revision, branch)
	}
	if revision != DefaultRevisions[m.Revision.PoolIndex] {
		t.Fatalf("%s: revision %q", c.name, revision)
	}
	if m.FirstBad != k || m.LocatedBy != "judge" || len(m.Verdicts) != k || m.Verdicts[k-1].Verdict != "bad" || !strings.Contains(m.Verdicts[k-1].Content, "Verdict:** Bad") {
		t.Fatalf("%s: judge metadata %+v", c.name, m)
	}
	for _, v := range m.Verdicts[:k-1] {
		if v.Verdict != "good" {
			t.Fatalf("%s: verdict %+v before the bad step", c.name, v)
		}
	}
	cm := m.Continuation
	shared := text[:strings.Index(text, c.steps[k-1])]
	mode := wantMode
	if c.modeHint != "" {
		mode = c.modeHint
	}
	if cm.Mode != mode || !strings.Contains(branch, "("+mode+")") || len(m.BranchesTried) != kept+1 || cm.Seed != rollout.DeriveSeed(11, tr.TaskID, 0, 1+kept) {
		t.Fatalf("%s: continuation %+v, branch %q, tried %+v", c.name, cm, branch, m.BranchesTried)
	}
	switch mode {
	case rollout.ContinueFresh:
		if len(cm.Messages) != 1 {
			t.Fatalf("%s: fresh request %+v", c.name, cm.Messages)
		}
	default:
		if len(cm.Messages) < 2 || cm.Messages[1].Role != "assistant" || cm.Messages[1].Content != shared {
			t.Fatalf("%s: continuation messages %+v, want the shared prefix %q", c.name, cm.Messages, shared)
		}
	}
	correct := cm.Seed%2 == 0
	if m.Grade == nil || m.Grade.Correct == nil || *m.Grade.Correct != correct || row.Reward == nil || (*row.Reward == 1) != correct {
		t.Fatalf("%s: grade %+v reward %v", c.name, m.Grade, row.Reward)
	}
	if c := m.Solution.Grade; c == nil || c.Correct == nil || *c.Correct {
		t.Fatalf("solution grade %+v", c)
	}
	if _, err := export.SFTTokenMessages(row); err != nil {
		t.Fatal(err)
	}
}
