package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// toyTasks writes n tasks "What is i+i?" (reference 2i, data_source toy,
// ids t-i) to dir/tasks.jsonl and returns the path and the answers, keyed
// by prompt, that fakeserver.AnswerBySeed takes.
func toyTasks(t *testing.T, dir string, n int) (string, map[string]int) {
	t.Helper()
	var b strings.Builder
	answers := map[string]int{}
	for i := range n {
		q := fmt.Sprintf("What is %d+%d?", i, i)
		answers[q] = 2 * i
		fmt.Fprintf(&b, `{"id": "t-%d", "prompt": %q, "reference": %d, "data_source": "toy"}`+"\n", i, q, 2*i)
	}
	path := filepath.Join(dir, "tasks.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, answers
}
