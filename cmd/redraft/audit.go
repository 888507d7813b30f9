package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/redraft/redraft/audit"
)

// redraft audit PATH [--html FILE] [--json FILE] [--workers N] [--fail-on EXPR,...]
// redraft audit --compare A B [--html FILE] [--json FILE]
//
// Flags may come before or after the paths. `--json -` writes the JSON to
// stdout instead of the summary; so does the older form `--json DIR`.
func cmdAudit(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("audit", "[flags] PATH\n--compare [flags] A B", auditAbout, stdout)
	jsonOut := fs.String("json", "", "write every metric group as JSON to `FILE` (- for stdout)")
	htmlOut := fs.String("html", "", "write a self-contained HTML report to `FILE`")
	compare := fs.Bool("compare", false, "compare two runs: redraft audit --compare A B")
	workers := fs.Int("workers", 0, "row groups read in parallel (default: GOMAXPROCS)")
	var failOn boundList
	fs.Var(&failOn, "fail-on", "exit 1 when a bound `METRIC>X[,...]` is crossed (>, >=, <, <=; metrics over all rows, see docs/audit.md); repeatable")
	var paths []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		paths = append(paths, fs.Arg(0))
		args = fs.Args()[1:]
	}
	// The older `redraft audit --json DIR`: the flag was a switch.
	if len(paths) == 0 && *jsonOut != "" && *jsonOut != "-" {
		if st, err := os.Stat(*jsonOut); err == nil && st.IsDir() {
			paths, *jsonOut = []string{*jsonOut}, "-"
		}
	}
	opts := audit.Options{Workers: *workers}
	if *compare && len(failOn) > 0 {
		return usageError{"--fail-on checks one run, not a comparison"}
	}
	if *compare {
		if len(paths) != 2 {
			return usageError{"--compare wants exactly two runs: A B"}
		}
		a, err := audit.Path(ctx, paths[0], opts)
		if err != nil {
			return err
		}
		b, err := audit.Path(ctx, paths[1], opts)
		if err != nil {
			return err
		}
		if a.Recipe == b.Recipe {
			a.Recipe, b.Recipe = a.Recipe+" (A)", b.Recipe+" (B)"
		}
		c := audit.Compare(a, b)
		if *jsonOut != "-" {
			c.WriteText(stdout)
		}
		return writeOutputs(stdout, *jsonOut, *htmlOut, c, func(w io.Writer) error { return c.WriteHTML(w, a, b) })
	}
	if len(paths) != 1 {
		return usageError{"want exactly one output directory (or --compare A B)"}
	}
	a, err := audit.Path(ctx, paths[0], opts)
	if err != nil {
		return err
	}
	if err := a.AddAgents(ctx, paths[0], *workers); err != nil {
		return err
	}
	if err := a.AddTokens(ctx, paths[0]); err != nil {
		return err
	}
	if *jsonOut != "-" {
		a.WriteText(stdout)
	}
	if err := writeOutputs(stdout, *jsonOut, *htmlOut, a, a.WriteHTML); err != nil {
		return err
	}
	return checkBounds(stdout, a, failOn, *jsonOut != "-")
}

// boundList collects --fail-on bounds, parsed (and unknown metrics
// refused) as the flag is read.
type boundList []audit.Bound

func (b *boundList) String() string {
	parts := make([]string, len(*b))
	for i, x := range *b {
		parts[i] = x.String()
	}
	return strings.Join(parts, ",")
}

func (b *boundList) Set(v string) error {
	bounds, err := audit.ParseBounds(v)
	if err != nil {
		return err
	}
	*b = append(*b, bounds...)
	return nil
}

// checkBounds prints each bound's verdict (unless stdout carries the JSON)
// and fails naming every crossed one.
func checkBounds(stdout io.Writer, a *audit.Report, bounds []audit.Bound, print bool) error {
	if len(bounds) == 0 {
		return nil
	}
	var crossed []string
	if print {
		fmt.Fprintf(stdout, "\nbounds (--fail-on, all rows)\n")
	}
	for _, r := range a.CheckBounds(bounds) {
		actual := "no value"
		if r.Actual != nil {
			actual = strconv.FormatFloat(*r.Actual, 'g', 6, 64)
		}
		verdict := "ok"
		if r.Crossed {
			verdict = "CROSSED"
			crossed = append(crossed, fmt.Sprintf("%s (%s %s)", r.Bound, r.Metric, actual))
		} else if r.Actual == nil {
			verdict = "not checked: the run has no value"
		}
		if print {
			fmt.Fprintf(stdout, "  %-32s %-12s %s\n", r.Bound, actual, verdict)
		}
	}
	if len(crossed) > 0 {
		return fmt.Errorf("%d bound(s) crossed: %s", len(crossed), strings.Join(crossed, ", "))
	}
	return nil
}

func writeOutputs(stdout io.Writer, jsonOut, htmlOut string, v any, html func(io.Writer) error) error {
	if jsonOut != "" {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		b = append(b, '\n')
		if jsonOut == "-" {
			if _, err := stdout.Write(b); err != nil {
				return err
			}
		} else if err := os.WriteFile(jsonOut, b, 0o644); err != nil {
			return err
		} else {
			fmt.Fprintf(stdout, "\nwrote %s\n", jsonOut)
		}
	}
	if htmlOut != "" {
		var buf bytes.Buffer
		if err := html(&buf); err != nil {
			return err
		}
		if err := os.WriteFile(htmlOut, buf.Bytes(), 0o644); err != nil {
			return err
		}
		if jsonOut != "-" {
			fmt.Fprintf(stdout, "wrote %s\n", htmlOut)
		}
	}
	return nil
}
