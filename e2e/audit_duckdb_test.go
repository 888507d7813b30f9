package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/audit"
	"github.com/redraft/redraft/internal/pycheck"
)

// TestAuditMatchesDuckDB computes the whole audit a second time in DuckDB
// SQL (bench/audit/duckdb_audit.py, which shares no code with package audit)
// and requires the two reports to agree on every key and every number to
// 1e-9 (relative above 1): on the quickstart (1,319 GSM8K groups of 4, one
// turn) and on a two-turn SCoRe run with a judge, consensus and logprobs
// whose row groups of 3 rows split its 4-row groups. A metric the Go report
// gains without a DuckDB counterpart fails here too, by key. Needs duckdb in
// REDRAFT_PYTHON (python/requirements.txt); REDRAFT_REQUIRE_PYTHON=1 makes
// its absence a failure.
func TestAuditMatchesDuckDB(t *testing.T) {
	py := pycheck.Python(t)
	if out, err := exec.Command(py, "-c", "import duckdb").CombinedOutput(); err != nil {
		if os.Getenv("REDRAFT_REQUIRE_PYTHON") != "" {
			t.Fatalf("REDRAFT_REQUIRE_PYTHON is set, but %s cannot import duckdb: %v\n%s", py, err, out)
		}
		t.Skipf("%s cannot import duckdb (scripts/python-env.sh installs it): %s", py, out)
	}
	ctx := context.Background()
	for _, c := range []struct {
		name string
		dir  string
	}{
		{"quickstart", quickstartRun(t)},
		{"score", scoreRun(t, 3)},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The report of redraft audit --json: the engine's metric
			// groups and the sections added by later passes (agents; absent
			// from these runs, so DuckDB must not print one either).
			a, err := audit.Path(ctx, c.dir, audit.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := a.AddAgents(ctx, c.dir, 0); err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			var goDoc, dd map[string]any
			if err := json.Unmarshal(b, &goDoc); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(py, filepath.Join("..", "bench", "audit", "duckdb_audit.py"), c.dir)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("duckdb_audit.py: %v\n%s", err, stderr.String())
			}
			if err := json.Unmarshal(out, &dd); err != nil {
				t.Fatalf("duckdb_audit.py printed no JSON: %v\n%.2000s", err, out)
			}
			if len(a.Slices) < 4 {
				t.Fatalf("only %d slices: the comparison would prove little", len(a.Slices))
			}
			for _, d := range diffJSON(goDoc, dd, "", nil) {
				t.Errorf("%s: redraft audit and DuckDB differ at %s", c.name, d)
			}
		})
	}
}

// diffJSON lists every path where two JSON documents differ beyond 1e-9
// (relative above 1, as sameJSON), with both values.
func diffJSON(a, b any, path string, out []string) []string {
	if len(out) >= 20 {
		return out
	}
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return append(out, path+": "+showJSON(a)+" vs "+showJSON(b))
		}
		for k := range x {
			if _, ok := y[k]; !ok {
				out = append(out, path+"/"+k+": in redraft's report only (bench/audit/duckdb_audit.py must compute it)")
				continue
			}
			out = diffJSON(x[k], y[k], path+"/"+k, out)
		}
		for k := range y {
			if _, ok := x[k]; !ok {
				out = append(out, path+"/"+k+": in DuckDB's report only")
			}
		}
		return out
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return append(out, path+": "+showJSON(a)+" vs "+showJSON(b))
		}
		for i := range x {
			out = diffJSON(x[i], y[i], path+"/"+strings.TrimSpace(jsonStr(i)), out)
		}
		return out
	}
	if sameJSON(a, b, path) != "" {
		out = append(out, path+": "+showJSON(a)+" vs "+showJSON(b))
	}
	return out
}

func showJSON(v any) string {
	s := jsonStr(v)
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func jsonStr(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
