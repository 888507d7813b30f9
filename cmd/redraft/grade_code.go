package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/redraft/redraft/rewards/codegrade"
	"github.com/redraft/redraft/rewards/execute"
	"github.com/redraft/redraft/rewards/plugin"
	"github.com/redraft/redraft/rollout"
	"golang.org/x/sync/errgroup"
)

// codeFlags are redraft grade's flags for verifiers other than the math
// grader.
type codeFlags struct {
	verifier string
	unsafe   bool
	timeout  time.Duration
	slots    int
	command  string
	url      string
}

// addCodeFlags registers --verifier, --unsafe-no-sandbox, --timeout and
// --jobs on redraft grade's flag set.
func addCodeFlags(fs *flag.FlagSet) *codeFlags {
	c := &codeFlags{}
	fs.StringVar(&c.verifier, "verifier", "math", "the verifier: math (JSON lines {gold, prediction}), python (JSON lines {prediction, tests, entry_point, prompt}, run in the bubblewrap sandbox) or plugin (JSON lines {prediction, reference, task_id, data_source, metadata}, scored by --plugin-command or --plugin-url)")
	fs.StringVar(&c.command, "plugin-command", "", "with --verifier plugin, the verifier plug-in's command line (split at spaces; docs/plugins.md)")
	fs.StringVar(&c.url, "plugin-url", "", "with --verifier plugin, the verifier's HTTP endpoint")
	fs.BoolVar(&c.unsafe, "unsafe-no-sandbox", false, "DANGEROUS: with --verifier python, run model code WITHOUT isolation when bubblewrap is unavailable (host files and network reachable); trusted code only")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "with --verifier python, the wall-clock limit of each program; with plugin, the wait for each answer")
	fs.IntVar(&c.slots, "jobs", 0, "with --verifier python, programs run at once (default: the number of CPUs)")
	return c
}

// run grades with a verifier other than math; it reports whether it handled
// the command.
func (c *codeFlags) run(stdin io.Reader, stdout io.Writer) (bool, error) {
	switch c.verifier {
	case "math", "":
		return false, nil
	case "python":
	case "plugin":
		return true, c.runPlugin(stdin, stdout)
	default:
		return true, usageError{fmt.Sprintf("--verifier %q: want math, python or plugin", c.verifier)}
	}
	sb, err := execute.New(execute.Options{UnsafeNoSandbox: c.unsafe, Slots: c.slots,
		Limits: execute.Limits{Wall: c.timeout}})
	if err != nil {
		return true, fmt.Errorf("%w (redraft grade --unsafe-no-sandbox runs without isolation)", err)
	}
	if c.unsafe {
		fmt.Fprintln(os.Stderr, "redraft grade: WARNING: --unsafe-no-sandbox: model code runs WITHOUT isolation")
	}
	return true, gradeCode(codegrade.New(sb, codegrade.Options{}), sb.Slots(), stdin, stdout)
}

// codeOut is one output line of redraft grade --verifier python.
type codeOut struct {
	codegrade.Verdict
	Error string `json:"error,omitempty"`
}

// gradeCode grades JSON lines {"prediction", "tests", "entry_point",
// "prompt", "language"} concurrently and prints one verdict line per input
// line, in input order. Inputs are read as the outputs are written, so
// memory is bounded by the lines in flight.
func gradeCode(g *codegrade.Grader, slots int, stdin io.Reader, stdout io.Writer) error {
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	type item struct {
		done chan struct{}
		v    codegrade.Verdict
	}
	queue := make(chan *item, 2*slots)
	ctx := context.Background()
	var eg errgroup.Group
	eg.Go(func() error {
		for it := range queue {
			<-it.done
			if err := enc.Encode(codeOut{Verdict: it.v}); err != nil {
				return err
			}
		}
		return nil
	})
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	var readErr error
	for line := 1; sc.Scan(); line++ {
		var in struct {
			Prediction *string `json:"prediction"`
			codegrade.Task
		}
		if err := json.Unmarshal(sc.Bytes(), &in); err != nil {
			readErr = fmt.Errorf("stdin:%d: %w", line, err)
			break
		}
		if in.Prediction == nil {
			readErr = fmt.Errorf("stdin:%d: field \"prediction\": missing", line)
			break
		}
		if in.Tests == "" {
			readErr = fmt.Errorf("stdin:%d: field \"tests\": missing", line)
			break
		}
		it := &item{done: make(chan struct{})}
		queue <- it
		go func(pred string, t codegrade.Task) {
			it.v = g.Grade(ctx, pred, t)
			close(it.done)
		}(*in.Prediction, in.Task)
	}
	if readErr == nil && sc.Err() != nil {
		readErr = fmt.Errorf("stdin: %w", sc.Err())
	}
	close(queue)
	if err := eg.Wait(); err != nil {
		return err
	}
	return readErr
}

// runPlugin grades JSON lines {"prediction", "reference", "task_id",
// "data_source", "metadata"} with a verifier plug-in, in batches, and prints
// one line per input in input order: the plug-in's result with "correct"
// (the verdict, or score >= 1 when it gives none) and, for a response it
// could not score, "score": null and the reason.
func (c *codeFlags) runPlugin(stdin io.Reader, stdout io.Writer) error {
	cfg := plugin.Config{Command: strings.Fields(c.command), URL: c.url, Timeout: rollout.Duration(c.timeout)}
	if (len(cfg.Command) == 0) == (cfg.URL == "") {
		return usageError{"--verifier plugin needs exactly one of --plugin-command and --plugin-url"}
	}
	ctx := context.Background()
	client, err := plugin.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	var batch []plugin.Request
	flush := func() error {
		for _, r := range client.Verify(ctx, batch) {
			correct := r.Score != nil && *r.Score >= 1
			if r.Correct != nil {
				correct = *r.Correct
			}
			if err := enc.Encode(struct {
				Correct bool `json:"correct"`
				plugin.Result
			}{correct, r}); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for line := 1; sc.Scan(); line++ {
		var in struct {
			Prediction *string         `json:"prediction"`
			Reference  string          `json:"reference"`
			TaskID     string          `json:"task_id"`
			DataSource string          `json:"data_source"`
			Metadata   json.RawMessage `json:"metadata"`
		}
		if err := json.Unmarshal(sc.Bytes(), &in); err != nil {
			return fmt.Errorf("stdin:%d: %w", line, err)
		}
		if in.Prediction == nil {
			return fmt.Errorf("stdin:%d: field \"prediction\": missing", line)
		}
		batch = append(batch, plugin.Request{Response: *in.Prediction, Reference: in.Reference, TaskID: in.TaskID,
			DataSource: in.DataSource, Metadata: in.Metadata})
		if len(batch) == 64 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	return flush()
}
