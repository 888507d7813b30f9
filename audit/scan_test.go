package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/exporttest"
)

// TestScanUnitsOrdered: done runs once per unit, in unit order, however
// the workers finish, and a unit is handed out only while fewer than 4 x
// workers units wait for their done (what bounds the audit's memory); every
// record reaches fn.
func TestScanUnitsOrdered(t *testing.T) {
	dir := t.TempDir()
	w, err := export.NewShardWriter[export.RLRow](export.ShardOptions{Dir: dir, Dataset: "rl", Schema: export.RLSchema,
		MaxRows: 8, RowGroupRows: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for g := range 30 {
		if err := w.WriteGroup(ctx, exporttest.SampleRows(fmt.Sprint("g", g), exporttest.F64(1), exporttest.F64(0))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "data", "rl", "*.parquet"))
	if err != nil || len(paths) < 5 {
		t.Fatalf("%d shards (%v)", len(paths), err)
	}
	plan, err := planAudit(paths, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.units) != 60 {
		t.Fatalf("%d units, want 60 (one row per row group)", len(plan.units))
	}
	const workers = 3
	var done, rows atomic.Int64
	var order []int
	err = scanUnitsOrdered(ctx, plan.units, func(p string) bool { return p == leafReward }, workers, func(unit int, rec arrow.Record) error {
		if d := done.Load(); int64(unit) >= d+4*workers {
			return fmt.Errorf("unit %d scanned while only %d are done: more than %d waiting", unit, d, 4*workers)
		}
		// Later units finish first now and then.
		if unit%7 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		rows.Add(rec.NumRows())
		return nil
	}, func(unit int) error {
		order = append(order, unit)
		done.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rows.Load() != 60 || len(order) != 60 {
		t.Fatalf("%d rows, %d done calls, want 60 and 60", rows.Load(), len(order))
	}
	for i, u := range order {
		if u != i {
			t.Fatalf("done order %v", order)
		}
	}
}
