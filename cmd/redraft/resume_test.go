package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// TestMain doubles as the child side of the kill-and-resume harness: the test
// binary, started again with REDRAFT_RESUME_CHILD set to a JSON list of
// arguments, runs "redraft" with the process's real signals, as main does.
func TestMain(m *testing.M) {
	if env := os.Getenv("REDRAFT_RESUME_CHILD"); env != "" {
		var args []string
		if err := json.Unmarshal([]byte(env), &args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		sigs := make(chan os.Signal, 2)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		os.Exit(runWithSignals(context.Background(), args, sigs, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// resumeScenario is one configuration the harness kills and resumes.
type resumeScenario struct {
	name  string
	tasks int
	kills int
	// extra is appended to the configuration.
	extra string
}

// TestKillAndResume kills "redraft run" at random moments (SIGKILL, and now
// and then a Ctrl+C) while it generates against the in-process server, runs
// the same command again each time, and checks that the final output holds
// exactly the rows of an uninterrupted run, in the same order, and that the
// server was not asked for much more than the uninterrupted run asked for:
// at most the groups in flight at each kill are generated twice.
func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and resumes a run 50+ times (about a minute); -short skips it")
	}
	for _, sc := range []resumeScenario{
		{name: "grpo", tasks: 2500, kills: 50, extra: `
advantage: {estimator: grpo, drop_zero_variance: true}
episode: {pairs: false}`},
		{name: "score-whitened", tasks: 600, kills: 15, extra: `
episode: {turns: 2, feedback: fixed, pairs: true}
reward: {weights: {verifiable: 1.0, score_bonus: 1.0}, score_bonus: {alpha: 10}}
advantage: {estimator: reinforce_pp_baseline, whiten: sequence, batch_groups: 8}`},
		{name: "self-verify", tasks: 400, kills: 8, extra: `
self_verify: {}
reward: {weights: {self_verify_gen: 1.0, self_verify_match: 1.0}}`},
		{name: "pam-sft", tasks: 400, kills: 8, extra: `
episode: {turns: 2, feedback: fixed, sft: pam}`},
	} {
		t.Run(sc.name, func(t *testing.T) { killAndResume(t, sc) })
	}
}

func killAndResume(t *testing.T, sc resumeScenario) {
	var tasks strings.Builder
	answers := map[string]int{}
	for i := range sc.tasks {
		q := fmt.Sprintf("What is %d+%d?", i, i)
		answers[q] = 2 * i
		fmt.Fprintf(&tasks, `{"id": "t-%d", "prompt": %q, "reference": %d, "data_source": "toy"}`+"\n", i, q, 2*i)
	}
	dir := t.TempDir()
	taskPath := filepath.Join(dir, "tasks.jsonl")
	if err := os.WriteFile(taskPath, []byte(tasks.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	inner := fakeserver.AnswerBySeed(answers)
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		// A few samples fail for good, so failures.jsonl is resumed too.
		if *req.Seed%23 == 0 {
			return fakeserver.Reply{Status: 500}
		}
		return inner(req)
	})
	srv.Latency, srv.NoLog = 5*time.Millisecond, true
	defer srv.Close()
	const window, n = 16, 4
	config := func(out string) string {
		p := filepath.Join(dir, filepath.Base(out)+".yaml")
		body := fmt.Sprintf(`
name: resume-%s
seed: 11
source: {kind: tasks, path: %q}
endpoint: {base_url: %q, model: policy, max_in_flight: 8, retries: 2, backoff_initial: 1ms, backoff_max: 2ms}
sampling: {n: %d, temperature: 1.0, max_tokens: 64}
pipeline: {groups_in_flight: %d}
output: {dir: %q, shard_bytes: 131072, row_group_rows: 256}
%s`, sc.name, taskPath, srv.BaseURL(), n, window, out, sc.extra)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// The uninterrupted run.
	refDir := filepath.Join(dir, "ref")
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"run", "--config", config(refDir), "--no-audit", "--progress", "off"}, nil, &bytes.Buffer{}, &stderr); code != 0 {
		t.Fatalf("reference run: exit %d: %s", code, stderr.String())
	}
	refRequests := srv.Count()
	want := readRun(t, refDir)

	// The run killed again and again. When a run completes before the
	// harness has killed it enough times, the next round starts over in a
	// new directory; every round's output is checked.
	rng := rand.New(rand.NewPCG(uint64(sc.tasks), 7))
	kills, interrupts, sessions := 0, 0, 0
	var outDir string
	for round := 0; kills < sc.kills; round++ {
		outDir = filepath.Join(dir, fmt.Sprintf("killed-%d", round))
		cfgPath := config(outDir)
		before := srv.Count()
		roundKills := 0
		for {
			sessions++
			cmd, out, done := startChild(t, "run", "--config", cfgPath, "--no-audit", "--progress", "off", "--drain", "10s")
			if kills >= sc.kills {
				if err := <-done; err != nil {
					t.Fatalf("final session: %v\n%s", err, out.String())
				}
				break
			}
			delay := time.Duration(5+rng.IntN(200)) * time.Millisecond
			finished := false
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("session %d: %v\n%s", sessions, err, out.String())
				}
				finished = true
			case <-time.After(delay):
			}
			if finished {
				break
			}
			if rng.IntN(8) == 0 {
				// Ctrl+C: the tasks in flight finish, the output is
				// committed and the process says how to resume.
				cmd.Process.Signal(os.Interrupt)
				err := <-done
				if err == nil {
					break // it finished its last tasks just then
				}
				var ee *exec.ExitError
				if errors.As(err, &ee) && ee.ExitCode() == -1 && !strings.Contains(out.String(), "stopping") {
					// The signal came before the process had installed its
					// handler (during start-up): the same as a kill.
					kills++
					roundKills++
					continue
				}
				if !errors.As(err, &ee) || ee.ExitCode() != 130 || !strings.Contains(out.String(), "resume with the same command") {
					t.Fatalf("Ctrl+C: %v\n%s", err, out.String())
				}
				m, err := export.ReadManifest(outDir)
				if err != nil || m.Status != export.StatusInterrupted {
					t.Fatalf("manifest after Ctrl+C: %v %+v", err, m)
				}
				interrupts++
				roundKills++
				continue
			}
			cmd.Process.Kill()
			<-done
			kills++
			roundKills++
		}
		compareRuns(t, readRun(t, outDir), want)
		// Only what was in flight at a kill is asked for again.
		extra := srv.Count() - before - refRequests
		bound := int64(roundKills) * window * n * 2 // two turns at most
		t.Logf("round %d: %d interruptions; %d requests beyond the uninterrupted run's %d (bound %d)", round, roundKills, extra, refRequests, bound)
		if extra > bound {
			t.Errorf("%d requests beyond the uninterrupted run's %d; at most %d were in flight at the kills", extra, refRequests, bound)
		}
	}
	t.Logf("%d tasks, %d rows: %d kills (SIGKILL), %d Ctrl+C, %d sessions", sc.tasks, len(want.rows), kills, interrupts, sessions)
	var vout bytes.Buffer
	if code := run(context.Background(), []string{"validate", outDir}, nil, &vout, &vout); code != 0 {
		t.Errorf("validate: %s", vout.String())
	}
	if _, err := os.Stat(filepath.Join(outDir, ".redraft")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the journal of a complete run is still there: %v", err)
	}
}

