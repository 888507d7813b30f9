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
type FailureLog struct {
	dir   string
	f     *os.File
	bw    *bufio.Writer
	h     hash.Hash
	count int64
	size  int64
	// ckCount and ckSize are the record at the last Checkpoint.
	ckCount, ckSize int64
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

// Checkpoint makes every line added so far durable and returns how many
// lines and bytes the record holds.
func (l *FailureLog) Checkpoint() (count, size int64, err error) {
	if l.f == nil {
		return 0, 0, nil
	}
	if err := l.bw.Flush(); err != nil {
		return 0, 0, fmt.Errorf("failures record: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return 0, 0, fmt.Errorf("failures record: %w", err)
	}
	l.ckCount, l.ckSize = l.count, l.size
	return l.count, l.size, nil
}

// Rollback drops the lines added since the last Checkpoint (or all of them
// when there was none), for a run that stops where it cannot be resumed.
func (l *FailureLog) Rollback() error {
	if l.f == nil {
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
	l.h, l.count, l.size = h, l.ckCount, l.ckSize
	if l.bw == nil {
		l.bw = bufio.NewWriter(io.MultiWriter(l.f, h))
	} else {
		l.bw.Reset(io.MultiWriter(l.f, h))
	}
	return nil
}

// Add records the failed samples among rows.
func (l *FailureLog) Add(rows []RLRow) error {
	for _, r := range rows {
		if r.Error == nil {
			continue
		}
		if l.f == nil {
			f, err := os.Create(l.tmpPath())
			if err != nil {
				return fmt.Errorf("failures record: %w", err)
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
		l.bw.Write(append(b, '\n'))
		l.count++
		l.size += int64(len(b)) + 1
	}
	return nil
}

// Close finishes the record and describes it; nil when nothing failed.
func (l *FailureLog) Close() (*FailuresInfo, error) {
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
		os.Remove(l.f.Name())
		return nil, fmt.Errorf("failures record: %w", err)
	}
	syncDir(l.dir)
	return &FailuresInfo{Path: FailuresName, Count: l.count, SHA256: hex.EncodeToString(l.h.Sum(nil))}, nil
}
