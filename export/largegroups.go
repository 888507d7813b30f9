package export

import (
	"reflect"
	"runtime"
)

// Long values and parquet-go's buffers.
//
// parquet-go (v0.32) keeps, for every page it writes, copies of the page
// that outlive the write: a page of one byte-array value is taken for
// unordered and the value is copied into the column buffer's scratch, which
// the column buffer keeps (column_buffer_byte_array.go, page: a single
// offset is "unordered"); the column buffer's values go back to a size
// bucketed sync.Pool; the encoded page and its compression scratch stay in
// the writer buffers of another sync.Pool (writer.go, dataPageBuffers). A
// pooled buffer lives until the second collection after it was put back.
// For pages of a few hundred KiB this is what pools are for. For a page
// holding a 50 MB response it keeps about four copies of the response
// (about 200 MB) live until two collections have run, and, as every
// collection sets the next heap goal at twice the live heap, the resident
// set grows by twice that: with 20 answers of 50 MB at 4 in flight the peak
// was 5.5-6.3 times the bytes in flight, against 2.8-3.1 times with a
// writer that writes nothing; with the release it is 2.8-2.9 times
// (bench/bigresponse, docs/benchmarks.md).
//
// So after a group whose strings and byte slices reach largeGroupBytes, a
// shard writer runs two collections (releaseWriterBuffers): the first moves
// the pools' contents to their victim caches, the second frees them. Two
// collections with a heap of mostly pointer-free buffers take a few
// milliseconds, against tens of milliseconds for copying, encoding and
// compressing 8 MiB; groups below the threshold, that is every group of an
// ordinary run, never pay for them. This leaves the process's GC settings
// (GOGC, GOMEMLIMIT) alone. What stays is the column buffer's scratch, one
// buffer of the longest value's size per column, until the shard ends: a
// shard that held a large group drops its Parquet writer when it finishes
// rather than keeping it for the next shard.

// largeGroupBytes is the size of a group's text (the bytes of its strings
// and byte slices, all rows together) from which a shard writer releases
// parquet-go's pooled buffers after writing it. Rows of one group go into
// the same pages, so a group's total is the size of the pages it makes.
const largeGroupBytes = 8 << 20

// releaseWriterBuffers frees the buffers parquet-go keeps in its pools after
// writing a large group: two collections, the first moving the pools to
// their victim caches, the second dropping the victims.
func releaseWriterBuffers() {
	runtime.GC()
	runtime.GC()
}

// textSizer returns a function that sums the bytes of the strings and byte
// slices in a value of type t, following pointers, structs, slices, arrays
// and maps; nil when t can hold none. Built once per row type, it reads only
// the fields that can hold text.
func textSizer(t reflect.Type) func(reflect.Value) int64 {
	return textSizerOf(t, map[reflect.Type]bool{})
}

func textSizerOf(t reflect.Type, visiting map[reflect.Type]bool) func(reflect.Value) int64 {
	if visiting[t] {
		// A recursive type (not one Parquet can write): its text is
		// counted at the levels above.
		return nil
	}
	visiting[t] = true
	defer delete(visiting, t)
	switch t.Kind() {
	case reflect.String:
		return func(v reflect.Value) int64 { return int64(v.Len()) }
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return func(v reflect.Value) int64 { return int64(v.Len()) }
		}
		elem := textSizerOf(t.Elem(), visiting)
		if elem == nil {
			return nil
		}
		return func(v reflect.Value) (n int64) {
			for i := range v.Len() {
				n += elem(v.Index(i))
			}
			return n
		}
	case reflect.Array:
		elem := textSizerOf(t.Elem(), visiting)
		if elem == nil || t.Len() == 0 {
			return nil
		}
		return func(v reflect.Value) (n int64) {
			for i := range v.Len() {
				n += elem(v.Index(i))
			}
			return n
		}
	case reflect.Pointer:
		elem := textSizerOf(t.Elem(), visiting)
		if elem == nil {
			return nil
		}
		return func(v reflect.Value) int64 {
			if v.IsNil() {
				return 0
			}
			return elem(v.Elem())
		}
	case reflect.Map:
		key, val := textSizerOf(t.Key(), visiting), textSizerOf(t.Elem(), visiting)
		if key == nil && val == nil {
			return nil
		}
		return func(v reflect.Value) (n int64) {
			it := v.MapRange()
			for it.Next() {
				if key != nil {
					n += key(it.Key())
				}
				if val != nil {
					n += val(it.Value())
				}
			}
			return n
		}
	case reflect.Struct:
		type field struct {
			index int
			size  func(reflect.Value) int64
		}
		var fields []field
		for i := range t.NumField() {
			if size := textSizerOf(t.Field(i).Type, visiting); size != nil {
				fields = append(fields, field{i, size})
			}
		}
		if len(fields) == 0 {
			return nil
		}
		return func(v reflect.Value) (n int64) {
			for _, f := range fields {
				n += f.size(v.Field(f.index))
			}
			return n
		}
	}
	return nil
}
