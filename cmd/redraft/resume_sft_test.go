package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/redraft/redraft/internal/envtest"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// TestKillAndResumeSFTJobs kills the sft jobs (Agent-R, an MR-GSM8K splice
// that calls a model, a PRM800K splice) with SIGKILL, and now and then a
// Ctrl+C, at random moments, runs
// the same command again each time, and checks that the final output holds
// exactly the rows, skips and reward summary of an uninterrupted run: every
// job kind goes through the same journalled harness.
func TestKillAndResumeSFTJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and resumes three jobs about 25 times (about a minute); -short skips it")
	}
	dir := t.TempDir()
	taskPath, answers := toyTasks(t, dir, 300)
	policy := fakeserver.AnswerBySeed(answers)
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		switch req.Model {
		case "judge":
			// Every solution is one step, judged bad: its good branch is a
			// fresh sample, kept when it is right.
			return fakeserver.Reply{Text: "The step does not follow.\nVerdict: Bad"}
		case "splicer":
			return stepAnswer(req)
		case "agent":
			// The counting game's player: on goal-3 tasks an odd seed at
			// step 1 makes the wrong move, and the episode fails.
			return envtest.CountingAnswer(req, func(goal, step int, seed int64) bool { return goal == 3 && step == 1 && seed%2 == 1 })
		}
		return policy(req)
	})
	srv.Latency, srv.NoLog = 2*time.Millisecond, true
	defer srv.Close()

	// An environment run (Agent-R in the counting game, oracle branches)
	// with 120 tasks: goals 1 to 5.
	world := envtest.New(t.Cleanup)
	envTasks := filepath.Join(dir, "env-tasks.jsonl")
	var lines strings.Builder
	for i := range 120 {
		fmt.Fprintf(&lines, `{"id": "count-%03d", "task": "count", "variation": %d, "seed": %d}`+"\n", i, i%5, i)
	}
	if err := os.WriteFile(envTasks, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, sc := range []struct {
		name, config string
		kills        int
	}{
		{"environment", fmt.Sprintf(`
name: kill-environment
seed: 2
source: {kind: environment, path: %q}
environment: {url: %q, env: counting, recipe: agent-r, max_steps: 7, max_sessions: 8}
endpoint: {base_url: %q, model: agent, max_in_flight: 8}
sampling: {n: 2, temperature: 1.0}
output: {dir: set-by-out, shard_rows: 30, row_group_rows: 16}
`, envTasks, world.URL, srv.BaseURL()), 8},
		{"agent-r", fmt.Sprintf(`
name: kill-agent-r
seed: 5
source: {kind: tasks, path: %q}
endpoint: {base_url: %q, model: policy, max_in_flight: 8, retries: 2, backoff_initial: 1ms, backoff_max: 2ms}
sampling: {n: 4, temperature: 1.0, max_tokens: 64}
agent_r:
  step_judge: {base_url: %q, model: judge}
  branches: 2
output: {dir: set-by-out, shard_rows: 40, row_group_rows: 16}
`, taskPath, srv.BaseURL(), srv.BaseURL()), 10},
		{"mr-gsm8k", fmt.Sprintf(`
name: kill-mr-gsm8k
seed: 3
splice: {format: mr-gsm8k, input: %q, keep: correct}
endpoint: {base_url: %q, model: splicer, max_in_flight: 4}
output: {dir: set-by-out, shard_rows: 50, row_group_rows: 16}
`, mrInput, srv.BaseURL()), 8},
		{"prm800k", `
name: kill-prm800k
splice: {format: prm800k, input: ../../testdata/prm800k/phase1_reconstructed.jsonl.gz}
output: {dir: set-by-out, shard_rows: 60, row_group_rows: 16}
`, 5},
	} {
		t.Run(sc.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(cfg, []byte(sc.config), 0o644); err != nil {
				t.Fatal(err)
			}
			ref := filepath.Join(t.TempDir(), "ref")
			var stderr bytes.Buffer
			if code := run(context.Background(), []string{"run", "--config", cfg, "--out", ref, "--progress", "off"}, nil, &bytes.Buffer{}, &stderr); code != 0 {
				t.Fatalf("reference run: exit %d: %s", code, stderr.String())
			}
			want, wantM := readRun(t, ref), mustManifest(t, ref)
			if len(want.other["sft"]) == 0 || wantM.SkippedTotal == 0 {
				t.Fatalf("the reference run has %d rows and %d skips: the scenario tests nothing", len(want.other["sft"]), wantM.SkippedTotal)
			}
			rng := rand.New(rand.NewPCG(uint64(len(sc.name)), 9))
			out := filepath.Join(t.TempDir(), "killed")
			kills, sessions, resumed, interrupts := 0, 0, 0, 0
			for {
				sessions++
				cmd, log, done := startChild(t, "run", "--config", cfg, "--out", out, "--progress", "off")
				if kills >= sc.kills {
					if err := <-done; err != nil {
						t.Fatalf("final session: %v\n%s", err, log.String())
					}
					if strings.Contains(log.String(), "resuming") {
						resumed++
					}
					break
				}
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("session %d: %v\n%s", sessions, err, log.String())
					}
					// Done before the kill: start over to kill it more.
					if err := os.RemoveAll(out); err != nil {
						t.Fatal(err)
					}
					continue
				case <-time.After(time.Duration(20+rng.IntN(300)) * time.Millisecond):
				}
				if kills%3 == 2 {
					// Ctrl+C: the inputs in flight finish, the output is
					// committed and the process says how to resume.
					cmd.Process.Signal(os.Interrupt)
					err := <-done
					var ee *exec.ExitError
					switch {
					case err == nil:
						// It finished its last inputs just then.
					case errors.As(err, &ee) && ee.ExitCode() == -1 && !strings.Contains(log.String(), "stopping"):
						// Before the handler was installed: a kill.
					case !errors.As(err, &ee) || ee.ExitCode() != 130 || !strings.Contains(log.String(), "resume with the same command"):
						t.Fatalf("Ctrl+C: %v\n%s", err, log.String())
					default:
						if m := mustManifest(t, out); m.Status != export.StatusInterrupted {
							t.Fatalf("manifest after Ctrl+C: %s", m.Status)
						}
						interrupts++
					}
				} else {
					cmd.Process.Kill()
					<-done
				}
				kills++
				if strings.Contains(log.String(), "resuming") {
					resumed++
				}
			}
			got, gotM := readRun(t, out), mustManifest(t, out)
			compareRuns(t, got, want)
			if !reflect.DeepEqual(gotM.Skipped, wantM.Skipped) || gotM.SkippedTotal != wantM.SkippedTotal {
				t.Errorf("skipped differs: %d listed (%d in all) after the kills, %d (%d) uninterrupted", len(gotM.Skipped), gotM.SkippedTotal, len(wantM.Skipped), wantM.SkippedTotal)
			}
			if gotM.Datasets["sft"].Groups != wantM.Datasets["sft"].Groups {
				t.Errorf("%d groups after the kills, %d uninterrupted", gotM.Datasets["sft"].Groups, wantM.Datasets["sft"].Groups)
			}
			t.Logf("%d sft rows, %d skips: %d kills (%d of them Ctrl+C), %d sessions, %d of them resumed", len(want.other["sft"]), wantM.SkippedTotal, kills, interrupts, sessions, resumed)
			if resumed == 0 {
				t.Error("no session resumed a killed one")
			}
			var vout bytes.Buffer
			if code := run(context.Background(), []string{"validate", out}, nil, &vout, &vout); code != 0 {
				t.Errorf("validate: %s", vout.String())
			}
		})
	}
}

func mustManifest(t *testing.T, dir string) *export.Manifest {
	t.Helper()
	m, err := export.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
