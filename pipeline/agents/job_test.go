package agents

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/doccheck"
	"github.com/redraft/redraft/internal/envtest"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/agent"
	"github.com/redraft/redraft/rollout/fakeserver"
	"github.com/redraft/redraft/validate"
)

// wrongSeeds are the request seeds of step 1 of c3's two episodes (run seed
// 0): those make the wrong move, and the episode then insists on it, so it
// fails; a branch from step 1 is sent other seeds and counts right.
var wrongSeeds = map[int64]bool{
	rollout.DeriveSeed(0, "counting/count/2/0", 0, 1): true,
	rollout.DeriveSeed(0, "counting/count/2/0", 1, 1): true,
}

func countingPolicy(req *fakeserver.Request) fakeserver.Reply {
	return envtest.CountingAnswer(req, func(goal, step int, seed int64) bool { return goal == 3 && step == 1 && wrongSeeds[seed] })
}

// tasks: goals 1 to 4 (goal 3 gets the wrong move), and three faulty ones.
const tasksFile = `{"id": "c1", "task": "count", "variation": 0}
{"id": "c2", "task": "count", "variation": 1}
{"id": "c3", "task": "count", "variation": 2}
{"id": "c4", "task": "count", "variation": 3}
{"id": "f500", "task": "count", "variation": 3, "options": {"fault": "500", "fault_step": 1}}
{"id": "fhang", "task": "count", "variation": 3, "options": {"fault": "hang", "fault_step": 2}}
{"id": "fjunk", "task": "count", "variation": 3, "options": {"fault": "garbage"}}
`

