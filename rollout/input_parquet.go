package rollout

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
)

// parquetReader reads a Parquet file batch by batch and hands each row on as
// a JSON object, so that Parquet input goes through exactly the same decoding
// and validation as JSONL input. It writes the JSON itself rather than with
// array.RecordToJSON, which fails a whole batch on one NaN and replaces
// invalid UTF-8 silently: here a NaN becomes Python's NaN token and invalid
// UTF-8 stays in the string, and the decoder names the field of either.
type parquetReader struct {
	path string
	pf   *file.Reader
	rr   pqarrow.RecordReader
	rec  arrow.Record // the current batch, valid until rr.Next
	i    int          // next row of rec
	row  int          // rows handed out, 1-based numbering
	buf  []byte
}

func openParquetRecords(path string) (recordReader, error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, &InputError{File: path, Err: fmt.Errorf("not a readable Parquet file: %w", err)}
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1024}, memory.DefaultAllocator)
	if err != nil {
		pf.Close()
		return nil, &InputError{File: path, Err: err}
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		pf.Close()
		return nil, &InputError{File: path, Err: err}
	}
	return &parquetReader{path: path, pf: pf, rr: rr}, nil
}

func (r *parquetReader) next() (int, []byte, *InputError, error) {
	for r.rec == nil || r.i >= int(r.rec.NumRows()) {
		r.rec = nil
		if !r.rr.Next() {
			if err := r.rr.Err(); err != nil && !errors.Is(err, io.EOF) {
				return r.row + 1, nil, nil, &InputError{File: r.path, Line: r.row + 1, Err: err}
			}
			return r.row, nil, nil, io.EOF
		}
		r.rec, r.i = r.rr.Record(), 0
	}
	r.row++
	i := r.i
	r.i++
	var err error
	r.buf, err = appendRowJSON(r.buf[:0], r.rec, i)
	if err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			return r.row, nil, &InputError{File: r.path, Line: r.row, Field: fe.field, Err: fe.err}, nil
		}
		return r.row, nil, &InputError{File: r.path, Line: r.row, Err: err}, nil
	}
	return r.row, r.buf, nil, nil
}

func (r *parquetReader) close() error {
	r.rr.Release()
	return r.pf.Close()
}

// fieldError is a value appendValue could not write, at a column path.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }

// appendRowJSON appends row i of rec as a JSON object, columns in schema
// order.
func appendRowJSON(b []byte, rec arrow.Record, i int) ([]byte, error) {
	b = append(b, '{')
	for j, col := range rec.Columns() {
		if j > 0 {
			b = append(b, ',')
		}
		name := rec.ColumnName(j)
		b = appendJSONString(b, name)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, col, i, name); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendValue appends element i of a as JSON; path names it in errors.
func appendValue(b []byte, a arrow.Array, i int, path string) ([]byte, error) {
	if a.IsNull(i) {
		return append(b, "null"...), nil
	}
	switch a := a.(type) {
	case *array.Boolean:
		return strconv.AppendBool(b, a.Value(i)), nil
	case *array.Int8:
		return strconv.AppendInt(b, int64(a.Value(i)), 10), nil
	case *array.Int16:
		return strconv.AppendInt(b, int64(a.Value(i)), 10), nil
	case *array.Int32:
		return strconv.AppendInt(b, int64(a.Value(i)), 10), nil
	case *array.Int64:
		return strconv.AppendInt(b, a.Value(i), 10), nil
	case *array.Uint8:
		return strconv.AppendUint(b, uint64(a.Value(i)), 10), nil
	case *array.Uint16:
		return strconv.AppendUint(b, uint64(a.Value(i)), 10), nil
	case *array.Uint32:
		return strconv.AppendUint(b, uint64(a.Value(i)), 10), nil
	case *array.Uint64:
		return strconv.AppendUint(b, a.Value(i), 10), nil
	case *array.Float16:
		return appendFloat(b, float64(a.Value(i).Float32()), 32), nil
	case *array.Float32:
		return appendFloat(b, float64(a.Value(i)), 32), nil
	case *array.Float64:
		return appendFloat(b, a.Value(i), 64), nil
	case *array.String:
		return appendJSONString(b, a.Value(i)), nil
	case *array.LargeString:
		return appendJSONString(b, a.Value(i)), nil
	case *array.Binary:
		// Binary is bytes, not text: base64, as arrow's own JSON has it.
		return appendJSONString(b, base64.StdEncoding.EncodeToString(a.Value(i))), nil
	case *array.LargeBinary:
		return appendJSONString(b, base64.StdEncoding.EncodeToString(a.Value(i))), nil
	case *array.Dictionary:
		return appendValue(b, a.Dictionary(), a.GetValueIndex(i), path)
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		b = append(b, '{')
		for k := 0; k < a.NumField(); k++ {
			if k > 0 {
				b = append(b, ',')
			}
			name := st.Field(k).Name
			b = appendJSONString(b, name)
			b = append(b, ':')
			var err error
			if b, err = appendValue(b, a.Field(k), i, path+"."+name); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	case *array.Map:
		keys, ok := a.Keys().(*array.String)
		if !ok {
			return appendMarshalled(b, a, i, path)
		}
		start, end := a.ValueOffsets(i)
		b = append(b, '{')
		for k := int(start); k < int(end); k++ {
			if k > int(start) {
				b = append(b, ',')
			}
			b = appendJSONString(b, keys.Value(k))
			b = append(b, ':')
			var err error
			if b, err = appendValue(b, a.Items(), k, path+"."+keys.Value(k)); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	case array.ListLike:
		start, end := a.ValueOffsets(i)
		vals := a.ListValues()
		b = append(b, '[')
		for k := int(start); k < int(end); k++ {
			if k > int(start) {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, vals, k, path+"["+strconv.Itoa(k-int(start))+"]"); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	default:
		return appendMarshalled(b, a, i, path)
	}
}

// appendMarshalled covers the types a task rarely holds (timestamps,
// decimals, ...) with arrow's own JSON form of the value.
func appendMarshalled(b []byte, a arrow.Array, i int, path string) ([]byte, error) {
	v, err := json.Marshal(a.GetOneForMarshal(i))
	if err != nil {
		return b, &fieldError{field: path, err: fmt.Errorf("cannot convert %s value to JSON: %w", a.DataType(), err)}
	}
	return append(b, v...), nil
}

// appendFloat writes non-finite values as the tokens Python's json module
// uses, for the decoder to report at their field.
func appendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}

// appendJSONString quotes s for JSON, leaving bytes that are not valid UTF-8
// as they are so that the decoder finds and names them.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
