package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/exporttest"
)

// TestAuditAgentsCommand: redraft audit prints the agents section and
// --json - writes the agents object for a run with agent episodes (the
// numbers are audit's TestAgentsAudit's to check), and neither for a run
// without.
func TestAuditAgentsCommand(t *testing.T) {
	dir := t.TempDir()
	rows := exporttest.SampleRows("boil", nil, nil)
	rows[0].ResponseMetadata = strPtrT(`{"episode": {"env": "scienceworld", "steps": 4, "invalid_actions": 1, "tool_errors": 0, "success": true, "end": "done", "first_bad_step": null}}`)
	rows[1].ResponseMetadata = strPtrT(`{"episode": {"env": "scienceworld", "steps": 6, "invalid_actions": 0, "tool_errors": 0, "success": false, "end": "max_steps", "first_bad_step": 2, "first_bad_signal": "off_gold"}}`)
	(&exporttest.Fixture{RL: [][]export.RLRow{rows}}).Write(t, dir, nil)
	plain := t.TempDir()
	exporttest.New().Write(t, plain, nil)
	for _, tc := range []struct {
		dir    string
		agents bool
	}{{dir, true}, {plain, false}} {
		for _, workers := range []string{"0", "1"} {
			code, stdout, stderr := redraft(t, "audit", tc.dir, "--workers", workers)
			if code != 0 || strings.Contains(stdout, "\nagents by env") != tc.agents {
				t.Errorf("%s: exit %d, stderr %q, agents section %v:\n%s", tc.dir, code, stderr, !tc.agents, stdout)
			}
			code, stdout, stderr = redraft(t, "audit", "--json", "-", "--workers", workers, tc.dir)
			var j struct {
				Agents *struct {
					Overall struct {
						Episodes    int64    `json:"episodes"`
						SuccessRate *float64 `json:"success_rate"`
					} `json:"overall"`
				} `json:"agents"`
			}
			if err := json.Unmarshal([]byte(stdout), &j); code != 0 || err != nil {
				t.Fatalf("--json: exit %d %v %s", code, err, stderr)
			}
			if (j.Agents != nil) != tc.agents || tc.agents && (j.Agents.Overall.Episodes != 2 || *j.Agents.Overall.SuccessRate != 0.5) {
				t.Errorf("%s: agents %+v", tc.dir, j.Agents)
			}
		}
	}
}

func strPtrT(s string) *string { return &s }
