// Command memory measures redraft's peak memory against the size of a run:
// the same generation job (tasks against an in-process OpenAI-compatible
// server, G samples each, graded, advantages, Parquet shards, journal) at
// several sizes, each in its own redraft process, whose peak resident set
// (getrusage ru_maxrss) is reported. Memory must stay flat: the pipeline
// holds a bounded window of groups, never the dataset.
//
// bench/memory/run.sh builds redraft and runs this.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout/fakeserver"
)

func main() {
	bin := flag.String("redraft", "", "the redraft binary to measure (required)")
	sizes := flag.String("rollouts", "10000,1000000", "comma-separated run sizes in rollouts")
	g := flag.Int("g", 4, "samples per task")
	limits := flag.String("memlimits", "off,128MiB", "comma-separated GOMEMLIMIT values to run every size under (off: Go's default, GC by GOGC only)")
	repeat := flag.Int("repeat", 3, "runs of every size; the table gives the median peak and the range")
	profiles := flag.String("profiles", "", "write each run's heap profile (redraft run --memprofile) into this `directory`, as heap-<GOMEMLIMIT>-<rollouts>.pprof")
	flag.Parse()
	log.SetFlags(0)
	if *repeat < 1 {
		log.Fatal("-repeat must be at least 1")
	}
	if *bin == "" {
		log.Fatal("-redraft is required")
	}
	tmp, err := os.MkdirTemp("", "redraft-memory-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	// The server answers "The answer is 0." for even seeds and 1 for odd
	// ones; every task's reference is 0, so groups mix right and wrong.
	srv := fakeserver.New(fakeserver.AnswerBySeed(nil))
	srv.NoLog = true
	defer srv.Close()

	type result struct {
		limit          string
		rollouts, rows int64
		wall           time.Duration // median
		rssKiB         []int64       // one per run, sorted
		shards         int
	}
	var results []result
	for _, limit := range strings.Split(*limits, ",") {
		for _, f := range strings.Split(*sizes, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil || n < int64(*g) {
				log.Fatalf("-rollouts: bad size %q", f)
			}
			tasks := n / int64(*g)
			dir := filepath.Join(tmp, fmt.Sprint(n))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				log.Fatal(err)
			}
			taskPath := filepath.Join(dir, "tasks.jsonl")
			if err := writeTasks(taskPath, tasks); err != nil {
				log.Fatal(err)
			}
			cfgPath := filepath.Join(dir, "run.yaml")
			cfg := fmt.Sprintf(`name: memory-bench
seed: 1
source: {kind: tasks, path: %q}
endpoint: {base_url: %q, model: fake, max_in_flight: 64}
sampling: {n: %d, temperature: 1.0, max_tokens: 64}
advantage: {estimator: grpo}
output: {dir: %q, shard_bytes: 8MiB}
`, taskPath, srv.BaseURL(), *g, filepath.Join(dir, "out"))
			if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
				log.Fatal(err)
			}
			args := []string{"run", "--config", cfgPath, "--no-audit", "--progress", "off"}
			if *profiles != "" {
				args = append(args, "--memprofile", filepath.Join(*profiles, fmt.Sprintf("heap-%s-%d.pprof", limit, n)))
			}
			r := result{limit: limit, rollouts: n}
			var walls []time.Duration
			for range *repeat {
				os.RemoveAll(filepath.Join(dir, "out"))
				cmd := exec.Command(*bin, args...)
				cmd.Stderr = os.Stderr
				if limit != "off" {
					// A soft limit: the GC works harder near it, so the peak shows
					// the live memory rather than how far garbage was let grow.
					cmd.Env = append(os.Environ(), "GOMEMLIMIT="+limit)
				}
				start := time.Now()
				if err := cmd.Run(); err != nil {
					log.Fatalf("%d rollouts: %v", n, err)
				}
				walls = append(walls, time.Since(start))
				ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
				m, err := export.ReadManifest(filepath.Join(dir, "out"))
				if err != nil {
					log.Fatal(err)
				}
				r.rows, r.shards = m.Datasets["rl"].Rows, len(m.Datasets["rl"].Shards)
				r.rssKiB = append(r.rssKiB, ru.Maxrss)
			}
			slices.Sort(r.rssKiB)
			slices.Sort(walls)
			r.wall = walls[len(walls)/2]
			results = append(results, r)
			os.RemoveAll(dir)
		}
	}

	fmt.Printf("\nredraft peak memory by run size (%s, GOMAXPROCS %d, nproc %d)\n\n", runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Printf("%d run(s) of each size: median peak RSS (range), median wall time\n\n", *repeat)
	fmt.Println("| GOMEMLIMIT | rollouts | rows written | rl shards | wall | rollouts/s | peak RSS | range | vs smallest |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	first := map[string]int64{}
	mib := func(kib int64) float64 { return float64(kib) / 1024 }
	for _, r := range results {
		med := r.rssKiB[len(r.rssKiB)/2]
		if _, ok := first[r.limit]; !ok {
			first[r.limit] = med
		}
		fmt.Printf("| %s | %d | %d | %d | %s | %.0f | %.1f MiB | %.1f-%.1f | %.2f |\n", r.limit, r.rollouts, r.rows, r.shards,
			r.wall.Round(100*time.Millisecond), float64(r.rows)/r.wall.Seconds(), mib(med),
			mib(r.rssKiB[0]), mib(r.rssKiB[len(r.rssKiB)-1]), float64(med)/float64(first[r.limit]))
	}
	// The target: the median peak of the largest run within 25% of the
	// smallest's, under every limit.
	for _, limit := range strings.Split(*limits, ",") {
		worst := 0.0
		for _, r := range results {
			if r.limit == limit {
				worst = max(worst, float64(r.rssKiB[len(r.rssKiB)/2])/float64(first[limit]))
			}
		}
		verdict := "met"
		if worst > 1.25 {
			verdict = "NOT met"
		}
		fmt.Printf("\nGOMEMLIMIT %s: largest/smallest median peak %.2f; target <= 1.25 %s\n", limit, worst, verdict)
	}
}

// writeTasks writes n short arithmetic tasks with unique ids.
func writeTasks(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		fmt.Fprintf(w, `{"id": "m-%d", "prompt": "Task %d: what is %d minus %d?", "reference": 0, "data_source": "bench"}`+"\n", i, i, i, i)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
