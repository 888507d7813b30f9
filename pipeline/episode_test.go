package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/fakeserver"
)

func episodeConfig(t *testing.T, srv *fakeserver.Server, tasks, extra string) *Config {
	t.Helper()
	cfg, err := ParseConfig("ep.yaml", strings.NewReader(fmt.Sprintf(`
name: episode-test
seed: 7
source: {kind: tasks, path: %q}
endpoint: {base_url: %s, model: policy, max_in_flight: 8, retries: 2, backoff_initial: 1ms, backoff_max: 2ms}
sampling: {n: 4, temperature: 1.0, max_tokens: 64}
output: {dir: %q}
%s`, tasks, srv.BaseURL(), t.TempDir(), extra)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// SCoRe: two turns, the fixed instruction after every first attempt, the
// bonus alpha*(r2 - r1) on revisions, transitions on turn-1 rows, and the
// SCL pairs from flips.
func TestSCoReEpisodes(t *testing.T) {
	tasks, answers := writeTasks(t, 12)
	srv := fakeserver.New(fakeserver.AnswerBySeed(answers))
	defer srv.Close()
	cfg := episodeConfig(t, srv, tasks, `
episode: {turns: 2, feedback: fixed, pairs: true}
reward: {weights: {verifiable: 1, score_bonus: 1}, score_bonus: {alpha: 10}}
`)
	m, err := Execute(context.Background(), cfg, JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkManifest(t, cfg.Output.Dir, m)
	if srv.Count() != 12*4*2 {
		t.Errorf("%d requests, want %d", srv.Count(), 12*4*2)
	}
	rows := readAll(t, cfg.Output.Dir)
	if len(rows) != 96 || m.Datasets["rl"].Groups != 24 {
		t.Fatalf("%d rows in %d groups", len(rows), m.Datasets["rl"].Groups)
	}
	first := map[string]export.RLRow{}
	flips := 0
	for i, r := range rows {
		// Groups alternate (task, turn 0), (task, turn 1).
		wantTurn := (i / 4) % 2
		if int(r.Turn) != wantTurn || r.GroupID != fmt.Sprintf("%s#t%d", r.TaskID, wantTurn) {
			t.Fatalf("row %d: turn %d group %s", i, r.Turn, r.GroupID)
		}
		seed := rollout.DeriveSeed(7, r.TaskID, int(r.SampleIndex), int(r.Turn))
		if *r.Seed != seed || *r.Correct != fakeserver.IsCorrectSeed(seed) {
			t.Fatalf("row %d: seed %d correct %v", i, *r.Seed, *r.Correct)
		}
		key := fmt.Sprintf("%s/%d", r.TaskID, r.SampleIndex)
		if r.Turn == 0 {
			if len(r.Prompt) != 1 || r.Transition != nil || len(r.RewardComponents) != 1 {
				t.Fatalf("turn 0 row: prompt %d msgs, transition %v, components %d", len(r.Prompt), r.Transition, len(r.RewardComponents))
			}
			first[key] = r
			continue
		}
		prev := first[key]
		// The exact history sent: question, first attempt, instruction.
		if len(r.Prompt) != 3 || r.Prompt[1].Content != prev.Response || r.Prompt[2].Content != rollout.SCoReInstruction {
			t.Fatalf("turn 1 prompt: %+v", r.Prompt)
		}
		want := mark(*prev.Correct) + "->" + mark(*r.Correct)
		if r.Transition == nil || *r.Transition != want {
			t.Errorf("row %d: transition %v, want %s", i, r.Transition, want)
		}
		r1, r2 := b2f(*prev.Correct), b2f(*r.Correct)
		bonus := r.RewardComponents[1]
		if bonus.Name != "score_bonus" || *bonus.Value != 10*(r2-r1) || *r.Reward != r2+10*(r2-r1) {
			t.Errorf("row %d: bonus %+v reward %v for r1=%v r2=%v", i, bonus, *r.Reward, r1, r2)
		}
		if r1 != r2 {
			flips++
		}
	}
	pairs := readPairs(t, cfg.Output.Dir)
	if flips == 0 || len(pairs) != flips || m.Datasets["pairs"].Rows != int64(flips) {
		t.Fatalf("%d flips, %d pairs", flips, len(pairs))
	}
	for _, p := range pairs {
		if len(p.Prompt) != 1 || !strings.HasPrefix(p.Prompt[0].Content, "What is") {
			t.Errorf("pair prompt is not the original question: %+v", p.Prompt)
		}
		if strings.Contains(p.ChosenText, "answer is") && p.ChosenText == p.RejectedText {
			t.Errorf("pair %s: chosen == rejected", p.ID)
		}
		// pairs/2: the responses as one assistant message each (TRL's
		// conversational preference form) and as text.
		for _, c := range []struct {
			msgs []export.Message
			text string
		}{{p.Chosen, p.ChosenText}, {p.Rejected, p.RejectedText}} {
			if len(c.msgs) != 1 || c.msgs[0] != (export.Message{Role: "assistant", Content: c.text}) {
				t.Errorf("pair %s: %+v is not one assistant message holding %q", p.ID, c.msgs, c.text)
			}
		}
		if (NumericGradeOK(p.ChosenText, p.Prompt[0].Content) != true) || NumericGradeOK(p.RejectedText, p.Prompt[0].Content) {
			t.Errorf("pair %s (%s): chosen must be right and rejected wrong", p.ID, p.Transition)
		}
	}
}

// RISE: feedback only after a wrong attempt, so an episode stops at its first
// correct answer and later turns' groups hold only the episodes still going.
func TestRISEEpisodes(t *testing.T) {
	tasks, answers := writeTasks(t, 10)
	srv := fakeserver.New(fakeserver.AnswerBySeed(answers))
	defer srv.Close()
	cfg := episodeConfig(t, srv, tasks, "episode: {turns: 3, feedback: retry_if_wrong}\n")
	if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
		t.Fatal(err)
	}
	rows := readAll(t, cfg.Output.Dir)
	byEpisode := map[string][]export.RLRow{}
	for _, r := range rows {
		k := fmt.Sprintf("%s/%d", r.TaskID, r.SampleIndex)
		byEpisode[k] = append(byEpisode[k], r)
	}
	if len(byEpisode) != 40 || int64(len(rows)) != srv.Count() {
		t.Fatalf("%d episodes, %d rows, %d requests", len(byEpisode), len(rows), srv.Count())
	}
	sawThird := false
	for k, ep := range byEpisode {
		for i, r := range ep {
			if int(r.Turn) != i {
				t.Fatalf("%s: turn %d at position %d", k, r.Turn, i)
			}
			last := i == len(ep)-1
			if !last && *r.Correct {
				t.Errorf("%s: continued after a correct attempt", k)
			}
			if last && !*r.Correct && len(ep) < 3 {
				t.Errorf("%s: stopped after a wrong attempt at turn %d", k, i)
			}
			if i > 0 && r.Prompt[len(r.Prompt)-1].Content != rollout.RISEFeedback {
				t.Errorf("%s: feedback %q", k, r.Prompt[len(r.Prompt)-1].Content)
			}
		}
		sawThird = sawThird || len(ep) == 3
	}
	if !sawThird {
		t.Error("no episode reached the third turn; the test data does not exercise it")
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// NumericGradeOK grades a fake-server response against the toy question
// "What is i+i?".
func NumericGradeOK(response, question string) bool {
	var i int
	fmt.Sscanf(question, "What is %d+", &i)
	ok := mathGrading().Verify(context.Background(), rollout.Task{Reference: fmt.Sprint(2 * i)}, rollout.Sample{Text: response}).Correct
	return ok != nil && *ok
}

func readPairs(t *testing.T, dir string) []export.PairRow {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "data", "pairs", "*.parquet"))
	var out []export.PairRow
	for _, p := range paths {
		rows, err := export.ReadRows[export.PairRow](context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rows...)
	}
	return out
}

// Trajectory-level advantages: an episode's return is the sum of its turn
// rewards, compared across the task's episodes; every turn row of an episode
// carries the episode's advantage and the task's "#traj" group.
func TestTrajectoryAdvantages(t *testing.T) {
	tasks, answers := writeTasks(t, 8)
	srv := fakeserver.New(fakeserver.AnswerBySeed(answers))
	defer srv.Close()
	cfg := episodeConfig(t, srv, tasks, "episode: {turns: 3, feedback: retry_if_wrong}\nadvantage: {estimator: dr_grpo, group_by: trajectory}\nreward: {weights: {verifiable: 1, srpo: 1}}\n")
	if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
		t.Fatal(err)
	}
	rows := readAll(t, cfg.Output.Dir)
	type ep struct {
		ret  float64
		advs []float64
	}
	byTask := map[string]map[int32]*ep{}
	for _, r := range rows {
		if r.GroupID != r.TaskID+"#traj" {
			t.Fatalf("group id %s", r.GroupID)
		}
		if byTask[r.TaskID] == nil {
			byTask[r.TaskID] = map[int32]*ep{}
		}
		e := byTask[r.TaskID][r.SampleIndex]
		if e == nil {
			e = &ep{}
			byTask[r.TaskID][r.SampleIndex] = e
		}
		e.ret += *r.Reward
		e.advs = append(e.advs, *r.Advantage)
		if r.Turn > 0 && r.RewardComponents[1].Name != "srpo" {
			t.Fatalf("turn %d row lacks srpo: %+v", r.Turn, r.RewardComponents)
		}
	}
	for task, eps := range byTask {
		var mean float64
		for _, e := range eps {
			mean += e.ret
		}
		mean /= float64(len(eps))
		for i, e := range eps {
			for _, a := range e.advs {
				if math.Abs(a-(e.ret-mean)) > 1e-12 {
					t.Errorf("%s episode %d: advantage %v, want return %v - mean %v", task, i, a, e.ret, mean)
				}
			}
		}
	}
}

// Critique-GRPO: G-1 initial responses, one refinement placed as a response
// to the original prompt, flagged off-policy, with the critique in its
// metadata; dr_grpo advantages over all G.
func TestCritiqueGRPO(t *testing.T) {
	for _, mode := range []string{"verdict_gt", "verdict", "cot"} {
		t.Run(mode, func(t *testing.T) {
			tasks, answers := writeTasks(t, 10)
			srv := fakeserver.New(fakeserver.AnswerBySeed(answers))
			defer srv.Close()
			critic := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply {
				return fakeserver.Reply{Text: "Step 1 adds wrongly. Conclusion: incorrect"}
			})
			defer critic.Close()
			extra := fmt.Sprintf("critique: {mode: %s, critic: {base_url: %s, model: critic-m}}\nadvantage: {estimator: dr_grpo}\n", mode, critic.BaseURL())
			cfg := episodeConfig(t, srv, tasks, extra)
			if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
				t.Fatal(err)
			}
			rows := readAll(t, cfg.Output.Dir)
			if len(rows) != 40 {
				t.Fatalf("%d rows", len(rows))
			}
			for i, r := range rows {
				refinement := r.SampleIndex == 3
				if r.OffPolicy != refinement || len(r.Prompt) != 1 || r.Turn != 0 {
					t.Fatalf("row %d: off_policy %v, prompt %d msgs, turn %d", i, r.OffPolicy, len(r.Prompt), r.Turn)
				}
				if !refinement {
					continue
				}
				var meta struct {
					Critique string
					From     int               `json:"refined_from"`
					Prompt   []rollout.Message `json:"refinement_prompt"`
				}
				if err := json.Unmarshal([]byte(*r.ResponseMetadata), &meta); err != nil {
					t.Fatal(err)
				}
				if meta.From < 0 || meta.From > 2 || len(meta.Prompt) != 3 || !strings.HasPrefix(meta.Critique, "Critique:") ||
					meta.Prompt[1].Content != rows[i-3+meta.From].Response {
					t.Fatalf("refinement metadata %+v", meta)
				}
				switch mode {
				case "verdict_gt":
					if strings.Contains(meta.Critique, "incorrect") && !strings.Contains(meta.Critique, *r.Reference) {
						t.Errorf("verdict_gt critique lacks the reference: %q", meta.Critique)
					}
				case "cot":
					if !strings.Contains(meta.Critique, "Conclusion: incorrect") {
						t.Errorf("cot critique not from the critic: %q", meta.Critique)
					}
				}
				// dr_grpo: A = r - mean over all 4 samples.
				var mean float64
				for _, o := range rows[i-3 : i+1] {
					mean += *o.Reward / 4
				}
				if math.Abs(*r.Advantage-(*r.Reward-mean)) > 1e-12 {
					t.Errorf("advantage %v, reward %v, mean %v", *r.Advantage, *r.Reward, mean)
				}
			}
			if mode == "cot" && critic.Count() == 0 {
				t.Error("the critic was never called")
			}
		})
	}
}
