// Command bench/write times redraft's shard writer (export.ShardWriter, as a
// run uses it: zstd, 4096-row row groups, shards rotated at 131,072 rows or
// 256 MiB, each written to a temporary name, fsynced and renamed) on the rows
// of an rl shard written -copies times, group by group. It prints one JSON
// line: the seconds of every run, rows, output bytes and shards, and the
// process's peak resident set (getrusage ru_maxrss). bench/write/run.sh runs
// it next to pyarrow's pq.write_table on the same rows.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/redraft/redraft/export"
)

func main() {
	src := flag.String("shard", "out/quickstart/data/rl/train-00000.parquet", "the rl shard whose rows are written")
	copies := flag.Int("copies", 190, "times the shard's rows are written")
	dir := flag.String("dir", "", "output directory (emptied before each run)")
	runs := flag.Int("runs", 1, "timed runs")
	label := flag.String("label", "", "what the rows are, for the JSON line")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the timed runs to `file`")
	keep := flag.Bool("keep", false, "keep the last run's shards")
	corpus := flag.String("zstd", "", "instead, time the shard writer's zstd (export.Compressor) on `file` in 256 KiB pages")
	flag.Parse()
	if *corpus != "" {
		if err := zstdSpeed(*corpus, *runs); err != nil {
			fmt.Fprintln(os.Stderr, "bench/write:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*src, *dir, *copies, *runs, *label, *cpuprofile, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "bench/write:", err)
		os.Exit(1)
	}
}

func run(src, dir string, copies, runs int, label, cpuprofile string, keep bool) error {
	ctx := context.Background()
	rows, err := export.ReadRL(ctx, src)
	if err != nil {
		return err
	}
	// The shard's groups: runs of rows with the same group_id.
	var groups [][]export.RLRow
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && rows[j].GroupID == rows[i].GroupID {
			j++
		}
		groups = append(groups, rows[i:j])
		i = j
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var secs []float64
	var cpu time.Duration
	var bytes, n int64
	var shards int
	for range runs {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		t, c := time.Now(), cpuTime()
		w, err := export.NewShardWriter[export.RLRow](export.ShardOptions{Dir: dir, Dataset: "rl", Schema: export.RLSchema,
			MaxRows: 131072, RowGroupRows: 4096})
		if err != nil {
			return err
		}
		for range copies {
			for _, g := range groups {
				if err := w.WriteGroup(ctx, g); err != nil {
					return err
				}
			}
		}
		if _, err := w.Flush(); err != nil {
			return err
		}
		info := w.Commit()
		secs = append(secs, time.Since(t).Seconds())
		cpu += cpuTime() - c
		bytes, n, shards = 0, 0, len(info)
		for _, s := range info {
			bytes += s.Bytes
			n += s.Rows
		}
	}
	if !keep {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"tool": "redraft (Go, parquet-go)", "rows_kind": label,
		"rows": n, "seconds": secs, "bytes": bytes, "shards": shards, "peak_rss_mb": float64(ru.Maxrss) / 1024,
		"cpu_seconds": cpu.Seconds() / float64(runs),
		"source":      filepath.Base(src)})
}

// cpuTime is the process's user and system time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// zstdSpeed compresses file in pages of 256 KiB (parquet-go's page buffer)
// with the shard writer's Compressor, runs times, and prints one JSON line
// with the seconds of each run and the bytes in and out.
func zstdSpeed(path string, runs int) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	c, err := export.NewCompressor()
	if err != nil {
		return err
	}
	var secs []float64
	var out int
	var dst []byte
	for range runs {
		t := time.Now()
		out = 0
		for i := 0; i < len(data); i += 256 << 10 {
			dst, err = c.Encode(dst, data[i:min(len(data), i+256<<10)])
			if err != nil {
				return err
			}
			out += len(dst)
		}
		secs = append(secs, time.Since(t).Seconds())
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"tool": "klauspost/compress zstd, SpeedDefault (redraft's shard writer)",
		"bytes_in": len(data), "bytes_out": out, "seconds": secs})
}
