package pipeline

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

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
			if cfg.AgentR != nil {
				t.Skip("agent_r writes sft through splice.ExecuteAgentR; TestAgentRPreset in pipeline/splice runs it")
			}
			tasks, answers := writeTasks(t, 6)
			srv := fakeserver.New(fakeserver.AnswerBySeed(answers))
			defer srv.Close()
			cfg.Source.Path, cfg.Endpoint.BaseURL, cfg.Output.Dir = tasks, srv.BaseURL(), t.TempDir()
			m, err := Execute(context.Background(), cfg, JobOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkManifest(t, cfg.Output.Dir, m)
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
					if !found && !(name == "score_bonus" && r.Turn == 0) {
						t.Fatalf("row %s/%d turn %d lacks component %s", r.TaskID, r.SampleIndex, r.Turn, name)
					}
				}
			}
			if cfg.Episode.Pairs && !strings.Contains(strings.Join(keys(m.Datasets), ","), "pairs") {
				t.Error("no pairs dataset")
			}
		})
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
