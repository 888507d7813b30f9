package rollout

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
)

// dupSet remembers every task id seen, so that a duplicate anywhere in the
// input is caught, in an open-addressing table of 16-byte slots (linear
// probing, doubled when three quarters full: 21 to 43 bytes per id).
//
// Memory stays flat however long the run: the table lives off the Go heap
// (see offheap_unix.go) while it is small, and once it outgrows
// dupMemSlots it moves to a file in spillDir, read and written with
// pread/pwrite a block at a time, so that the operating system's page
// cache holds it rather than the process (a million ids: a 32 MiB file).
// The file is unlinked as soon as it is made, where the system allows, so
// a crash leaves nothing behind.
//
// A slot's key is the first 8 bytes of the id's sha256 (0 marks an empty
// slot, so a key of 0 is stored as 1), its value the file index (high 24
// bits) and line (low 40 bits) of the id's first occurrence. Two different
// ids share a key with probability about n^2/2^65 over a run of n tasks
// (3e-8 for a million tasks); such a pair would be reported as a
// duplicate, naming both lines.
//
// A dupSet is not safe for concurrent use; free releases it.
type dupSet struct {
	spillDir string // "" : the system's temporary directory
	memSlots uint64 // the most slots kept in memory (0: dupMemSlots)
	t        slotTable
	n        uint64 // ids held
	limit    uint64 // grow beyond this many ids
}

const (
	dupLineBits  = 40
	dupFirstSize = 1 << 10 // slots
	// dupMemSlots is the largest table kept in memory: 1 MiB, about
	// 49,000 ids.
	dupMemSlots = 1 << 16
)

// slotTable is the storage of a dupSet: slots of a key and a value.
type slotTable interface {
	size() uint64 // slots, a power of two
	get(i uint64) (key, val uint64, err error)
	set(i uint64, key, val uint64) error
	// each calls fn for every used slot.
	each(fn func(key, val uint64) error) error
	free() error
}

// add registers id first seen at file and line, or reports where it was
// first seen. An error means the table could not be read or written.
func (d *dupSet) add(id string, file, line int) (firstFile, firstLine int, dup bool, err error) {
	sum := sha256.Sum256([]byte(id))
	key := binary.LittleEndian.Uint64(sum[:8])
	if key == 0 {
		key = 1
	}
	if d.t == nil || d.n >= d.limit {
		if err := d.grow(); err != nil {
			return 0, 0, false, fmt.Errorf("duplicate-id index: %w", err)
		}
	}
	v, found, err := insert(d.t, key, uint64(file)<<dupLineBits|uint64(line)&(1<<dupLineBits-1))
	if err != nil {
		return 0, 0, false, fmt.Errorf("duplicate-id index: %w", err)
	}
	if found {
		return int(v >> dupLineBits), int(v & (1<<dupLineBits - 1)), true, nil
	}
	d.n++
	return 0, 0, false, nil
}

// insert stores key with val unless key is there already, in which case
// it returns the value stored with it and found.
func insert(t slotTable, key, val uint64) (old uint64, found bool, err error) {
	mask := t.size() - 1
	for i := key & mask; ; i = (i + 1) & mask {
		k, v, err := t.get(i)
		if err != nil {
			return 0, false, err
		}
		switch k {
		case key:
			return v, true, nil
		case 0:
			return 0, false, t.set(i, key, val)
		}
	}
}

// grow doubles the table (or makes the first one) and rehashes into it.
func (d *dupSet) grow() error {
	slots := uint64(dupFirstSize)
	if d.t != nil {
		slots = 2 * d.t.size()
	}
	inMemory := d.memSlots
	if inMemory == 0 {
		inMemory = dupMemSlots
	}
	var next slotTable
	if slots <= inMemory {
		next = &memTable{w: allocWords(int(2 * slots))}
	} else {
		f, err := newFileTable(d.spillDir, slots)
		if err != nil {
			return err
		}
		next = f
	}
	if d.t != nil {
		err := d.t.each(func(key, val uint64) error {
			_, _, err := insert(next, key, val)
			return err
		})
		if err == nil {
			err = d.t.free()
		}
		if err != nil {
			next.free()
			return err
		}
	}
	d.t, d.limit = next, slots*3/4
	return nil
}

