package pipeline

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// scripts/local-model.sh sizes its slots so that every preset's longest
// request fits one: the task with its instructions (allowed 1,024 tokens;
// a GSM8K problem is about 150), the earlier answers the request carries
// (each up to max_tokens: the turns before the last, the response a
// critique or a verification is about, the critique itself, Agent-R's steps
// before the first bad one) and max_tokens for its own answer. A slot's
// context that ends a generation first is what cut 9 SCoRe turn-2 rows on
// llama-server's 2,048-token slots (issue 16).
func TestPresetsFitLocalModel(t *testing.T) {
	script, err := os.ReadFile("../scripts/local-model.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`REDRAFT_LOCAL_SLOT_CTX:-(\d+)`).FindSubmatch(script)
	if m == nil {
		t.Fatal("no REDRAFT_LOCAL_SLOT_CTX default in scripts/local-model.sh")
	}
	slot, _ := strconv.Atoi(string(m[1]))
	presets, err := filepath.Glob("../configs/presets/*.yaml")
	if err != nil || len(presets) < 5 {
		t.Fatalf("presets: %v %v", presets, err)
	}
	const task = 1024
	for _, p := range presets {
		cfg, err := LoadConfig(p)
		if err != nil {
			t.Fatal(err)
		}
		mt := cfg.Sampling.MaxTokens
		if cfg.Endpoint == nil || mt == nil {
			continue // no generation (step-splice), or no bound to check
		}
		carried := max(cfg.Episode.Turns, 1) - 1
		switch {
		case cfg.Critique != nil:
			carried += 2
		case cfg.SelfVerify != nil, cfg.AgentR != nil:
			carried++
		}
		need := task + (carried+1)*(*mt)
		if cfg.Episode.Feedback == "execution" {
			// Each revision also carries the execution feedback: the
			// failure, capped at 1,500 bytes (rewards' codeFeedback; a
			// byte is at most a token), and the instruction.
			need += (max(cfg.Episode.Turns, 1) - 1) * (1500 + 64)
		}
		t.Logf("%s: %d tokens at most (%d answers of %d carried)", filepath.Base(p), need, carried, *mt)
		if need > slot {
			t.Errorf("%s: its longest request may take %d tokens, over the local model's %d-token slots", filepath.Base(p), need, slot)
		}
	}
}
