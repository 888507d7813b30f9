// Command sandbox measures, side by side in one run, how fast HumanEval's
// 164 canonical solutions run (each as prompt + solution + test +
// check(entry_point)) in redraft's bubblewrap sandbox against a bare
// python3 subprocess per program, and the overhead the sandbox adds per
// execution.
//
//	go run ./bench/sandbox [-repeat 3]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/redraft/redraft/rewards/codegrade"
	"github.com/redraft/redraft/rewards/execute"
)

func main() {
	repeat := flag.Int("repeat", 3, "passes over the 164 programs per method")
	data := flag.String("data", "rewards/codegrade/testdata/humaneval/HumanEval.jsonl.gz", "HumanEval file")
	flag.Parse()
	ps, err := codegrade.ReadHumanEval(*data)
	check(err)
	progs := make([]string, len(ps))
	for i, p := range ps {
		progs[i] = p.Prompt + p.CanonicalSolution + "\n" + p.Test + "\n" + fmt.Sprintf("check(%s)\n", p.EntryPoint)
	}
	cores := runtime.NumCPU()
	sb1, err := execute.New(execute.Options{Slots: 1})
	check(err)
	sbN, err := execute.New(execute.Options{Slots: cores})
	check(err)
	grader := codegrade.New(sbN, codegrade.Options{})
	tmp, err := os.MkdirTemp("", "bench-sandbox-")
	check(err)
	defer os.RemoveAll(tmp)

	bare := func(i int) bool {
		d := filepath.Join(tmp, fmt.Sprint(i, "-", time.Now().UnixNano()))
		check(os.MkdirAll(d, 0o755))
		defer os.RemoveAll(d)
		check(os.WriteFile(filepath.Join(d, "main.py"), []byte(progs[i]), 0o644))
		cmd := exec.Command("/usr/bin/python3", "main.py")
		cmd.Dir, cmd.Env = d, []string{}
		return cmd.Run() == nil
	}
	sandboxed := func(sb *execute.Sandbox) func(int) bool {
		return func(i int) bool {
			r, err := sb.Run(context.Background(), execute.Spec{Argv: []string{"/usr/bin/python3", "main.py"},
				Files: []execute.File{{Name: "main.py", Data: []byte(progs[i])}}})
			return err == nil && r.Reason == "ok"
		}
	}
	verifier := func(i int) bool {
		return grader.Run(context.Background(), ps[i].CanonicalSolution, ps[i].Task()).Correct
	}

	// Latency: one program at a time, median over every execution.
	latency := func(f func(int) bool) (time.Duration, int) {
		var ds []time.Duration
		fails := 0
		for r := 0; r < *repeat; r++ {
			for i := range progs {
				t := time.Now()
				if !f(i) {
					fails++
				}
				ds = append(ds, time.Since(t))
			}
		}
		sort.Slice(ds, func(a, b int) bool { return ds[a] < ds[b] })
		return ds[len(ds)/2], fails
	}
	// Throughput: all cores busy, executions per second.
	throughput := func(f func(int) bool, workers int) (float64, int) {
		jobs := make(chan int)
		var mu sync.Mutex
		fails := 0
		var wg sync.WaitGroup
		t := time.Now()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					if !f(i) {
						mu.Lock()
						fails++
						mu.Unlock()
					}
				}
			}()
		}
		for r := 0; r < *repeat; r++ {
			for i := range progs {
				jobs <- i
			}
		}
		close(jobs)
		wg.Wait()
		return float64(*repeat*len(progs)) / time.Since(t).Seconds(), fails
	}

	lb, fb := latency(bare)
	ls, fs := latency(sandboxed(sb1))
	tb, fb2 := throughput(bare, cores)
	ts, fs2 := throughput(sandboxed(sbN), cores)
	tv, fv := throughput(verifier, 2*cores)
	fmt.Printf("HumanEval canonical solutions: %d programs x %d passes, %d cores (%s)\n\n", len(progs), *repeat, cores, runtime.GOARCH)
	fmt.Printf("%-44s %14s %16s %8s\n", "method", "median latency", "execs/s (all cores)", "failed")
	fmt.Printf("%-44s %12.1f ms %16.1f %8d\n", "bare python3 subprocess", ms(lb), tb, fb+fb2)
	fmt.Printf("%-44s %12.1f ms %16.1f %8d\n", "sandbox (bwrap + rlimits), same program", ms(ls), ts, fs+fs2)
	fmt.Printf("%-44s %14s %16.1f %8d\n", "verifier (sandbox + per-test harness)", "-", tv, fv)
	fmt.Printf("\nsandbox overhead per execution: %.1f ms (median latency difference; target < 20 ms)\n", ms(ls-lb))
	fmt.Printf("throughput ratio sandbox/bare: %.2f\n", ts/tb)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
