package export

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
}

// NewFailureLog prepares a failures record in dir.
func NewFailureLog(dir string) *FailureLog { return &FailureLog{dir: dir} }

// Add records the failed samples among rows.
func (l *FailureLog) Add(rows []RLRow) error {
	for _, r := range rows {
		if r.Error == nil {
			continue
		}
		if l.f == nil {
			f, err := os.Create(filepath.Join(l.dir, "."+FailuresName+".tmp"))
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
	}
	return nil
}

// Close finishes the record and describes it; nil when nothing failed.
func (l *FailureLog) Close() (*FailuresInfo, error) {
	if l.f == nil {
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
