package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// A command's help: "redraft COMMAND -h" prints
//
//	Usage: redraft COMMAND SYNOPSIS
//
//	ABOUT (what the command does, what it reads and writes)
//
//	Flags:
//	  --name VALUE
//	        usage (default X)
//
// to stdout and exits 0. A flag whose default means "not given" (a
// setting left to the configuration or the server) shows no default.

// What each command does, and what it reads and writes: the paragraph of
// its help.
const (
	runAbout = `Runs the job a YAML configuration describes: generates responses from the
configuration's endpoint (source.kind: tasks) or replays recorded ones (source.kind: rollouts),
grades them, computes group advantages and writes Parquet shards, manifest.json and a dataset card
(README.md) to the output directory (output.dir, or --out); a splice or agent_r section runs that job
instead. The same command resumes an unfinished run in the directory and leaves a complete one
alone. Progress goes to stderr; the audit summary of the rl dataset to stdout. Exit status 1 when
the run fails (more than pipeline.max_failure_rate of its samples failed, for one), 130 when
interrupted.`
	spliceAbout = `Builds step-level self-correction trajectories (the sft dataset) from labelled
steps: PRM800K step ratings (prm800k: no model) or MR-GSM8K's labelled first errors (mr-gsm8k: the
model at --endpoint writes the continuation after a reflection). Reads the JSONL --input (gzipped
or not) and writes Parquet shards, manifest.json and a dataset card to --out, resuming an
unfinished splice there. Each flag given sets the configuration key of the same meaning (see
docs/recipes/step-splice.md).`
	auditAbout = `Reads the rl shards of PATH (an output directory, a directory of shards or one
.parquet shard) and prints the reward report to stdout: rewards by data source and model, the reward
histogram, pass@k and maj@k, advantages, reward components and length. --json and --html also
write every metric group as JSON and a self-contained HTML page. With --compare, prints the
headline metrics of runs A and B side by side with B - A per slice. Flags may come before or after
the paths.`
	validateAbout = `Checks the output directory DIR (a run, a splice or a merged sharded run) against
its manifest.json and the schemas: every shard's bytes, sha256, rows, schema version and columns,
and every row's masks, token track, rewards, group statistics and advantages. Prints the report
to stdout (one line per violation, naming the dataset, shard and row) and exits 1 when there is
any violation.`
	mergeAbout = `Combines the shard runs of "redraft run --shard i/N --out DIR" once every part
is complete: checks that all N parts under DIR/shards/ are present, complete, of the same
configuration and intact, then writes one manifest.json and one dataset card at DIR that list
each part's files where they are (no row is copied). Prints one line to stdout.`
	gradeAbout = `Reads JSON lines from stdin and writes one verdict per line to stdout, in
order. With --verifier math (the default) each line is {"gold": REFERENCE, "prediction": RESPONSE}
(both strings) and optionally "finish_reason" (as the server reported it: with "length" a bare
answer counts as cut off, with "stop" never), graded with the math grader (reward.grader: math);
a verdict is {"correct",
"answer", "found", "extract_rule", "rule", "pred", "gold"} and "reason" when not correct. With
--verifier python each line is {"prediction", "tests", "entry_point", "prompt"}: the code in the
prediction runs against the tests in the bubblewrap sandbox, and a verdict has "correct", "reason",
"passed", "total", "pass_rate" and each test's result. With --verifier plugin each line is
{"prediction", "reference", "task_id", "data_source", "metadata"} (all but prediction optional),
sent to the verifier plug-in given by --plugin-command or --plugin-url (docs/plugins.md), and a
verdict is the plug-in's {"correct", "score", "answer", "reason", "detail"}, "score" null with the
reason when it could not score.`
	advantagesAbout = `Reads one group per JSON line from stdin, {"rewards": [r1, r2, ...]} (null for
a missing reward; with --whiten token also "tokens": [n1, n2, ...], each sample's completion
tokens), computes the group advantages under --estimator and writes {"advantages": [...]} per line
to stdout, in order (null where the reward is null). Compare them with a trainer's.`
	tokenizeAbout = `Reads text from stdin, one text per line, and writes the token ids the
Hugging Face tokenizer.json given by --tokenizer makes of each line (no special tokens added) to
stdout, one JSON array per line. Checks a tokenizer before a run that writes token tracks.`
	versionAbout = `Prints the build that runs to stdout: the module version with the VCS revision
it was built from (as manifests record it), the Go version and the platform.`
)

