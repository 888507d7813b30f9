package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// quickstartOut runs the quickstart into a temporary directory and returns
// it.
func quickstartOut(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	cfg := writeConfig(t, strings.ReplaceAll(mustRead(t, filepath.Join(root, "configs", "quickstart.yaml")), "path: testdata/", "path: "+root+"/testdata/"))
	if code, _, stderr := redraft(t, "run", "--config", cfg, "--out", dir, "--no-audit", "--progress", "off"); code != 0 {
		t.Fatalf("quickstart: exit %d: %s", code, stderr)
	}
	return dir
}

// redraft audit --fail-on: a bound the quickstart crosses fails the command
// naming it (exit 1), bounds it keeps pass (exit 0), and an unknown metric
// is a usage error listing the valid ones.
func TestAuditFailOn(t *testing.T) {
	dir := quickstartOut(t)
	// frac_zero_std is 0.446, null_rate 0, failed_rate 0, truncation_rate
	// null (recorded rollouts carry no finish_reason).
	code, stdout, stderr := redraft(t, "audit", dir, "--fail-on", "null_rate>0.05,truncation_rate>0.2,frac_zero_std>0.6,failed_rate>0.1")
	if code != 0 || stderr != "" || !strings.Contains(stdout, "frac_zero_std>0.6") || !strings.Contains(stdout, "not checked") {
		t.Errorf("bounds kept: exit %d, stderr %q\n%s", code, stderr, stdout)
	}
	code, stdout, stderr = redraft(t, "audit", "--fail-on", "null_rate>0.05", "--fail-on", "frac_zero_std>0.4,accuracy<0.5", dir)
	if code != 1 || !strings.Contains(stderr, "2 bound(s) crossed: frac_zero_std>0.4 (frac_zero_std 0.445792), accuracy<0.5 (accuracy 0.379265)") ||
		strings.Contains(stderr, "null_rate") || !strings.Contains(stdout, "CROSSED") {
		t.Errorf("bounds crossed: exit %d, stderr %q\n%s", code, stderr, stdout)
	}
	// With --json - stdout is the JSON alone; the verdict is the exit code.
	code, stdout, _ = redraft(t, "audit", dir, "--json", "-", "--fail-on", "frac_zero_std>0.4")
	if code != 1 || !strings.HasPrefix(stdout, "{") || strings.Contains(stdout, "CROSSED") {
		t.Errorf("--json -: exit %d\n%.200s", code, stdout)
	}
	code, _, stderr = redraft(t, "audit", dir, "--fail-on", "null_ratio>0.05")
	if code != 2 || !strings.Contains(stderr, `unknown metric "null_ratio"`) || !strings.Contains(stderr, "null_rate, pass_at_k") {
		t.Errorf("unknown metric: exit %d: %s", code, stderr)
	}
}
