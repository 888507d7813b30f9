package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The table must find every id again across its growths, in memory and
// spilled to a file, with the file and line of the first occurrence, and
// never report a new id as seen.
func TestDupSet(t *testing.T) {
	tests := []struct {
		name     string
		n        int
		memSlots uint64
	}{
		{"one", 1, 0},
		{"first table full", dupFirstSize * 3 / 4, 0},
		{"first growth", dupFirstSize*3/4 + 1, 0},
		{"in memory", 40_000, 0},
		{"spilled", 120_000, 0},
		{"spilled early", 5_000, dupFirstSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			d := &dupSet{spillDir: dir, memSlots: tt.memSlots}
			defer d.free()
			for i := range tt.n {
				_, _, dup, err := d.add(fmt.Sprint("task-", i), i%3, i+1)
				if err != nil || dup {
					t.Fatalf("id %d on first sight: dup=%v err=%v", i, dup, err)
				}
			}
			if d.n != uint64(tt.n) || d.n > d.limit || d.t.size() < 2*d.limit/3 {
				t.Fatalf("%d ids: n=%d limit=%d slots=%d", tt.n, d.n, d.limit, d.t.size())
			}
			max := tt.memSlots
			if max == 0 {
				max = dupMemSlots
			}
			_, spilled := d.t.(*fileTable)
			if spilled != (d.t.size() > max) {
				t.Fatalf("%d slots (memory holds %d): spilled=%v", d.t.size(), max, spilled)
			}
			// The spill file is unlinked at once: nothing is left to clean.
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("spill directory holds %d entries", len(left))
			}
			for i := range tt.n {
				f, l, dup, err := d.add(fmt.Sprint("task-", i), 7, 1)
				if err != nil || !dup || f != i%3 || l != i+1 {
					t.Fatalf("id %d again: dup=%v err=%v at file %d line %d, want file %d line %d", i, dup, err, f, l, i%3, i+1)
				}
			}
			if d.n != uint64(tt.n) {
				t.Fatalf("a duplicate was stored: n=%d", d.n)
			}
		})
	}
}

// Lines up to 2^40-1 and file indexes up to 2^24-1 survive the packing.
func TestDupSetPacking(t *testing.T) {
	d := new(dupSet)
	defer d.free()
	d.add("a", 1<<24-1, 1<<40-1)
	if f, l, dup, _ := d.add("a", 0, 0); !dup || f != 1<<24-1 || l != 1<<40-1 {
		t.Fatalf("got file %d line %d dup %v", f, l, dup)
	}
	d.free()
	if _, _, dup, _ := d.add("a", 0, 3); dup {
		t.Fatal("a freed set still knows an id")
	}
}

// A spill directory that cannot be written fails the add with the cause.
func TestDupSetSpillError(t *testing.T) {
	d := &dupSet{spillDir: filepath.Join(t.TempDir(), "missing"), memSlots: dupFirstSize}
	defer d.free()
	var err error
	for i := 0; err == nil && i < dupFirstSize; i++ {
		_, _, _, err = d.add(fmt.Sprint(i), 0, i)
	}
	if err == nil || !strings.Contains(err.Error(), "duplicate-id index") || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("got %v, want the index's error naming the directory", err)
	}
}

func BenchmarkDupSet(b *testing.B) {
	for _, bc := range []struct {
		name     string
		memSlots uint64
	}{{"memory", 1 << 20}, {"spilled", dupFirstSize}} {
		b.Run(bc.name, func(b *testing.B) {
			ids := make([]string, 1<<17)
			for i := range ids {
				ids[i] = fmt.Sprint("bench-task-", i)
			}
			d := &dupSet{spillDir: b.TempDir(), memSlots: bc.memSlots}
			defer d.free()
			b.ResetTimer()
			for i := range b.N {
				if i%len(ids) == 0 && i > 0 {
					d.free()
				}
				d.add(ids[i%len(ids)], 0, i)
			}
		})
	}
}

// Through the task reader: past the in-memory table, in the spill file under
// SpillDir, a duplicate is still caught and named with its first line, and
// a skip policy reads on past it.
func TestDuplicateAfterSpill(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tasks.jsonl")
	n := dupMemSlots // past the in-memory table's three quarters
	var b strings.Builder
	for i := range n {
		b.WriteString(taskLine(fmt.Sprint("t", i)) + "\n")
	}
	b.WriteString(taskLine("t17") + "\n" + taskLine("last") + "\n")
	os.WriteFile(path, []byte(b.String()), 0o644)
	spill := filepath.Join(dir, "spill")
	os.Mkdir(spill, 0o755)
	for _, policy := range []OnError{OnErrorFail, OnErrorSkip} {
		f, err := OpenTasks(InputOptions{Path: path, OnError: policy, SpillDir: spill})
		if err != nil {
			t.Fatal(err)
		}
		read := 0
		for {
			_, err = f.Next(context.Background())
			if err != nil {
				break
			}
			read++
		}
		if _, spilled := f.in.dups.t.(*fileTable); !spilled {
			t.Fatalf("%s: %d ids did not spill", policy, n)
		}
		if policy == OnErrorFail {
			checkInputError(t, err, path, n+1, "id", `duplicate task id "t17" (first on line 18)`)
		} else if !errors.Is(err, io.EOF) || read != n+1 || f.SkippedTotal() != 1 {
			t.Fatalf("skip: read %d, err %v, skipped %d", read, err, f.SkippedTotal())
		}
		f.Close()
	}
}
