package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/redraft/redraft/internal/doccheck"
	"github.com/redraft/redraft/rewards/execute"
)

// docs/code.md's examples as written: the grade command's input line grades
// correct in the sandbox, and the run configuration's source and reward
// sections, completed with an endpoint and an output, probe the bundled
// HumanEval problems through the code verifier (the honest program earns
// the all-pass reward).
func TestCodeDocExamples(t *testing.T) {
	if _, err := execute.New(execute.Options{Slots: 1}); err != nil {
		if errors.Is(err, execute.ErrUnavailable) && os.Getenv("REDRAFT_REQUIRE_SANDBOX") != "1" {
			t.Skipf("SKIPPING: no sandbox on this machine (set REDRAFT_REQUIRE_SANDBOX=1 to fail instead): %v", err)
		}
		t.Fatal(err)
	}
	blocks := doccheck.Checked(t, repoRoot, "docs/code.md", "TestCodeDocExamples")
	if len(blocks) != 2 {
		t.Fatalf("%d blocks, want the grade command and the configuration", len(blocks))
	}
	// The shell's printf '%s\n' 'LINE': the line between the single quotes.
	m := regexp.MustCompile(`printf '%s\\n' '([^']*)'`).FindStringSubmatch(blocks[0])
	if m == nil || !strings.Contains(blocks[0], "redraft grade --verifier python") {
		t.Fatalf("grade example: %q", blocks[0])
	}
	var out bytes.Buffer
	if err := cmdGrade([]string{"--verifier", "python"}, strings.NewReader(m[1]+"\n"), &out); err != nil {
		t.Fatal(err)
	}
	var v struct {
		Correct       bool
		Passed, Total int
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || !v.Correct || v.Passed != 1 || v.Total != 1 {
		t.Fatalf("grade example: %s (%v)", out.String(), err)
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "name: code-doc\n"+strings.ReplaceAll(blocks[1], "path: rewards/", "path: "+root+"/rewards/")+
		"endpoint: {base_url: http://127.0.0.1:9/v1, model: policy}\noutput: {dir: out}\n")
	jsonOut := filepath.Join(t.TempDir(), "probe.json")
	code, _, stderr := redraft(t, "probe", "--config", cfg, "--tasks", "3", "--json", jsonOut)
	rep := readProbeJSON(t, jsonOut)
	if code != 0 || rep.Battery != "code" || rep.Tasks != 3 || rep.Probes[0].Mean == nil || *rep.Probes[0].Mean != 1 {
		t.Fatalf("probe on the documented configuration: exit %d, %+v: %s", code, rep, stderr)
	}
}
