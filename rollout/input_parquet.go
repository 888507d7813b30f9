package rollout

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
)

// parquetReader reads a Parquet file batch by batch and hands each row on as
// a JSON object, so that Parquet input goes through exactly the same decoding
// and validation as JSONL input.
type parquetReader struct {
	path string
	pf   *file.Reader
	rr   pqarrow.RecordReader
	buf  bytes.Buffer
	sc   *bufio.Scanner
	row  int
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

func (r *parquetReader) next() (int, []byte, error) {
	for {
		if r.sc != nil && r.sc.Scan() {
			r.row++
			return r.row, r.sc.Bytes(), nil
		}
		if !r.rr.Next() {
			if err := r.rr.Err(); err != nil && !errors.Is(err, io.EOF) {
				return r.row + 1, nil, &InputError{File: r.path, Line: r.row + 1, Err: err}
			}
			return r.row, nil, io.EOF
		}
		r.buf.Reset()
		if err := array.RecordToJSON(r.rr.Record(), &r.buf); err != nil {
			return r.row + 1, nil, &InputError{File: r.path, Line: r.row + 1, Err: err}
		}
		r.sc = bufio.NewScanner(bytes.NewReader(r.buf.Bytes()))
		r.sc.Buffer(nil, r.buf.Len()+1)
	}
}

func (r *parquetReader) close() error {
	r.rr.Release()
	return r.pf.Close()
}
