package rollout

import (
	"crypto/sha256"
	"encoding/binary"
)

// dupSet remembers every task id seen, so that a duplicate anywhere in the
// input is caught, in an open-addressing table of 16-byte slots kept off
// the Go heap where the system allows (see offheap_unix.go): a table of a
// million ids is 32 MiB at most, counted once in the resident set rather
// than twice (live plus the collector's headroom), and none of it is
// scanned by the collector.
//
// A slot's key is the first 8 bytes of the id's sha256 (0 marks an empty
// slot, so a key of 0 is stored as 1), its value the file index (high 24
// bits) and line (low 40 bits) of the id's first occurrence. Two different
// ids share a key with probability about n^2/2^65 over a run of n tasks
// (3e-8 for a million tasks); such a pair would be reported as a
// duplicate, naming both lines.
//
// The table doubles when three quarters full, so it holds between 21 and
// 43 bytes per id. free releases it; a dupSet is not safe for concurrent
// use.
type dupSet struct {
	mem   words // 2 words a slot: key, value
	n     int   // ids held
	limit int   // grow beyond this many ids
}

const (
	dupLineBits  = 40
	dupFirstSize = 1 << 10 // slots
)

// add registers id first seen at file and line, or reports where it was
// first seen.
func (d *dupSet) add(id string, file, line int) (firstFile, firstLine int, dup bool) {
	sum := sha256.Sum256([]byte(id))
	key := binary.LittleEndian.Uint64(sum[:8])
	if key == 0 {
		key = 1
	}
	if d.mem.w == nil || d.n >= d.limit {
		d.grow()
	}
	s := d.mem.w
	mask := uint64(len(s)/2 - 1)
	for i := key & mask; ; i = (i + 1) & mask {
		switch s[2*i] {
		case key:
			v := s[2*i+1]
			return int(v >> dupLineBits), int(v & (1<<dupLineBits - 1)), true
		case 0:
			s[2*i] = key
			s[2*i+1] = uint64(file)<<dupLineBits | uint64(line)&(1<<dupLineBits-1)
			d.n++
			return 0, 0, false
		}
	}
}

// grow doubles the table (or makes the first one) and rehashes into it.
func (d *dupSet) grow() {
	slots := dupFirstSize
	if d.mem.w != nil {
		slots = len(d.mem.w)
	}
	next := allocWords(2 * slots)
	mask := uint64(slots - 1)
	for i := 0; i+1 < len(d.mem.w); i += 2 {
		key := d.mem.w[i]
		if key == 0 {
			continue
		}
		j := key & mask
		for next.w[2*j] != 0 {
			j = (j + 1) & mask
		}
		next.w[2*j], next.w[2*j+1] = key, d.mem.w[i+1]
	}
	d.mem.free()
	d.mem = next
	d.limit = slots * 3 / 4
}

// free releases the table; the set is empty afterwards.
func (d *dupSet) free() {
	d.mem.free()
	d.n, d.limit = 0, 0
}
