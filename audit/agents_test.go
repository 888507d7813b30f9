package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/redraft/redraft/audit"
	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/doccheck"
	"github.com/redraft/redraft/internal/exporttest"
)

// ep is an episode summary in the row contract's form (rollout/agent.Info's
// JSON; agents_contract_test.go checks it against the type itself).
type ep struct {
	env                   string
	steps, invalid, tools int
	success               *bool   // nil: the environment never said
	end                   string  // done, max_steps, env_error, ...
	bad                   *int    // first bad step
	signal                string  // its signal
	err                   *string // the rl row's error (failed episodes)
}

func (e ep) info() map[string]any {
	m := map[string]any{"env": e.env, "task": "t", "variation": 0, "seed": 1, "steps": e.steps, "invalid_actions": e.invalid,
		"tool_errors": e.tools, "reward": nil, "success": e.success, "end": e.end, "first_bad_step": e.bad, "gold_steps": 5,
		"step_rewards": []any{}, "actions": []string{}, "model": "m"}
	if e.signal != "" {
		m["first_bad_signal"] = e.signal
	}
	return m
}

func jsonText(t *testing.T, v any) *string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	return &s
}

// rlGroup is a group of rl rows, one per episode.
func rlGroup(t *testing.T, task string, eps ...ep) []export.RLRow {
	rows := exporttest.SampleRows(task, make([]*float64, len(eps))...)
	for i, e := range eps {
		rows[i].DataSource = e.env
		rows[i].ResponseMetadata = jsonText(t, map[string]any{"episode": e.info(), "finish": "stop"})
		rows[i].Error = e.err
		rows[i].Correct = e.success
	}
	return rows
}

// sftRow is an sft row of an episode; rev is its "revision" object (nil:
// an agent-grpo row).
func sftRow(t *testing.T, id, recipe string, e ep, rev map[string]any) export.SFTRow {
	r := exporttest.SFTRow(id, []any{"user", "look", false}, []any{"assistant", "go north", true})
	r.Recipe, r.DataSource = recipe, e.env
	meta := map[string]any{"episode": e.info()}
	if rev != nil {
		rev["recipe"] = recipe
		meta["revision"] = rev
	}
	r.Metadata = jsonText(t, meta)
	return r
}

func branch(ok bool, k *int) map[string]any {
	return map[string]any{"first_bad_step": k, "signal": "invalid", "branch": "oracle", "branch_success": ok, "branch_steps": 4}
}

func ptr[T any](v T) *T { return &v }

// The fixture's episodes (see TestAgentsAudit for what they add up to).
var (
	yes, no = ptr(true), ptr(false)
	sw      = []ep{
		{env: "scienceworld", steps: 10, invalid: 2, success: yes, end: "done"},
		{env: "scienceworld", steps: 12, invalid: 1, tools: 1, success: no, end: "max_steps", bad: ptr(3), signal: "invalid"},
		{env: "scienceworld", steps: 8, success: no, end: "done", bad: ptr(3), signal: "off_gold"},
		{env: "scienceworld", steps: 2, end: "env_error", bad: ptr(0), signal: "reward_drop", err: ptr("env_error: HTTP 500")},
		{env: "scienceworld", steps: 0, end: "policy_error", err: ptr("policy_error: connection refused")},
	}
	twx = []ep{
		{env: "textworldexpress", steps: 4, tools: 1, success: yes, end: "done"},
		{env: "textworldexpress", steps: 6, invalid: 1, success: yes, end: "done", bad: ptr(2), signal: "invalid"},
		{env: "textworldexpress", steps: 6, invalid: 3, success: no, end: "max_steps", bad: ptr(1), signal: "invalid"},
	}
)

