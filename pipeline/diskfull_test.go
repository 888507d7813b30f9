package pipeline

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/tmpfs"
	"github.com/redraft/redraft/validate"
)

// withFailures writes the quickstart's GSM8K solutions (of the first tasks
// problems, 0: all) as recorded rollouts in redraft's own layout, every ninth
// response a failed request, so that the run also writes a failures record
// and rows with an error.
func withFailures(t *testing.T, tasks int) string {
	t.Helper()
	in, err := os.Open("../testdata/gsm8k/example_model_solutions.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	path := filepath.Join(t.TempDir(), "rollouts.jsonl")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	enc := json.NewEncoder(out)
	sc := bufio.NewScanner(in)
	sc.Buffer(nil, 1<<20)
	n := 0
	for line := 0; sc.Scan() && (tasks == 0 || line < tasks); line++ {
		var rec map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		var q, gt string
		json.Unmarshal(rec["question"], &q)
		json.Unmarshal(rec["ground_truth"], &gt)
		var responses []map[string]string
		for _, model := range []string{"6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"} {
			var s struct {
				Solution string `json:"solution"`
			}
			json.Unmarshal(rec[model], &s)
			n++
			if n%9 == 0 {
				responses = append(responses, map[string]string{"model": model, "error": "HTTP 500 from the server (disk-full test)"})
				continue
			}
			responses = append(responses, map[string]string{"model": model, "text": s.Solution, "finish_reason": "stop"})
		}
		ref := strings.TrimSpace(gt[strings.LastIndex(gt, "\nA:")+3:])
		if err := enc.Encode(map[string]any{"id": fmt.Sprintf("gsm8k-test-%04d", line), "prompt": q, "reference": ref,
			"data_source": "openai/gsm8k", "responses": responses}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return path
}

// runOutput is what a run wrote, to compare runs row for row: every row of
// every dataset in order (as JSON), the failures record, and the counts the
// manifest states.
type runOutput struct {
	datasets map[string][]string
	failures string
	counts   string
}

func readOutput(t *testing.T, dir string) runOutput {
	t.Helper()
	m, err := export.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := runOutput{datasets: map[string][]string{}}
	type dsCount struct{ Rows, Groups int64 }
	counts := struct {
		Status   string
		Datasets map[string]dsCount
		Rewards  export.RewardSummary
		Failures *export.FailuresInfo
	}{Status: m.Status, Datasets: map[string]dsCount{}, Rewards: m.Rewards, Failures: m.Failures}
	for name, ds := range m.Datasets {
		counts.Datasets[name] = dsCount{ds.Rows, ds.Groups}
		out.datasets[name] = datasetRows(t, dir, name, ds.Shards)
	}
	b, _ := json.Marshal(counts)
	out.counts = string(b)
	if m.Failures != nil {
		b, err := os.ReadFile(filepath.Join(dir, m.Failures.Path))
		if err != nil {
			t.Fatal(err)
		}
		out.failures = string(b)
	}
	return out
}

// datasetRows reads the rows of a dataset's shards, as JSON, in order.
func datasetRows(t *testing.T, dir, name string, shards []export.ShardInfo) []string {
	t.Helper()
	var rows []string
	add := func(v any) {
		b, _ := json.Marshal(v)
		rows = append(rows, string(b))
	}
	for _, s := range shards {
		path := filepath.Join(dir, filepath.FromSlash(s.Path))
		var n int
		switch name {
		case "rl":
			rs, err := export.ReadRL(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				add(r)
			}
			n = len(rs)
		case export.VerlDataset:
			rs, err := export.ReadRows[export.VerlRow](context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				add(r)
			}
			n = len(rs)
		default:
			t.Fatalf("dataset %s not compared", name)
		}
		if int64(n) != s.Rows {
			t.Fatalf("%s: %d rows read, listed with %d", s.Path, n, s.Rows)
		}
	}
	return rows
}

// diffOutputs describes how two runs' outputs differ ("" when they do not).
func diffOutputs(got, want runOutput) string {
	var diffs []string
	for name, w := range want.datasets {
		g := got.datasets[name]
		if slices.Equal(g, w) {
			continue
		}
		i := 0
		for i < len(g) && i < len(w) && g[i] == w[i] {
			i++
		}
		diffs = append(diffs, fmt.Sprintf("%s: %d rows, want %d; first difference at row %d", name, len(g), len(w), i))
	}
	if len(got.datasets) != len(want.datasets) {
		diffs = append(diffs, fmt.Sprintf("%d datasets, want %d", len(got.datasets), len(want.datasets)))
	}
	if got.failures != want.failures {
		diffs = append(diffs, fmt.Sprintf("failures record of %d bytes, want %d", len(got.failures), len(want.failures)))
	}
	if got.counts != want.counts {
		diffs = append(diffs, fmt.Sprintf("manifest counts\n  %s\nwant\n  %s", got.counts, want.counts))
	}
	return strings.Join(diffs, "\n")
}

// failurePoint names where in the output a full disk stopped a run.
func failurePoint(err error) string {
	msg := err.Error()
	for _, p := range []struct{ key, name string }{
		{"finishing shard", "shard finish (footer, flush, fsync, rename)"},
		{"creating shard", "shard create"},
		{".parquet.tmp", "shard row group write"},
		{"writing journal", "journal.json"},
		{"journal:", "journal log append or new segment"},
		{"failures record", "failures record"},
		{"writing manifest", "manifest"},
		{"README", "dataset card"},
	} {
		if strings.Contains(msg, p.key) {
			return p.name
		}
	}
	return "other: " + msg
}

// checkClaims checks what a run stopped by a full disk left: its manifest
// (never complete) and its journal claim only rows that are in intact
// committed shards, and those rows are the first rows of the uninterrupted
// run's output.
func checkClaims(t *testing.T, dir string, want runOutput) {
	t.Helper()
	m, err := export.ReadManifest(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		t.Fatal(err)
	default:
		if m.Status == export.StatusComplete {
			t.Fatalf("a run stopped by a full disk wrote a complete manifest")
		}
		rep, err := validate.Dir(context.Background(), dir, validate.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range rep.Violations {
			// The manifest of the last checkpoint may be older than the
			// journal's (its write found the disk full): shards committed
			// since are on disk but not listed. Claiming less is safe.
			if !strings.HasSuffix(v.Msg, "is on disk but not in the manifest") {
				t.Errorf("manifest of the stopped run: %s", v)
			}
		}
		for name, ds := range m.Datasets {
			rows := datasetRows(t, dir, name, ds.Shards)
			if !slices.Equal(rows, want.datasets[name][:min(len(rows), len(want.datasets[name]))]) || len(rows) > len(want.datasets[name]) {
				t.Errorf("manifest of the stopped run: %s rows are not the first rows of the uninterrupted run", name)
			}
		}
	}
	meta, err := readJournal(dir)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for name, shards := range meta.Shards {
		var listed int64
		for _, s := range shards {
			b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(s.Path)))
			if err != nil {
				t.Fatalf("journal lists %s: %v", s.Path, err)
			}
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != s.SHA256 || int64(len(b)) != s.Bytes {
				t.Fatalf("journal lists %s, which differs from its record", s.Path)
			}
			listed += s.Rows
		}
		rows := datasetRows(t, dir, name, shards)
		if int64(len(rows)) != listed || !slices.Equal(rows, want.datasets[name][:min(len(rows), len(want.datasets[name]))]) {
			t.Errorf("journal: %s rows are not the first rows of the uninterrupted run", name)
		}
		if name == "rl" && meta.State != nil && meta.State.Summary.Summary.Rows != listed {
			t.Errorf("journal state counts %d rl rows, its shards hold %d", meta.State.Summary.Summary.Rows, listed)
		}
		if name == "rl" && m != nil && m.Datasets["rl"].Rows > listed {
			t.Errorf("manifest lists %d rl rows, the journal committed %d", m.Datasets["rl"].Rows, listed)
		}
	}
	// The failures record holds at least the lines the journal committed,
	// and they are the uninterrupted run's first lines.
	if c := meta.Failures; c.Count > 0 {
		b, err := os.ReadFile(filepath.Join(dir, "."+export.FailuresName+".tmp"))
		if errors.Is(err, os.ErrNotExist) {
			b, err = os.ReadFile(filepath.Join(dir, export.FailuresName))
		}
		if err != nil {
			t.Fatalf("journal counts %d failures: %v", c.Count, err)
		}
		if int64(len(b)) < c.Bytes || !strings.HasPrefix(want.failures, string(b[:c.Bytes])) || int64(strings.Count(string(b[:c.Bytes]), "\n")) != c.Count {
			t.Errorf("failures record: the journal's %d lines (%d bytes) are not the uninterrupted run's first", c.Count, c.Bytes)
		}
	}
}

// The disk fills while a run writes (output.shard_rows: 1000 on a small
// tmpfs, at sizes that stop it at different points: a shard's row groups or
// footer, the journal's log, journal.json, the manifest). The run fails
// (never complete), what it left claims no row that is not in a committed
// shard, and once the filesystem grows, the resumed run's output equals an
// uninterrupted run's row for row (rl, verl, failures and the manifest's
// counts) and validates.
func TestDiskFullResume(t *testing.T) {
	ctx := context.Background()
	failing := withFailures(t, 0)
	variants := []struct {
		name  string
		cfg   func(t *testing.T) *Config
		sizes []int64
	}{
		// The attack: 2 MiB, and 2720 KiB, where the run used to end
		// complete with 4,276 of 5,276 rl rows (here, on Linux 6).
		{"quickstart", func(t *testing.T) *Config { return quickstartConfig(t) },
			[]int64{2 << 20, 2720 << 10}},
		{"quickstart with failed samples", func(t *testing.T) *Config {
			cfg := quickstartConfig(t)
			cfg.Source.Path, cfg.Source.Layout = failing, ""
			allowFailures(cfg)
			return cfg
		}, nil},
	}
	// The failing variant's sizes: every 96 KiB from 128 KiB until a run
	// fits. Ten times slower under the race detector, the sweep then takes
	// three sizes, which stop the run (on Linux 6 with 4 KiB pages) in the
	// failures record, at a shard's footer and at journal.json.
	for s := int64(128 << 10); s <= 4<<20; s += 96 << 10 {
		variants[1].sizes = append(variants[1].sizes, s)
	}
	if raceDetector || testing.Short() {
		variants[0].sizes = variants[0].sizes[1:]
		variants[1].sizes = []int64{704 << 10, 2 << 20, 2912 << 10}
	}
	points := map[string][]string{}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			ref := v.cfg(t)
			ref.Output.ShardRows = 1000
			if _, err := Execute(ctx, ref, JobOptions{}); err != nil {
				t.Fatal(err)
			}
			want := readOutput(t, ref.Output.Dir)
			if rl := len(want.datasets["rl"]); rl != 5276 {
				t.Fatalf("uninterrupted run: %d rl rows", rl)
			}
			for _, size := range v.sizes {
				mnt := tmpfs.Dir(t, size)
				cfg := v.cfg(t)
				cfg.Output.ShardRows = 1000
				cfg.Output.Dir = filepath.Join(mnt, "out")
				_, err := Execute(ctx, cfg, JobOptions{})
				if err == nil {
					// It fits: nothing to resume, and the larger sizes fit too.
					if d := diffOutputs(readOutput(t, cfg.Output.Dir), want); d != "" {
						t.Fatalf("%d KiB: run that fit differs from the reference:\n%s", size>>10, d)
					}
					t.Logf("%d KiB: the run fits", size>>10)
					break
				}
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("%d KiB: %v", size>>10, err)
				}
				point := failurePoint(err)
				points[point] = append(points[point], fmt.Sprintf("%s %d KiB", v.name, size>>10))
				checkClaims(t, cfg.Output.Dir, want)
				tmpfs.Resize(t, mnt, 64<<20)
				m, err := Execute(ctx, cfg, JobOptions{})
				if err != nil {
					t.Fatalf("%d KiB (stopped at %s): resume: %v", size>>10, point, err)
				}
				if m.Status != export.StatusComplete {
					t.Fatalf("%d KiB: resumed run is %s", size>>10, m.Status)
				}
				if d := diffOutputs(readOutput(t, cfg.Output.Dir), want); d != "" {
					t.Fatalf("%d KiB (stopped at %s): resumed output differs from an uninterrupted run:\n%s", size>>10, point, d)
				}
				rep, err := validate.Dir(ctx, cfg.Output.Dir, validate.Options{})
				if err != nil || !rep.OK() {
					t.Fatalf("%d KiB: validate after the resume: %v %v", size>>10, err, rep.Violations)
				}
				// Free this tmpfs's memory before the next.
				os.RemoveAll(cfg.Output.Dir)
			}
		})
	}
	for p, runs := range points {
		t.Logf("stopped at %s: %s", p, strings.Join(runs, ", "))
	}
}

