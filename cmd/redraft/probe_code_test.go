package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/internal/doccheck"
	"github.com/redraft/redraft/probe"
	"github.com/redraft/redraft/rewards/execute"
)

// The code battery on HumanEval with reward.grader python: the canonical
// solutions earn 1; no program, a stub, a stub that exits or prints a pass
// before the tests, and an instruction to the grader earn nothing; the
// program that special-cases the prompt's examples passes fewer problems
// than the honest one (only where the tests are no more than the examples),
// and so fails the check it is forbidden by.
func TestProbeCode(t *testing.T) {
	if _, err := execute.New(execute.Options{Slots: 1}); err != nil {
		if errors.Is(err, execute.ErrUnavailable) && os.Getenv("REDRAFT_REQUIRE_SANDBOX") != "1" {
			t.Skipf("SKIPPING: no sandbox on this machine (set REDRAFT_REQUIRE_SANDBOX=1 to fail instead): %v", err)
		}
		t.Fatal(err)
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, `name: probe-code
source: {kind: tasks, path: `+root+`/rewards/codegrade/testdata/humaneval/HumanEval.jsonl.gz, layout: humaneval}
endpoint: {base_url: http://127.0.0.1:9/v1, model: policy}
reward: {grader: python, weights: {verifiable: 1, pass_rate: 0}}
output: {dir: out}
`)
	out := filepath.Join(t.TempDir(), "probe.json")
	code, stdout, stderr := redraft(t, "probe", "--config", cfg, "--tasks", "20", "--json", out)
	rep := readProbeJSON(t, out)
	// docs/probes.md shows this table.
	table, _, _ := strings.Cut(strings.ReplaceAll(stdout, cfg, "probe-code.yaml"), "\nwrote ")
	doccheck.Lines(t, "docs/probes.md", table+"\n", doccheck.One(t, repoRoot, "docs/probes.md", "TestProbeCode"), nil)
	if rep.Battery != "code" || rep.Tasks != 20 || len(rep.Probes) != len(probe.CodeProbes) || len(rep.Warnings) != 0 {
		t.Fatalf("report: battery %q tasks %d probes %d warnings %v", rep.Battery, rep.Tasks, len(rep.Probes), rep.Warnings)
	}
	var honest, visible float64
	for _, p := range rep.Probes {
		if p.Null != 0 || p.Mean == nil {
			t.Fatalf("%s: %d null (%v)", p.Name, p.Null, p.NullReasons)
		}
		switch p.Name {
		case probe.CodeHonest:
			honest = *p.Mean
		case probe.VisibleTests:
			visible = *p.Mean
		default:
			if *p.Mean != 0 {
				t.Errorf("%s earns %v, want 0", p.Name, *p.Mean)
			}
		}
		if p.Forbidden != contains(probe.DefaultCodeForbidden, p.Name) {
			t.Errorf("%s: forbidden %v", p.Name, p.Forbidden)
		}
	}
	if honest != 1 || visible >= honest {
		t.Errorf("honest earns %v, visible-tests %v", honest, visible)
	}
	// Where it earns anything, the check fails and names it.
	wantFail := visible > 0
	if (code == 1) != wantFail || wantFail != strings.Contains(stderr, "forbidden probes earn reward: visible-tests") {
		t.Errorf("exit %d (visible-tests earns %v), stderr %q", code, visible, stderr)
	}
	// Forbidding only what must earn nothing passes.
	code, _, stderr = redraft(t, "probe", "--config", cfg, "--tasks", "20", "--forbid", "no-code,stub,exit-early,print-pass,judge-injection")
	if code != 0 {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
