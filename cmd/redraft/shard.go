package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout"
)

// parseShard reads --shard: "i/N" (shard i of N, 0-based), "auto" (index and
// count of a Slurm job array: SLURM_ARRAY_TASK_ID minus SLURM_ARRAY_TASK_MIN,
// out of SLURM_ARRAY_TASK_COUNT) or "auto/N" (N shards, the index from
// SLURM_ARRAY_TASK_ID minus SLURM_ARRAY_TASK_MIN, or from a Kubernetes
// Indexed Job's JOB_COMPLETION_INDEX). Empty: no sharding, unless the
// process runs in a Slurm job array (SLURM_ARRAY_TASK_COUNT set), which
// counts as "auto".
func parseShard(spec string, getenv func(string) string) (rollout.Shard, error) {
	if spec == "" {
		if getenv("SLURM_ARRAY_TASK_COUNT") == "" {
			return rollout.Shard{}, nil
		}
		spec = "auto"
	}
	idx, count, ok := strings.Cut(spec, "/")
	var sh rollout.Shard
	var err error
	switch {
	case idx == "auto" && !ok:
		if sh.Count, err = envInt(getenv, "SLURM_ARRAY_TASK_COUNT"); err != nil {
			return sh, fmt.Errorf("--shard auto: %w (give the count: --shard auto/N)", err)
		}
		if sh.Index, err = slurmIndex(getenv); err != nil {
			return sh, fmt.Errorf("--shard auto: %w", err)
		}
	case idx == "auto":
		if sh.Count, err = strconv.Atoi(count); err != nil {
			return sh, fmt.Errorf("--shard %q: the count %q is not a number", spec, count)
		}
		if getenv("SLURM_ARRAY_TASK_ID") != "" {
			sh.Index, err = slurmIndex(getenv)
		} else {
			sh.Index, err = envInt(getenv, "JOB_COMPLETION_INDEX")
		}
		if err != nil {
			return sh, fmt.Errorf("--shard %s: %w", spec, err)
		}
	case ok:
		if sh.Index, err = strconv.Atoi(idx); err != nil {
			return sh, fmt.Errorf("--shard %q: the index %q is not a number", spec, idx)
		}
		if sh.Count, err = strconv.Atoi(count); err != nil {
			return sh, fmt.Errorf("--shard %q: the count %q is not a number", spec, count)
		}
	default:
		return sh, fmt.Errorf("--shard %q: want i/N, auto or auto/N", spec)
	}
	if sh.Count < 1 || sh.Index < 0 || sh.Index >= sh.Count {
		return sh, fmt.Errorf("--shard %s: shard %d of %d is out of range (0 <= i < N)", spec, sh.Index, sh.Count)
	}
	return sh, nil
}

func slurmIndex(getenv func(string) string) (int, error) {
	id, err := envInt(getenv, "SLURM_ARRAY_TASK_ID")
	if err != nil {
		return 0, err
	}
	// Arrays often start at 1 (--array=1-8).
	if getenv("SLURM_ARRAY_TASK_MIN") != "" {
		lo, err := envInt(getenv, "SLURM_ARRAY_TASK_MIN")
		if err != nil {
			return 0, err
		}
		id -= lo
	}
	return id, nil
}

func envInt(getenv func(string) string, name string) (int, error) {
	v := getenv(name)
	if v == "" {
		return 0, fmt.Errorf("%s is not set", name)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not a number", name, v)
	}
	return n, nil
}

func cmdMerge(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("merge", "[--verify] DIR", mergeAbout, stdout)
	verify := fs.Bool("verify", false, "recompute every shard file's sha256 (reads every byte)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"usage: redraft merge [--verify] DIR (the --out of the sharded runs)"}
	}
	dir := fs.Arg(0)
	m, err := export.Merge(dir, export.MergeOptions{Verify: *verify})
	if err != nil {
		return err
	}
	ds := m.Datasets["rl"]
	fmt.Fprintf(stdout, "merged %d shard runs: %d rows (%d groups) in %d files; manifest and dataset card at %s\n",
		len(m.Parts), ds.Rows, ds.Groups, len(ds.Shards), dir)
	return nil
}
