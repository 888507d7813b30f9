package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/redraft/redraft/rewards/codegrade"
	"github.com/redraft/redraft/rewards/execute"
	"golang.org/x/sync/errgroup"
)

// codeFlags are redraft grade's flags for verifiers other than the math
// grader.
type codeFlags struct {
	verifier string
	unsafe   bool
	timeout  time.Duration
	slots    int
}

// addCodeFlags registers --verifier, --unsafe-no-sandbox, --timeout and
// --jobs on redraft grade's flag set.
func addCodeFlags(fs *flag.FlagSet) *codeFlags {
	c := &codeFlags{}
	fs.StringVar(&c.verifier, "verifier", "math", "the verifier: math (JSON lines {gold, prediction}) or python (JSON lines {prediction, tests, entry_point, prompt}, run in the bubblewrap sandbox)")
	fs.BoolVar(&c.unsafe, "unsafe-no-sandbox", false, "DANGEROUS: with --verifier python, run model code WITHOUT isolation when bubblewrap is unavailable (host files and network reachable); trusted code only")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "with --verifier python, the wall-clock limit of each program")
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
	default:
		return true, usageError{fmt.Sprintf("--verifier %q: want math or python", c.verifier)}
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
