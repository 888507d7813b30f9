// Command bigresponse measures redraft's peak memory against the bytes of
// the responses it has in flight: a generation job against a local
// OpenAI-compatible server on 127.0.0.1 that answers every request with the
// same large response (20 responses of 50 MB at 4 in flight by default), in
// its own redraft process, whose peak resident set (getrusage ru_maxrss) is
// reported next to the bytes in flight (in flight x response size). The
// target is a peak under 4x the bytes in flight.
//
// The server is this process, not redraft's: its memory (the prepared
// response) is not counted. -stream makes it answer requests that ask for a
// stream as server-sent events (the run then sets endpoint.stream).
//
// bench/bigresponse/run.sh builds redraft and runs this.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redraft/redraft/export"
)

func main() {
	bin := flag.String("redraft", "", "the redraft binary to measure (required)")
	responses := flag.Int("responses", 20, "responses in the run (one sample per task)")
	size := flag.Int("size", 50_000_000, "bytes of each response's content")
	inFlight := flag.Int("in-flight", 4, "endpoint.max_in_flight")
	stream := flag.Bool("stream", false, "run with endpoint.stream: true (the server answers with server-sent events)")
	repeat := flag.Int("repeat", 1, "runs; the table gives the median peak and the range")
	extra := flag.String("endpoint", "", "extra endpoint settings, YAML flow style without braces, e.g. 'max_response_bytes: 64MiB'")
	profile := flag.String("memprofile", "", "pass --memprofile `file` to redraft (the last run's)")
	flag.Parse()
	log.SetFlags(0)
	if *bin == "" {
		log.Fatal("-redraft is required")
	}
	if *responses < 1 || *size < 1 || *inFlight < 1 || *repeat < 1 {
		log.Fatal("-responses, -size, -in-flight and -repeat must be at least 1")
	}
	tmp, err := os.MkdirTemp("", "redraft-bigresponse-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	content := makeContent(*size)
	srv, err := startServer(content)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	taskPath := filepath.Join(tmp, "tasks.jsonl")
	var tasks strings.Builder
	for i := range *responses {
		fmt.Fprintf(&tasks, `{"id": "big-%d", "prompt": "Write at length, then answer: what is %d minus %d?", "reference": 0}`+"\n", i, i, i)
	}
	if err := os.WriteFile(taskPath, []byte(tasks.String()), 0o644); err != nil {
		log.Fatal(err)
	}
	endpoint := fmt.Sprintf("base_url: %q, model: fake, max_in_flight: %d, timeout: 10m", srv.url, *inFlight)
	if *stream {
		endpoint += ", stream: true"
	}
	if *extra != "" {
		endpoint += ", " + *extra
	}
	out := filepath.Join(tmp, "out")
	cfgPath := filepath.Join(tmp, "run.yaml")
	cfg := fmt.Sprintf(`name: bigresponse-bench
seed: 1
source: {kind: tasks, path: %q}
endpoint: {%s}
sampling: {n: 1, temperature: 1.0}
output: {dir: %q}
`, taskPath, endpoint, out)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		log.Fatal(err)
	}

	var peaks []int64
	var walls []time.Duration
	var rows, failed int64
	for i := range *repeat {
		os.RemoveAll(out)
		args := []string{"run", "--config", cfgPath, "--no-audit", "--progress", "off"}
		if *profile != "" && i == *repeat-1 {
			args = append(args, "--memprofile", *profile)
		}
		cmd := exec.Command(*bin, args...)
		cmd.Stderr = os.Stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			log.Fatalf("redraft run: %v", err)
		}
		walls = append(walls, time.Since(start))
		peaks = append(peaks, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
		m, err := export.ReadManifest(out)
		if err != nil {
			log.Fatal(err)
		}
		rows, failed = m.Datasets["rl"].Rows, 0
		if m.Failures != nil {
			failed = m.Failures.Count
		}
	}
	slices.Sort(peaks)
	slices.Sort(walls)
	med := peaks[len(peaks)/2]

	inflight := int64(*inFlight) * int64(*size)
	peak := med * 1024
	ratio := float64(peak) / float64(inflight)
	mb := func(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/1e6) }
	mode := "non-streaming"
	if *stream {
		mode = "streaming (SSE)"
	}
	fmt.Printf("\nredraft peak memory with large responses (%s, GOMAXPROCS %d, nproc %d)\n\n", runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Printf("%d responses of %s content (%s body), %d in flight, %s, %d run(s): median peak, range\n\n",
		*responses, mb(int64(*size)), mb(srv.bodyBytes), *inFlight, mode, *repeat)
	fmt.Println("| rows written | failed samples | wall | peak RSS | range | bytes in flight | peak / in flight | target < 4x |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---|")
	verdict := "met"
	if ratio >= 4 {
		verdict = "NOT met"
	}
	fmt.Printf("| %d | %d | %s | %s | %s-%s | %s | %.2fx | %s |\n", rows, failed, walls[len(walls)/2].Round(100*time.Millisecond),
		mb(peak), mb(peaks[0]*1024), mb(peaks[len(peaks)-1]*1024), mb(inflight), ratio, verdict)
	fmt.Printf("\nserver: %d requests\n", srv.requests.Load())
}

