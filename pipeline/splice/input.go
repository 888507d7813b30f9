package splice

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/redraft/redraft/rollout"
)

// lineFile reads a JSONL file, optionally gzipped, one non-blank line at a
// time.
type lineFile struct {
	path string
	f    *os.File
	gz   *gzip.Reader
	sc   *bufio.Scanner
	line int
}

func openLines(path string) (*lineFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &rollout.InputError{File: path, Err: err}
	}
	lf := &lineFile{path: path, f: f}
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		if lf.gz, err = gzip.NewReader(f); err != nil {
			f.Close()
			return nil, &rollout.InputError{File: path, Err: err}
		}
		r = lf.gz
	}
	lf.sc = bufio.NewScanner(r)
	lf.sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	return lf, nil
}

// next returns the next non-blank line (a copy) and its 1-based number; ok
// is false at the end of the file.
func (lf *lineFile) next(ctx context.Context) (line int, raw []byte, ok bool, err error) {
	for lf.sc.Scan() {
		lf.line++
		if err := ctx.Err(); err != nil {
			return 0, nil, false, err
		}
		if len(strings.TrimSpace(lf.sc.Text())) == 0 {
			continue
		}
		return lf.line, append([]byte(nil), lf.sc.Bytes()...), true, nil
	}
	if err := lf.sc.Err(); err != nil {
		return 0, nil, false, &rollout.InputError{File: lf.path, Line: lf.line + 1, Err: fmt.Errorf("reading: %w", err)}
	}
	return 0, nil, false, nil
}

func (lf *lineFile) close() {
	if lf.gz != nil {
		lf.gz.Close()
	}
	lf.f.Close()
}
