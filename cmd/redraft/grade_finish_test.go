package main

import (
	"strings"
	"testing"
)

// TestGradeFinishReason: redraft grade takes the finish_reason a case gives,
// as runs and splices do: the same bare answer is correct after "stop" (or
// with none) and no answer after "length".
func TestGradeFinishReason(t *testing.T) {
	in := `{"gold": "5", "prediction": "5"}
{"gold": "5", "prediction": "5", "finish_reason": "stop"}
{"gold": "5", "prediction": "5", "finish_reason": "length"}
`
	code, stdout, stderr := redraftIn(t, in, "grade")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], `"correct":true`) || !strings.Contains(lines[1], `"correct":true`) ||
		!strings.Contains(lines[2], `"rule":"no_answer:cut_off"`) {
		t.Fatalf("verdicts:\n%s", stdout)
	}
}
