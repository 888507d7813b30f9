// Command bench/audit copies an rl shard into a directory of shards
// (-repeat copies) and times the audit on a directory of rl shards: -task
// hist is the reward histogram (reward column only, the audit's worker pool
// and accumulator), -task full the full audit (every metric group). It
// prints one JSON line per measurement with the seconds of every run and the
// process's peak resident set (getrusage ru_maxrss). bench/audit/run.sh runs
// it next to pyarrow and DuckDB.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/redraft/redraft/audit"
)

func main() {
	src := flag.String("shard", "out/quickstart/data/rl/train-00000.parquet", "shard to repeat")
	dir := flag.String("dir", "", "directory of the shards (data/rl/*.parquet under it)")
	repeat := flag.Int("repeat", 0, "write this many copies of -shard to -dir first")
	task := flag.String("task", "full", "hist, full or none")
	runs := flag.Int("runs", 1, "timed runs")
	workers := flag.Int("workers", 0, "workers (0: GOMAXPROCS)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the timed runs to `file`")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/audit:", err)
			os.Exit(1)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	if err := run(*src, *dir, *repeat, *task, *runs, *workers); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench/audit:", err)
		os.Exit(1)
	}
}

func run(src, dir string, repeat int, task string, runs, workers int) error {
	if repeat > 0 {
		rl := filepath.Join(dir, "data", "rl")
		if err := os.MkdirAll(rl, 0o755); err != nil {
			return err
		}
		for i := range repeat {
			if err := copyFile(src, filepath.Join(rl, fmt.Sprintf("train-%05d.parquet", i))); err != nil {
				return err
			}
		}
	}
	ctx := context.Background()
	var f func() (int64, error)
	name := ""
	switch task {
	case "none":
		return nil
	case "hist":
		name = "reward histogram"
		f = func() (int64, error) {
			_, n, err := audit.RewardHistogram(ctx, dir, workers)
			return n, err
		}
	case "full":
		name = "full audit (every metric group)"
		f = func() (int64, error) {
			a, err := audit.Path(ctx, dir, audit.Options{Workers: workers})
			if err != nil {
				return 0, err
			}
			return a.Overall.Rows, nil
		}
	default:
		return fmt.Errorf("-task %q: want hist, full or none", task)
	}
	var rows int64
	var secs []float64
	for range runs {
		t := time.Now()
		n, err := f()
		if err != nil {
			return err
		}
		secs = append(secs, time.Since(t).Seconds())
		rows = n
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"tool": "redraft (Go, Arrow)", "task": name, "rows": rows,
		"seconds": secs, "peak_rss_mb": float64(ru.Maxrss) / 1024})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	o, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(o, in); err != nil {
		o.Close()
		return err
	}
	return o.Close()
}