// free releases the table; the set is empty afterwards.
func (d *dupSet) free() {
	if d.t != nil {
		d.t.free()
	}
	d.t, d.n, d.limit = nil, 0, 0
}

// memTable is a slotTable in memory.
type memTable struct{ w words }

func (m *memTable) size() uint64 { return uint64(len(m.w.w) / 2) }

func (m *memTable) get(i uint64) (uint64, uint64, error) { return m.w.w[2*i], m.w.w[2*i+1], nil }

func (m *memTable) set(i, key, val uint64) error {
	m.w.w[2*i], m.w.w[2*i+1] = key, val
	return nil
}

func (m *memTable) each(fn func(key, val uint64) error) error {
	for i := 0; i+1 < len(m.w.w); i += 2 {
		if m.w.w[i] != 0 {
			if err := fn(m.w.w[i], m.w.w[i+1]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *memTable) free() error {
	m.w.free()
	return nil
}

// fileTable is a slotTable in a file, little-endian, 16 bytes a slot. A
// probe reads the block of 16 slots around its slot and keeps it, so a
// run of linear probing costs one read.
type fileTable struct {
	f     *os.File
	name  string // removed at free, if it could not be at creation
	slots uint64
	blk   [fileBlockSlots * 16]byte
	at    uint64 // the block in blk, plus 1; 0: none
}

const fileBlockSlots = 16

func newFileTable(dir string, slots uint64) (*fileTable, error) {
	f, err := os.CreateTemp(dir, ".redraft-ids-*")
	if err != nil {
		return nil, err
	}
	t := &fileTable{f: f, slots: slots}
	if err := os.Remove(f.Name()); err != nil {
		t.name = f.Name() // open files cannot be removed here: at free
	}
	// A sparse file of zeros: every slot empty.
	if err := f.Truncate(int64(slots * 16)); err != nil {
		t.free()
		return nil, err
	}
	return t, nil
}

func (t *fileTable) size() uint64 { return t.slots }

func (t *fileTable) get(i uint64) (uint64, uint64, error) {
	b := i / fileBlockSlots
	if t.at != b+1 {
		if _, err := t.f.ReadAt(t.blk[:], int64(b*fileBlockSlots*16)); err != nil {
			t.at = 0
			return 0, 0, err
		}
		t.at = b + 1
	}
	o := (i % fileBlockSlots) * 16
	return binary.LittleEndian.Uint64(t.blk[o:]), binary.LittleEndian.Uint64(t.blk[o+8:]), nil
}

func (t *fileTable) set(i, key, val uint64) error {
	var s [16]byte
	binary.LittleEndian.PutUint64(s[:], key)
	binary.LittleEndian.PutUint64(s[8:], val)
	if _, err := t.f.WriteAt(s[:], int64(i*16)); err != nil {
		t.at = 0
		return err
	}
	if t.at == i/fileBlockSlots+1 {
		copy(t.blk[(i%fileBlockSlots)*16:], s[:])
	}
	return nil
}

func (t *fileTable) each(fn func(key, val uint64) error) error {
	buf := make([]byte, 1<<16)
	for off := int64(0); off < int64(t.slots*16); off += int64(len(buf)) {
		n, err := t.f.ReadAt(buf, off)
		if err != nil && off+int64(n) < int64(t.slots*16) {
			return err
		}
		for o := 0; o+16 <= n; o += 16 {
			if k := binary.LittleEndian.Uint64(buf[o:]); k != 0 {
				if err := fn(k, binary.LittleEndian.Uint64(buf[o+8:])); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (t *fileTable) free() error {
	err := t.f.Close()
	if t.name != "" {
		os.Remove(t.name)
	}
	return err
}