// makeContent is n bytes of text shaped like a long derivation: lines of
// words and numbers with quotes (escaped in JSON), ending with a boxed
// answer of 0.
func makeContent(n int) string {
	const tail = "\nSo the answer is \\boxed{0}."
	var b strings.Builder
	b.Grow(n)
	for i := 0; b.Len() < n-len(tail); i++ {
		fmt.Fprintf(&b, "Step %d: let \"x\" be %d; then x - %d = 0, as checked above.\n", i, i, i)
	}
	s := b.String()
	if len(s) > n-len(tail) {
		s = s[:n-len(tail)]
	}
	return s + tail
}

type server struct {
	url       string
	body      []byte // the non-streamed answer
	chunks    [][]byte
	bodyBytes int64
	requests  atomic.Int64
	http      *http.Server
}

func (s *server) Close() { s.http.Close() }

// startServer serves content as every chat completion's answer, as one JSON
// body with a Content-Length (vLLM's non-streamed answer) or, to requests
// with "stream": true, as server-sent events of 64 KiB of content each,
// then a usage event and [DONE].
func startServer(content string) (*server, error) {
	type msg struct {
		Role    string `json:"role,omitempty"`
		Content string `json:"content"`
	}
	type choice struct {
		Index        int     `json:"index"`
		Message      *msg    `json:"message,omitempty"`
		Delta        *msg    `json:"delta,omitempty"`
		FinishReason *string `json:"finish_reason"`
	}
	type usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	}
	type completion struct {
		ID      string   `json:"id"`
		Object  string   `json:"object"`
		Created int64    `json:"created"`
		Model   string   `json:"model"`
		Choices []choice `json:"choices"`
		Usage   *usage   `json:"usage,omitempty"`
	}
	stop := "stop"
	words := len(strings.Fields(content))
	u := &usage{PromptTokens: 20, CompletionTokens: words, TotalTokens: 20 + words}
	body, err := json.Marshal(completion{ID: "chatcmpl-big", Object: "chat.completion", Created: 1700000000, Model: "fake",
		Choices: []choice{{Message: &msg{Role: "assistant", Content: content}, FinishReason: &stop}}, Usage: u})
	if err != nil {
		return nil, err
	}
	s := &server{body: body, bodyBytes: int64(len(body))}
	event := func(c completion) {
		b, err := json.Marshal(c)
		if err != nil {
			panic(err)
		}
		s.chunks = append(s.chunks, append(append([]byte("data: "), b...), '\n', '\n'))
	}
	base := completion{ID: "chatcmpl-big", Object: "chat.completion.chunk", Created: 1700000000, Model: "fake"}
	c := base
	c.Choices = []choice{{Delta: &msg{Role: "assistant", Content: ""}}}
	event(c)
	for rest := content; rest != ""; {
		n := min(len(rest), 64<<10)
		c := base
		c.Choices = []choice{{Delta: &msg{Content: rest[:n]}}}
		event(c)
		rest = rest[n:]
	}
	c = base
	c.Choices = []choice{{Delta: &msg{}, FinishReason: &stop}}
	event(c)
	c = base
	c.Choices, c.Usage = []choice{}, u
	event(c)
	s.chunks = append(s.chunks, []byte("data: [DONE]\n\n"))

	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		var req struct {
			Stream bool `json:"stream"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(s.body)))
			w.Write(s.body)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		bw := bufio.NewWriterSize(w, 256<<10)
		for _, ch := range s.chunks {
			if _, err := bw.Write(ch); err != nil {
				return
			}
		}
		bw.Flush()
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.url = "http://" + l.Addr().String() + "/v1"
	s.http = &http.Server{Handler: mux}
	go s.http.Serve(l)
	return s, nil
}
