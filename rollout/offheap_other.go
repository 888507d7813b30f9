//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package rollout

// words is a zeroed []uint64; on this system it lives on the Go heap.
type words struct{ w []uint64 }

func allocWords(n int) words { return words{w: make([]uint64, n)} }

func (m *words) free() { *m = words{} }
