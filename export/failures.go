package export

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
)

// FailuresName is the failures record's file name in the output directory.
const FailuresName = "failures.jsonl"

// Failure is one sample whose request failed for good.
type Failure struct {
	TaskID      string `json:"task_id"`
	SampleIndex int32  `json:"sample_index"`
	Turn        int32  `json:"turn"`
	Error       string `json:"error"`
	Endpoint    string `json:"endpoint,omitempty"`
	Attempts    int32  `json:"attempts,omitempty"`
}

// FailureLog writes the failures record: one JSON line per failed sample,
// under a temporary name until Close renames it. Nothing is created when no
// sample fails.
//
// Like ShardWriter, it commits in two steps: Flush makes the lines added so
// far durable, Commit (called once the caller's record holds Flush's count)
// commits them, and Rollback truncates the record to the last Commit. The
// first failed write, flush or fsync makes the log fail: Add, Flush and
// Close return that error until Rollback.
type FailureLog struct {
	dir   string
	f     *os.File
	bw    *bufio.Writer
	h     hash.Hash
	count int64
	size  int64
	// flCount and flSize are the record at the last Flush; ckCount and
	// ckSize at the last Commit.
	flCount, flSize int64
	ckCount, ckSize int64
	// err is the first failure; set, the log refuses to write until
	// Rollback.
	err error
}

// NewFailureLog prepares a failures record in dir.
func NewFailureLog(dir string) *FailureLog { return &FailureLog{dir: dir} }

// ResumeFailureLog reopens the record of a resumed run, keeping the count
// lines (size bytes) that its last checkpoint covered and dropping anything
// written after it.
func ResumeFailureLog(dir string, count, size int64) (*FailureLog, error) {
	l := &FailureLog{dir: dir}
	if count == 0 {
		os.Remove(l.tmpPath())
		return l, nil
	}
	// A run that stopped renamed the record to its final name; take it back.
	if _, err := os.Stat(l.tmpPath()); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(filepath.Join(dir, FailuresName), l.tmpPath()); err != nil {
			return nil, fmt.Errorf("resuming failures record: %w", err)
		}
	}
	f, err := os.OpenFile(l.tmpPath(), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("resuming failures record: %w", err)
	}
	l.f, l.ckCount, l.ckSize = f, count, size
	if err := l.Rollback(); err != nil {
		f.Close()
		return nil, fmt.Errorf("resuming: %w", err)
	}
	return l, nil
}

func (l *FailureLog) tmpPath() string { return filepath.Join(l.dir, "."+FailuresName+".tmp") }

// Flush makes every line added so far durable and returns how many lines
// and bytes the record holds. They are committed at the next Commit.
func (l *FailureLog) Flush() (count, size int64, err error) {
	if l.err != nil {
		return 0, 0, l.failed()
	}
	if l.f == nil {
		return 0, 0, nil
	}
	if err := l.bw.Flush(); err != nil {
		l.err = err
		return 0, 0, l.failed()
	}
	if err := l.f.Sync(); err != nil {
		l.err = err
		return 0, 0, l.failed()
	}
	l.flCount, l.flSize = l.count, l.size
	return l.count, l.size, nil
}

// Commit commits the lines of the last Flush.
func (l *FailureLog) Commit() { l.ckCount, l.ckSize = l.flCount, l.flSize }

// Err is the failure that stops the log, nil when it can write.
func (l *FailureLog) Err() error { return l.err }

func (l *FailureLog) failed() error {
	return fmt.Errorf("failures record: %w: %w", ErrWriterFailed, l.err)
}

// Rollback drops the lines added since the last Commit (or all of them when
// there was none) and clears a failure.
func (l *FailureLog) Rollback() error {
	if l.f == nil {
		l.err = nil
		return nil
	}
	// The record's first ckSize bytes are kept; the hash is recomputed
	// from them.
	h := sha256.New()
	n, err := l.f.Seek(0, io.SeekStart)
	if err == nil {
		n, err = io.Copy(h, io.LimitReader(l.f, l.ckSize))
	}
	if err == nil && n != l.ckSize {
		err = fmt.Errorf("%s has %d bytes, the checkpoint recorded %d", l.f.Name(), n, l.ckSize)
	}
	if err == nil {
		err = l.f.Truncate(l.ckSize)
	}
	if err == nil {
		_, err = l.f.Seek(l.ckSize, io.SeekStart)
	}
	if err != nil {
		return fmt.Errorf("failures record: %w", err)
	}
	l.h, l.count, l.size, l.err = h, l.ckCount, l.ckSize, nil
	l.flCount, l.flSize = l.ckCount, l.ckSize
	if l.bw == nil {
		l.bw = bufio.NewWriter(io.MultiWriter(l.f, h))
	} else {
		l.bw.Reset(io.MultiWriter(l.f, h))
	}
	return nil
}

// Add records the failed samples among rows.
func (l *FailureLog) Add(rows []RLRow) error {
	if l.err != nil {
		return l.failed()
	}
	for _, r := range rows {
		if r.Error == nil {
			continue
		}
		if l.f == nil {
			f, err := os.Create(l.tmpPath())
			if err != nil {
				l.err = err
				return l.failed()
			}
			l.f, l.h = f, sha256.New()
			l.bw = bufio.NewWriter(io.MultiWriter(f, l.h))
		}
		fl := Failure{TaskID: r.TaskID, SampleIndex: r.SampleIndex, Turn: r.Turn, Error: *r.Error}
		if r.Endpoint != nil {
			fl.Endpoint = *r.Endpoint
		}
		if r.Attempts != nil {
			fl.Attempts = *r.Attempts
		}
		b, err := json.Marshal(fl)
		if err != nil {
			return err
		}
		if _, err := l.bw.Write(append(b, '\n')); err != nil {
			l.err = err
			return l.failed()
		}
		l.count++
		l.size += int64(len(b)) + 1
	}
	return nil
}

// Close finishes the record and describes it; nil when nothing failed. It
// fails, writing nothing, when the log has failed and was not rolled back.
func (l *FailureLog) Close() (*FailuresInfo, error) {
	if l.err != nil {
		return nil, l.failed()
	}
	if l.f == nil {
		return nil, nil
	}
	if l.count == 0 {
		l.f.Close()
		os.Remove(l.f.Name())
		return nil, nil
	}
	err := l.bw.Flush()
	if err == nil {
		err = l.f.Sync()
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(l.f.Name(), filepath.Join(l.dir, FailuresName))
	}
	if err != nil {
		// The temporary file stays: a resume takes back the lines its
		// journal committed.
		l.err = err
		return nil, l.failed()
	}
	syncDir(l.dir)
	return &FailuresInfo{Path: FailuresName, Count: l.count, SHA256: hex.EncodeToString(l.h.Sum(nil))}, nil
}
