// Command bench/audit times the audit's reward histogram (reward column
// only, worker pool) and the full audit on a directory of rl shards and
// prints one JSON line per measurement.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/redraft/redraft/audit"
)

func main() {
	src := flag.String("shard", "out/quickstart/data/rl/train-00000.parquet", "shard to repeat")
	dir := flag.String("dir", "", "directory to write the repeated shards to")
	repeat := flag.Int("repeat", 200, "copies of the shard")
	workers := flag.Int("workers", 0, "workers (0: GOMAXPROCS)")
	flag.Parse()
	if err := run(*src, *dir, *repeat, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "bench/audit:", err)
		os.Exit(1)
	}
}

func run(src, dir string, repeat, workers int) error {
	rl := filepath.Join(dir, "data", "rl")
	if err := os.MkdirAll(rl, 0o755); err != nil {
		return err
	}
	for i := range repeat {
		if err := copyFile(src, filepath.Join(rl, fmt.Sprintf("train-%05d.parquet", i))); err != nil {
			return err
		}
	}
	ctx := context.Background()
	out := json.NewEncoder(os.Stdout)
	best := func(f func() (int64, error)) (int64, float64, error) {
		var rows int64
		bestS := 0.0
		for i := range 3 {
			t := time.Now()
			n, err := f()
			if err != nil {
				return 0, 0, err
			}
			s := time.Since(t).Seconds()
			if i == 0 || s < bestS {
				bestS = s
			}
			rows = n
		}
		return rows, bestS, nil
	}
	rows, s, err := best(func() (int64, error) {
		_, n, err := audit.RewardHistogram(ctx, dir, workers)
		return n, err
	})
	if err != nil {
		return err
	}
	out.Encode(map[string]any{"tool": "redraft (Go, Arrow)", "task": "reward histogram", "rows": rows, "seconds": s})
	rows, s, err = best(func() (int64, error) {
		a, err := audit.Path(ctx, dir, audit.Options{Workers: workers})
		if err != nil {
			return 0, err
		}
		return a.Overall.Rows, nil
	})
	if err != nil {
		return err
	}
	out.Encode(map[string]any{"tool": "redraft (Go, Arrow)", "task": "full audit (every metric group)", "rows": rows, "seconds": s})
	return nil
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
