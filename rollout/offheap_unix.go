//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package rollout

import (
	"syscall"
	"unsafe"
)

// words is a zeroed []uint64 outside the Go heap: an anonymous private
// mapping, so that the collector neither scans it nor counts it towards
// its next goal (which would double its cost in the resident set). When
// the mapping cannot be made it falls back to the heap.
type words struct {
	w      []uint64
	mapped []byte // the mapping behind w; nil when w is on the heap
}

func allocWords(n int) words {
	b, err := syscall.Mmap(-1, 0, n*8, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return words{w: make([]uint64, n)}
	}
	return words{w: unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), n), mapped: b}
}

func (m *words) free() {
	if m.mapped != nil {
		// Unmapping a live mapping of our own cannot fail but for a bug.
		if err := syscall.Munmap(m.mapped); err != nil {
			panic("rollout: unmapping the duplicate-id table: " + err.Error())
		}
	}
	*m = words{}
}
