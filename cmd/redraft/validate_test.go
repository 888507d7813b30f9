package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// redraft validate passes a spliced output and fails, naming the shard, when
// one of its bytes is flipped.
func TestValidateCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "splice")
	var stderr bytes.Buffer
	if err := cmdSplice(context.Background(), []string{"--format", "prm800k", "--input", "../../testdata/prm800k/phase1_reconstructed.jsonl.gz", "--out", dir}, &stderr); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := runValidate(t, &out, dir); code != nil {
		t.Fatalf("valid output rejected: %v\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "valid; sft (sft/1): 1 shard(s), 796 rows") {
		t.Errorf("report: %s", out.String())
	}
	shard := filepath.Join(dir, "data", "sft", "train-00000.parquet")
	b, err := os.ReadFile(shard)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(shard, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runValidate(t, &out, dir); err == nil || !strings.Contains(out.String(), "data/sft/train-00000.parquet: sha256") {
		t.Errorf("flipped byte: err %v\n%s", err, out.String())
	}
	if err := cmdValidate(context.Background(), nil, &out); err == nil {
		t.Error("no directory: want a usage error")
	}
}

func runValidate(t *testing.T, out *bytes.Buffer, dir string) error {
	t.Helper()
	return cmdValidate(context.Background(), []string{dir}, out)
}