// newFlagSet is a command's flag set with its help text. synopsis follows
// "redraft NAME" (more lines: other forms of the command, each in full);
// about is one paragraph, wrapped here.
func newFlagSet(name, synopsis, about string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// Errors are returned, and main prints them once; help goes to stdout.
	fs.SetOutput(io.Discard)
	fs.Usage = func() { writeHelp(stdout, fs, synopsis, about) }
	return fs
}

// parseFlags parses args. -h or --help prints the help and returns
// flag.ErrHelp (exit 0); a flag that does not parse is a usage error (exit
// 2) that points at the help.
func parseFlags(fs *flag.FlagSet, args []string) error {
	help := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = help
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		help()
		return err
	default:
		return usageError{fmt.Sprintf("%v (redraft %s -h lists its flags)", err, fs.Name())}
	}
}

func writeHelp(w io.Writer, fs *flag.FlagSet, synopsis, about string) {
	for i, l := range strings.Split(synopsis, "\n") {
		if i == 0 {
			fmt.Fprintf(w, "%s\n", strings.TrimSpace("Usage: redraft "+fs.Name()+" "+l))
		} else {
			fmt.Fprintf(w, "       redraft %s %s\n", fs.Name(), l)
		}
	}
	fmt.Fprintf(w, "\n%s\n", wrap(about, 80))
	fmt.Fprint(w, "\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		if v, ok := f.Value.(*noDefault); ok && arg == "value" {
			arg = v.kind
		}
		line := "  --" + f.Name
		if arg != "" {
			line += " " + arg
		}
		if def, ok := shownDefault(f); ok {
			usage += " (default " + def + ")"
		}
		fmt.Fprintf(w, "%s\n%s\n", line, indent(wrap(usage, 72), "        "))
	})
	fmt.Fprint(w, "  -h, --help\n        print this help\n")
}

// shownDefault is the default a flag's help states: none for a zero value
// (false, 0, "", 0s) or a flag without a default (noDefault).
func shownDefault(f *flag.Flag) (string, bool) {
	if _, ok := f.Value.(*noDefault); ok {
		return "", false
	}
	// The zero value of the flag's type prints as its zero default.
	zero := reflect.New(reflect.TypeOf(f.Value).Elem()).Interface().(flag.Value)
	if f.DefValue == zero.String() {
		return "", false
	}
	if strings.Contains(reflect.TypeOf(f.Value).String(), "string") {
		return strconv.Quote(f.DefValue), true
	}
	return f.DefValue, true
}

// noDefault is a number flag that has no default: until the command line
// gives it, the setting it overrides keeps its own (the configuration's, or
// the server's). Its help shows no "(default -1)" for a sentinel; whether it
// was given is setFlags' to say.
type noDefault struct {
	kind  string // "int", "float": the value's name in the help
	set   func(string) error
	value func() string
	given bool
}

func (v *noDefault) String() string {
	if v == nil || !v.given {
		return ""
	}
	return v.value()
}

func (v *noDefault) Set(s string) error {
	if err := v.set(s); err != nil {
		return err
	}
	v.given = true
	return nil
}

// intNoDefault defines an int flag without a default; the int stays 0 until
// the flag is given.
func intNoDefault(fs *flag.FlagSet, name, usage string) *int {
	p := new(int)
	fs.Var(&noDefault{
		kind: "int",
		set: func(s string) error {
			n, err := strconv.ParseInt(s, 0, strconv.IntSize)
			if err != nil {
				return errors.New("not an integer")
			}
			*p = int(n)
			return nil
		},
		value: func() string { return strconv.Itoa(*p) },
	}, name, usage)
	return p
}

// float64NoDefault defines a float64 flag without a default; the number
// stays 0 until the flag is given.
func float64NoDefault(fs *flag.FlagSet, name, usage string) *float64 {
	p := new(float64)
	fs.Var(&noDefault{
		kind: "float",
		set: func(s string) error {
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return errors.New("not a number")
			}
			*p = x
			return nil
		},
		value: func() string { return strconv.FormatFloat(*p, 'g', -1, 64) },
	}, name, usage)
	return p
}

// wrap breaks s into lines of at most width bytes at spaces.
func wrap(s string, width int) string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
