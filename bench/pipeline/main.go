// Command pipeline benchmarks redraft's generation path and prints one table:
//
//   - overhead: whole runs (requests, decoding, grading, advantages, Parquet)
//     against an in-process OpenAI-compatible server that answers at once;
//   - latency hiding: the same against a server that takes L per request,
//     with C requests in flight, compared with the ideal C / L;
//   - a real llama-server (-llama URL): completion tokens/s through redraft
//     and through a minimal net/http client with the same concurrency,
//     prompts, seeds and max_tokens, alternated in the same run.
//
// bench/pipeline/run.sh starts the llama-server and runs this.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/fakeserver"
)

func main() {
	tasks := flag.Int("tasks", 10000, "tasks in the overhead runs (x samples rollouts)")
	samples := flag.Int("g", 4, "samples per task")
	latency := flag.Duration("latency", 100*time.Millisecond, "server latency L for latency hiding")
	llama := flag.String("llama", "", "base URL of a running llama-server (empty: skip the real-server rows)")
	llamaTasks := flag.Int("llama-tasks", 6, "GSM8K problems for the real-server rows")
	llamaConc := flag.Int("llama-concurrency", 4, "requests in flight against llama-server (its --parallel)")
	llamaTokens := flag.Int("llama-max-tokens", 48, "max_tokens against llama-server")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the first overhead run")
	only := flag.String("only", "", "run only: overhead, latency or llama")
	flag.Parse()
	log.SetFlags(0)

	tmp, err := os.MkdirTemp("", "redraft-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	b := &bench{tmp: tmp}

	var rows [][]string
	if *only == "" || *only == "overhead" {
		for _, lp := range []bool{false, true} {
			rows = append(rows, b.overhead(*tasks, *samples, lp, *cpuprofile))
			*cpuprofile = ""
		}
	}
	if *only == "" || *only == "latency" {
		for _, c := range []int{64, 256} {
			rows = append(rows, b.latencyHiding(c, *latency, *samples))
		}
	}
	if *only == "" || *only == "llama" {
		if *llama == "" {
			rows = append(rows, []string{"real llama-server", "skipped: no -llama URL", "", "", ""})
		} else {
			rows = append(rows, b.llama(*llama, *llamaTasks, *samples, *llamaConc, *llamaTokens)...)
		}
	}
	fmt.Printf("\nredraft pipeline benchmarks (%s, GOMAXPROCS %d, %s)\n\n", runtime.Version(), runtime.GOMAXPROCS(0), cpuModel())
	printTable([]string{"benchmark", "setting", "measured", "reference", "ratio"}, rows)
}

type bench struct {
	tmp string
	n   int
}

func (b *bench) dir() string {
	b.n++
	return filepath.Join(b.tmp, fmt.Sprint("run-", b.n))
}

// toyTasks writes n tasks "What is i+i?" and returns the path and answers.
func (b *bench) toyTasks(n int) (string, map[string]int) {
	var buf bytes.Buffer
	answers := make(map[string]int, n)
	for i := range n {
		q := fmt.Sprintf("What is %d+%d?", i, i)
		answers[q] = 2 * i
		fmt.Fprintf(&buf, `{"id": "toy-%d", "prompt": %q, "reference": %d, "data_source": "toy"}`+"\n", i, q, 2*i)
	}
	p := filepath.Join(b.tmp, fmt.Sprintf("toy-%d.jsonl", n))
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	return p, answers
}

func config(tasks, url, model string, g, inFlight, window int, extra, out string) *pipeline.Config {
	// window 0 leaves groups_in_flight out (its default); an explicit 0
	// would be refused.
	pl := ""
	if window > 0 {
		pl = fmt.Sprintf("pipeline: {groups_in_flight: %d}", window)
	}
	y := fmt.Sprintf(`
name: bench
seed: 1
source: {kind: tasks, path: %s}
endpoint: {base_url: %s, model: %s, max_in_flight: %d, api_key_env: REDRAFT_BENCH_NO_KEY}
sampling: {n: %d, %s}
%s
output: {dir: %s}
`, tasks, url, model, inFlight, g, extra, pl, out)
	cfg, err := pipeline.ParseConfig("bench.yaml", strings.NewReader(y))
	if err != nil {
		log.Fatal(err)
	}
	return cfg
}

func execute(cfg *pipeline.Config) (*export.Manifest, time.Duration) {
	m, d, _ := executeCPU(cfg)
	return m, d
}

// executeCPU runs cfg and returns the wall time and the CPU time the whole
// process (pipeline and in-process server) used meanwhile.
func executeCPU(cfg *pipeline.Config) (*export.Manifest, time.Duration, time.Duration) {
	cpu0 := cpuTime()
	start := time.Now()
	m, err := pipeline.Execute(context.Background(), cfg, pipeline.JobOptions{})
	if err != nil {
		log.Fatal(err)
	}
	return m, time.Since(start), cpuTime() - cpu0
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rowsOf(m *export.Manifest) int64 { return m.Datasets["rl"].Rows }

func (b *bench) overhead(n, g int, logprobs bool, cpuprofile string) []string {
	path, answers := b.toyTasks(n)
	srv := fakeserver.New(fakeserver.AnswerBySeed(answers))
	srv.NoLog = true
	defer srv.Close()
	extra := "temperature: 1.0, max_tokens: 64"
	if logprobs {
		extra += ", logprobs: true"
	}
	// Warm up connections, code paths and the heap on a small run.
	small, _ := b.toyTasks(500)
	execute(config(small, srv.BaseURL(), "policy", g, 64, 0, extra, b.dir()))
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	// Best of three: on a shared machine other processes only ever slow a
	// run down. CPU time per rollout (pipeline and server together) is the
	// figure that other load does not distort.
	var rate, cpuPer float64
	var rows int64
	for range 3 {
		m, d, cpu := executeCPU(config(path, srv.BaseURL(), "policy", g, 64, 0, extra, b.dir()))
		if m.Rewards.Failed != 0 {
			log.Fatalf("overhead run: %d failed samples", m.Rewards.Failed)
		}
		rows = rowsOf(m)
		log.Printf("overhead (logprobs %v): %d rows, wall %s, cpu %s", logprobs, rows, d, cpu)
		rate = max(rate, float64(rows)/d.Seconds())
		if c := float64(cpu.Microseconds()) / float64(rows); cpuPer == 0 || c < cpuPer {
			cpuPer = c
		}
	}
	setting := fmt.Sprintf("zero-latency fake, %d rollouts, 64 in flight", rows)
	if logprobs {
		setting += ", logprobs (18 tokens)"
	}
	return []string{"(a) pipeline overhead", setting,
		fmt.Sprintf("%.0f rollouts/s (best of 3); %.0f us CPU/rollout incl. server", rate, cpuPer),
		"target 10000/s", fmt.Sprintf("%.2f", rate/10000)}
}

func (b *bench) latencyHiding(c int, l time.Duration, g int) []string {
	// 30 rounds of C requests: long enough that the start (connections,
	// output files) and the end (fsync, manifest) are small against the
	// whole.
	n := 30 * c / g
	path, answers := b.toyTasks(n)
	srv := fakeserver.New(fakeserver.AnswerBySeed(answers))
	srv.NoLog, srv.Latency = true, l
	defer srv.Close()
	cfg := config(path, srv.BaseURL(), "policy", g, c, 4*c/g, "temperature: 1.0, max_tokens: 64", b.dir())
	m, d := execute(cfg)
	got := float64(rowsOf(m)) / d.Seconds()
	ideal := float64(c) / l.Seconds()
	// The latency the client saw per request: above L by the server's and
	// the scheduler's delays, which no client can hide.
	var sum float64
	for _, s := range m.Datasets["rl"].Shards {
		rows, err := export.ReadRL(context.Background(), filepath.Join(cfg.Output.Dir, s.Path))
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range rows {
			sum += *r.LatencyMS
		}
	}
	mean := sum / float64(rowsOf(m))
	return []string{"(b) latency hiding", fmt.Sprintf("L=%s, C=%d, %d requests", l, c, rowsOf(m)),
		fmt.Sprintf("%.0f req/s (mean latency seen %.1f ms)", got, mean), fmt.Sprintf("C/L = %.0f req/s", ideal), fmt.Sprintf("%.1f%%", 100*got/ideal)}
}

type gsmTask struct {
	ID        string `json:"id"`
	Prompt    string `json:"prompt"`
	Reference string `json:"reference"`
}

func gsm8k(n int) []gsmTask {
	f, err := os.Open("testdata/gsm8k/example_model_solutions.jsonl")
	if err != nil {
		log.Fatalf("%v (run from the repository root)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var out []gsmTask
	for len(out) < n && sc.Scan() {
		var rec struct{ Question, GroundTruth string }
		var raw map[string]json.RawMessage
		json.Unmarshal(sc.Bytes(), &raw)
		json.Unmarshal(raw["question"], &rec.Question)
		json.Unmarshal(raw["ground_truth"], &rec.GroundTruth)
		ref := rec.GroundTruth[strings.LastIndex(rec.GroundTruth, "A:")+2:]
		out = append(out, gsmTask{fmt.Sprint("gsm8k-", len(out)), rec.Question, strings.TrimSpace(ref)})
	}
	return out
}

// llama compares completion tokens/s through redraft with a minimal client,
// alternating them so that drift in the server (warm caches, heat) hits
// both alike.
func (b *bench) llama(url string, nTasks, g, conc, maxTokens int) [][]string {
	base := strings.TrimRight(url, "/")
	if !strings.HasSuffix(base, "/v1") {
		base += "/v1"
	}
	tasks := gsm8k(nTasks)
	var buf bytes.Buffer
	for _, t := range tasks {
		json.NewEncoder(&buf).Encode(t)
	}
	path := filepath.Join(b.tmp, "gsm8k.jsonl")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	const model = "SmolLM2-135M-Instruct"
	extra := fmt.Sprintf("temperature: 1.0, max_tokens: %d", maxTokens)
	viaRedraft := func() (int64, time.Duration) {
		cfg := config(path, base, model, g, conc, 0, extra, b.dir())
		m, d := execute(cfg)
		if m.Rewards.Failed != 0 {
			log.Fatalf("redraft against llama-server: %d failed samples", m.Rewards.Failed)
		}
		var tokens int64
		for _, s := range m.Datasets["rl"].Shards {
			rows, err := export.ReadRL(context.Background(), filepath.Join(cfg.Output.Dir, s.Path))
			if err != nil {
				log.Fatal(err)
			}
			for _, r := range rows {
				tokens += int64(*r.CompletionTokens)
			}
		}
		return tokens, d
	}
	direct := func() (int64, time.Duration) { return directClient(base, model, tasks, g, conc, maxTokens) }
	direct() // warm-up: the first pass pays for cold caches
	var dTok, rTok int64
	var dDur, rDur time.Duration
	for range 2 {
		t, d := direct()
		dTok, dDur = dTok+t, dDur+d
		t, d = viaRedraft()
		rTok, rDur = rTok+t, rDur+d
	}
	dRate, rRate := float64(dTok)/dDur.Seconds(), float64(rTok)/rDur.Seconds()
	setting := fmt.Sprintf("%d requests x %d tokens max, %d in flight, 2 passes each", len(tasks)*g, maxTokens, conc)
	return [][]string{
		{"(c) real llama-server", "direct net/http client, " + setting, fmt.Sprintf("%.1f tokens/s", dRate), "", ""},
		{"(c) real llama-server", "through redraft, " + setting, fmt.Sprintf("%.1f tokens/s", rRate), fmt.Sprintf("direct %.1f tokens/s", dRate), fmt.Sprintf("%.1f%%", 100*rRate/dRate)},
	}
}

// directClient sends the requests redraft would (same messages, seeds,
// settings) with conc workers and plain net/http, and returns the
// completion tokens the server reported and the wall time.
func directClient(base, model string, tasks []gsmTask, g, conc, maxTokens int) (int64, time.Duration) {
	type job struct {
		prompt string
		seed   int64
	}
	jobs := make(chan job)
	var mu sync.Mutex
	var tokens int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				body, _ := json.Marshal(map[string]any{
					"model": model, "messages": []map[string]string{{"role": "user", "content": j.prompt}},
					"seed": j.seed, "temperature": 1.0, "max_tokens": maxTokens,
				})
				resp, err := client.Post(base+"/chat/completions", "application/json", bytes.NewReader(body))
				if err != nil {
					log.Fatal(err)
				}
				var out struct {
					Usage struct {
						CompletionTokens int64 `json:"completion_tokens"`
					}
				}
				err = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					log.Fatalf("direct client: HTTP %d: %v", resp.StatusCode, err)
				}
				mu.Lock()
				tokens += out.Usage.CompletionTokens
				mu.Unlock()
			}
		}()
	}
	for _, t := range tasks {
		for i := range g {
			jobs <- job{t.Prompt, rollout.DeriveSeed(1, t.ID, i, 0)}
		}
	}
	close(jobs)
	wg.Wait()
	return tokens, time.Since(start)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			if _, v, ok := strings.Cut(line, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

func printTable(head []string, rows [][]string) {
	w := make([]int, len(head))
	for _, r := range append([][]string{head}, rows...) {
		for i, c := range r {
			w[i] = max(w[i], len(c))
		}
	}
	line := func(r []string) {
		var b strings.Builder
		for i, c := range r {
			fmt.Fprintf(&b, "| %-*s ", w[i], c)
		}
		fmt.Println(b.String() + "|")
	}
	line(head)
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = strings.Repeat("-", w[i])
	}
	fmt.Println("|-" + strings.Join(sep, "-|-") + "-|")
	for _, r := range rows {
		line(r)
	}
}
