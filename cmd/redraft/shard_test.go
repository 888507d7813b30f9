package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout"
)

func TestParseShard(t *testing.T) {
	for _, tc := range []struct {
		spec string
		env  map[string]string
		want rollout.Shard
		err  string
	}{
		{spec: "", want: rollout.Shard{}},
		{spec: "2/8", want: rollout.Shard{Index: 2, Count: 8}},
		{spec: "8/8", err: "out of range"},
		{spec: "-1/8", err: "out of range"},
		{spec: "x/8", err: "not a number"},
		{spec: "3", err: "want i/N"},
		{spec: "auto", env: map[string]string{"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, want: rollout.Shard{Index: 3, Count: 4}},
		{spec: "auto", env: map[string]string{"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "4"}, want: rollout.Shard{Index: 3, Count: 4}},
		// A Slurm job array shards the run without the flag.
		{spec: "", env: map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}, want: rollout.Shard{Index: 1, Count: 2}},
		{spec: "auto/16", env: map[string]string{"JOB_COMPLETION_INDEX": "15"}, want: rollout.Shard{Index: 15, Count: 16}},
		{spec: "auto/16", err: "JOB_COMPLETION_INDEX is not set"},
		{spec: "auto", err: "SLURM_ARRAY_TASK_COUNT is not set"},
		{spec: "auto/4", env: map[string]string{"JOB_COMPLETION_INDEX": "4"}, err: "out of range"},
	} {
		got, err := parseShard(tc.spec, func(k string) string { return tc.env[k] })
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q %v: error %v, want %q", tc.spec, tc.env, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q %v: %+v %v, want %+v", tc.spec, tc.env, got, err, tc.want)
		}
	}
}

// Three shard runs into one directory, merged, hold exactly the rows of the
// unsharded run; merge refuses while a shard is missing, and the merged
// output validates.
func TestShardAndMerge(t *testing.T) {
	cfg := writeConfig(t, strings.ReplaceAll(mustRead(t, "../../configs/quickstart.yaml"), "testdata/", "../../testdata/"))
	whole, out := t.TempDir(), t.TempDir()
	if code, _, stderr := redraft(t, "run", "--config", cfg, "--out", whole, "--no-audit"); code != 0 {
		t.Fatal(stderr)
	}
	for i, spec := range []string{"0/3", "2/3"} {
		if code, _, stderr := redraft(t, "run", "--config", cfg, "--out", out, "--shard", spec, "--no-audit"); code != 0 {
			t.Fatalf("shard %d: %s", i, stderr)
		}
	}
	code, _, stderr := redraft(t, "merge", out)
	if code == 0 || !strings.Contains(stderr, "shards missing or incomplete: 1 of 3") {
		t.Fatalf("merge with a shard missing: exit %d: %s", code, stderr)
	}
	if code, _, stderr := redraft(t, "run", "--config", cfg, "--out", out, "--shard", "1/3", "--no-audit"); code != 0 {
		t.Fatal(stderr)
	}
	code, stdout, stderr := redraft(t, "merge", "--verify", out)
	if code != 0 || !strings.Contains(stdout, "merged 3 shard runs: 5276 rows") {
		t.Fatalf("merge: exit %d: %s %s", code, stdout, stderr)
	}
	if code, stdout, _ := redraft(t, "validate", out); code != 0 {
		t.Fatalf("validate merged: %s", stdout)
	}
	wm, _ := export.ReadManifest(whole)
	mm, err := export.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	// Validate cross-checks each part's row count with its shards.
	bad := *mm
	bad.Parts = append([]export.PartInfo{}, mm.Parts...)
	bad.Parts[1].Rows++
	if err := export.WriteManifest(out, &bad); err != nil {
		t.Fatal(err)
	}
	if code, stdout, _ := redraft(t, "validate", out); code == 0 || !strings.Contains(stdout, "parts[1] ("+mm.Parts[1].Dir+") rows is "+fmt.Sprint(mm.Parts[1].Rows+1)+", its rl shards in datasets.rl hold "+fmt.Sprint(mm.Parts[1].Rows)) {
		t.Fatalf("validate with a part's rows off by one: exit %d: %s", code, stdout)
	}
	if err := export.WriteManifest(out, mm); err != nil {
		t.Fatal(err)
	}
	rows := func(dir string, m *export.Manifest) []string {
		var keys []string
		for _, s := range m.Datasets["rl"].Shards {
			rs, err := export.ReadRL(context.Background(), filepath.Join(dir, s.Path))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				r.LatencyMS = nil
				if r.ExtraInfo != nil {
					// Each part numbers its prompt set from 0.
					r.ExtraInfo.Index = 0
				}
				keys = append(keys, r.TaskID+"|"+r.GroupID+"|"+fmtRow(r))
			}
		}
		sort.Strings(keys)
		return keys
	}
	if a, b := rows(whole, wm), rows(out, mm); !reflect.DeepEqual(a, b) {
		t.Fatalf("sharded rows differ from the whole run's: %d vs %d", len(b), len(a))
	}
	// Every task landed in the shard its id hashes to.
	for _, p := range mm.Parts {
		for _, s := range mm.Datasets["rl"].Shards {
			if !strings.HasPrefix(s.Path, p.Dir+"/") {
				continue
			}
			rs, _ := export.ReadRL(context.Background(), filepath.Join(out, s.Path))
			for _, r := range rs {
				if rollout.ShardOf(r.TaskID, 3) != p.Shard.Index {
					t.Fatalf("task %s in shard %d", r.TaskID, p.Shard.Index)
				}
			}
		}
	}
	w, g := wm.Rewards, mm.Rewards
	if w.Rows != g.Rows || w.Groups != g.Groups || w.Graded != g.Graded || math.Abs(*w.Mean-*g.Mean) > 1e-12 ||
		math.Abs(*w.Std-*g.Std) > 1e-12 || math.Abs(*w.Accuracy-*g.Accuracy) > 1e-12 || math.Abs(*w.FracZeroStd-*g.FracZeroStd) > 1e-12 {
		t.Errorf("merged summary %+v, whole run's %+v", g, w)
	}
	card := mustRead(t, filepath.Join(out, "README.md"))
	if !strings.Contains(card, "path: shards/*/data/rl/train-*.parquet") {
		t.Errorf("merged card data_files:\n%s", card)
	}
}

