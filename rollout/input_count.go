package rollout

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow/go/v17/parquet/file"
)

// CountRecords counts the records of the input opts names without decoding
// them: the non-blank lines of its JSONL files and the rows in its Parquet
// files' footers. It is an estimate for progress displays: a source drops
// bad records and a shard reads only its part, so the count bounds the
// tasks from above. It reads JSONL files through once (about a second per
// GB) and returns early with ctx's error when ctx ends.
func CountRecords(ctx context.Context, opts InputOptions) (int64, error) {
	files, err := listInput(opts)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, f := range files {
		switch f.format {
		case "jsonl":
			c, err := countLines(ctx, f.path)
			if err != nil {
				return n, err
			}
			n += c
		case "parquet":
			pf, err := file.OpenParquetFile(f.path, false)
			if err != nil {
				return n, &InputError{File: f.path, Err: err}
			}
			n += pf.NumRows()
			pf.Close()
		}
	}
	return n, nil
}

// countLines counts the lines of path that hold more than white space.
func countLines(ctx context.Context, path string) (int64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return 0, &InputError{File: path, Err: err}
	}
	defer fh.Close()
	var rd io.Reader = fh
	if gzipped(path) {
		z, err := gzip.NewReader(fh)
		if err != nil {
			return 0, &InputError{File: path, Err: fmt.Errorf("gzip: %w", err)}
		}
		defer z.Close()
		rd = z
	}
	buf := make([]byte, 1<<20)
	var n int64
	blank := true // the current line holds only white space so far
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, err := rd.Read(buf)
		chunk := buf[:k]
		for len(chunk) > 0 {
			i := bytes.IndexByte(chunk, '\n')
			line := chunk
			if i >= 0 {
				line = chunk[:i]
			}
			if blank && len(bytes.TrimSpace(line)) > 0 {
				blank = false
			}
			if i < 0 {
				break
			}
			if !blank {
				n++
			}
			blank = true
			chunk = chunk[i+1:]
		}
		if err == io.EOF {
			if !blank {
				n++
			}
			return n, nil
		}
		if err != nil {
			return n, &InputError{File: path, Err: err}
		}
	}
}
