package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/doccheck"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// The example outputs of the README and docs/ are the program's: each test
// here runs what a block shows and compares the block with what the program
// prints or writes (the blocks are found by their marker, see
// internal/doccheck and TestDocsOutputBlocksAreChecked).

// absRoot is the repository root as an absolute path, for tests that change
// the working directory.
func absRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// quickstartConfig is configs/quickstart.yaml with its input found from
// anywhere.
func quickstartConfig(t *testing.T, root string) string {
	t.Helper()
	return writeConfig(t, strings.ReplaceAll(mustRead(t, filepath.Join(root, "configs", "quickstart.yaml")), "path: testdata/", "path: "+root+"/testdata/"))
}

// TestReadmeQuickstartOutput runs the README's first command from a fresh
// directory: it prints the README's audit block, writes the files of the
// README's directory listing, and run again prints the audit only. The
// listing's datasets that the quickstart does not write are written by the
// presets that the listing names (pam, scl-pairs).
func TestReadmeQuickstartOutput(t *testing.T) {
	root := absRoot(t)
	blocks := doccheck.Checked(t, root, "README.md", "TestReadmeQuickstartOutput")
	if len(blocks) != 2 {
		t.Fatalf("README.md has %d blocks marked for the test, want 2 (the audit and the listing)", len(blocks))
	}
	cfg := quickstartConfig(t, root)
	t.Chdir(t.TempDir())
	code, stdout, stderr := redraft(t, "run", "--config", cfg, "--progress", "off")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	doccheck.Lines(t, "README.md's audit block", stdout, blocks[0], nil)
	code, again, stderr := redraft(t, "run", "--config", cfg, "--progress", "off")
	if code != 0 || again != stdout || !strings.Contains(stderr, "nothing to do") {
		t.Errorf("the quickstart again: exit %d, stderr %s, stdout the same: %v", code, stderr, again == stdout)
	}

	// The listing: "out/quickstart/" and one file per line with what it
	// is; "with ..." says which configuration writes it.
	lines := strings.Split(strings.TrimRight(blocks[1], "\n"), "\n")
	if strings.TrimSpace(lines[0]) != "out/quickstart/" {
		t.Fatalf("the listing starts with %q", lines[0])
	}
	var listed []string
	conditional := map[string]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 2 {
			t.Fatalf("listing line %q", l)
		}
		if f[1] == "with" {
			conditional[f[0]] = l
			continue
		}
		listed = append(listed, f[0])
	}
	var written []string
	filepath.WalkDir("out/quickstart", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			written = append(written, strings.TrimPrefix(p, "out/quickstart/"))
		}
		return nil
	})
	sort.Strings(listed)
	if fmt.Sprint(listed) != fmt.Sprint(written) {
		t.Errorf("the README lists %v; the quickstart writes %v", listed, written)
	}
	for file, preset := range map[string]string{"data/sft/train-00000.parquet": "pam.yaml", "data/pairs/train-00000.parquet": "scl-pairs.yaml"} {
		if _, ok := conditional[file]; !ok {
			t.Errorf("the listing lacks %s", file)
			continue
		}
		dir := runPreset(t, root, preset)
		if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
			t.Errorf("%s: %v", preset, err)
		}
	}
	if len(conditional) != 2 {
		t.Errorf("the listing's conditional files: %v", conditional)
	}
}

