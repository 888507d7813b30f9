package rollout

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
)

type pqResp struct {
	text      string
	reward    float64
	hasReward bool
}

// pqRow is one row of a test Parquet file: a recorded rollout with an extra
// metadata column, as real datasets have.
type pqRow struct {
	id, prompt string
	responses  []pqResp
}

func writeParquet(t *testing.T, path string, rows []pqRow) {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "prompt", Type: arrow.BinaryTypes.String},
		{Name: "responses", Type: arrow.ListOf(arrow.StructOf(
			arrow.Field{Name: "text", Type: arrow.BinaryTypes.String},
			arrow.Field{Name: "reward", Type: arrow.PrimitiveTypes.Float64, Nullable: true})), Nullable: true},
		{Name: "source_row", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(r.id)
		b.Field(1).(*array.StringBuilder).Append(r.prompt)
		lb := b.Field(2).(*array.ListBuilder)
		if r.responses == nil {
			lb.AppendNull()
		} else {
			lb.Append(true)
			sb := lb.ValueBuilder().(*array.StructBuilder)
			for _, resp := range r.responses {
				sb.Append(true)
				sb.FieldBuilder(0).(*array.StringBuilder).Append(resp.text)
				if fb := sb.FieldBuilder(1).(*array.Float64Builder); resp.hasReward {
					fb.Append(resp.reward)
				} else {
					fb.AppendNull()
				}
			}
		}
		b.Field(3).(*array.Int64Builder).Append(int64(i))
	}
	rec := b.NewRecord()
	defer rec.Release()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(schema, f, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func goodRows(ids ...string) []pqRow {
	rows := make([]pqRow, len(ids))
	for i, id := range ids {
		rows[i] = pqRow{id: id, prompt: "What is 2+2?", responses: []pqResp{{text: "4", reward: 1, hasReward: true}, {text: "5"}}}
	}
	return rows
}

// Parquet rows decode like JSONL lines; a row's invalid UTF-8 or non-finite
// reward is named by row and field.
func TestParquetInput(t *testing.T) {
	// with puts bad at row 2 between rows a and c.
	with := func(bad pqRow) []pqRow { return []pqRow{goodRows("a")[0], bad, goodRows("c")[0]} }
	many := goodRows()
	for i := range 2500 {
		many = append(many, goodRows(fmt.Sprintf("t%d", i))...)
	}
	many[1999].responses[0].reward = math.NaN()
	var manyIDs []string
	for _, r := range many {
		if r.id != "t1999" {
			manyIDs = append(manyIDs, r.id)
		}
	}
	tests := []struct {
		name             string
		rows             []pqRow
		line             int
		field, msg       string
		failIDs, skipIDs []string
	}{
		{name: "invalid utf8 prompt", rows: with(pqRow{id: "b", prompt: "caf\xe9", responses: []pqResp{{text: "x"}}}), line: 2, field: "prompt", msg: "invalid UTF-8 in a string", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "invalid utf8 response", rows: with(pqRow{id: "b", prompt: "p", responses: []pqResp{{text: "ok"}, {text: "\xff\xfe"}}}), line: 2, field: "responses[1].text", msg: "invalid UTF-8 in a string", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "NaN reward", rows: with(pqRow{id: "b", prompt: "p", responses: []pqResp{{text: "x"}, {text: "y", reward: math.NaN(), hasReward: true}}}), line: 2, field: "responses[1].reward", msg: "not a finite number: NaN", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "infinite reward", rows: with(pqRow{id: "b", prompt: "p", responses: []pqResp{{text: "x", reward: math.Inf(-1), hasReward: true}}}), line: 2, field: "responses[0].reward", msg: "not a finite number: -Infinity", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "missing responses", rows: with(pqRow{id: "b", prompt: "p"}), line: 2, field: "responses", msg: "missing", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "duplicate id", rows: with(goodRows("a")[0]), line: 2, field: "id", msg: `duplicate task id "a" (first on line 1)`, failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "bad row in a later batch", rows: many, line: 2000, field: "responses[0].reward", msg: "NaN", failIDs: manyIDs[:1999], skipIDs: manyIDs},
		{name: "no rows", rows: nil, msg: "file is empty"},
	}
	for _, tt := range tests {
		for _, policy := range []OnError{OnErrorFail, OnErrorSkip} {
			t.Run(tt.name+"/"+string(policy), func(t *testing.T) {
				p := filepath.Join(t.TempDir(), "in.parquet")
				writeParquet(t, p, tt.rows)
				ids, rd, err := readAll(t, InputOptions{Path: p, OnError: policy}, true)
				want := tt.skipIDs
				if policy == OnErrorFail {
					want = tt.failIDs
				}
				if fmt.Sprint(ids) != fmt.Sprint(want) {
					t.Errorf("read %d ids, want %d", len(ids), len(want))
				}
				if policy == OnErrorFail {
					checkInputError(t, err, p, tt.line, tt.field, tt.msg)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if sk := rd.Skipped(); len(sk) != 1 || sk[0].Line != tt.line || sk[0].Field != tt.field || !strings.Contains(sk[0].Reason, tt.msg) {
					t.Errorf("skipped %+v", sk)
				}
			})
		}
	}
}

// A good Parquet row carries every field, rewards included; unknown columns
// are ignored by default and named under extra_fields: error.
func TestParquetDecodes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "in.parquet")
	writeParquet(t, p, []pqRow{{id: "a", prompt: "say \"hi\"\n\tnow", responses: []pqResp{{text: "hi", reward: 0.25, hasReward: true}, {text: "x"}}}})
	src, err := OpenRecorded(InputOptions{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	g, err := src.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := g.Samples
	if g.Task.ID != "a" || g.Task.Messages[0].Content != "say \"hi\"\n\tnow" || len(s) != 2 || s[0].Text != "hi" ||
		s[0].RecordedReward == nil || *s[0].RecordedReward != 0.25 || s[1].RecordedReward != nil || g.Task.Origin.Line != 1 {
		t.Errorf("group = %+v", g)
	}
	_, _, err = readAll(t, InputOptions{Path: p, ExtraFields: ExtraFieldsError}, true)
	checkInputError(t, err, p, 1, "source_row", "unknown field")
}