// agentFixture is a run with the episodes above, rl rows that are not agent
// episodes (no response_metadata, one without "episode", one whose
// "episode" is a recorded rollout's own number), agent-grpo rows of the
// successful episodes and, with revisions, four revision rows of the
// unsuccessful ones (one whose branch failed) and an sft row of no episode.
func agentFixture(t *testing.T, revisions bool) *exporttest.Fixture {
	other := exporttest.SampleRows("math", exporttest.F64(1), exporttest.F64(0), exporttest.F64(1))
	other[1].ResponseMetadata = ptr(`{"finish": "stop"}`)
	other[2].ResponseMetadata = ptr(`{"episode": 3, "note": "a recorded rollout's own key"}`)
	fx := &exporttest.Fixture{RL: [][]export.RLRow{rlGroup(t, "sw", sw...), rlGroup(t, "twx", twx...), other}}
	fx.SFT = []export.SFTRow{sftRow(t, "g1", "agent-grpo", sw[0], nil), sftRow(t, "g2", "agent-grpo", twx[0], nil), sftRow(t, "g3", "agent-grpo", twx[1], nil)}
	if revisions {
		fx.SFT = append(fx.SFT,
			sftRow(t, "r1", "agent-r-env", sw[1], branch(true, sw[1].bad)),
			sftRow(t, "r2", "agent-r-env", sw[2], branch(true, sw[2].bad)),
			sftRow(t, "r3", "step-env", sw[3], branch(true, sw[3].bad)),
			sftRow(t, "r4", "agent-r-env", twx[2], branch(false, twx[2].bad)),
			exporttest.SFTRow("plain", []any{"user", "Q", false}, []any{"assistant", "It is 4.", true}))
	}
	return fx
}

func f(v float64) *float64 { return &v }

// wantAgents is the audit of agentFixture, counted by hand.
func wantAgents(revisions bool) *audit.AgentReport {
	swS := &audit.AgentSlice{Env: "scienceworld", Episodes: 5, Judged: 3, Successes: 1, SuccessRate: f(1.0 / 3),
		Steps: 32, StepsMean: f(6.4), StepsMax: 12, InvalidActions: 3, InvalidActionRate: f(3.0 / 32), ToolErrors: 1, ToolErrorRate: f(1.0 / 32),
		Ends: map[string]int64{"done": 2, "max_steps": 1, "env_error": 1, "policy_error": 1}, Failed: 2,
		FailedByEnd: map[string]int64{"env_error": 1, "policy_error": 1},
		FirstBad: audit.FirstBadReport{Episodes: 3, Fraction: f(0.6), StepMean: f(2), Histogram: []audit.StepCount{{Step: 0, Count: 1}, {Step: 3, Count: 2}},
			BySignal: map[string]int64{"invalid": 1, "off_gold": 1, "reward_drop": 1}}}
	twxS := &audit.AgentSlice{Env: "textworldexpress", Episodes: 3, Judged: 3, Successes: 2, SuccessRate: f(2.0 / 3),
		Steps: 16, StepsMean: f(16.0 / 3), StepsMax: 6, InvalidActions: 4, InvalidActionRate: f(0.25), ToolErrors: 1, ToolErrorRate: f(1.0 / 16),
		Ends: map[string]int64{"done": 2, "max_steps": 1}, FailedByEnd: map[string]int64{},
		FirstBad: audit.FirstBadReport{Episodes: 2, Fraction: f(2.0 / 3), StepMean: f(1.5), Histogram: []audit.StepCount{{Step: 1, Count: 1}, {Step: 2, Count: 1}},
			BySignal: map[string]int64{"invalid": 2}}}
	all := audit.AgentSlice{Env: "all", Episodes: 8, Judged: 6, Successes: 3, SuccessRate: f(0.5),
		Steps: 48, StepsMean: f(6), StepsMax: 12, InvalidActions: 7, InvalidActionRate: f(7.0 / 48), ToolErrors: 2, ToolErrorRate: f(2.0 / 48),
		Ends: map[string]int64{"done": 4, "max_steps": 2, "env_error": 1, "policy_error": 1}, Failed: 2,
		FailedByEnd: map[string]int64{"env_error": 1, "policy_error": 1},
		FirstBad: audit.FirstBadReport{Episodes: 5, Fraction: f(5.0 / 8), StepMean: f(1.8),
			Histogram: []audit.StepCount{{Step: 0, Count: 1}, {Step: 1, Count: 1}, {Step: 2, Count: 1}, {Step: 3, Count: 2}},
			BySignal:  map[string]int64{"invalid": 3, "off_gold": 1, "reward_drop": 1}}}
	r := &audit.AgentReport{Overall: all, ByEnv: []*audit.AgentSlice{swS, twxS}, SFTRows: map[string]int64{"agent-grpo": 3}}
	if revisions {
		// Eligible: unsuccessful (false or null) with a first bad step;
		// twx[1] succeeded and is not.
		swS.Recovery = &audit.RecoveryReport{Eligible: 3, RevisionRows: 3, Recovered: 3, Rate: f(1)}
		twxS.Recovery = &audit.RecoveryReport{Eligible: 1, RevisionRows: 1, Recovered: 0, Rate: f(0)}
		r.Overall.Recovery = &audit.RecoveryReport{Eligible: 4, RevisionRows: 4, Recovered: 3, Rate: f(0.75)}
		r.SFTRows = map[string]int64{"agent-grpo": 3, "agent-r-env": 3, "step-env": 1}
	}
	return r
}

