package rollout

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCountRecords(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"a.jsonl": "{}\n\n  \n{}\n{}",                // 3 records, a blank and a spaces-only line, no final newline
		"b.jsonl": strings.Repeat("{\"x\": 1}\n", 5), // 5
		"c.txt":   "{}\n{}\n",                        // not an input file
		".hidden": "{}\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeParquet(t, filepath.Join(dir, "d.parquet"), []pqRow{{id: "p1", prompt: "q"}, {id: "p2", prompt: "q"}})
	for _, tt := range []struct {
		path string
		want int64
	}{
		{filepath.Join(dir, "a.jsonl"), 3},
		{filepath.Join(dir, "b.jsonl"), 5},
		{dir, 10}, // a, b and the Parquet file's 2 rows
		{"../testdata/gsm8k/example_model_solutions.jsonl", 1319},
	} {
		got, err := CountRecords(context.Background(), InputOptions{Path: tt.path})
		if err != nil || got != tt.want {
			t.Errorf("%s: %d, %v; want %d", tt.path, got, err, tt.want)
		}
	}
	if _, err := CountRecords(context.Background(), InputOptions{Path: filepath.Join(dir, "none.jsonl")}); err == nil {
		t.Error("a missing file counted")
	}
}

// A *.jsonl.gz file is read and counted as the JSONL it holds, alone and in
// a directory.
func TestGzipJSONL(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	z := gzip.NewWriter(&buf)
	z.Write([]byte("{\"id\": \"a\", \"prompt\": \"1+1?\"}\n\n{\"id\": \"b\", \"prompt\": \"2+2?\"}\n"))
	z.Close()
	path := filepath.Join(dir, "tasks.jsonl.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, dir} {
		n, err := CountRecords(context.Background(), InputOptions{Path: p})
		if err != nil || n != 2 {
			t.Fatalf("CountRecords(%s) = %d, %v", p, n, err)
		}
		src, err := OpenTasks(InputOptions{Path: p})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for {
			task, err := src.Next(context.Background())
			if err != nil {
				break
			}
			ids = append(ids, task.ID+":"+strconv.Itoa(task.Origin.Line))
		}
		src.Close()
		if strings.Join(ids, ",") != "a:1,b:3" {
			t.Errorf("%s: tasks %v", p, ids)
		}
	}
}
