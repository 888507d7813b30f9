package export

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

func f64(v float64) *float64 { return &v }

func sampleRows(group string, rewards ...*float64) []RLRow {
	rows := make([]RLRow, len(rewards))
	for i, r := range rewards {
		rows[i] = RLRow{TaskID: group, GroupID: group + "#t0", SampleIndex: int32(i), DataSource: "ds", Model: fmt.Sprintf("m%d", i%2),
			Prompt: []Message{{Role: "user", Content: "q"}}, Response: strings.Repeat("x", 100), Reward: r}
		if r != nil {
			c := *r == 1
			rows[i].Correct = &c
		}
	}
	return rows
}

func TestShardRotationAndAtomicity(t *testing.T) {
	dir := t.TempDir()
	w, err := NewShardWriter[RLRow](ShardOptions{Dir: dir, Dataset: "rl", Schema: RLSchema, MaxBytes: 1, RowGroupRows: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 3 {
		if err := w.WriteGroup(ctx, sampleRows(fmt.Sprint(i), f64(1), f64(0), f64(1))); err != nil {
			t.Fatal(err)
		}
	}
	// The third group is still open: only two finished shards are visible.
	visible, _ := filepath.Glob(filepath.Join(dir, "data", "rl", "*.parquet"))
	if len(visible) != 2 {
		t.Fatalf("visible shards before close: %v", visible)
	}
	// Committed, they survive a rollback, which drops the open shard.
	w.Commit()
	shards, err := w.Rollback()
	if err != nil || len(shards) != 2 {
		t.Fatalf("rollback kept %d shards: %v", len(shards), err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "data", "rl", "*"))
	hidden, _ := filepath.Glob(filepath.Join(dir, "data", "rl", ".*"))
	if len(left) != 2 || len(hidden) != 0 {
		t.Errorf("after abort: %v, hidden %v", left, hidden)
	}
	for i, s := range shards {
		if s.Path != fmt.Sprintf("data/rl/train-%05d.parquet", i) || s.Rows != 3 || s.Groups != 1 || len(s.SHA256) != 64 {
			t.Errorf("shard %d: %+v", i, s)
		}
		st, _ := os.Stat(filepath.Join(dir, s.Path))
		if st.Size() != s.Bytes {
			t.Errorf("shard %d: %d bytes on disk, %d recorded", i, st.Size(), s.Bytes)
		}
		rows, err := ReadRL(ctx, filepath.Join(dir, s.Path))
		if err != nil || len(rows) != 3 || rows[0].TaskID != fmt.Sprint(i) {
			t.Errorf("shard %d read back: %v %v", i, err, rows)
		}
	}
}

// A shard ends at MaxRows rows, but a group is never split: a shard holds
// at least MaxRows rows unless it is the last.
func TestShardRotationByRows(t *testing.T) {
	dir := t.TempDir()
	w, err := NewShardWriter[RLRow](ShardOptions{Dir: dir, Dataset: "rl", Schema: RLSchema, MaxBytes: 1 << 30, MaxRows: 5, RowGroupRows: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 5 {
		if err := w.WriteGroup(ctx, sampleRows(fmt.Sprint(i), f64(1), f64(0), f64(1))); err != nil {
			t.Fatal(err)
		}
		if full := i%2 == 1; w.Full() != full {
			t.Fatalf("after group %d (%d rows in the shard): Full() = %v", i, 3*(i%2+1), !full)
		}
	}
	shards, err := w.Flush()
	if err != nil {
		t.Fatal(err)
	}
	var rows []int64
	for _, s := range shards {
		rows = append(rows, s.Rows)
	}
	if fmt.Sprint(rows) != "[6 6 3]" {
		t.Errorf("rows per shard: %v, want [6 6 3]", rows)
	}
	// The writer is reused from shard to shard: each must be complete on
	// its own, metadata included, and hold only its own rows.
	for i, s := range shards {
		path := filepath.Join(dir, s.Path)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		pf, err := parquet.OpenFile(f, st.Size())
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		if v, ok := pf.Lookup("redraft.schema"); !ok || v != RLSchema {
			t.Errorf("shard %d: redraft.schema = %q, %v", i, v, ok)
		}
		f.Close()
		got, err := ReadRL(ctx, path)
		if err != nil || int64(len(got)) != s.Rows || got[0].TaskID != fmt.Sprint(2*i) {
			t.Errorf("shard %d read back: %v, %d rows, first task %q", i, err, len(got), got[0].TaskID)
		}
	}
}