// TestAgentsAudit checks every number of the agents section, as Dir (what
// redraft run prints) and Path plus AddAgents (redraft audit) compute it,
// on an output directory with and without revision rows, on one rl shard
// (no sft rows: no recovery) and with every worker count.
func TestAgentsAudit(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		revisions bool
		shard     bool // audit the first rl shard only
		workers   int
	}{
		{name: "with revisions", revisions: true},
		{name: "with revisions, 1 worker", revisions: true, workers: 1},
		{name: "with revisions, 3 workers", revisions: true, workers: 3},
		{name: "without revisions", revisions: false},
		{name: "one shard", revisions: true, shard: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fx := agentFixture(t, tc.revisions)
			fx.RLMaxBytes = 1 // a shard per group
			fx.Write(t, dir, nil)
			want := wantAgents(tc.revisions)
			path := dir
			if tc.shard {
				shards, err := audit.RLShards(dir)
				if err != nil || len(shards) != 3 {
					t.Fatalf("shards %v %v", shards, err)
				}
				path = shards[0]
				// The scienceworld group alone, without sft rows.
				w := *want.ByEnv[0]
				w.Recovery = nil
				all := w
				all.Env = "all"
				want = &audit.AgentReport{Overall: all, ByEnv: []*audit.AgentSlice{&w}, SFTRows: map[string]int64{}}
			}
			a, err := audit.Path(ctx, path, audit.Options{Workers: tc.workers})
			if err != nil {
				t.Fatal(err)
			}
			if err := a.AddAgents(ctx, path, tc.workers); err != nil {
				t.Fatal(err)
			}
			checkAgents(t, a.Agents, want)
			if tc.shard {
				return
			}
			d, err := audit.Dir(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			checkAgents(t, d.Agents, want)
			// The agent rows are ordinary rl rows to the rest of the audit.
			if d.Overall.Rows != 11 {
				t.Errorf("rows %d", d.Overall.Rows)
			}
			// JSON: an "agents" object, recovery present only with revisions.
			b, _ := json.Marshal(d)
			var j struct {
				Agents map[string]any `json:"agents"`
			}
			if err := json.Unmarshal(b, &j); err != nil || j.Agents == nil {
				t.Fatalf("JSON %v: %s", err, b)
			}
			if got := strings.Contains(string(b), `"recovery"`); got != tc.revisions {
				t.Errorf("recovery in the JSON: %v", got)
			}
			var buf bytes.Buffer
			d.WriteText(&buf)
			if got := strings.Contains(buf.String(), "\nrecovery: "); got != tc.revisions {
				t.Errorf("recovery line in the text: %v\n%s", got, buf.String())
			}
		})
	}
}

func checkAgents(t *testing.T, got, want *audit.AgentReport) {
	t.Helper()
	if got == nil {
		t.Fatal("no agents report")
	}
	g, _ := json.MarshalIndent(got, "", " ")
	w, _ := json.MarshalIndent(want, "", " ")
	if !bytes.Equal(g, w) {
		t.Errorf("agents report:\n%s\nwant:\n%s", g, w)
	}
	// JSON rounds nothing away, but compare the values too.
	if !reflect.DeepEqual(got, want) {
		t.Errorf("agents report differs from the JSON-equal want (a float off in the last bit?)")
	}
}

