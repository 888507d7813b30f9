package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// A pod stop: Kubernetes sends SIGTERM, waits terminationGracePeriodSeconds
// (30 by default) and sends SIGKILL. With the default --drain, a run whose
// requests hang (so the tasks in flight never finish) must still end within
// that grace period, with its output committed and its manifest saying
// interrupted. Run as a child process (see TestMain), like the
// kill-and-resume harness.
func TestSIGTERMWithinKubernetesGrace(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the default drain (20s); -short skips it")
	}
	const grace = 30 * time.Second
	dir := t.TempDir()
	var tasks strings.Builder
	for i := range 40 {
		fmt.Fprintf(&tasks, `{"id": "t-%d", "prompt": "What is %d+%d?", "reference": %d}`+"\n", i, i, i, 2*i)
	}
	taskPath := filepath.Join(dir, "tasks.jsonl")
	if err := os.WriteFile(taskPath, []byte(tasks.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	inner := fakeserver.AnswerBySeed(nil)
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		// From the 11th task on, some requests hang (until the attempt
		// timeout, 10m).
		var i int
		fmt.Sscanf(req.Messages[len(req.Messages)-1].Content, "What is %d+", &i)
		if i >= 10 && *req.Seed%7 == 0 {
			return fakeserver.Reply{Fault: fakeserver.Hang}
		}
		return inner(req)
	})
	srv.NoLog = true
	defer srv.Close()
	out := filepath.Join(dir, "out")
	cfgPath := filepath.Join(dir, "run.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
name: drain
source: {kind: tasks, path: %q}
endpoint: {base_url: %q, model: policy, max_in_flight: 8}
sampling: {n: 4}
output: {dir: %q}
`, taskPath, srv.BaseURL(), out)), 0o644); err != nil {
		t.Fatal(err)
	}
	args, _ := json.Marshal([]string{"run", "--config", cfgPath, "--no-audit", "--progress", "off"})
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "REDRAFT_RESUME_CHILD="+string(args))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for deadline := time.Now().Add(20 * time.Second); srv.Count() < 60; {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the run sent %d requests in 20s\n%s", srv.Count(), stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	sent := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-done:
	case <-time.After(grace):
		cmd.Process.Kill()
		<-done
		t.Fatalf("still running %s after SIGTERM: Kubernetes would have killed it with SIGKILL\n%s", grace, stderr.String())
	}
	took := time.Since(sent)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	m, err := export.ReadManifest(out)
	if err != nil || m.Status != export.StatusInterrupted {
		t.Fatalf("manifest after SIGTERM: %v %+v\n%s", err, m, stderr.String())
	}
	if m.Datasets["rl"].Rows < 40 {
		t.Errorf("%d rows committed, want the first 10 tasks' 40 at least", m.Datasets["rl"].Rows)
	}
	if !strings.Contains(stderr.String(), "did not finish within 20s") {
		t.Errorf("no word of the drain running out:\n%s", stderr.String())
	}
	t.Logf("ended %s after SIGTERM with %d rows committed", took.Round(time.Millisecond), m.Datasets["rl"].Rows)
}
