package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redraft/redraft/rollout"
)

// The score-code preset against the real llama-server: every episode runs
// both turns, each program runs in the sandbox, the revision's prompt is
// the attempt and SCoRe's instruction, and the transitions and the SCoRe
// bonus follow from the executed verdicts.
func TestScoreCodeLlama(t *testing.T) {
	cfg := codePresetOnLlama(t, "score-code", 192)
	m, err := Execute(context.Background(), cfg, JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkManifest(t, cfg.Output.Dir, m)
	checkValid(t, cfg.Output.Dir)
	rows := readAll(t, cfg.Output.Dir)
	if len(rows) != 2*2*2 {
		t.Fatalf("%d rows, want 8 (2 problems, 2 episodes, 2 turns)", len(rows))
	}
	first := map[string]bool{}
	for _, r := range rows {
		where := fmt.Sprintf("%s sample %d turn %d", r.TaskID, r.SampleIndex, r.Turn)
		if r.Error != nil || r.Correct == nil || executionOf(t, r) == nil {
			t.Fatalf("%s: error %v, correct %v, execution %v", where, r.Error, r.Correct, r.ResponseMetadata)
		}
		key := fmt.Sprintf("%s/%d", r.TaskID, r.SampleIndex)
		if r.Turn == 0 {
			first[key] = *r.Correct
			continue
		}
		if last := r.Prompt[len(r.Prompt)-1].Content; last != rollout.SCoReInstruction {
			t.Errorf("%s: the revision's prompt ends with %q", where, last)
		}
		tr := map[bool]string{false: "i", true: "c"}
		if want := tr[first[key]] + "->" + tr[*r.Correct]; deref(r.Transition) != want {
			t.Errorf("%s: transition %q, want %q", where, deref(r.Transition), want)
		}
		var bonus *float64
		for _, c := range r.RewardComponents {
			if c.Name == "score_bonus" {
				bonus = c.Value
			}
		}
		r1, r2 := map[bool]float64{false: 0, true: 1}[first[key]], map[bool]float64{false: 0, true: 1}[*r.Correct]
		if bonus == nil || *bonus != 10*(r2-r1) {
			t.Errorf("%s: score_bonus %v, want %v", where, bonus, 10*(r2-r1))
		}
	}
}

// codePresetOnLlama loads a code preset pointed at the real llama-server
// (skipping, or failing under REDRAFT_REQUIRE_LLAMA, without one) and the
// sandbox, on 2 HumanEval problems with 2 samples of at most maxTokens.
func codePresetOnLlama(t *testing.T, preset string, maxTokens int) *Config {
	t.Helper()
	url := llamaURL(t)
	requireSandbox(t)
	path, _ := humanEvalFile(t, 2)
	cfg, err := LoadConfig("../configs/presets/" + preset + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Source.Path, cfg.Output.Dir = path, t.TempDir()
	cfg.Endpoint.BaseURL, cfg.Endpoint.Model, cfg.Endpoint.MaxInFlight = url, llamaModel, 4
	cfg.Endpoint.Timeout = rollout.Duration(3 * time.Minute)
	cfg.Sampling.N, cfg.Sampling.MaxTokens = 2, &maxTokens
	return cfg
}
