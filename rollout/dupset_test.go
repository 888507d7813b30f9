package rollout

import (
	"fmt"
	"testing"
)

// The table must find every id again across its growths, with the file and
// line of the first occurrence, and never report a new id as seen.
func TestDupSet(t *testing.T) {
	for _, n := range []int{1, dupFirstSize * 3 / 4, dupFirstSize*3/4 + 1, 200_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			d := new(dupSet)
			defer d.free()
			for i := range n {
				if _, _, dup := d.add(fmt.Sprint("task-", i), i%3, i+1); dup {
					t.Fatalf("id %d reported as a duplicate on first sight", i)
				}
			}
			if d.n != n || d.n > d.limit || len(d.mem.w)/2 < 2*d.limit/3 {
				t.Fatalf("%d ids: n=%d limit=%d slots=%d", n, d.n, d.limit, len(d.mem.w)/2)
			}
			for i := range n {
				f, l, dup := d.add(fmt.Sprint("task-", i), 7, 1)
				if !dup || f != i%3 || l != i+1 {
					t.Fatalf("id %d again: dup=%v at file %d line %d, want file %d line %d", i, dup, f, l, i%3, i+1)
				}
			}
			if d.n != n {
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
	if f, l, dup := d.add("a", 0, 0); !dup || f != 1<<24-1 || l != 1<<40-1 {
		t.Fatalf("got file %d line %d dup %v", f, l, dup)
	}
	d.free()
	if _, _, dup := d.add("a", 0, 3); dup {
		t.Fatal("a freed set still knows an id")
	}
}

func BenchmarkDupSet(b *testing.B) {
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = fmt.Sprint("bench-task-", i)
	}
	d := new(dupSet)
	defer d.free()
	b.ResetTimer()
	for i := range b.N {
		if i%len(ids) == 0 && i > 0 {
			d.free()
		}
		d.add(ids[i%len(ids)], 0, i)
	}
}
