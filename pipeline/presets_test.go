package pipeline

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// Every preset in configs/presets parses and runs end to end against the
// in-process server, with its endpoint, task file and output redirected.
func TestPresetsRun(t *testing.T) {
	presets, err := filepath.Glob("../configs/presets/*.yaml")
	if err != nil || len(presets) < 5 {
		t.Fatalf("presets: %v %v", presets, err)
	}
	for _, p := range presets {
		t.Run(filepath.Base(p), func(t *testing.T) {
			cfg, err := LoadConfig(p)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Splice != nil {
				t.Skip("a splice job (step-splice); cmd/redraft's TestStepSplicePreset runs it")
			}
			if cfg.AgentR != nil {
				t.Skip("agent_r writes sft through splice.ExecuteAgentR; TestAgentRPreset in pipeline/splice runs it")
			}
			if cfg.Reward.Grader == "plugin" {
				t.Skip("its verifier plug-in scores reasoning-gym tasks; TestReasoningGymPreset runs it with them")
			}
			tasks, answers := writeTasks(t, 6)
			respond := fakeserver.AnswerBySeed(answers)
			switch {
			case cfg.SelfVerify != nil:
				// The default template asks for this verdict.
				respond = fakeserver.Verdicts(`\boxed{correct}`, respond)
			case cfg.Episode.SFT == SFTPTR:
				respond = fakeserver.Thoughts(respond, false)
			case cfg.Source.Layout == rollout.LayoutHumanEval:
				// Code presets (score-code, self-debug): HumanEval
				// problems, every program run in the sandbox.
				requireSandbox(t)
				path, probs := humanEvalFile(t, 3)
				tasks, respond = path, codeBySeed(probs)
			}
			srv := fakeserver.New(respond)
			defer srv.Close()
			cfg.Source.Path, cfg.Endpoint.BaseURL, cfg.Output.Dir = tasks, srv.BaseURL(), t.TempDir()
			m, err := Execute(context.Background(), cfg, JobOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkManifest(t, cfg.Output.Dir, m)
			checkValid(t, cfg.Output.Dir)
			rows := readAll(t, cfg.Output.Dir)
			// Every request is a row, except Critique-GRPO's refinements: one
			// per initial response is sampled, one per group is kept.
			wantRequests := int64(len(rows))
			if cfg.Critique != nil {
				n := int64(cfg.Sampling.N)
				wantRequests = int64(len(rows)) / n * (2*n - 2)
			}
			if len(rows) == 0 || srv.Count() != wantRequests {
				t.Fatalf("%d rows for %d requests, want %d requests", len(rows), srv.Count(), wantRequests)
			}
			for _, r := range rows {
				for name := range cfg.Reward.Weights {
					found := false
					for _, c := range r.RewardComponents {
						found = found || c.Name == name
					}
					if !found && !componentAbsentByDesign(name, r) {
						t.Fatalf("row %s/%d turn %d lacks component %s", r.TaskID, r.SampleIndex, r.Turn, name)
					}
				}
			}
			if cfg.Episode.Pairs && !strings.Contains(strings.Join(keys(m.Datasets), ","), "pairs") {
				t.Error("no pairs dataset")
			}
			if sft := m.Datasets["sft"]; (cfg.Episode.SFT != "") != (sft.Rows > 0) || len(readSFT(t, cfg.Output.Dir)) != int(sft.Rows) {
				t.Errorf("episode.sft %q: sft dataset %+v", cfg.Episode.SFT, sft)
			}
			if cfg.SelfVerify != nil {
				// Every verification got a verdict from the server, so every
				// row has a reward.
				for _, r := range rows {
					if r.Reward == nil {
						t.Fatalf("row %s/%d turn %d: null reward %s", r.TaskID, r.SampleIndex, r.Turn, ptrString(r.RewardReason))
					}
				}
			}
		})
	}
}

// componentAbsentByDesign says whether a weighted component does not apply
// to a row: revision terms at turn 0, self-verification's generation reward
// on verifications and its match reward on solutions.
func componentAbsentByDesign(name string, r export.RLRow) bool {
	switch name {
	case "score_bonus", rewards.SelfVerifyMatch:
		return r.Turn == 0
	case rewards.SelfVerifyGen:
		return r.Turn == 1
	}
	return false
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