// startChild starts "redraft args..." as a child process (this test binary,
// see TestMain) with the process's real signals; done receives its exit.
func startChild(t *testing.T, args ...string) (cmd *exec.Cmd, out *bytes.Buffer, done chan error) {
	t.Helper()
	enc, _ := json.Marshal(args)
	cmd = exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "REDRAFT_RESUME_CHILD="+string(enc))
	out = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done = make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return cmd, out, done
}

func compareRuns(t *testing.T, got, want runOutput) {
	t.Helper()
	if len(got.rows) != len(want.rows) {
		t.Fatalf("%d rows after the kills, %d in the uninterrupted run", len(got.rows), len(want.rows))
	}
	for i := range got.rows {
		if !reflect.DeepEqual(got.rows[i], want.rows[i]) {
			a, _ := json.Marshal(got.rows[i])
			b, _ := json.Marshal(want.rows[i])
			t.Fatalf("row %d differs:\nresumed       %s\nuninterrupted %s", i, a, b)
		}
	}
	for _, name := range []string{"verl", "pairs", "sft", "failures"} {
		if !reflect.DeepEqual(got.other[name], want.other[name]) {
			t.Errorf("%s differs: %d vs %d lines", name, len(got.other[name]), len(want.other[name]))
		}
	}
	if len(want.other["sft"]) > 0 && !reflect.DeepEqual(got.filtered, want.filtered) {
		t.Errorf("sft filter counts differ: %v vs %v", got.filtered, want.filtered)
	}
	if !reflect.DeepEqual(got.summary, want.summary) {
		t.Errorf("reward summary differs:\n%+v\n%+v", got.summary, want.summary)
	}
}

type runOutput struct {
	filtered map[string]int64
	rows     []export.RLRow
	other    map[string][]string
	summary  export.RewardSummary
}

// readRun reads a complete run's rows in manifest order, with the fields that
// legitimately differ between runs (latency) cleared.
func readRun(t *testing.T, dir string) runOutput {
	t.Helper()
	m, err := export.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != export.StatusComplete {
		t.Fatalf("%s: status %s (%s)", dir, m.Status, m.Error)
	}
	out := runOutput{other: map[string][]string{}, summary: m.Rewards, filtered: m.Datasets["sft"].Filtered}
	for _, s := range m.Datasets["rl"].Shards {
		rows, err := export.ReadRL(context.Background(), filepath.Join(dir, s.Path))
		if err != nil {
			t.Fatal(err)
		}
		for i := range rows {
			rows[i].LatencyMS = nil
		}
		out.rows = append(out.rows, rows...)
	}
	for _, name := range []string{"verl", "pairs", "sft"} {
		for _, s := range m.Datasets[name].Shards {
			var lines []string
			switch name {
			case "verl":
				rows, err := export.ReadRows[export.VerlRow](context.Background(), filepath.Join(dir, s.Path))
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rows {
					b, _ := json.Marshal(r)
					lines = append(lines, string(b))
				}
			case "sft":
				rows, err := export.ReadRows[export.SFTRow](context.Background(), filepath.Join(dir, s.Path))
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rows {
					b, _ := json.Marshal(r)
					lines = append(lines, string(b))
				}
			case "pairs":
				rows, err := export.ReadRows[export.PairRow](context.Background(), filepath.Join(dir, s.Path))
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rows {
					b, _ := json.Marshal(r)
					lines = append(lines, string(b))
				}
			}
			out.other[name] = append(out.other[name], lines...)
		}
	}
	if m.Failures != nil {
		b, err := os.ReadFile(filepath.Join(dir, m.Failures.Path))
		if err != nil {
			t.Fatal(err)
		}
		out.other["failures"] = strings.Split(string(b), "\n")
	}
	return out
}