// TestAgentsAbsent: a run without agent rows has no agents section, and its
// text and JSON are byte for byte those of the audit without the agents
// pass (the quickstart's and the docs' quoted outputs are unchanged).
func TestAgentsAbsent(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		fx   *exporttest.Fixture
	}{
		{"default fixture", exporttest.New()},
		{"episode keys that are not episodes", func() *exporttest.Fixture {
			fx := exporttest.New()
			g := fx.RL[0]
			g[0].ResponseMetadata = ptr(`{"episode": 3}`)
			g[1].ResponseMetadata = ptr(`{"episode": {"id": "a recorded rollout's own object"}}`)
			g[2].ResponseMetadata = ptr(`not JSON, "episode"`)
			return fx
		}()},
		{"agent sft rows without agent rl rows", func() *exporttest.Fixture {
			fx := exporttest.New()
			fx.SFT = append(fx.SFT, sftRow(t, "r1", "agent-r-env", sw[1], branch(true, sw[1].bad)))
			return fx
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.fx.Write(t, dir, nil)
			plain, err := audit.Path(ctx, dir, audit.Options{})
			if err != nil {
				t.Fatal(err)
			}
			d, err := audit.Dir(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			if d.Agents != nil {
				t.Fatalf("agents: %+v", d.Agents)
			}
			var a, b bytes.Buffer
			plain.WriteText(&a)
			d.WriteText(&b)
			if a.String() != b.String() || strings.Contains(b.String(), "agents") {
				t.Errorf("text differs:\n%s\n---\n%s", a.String(), b.String())
			}
			ja, _ := json.Marshal(plain)
			jb, _ := json.Marshal(d)
			if !bytes.Equal(ja, jb) || bytes.Contains(jb, []byte(`"agents"`)) {
				t.Errorf("JSON differs or has agents:\n%s", jb)
			}
		})
	}
}

// TestAgentsFirstBadBins: the text histogram has a bar per first bad step,
// and ten ranges of steps when more than twelve steps occur.
func TestAgentsFirstBadBins(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []int
		bars  []string // labels, in order
	}{
		{"per step", []int{0, 4, 4, 11}, []string{"0", "4", "11"}},
		{"ranges", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 12, 25}, []string{"0-2", "3-5", "6-8", "9-11", "12-14", "15-17", "18-20", "21-23", "24-25"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var eps []ep
			for _, k := range tc.steps {
				eps = append(eps, ep{env: "e", steps: 30, success: no, end: "max_steps", bad: ptr(k), signal: "invalid"})
			}
			dir := t.TempDir()
			(&exporttest.Fixture{RL: [][]export.RLRow{rlGroup(t, "e", eps...)}}).Write(t, dir, nil)
			a, err := audit.Dir(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			a.WriteText(&buf)
			_, text, _ := strings.Cut(buf.String(), "\nfirst bad step: ")
			var labels []string
			var total int
			for _, l := range strings.Split(text, "\n")[1:] {
				label, bar, ok := strings.Cut(l, " | ")
				if !ok {
					break
				}
				labels = append(labels, strings.TrimSpace(label))
				var n int
				fields := strings.Fields(bar)
				if err := json.Unmarshal([]byte(fields[len(fields)-2]), &n); err != nil {
					t.Fatalf("bar %q", l)
				}
				total += n
			}
			if !reflect.DeepEqual(labels, tc.bars) || total != len(tc.steps) {
				t.Errorf("bars %v (%d episodes), want %v (%d):\n%s", labels, total, tc.bars, len(tc.steps), buf.String())
			}
		})
	}
}

// TestAgentsDocExample prints the agents section of the fixture of
// TestAgentsAudit: docs/audit.md shows it.
func TestAgentsDocExample(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agents")
	agentFixture(t, true).Write(t, dir, nil)
	a, err := audit.Dir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	a.WriteText(&buf)
	_, section, ok := strings.Cut(buf.String(), "\nagents by env")
	if !ok {
		t.Fatalf("no agents section:\n%s", buf.String())
	}
	doccheck.Lines(t, "docs/audit.md's agents block", "agents by env"+section, doccheck.One(t, "..", "docs/audit.md", "TestAgentsDocExample"), nil)
}