// A manifest write that fails at a checkpoint (here: its temporary name is
// taken by a directory) stops the run after the journal committed the
// checkpoint: the run ends failed, claims nothing uncommitted, and resumes
// to the uninterrupted run's output.
func TestManifestWriteFailureResume(t *testing.T) {
	ctx := context.Background()
	in := withFailures(t, 200)
	config := func(t *testing.T) *Config {
		cfg := quickstartConfig(t)
		cfg.Source.Path, cfg.Source.Layout = in, ""
		cfg.Output.ShardRows = 100
		allowFailures(cfg)
		return cfg
	}
	ref := config(t)
	if _, err := Execute(ctx, ref, JobOptions{}); err != nil {
		t.Fatal(err)
	}
	want := readOutput(t, ref.Output.Dir)
	cfg := config(t)
	block := filepath.Join(cfg.Output.Dir, "."+export.ManifestName+".tmp")
	if err := os.MkdirAll(filepath.Join(block, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Execute(ctx, cfg, JobOptions{})
	if err == nil || !strings.Contains(err.Error(), "writing manifest") {
		t.Fatalf("run with the manifest blocked: %v", err)
	}
	meta, jerr := readJournal(cfg.Output.Dir)
	if jerr != nil || meta.State == nil || meta.State.Summary.Summary.Rows == 0 {
		t.Fatalf("the journal committed no checkpoint before the manifest failed: %v", jerr)
	}
	checkClaims(t, cfg.Output.Dir, want)
	if err := os.RemoveAll(block); err != nil {
		t.Fatal(err)
	}
	if _, err := Execute(ctx, cfg, JobOptions{}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if d := diffOutputs(readOutput(t, cfg.Output.Dir), want); d != "" {
		t.Fatalf("resumed output differs from an uninterrupted run:\n%s", d)
	}
	if rep, err := validate.Dir(ctx, cfg.Output.Dir, validate.Options{}); err != nil || !rep.OK() {
		t.Fatalf("validate after the resume: %v %v", err, rep.Violations)
	}
}
