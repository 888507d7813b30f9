package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// TestRetryFailed: a run against a server that fails a quarter of its
// requests ends non-zero (the failure bound stops it), keeps its rows, and
// "redraft run --retry-failed" against the healed server requests exactly
// the samples that failed and the tasks never reached, replays every other
// one, and leaves the output an uninterrupted run against a healthy server
// would have written (issue 16 item 1).
func TestRetryFailed(t *testing.T) {
	dir := t.TempDir()
	taskPath, answers := toyTasks(t, dir, 80)
	inner := fakeserver.AnswerBySeed(answers)
	var broken atomic.Bool
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		if broken.Load() && *req.Seed%4 == 0 {
			return fakeserver.Reply{Status: 503, Message: "overloaded"}
		}
		return inner(req)
	})
	srv.NoLog = true
	defer srv.Close()
	config := func(out string) string {
		return writeConfig(t, fmt.Sprintf(`
name: retry
seed: 7
source: {kind: tasks, path: %q}
endpoint: {base_url: %q, model: m, max_in_flight: 8, retries: 1, breaker_failures: 1000}
sampling: {n: 4, temperature: 1.0}
pipeline: {groups_in_flight: 8}
output: {dir: %q, shard_rows: 64, row_group_rows: 16}
`, taskPath, srv.BaseURL(), out))
	}

	ref := filepath.Join(dir, "ref")
	if code, _, stderr := redraft(t, "run", "--config", config(ref), "--progress", "off", "--no-audit"); code != 0 {
		t.Fatalf("reference run: exit %d: %s", code, stderr)
	}
	want := readRun(t, ref)

	out := filepath.Join(dir, "out")
	cfg := config(out)
	broken.Store(true)
	code, _, stderr := redraft(t, "run", "--config", cfg, "--progress", "off", "--no-audit")
	if code != 1 || !strings.Contains(stderr, "over pipeline.max_failure_rate") || !strings.Contains(stderr, "--retry-failed") {
		t.Fatalf("run against a failing server: exit %d: %s", code, stderr)
	}
	before, err := export.ReadManifest(out)
	if err != nil || before.Status != export.StatusFailed || before.Rewards.Failed == 0 {
		t.Fatalf("manifest of the failed run: %v %+v", err, before)
	}
	// The bound stopped it early: some tasks were never reached.
	unreached := int64(len(want.rows)) - before.Rewards.Rows
	if unreached <= 0 {
		t.Fatalf("the failed run wrote %d rows of %d: the early stop is not tested", before.Rewards.Rows, len(want.rows))
	}

	broken.Store(false)
	requests := srv.Count()
	code, _, stderr = redraft(t, "run", "--config", cfg, "--retry-failed", "--progress", "off", "--no-audit")
	if code != 0 {
		t.Fatalf("--retry-failed: exit %d: %s", code, stderr)
	}
	asked := srv.Count() - requests
	if want := before.Rewards.Failed + unreached; asked != want {
		t.Errorf("--retry-failed sent %d requests; %d samples failed and %d were never reached", asked, before.Rewards.Failed, unreached)
	}
	after, err := export.ReadManifest(out)
	if err != nil || after.Retry == nil || after.Retry.FailedBefore != before.Rewards.Failed || after.Retry.Requested != asked ||
		after.Retry.Replayed != before.Rewards.Rows-before.Rewards.Failed || after.Status != export.StatusComplete {
		t.Fatalf("manifest after the retry: %v %+v %+v", err, after, after.Retry)
	}
	if !strings.Contains(string(after.Config), out) || strings.Contains(string(after.Config), out+".retry") {
		t.Errorf("the retried manifest's config names another directory: %s", after.Config)
	}
	compareRuns(t, readRun(t, out), want)
	for _, leftover := range []string{out + ".retry", out + ".replaced"} {
		if _, err := os.Stat(leftover); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", leftover, err)
		}
	}
	if code, stdout, _ := redraft(t, "validate", out); code != 0 {
		t.Errorf("validate after the retry: %s", stdout)
	}
	// Again: nothing left to retry.
	if code, _, stderr := redraft(t, "run", "--config", cfg, "--retry-failed", "--progress", "off"); code != 0 || !strings.Contains(stderr, "nothing to retry") {
		t.Errorf("second retry: exit %d: %s", code, stderr)
	}
}
