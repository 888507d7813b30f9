package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/internal/doccheck"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// TestProgressBeforeFirstGroup: the first task's samples take 2 s and every
// other answer comes at once. Groups are written in input order, so no
// row can be written for 2 s; the progress lines (every 100 ms, no terminal)
// must still show requests being answered, tokens, the task count read from
// the input, and then rows, instead of staying silent (issue 16 item 2).
func TestProgressBeforeFirstGroup(t *testing.T) {
	dir := t.TempDir()
	taskPath, answers := toyTasks(t, dir, 40)
	inner := fakeserver.AnswerBySeed(answers)
	slow := "What is 0+0?"
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		r := inner(req)
		if req.Messages[0].Content == slow {
			r.Delay = 2 * time.Second
		}
		return r
	})
	srv.NoLog = true
	defer srv.Close()
	cfg := writeConfig(t, fmt.Sprintf(`
source: {kind: tasks, path: %q}
endpoint: {base_url: %q, model: m, max_in_flight: 16}
sampling: {n: 2}
output: {dir: %q}
`, taskPath, srv.BaseURL(), filepath.Join(dir, "out")))
	code, _, stderr := redraft(t, "run", "--config", cfg, "--progress", "log", "--progress-every", "100ms", "--no-audit")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	re := regexp.MustCompile(`(?m)^progress: requests (\d+) done, (\d+) failed, (\d+) in flight; (\d+) tokens/s; tasks (\d+)/40 \(([0-9.]+)%\), rows (\d+) written`)
	lines := re.FindAllStringSubmatch(stderr, -1)
	if len(lines) < 10 {
		t.Fatalf("%d progress lines in a run of 2 s at 100 ms:\n%s", len(lines), stderr)
	}
	before := 0 // lines with answered requests and no row yet
	for _, l := range lines {
		done, _ := strconv.Atoi(l[1])
		inFlight, _ := strconv.Atoi(l[3])
		rows, _ := strconv.Atoi(l[7])
		if rows == 0 && done > 0 && inFlight >= 1 {
			before++
		}
	}
	if before < 5 {
		t.Errorf("only %d progress lines showed answered requests before the first row:\n%s", before, stderr)
	}
	last := lines[len(lines)-1]
	if last[7] == "0" {
		t.Errorf("the last progress line shows no rows: %s", last[0])
	}
	// docs/long-runs.md shows a line of this run's kind (TestProgressDocLine
	// checks its numbers): its form is among the lines.
	doc := strings.TrimSpace(doccheck.One(t, repoRoot, "docs/long-runs.md", "TestProgressBeforeFirstGroup"))
	form := regexp.MustCompile(`(?m)^` + regexp.MustCompile(`\\\.|\d+`).ReplaceAllString(regexp.QuoteMeta(doc), `[0-9.]+`) + `$`)
	if !form.MatchString(stderr) {
		t.Errorf("no progress line has the form of docs/long-runs.md's %q:\n%s", doc, stderr)
	}
}
