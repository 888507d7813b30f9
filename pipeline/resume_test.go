package pipeline

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout"
)

// A stopped run says interrupted, keeps what it committed, and refuses to be
// resumed by a configuration that would make different rows, naming what
// changed; --overwrite starts over.
func TestResumeRefusesChangedConfig(t *testing.T) {
	cfg := quickstartConfig(t)
	stop := rollout.NewStopper()
	m, err := Execute(context.Background(), cfg, JobOptions{Stop: stop, OnGroup: func(written int64, _ int) {
		if written == 300 {
			stop.Stop()
		}
	}})
	if !errors.Is(err, ErrInterrupted) || m.Status != export.StatusInterrupted {
		t.Fatalf("stopped run: %v, status %s", err, m.Status)
	}
	if g := m.Datasets["rl"].Groups; g < 300 || g >= 1319 {
		t.Errorf("%d groups committed by the stopped run", g)
	}
	changed := *cfg
	changed.Advantage.Eps = 1e-4
	changed.Seed = 99
	_, err = Execute(context.Background(), &changed, JobOptions{})
	for _, want := range []string{"advantage.eps: 0.000001 -> 0.0001", "seed: 0 -> 99", "--overwrite"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("changed config: %v; want it to mention %q", err, want)
		}
	}
	// Settings that do not change the rows do not block the resume.
	faster := *cfg
	faster.Pipeline.Workers = 1
	m, err = Execute(context.Background(), &faster, JobOptions{})
	if err != nil || m.Status != export.StatusComplete || m.Datasets["rl"].Rows != 5276 {
		t.Fatalf("resume: %v", err)
	}
	m, err = Execute(context.Background(), &changed, JobOptions{Overwrite: true})
	if err != nil || m.Status != export.StatusComplete || m.ConfigHash == "" {
		t.Fatalf("start over: %v", err)
	}
}

// The journal's log drops a torn or corrupt last record and keeps the ones
// before it.
func TestJournalTornTail(t *testing.T) {
	dir := t.TempDir()
	j, err := createJournal(dir, []byte(`{}`), "h", time.Now(), rollout.Shard{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		f := &Flush{Groups: []Out{{Task: rollout.Task{ID: string(rune('a' + i))}, Rows: []export.RLRow{{TaskID: "x"}}}},
			State: State{Groups: int64(i + 1), Tasks: int64(i + 1), Resumable: i != 3}}
		if err := j.append(f); err != nil {
			t.Fatal(err)
		}
	}
	j.close()
	path := j.walPath(0)
	var ends []int64
	full, err := scanWAL(path, func(_ *walRecord, end int64) error { ends = append(ends, end); return nil })
	if err != nil || len(ends) != 5 {
		t.Fatalf("%d records: %v", len(ends), err)
	}
	for _, tc := range []struct {
		name      string
		damage    func()
		records   int
		resumable int
	}{
		{"intact", func() {}, 5, 5},
		{"torn payload", func() { os.Truncate(path, full-3) }, 4, 3},
		{"torn header", func() { os.Truncate(path, ends[3]+5) }, 4, 3},
		{"flipped byte", func() {
			b, _ := os.ReadFile(path)
			b[len(b)-5] ^= 0x40
			os.WriteFile(path, b, 0o644)
		}, 4, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := os.ReadFile(path)
			defer os.WriteFile(path, b, 0o644)
			tc.damage()
			n := 0
			if _, err := scanWAL(path, func(*walRecord, int64) error { n++; return nil }); err != nil {
				t.Fatal(err)
			}
			_, resumable, err := resumePoint(path)
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.records || resumable != tc.resumable {
				t.Errorf("%d records, resume after %d; want %d, %d", n, resumable, tc.records, tc.resumable)
			}
		})
	}
}

func TestIdentityDiff(t *testing.T) {
	got := identityDiff([]byte(`{"a":{"b":1,"c":[1,2]},"d":"x","e":null}`), []byte(`{"a":{"b":2,"c":[1]},"d":"x","f":true}`))
	want := []string{"a.b: 1 -> 2", "a.c[1]: 2 -> (unset)", "f: (unset) -> true"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Under source.on_error: skip, a bad record is left out and listed in the
// manifest with its file, line and field; the run completes.
func TestSkippedInputInManifest(t *testing.T) {
	src, err := os.ReadFile("../testdata/gsm8k/example_model_solutions.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(src), "\n")
	bad := strings.Join(lines[:10], "") + `{"question": "q", "ground_truth": "x\nA: 1", "6b_finetuning": {"is_correct": true}}` + "\n" + "{not json\n" + strings.Join(lines[10:], "")
	p := t.TempDir() + "/bad.jsonl"
	os.WriteFile(p, []byte(bad), 0o644)
	cfg := quickstartConfig(t)
	cfg.Source.Path = p
	cfg.Source.OnError = rollout.OnErrorSkip
	m, err := Execute(context.Background(), cfg, JobOptions{})
	if err != nil || m.Status != export.StatusComplete {
		t.Fatalf("%v", err)
	}
	if m.Datasets["rl"].Groups != 1319 || m.SkippedTotal != 2 || len(m.Skipped) != 2 {
		t.Fatalf("%d groups, skipped %d: %+v", m.Datasets["rl"].Groups, m.SkippedTotal, m.Skipped)
	}
	if s := m.Skipped[0]; s.File != p || s.Line != 11 || s.Field != "6b_finetuning.solution" {
		t.Errorf("first skipped: %+v", s)
	}
	if s := m.Skipped[1]; s.Line != 12 || !strings.Contains(s.Reason, "JSON") {
		t.Errorf("second skipped: %+v", s)
	}
	onDisk, _ := export.ReadManifest(cfg.Output.Dir)
	if len(onDisk.Skipped) != 2 {
		t.Errorf("manifest on disk lists %d skipped records", len(onDisk.Skipped))
	}
}

// A resume deletes files the journal does not list, and refuses when a
// committed shard's size differs from the journal's.
func TestResumeChecksCommittedShards(t *testing.T) {
	cfg := quickstartConfig(t)
	cfg.Output.ShardBytes = 128 << 10
	stop := rollout.NewStopper()
	m, err := Execute(context.Background(), cfg, JobOptions{Stop: stop, OnGroup: func(written int64, _ int) {
		if written == 600 {
			stop.Stop()
		}
	}})
	if !errors.Is(err, ErrInterrupted) || len(m.Datasets["rl"].Shards) < 2 {
		t.Fatalf("stopped run: %v, %d shards", err, len(m.Datasets["rl"].Shards))
	}
	dir := cfg.Output.Dir
	stray := dir + "/data/rl/train-99999.parquet"
	os.WriteFile(stray, []byte("x"), 0o644)
	first := dir + "/" + m.Datasets["rl"].Shards[0].Path
	b, _ := os.ReadFile(first)
	os.WriteFile(first, append(b, 0), 0o644)
	if _, err := Execute(context.Background(), cfg, JobOptions{}); err == nil || !strings.Contains(err.Error(), m.Datasets["rl"].Shards[0].Path) || !strings.Contains(err.Error(), "the journal recorded") {
		t.Fatalf("resume over a changed shard: %v", err)
	}
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an unlisted file survived the resume: %v", err)
	}
	os.WriteFile(first, b, 0o644)
	m, err = Execute(context.Background(), cfg, JobOptions{})
	if err != nil || m.Datasets["rl"].Rows != 5276 {
		t.Fatalf("resume: %v", err)
	}
}
