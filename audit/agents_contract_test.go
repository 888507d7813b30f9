package audit_test

import (
	"context"
	"encoding/json"
	"reflect"
	"sort"
	"testing"

	"github.com/redraft/redraft/audit"
	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/exporttest"
	"github.com/redraft/redraft/rollout/agent"
)

// TestAgentsContract holds the audit to the row contract's type: the
// fixtures' episode objects have exactly the keys of rollout/agent.Info's
// JSON, and rows whose response_metadata is {"episode": Info.JSON()} are
// counted from Info's fields.
func TestAgentsContract(t *testing.T) {
	keys := func(b []byte) []string {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	fixture, _ := json.Marshal(ep{env: "e", bad: ptr(1), signal: agent.SignalInvalid}.info())
	info := agent.Info{Env: "e", FirstBadStep: ptr(1), FirstBadSignal: agent.SignalInvalid}
	if a, b := keys(fixture), keys(info.JSON()); !reflect.DeepEqual(a, b) {
		t.Errorf("the fixtures' episode keys %v, agent.Info's %v", a, b)
	}

	infos := []agent.Info{
		{Env: "scienceworld", Task: "boil", Steps: 7, InvalidActions: 2, ToolErrors: 1, Success: yes, End: agent.EndDone,
			FirstBadStep: ptr(4), FirstBadSignal: agent.SignalInvalid, GoldSteps: ptr(5), StepRewards: []*float64{f(0), nil}, Actions: []string{"look"}},
		{Env: "scienceworld", Task: "boil", Steps: 3, Success: no, End: agent.EndMaxSteps, FirstBadStep: ptr(1), FirstBadSignal: agent.SignalOffGold},
		{Env: "scienceworld", Task: "boil", Steps: 1, End: agent.EndEnvError, Reason: "env_error: HTTP 500", FirstBadStep: ptr(0), FirstBadSignal: agent.SignalRewardDrop},
	}
	rows := exporttest.SampleRows("boil", nil, nil, nil)
	for i, in := range infos {
		rows[i].ResponseMetadata = jsonText(t, map[string]json.RawMessage{"episode": in.JSON()})
		if in.Reason != "" {
			rows[i].Error = ptr(in.Reason)
		}
	}
	dir := t.TempDir()
	rev := map[string]any{"recipe": "agent-r-env", "first_bad_step": 1, "signal": agent.SignalOffGold, "branch": "oracle", "branch_success": true, "branch_steps": 2}
	meta, _ := json.Marshal(map[string]any{"episode": json.RawMessage(infos[1].JSON()), "revision": rev})
	sft := exporttest.SFTRow("r", []any{"user", "look", false}, []any{"assistant", "go", true})
	sft.Recipe, sft.Metadata = "agent-r-env", ptr(string(meta))
	(&exporttest.Fixture{RL: [][]export.RLRow{rows}, SFT: []export.SFTRow{sft}}).Write(t, dir, nil)
	a, err := audit.Dir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := audit.AgentSlice{Env: "all", Episodes: 3, Judged: 2, Successes: 1, SuccessRate: f(0.5), Steps: 11, StepsMean: f(11.0 / 3), StepsMax: 7,
		InvalidActions: 2, InvalidActionRate: f(2.0 / 11), ToolErrors: 1, ToolErrorRate: f(1.0 / 11),
		Ends: map[string]int64{"done": 1, "max_steps": 1, "env_error": 1}, Failed: 1, FailedByEnd: map[string]int64{"env_error": 1},
		FirstBad: audit.FirstBadReport{Episodes: 3, Fraction: f(1), StepMean: f(5.0 / 3), Histogram: []audit.StepCount{{Step: 0, Count: 1}, {Step: 1, Count: 1}, {Step: 4, Count: 1}},
			BySignal: map[string]int64{"invalid": 1, "off_gold": 1, "reward_drop": 1}},
		Recovery: &audit.RecoveryReport{Eligible: 2, RevisionRows: 1, Recovered: 1, Rate: f(0.5)}}
	if a.Agents == nil || len(a.Agents.ByEnv) != 1 {
		t.Fatalf("agents: %+v", a.Agents)
	}
	env := want
	env.Env = "scienceworld"
	checkAgents(t, a.Agents, &audit.AgentReport{Overall: want, ByEnv: []*audit.AgentSlice{&env}, SFTRows: map[string]int64{"agent-r-env": 1}})
}
