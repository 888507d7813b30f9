package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/export/tokenizer"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/pipeline/splice"
)

func cmdSplice(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("splice", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "", "input format: prm800k")
	input := fs.String("input", "", "input `file` (JSONL, optionally .gz)")
	out := fs.String("out", "", "output `directory`")
	overwrite := fs.Bool("overwrite", false, "replace a previous output in the directory")
	tokPath := fs.String("tokenizer", "", "Hugging Face tokenizer.json `file`: also write input_ids, labels and attention_mask (sft/2)")
	chatFormat := fs.String("chat-format", "chatml", "chat format for the token track: chatml, qwen3 or llama3")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *format != "prm800k":
		return usageError{fmt.Sprintf("--format %q: want prm800k (mr-gsm8k needs an endpoint for its continuations and runs through redraft run)", *format)}
	case *input == "" || *out == "":
		return usageError{"--input and --out are required"}
	}
	if *overwrite {
		os.RemoveAll(filepath.Join(*out, "data"))
		os.Remove(filepath.Join(*out, export.ManifestName))
	} else if _, err := os.Stat(filepath.Join(*out, export.ManifestName)); err == nil {
		return fmt.Errorf("%s already holds a run; pass --overwrite to replace it", *out)
	}
	var track *export.TokenTrackConfig
	if *tokPath != "" {
		var err error
		if track, err = export.LoadTokenTrack(*tokPath, tokenizer.Format(*chatFormat)); err != nil {
			return err
		}
	}
	w, err := export.NewSFTWriter(export.ShardOptions{Dir: *out}, track)
	if err != nil {
		return err
	}
	m := &export.Manifest{Started: time.Now().UTC(), CodeVersion: export.CodeVersion(), GoVersion: runtime.Version(), Source: "splice:" + *format}
	m.Config = []byte(fmt.Sprintf(`{"splice":{"format":%q,"input":%q}}`, *format, *input))
	skips, runErr := splice.PRM800K(ctx, *input, splice.DefaultOptions(), func(t *pipeline.Trajectory) error {
		return w.WriteGroup(ctx, []export.SFTRow{t.SFTRow()})
	})
	var shards []export.ShardInfo
	if runErr != nil {
		shards = w.Abort()
	} else if shards, runErr = w.Close(); runErr != nil {
		shards = w.Abort()
	}
	ds := export.DatasetInfo{Schema: w.Schema(), Shards: shards}
	for _, s := range shards {
		ds.Rows += s.Rows
		ds.Groups += s.Groups
	}
	m.Datasets = map[string]export.DatasetInfo{"sft": ds}
	for _, s := range skips {
		m.Skipped = append(m.Skipped, export.Skipped{File: *input, Line: s.Line, Reason: s.Reason})
	}
	m.Finished = time.Now().UTC()
	m.Status = export.StatusComplete
	if runErr != nil {
		m.Status, m.Error = export.StatusFailed, runErr.Error()
	}
	if err := export.WriteManifest(*out, m); err != nil {
		return err
	}
	if err := export.WriteCard(*out, m); err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	fmt.Fprintf(stderr, "spliced %d trajectories into %s (%d records skipped, reasons in the manifest)\n", ds.Rows, *out, len(skips))
	return nil
}
