package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"

	"github.com/redraft/redraft/export"
)

func cmdAudit(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the audit as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"want exactly one output directory"}
	}
	a, err := export.AuditDir(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(a)
	}
	a.WriteText(stdout)
	return nil
}
