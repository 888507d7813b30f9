package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/pycheck"
)

// longText is n bytes of varied text (ASCII words, accented and CJK
// characters, newlines) ending with a final answer, the same for the same n.
func longText(n int) string {
	words := []string{"so", "the", "sum", "is", "naïve", "étape", "计算", "then", "we", "check", "=", "2", "+", "2", "\n"}
	var b strings.Builder
	b.Grow(n)
	x := uint32(2463534242)
	const tail = "\n#### 4"
	for b.Len() < n-len(tail)-16 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b.WriteString(words[x%uint32(len(words))])
		b.WriteByte(' ')
	}
	for b.Len() < n-len(tail) {
		b.WriteByte('.')
	}
	b.WriteString(tail)
	return b.String()
}

// Responses of any size round-trip: a run that writes a response of 1 MiB
// (one row) and one of 32 MiB (with a short one) ends complete; redraft
// validate and redraft audit read every row the manifest lists (they used to
// read the 1 MiB shard as 0 rows, and pyarrow failed from 4 MiB on a page
// header that held the value four times); Go, pyarrow and Hugging Face
// datasets read the response back byte for byte; the shard's footer stays
// small.
func TestLongResponseRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		short bool // add a short response to the group
		rows  int
	}{
		{"1 MiB", 1 << 20, false, 1},
		{"32 MiB", 32 << 20, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			long := longText(tc.size)
			sum := sha256.Sum256([]byte(long))
			want := hex.EncodeToString(sum[:])
			responses := []map[string]string{{"text": long, "finish_reason": "length"}}
			if tc.short {
				responses = append(responses, map[string]string{"text": "2 + 2 = 4\n#### 4", "finish_reason": "stop"})
			}
			rec, err := json.Marshal(map[string]any{"id": "long", "prompt": "What is 2+2?", "reference": "4", "data_source": "toy", "responses": responses})
			if err != nil {
				t.Fatal(err)
			}
			in := filepath.Join(dir, "rollouts.jsonl")
			if err := os.WriteFile(in, append(rec, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out")
			cfg := writeConfig(t, "source: {kind: rollouts, path: "+in+"}\nadvantage: {estimator: grpo}\noutput: {dir: "+out+"}\n")
			if code, _, stderr := redraft(t, "run", "--config", cfg, "--no-audit"); code != 0 {
				t.Fatalf("run: exit %d: %s", code, stderr)
			}
			code, stdout, _ := redraft(t, "validate", out)
			if code != 0 || !strings.Contains(stdout, "rl (rl/6): 1 shard(s), "+itoa(tc.rows)+" rows") {
				t.Fatalf("validate: exit %d:\n%s", code, stdout)
			}
			code, stdout, stderr := redraft(t, "audit", out)
			if code != 0 || !strings.Contains(stdout, "rows "+itoa(tc.rows)+", groups 1") {
				t.Fatalf("audit: exit %d:\n%s%s", code, stdout, stderr)
			}

			m, err := export.ReadManifest(out)
			if err != nil {
				t.Fatal(err)
			}
			shard := filepath.Join(out, filepath.FromSlash(m.Datasets["rl"].Shards[0].Path))
			rows, err := export.ReadRL(context.Background(), shard)
			if err != nil || len(rows) != tc.rows {
				t.Fatalf("read back: %d rows, %v", len(rows), err)
			}
			if got := sha256.Sum256([]byte(rows[0].Response)); hex.EncodeToString(got[:]) != want || len(rows[0].Response) != len(long) {
				t.Fatalf("response read back: %d bytes, want %d, not the same text", len(rows[0].Response), len(long))
			}
			// The footer holds no copy of the response.
			b, err := os.ReadFile(shard)
			if err != nil {
				t.Fatal(err)
			}
			if footer := binary.LittleEndian.Uint32(b[len(b)-8:]); footer > 64<<10 {
				t.Errorf("footer of %d bytes", footer)
			}

			if tc.size < 32<<20 {
				return
			}
			py := pycheck.Python(t)
			pycheck.Check(t, "../..", out)
			script := `
import hashlib, sys
import pyarrow.parquet as pq
path, want = sys.argv[1], sys.argv[2]
t = pq.read_table(path)
r = t.column("response")[0].as_py()
assert hashlib.sha256(r.encode()).hexdigest() == want, "pyarrow: response differs"
print("pyarrow", t.num_rows, "rows; response", len(r.encode()), "bytes")
import datasets
ds = datasets.load_dataset("parquet", data_files=path, split="train")
r = ds[0]["response"]
assert hashlib.sha256(r.encode()).hexdigest() == want, "datasets: response differs"
print("datasets", ds.num_rows, "rows; response", len(r.encode()), "bytes")
`
			cmd := exec.Command(py, "-c", script, shard, want)
			cmd.Env = append(os.Environ(), "HF_DATASETS_OFFLINE=1", "HF_HUB_OFFLINE=1", "HF_HOME="+t.TempDir())
			pyOut, err := cmd.CombinedOutput()
			t.Logf("%s", pyOut)
			if err != nil {
				t.Fatalf("python: %v", err)
			}
		})
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
