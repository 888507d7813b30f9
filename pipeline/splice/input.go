package splice

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rollout"
)

// Cursor is where a splice reads its input: the records of one shard of a
// sharded run, after those a resumed run has done, until Stopped.
type Cursor struct {
	// From skips the first From.Inputs records of the shard, checking that
	// their keys hash to From.Hash (the input must not have changed).
	From pipeline.SFTResume
	// Shard selects records by line number (rollout.ShardOf); the zero
	// value reads every record.
	Shard rollout.Shard
	// Stopped, when set and true, ends the input early: the splice
	// finishes the records in flight and returns pipeline.ErrInterrupted.
	Stopped func() bool
}

// Record is the outcome of one input record, in input order: a trajectory,
// or the reason there is none.
type Record struct {
	Line int
	// Key identifies the record: its line number and the CRC-32 of its
	// text (see pipeline.SFTGroup.Key).
	Key        string
	Trajectory *pipeline.Trajectory
	Reason     string
}

// cursorFile reads the records a Cursor selects.
type cursorFile struct {
	*lineFile
	c       Cursor
	skipped int64
	hash    uint64
	// stopped is set when Stopped ended the input.
	stopped bool
}

// next returns the next record the cursor selects; ok is false at the end of
// the input or once stopped.
func (cf *cursorFile) next(ctx context.Context) (line int, raw []byte, key string, ok bool, err error) {
	for {
		if cf.skipped == cf.c.From.Inputs && cf.c.Stopped != nil && cf.c.Stopped() {
			cf.stopped = true
			return 0, nil, "", false, nil
		}
		line, raw, ok, err = cf.lineFile.next(ctx)
		if err != nil {
			return 0, nil, "", false, err
		}
		if !ok {
			if cf.skipped < cf.c.From.Inputs {
				return 0, nil, "", false, &rollout.InputError{File: cf.path, Line: cf.line, Err: fmt.Errorf("%w: it ends after %d records; the run had done %d", rollout.ErrInputChanged, cf.skipped, cf.c.From.Inputs)}
			}
			return 0, nil, "", false, nil
		}
		if s := cf.c.Shard; s.Count > 1 && rollout.ShardOf(strconv.Itoa(line), s.Count) != s.Index {
			continue
		}
		key = fmt.Sprintf("%d/%08x", line, crc32.ChecksumIEEE(raw))
		if cf.skipped < cf.c.From.Inputs {
			cf.skipped++
			cf.hash = rollout.TaskIDHash(cf.hash, key)
			if cf.skipped == cf.c.From.Inputs && cf.hash != cf.c.From.Hash {
				return 0, nil, "", false, &rollout.InputError{File: cf.path, Line: line, Err: fmt.Errorf("%w: the first %d records are not the ones the run had done", rollout.ErrInputChanged, cf.skipped)}
			}
			continue
		}
		return line, raw, key, true, nil
	}
}

// end is the error a splice returns after its input: ErrInterrupted when the
// cursor stopped it early.
func (cf *cursorFile) end() error {
	if cf.stopped {
		return pipeline.ErrInterrupted
	}
	return nil
}

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
