package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/tokenizer"
	"github.com/redraft/redraft/validate"
)

// cmdValidate checks an output directory against its manifest and the
// schemas: every shard's bytes, checksum, rows, schema version and columns,
// and every row's masks, rewards and advantages. It prints one line per
// violation, naming the shard and row, and fails when there is any.
func cmdValidate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("validate", "[flags] DIR", validateAbout, stdout)
	tokPath := fs.String("tokenizer", "", "tokenizer.json `file` the token tracks (sft/2, rl/3) were made with: re-render every row and require the same tokens and labels")
	format := fs.String("chat-format", "", "chat `format` of the token track (default: the one in each shard's metadata)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	maxV := fs.Int("max-violations", 100, "stop checking a shard's rows after `n` violations")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"want one output directory: redraft validate [--tokenizer FILE] DIR"}
	}
	opts := validate.Options{MaxViolations: *maxV}
	if *tokPath != "" {
		tt, err := export.LoadTokenTrack(*tokPath, tokenizer.Format(*format))
		if err != nil {
			return err
		}
		opts.Tokens = tt
	}
	rep, err := validate.Dir(ctx, fs.Arg(0), opts)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.WriteText(stdout)
	}
	if !rep.OK() {
		return fmt.Errorf("%s: %d violation(s)", fs.Arg(0), len(rep.Violations))
	}
	return nil
}
