package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/doccheck"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/fakeserver"
	"github.com/redraft/redraft/validate"
)

// The crafted self-verify server: a solution is a correct boxed answer, a
// wrong boxed answer or no final answer (by the seed mod 3), and a
// verification is \boxed{correct}, \boxed{incorrect}, a "Verdict:" line or
// no verdict at all (by the seed mod 4).
func selfVerifyResponder(answers map[string]int, verdicts []string) fakeserver.Responder {
	return func(req *fakeserver.Request) fakeserver.Reply {
		last := req.Messages[len(req.Messages)-1].Content
		if strings.Contains(last, "Proposed solution:") {
			return fakeserver.Reply{Text: verdicts[*req.Seed%4]}
		}
		a := answers[last]
		switch *req.Seed % 3 {
		case 0:
			return fakeserver.Reply{Text: fmt.Sprintf(`Adding gives \boxed{%d}.`, a)}
		case 1:
			return fakeserver.Reply{Text: fmt.Sprintf(`Adding gives \boxed{%d}.`, a+1)}
		}
		return fakeserver.Reply{Text: "Let me think. First, 2 apples"}
	}
}

// Self-verification end to end: solve and verify rows in separate groups,
// generation rewards 1 / -0.5 / -1, match rewards 1 / 0 / null by the
// verdict, and every verify row explaining its reward; with label verdicts
// and with score verdicts.
func TestSelfVerifyRecipe(t *testing.T) {
	t.Run("label", func(t *testing.T) {
		testSelfVerify(t, rewards.VerdictLabel, []string{
			`All steps hold. \boxed{correct}`, `Step 1 is wrong. \boxed{incorrect}`,
			"I re-added the numbers. Verdict: incorrect", "I cannot tell whether this is right.",
		}, []any{"correct", "incorrect", "incorrect", nil})
	})
	t.Run("score", func(t *testing.T) {
		testSelfVerify(t, rewards.VerdictScore, []string{
			`All steps hold. \boxed{1}`, `The boxed answer is wrong. \boxed{-0.5}`,
			"No final answer. Score: -1", `I cannot tell; maybe \boxed{correct}.`,
		}, []any{1.0, -0.5, -1.0, nil})
	})
}

