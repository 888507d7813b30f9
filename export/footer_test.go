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

// TestEveryShardsFooterNamesItsColumns: every shard's footer names each
// column chunk's path in the schema, the second and later shards' too.
// parquet-go v0.32.0's Writer.Reset clears a list its footer shares, so a
// writer reused for the next shard wrote empty path_in_schema entries for
// nested columns (pyarrow read the data, but reported the paths as ”).
func TestEveryShardsFooterNamesItsColumns(t *testing.T) {
	dir := t.TempDir()
	w, err := NewShardWriter[RLRow](ShardOptions{Dir: dir, Dataset: "rl", Schema: RLSchema, MaxRows: 3, RowGroupRows: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 3 {
		if err := w.WriteGroup(ctx, sampleRows(fmt.Sprint(i), f64(1), f64(0), f64(1))); err != nil {
			t.Fatal(err)
		}
	}
	shards, err := w.Flush()
	if err != nil || len(shards) != 3 {
		t.Fatalf("%d shards: %v", len(shards), err)
	}
	var first []string
	for i, s := range shards {
		f, err := os.Open(filepath.Join(dir, s.Path))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		pf, err := parquet.OpenFile(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, rg := range pf.Metadata().RowGroups {
			for _, c := range rg.Columns {
				p := strings.Join(c.MetaData.PathInSchema, ".")
				if len(c.MetaData.PathInSchema) == 0 || strings.Contains("."+p+".", "..") {
					t.Errorf("shard %d: a column chunk with path_in_schema %q", i, c.MetaData.PathInSchema)
				}
				paths = append(paths, p)
			}
		}
		f.Close()
		if i == 0 {
			first = paths
		} else if strings.Join(paths, ",") != strings.Join(first, ",") {
			t.Errorf("shard %d's column paths differ from shard 0's:\n%v\n%v", i, paths, first)
		}
	}
}
