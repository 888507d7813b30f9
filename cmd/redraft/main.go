// Command redraft produces self-correction RL post-training data: it samples
// or replays groups of responses, grades them, computes group advantages and
// writes Parquet shards with a manifest.
//
// Usage:
//
//	redraft run --config FILE [--out DIR] [--overwrite] [--shard i/N]
//	redraft audit PATH [--html FILE] [--json FILE]
//	redraft probe --config FILE [--tasks N] [--forbid LIST] [--json FILE]
//	redraft view [--addr 127.0.0.1:0] [--open=false] DIR
//	redraft serve [--addr 127.0.0.1:5050] [--verifier math|python|plugin]
//	redraft validate [--tokenizer FILE] DIR
//	redraft merge [--verify] DIR
//	redraft splice --format prm800k|mr-gsm8k --input FILE --out DIR
//	redraft grade < cases.jsonl
//	redraft advantages --estimator NAME [--eps X] < groups.jsonl
//	redraft tokenize --tokenizer FILE < lines.txt
//	redraft version
//
// The commands are the usage text's; TestUsageListsCommands keeps the two
// lists and the README's command list in step.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/redraft/redraft/internal/redact"
	"github.com/redraft/redraft/pipeline"
)

const usage = `redraft produces self-correction RL post-training data.

Commands:
  run --config FILE     generate or replay groups, grade, write shards and a manifest
  audit DIR             summarise the rewards of a run's shards
  probe --config FILE   score reward-hacking responses against a configuration's reward, no model
  view DIR              browse a run's rows in a local web page: groups, trajectories, tokens
  serve                 grade over HTTP for trainers (OpenRLHF's and verl's reward requests)
  tokenize --tokenizer FILE
                        token ids of each text line on stdin
  validate DIR          check an output directory against its manifest and schemas
  merge DIR             combine the shard runs of "run --shard i/N --out DIR" (no rows copied)
  grade                 grade JSON lines {"gold", "prediction"} on stdin
  advantages            group advantages for JSON lines {"rewards": [..]} on stdin
  splice --format prm800k|mr-gsm8k --input FILE --out DIR [--endpoint URL --model M]
                        step-level self-correction trajectories from labelled steps
                        (mr-gsm8k: a model writes the corrected continuation)
  version               the build: module version, VCS revision, Go version

Run "redraft COMMAND -h" for a command's flags.
`

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	code := runWithSignals(context.Background(), os.Args[1:], sigs, os.Stdin, os.Stdout, os.Stderr)
	signal.Stop(sigs)
	os.Exit(code)
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runWithSignals(ctx, args, nil, stdin, stdout, stderr)
}

// runWithSignals is run with the process's interrupt signals: "run" stops
// gracefully on the first (see cmdRun), every other command cancels.
func runWithSignals(ctx context.Context, args []string, sigs <-chan os.Signal, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if len(args) > 0 && args[0] != "run" && sigs != nil {
		go func() {
			select {
			case <-sigs:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, args[1:], sigs, stdout, stderr)
	case "audit":
		err = cmdAudit(ctx, args[1:], stdout)
	case "probe":
		err = cmdProbe(ctx, args[1:], stdout)
	case "view":
		err = cmdView(ctx, args[1:], stdout, stderr)
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "advantages":
		err = cmdAdvantages(args[1:], stdin, stdout)
	case "validate":
		err = cmdValidate(ctx, args[1:], stdout)
	case "grade":
		err = cmdGrade(args[1:], stdin, stdout)
	case "tokenize":
		err = cmdTokenize(args[1:], stdin, stdout)
	case "merge":
		err = cmdMerge(ctx, args[1:], stdout)
	case "splice":
		err = cmdSplice(ctx, args[1:], stdout, stderr)
	case "version":
		err = cmdVersion(args[1:], stdout)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "redraft: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	// The last guard before stderr: an error that quotes a base URL (a
	// request's, a configuration's) loses the URL's user info and query.
	fmt.Fprintf(stderr, "redraft %s: %s\n", args[0], redact.Text(err.Error()))
	var ue usageError
	switch {
	case errors.As(err, &ue):
		return 2
	case errors.Is(err, context.Canceled), errors.Is(err, pipeline.ErrInterrupted):
		return 130
	default:
		return 1
	}
}

type usageError struct{ msg string }

// setFlags names the flags the command line set: a flag's default applies
// only when it is absent, and a value given is used or refused, never
// taken for "unset" because it equals a sentinel such as -1.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

func (e usageError) Error() string { return e.msg }
