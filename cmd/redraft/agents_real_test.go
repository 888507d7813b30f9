package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/envtest"
	"github.com/redraft/redraft/internal/llamatest"
)

// An Agent-R run of SmolLM2 (the real llama-server at REDRAFT_LLAMA_URL) in
// the real ScienceWorld, killed with SIGKILL once its first task is in the
// journal, resumes and ends with every episode's rl row and every kept
// revision exactly once: no row lost, none written twice. The sessions the
// killed process left open in the server are given back to the resumed run.
func TestScienceWorldKillResume(t *testing.T) {
	llama := llamatest.URL(t)
	world := envtest.Start(t, "../..", "scienceworld")
	dir := t.TempDir()
	tasks := filepath.Join(dir, "tasks.jsonl")
	var lines strings.Builder
	for i, task := range []string{"find-living-thing", "power-component", "find-living-thing"} {
		fmt.Fprintf(&lines, `{"id": "t%d", "task": %q, "variation": %d}`+"\n", i, task, 2-i%2)
	}
	if err := os.WriteFile(tasks, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`name: sciworld-kill
source: {kind: environment, path: %q}
environment: {url: %s, env: scienceworld, recipe: agent-r, max_steps: 1, max_sessions: 2}
endpoint: {base_url: %s, model: SmolLM2-135M-Instruct, max_in_flight: 2}
sampling: {n: 2, temperature: 0.7, max_tokens: 16}
output: {dir: set-by-out, shard_rows: 2}
`, tasks, world, llama)), 0o644)
	out := filepath.Join(dir, "out")
	cmd, log, done := startChild(t, "run", "--config", cfg, "--out", out, "--progress", "off")
	// Kill it once the journal holds a task's rows: mid-run, with tasks in
	// flight.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		logs, _ := filepath.Glob(filepath.Join(out, ".redraft", "wal-*.log"))
		var size int64
		for _, l := range logs {
			if st, err := os.Stat(l); err == nil {
				size += st.Size()
			}
		}
		shards, _ := filepath.Glob(filepath.Join(out, "data", "rl", "*.parquet"))
		if size > 0 || len(shards) > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the run ended before it could be killed: %v\n%s", err, log.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no task written within 5 minutes\n%s", log.String())
		}
	}
	cmd.Process.Kill()
	<-done
	if m, err := export.ReadManifest(out); err == nil && m.Status == export.StatusComplete {
		t.Fatal("the run completed before the kill: the test tests nothing")
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"run", "--config", cfg, "--out", out, "--progress", "off"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String()+stdout.String(), "resuming") {
		t.Errorf("the second run did not resume:\n%s", stderr.String())
	}
	// The sessions the killed run left open were given back (the resumed
	// run opened its episodes under the same ids) and closed.
	if n := envtest.Sessions(t, world); n != 0 {
		t.Errorf("the server holds %d sessions after the resumed run", n)
	}
	m := mustManifest(t, out)
	rl := readRun(t, out).rows
	seen := map[string]int{}
	for _, r := range rl {
		seen[fmt.Sprintf("%s/%d", r.TaskID, r.SampleIndex)]++
	}
	if len(rl) != 6 || len(seen) != 6 {
		t.Errorf("%d rl rows, %d distinct episodes: want each of the 3 tasks' 2 episodes once (%v)", len(rl), len(seen), seen)
	}
	ids := map[string]bool{}
	for _, s := range m.Datasets["sft"].Shards {
		rows, err := export.ReadRows[export.SFTRow](context.Background(), filepath.Join(out, s.Path))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if ids[r.ID] {
				t.Errorf("sft row %s written twice", r.ID)
			}
			ids[r.ID] = true
		}
	}
	if int64(len(ids))+m.SkippedTotal != 6 {
		t.Errorf("%d sft rows and %d skipped: every episode has a row or a reason, once", len(ids), m.SkippedTotal)
	}
	var vout bytes.Buffer
	if code := run(context.Background(), []string{"validate", out}, nil, &vout, &vout); code != 0 {
		t.Errorf("validate: %s", vout.String())
	}
}
