package export

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// Shards carry no minimum or maximum of a string or byte column, because
// parquet-go (v0.32) copies whole values into them: with its defaults, each
// data page header holds the page's min and max twice (the deprecated
// min/max fields and min_value/max_value), the footer's column chunk
// statistics hold the row group's min and max, and the writer keeps every
// page's bounds in memory until the row group ends. One response of 1 MB
// then made a page header of over 4 MB, more than Arrow Go reads (its reader
// stops at the page without an error, so the rows read were silently short);
// from 4 MB, more than pyarrow's 16 MB page header limit; and the footer grows
// with the longest values of every row group towards pyarrow's 100 MB limit.
//
// So byte array columns are written without page statistics and without
// page bounds (numbers keep theirs: audit reads the ranges of the reward
// columns from the column chunk statistics), and, because parquet-go then
// writes empty bounds into those columns' column index (which a reader that
// filters by page would trust), the footer is rewritten without any column
// index reference. The column index is optional in Parquet; readers read
// every page instead. The index bytes stay in the file, unreferenced.

// noValueBounds lists the writer options that keep whole values of the byte
// array columns of schema out of page headers, column chunk statistics and
// the writer's memory.
func noValueBounds(schema *parquet.Schema) []parquet.WriterOption {
	var opts []parquet.WriterOption
	for _, path := range schema.Columns() {
		leaf, ok := schema.Lookup(path...)
		if !ok || leaf.Node.Type().Kind() != parquet.ByteArray {
			continue
		}
		opts = append(opts, parquet.SkipPageBounds(path...), parquet.SkipPageStatistics(path...))
	}
	return opts
}

// withoutColumnIndex rewrites the footer at the end of tail, the bytes the
// Parquet writer wrote at Close (page index, footer, footer length, magic),
// with no column chunk referring to a column index. Everything before the
// footer is kept as written, so every offset in the footer stays right.
func withoutColumnIndex(tail []byte) ([]byte, error) {
	n := len(tail)
	if n < 8 || !bytes.Equal(tail[n-4:], []byte("PAR1")) {
		return nil, fmt.Errorf("rewriting the footer: the Parquet writer's last %d bytes do not end with a footer", n)
	}
	size := int64(binary.LittleEndian.Uint32(tail[n-8 : n-4]))
	start := int64(n-8) - size
	if start < 0 {
		return nil, fmt.Errorf("rewriting the footer: a footer of %d bytes in the last %d bytes written", size, n)
	}
	var md format.FileMetaData
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), tail[start:n-8], &md); err != nil {
		return nil, fmt.Errorf("rewriting the footer: %w", err)
	}
	for i := range md.RowGroups {
		for j := range md.RowGroups[i].Columns {
			c := &md.RowGroups[i].Columns[j]
			c.ColumnIndexOffset, c.ColumnIndexLength = 0, 0
		}
	}
	footer, err := thrift.Marshal(new(thrift.CompactProtocol), &md)
	if err != nil {
		return nil, fmt.Errorf("rewriting the footer: %w", err)
	}
	out := make([]byte, 0, start+int64(len(footer))+8)
	out = append(out, tail[:start]...)
	out = append(out, footer...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(footer)))
	return append(out, "PAR1"...), nil
}
