package agents

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/redraft/redraft/audit"
	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/envtest"
	"github.com/redraft/redraft/internal/llamatest"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rollout/agent"
	"github.com/redraft/redraft/rollout/env"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// These tests run the real ScienceWorld server (scripts/env-server.sh,
// envtest.Start) and, for the model, the real llama-server at
// REDRAFT_LLAMA_URL (scripts/test.sh starts both; REDRAFT_REQUIRE_ENVS=1 and
// REDRAFT_REQUIRE_LLAMA=1 make their absence a failure).

// scienceTasks are two ScienceWorld tasks with short gold paths (8 and 13
// actions) whose first actions are the same on every reset (the gold route
// of some tasks, lifespan-longest-lived's, changes from reset to reset).
const scienceTasks = `{"id": "living-2", "task": "find-living-thing", "variation": 2}
{"id": "power-1", "task": "power-component", "variation": 1}
`

const qwen3 = "tokenizer: ../../tokenizer/testdata/synthetic.json, chat_format: qwen3"

func scienceConfig(t *testing.T, dir, world, environment, endpoint, sampling string) *pipeline.Config {
	t.Helper()
	tasks := filepath.Join(t.TempDir(), "tasks.jsonl")
	if err := os.WriteFile(tasks, []byte(scienceTasks), 0o644); err != nil {
		t.Fatal(err)
	}
	y := fmt.Sprintf("name: sciworld\nsource: {kind: environment, path: %q}\nenvironment: {url: %s, env: scienceworld%s}\n%ssampling: %s\noutput: {dir: %q, %s}\n",
		tasks, world, environment, endpoint, sampling, dir, qwen3)
	cfg, err := pipeline.ParseConfig("sciworld.yaml", strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// golds resets each task with the oracle and returns its gold actions by
// task description (the first line of the first observation).
func golds(t *testing.T, world string) map[string][]string {
	t.Helper()
	c, err := env.NewClient(env.Config{URL: world, Env: "scienceworld"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(scienceTasks), "\n") {
		rec, err := agent.ParseTask("tasks", 1, []byte(line), "scienceworld")
		if err != nil {
			t.Fatal(err)
		}
		rec.Task.Oracle = true
		s, err := c.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		obs, err := s.Reset(context.Background(), rec.Task)
		s.Close(context.Background())
		if err != nil || len(obs.Gold) == 0 {
			t.Fatalf("%s: %v (%d gold actions)", rec.ID, err, len(obs.Gold))
		}
		desc, _, _ := strings.Cut(obs.Text, "\n")
		out[desc] = obs.Gold
	}
	return out
}

// The oracle solves both tasks: the audit's success rate is 100%.
func TestScienceWorldOracle(t *testing.T) {
	world := envtest.Start(t, "../..", "scienceworld")
	dir := t.TempDir()
	m, err := Execute(context.Background(), scienceConfig(t, dir, world, ", actor: oracle", "", "{n: 1}"), pipeline.JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Dir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if a := rep.Agents; a == nil || a.Overall.Episodes != 2 || a.Overall.SuccessRate == nil || *a.Overall.SuccessRate != 1 || m.Datasets["sft"].Rows != 2 {
		t.Fatalf("agents audit %+v, sft rows %d", rep.Agents, m.Datasets["sft"].Rows)
	}
	checkValid(t, dir)
}

// A scripted policy plays the gold path but makes a known wrong move at
// step 2 and then insists on it: every episode fails, Agent-R's first bad
// step is 2 on every episode, and each row masks exactly the two good
// steps, the wrong one and their observations, and trains the revision and
// the oracle's continuation.
func TestScienceWorldScriptedWrongMove(t *testing.T) {
	const k = 2
	world := envtest.Start(t, "../..", "scienceworld")
	gold := golds(t, world)
	var mu sync.Mutex
	var unknown []string
	model := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		desc, _, _ := strings.Cut(req.Messages[1].Content, "\n")
		g, ok := gold[desc]
		if !ok {
			mu.Lock()
			unknown = append(unknown, desc)
			mu.Unlock()
			return fakeserver.Reply{Text: "look around"}
		}
		step := 0
		for _, m := range req.Messages {
			if m.Role == "assistant" {
				step++
			}
		}
		if step >= k {
			return fakeserver.Reply{Text: "Action: fly to the moon"}
		}
		return fakeserver.Reply{Text: "Action: " + g[step]}
	})
	defer model.Close()
	dir := t.TempDir()
	// Two tasks whose gold paths start alike on every reset (ScienceWorld's
	// gold route may change from reset to reset).
	cfg := scienceConfig(t, dir, world, ", recipe: agent-r, max_steps: 5", fmt.Sprintf("endpoint: {base_url: %s, model: scripted}\n", model.BaseURL()), "{n: 2}")
	if _, err := Execute(context.Background(), cfg, pipeline.JobOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(unknown) > 0 {
		t.Fatalf("requests for unknown tasks: %q", unknown)
	}
	rl := readRows[export.RLRow](t, dir, "rl")
	if len(rl) != 4 {
		t.Fatalf("%d rl rows", len(rl))
	}
	for _, r := range rl {
		in := episodeOf(t, r)
		if in.FirstBadStep == nil || *in.FirstBadStep != k || in.FirstBadSignal != agent.SignalInvalid || *in.Success || in.End != agent.EndMaxSteps {
			t.Errorf("%s/%d: first bad step %v (%s), success %v, end %s", r.TaskID, r.SampleIndex, in.FirstBadStep, in.FirstBadSignal, *in.Success, in.End)
		}
	}
	sft := readRows[export.SFTRow](t, dir, "sft")
	if len(sft) != 4 {
		t.Fatalf("%d sft rows (every episode's revision should succeed with the oracle)", len(sft))
	}
	for _, r := range sft {
		checkAgentRMasks(t, r, k)
	}
	checkValid(t, dir)
}

// checkAgentRMasks checks an Agent-R row whose first bad step is k: the
// prompt, the k good steps, the bad one and every observation masked; the
// revision message and every action after it trained.
func checkAgentRMasks(t *testing.T, r export.SFTRow, k int) {
	t.Helper()
	rev := 2 + 2*(k+1) // system, user, then k+1 actions with their observations
	for i, m := range r.Messages {
		want := int32(0)
		switch {
		case i < rev:
		case m.Role == "assistant":
			want = 1
		}
		if m.LossMask != want {
			t.Errorf("%s message %d (%s): loss_mask %d, want %d", r.ID, i, m.Role, m.LossMask, want)
		}
		for _, s := range m.Segments {
			if s.Trainable != (want == 1) {
				t.Errorf("%s message %d: segment %s trainable %v", r.ID, i, s.Role, s.Trainable)
			}
		}
	}
	if len(r.Messages) <= rev || r.Messages[rev].Segments[0].Role != pipeline.SegRevision || r.Messages[rev-2].Segments[0].Role != pipeline.SegErroneousStep {
		t.Errorf("%s: %s", r.ID, roles(r))
	}
}

// SmolLM2 acting in ScienceWorld (it acts badly; this checks the plumbing):
// agent-r and step rows mask exactly the bad prefix or the erroneous step
// and the observations.
func TestScienceWorldLlama(t *testing.T) {
	llama := llamatest.URL(t)
	world := envtest.Start(t, "../..", "scienceworld")
	endpoint := fmt.Sprintf("endpoint: {base_url: %s, model: %s, max_in_flight: 2}\n", llama, llamatest.Model)
	for _, recipe := range []string{"agent-r", "step"} {
		t.Run(recipe, func(t *testing.T) {
			dir := t.TempDir()
			cfg := scienceConfig(t, dir, world, ", recipe: "+recipe+", max_steps: 3", endpoint, "{n: 1, temperature: 0.7, max_tokens: 24}")
			m, err := Execute(context.Background(), cfg, pipeline.JobOptions{})
			if err != nil {
				t.Fatal(err)
			}
			rl := readRows[export.RLRow](t, dir, "rl")
			sft := readRows[export.SFTRow](t, dir, "sft")
			t.Logf("%d episodes, %d rows, skipped: %+v", len(rl), len(sft), m.Skipped)
			if len(rl) != 2 || len(sft) == 0 {
				t.Fatalf("%d rl rows, %d sft rows", len(rl), len(sft))
			}
			for _, r := range sft {
				var meta struct {
					Revision struct {
						FirstBadStep int  `json:"first_bad_step"`
						Success      bool `json:"branch_success"`
					}
				}
				if err := json.Unmarshal([]byte(*r.Metadata), &meta); err != nil || !meta.Revision.Success {
					t.Fatalf("%s: metadata %s", r.ID, *r.Metadata)
				}
				k := meta.Revision.FirstBadStep
				if recipe == "agent-r" {
					checkAgentRMasks(t, r, k)
					continue
				}
				// STeP: the good steps trained, the erroneous one (2+2k) and
				// observations masked, the reflection trained.
				for i, msg := range r.Messages {
					want := int32(0)
					if msg.Role == "assistant" && i != 2+2*k {
						want = 1
					}
					if msg.LossMask != want {
						t.Errorf("%s message %d (%s): loss_mask %d, want %d: %s", r.ID, i, msg.Role, msg.LossMask, want, roles(r))
					}
				}
				if r.Messages[2+2*k].Segments[0].Role != pipeline.SegErroneousStep || r.Messages[4+2*k].Segments[0].Role != pipeline.SegReflection {
					t.Errorf("%s: %s", r.ID, roles(r))
				}
			}
			checkValid(t, dir)
		})
	}
}