func fmtRow(r export.RLRow) string {
	b, _ := json.Marshal(r)
	return string(b)
}

// The step-splice preset is a splice job run through redraft run: 781
// PRM800K trajectories, valid sft rows (masks against spans); sharded, its
// two shards hold every row and every skip once.
func TestStepSplicePreset(t *testing.T) {
	cfg := writeConfig(t, strings.ReplaceAll(mustRead(t, "../../configs/presets/step-splice.yaml"), "testdata/", "../../testdata/"))
	out := t.TempDir()
	code, _, stderr := redraft(t, "run", "--config", cfg, "--out", out)
	if code != 0 || !strings.Contains(stderr, "wrote 781 sft rows") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	m, err := export.ReadManifest(out)
	if err != nil || m.Datasets["sft"].Rows != 781 {
		t.Fatalf("manifest: %v %+v", err, m)
	}
	if code, stdout, _ := redraft(t, "validate", out); code != 0 {
		t.Fatalf("validate: %s", stdout)
	}
	// A setting the splice would not read is refused by name, not run on
	// a default.
	bad := writeConfig(t, mustRead(t, cfg)+"sampling: {temperature: 0.7}\n")
	if code, _, stderr := redraft(t, "run", "--config", bad, "--out", t.TempDir()); code == 0 || !strings.Contains(stderr, "sampling: a prm800k splice job does not read this section") {
		t.Errorf("step-splice with a sampling section: exit %d: %s", code, stderr)
	}
	sharded := t.TempDir()
	var rows, skipped int64
	for i := range 2 {
		spec := fmt.Sprintf("%d/2", i)
		if code, _, stderr := redraft(t, "run", "--config", cfg, "--out", sharded, "--shard", spec); code != 0 {
			t.Fatalf("shard %s: exit %d %s", spec, code, stderr)
		}
		part, err := export.ReadManifest(filepath.Join(sharded, export.ShardDir(export.ShardSpec{Index: i, Count: 2})))
		if err != nil {
			t.Fatal(err)
		}
		if ds := part.Datasets["sft"]; ds.Rows == 0 || ds.Rows == 781 {
			t.Errorf("shard %s: %d rows", spec, ds.Rows)
		}
		rows += part.Datasets["sft"].Rows
		skipped += part.SkippedTotal
	}
	if rows != 781 || skipped != m.SkippedTotal {
		t.Errorf("shards: %d rows, %d skipped; whole: 781, %d", rows, skipped, m.SkippedTotal)
	}
}
