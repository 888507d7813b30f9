package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/redraft/redraft/internal/envtest"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// `redraft run` on an environment configuration (the in-process counting
// game and a fake model that fails goal-3 tasks on odd seeds) says what it
// wrote, the sft rows and the episodes' rl rows, and prints the audit with
// its agents block; `redraft validate` accepts the output.
func TestRunEnvironment(t *testing.T) {
	world := envtest.New(t.Cleanup)
	model := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		return envtest.CountingAnswer(req, func(goal, step int, seed int64) bool { return goal == 3 && step == 1 && seed%2 == 1 })
	})
	defer model.Close()
	dir := t.TempDir()
	tasks := filepath.Join(dir, "tasks.jsonl")
	var lines strings.Builder
	for i := range 10 {
		fmt.Fprintf(&lines, `{"id": "count-%d", "task": "count", "variation": %d}`+"\n", i, i%4)
	}
	os.WriteFile(tasks, []byte(lines.String()), 0o644)
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`name: count
source: {kind: environment, path: %q}
environment: {url: %s, env: counting, recipe: agent-r, max_steps: 6}
endpoint: {base_url: %s, model: agent}
sampling: {n: 4}
output: {dir: %q}
`, tasks, world.URL, model.BaseURL(), filepath.Join(dir, "out"))), 0o644)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"run", "--config", cfg, "--progress", "off"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !regexp.MustCompile(`wrote \d+ sft rows \(\d groups\) in 1 shard\(s\) to .* in .*\nand 40 rl rows \(10 groups\) in 1 shard\(s\)\n\d+ inputs produced no row`).MatchString(stderr.String()) {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	if out := stdout.String(); !strings.Contains(out, "agents by env") || !strings.Contains(out, "counting ") {
		t.Errorf("no agents block in the audit:\n%s", out)
	}
	var vout bytes.Buffer
	if code := run(context.Background(), []string{"validate", filepath.Join(dir, "out")}, nil, &vout, &vout); code != 0 {
		t.Errorf("validate: %s", vout.String())
	}
}
