package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// faultFS creates shard files whose operations (create, each write, fsync,
// close) are numbered; the one numbered failAt fails with ENOSPC (0: none
// fails). It remembers how many bytes of each file were fsynced.
type faultFS struct {
	t      *testing.T
	ops    int
	failAt int
	// synced maps a shard's final path to the bytes fsynced; a write after
	// the fsync makes it -1.
	synced map[string]int64
}

func (fs *faultFS) op(what, path string) error {
	fs.ops++
	if fs.ops == fs.failAt {
		return &os.PathError{Op: what, Path: path, Err: syscall.ENOSPC}
	}
	return nil
}

// finalPath is the shard a temporary file becomes: .train-00000.parquet.tmp
// -> train-00000.parquet.
func finalPath(tmp string) string {
	return filepath.Join(filepath.Dir(tmp), strings.TrimSuffix(strings.TrimPrefix(filepath.Base(tmp), "."), ".tmp"))
}

func (fs *faultFS) create(path string) (ShardFile, error) {
	if err := fs.op("create", path); err != nil {
		return nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	fs.synced[finalPath(path)] = -1
	return &faultFile{fs: fs, f: f}, nil
}

type faultFile struct {
	fs      *faultFS
	f       *os.File
	written int64
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.fs.op("write", f.f.Name()); err != nil {
		// A full disk takes part of the write.
		n, _ := f.f.Write(p[:len(p)/2])
		f.written += int64(n)
		f.fs.synced[finalPath(f.f.Name())] = -1
		return n, err
	}
	n, err := f.f.Write(p)
	f.written += int64(n)
	f.fs.synced[finalPath(f.f.Name())] = -1
	return n, err
}

func (f *faultFile) Sync() error {
	if err := f.fs.op("fsync", f.f.Name()); err != nil {
		return err
	}
	if err := f.f.Sync(); err != nil {
		return err
	}
	f.fs.synced[finalPath(f.f.Name())] = f.written
	return nil
}

func (f *faultFile) Close() error {
	err := f.fs.op("close", f.f.Name())
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// shardGroups are the groups of the fault scenario: 14 groups of 3 rows.
func shardGroups() [][]RLRow {
	var out [][]RLRow
	for i := range 14 {
		out = append(out, sampleRows(fmt.Sprintf("task-%02d", i), f64(1), f64(0), f64(float64(i))))
	}
	return out
}

// runShardScenario writes the groups as a journalled run does: a checkpoint
// (Close, record, Commit) every 4 groups, rotation every 6 rows. On an
// error it checks that the writer refuses to go on, rolls back, and starts
// again from the last commit (as a resume replays the journal). It returns
// the committed shards at the end and the number of errors met.
func runShardScenario(t *testing.T, dir string, fs *faultFS) ([]ShardInfo, int) {
	t.Helper()
	ctx := context.Background()
	w, err := NewShardWriter[RLRow](ShardOptions{Dir: dir, Dataset: "rl", Schema: RLSchema, MaxRows: 6, RowGroupRows: 2, CreateFile: fs.create})
	if err != nil {
		t.Fatal(err)
	}
	groups := shardGroups()
	var committed []ShardInfo
	done, errs := 0, 0 // groups covered by committed shards
	checkCommitted := func(list []ShardInfo) {
		t.Helper()
		for _, s := range list {
			if got := fs.synced[filepath.Join(dir, filepath.FromSlash(s.Path))]; got != s.Bytes {
				t.Fatalf("op %d: %s committed with %d bytes, %d fsynced", fs.failAt, s.Path, s.Bytes, got)
			}
		}
	}
	for i := 0; i < len(groups); {
		err := w.WriteGroup(ctx, groups[i])
		if err == nil && (i+1)%4 == 0 || err == nil && i == len(groups)-1 {
			var finished []ShardInfo
			if finished, err = w.Flush(); err == nil {
				checkCommitted(finished) // what the record would name
				committed = w.Commit()
				done = i + 1
			}
		}
		if err == nil {
			i++
			continue
		}
		errs++
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("op %d: error does not wrap ENOSPC: %v", fs.failAt, err)
		}
		// The writer refuses to go on until rolled back.
		if err := w.WriteGroup(ctx, groups[i]); !errors.Is(err, ErrWriterFailed) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("op %d: write after a failure: %v", fs.failAt, err)
		}
		if _, err := w.Flush(); !errors.Is(err, ErrWriterFailed) {
			t.Fatalf("op %d: close after a failure: %v", fs.failAt, err)
		}
		back, err := w.Rollback()
		if err != nil {
			t.Fatalf("op %d: rollback: %v", fs.failAt, err)
		}
		if !slices.Equal(back, committed) {
			t.Fatalf("op %d: rollback returned %v, committed %v", fs.failAt, back, committed)
		}
		// On disk: the committed shards and nothing else.
		var want, got []string
		for _, s := range committed {
			want = append(want, filepath.Base(s.Path))
		}
		entries, _ := os.ReadDir(filepath.Join(dir, "data", "rl"))
		for _, e := range entries {
			got = append(got, e.Name())
		}
		if !slices.Equal(got, want) {
			t.Fatalf("op %d: after rollback, on disk %v, committed %v", fs.failAt, got, want)
		}
		i = done
	}
	checkCommitted(committed)
	return committed, errs
}

// Every write, fsync, create and close of every shard fails in turn (a full
// disk): the writer never reports a shard committed that is not durable
// (fsynced whole), fails until rolled back, and a rollback leaves exactly the
// committed shards; starting again from the last commit ends with every
// row, once, in order.
func TestShardWriterWriteFailures(t *testing.T) {
	clean := &faultFS{t: t, synced: map[string]int64{}}
	_, errs := runShardScenario(t, t.TempDir(), clean)
	if errs != 0 {
		t.Fatal("errors without a fault")
	}
	total := clean.ops
	if total < 30 {
		t.Fatalf("only %d file operations: the scenario does not exercise the writer", total)
	}
	var want []string
	for _, g := range shardGroups() {
		for _, r := range g {
			want = append(want, fmt.Sprintf("%s/%d", r.TaskID, r.SampleIndex))
		}
	}
	for failAt := 1; failAt <= total; failAt++ {
		dir := t.TempDir()
		fs := &faultFS{t: t, failAt: failAt, synced: map[string]int64{}}
		committed, errs := runShardScenario(t, dir, fs)
		if errs != 1 {
			t.Fatalf("op %d: %d errors, want 1", failAt, errs)
		}
		var got []string
		for _, s := range committed {
			path := filepath.Join(dir, filepath.FromSlash(s.Path))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != s.SHA256 || int64(len(b)) != s.Bytes {
				t.Fatalf("op %d: %s differs from its record", failAt, s.Path)
			}
			rows, err := ReadRL(context.Background(), path)
			if err != nil || int64(len(rows)) != s.Rows {
				t.Fatalf("op %d: %s: %d rows read (%v), recorded %d", failAt, s.Path, len(rows), err, s.Rows)
			}
			for _, r := range rows {
				got = append(got, fmt.Sprintf("%s/%d", r.TaskID, r.SampleIndex))
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("op %d: rows after recovery:\n%v\nwant\n%v", failAt, got, want)
		}
	}
}
