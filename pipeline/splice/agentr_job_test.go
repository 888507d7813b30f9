package splice

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// wrongSolver answers a task with a three-step solution whose second step
// adds wrongly, and a continuation with the right total for even seeds.
func wrongSolver(answers map[string]int) fakeserver.Responder {
	cont := branchPolicy(answers)
	return func(req *fakeserver.Request) fakeserver.Reply {
		if len(req.Messages) == 1 {
			a := answers[req.Messages[0].Content]
			return fakeserver.Reply{Text: fmt.Sprintf("Step 1: Read the numbers.\nStep 2: Adding them gives %d.\nStep 3: So the answer is %d.\n#### %d", a+3, a+3, a+3)}
		}
		return cont(req)
	}
}

// TestAgentRPreset runs configs/presets/agent-r.yaml end to end against the
// in-process server (policy) and a second one (step judge), from tasks and
// from recorded GSM8K solutions.
func TestAgentRPreset(t *testing.T) {
	for _, kind := range []string{"tasks", "rollouts"} {
		t.Run(kind, func(t *testing.T) {
			cfg, err := pipeline.LoadConfig("../../configs/presets/agent-r.yaml")
			if err != nil {
				t.Fatal(err)
			}
			answers, plan := map[string]int{}, map[string]string{}
			var lines []string
			for i := range 5 {
				q := fmt.Sprintf("What is %d + %d?", i, i+1)
				answers[q], plan[q] = 2*i+1, "bad:2"
				lines = append(lines, fmt.Sprintf(`{"id": "toy-%d", "prompt": %q, "reference": %d, "data_source": "toy"}`, i, q, 2*i+1))
			}
			solutions := 5 * cfg.Sampling.N
			inputSkips := 0
			if kind == "tasks" {
				// A bad record, dropped under on_error: skip and listed
				// in the manifest after the solutions without a row.
				lines = append(lines, `{"id": "toy-bad", "prompt": 5, "reference": 1}`)
				cfg.Source.OnError, inputSkips = "skip", 1
				p := filepath.Join(t.TempDir(), "tasks.jsonl")
				os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
				cfg.Source.Path = p
			} else {
				// The first 10 GSM8K test problems with 4 real solutions
				// each; the judge calls step 1 of every solution Bad, so
				// each good branch is a fresh sample, kept right or wrong.
				cfg.Source.Kind, cfg.Source.Layout = "rollouts", "gsm8k-example-solutions"
				cfg.Source.Path = writeHead(t, "../../testdata/gsm8k/example_model_solutions.jsonl", 10)
				cfg.AgentR.Keep = "all"
				solutions = 40
			}
			pol := fakeserver.New(wrongSolver(answers))
			defer pol.Close()
			js := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
				if kind == "rollouts" {
					return fakeserver.Reply{Text: "Verdict: Bad"}
				}
				return stepJudgeServer(plan)(req)
			})
			defer js.Close()
			cfg.Endpoint.BaseURL, cfg.AgentR.StepJudge.BaseURL, cfg.Output.Dir = pol.BaseURL(), js.BaseURL(), t.TempDir()
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			groups := 0
			m, err := ExecuteAgentR(context.Background(), cfg, pipeline.JobOptions{OnGroup: func(int64, int) { groups++ }})
			if err != nil {
				t.Fatal(err)
			}
			ds := m.Datasets["sft"]
			if m.Status != export.StatusComplete || ds.Schema != export.SFTSchema || m.Source != "agent-r:"+kind || m.ConfigHash == "" {
				t.Fatalf("manifest %+v", m)
			}
			if int(ds.Rows)+len(m.Skipped)-inputSkips != solutions || ds.Rows == 0 || int(ds.Groups) != groups || m.SkippedTotal != int64(len(m.Skipped)) {
				t.Fatalf("%d rows in %d groups (%d reported), %d skipped (%d input records), of %d solutions", ds.Rows, ds.Groups, groups, len(m.Skipped), m.SkippedTotal, solutions)
			}
			if inputSkips > 0 {
				last := m.Skipped[len(m.Skipped)-1]
				if last.Line != 6 || last.Field != "prompt" {
					t.Fatalf("input skip %+v, want line 6 field prompt", last)
				}
				m.Skipped = m.Skipped[:len(m.Skipped)-1]
			}
			for _, s := range m.Skipped {
				if s.File != cfg.Source.Path || s.Line < 1 || !strings.Contains(s.Reason, " sample ") {
					t.Fatalf("skip %+v", s)
				}
				// Tasks: keep correct with 2 branches drops solutions
				// whose branches are both wrong. Rollouts: only the
				// recorded solutions that are already correct.
				want := "no good branch kept in 2 tries"
				if kind == "rollouts" {
					want = "solution is already correct"
				}
				if !strings.Contains(s.Reason, want) {
					t.Fatalf("skip %+v", s)
				}
			}
			if r := m.Rewards; r.Rows != ds.Rows || r.Graded != ds.Rows || r.Accuracy == nil || (kind == "tasks") != (*r.Accuracy == 1) {
				t.Fatalf("reward summary %+v", r)
			}
			rows := readSFT(t, cfg.Output.Dir)
			if int64(len(rows)) != ds.Rows {
				t.Fatalf("%d rows read", len(rows))
			}
			for _, r := range rows {
				if r.Recipe != "agent-r" || r.Reward == nil || (kind == "tasks" && *r.Reward != 1) || r.Messages[len(r.Messages)-1].Role != "assistant" {
					t.Fatalf("row %+v", r)
				}
			}
			// A rerun of the same configuration leaves the output alone.
			if _, err := ExecuteAgentR(context.Background(), cfg, pipeline.JobOptions{}); !errors.Is(err, pipeline.ErrAlreadyComplete) {
				t.Fatalf("rerun: %v", err)
			}
			// pipeline.Execute refuses the section instead of ignoring it.
			if _, err := pipeline.Execute(context.Background(), cfg, pipeline.JobOptions{}); err == nil || !strings.Contains(err.Error(), "agent_r") {
				t.Fatalf("Execute: %v", err)
			}
		})
	}
}