type setup struct {
	env   *envtest.Server
	model *fakeserver.Server
	tasks string
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	s := &setup{env: envtest.New(t.Cleanup), model: fakeserver.New(countingPolicy), tasks: filepath.Join(t.TempDir(), "tasks.jsonl")}
	t.Cleanup(s.model.Close)
	if err := os.WriteFile(s.tasks, []byte(tasksFile), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *setup) config(t *testing.T, dir, environment string) *pipeline.Config {
	t.Helper()
	y := fmt.Sprintf(`name: count
source: {kind: environment, path: %q}
environment: {url: %s, env: counting, step_timeout: 1s, max_steps: 8%s}
endpoint: {base_url: %s, model: counter}
sampling: {n: 2, temperature: 1.0}
output: {dir: %q, tokenizer: ../../tokenizer/testdata/synthetic.json, chat_format: qwen3, shard_rows: 4}
`, s.tasks, s.env.URL, environment, s.model.BaseURL(), dir)
	cfg, err := pipeline.ParseConfig("count.yaml", strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func readRows[T any](t *testing.T, dir, ds string) []T {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "data", ds, "*.parquet"))
	slices.Sort(paths)
	var out []T
	for _, p := range paths {
		rows, err := export.ReadRows[T](context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rows...)
	}
	return out
}

func episodeOf(t *testing.T, r export.RLRow) agent.Info {
	t.Helper()
	var m struct{ Episode agent.Info }
	if err := json.Unmarshal([]byte(*r.ResponseMetadata), &m); err != nil {
		t.Fatal(err)
	}
	return m.Episode
}

// roles is an sft row's messages as role:segment-roles:loss_mask.
func roles(r export.SFTRow) string {
	var out []string
	for _, m := range r.Messages {
		var segs []string
		for _, s := range m.Segments {
			segs = append(segs, s.Role)
		}
		out = append(out, fmt.Sprintf("%s:%s:%d", m.Role, strings.Join(segs, "+"), m.LossMask))
	}
	return strings.Join(out, " ")
}

func checkValid(t *testing.T, dir string) {
	t.Helper()
	rep, err := validate.Dir(context.Background(), dir, validate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		var b strings.Builder
		rep.WriteText(&b)
		t.Fatalf("validate: %s", b.String())
	}
}

// The grpo recipe: one rl row per episode (7 tasks x 2), grouped by task
// with advantages from the episode rewards; the faulty tasks' episodes end
// with the reason in error and failures.jsonl, the run completes; the
// successful episodes are sft rows with every action trained and every
// observation masked.
func TestEnvironmentGRPO(t *testing.T) {
	s := newSetup(t)
	dir := t.TempDir()
	m, err := Execute(context.Background(), s.config(t, dir, ""), pipeline.JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != export.StatusComplete || m.Datasets["rl"].Rows != 14 || m.Datasets["rl"].Groups != 7 || m.Failures == nil || m.Failures.Count != 6 {
		t.Fatalf("manifest: %s %+v failures %+v", m.Status, m.Datasets, m.Failures)
	}
	rl := readRows[export.RLRow](t, dir, "rl")
	byTask := map[string][]export.RLRow{}
	for _, r := range rl {
		byTask[r.TaskID] = append(byTask[r.TaskID], r)
	}
	for task, want := range map[string]struct {
		end, reason string
		steps       int
	}{
		"c1": {agent.EndDone, "", 1}, "c2": {agent.EndDone, "", 2}, "c3": {agent.EndMaxSteps, "", 8}, "c4": {agent.EndDone, "", 4},
		"f500": {agent.EndEnvError, "500", 2}, "fhang": {agent.EndEnvError, "no complete answer within 1s", 3}, "fjunk": {agent.EndEnvError, "JSON", 1},
	} {
		rows := byTask[task]
		if len(rows) != 2 {
			t.Fatalf("%s: %d rows", task, len(rows))
		}
		for _, r := range rows {
			in := episodeOf(t, r)
			if in.End != want.end || in.Steps != want.steps || !strings.Contains(in.Reason, want.reason) {
				t.Errorf("%s sample %d: end %s steps %d reason %q", task, r.SampleIndex, in.End, in.Steps, in.Reason)
			}
			failed := want.end == agent.EndEnvError
			if failed != (r.Error != nil) || failed != (r.Reward == nil) || (failed && !strings.Contains(*r.Error, want.reason)) {
				t.Errorf("%s: error %v reward %v", task, r.Error, r.Reward)
			}
			if want.end == agent.EndDone && (*r.Reward != 1 || *r.Correct != true || r.TokenReason != nil || len(r.InputIDs) == 0) {
				t.Errorf("%s: reward %v correct %v token reason %v", task, *r.Reward, r.Correct, r.TokenReason)
			}
			// A failed step has its action and no observation.
			if r.GroupID != task+"#t0" || r.Model != "fake/policy-1" || r.DataSource != "counting" || int64(len(r.Messages)) != int64(2+2*in.Steps)-boolInt(failed) {
				t.Errorf("%s: group %s model %s source %s %d messages", task, r.GroupID, r.Model, r.DataSource, len(r.Messages))
			}
		}
	}
	if in := episodeOf(t, byTask["c3"][0]); in.FirstBadStep == nil || *in.FirstBadStep != 1 || in.FirstBadSignal != agent.SignalInvalid || in.InvalidActions != 7 || *in.Success {
		t.Errorf("c3: %+v", in)
	}
	// failures.jsonl lists the failed episodes.
	f, err := os.Open(filepath.Join(dir, export.FailuresName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var failed []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var fl export.Failure
		json.Unmarshal(sc.Bytes(), &fl)
		failed = append(failed, fmt.Sprintf("%s/%d", fl.TaskID, fl.SampleIndex))
	}
	if strings.Join(failed, " ") != "f500/0 f500/1 fhang/0 fhang/1 fjunk/0 fjunk/1" {
		t.Errorf("failures: %v", failed)
	}
	sft := readRows[export.SFTRow](t, dir, "sft")
	if len(sft) != 6 || m.SkippedTotal != 8 {
		t.Fatalf("%d sft rows, %d skipped", len(sft), m.SkippedTotal)
	}
	if got, want := roles(sft[0]), "system:prompt:0 user:prompt:0 assistant:action:1 user:observation:0"; got != want || sft[0].Recipe != RecipeNameGRPO {
		t.Errorf("c1's sft row: %s (%s), want %s", got, sft[0].Recipe, want)
	}
	checkValid(t, dir)
	// Every session opened was closed.
	if opened, closed, open, maxOpen, _ := s.env.Stats(); opened != closed || open != 0 || maxOpen > 4 {
		t.Errorf("sessions: %d opened %d closed %d open, %d at once (limit 4)", opened, closed, open, maxOpen)
	}
}

// Agent-R and STeP on the counting game: the goal-3 task's episodes make a
// wrong move at step 1; the row masks exactly the bad prefix through it
// (Agent-R) or only the erroneous step (STeP) and the observations, and
// trains the revision or reflection with the oracle's continuation. Re-ReST
// repairs with the reflector.
func TestEnvironmentRecipes(t *testing.T) {
	s := newSetup(t)
	for _, tt := range []struct {
		recipe, extra, name string
		roles, branch       string
	}{
		{recipe: "agent-r", name: RecipeNameAgentR, branch: "oracle",
			roles: "system:prompt:0 user:prompt:0 assistant:prefix:0 user:observation:0 assistant:erroneous_step:0 user:observation:0 assistant:revision+separator+continuation:1 user:observation:0 assistant:continuation:1 user:observation:0"},
		{recipe: "step", name: RecipeNameStep, branch: "oracle",
			roles: "system:prompt:0 user:prompt:0 assistant:action:1 user:observation:0 assistant:erroneous_step:0 user:observation:0 assistant:reflection+separator+correction:1 user:observation:0 assistant:continuation:1 user:observation:0"},
		{recipe: "agent-r", extra: ", branch: policy", name: RecipeNameAgentR, branch: "policy",
			roles: "system:prompt:0 user:prompt:0 assistant:prefix:0 user:observation:0 assistant:erroneous_step:0 user:observation:0 assistant:revision+separator+continuation:1 user:observation:0 assistant:continuation:1 user:observation:0"},
		{recipe: "re-rest", extra: ", reflector: {base_url: " + s.model.BaseURL() + ", model: reflector}", name: RecipeNameReReST, branch: "reflector",
			roles: "system:prompt:0 user:prompt:0 assistant:action:1 user:observation:0 assistant:action:1 user:observation:0 assistant:action:1 user:observation:0"},
	} {
		t.Run(tt.recipe+tt.extra, func(t *testing.T) {
			dir := t.TempDir()
			cfg := s.config(t, dir, ", recipe: "+tt.recipe+tt.extra)
			m, err := Execute(context.Background(), cfg, pipeline.JobOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sft := readRows[export.SFTRow](t, dir, "sft")
			if m.Status != export.StatusComplete || len(sft) == 0 {
				t.Fatalf("%s: %d rows; skipped %+v", m.Status, len(sft), m.Skipped)
			}
			for _, r := range sft {
				if r.Recipe != tt.name || r.Reward == nil || *r.Reward != 1 {
					t.Errorf("%s: recipe %s reward %v", r.ID, r.Recipe, r.Reward)
				}
				var meta struct {
					Episode  agent.Info
					Revision map[string]any
				}
				json.Unmarshal([]byte(*r.Metadata), &meta)
				if tt.recipe != "re-rest" {
					if r.TaskID != "c3" || roles(r) != tt.roles {
						t.Errorf("%s:\n got %s\nwant %s", r.ID, roles(r), tt.roles)
					}
					if meta.Revision["first_bad_step"] != 1.0 || meta.Revision["signal"] != agent.SignalInvalid || meta.Revision["branch_success"] != true || meta.Revision["branch"] != tt.branch {
						t.Errorf("%s: revision %v", r.ID, meta.Revision)
					}
					// The erroneous step is the wrong move.
					if r.Messages[4].Content != "I count on.\nAction: say 9" {
						t.Errorf("%s: erroneous step %q", r.ID, r.Messages[4].Content)
					}
				} else if r.TaskID != "c3" || roles(r) != tt.roles || meta.Revision["branch"] != tt.branch {
					t.Errorf("%s:\n got %s\nwant %s (%v)", r.ID, roles(r), tt.roles, meta.Revision)
				}
			}
			checkValid(t, dir)
		})
	}
}

// An environment run stopped after its first task resumes and writes every
// task's rows once: the rows of a run that was never stopped.
func TestEnvironmentResume(t *testing.T) {
	s := newSetup(t)
	ref := t.TempDir()
	if _, err := Execute(context.Background(), s.config(t, ref, ""), pipeline.JobOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := s.config(t, dir, "")
	stop := rollout.NewStopper()
	m, err := Execute(context.Background(), cfg, pipeline.JobOptions{Stop: stop, OnGroup: func(written int64, _ int) {
		stop.Stop()
	}})
	if !errors.Is(err, pipeline.ErrInterrupted) || m.Status != export.StatusInterrupted {
		t.Fatalf("stopped run: %v %s", err, m.Status)
	}
	var resumed bool
	m, err = Execute(context.Background(), cfg, pipeline.JobOptions{OnResume: func(pipeline.ResumeInfo) { resumed = true }})
	if err != nil || !resumed || m.Status != export.StatusComplete {
		t.Fatalf("resume: %v %v", err, resumed)
	}
	if a, b := readRows[export.SFTRow](t, ref, "sft"), readRows[export.SFTRow](t, dir, "sft"); !reflect.DeepEqual(a, b) {
		t.Errorf("resumed sft rows differ from the uninterrupted run's")
	}
	a, b := readRows[export.RLRow](t, ref, "rl"), readRows[export.RLRow](t, dir, "rl")
	if len(a) != 14 || !reflect.DeepEqual(a, b) {
		t.Errorf("resumed rl rows differ from the uninterrupted run's (%d and %d rows)", len(a), len(b))
	}
}

// An environment job reads its own keys and refuses what it cannot do by
// name and line.
func TestEnvironmentConfig(t *testing.T) {
	const base = "name: e\nsource: {kind: environment, path: t.jsonl}\nendpoint: {base_url: http://127.0.0.1:1/v1, model: m}\noutput: {dir: out}\n"
	for _, tt := range []struct{ yaml, err string }{
		{base + "environment: {url: http://x, env: scienceworld}\n", ""},
		{base, "source.kind environment needs an environment section"},
		{base + "environment: {env: scienceworld}\n", "environment.url: missing"},
		{base + "environment: {url: http://x, env: scienceworld, recipe: rise}\n", `c.yaml:5: environment.recipe: "rise" is not grpo, agent-r, step or re-rest`},
		{base + "environment: {url: http://x, env: scienceworld, bad_step: [invalid, typo]}\n", `environment.bad_step[1]: "typo" is not invalid, reward_drop or off_gold`},
		{base + "environment: {url: http://x, env: scienceworld, recipe: re-rest}\n", "environment.reflector: missing: re-rest needs a reflector model"},
		{base + "environment: {url: http://x, env: scienceworld, recipe: agent-r, actor: oracle}\n", "oracle episodes are solved"},
		{base + "environment: {url: http://x, env: scienceworld}\nreward: {grader: python}\n", `c.yaml:6: reward: an environment job does not read this section`},
		{base + "environment: {url: http://x, env: scienceworld}\nadvantage: {estimator: reinforce_pp_baseline}\n", "reinforce_pp_baseline whitens over a batch"},
		{"name: e\nsource: {kind: tasks, path: t.jsonl}\nendpoint: {base_url: http://127.0.0.1:1/v1, model: m}\noutput: {dir: out}\nenvironment: {url: http://x, env: s}\n", "an environment section needs source.kind environment"},
		{"name: e\nsource: {kind: environment, path: t.jsonl}\noutput: {dir: out}\nenvironment: {url: http://x, env: s}\n", "environment.actor policy needs an endpoint section"},
		{"name: e\nsource: {kind: environment, path: t.jsonl}\noutput: {dir: out}\nenvironment: {url: http://x, env: s, actor: oracle}\n", ""},
	} {
		_, err := pipeline.ParseConfig("c.yaml", strings.NewReader(tt.yaml))
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s\nerr %v, want %q", tt.yaml, err, tt.err)
		}
	}
}

func TestReflectorSystemMarked(t *testing.T) {
	if !strings.HasPrefix(ReflectorSystem, envtest.ReflectorSystem) {
		t.Fatalf("the fake reflector would not recognise %q", ReflectorSystem)
	}
}

// docs/agents.md's environment configuration is one redraft reads, and its
// example of a bad task line is the program's message.
func TestEnvironmentDoc(t *testing.T) {
	y := doccheck.One(t, "../..", "docs/agents.md", "TestEnvironmentDoc")
	cfg, err := pipeline.ParseConfig("doc.yaml", strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	if e := cfg.Environment; e.Recipe != pipeline.RecipeAgentR || e.Env != "scienceworld" || e.MaxSteps != 20 || e.Branch != "auto" || e.Keep != "success" || cfg.Sampling.N != 4 {
		t.Errorf("parsed %+v", e)
	}
	_, err = agent.ParseTask("tasks.jsonl", 3, []byte(`{"task": "boil", "variation": -1}`), "scienceworld")
	page, _ := os.ReadFile("../../docs/agents.md")
	if err == nil || !strings.Contains(strings.Join(strings.Fields(string(page)), " "), "(`"+err.Error()+"`)") {
		t.Errorf("docs/agents.md does not quote %v", err)
	}
}

// docs/agents.md's recorded example rows (real ScienceWorld runs) have the
// masks their recipe promises: observations and the prompt masked; grpo and
// re-rest train every action; agent-r masks everything before the revision
// message (2 + 2(k+1) for first bad step k); step trains the good steps,
// masks the erroneous one and trains the reflection and what follows.
func TestEnvironmentDocRows(t *testing.T) {
	blocks := doccheck.Checked(t, "../..", "docs/agents.md", "TestEnvironmentDocRows")
	seen := map[string]bool{}
	for _, b := range blocks {
		var r struct {
			ID, Recipe string
			Messages   []struct {
				Role     string
				LossMask int `json:"loss_mask"`
				Segments []string
			}
			Metadata struct {
				Episode  agent.Info
				Revision *struct {
					Recipe       string `json:"recipe"`
					FirstBadStep *int   `json:"first_bad_step"`
					Branch       string `json:"branch"`
				}
			}
		}
		if err := json.Unmarshal([]byte(b), &r); err != nil {
			t.Fatalf("%v:\n%s", err, b)
		}
		seen[r.Recipe] = true
		k := -1
		if r.Metadata.Revision != nil {
			if r.Metadata.Revision.Recipe != r.Recipe || r.Metadata.Revision.FirstBadStep == nil || r.Metadata.Episode.FirstBadStep == nil || *r.Metadata.Revision.FirstBadStep != *r.Metadata.Episode.FirstBadStep {
				if r.Recipe != RecipeNameReReST {
					t.Errorf("%s: revision %+v, episode's first bad step %v", r.Recipe, r.Metadata.Revision, r.Metadata.Episode.FirstBadStep)
				}
			}
			if r.Metadata.Revision.FirstBadStep != nil {
				k = *r.Metadata.Revision.FirstBadStep
			}
		}
		for i, m := range r.Messages {
			want, roles := 0, []string{pipeline.SegObservation}
			switch {
			case i < 2:
				roles = []string{pipeline.SegPrompt}
			case m.Role != "assistant":
			case r.Recipe == RecipeNameGRPO || r.Recipe == RecipeNameReReST:
				want, roles = 1, []string{pipeline.SegAction}
			case r.Recipe == RecipeNameAgentR && i < 2+2*k:
				roles = []string{pipeline.SegPrefix}
			case r.Recipe == RecipeNameStep && i < 2+2*k:
				want, roles = 1, []string{pipeline.SegAction}
			case i == 2+2*k:
				roles = []string{pipeline.SegErroneousStep}
			case i == 4+2*k && r.Recipe == RecipeNameAgentR:
				want, roles = 1, []string{pipeline.SegRevision, pipeline.SegSeparator, pipeline.SegContinuation}
			case i == 4+2*k:
				want, roles = 1, []string{pipeline.SegReflection, pipeline.SegSeparator, pipeline.SegCorrection}
			default:
				want, roles = 1, []string{pipeline.SegContinuation}
			}
			if m.LossMask != want || strings.Join(m.Segments, "+") != strings.Join(roles, "+") {
				t.Errorf("%s message %d (%s): loss_mask %d segments %v, want %d %v", r.Recipe, i, m.Role, m.LossMask, m.Segments, want, roles)
			}
		}
	}
	for _, name := range []string{RecipeNameGRPO, RecipeNameAgentR, RecipeNameStep, RecipeNameReReST} {
		if !seen[name] {
			t.Errorf("docs/agents.md has no example row of %s", name)
		}
	}
}
