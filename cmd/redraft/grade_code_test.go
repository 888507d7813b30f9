package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/redraft/redraft/rewards/execute"
)

// TestGradePython: redraft grade --verifier python prints one verdict per
// input line, in input order, with correct, reason and the components.
func TestGradePython(t *testing.T) {
	if _, err := execute.New(execute.Options{}); err != nil {
		if errors.Is(err, execute.ErrUnavailable) && os.Getenv("REDRAFT_REQUIRE_SANDBOX") != "1" {
			t.Skipf("SKIPPING: no sandbox: %v", err)
		}
		t.Fatal(err)
	}
	var in strings.Builder
	want := []string{}
	for i := 0; i < 12; i++ {
		rec := map[string]string{"tests": "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(3) == 9\n", "entry_point": "sq"}
		switch i % 3 {
		case 0:
			rec["prediction"], want = "```python\ndef sq(x):\n    return x * x\n```", append(want, "")
		case 1:
			rec["prediction"], want = "```python\ndef sq(x):\n    return x + x\n```", append(want, "tests_failed")
		case 2:
			rec["prediction"], want = "no code", append(want, "syntax_error")
		}
		b, _ := json.Marshal(rec)
		in.Write(append(b, '\n'))
	}
	var out bytes.Buffer
	if err := cmdGrade([]string{"--verifier", "python", "--jobs", "2"}, strings.NewReader(in.String()), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	for i, l := range lines {
		var v struct {
			Correct       bool
			Reason        string
			Passed, Total int
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatal(err)
		}
		if v.Reason != want[i] || v.Correct != (want[i] == "") || v.Total != 2 && want[i] != "syntax_error" {
			t.Errorf("line %d: %s, want reason %q", i+1, l, want[i])
		}
	}
	if err := cmdGrade([]string{"--verifier", "java"}, strings.NewReader(""), &out); err == nil {
		t.Error("--verifier java accepted")
	}
}