// runPreset runs a preset of configs/presets on three toy tasks against the
// in-process server and returns its output directory.
func runPreset(t *testing.T, root, preset string) string {
	t.Helper()
	dir := t.TempDir()
	answers := map[string]int{"What is 20+20?": 40, "What is 3+4?": 7, "What is 6+9?": 15}
	var tasks strings.Builder
	for i, q := range []string{"What is 20+20?", "What is 3+4?", "What is 6+9?"} {
		fmt.Fprintf(&tasks, `{"id": "toy-%d", "prompt": %q, "reference": %d, "data_source": "toy"}`+"\n", i, q, answers[q])
	}
	taskPath := filepath.Join(dir, "tasks.jsonl")
	if err := os.WriteFile(taskPath, []byte(tasks.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := fakeserver.New(fakeserver.AnswerBySeed(answers))
	t.Cleanup(srv.Close)
	body := mustRead(t, filepath.Join(root, "configs", "presets", preset))
	body = regexp.MustCompile(`path: tasks.jsonl`).ReplaceAllString(body, "path: "+taskPath)
	body = regexp.MustCompile(`base_url: \S+,`).ReplaceAllString(body, "base_url: "+srv.BaseURL()+",")
	out := filepath.Join(dir, "out")
	if code, _, stderr := redraft(t, "run", "--config", writeConfig(t, body), "--out", out, "--progress", "off", "--no-audit"); code != 0 {
		t.Fatalf("%s: exit %d: %s", preset, code, stderr)
	}
	return out
}

// TestDocsCommandLines checks the command lines that the README's command
// list and the step-splice page show against the commands' flags (their
// -h): every --flag shown is one of the command's, and a line of the README
// that does not end in "[...]" shows all of them.
func TestDocsCommandLines(t *testing.T) {
	flagsOf := map[string]map[string]bool{}
	flags := func(cmd string) map[string]bool {
		if f, ok := flagsOf[cmd]; ok {
			return f
		}
		code, stdout, _ := redraft(t, cmd, "-h")
		if code != 0 {
			t.Fatalf("redraft %s -h: exit %d", cmd, code)
		}
		f := map[string]bool{}
		for _, m := range regexp.MustCompile(`(?m)^  --([a-z-]+)`).FindAllStringSubmatch(stdout, -1) {
			f[m[1]] = true
		}
		delete(f, "help")
		flagsOf[cmd] = f
		return f
	}
	for _, page := range []string{"README.md", "docs/recipes/step-splice.md"} {
		for _, block := range doccheck.Checked(t, repoRoot, page, "TestDocsCommandLines") {
			// One command per "redraft" line, with its indented
			// continuation lines.
			var cmds []string
			for _, l := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
				if strings.HasPrefix(l, "redraft ") {
					cmds = append(cmds, l)
				} else if len(cmds) > 0 && strings.HasPrefix(l, " ") {
					cmds[len(cmds)-1] += " " + strings.TrimSuffix(strings.TrimSpace(l), `\`)
				} else {
					t.Fatalf("%s: line %q is not a command", page, l)
				}
			}
			shown := map[string]map[string]bool{}
			complete := map[string]bool{}
			for _, c := range cmds {
				name := strings.Fields(c)[1]
				if shown[name] == nil {
					shown[name], complete[name] = map[string]bool{}, true
				}
				if strings.Contains(c, "[...]") || page != "README.md" {
					complete[name] = false
				}
				for _, m := range regexp.MustCompile(`--([a-z][a-z-]*)`).FindAllStringSubmatch(c, -1) {
					shown[name][m[1]] = true
					if !flags(name)[m[1]] {
						t.Errorf("%s: redraft %s has no flag --%s (%q)", page, name, m[1], c)
					}
				}
			}
			for name, ok := range complete {
				if !ok {
					continue
				}
				for f := range flags(name) {
					if !shown[name][f] {
						t.Errorf("%s: the command list's redraft %s lacks --%s", page, name, f)
					}
				}
			}
		}
	}
}

// TestDocsShellExamples runs the shell examples that show their output: a
// "$ " line (with "\" continuations) of the form "INPUT | go run
// ./cmd/redraft ARGS", and the lines after it, the output. INPUT runs in
// sh, the command in process; ~/.cache/redraft/tokenizers is
// $REDRAFT_TOKENIZERS, and an example that needs it is skipped without it.
func TestDocsShellExamples(t *testing.T) {
	pages := []string{"docs/advantages.md", "docs/grading.md", "docs/tokens.md"}
	n := 0
	for _, page := range pages {
		for _, block := range doccheck.Checked(t, repoRoot, page, "TestDocsShellExamples") {
			lines := strings.Split(strings.TrimRight(block, "\n"), "\n")
			if !strings.HasPrefix(lines[0], "$ ") {
				t.Fatalf("%s: the example does not start with a \"$ \" line: %q", page, lines[0])
			}
			cmd := strings.TrimPrefix(lines[0], "$ ")
			k := 1
			for strings.HasSuffix(cmd, `\`) && k < len(lines) {
				cmd = strings.TrimSuffix(cmd, `\`) + strings.TrimSpace(lines[k])
				k++
			}
			want := strings.Join(lines[k:], "\n") + "\n"
			input, command, ok := strings.Cut(cmd, " | go run ./cmd/redraft ")
			if !ok {
				t.Fatalf("%s: %q is not INPUT | go run ./cmd/redraft ARGS", page, cmd)
			}
			if strings.Contains(command, "~/.cache/redraft/tokenizers") {
				dir := os.Getenv("REDRAFT_TOKENIZERS")
				if dir == "" {
					if os.Getenv("REDRAFT_REQUIRE_TOKENIZERS") != "" {
						t.Fatal("REDRAFT_REQUIRE_TOKENIZERS is set but REDRAFT_TOKENIZERS is not")
					}
					t.Logf("%s: skipped: REDRAFT_TOKENIZERS is not set", page)
					continue
				}
				command = strings.ReplaceAll(command, "~/.cache/redraft/tokenizers", dir)
			}
			stdin, err := exec.Command("sh", "-c", input).Output()
			if err != nil {
				t.Fatalf("%s: %s: %v", page, input, err)
			}
			code, stdout, stderr := redraftIn(t, string(stdin), strings.Fields(command)...)
			if code != 0 {
				t.Errorf("%s: redraft %s: exit %d: %s", page, command, code, stderr)
			}
			doccheck.Lines(t, page+"'s example", stdout, want, nil)
			n++
		}
	}
	if n < 2 {
		t.Errorf("ran %d examples", n)
	}
}

// hostRE matches the in-process server's address.
var hostRE = regexp.MustCompile(`http://127\.0\.0\.1:\d+/v1|http://[a-z0-9-]+:8000/v1`)

// TestFailedSampleMessages runs a generation against a server that
// answers some tasks with 503 and others with 400, and compares the
// failures it records and the error of a run stopped by its failure rate
// with the examples of docs/endpoints.md. Server addresses are replaced by
// HOST, and the message's line breaks by spaces.
func TestFailedSampleMessages(t *testing.T) {
	blocks := doccheck.Checked(t, repoRoot, "docs/endpoints.md", "TestFailedSampleMessages")
	if len(blocks) != 2 {
		t.Fatalf("docs/endpoints.md has %d blocks marked for the test, want 2", len(blocks))
	}
	dir := t.TempDir()
	var tasks strings.Builder
	for i := range 100 {
		fmt.Fprintf(&tasks, `{"id": "t-%02d", "prompt": "What is %d+%d?", "reference": %d}`+"\n", i, i, i, 2*i)
	}
	taskPath := filepath.Join(dir, "tasks.jsonl")
	if err := os.WriteFile(taskPath, []byte(tasks.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	inner := fakeserver.AnswerBySeed(nil)
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		var i int
		fmt.Sscanf(req.Messages[0].Content, "What is %d+", &i)
		switch {
		case i == 0:
			return fakeserver.Reply{Status: 503, Message: "server overloaded"}
		case i%5 == 0:
			return fakeserver.Reply{Status: 400, Message: "prompt too long"}
		}
		return inner(req)
	})
	defer srv.Close()
	config := func(n int, rate, out string) string {
		return writeConfig(t, fmt.Sprintf(`
source: {kind: tasks, path: %q}
endpoint: {base_url: %q, model: m, max_in_flight: 8, retries: 6, backoff_initial: 1ms, backoff_max: 2ms, breaker_failures: 1000}
sampling: {n: %d}
pipeline: {max_failure_rate: %s}
output: {dir: %q}
`, taskPath, srv.BaseURL(), n, rate, out))
	}

	// Every failure recorded, one sample per task: the first of each kind
	// is the example.
	out := filepath.Join(t.TempDir(), "out")
	if code, _, stderr := redraft(t, "run", "--config", config(1, "1", out), "--progress", "off", "--no-audit"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	f, err := os.Open(filepath.Join(out, export.FailuresName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var errs []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		kind := rec.Error[:10]
		if !seen[kind] {
			seen[kind] = true
			errs = append(errs, rec.Error)
		}
	}
	hosts := func(s string) string { return hostRE.ReplaceAllString(s, "HOST") }
	doccheck.Lines(t, "docs/endpoints.md's failed samples", strings.Join(errs, "\n"), blocks[0], hosts)

	// The failure rate over the bound: the run stops after 200 samples and
	// says why on stderr.
	t.Chdir(t.TempDir())
	code, _, stderr := redraft(t, "run", "--config", config(4, "0.1", "out/run"), "--progress", "off", "--no-audit")
	if code != 1 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	oneLine := func(s string) string { return strings.Join(strings.Fields(hosts(s)), " ") }
	doccheck.Lines(t, "docs/endpoints.md's failure-rate error", stderr, blocks[1], oneLine)
}

// TestLongRunsOutput produces the transcripts of docs/long-runs.md: the
// quickstart killed with SIGKILL and run again (the resume line), the same
// directory run with another configuration (the refusal), and a generation
// run interrupted (the stop and the command that resumes it). What varies
// from run to run is normalised: the output directory, the counts at the
// moment of a kill or an interrupt, and the duration.
func TestLongRunsOutput(t *testing.T) {
	const page = "docs/long-runs.md"
	root := absRoot(t)
	blocks := doccheck.Checked(t, root, page, "TestLongRunsOutput")
	if len(blocks) != 3 {
		t.Fatalf("%s has %d blocks marked for the test, want 3", page, len(blocks))
	}
	cfg := quickstartConfig(t, root)
	out := filepath.Join(t.TempDir(), "rs", "out")
	dirs := func(s string) string { return strings.ReplaceAll(s, out, "/tmp/rs/out") }

	// Kill the quickstart once its journal holds groups; until the kill
	// lands mid-run.
	for try := 0; ; try++ {
		os.RemoveAll(out)
		args, _ := json.Marshal([]string{"run", "--config", cfg, "--out", out, "--no-audit", "--progress", "off"})
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "REDRAFT_RESUME_CHILD="+string(args))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
	wait:
		for {
			select {
			case <-exited:
				break wait
			default:
			}
			if wal, _ := filepath.Glob(filepath.Join(out, ".redraft", "wal-*.log")); len(wal) > 0 {
				if st, err := os.Stat(wal[0]); err == nil && st.Size() > 64<<10 {
					break
				}
			}
			time.Sleep(time.Millisecond)
		}
		cmd.Process.Kill()
		<-exited
		if m, err := export.ReadManifest(out); err != nil || m.Status != export.StatusComplete {
			break
		}
		if try == 10 {
			t.Fatal("the quickstart finished before every kill")
		}
	}

	// Another configuration: refused, with what changed.
	other := writeConfig(t, strings.Replace(strings.Replace(mustRead(t, cfg), "eps: 1.0e-6", "eps: 1.0e-4", 1), "seed: 0", "seed: 5", 1))
	code, _, stderr := redraft(t, "run", "--config", other, "--out", out, "--no-audit", "--progress", "off")
	if code != 1 {
		t.Fatalf("another configuration: exit %d: %s", code, stderr)
	}
	doccheck.Lines(t, page+"'s refusal", dirs(stderr), blocks[1], nil)

	// The same command resumes.
	code, _, stderr = redraft(t, "run", "--config", cfg, "--out", out, "--no-audit", "--progress", "off")
	if code != 0 {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	resumed := regexp.MustCompile(`^resuming \S+ \(session 2\): (\d+) tasks \((\d+) groups\) already written, (\d+) of them replayed from the journal\n`).FindStringSubmatch(stderr)
	if resumed == nil || resumed[1] == "0" || resumed[1] != resumed[2] || resumed[2] != resumed[3] {
		// The quickstart has one group per task, and no checkpoint before
		// its end: every group written before the kill is replayed.
		t.Fatalf("resume: %s", stderr)
	}
	// The transcript: the two commands, then what the second printed.
	want := blocks[0]
	if !strings.HasPrefix(want, "$ redraft run --config configs/quickstart.yaml --out /tmp/rs/out --no-audit") {
		t.Fatalf("%s's transcript starts %q", page, want)
	}
	_, want, _ = strings.Cut(want, "\n$ redraft run --config configs/quickstart.yaml --out /tmp/rs/out --no-audit\n")
	counts := func(s string) string {
		s = regexp.MustCompile(`: \d+ tasks \(\d+ groups\) already written, \d+ of`).ReplaceAllString(s, ": N tasks (N groups) already written, N of")
		return regexp.MustCompile(` in [0-9.]+(ms|s)\n`).ReplaceAllString(dirs(s), " in DURATION\n")
	}
	doccheck.Lines(t, page+"'s resume transcript", stderr, want, counts)

	// Ctrl+C during a generation run: the tasks in flight finish, the rest
	// is committed, and the message says how to resume.
	dir := t.TempDir()
	var tasks strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&tasks, `{"id": "t-%d", "prompt": "What is %d+%d?", "reference": %d}`+"\n", i, i, i, 2*i)
	}
	if err := os.WriteFile(filepath.Join(dir, "tasks.jsonl"), []byte(tasks.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := fakeserver.New(nil)
	srv.NoLog = true
	defer srv.Close()
	if err := os.WriteFile(filepath.Join(dir, "gsm8k.yaml"), []byte(fmt.Sprintf(`
name: gsm8k-grpo
source: {kind: tasks, path: tasks.jsonl}
endpoint: {base_url: %q, model: m, max_in_flight: 8}
sampling: {n: 8}
output: {dir: out/gsm8k-grpo, shard_rows: 768}
`, srv.BaseURL())), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	sigs := make(chan os.Signal, 1)
	go func() {
		for srv.Count() < 2400 {
			time.Sleep(time.Millisecond)
		}
		sigs <- os.Interrupt
	}()
	var stdoutB, stderrB bytes.Buffer
	code = runWithSignals(context.Background(), []string{"run", "--config", "gsm8k.yaml"}, sigs, strings.NewReader(""), &stdoutB, &stderrB)
	if code != 130 {
		t.Fatalf("interrupted: exit %d: %s", code, stderrB.String())
	}
	// On a terminal, the program's output starts on the line where the
	// terminal echoed ^C, and progress is a bar that clears itself; here,
	// with no terminal, it is a log line.
	interrupted := func(s string) string {
		if !strings.HasPrefix(s, "^C\n") {
			s = "^C" + s
		}
		s = regexp.MustCompile(`(?m)^progress: .*\n`).ReplaceAllString(s, "")
		return regexp.MustCompile(`interrupted: \d+ rows in \d+ shard`).ReplaceAllString(s, "interrupted: N rows in N shard")
	}
	doccheck.Lines(t, page+"'s interrupt", stderrB.String(), blocks[2], interrupted)
}

// TestProgressDocLine: the progress line of docs/long-runs.md is the one the
// reporter writes for its counts (78 requests answered and 2 in flight in
// 10 s, 7,020 completion tokens, none of the 40 tasks written yet), and
// TestProgressBeforeFirstGroup finds its form among the lines of a real run.
func TestProgressDocLine(t *testing.T) {
	doc := doccheck.One(t, repoRoot, "docs/long-runs.md", "TestProgressDocLine")
	t0 := time.Now()
	var b bytes.Buffer
	r := &reporter{log: &b, first: pipeline.Snapshot{At: t0}}
	r.show(pipeline.Snapshot{RequestsStarted: 80, RequestsDone: 78, InFlight: 2, CompletionTokens: 7020, TasksTotal: 40, At: t0.Add(10 * time.Second)})
	doccheck.Lines(t, "docs/long-runs.md's progress line", b.String(), doc, nil)
}

// TestRecordedRowsMatchTheProgram checks the two rows the docs recorded
// from a real llama-server (SmolLM2-135M-Instruct) against the program as
// it is: each job runs again on the same record with the same settings,
// against the in-process server standing in for llama-server (it echoes a
// prefill, as llama-server does, and answers past max_tokens), with the
// recorded model text where the doc shows it. Every key the doc shows must
// be in the program's row and, where it does not come from the model, hold
// the doc's value; the model's token counts, its model name and where its
// text ends are checked for presence only.
func TestRecordedRowsMatchTheProgram(t *testing.T) {
	root := absRoot(t)
	filler := strings.Repeat("and so on ", 200)
	findRow := func(t *testing.T, page, block, dir string, structural ...string) {
		t.Helper()
		var id struct{ ID string }
		if err := json.Unmarshal([]byte(block), &id); err != nil {
			t.Fatal(err)
		}
		for _, r := range readSFTRows(t, dir) {
			if r.ID == id.ID {
				if err := doccheck.Match(block, r, structural...); err != nil {
					b, _ := json.Marshal(r)
					t.Errorf("%s's recorded row does not have the program's form:\n%v\nthe program's row: %s", page, err, b)
				}
				return
			}
		}
		t.Errorf("%s's row %s is not written", page, id.ID)
	}

	t.Run("mr-gsm8k", func(t *testing.T) {
		const page = "docs/recipes/step-splice.md"
		block := doccheck.One(t, root, page, "TestRecordedRowsMatchTheProgram")
		// The record is the bundled file's line 2.
		in := filepath.Join(t.TempDir(), "mr.jsonl")
		gz, err := exec.Command("sh", "-c", "gzip -dc "+filepath.Join(root, "testdata", "mr_gsm8k", "first_error_590.jsonl.gz")+" | head -n 2").Output()
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(in, gz, 0o644)
		srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{Text: "Step 2: " + filler} })
		srv.EchoPrefill = true
		defer srv.Close()
		out := filepath.Join(t.TempDir(), "mr")
		code, _, stderr := redraft(t, "splice", "--format", "mr-gsm8k", "--input", in, "--out", out,
			"--endpoint", srv.BaseURL(), "--model", "SmolLM2-135M-Instruct", "--seed", "1", "--temperature", "0", "--max-tokens", "96", "--keep", "all")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		findRow(t, page, block, out, "messages[1].segments[4].end", "metadata.continuation.model",
			"metadata.continuation.prompt_tokens", "metadata.continuation.completion_tokens")
	})

	t.Run("agent-r", func(t *testing.T) {
		const page = "docs/recipes/agent-r.md"
		block := doccheck.One(t, root, page, "TestRecordedRowsMatchTheProgram")
		// The recorded solution is the first GSM8K problem's.
		dir := t.TempDir()
		first, _, _ := strings.Cut(mustRead(t, filepath.Join(root, "testdata", "gsm8k", "example_model_solutions.jsonl")), "\n")
		in := filepath.Join(dir, "gsm8k.jsonl")
		os.WriteFile(in, []byte(first+"\n"), 0o644)
		pol := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply {
			return fakeserver.Reply{Text: "She eats 4 ducks eggs for breakfast every day so she has 13 - 4 = <<13-4=11>>13 ducks eggs left\n" + filler}
		})
		pol.EchoPrefill = true
		defer pol.Close()
		// The step judge was scripted in the recorded run too: step 2 is
		// the first bad one.
		stepRe := regexp.MustCompile(`whether step (\d+),`)
		js := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
			if stepRe.FindStringSubmatch(req.Messages[0].Content)[1] == "2" {
				return fakeserver.Reply{Text: "Step 2 multiplies the eggs left by 2 but forgets the 4 used for muffins.\nVerdict: Bad"}
			}
			return fakeserver.Reply{Text: "The step is right.\nVerdict: Good"}
		})
		defer js.Close()
		cfg := writeConfig(t, fmt.Sprintf(`
name: agent-r
seed: 7
source: {kind: rollouts, path: %q, layout: gsm8k-example-solutions, data_source: openai/gsm8k}
endpoint: {base_url: %q, model: SmolLM2-135M-Instruct}
sampling: {temperature: 0, max_tokens: 96}
agent_r:
  step_judge: {base_url: %q, model: scripted}
  keep: all
output: {dir: %q}
`, in, pol.BaseURL(), js.BaseURL(), filepath.Join(dir, "out")))
		code, _, stderr := redraft(t, "run", "--config", cfg, "--progress", "off")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		findRow(t, page, block, filepath.Join(dir, "out"), "messages[1].segments[6].end")
	})
}
