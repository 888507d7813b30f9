package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGradePlugin: redraft grade --verifier plugin sends each line to the
// plug-in and prints its result in input order, in batches; a line the
// plug-in cannot score keeps its reason and a null score.
func TestGradePlugin(t *testing.T) {
	script := filepath.Join(t.TempDir(), "plugin.py")
	err := os.WriteFile(script, []byte(`import json, sys
print(json.dumps({"protocol": "redraft-verifier/1", "name": "echo"}), flush=True)
for line in sys.stdin:
    r = json.loads(line)
    if r["response"] == "?":
        print(json.dumps({"id": r["id"], "score": None, "reason": "unreadable"}), flush=True)
    else:
        print(json.dumps({"id": r["id"], "score": 1.0 if r["response"] == r.get("reference") else 0.0, "answer": r["response"]}), flush=True)
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	for i := range 100 { // more than one batch of 64
		pred := fmt.Sprint(i)
		switch i % 3 {
		case 1:
			pred = "wrong"
		case 2:
			pred = "?"
		}
		fmt.Fprintf(&in, `{"prediction": %q, "reference": "%d", "task_id": "t%d"}`+"\n", pred, i, i)
	}
	var out bytes.Buffer
	if err := cmdGrade([]string{"--verifier", "plugin", "--plugin-command", "python3 " + script}, strings.NewReader(in.String()), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 100 {
		t.Fatalf("%d lines, want 100", len(lines))
	}
	for i, l := range lines {
		var v struct {
			Correct bool
			Score   *float64
			Answer  string
			Reason  string
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatal(err)
		}
		ok := false
		switch i % 3 {
		case 0:
			ok = v.Correct && v.Score != nil && *v.Score == 1 && v.Answer == fmt.Sprint(i)
		case 1:
			ok = !v.Correct && v.Score != nil && *v.Score == 0 && v.Answer == "wrong"
		case 2:
			ok = !v.Correct && v.Score == nil && v.Reason == "unreadable"
		}
		if !ok {
			t.Errorf("line %d: %s", i+1, l)
		}
	}
	if err := cmdGrade([]string{"--verifier", "plugin"}, strings.NewReader(""), &out); err == nil || !strings.Contains(err.Error(), "--plugin-command") {
		t.Errorf("no plug-in: %v", err)
	}
}