func writeHead(t *testing.T, path string, n int) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	p := filepath.Join(t.TempDir(), "head.jsonl")
	if err := os.WriteFile(p, []byte(strings.Join(lines[:n], "")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readSFT(t *testing.T, dir string) []export.SFTRow {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "data", "sft", "*.parquet"))
	var out []export.SFTRow
	for _, f := range files {
		rows, err := export.ReadRows[export.SFTRow](context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rows...)
	}
	return out
}

// TestAgentRSharded: an Agent-R run takes a shard like any job; the two
// shards of a 2-way split hold every row of the whole run once, and each
// task's rows are in the shard its id hashes to (rollout.ShardOf).
func TestAgentRSharded(t *testing.T) {
	cfg, err := pipeline.LoadConfig("../../configs/presets/agent-r.yaml")
	if err != nil {
		t.Fatal(err)
	}
	answers := map[string]int{}
	var lines []string
	for i := range 12 {
		q := fmt.Sprintf("What is %d + %d?", i, i+1)
		answers[q] = 2*i + 1
		lines = append(lines, fmt.Sprintf(`{"id": "toy-%d", "prompt": %q, "reference": %d, "data_source": "toy"}`, i, q, 2*i+1))
	}
	plan := map[string]string{}
	for q := range answers {
		plan[q] = "bad:2"
	}
	p := filepath.Join(t.TempDir(), "tasks.jsonl")
	os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	pol := fakeserver.New(wrongSolver(answers))
	defer pol.Close()
	js := fakeserver.New(stepJudgeServer(plan))
	defer js.Close()
	cfg.Source.Path, cfg.Endpoint.BaseURL, cfg.AgentR.StepJudge.BaseURL = p, pol.BaseURL(), js.BaseURL()
	run := func(shard rollout.Shard) []export.SFTRow {
		c := *cfg
		c.Output.Dir = t.TempDir()
		m, err := ExecuteAgentR(context.Background(), &c, pipeline.JobOptions{Shard: shard})
		if err != nil {
			t.Fatal(err)
		}
		if shard.Count > 1 && (m.Shard == nil || m.Shard.Index != shard.Index) {
			t.Fatalf("shard %+v: manifest shard %+v", shard, m.Shard)
		}
		return readSFT(t, c.Output.Dir)
	}
	whole := run(rollout.Shard{})
	var parts []export.SFTRow
	for i := range 2 {
		rows := run(rollout.Shard{Index: i, Count: 2})
		for _, r := range rows {
			if rollout.ShardOf(r.TaskID, 2) != i {
				t.Errorf("task %s in shard %d", r.TaskID, i)
			}
		}
		if len(rows) == 0 || len(rows) == len(whole) {
			t.Errorf("shard %d: %d rows of %d", i, len(rows), len(whole))
		}
		parts = append(parts, rows...)
	}
	key := func(r export.SFTRow) string { return r.ID }
	got, want := map[string]bool{}, map[string]bool{}
	for _, r := range parts {
		got[key(r)] = true
	}
	for _, r := range whole {
		want[key(r)] = true
	}
	if len(parts) != len(whole) || len(got) != len(want) {
		t.Fatalf("shards hold %d rows (%d distinct), the whole run %d", len(parts), len(got), len(whole))
	}
	for k := range want {
		if !got[k] {
			t.Errorf("row %s of the whole run is in no shard", k)
		}
	}
}
