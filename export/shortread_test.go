package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// A shard as parquet-go writes it by default, with a 5 MiB response: its
// page header holds the value four times, more than Arrow Go reads, and
// Arrow Go then ends the column without an error. Reading it is an error
// naming both counts, never fewer rows: for ReadRows, validate and audit.
func TestShortReadIsAnError(t *testing.T) {
	dir := t.TempDir()
	fx := newFixture()
	fx.write(t, dir, nil)
	rows := make([]RLRow, 0, 10)
	for _, g := range fx.rl {
		rows = append(rows, g...)
	}
	rows[0].Response = strings.Repeat("long response ", 5<<20/14)
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[RLRow](&buf, parquet.KeyValueMetadata("redraft.schema", RLSchema), parquet.KeyValueMetadata("redraft.dataset", "rl"))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "data", "rl", "train-00000.parquet")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	editManifest(t, dir, func(m *Manifest) {
		ds := m.Datasets["rl"]
		ds.Shards[0].Bytes, ds.Shards[0].SHA256 = int64(buf.Len()), hex.EncodeToString(sum[:])
		m.Datasets["rl"] = ds
	})
	ctx := context.Background()
	if got, err := ReadRL(ctx, path); err == nil || !strings.Contains(err.Error(), "read 0 rows, its footer lists 10") {
		t.Errorf("ReadRL: %d rows, %v", len(got), err)
	}
	rep, err := Validate(ctx, dir, ValidateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, v := range rep.Violations {
		all = append(all, v.String())
	}
	if !strings.Contains(strings.Join(all, "\n"), "read 0 rows, its footer lists 10") {
		t.Errorf("validate:\n%s", strings.Join(all, "\n"))
	}
	if a, err := AuditPath(ctx, dir, AuditOptions{}); err == nil || !strings.Contains(err.Error(), "read 0 rows, the footer lists 10") {
		t.Errorf("audit: %v, %+v", err, a)
	}
}

// Audit fails, naming both numbers, when the shards hold fewer rows than the
// manifest lists.
func TestAuditChecksManifestRows(t *testing.T) {
	dir := t.TempDir()
	newFixture().write(t, dir, nil)
	if _, err := AuditPath(context.Background(), dir, AuditOptions{}); err != nil {
		t.Fatal(err)
	}
	editManifest(t, dir, func(m *Manifest) { ds := m.Datasets["rl"]; ds.Rows = 11; m.Datasets["rl"] = ds })
	if _, err := AuditPath(context.Background(), dir, AuditOptions{}); err == nil || !strings.Contains(err.Error(), "audit read 10 rl rows, the manifest lists 11") {
		t.Errorf("audit: %v", err)
	}
}