// testSelfVerify runs a self-verify job whose verifications say verdicts[seed
// mod 4], which parse to want (nil: no verdict).
func testSelfVerify(t *testing.T, kind string, verdicts []string, want []any) {
	tasks, answers := writeTasks(t, 10)
	srv := fakeserver.New(selfVerifyResponder(answers, verdicts))
	defer srv.Close()
	cfg := episodeConfig(t, srv, tasks, `
self_verify: {}
reward: {weights: {self_verify_gen: 1, self_verify_match: 1}, self_verify: {verdict: `+kind+`}}
`)
	wantTemplate := rollout.DefaultVerifyTemplate
	if kind == rewards.VerdictScore {
		wantTemplate = rollout.DefaultVerifyScoreTemplate
	}
	if cfg.SelfVerify.Template != wantTemplate {
		t.Fatalf("%s verdicts with template %q", kind, cfg.SelfVerify.Template)
	}
	m, err := Execute(context.Background(), cfg, JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkManifest(t, cfg.Output.Dir, m)
	checkValid(t, cfg.Output.Dir)
	rows := readAll(t, cfg.Output.Dir)
	if len(rows) != 80 || m.Datasets["rl"].Groups != 20 || srv.Count() != 80 {
		t.Fatalf("%d rows in %d groups for %d requests", len(rows), m.Datasets["rl"].Groups, srv.Count())
	}
	solve := map[string]export.RLRow{}
	byGroup := map[string][]export.RLRow{}
	seen := map[string]bool{}
	for i, r := range rows {
		byGroup[r.GroupID] = append(byGroup[r.GroupID], r)
		key := fmt.Sprintf("%s/%d", r.TaskID, r.SampleIndex)
		wantTurn := (i / 4) % 2
		if int(r.Turn) != wantTurn || r.GroupID != GroupID(r.TaskID, wantTurn) {
			t.Fatalf("row %d: turn %d group %s", i, r.Turn, r.GroupID)
		}
		seed := rollout.DeriveSeed(7, r.TaskID, int(r.SampleIndex), int(r.Turn))
		if *r.Seed != seed {
			t.Fatalf("row %d: seed %d, want %d", i, *r.Seed, seed)
		}
		if r.Turn == 0 {
			want := []float64{1, -0.5, -1}[seed%3]
			c := r.RewardComponents
			if len(c) != 1 || c[0].Name != rewards.SelfVerifyGen || *c[0].Value != want || *r.Reward != want {
				t.Fatalf("solve row %s: components %+v reward %v, want %v", key, c, *r.Reward, want)
			}
			seen[fmt.Sprint("gen ", want)] = true
			solve[key] = r
			continue
		}
		sol := solve[key]
		// The verify prompt is built on exactly the sampled solution.
		if len(r.Prompt) != 1 || !strings.Contains(r.Prompt[0].Content, sol.Response) || !strings.Contains(r.Prompt[0].Content, sol.Prompt[0].Content) {
			t.Fatalf("verify row %s: prompt %+v", key, r.Prompt)
		}
		var meta struct {
			Verifies   int `json:"verifies_sample"`
			SelfVerify struct {
				Solution int     `json:"solution_sample"`
				Reward   float64 `json:"solution_reward"`
				Answer   string  `json:"solution_answer"`
				Verdict  any     `json:"verdict"`
				Expected any     `json:"expected_verdict"`
				Correct  *bool   `json:"solution_correct"`
			} `json:"self_verify"`
		}
		if err := json.Unmarshal([]byte(*r.ResponseMetadata), &meta); err != nil {
			t.Fatal(err)
		}
		sv := meta.SelfVerify
		// What a right verdict says: the label of the solution's
		// correctness, or its exact generation reward.
		var wantExpected any = *sol.Reward
		if kind == rewards.VerdictLabel {
			wantExpected = "incorrect"
			if *sol.Reward == 1 {
				wantExpected = "correct"
			}
		}
		if meta.Verifies != int(r.SampleIndex) || sv.Solution != int(r.SampleIndex) || sv.Reward != *sol.Reward ||
			sv.Expected != wantExpected || ptrString(sol.ExtractedAnswer) != sv.Answer || *sv.Correct != *sol.Correct {
			t.Fatalf("verify row %s: metadata %s for solution reward %v", key, *r.ResponseMetadata, *sol.Reward)
		}
		if r.Correct != nil {
			t.Errorf("verify row %s: correct %v; a verdict is not graded as an answer", key, *r.Correct)
		}
		c := r.RewardComponents
		if len(c) != 1 || c[0].Name != rewards.SelfVerifyMatch {
			t.Fatalf("verify row %s: components %+v", key, c)
		}
		verdict := want[seed%4]
		if verdict == nil {
			if c[0].Value != nil || r.Reward != nil || !strings.Contains(ptrString(c[0].Reason), "no verdict") || sv.Verdict != nil || r.ExtractedAnswer != nil {
				t.Fatalf("verify row %s without a verdict: %+v reward %v", key, c[0], r.Reward)
			}
			seen["match null"] = true
			continue
		}
		want := 0.0
		if verdict == wantExpected {
			want = 1
		}
		if sv.Verdict != verdict || *r.ExtractedAnswer != fmt.Sprint(verdict) || *c[0].Value != want || *r.Reward != want {
			t.Fatalf("verify row %s: verdict %v (answer %s), component %+v, want %v -> %v", key, sv.Verdict, *r.ExtractedAnswer, c[0], verdict, want)
		}
		seen[fmt.Sprint("match ", want)] = true
	}
	if kind == rewards.VerdictLabel {
		checkDocRow(t, "docs/recipes/self-verify.md", doccheck.One(t, "..", "docs/recipes/self-verify.md", "TestSelfVerifyRecipe"), rows)
	}
	for _, k := range []string{"gen 1", "gen -0.5", "gen -1", "match 1", "match 0", "match null"} {
		if !seen[k] {
			t.Errorf("case %q never occurred; the crafted answers do not exercise it", k)
		}
	}
	// Advantages are computed within each group: a verify group's
	// statistics come from verify rewards only.
	for id, g := range byGroup {
		var sum float64
		n := 0
		for _, r := range g {
			if r.Reward != nil {
				sum += *r.Reward
				n++
			}
		}
		if int(g[0].GroupSize) != n || (n > 0 && math.Abs(*g[0].GroupRewardMean-sum/float64(n)) > 1e-12) {
			t.Errorf("group %s: size %d mean %v, want %d and %v", id, g[0].GroupSize, g[0].GroupRewardMean, n, sum/float64(n))
		}
	}
}

// checkValid runs the output contract checks of `redraft validate`.
func checkValid(t *testing.T, dir string) {
	t.Helper()
	rep, err := validate.Dir(context.Background(), dir, validate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		var b strings.Builder
		rep.WriteText(&b)
		t.Fatalf("output is not valid:\n%s", b.String())
	}
}

func TestSelfVerifyConfigErrors(t *testing.T) {
	base := `
name: x
source: {kind: tasks, path: t.jsonl}
endpoint: {base_url: "http://127.0.0.1:1/v1", model: m}
output: {dir: out}
`
	tests := []struct{ name, extra, want string }{
		{"components need the section", "reward: {weights: {self_verify_gen: 1, self_verify_match: 1}}", "need the self_verify section"},
		{"both components", "self_verify: {}\nreward: {weights: {self_verify_gen: 1}}", "needs both"},
		{"no other parts", "self_verify: {}\nreward: {weights: {self_verify_gen: 1, self_verify_match: 1, verifiable: 1}}", "reward.weights.verifiable"},
		{"no episodes", "self_verify: {}\nreward: {weights: {self_verify_gen: 1, self_verify_match: 1}}\nepisode: {turns: 2, feedback: fixed}", "cannot be combined"},
		{"groups stay apart", "self_verify: {}\nreward: {weights: {self_verify_gen: 1, self_verify_match: 1}}\nadvantage: {group_by: trajectory}", "group_by trajectory"},
		{"template placeholders", "self_verify: {template: \"Check {solution}\"}\nreward: {weights: {self_verify_gen: 1, self_verify_match: 1}}", "{question}"},
		{"verdict kind", "self_verify: {}\nreward: {weights: {self_verify_gen: 1, self_verify_match: 1}, self_verify: {verdict: maybe}}", "neither label nor score"},
		{"pam turns", "episode: {turns: 3, feedback: fixed, sft: pam}", "turns 2"},
		{"ptr turns", "episode: {turns: 1, sft: ptr}", "turns >= 2"},
		{"sft feedback", "episode: {turns: 2, feedback: retry_if_wrong, sft: pam}", "feedback fixed"},
		{"sft mode", "episode: {turns: 2, feedback: fixed, sft: star}", `"star"`},
		{"sft and dropped groups", "episode: {turns: 2, feedback: fixed, sft: pam}\nadvantage: {drop_zero_variance: true}", "drop_zero_variance"},
		{"chat format needs a tokenizer", "output: {dir: out, chat_format: qwen3}", "needs output.tokenizer"},
		{"chat format", "episode: {turns: 2, feedback: fixed, sft: ptr}\noutput: {dir: out, tokenizer: tok.json, chat_format: jinja}", "output.chat_format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A later "output" key replaces the base one.
			src := base + tt.extra + "\n"
			if strings.Contains(tt.extra, "output:") {
				src = strings.Replace(base, "output: {dir: out}\n", "", 1) + tt.extra + "\n"
			}
			_, err := ParseConfig("c.yaml", strings.NewReader(src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	// The valid forms, with their defaults.
	cfg, err := ParseConfig("c.yaml", strings.NewReader(base+"self_verify: {}\nreward: {weights: {self_verify_gen: 1, self_verify_match: 0, overlong: 1}, overlong: {max_tokens: 100, buffer: 10}}\n"))
	if err != nil || cfg.SelfVerify.Template != rollout.DefaultVerifyTemplate {
		t.Fatalf("self_verify: %v %+v", err, cfg)
	}
	// The rl rows have a token track of their own: a tokenizer needs no sft
	// dataset.
	src := strings.Replace(base, "output: {dir: out}\n", "output: {dir: out, tokenizer: tok.json}\n", 1)
	if cfg, err := ParseConfig("c.yaml", strings.NewReader(src)); err != nil || cfg.Output.ChatFormat != "chatml" {
		t.Fatalf("tokenizer without episode.sft: %v %+v", err, cfg)
	}
	for mode, instr := range map[string]string{"pam": rollout.PAMInstruction, "ptr": rollout.PTRInstruction, "none": rollout.SCoReInstruction} {
		cfg, err := ParseConfig("c.yaml", strings.NewReader(base+"episode: {turns: 2, feedback: fixed, sft: "+mode+"}\n"))
		if err != nil || cfg.Episode.Instruction != instr || (mode == "none") != (cfg.Episode.SFT == "") {
			t.Fatalf("sft %s: %v, instruction %q, sft %q", mode, err, cfg.Episode.Instruction, cfg.Episode.SFT)
		}
	}
}
