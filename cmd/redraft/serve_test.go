package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redraft/redraft/internal/doccheck"
	"github.com/redraft/redraft/rewards/execute"
	"github.com/redraft/redraft/rewards/mathgrade"
)

func newTestRewardServer(t *testing.T, mod func(*serveConfig)) (*httptest.Server, *rewardServer) {
	t.Helper()
	cfg := defaultServeConfig()
	if mod != nil {
		mod(&cfg)
	}
	sc, err := newScorer(context.Background(), &codeFlags{verifier: "math"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rs := newRewardServer(cfg, sc)
	ts := httptest.NewUnstartedServer(rs)
	ts.Config = rs.httpServer()
	ts.Config.Handler = rs
	ts.Start()
	t.Cleanup(ts.Close)
	return ts, rs
}

func post(t *testing.T, url, body string) (int, map[string]any, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp.StatusCode, m, string(b)
}

// TestServeOpenRLHF: OpenRLHF's request (query = the decoded prompt and
// response, prompts, labels) gets rewards for the response part only, in
// order, with scores equal to rewards and extra_logs of the same length.
func TestServeOpenRLHF(t *testing.T) {
	ts, _ := newTestRewardServer(t, nil)
	prompt := "<|im_start|>user\nJanet has 16 eggs ... Example: #### 99<|im_end|>\n<|im_start|>assistant\n"
	req := map[string]any{
		"query": []string{
			prompt + "She sells 9 eggs at $2: 9 * 2 = 18.\n#### 18<|im_end|>",
			prompt + "She makes 20 dollars.\n#### 20<|im_end|>",
			prompt + "First we count the eggs she has left.\nThen we multiply by the price<|im_end|>", // the prompt's "#### 99" must not count
			" " + strings.TrimSpace(prompt) + " The answer is \\boxed{99}.",
		},
		"prompts": []string{prompt, prompt, prompt, prompt},
		"labels":  []any{"18", "18", "99", 99},
	}
	b, _ := json.Marshal(req)
	for _, path := range []string{"/get_reward", "/"} {
		code, m, raw := post(t, ts.URL+path, string(b))
		if code != 200 {
			t.Fatalf("%s: %d %s", path, code, raw)
		}
		if got := fmt.Sprint(m["rewards"]); got != "[1 0 0 1]" {
			t.Errorf("%s: rewards %s (%s)", path, got, raw)
		}
		if fmt.Sprint(m["scores"]) != fmt.Sprint(m["rewards"]) {
			t.Errorf("scores %v", m["scores"])
		}
		logs, _ := m["extra_logs"].(map[string]any)
		if got := fmt.Sprint(logs["answer_found"]); got != "[1 1 0 1]" {
			t.Errorf("extra_logs %v", logs)
		}
	}
	// Without prompts the whole query is graded.
	code, m, raw := post(t, ts.URL+"/get_reward", `{"query": ["#### 5"], "labels": ["5"]}`)
	if code != 200 || fmt.Sprint(m["rewards"]) != "[1]" {
		t.Errorf("no prompts: %d %s", code, raw)
	}
}

// TestServeVerl: compute_score's keyword arguments, one call or a batch,
// answer what compute_score returns; a list ground truth accepts any of its
// answers; extra_info's finish_reason counts.
func TestServeVerl(t *testing.T) {
	ts, _ := newTestRewardServer(t, nil)
	code, m, raw := post(t, ts.URL+"/verl/compute_score", `{"data_source": "openai/gsm8k", "solution_str": "so 9 * 2 = 18\n#### 18", "ground_truth": "18", "extra_info": {"index": 3}}`)
	if code != 200 || m["score"] != 1.0 || m["acc"] != true || m["pred"] != "18" || m["rule"] != "equal:string" {
		t.Errorf("single: %d %s", code, raw)
	}
	body := `{"data_sources": ["a", "b", "c", "d"], "solution_strs": ["\\boxed{7}", "\\boxed{7}", "7", "The answer is $\\frac{2}{4}$"],
		"ground_truths": [["6", 7], ["6", "8"], "7", "\\frac12"], "extra_infos": [null, {}, {"finish_reason": "length"}, {"finish_reason": "stop"}]}`
	resp, err := http.Post(ts.URL+"/verl/compute_score", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []verlResult
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("batch: %d %v", resp.StatusCode, err)
	}
	want := []float64{1, 0, 0, 1}
	for i, r := range out {
		if r.Score != want[i] || r.Acc != (want[i] == 1) {
			t.Errorf("batch %d: %+v", i, r)
		}
	}
	if out[2].Rule != "no_answer:cut_off" {
		t.Errorf("finish_reason length: %+v", out[2])
	}
}

// TestServeErrors: malformed JSON, wrong shapes, oversized bodies (by
// Content-Length and streamed), too many items, wrong methods and paths
// get 4xx with a message that says what is wrong; the server goes on.
func TestServeErrors(t *testing.T) {
	ts, _ := newTestRewardServer(t, func(c *serveConfig) { c.maxBody = 4096; c.memory = 8192; c.maxItems = 10 })
	for _, tc := range []struct {
		path, body string
		status     int
		says       string
	}{
		{"/get_reward", `{"query": ["a"], "labels": ["a"`, 400, "malformed JSON at byte"},
		{"/get_reward", `{"query": ["a"], "labels": ["a"]}{`, 400, "malformed JSON"},
		{"/get_reward", `not json`, 400, "malformed JSON at byte 2: invalid character"},
		{"/get_reward", ``, 400, "the body is empty"},
		{"/get_reward", `{"query": "a", "labels": ["a"]}`, 400, `field "query": want a list, got JSON string`},
		{"/get_reward", `{"query": [1], "labels": ["a"]}`, 400, `field "query"`},
		{"/get_reward", `{"labels": ["a"]}`, 400, `field "query": missing`},
		{"/get_reward", `{"query": ["a"]}`, 400, `field "labels": missing`},
		{"/get_reward", `{"query": ["a", "b"], "labels": ["a"]}`, 400, `"labels": 1 entries for 2 queries`},
		{"/get_reward", `{"query": ["a"], "prompts": [], "labels": ["a"]}`, 400, `"prompts": 0 entries for 1 queries`},
		{"/get_reward", `{"query": ["1","1","1","1","1","1","1","1","1","1","1"], "labels": ["1","1","1","1","1","1","1","1","1","1","1"]}`, 413, "over the 10 limit (--max-items)"},
		{"/get_reward", `{"query": ["` + strings.Repeat("x", 5000) + `"], "labels": ["a"]}`, 413, "over the 4096-byte limit (--max-body)"},
		{"/verl/compute_score", `{"data_source": "x"}`, 400, `"solution_str": missing`},
		{"/verl/compute_score", `{"solution_strs": ["a"], "ground_truths": []}`, 400, `"ground_truths": 0 entries for 1 solutions`},
		{"/verl/compute_score", `{"solution_str": "a", "ground_truth": {"x": [}`, 400, "malformed JSON"},
		{"/verl/compute_score", `[1, 2]`, 400, "want an object"},
		{"/nope", `{}`, 404, "no endpoint /nope"},
	} {
		code, m, raw := post(t, ts.URL+tc.path, tc.body)
		msg, _ := m["error"].(string)
		if code != tc.status || !strings.Contains(msg, tc.says) {
			t.Errorf("%s %.60q: %d %s, want %d with %q", tc.path, tc.body, code, raw, tc.status, tc.says)
		}
	}
	// A streamed (chunked) body over the limit: no Content-Length to refuse
	// up front, cut off while reading.
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 10; i++ {
			pw.Write([]byte(strings.Repeat(" ", 1000)))
		}
		pw.Close()
	}()
	resp, err := http.Post(ts.URL+"/get_reward", "application/json", pr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || !strings.Contains(string(b), "--max-body") {
		t.Errorf("chunked oversized body: %d %s", resp.StatusCode, b)
	}
	resp, err = http.Get(ts.URL + "/get_reward")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 405 || !strings.Contains(string(b), "use POST") {
		t.Errorf("GET /get_reward: %d %s", resp.StatusCode, b)
	}
	resp, err = http.Get(ts.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"status":"ok","verifier":"math"`) {
		t.Errorf("health: %d %s", resp.StatusCode, b)
	}
	if code, m, _ := post(t, ts.URL+"/get_reward", `{"query": ["#### 4"], "labels": ["4"]}`); code != 200 || fmt.Sprint(m["rewards"]) != "[1]" {
		t.Errorf("after the errors: %d %v", code, m)
	}
}

// TestServeFlood: 200 clients at once, each posting a 512 KiB batch, into
// a server with 2 MiB of body memory: every request is answered (200, or
// 503 once it waited --queue-timeout), the answers are right, and the heap
// stays bounded by the memory budget, not by what the clients send (100 MiB).
func TestServeFlood(t *testing.T) {
	ts, rs := newTestRewardServer(t, func(c *serveConfig) {
		c.maxBody, c.memory, c.queueTimeout = 1<<20, 2<<20, 60*time.Second
	})
	const clients = 200
	// One shared body: what the clients hold is not the server's.
	// Each query is a long prompt (which the server strips, as OpenRLHF
	// sends it) and a short response: the bytes are many, the grading is
	// cheap, so the test measures the server's memory, not the grader.
	prompt := "<|im_start|>user\n" + strings.Repeat("Add the numbers step by step and state the total. ", 80) + "<|im_end|>\n<|im_start|>assistant\n"
	var items, prompts, labels []string
	size := 0
	for i := 0; size < 512<<10; i++ {
		q := fmt.Sprintf("%sSo the total is %d + %d = %d.\n#### %d<|im_end|>", prompt, i, i, 2*i, 2*i)
		items, prompts = append(items, q), append(prompts, prompt)
		labels = append(labels, fmt.Sprint(2*i+i%2))
		size += len(q) + len(prompt)
	}
	body, _ := json.Marshal(map[string]any{"query": items, "prompts": prompts, "labels": labels})
	// Collect often, so that the peak measures what is live rather than
	// garbage awaiting the next cycle.
	defer debug.SetGCPercent(debug.SetGCPercent(20))
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	var ok, busy, bad atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 2 * time.Minute}
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Post(ts.URL+"/get_reward", "application/json", bytes.NewReader(body))
			if err != nil {
				bad.Add(1)
				return
			}
			defer resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				var out struct{ Rewards []float64 }
				if json.NewDecoder(resp.Body).Decode(&out) != nil || len(out.Rewards) != len(items) {
					bad.Add(1)
					return
				}
				for i, r := range out.Rewards {
					if r != float64(1-i%2) {
						bad.Add(1)
						return
					}
				}
				ok.Add(1)
			case 503:
				busy.Add(1)
			default:
				bad.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	growth := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("%d ok, %d busy (503), %d bad; heap peak %d MiB over a %d MiB base; %d responses graded",
		ok.Load(), busy.Load(), bad.Load(), growth>>20, base.HeapInuse>>20, rs.served.Load())
	if bad.Load() != 0 || ok.Load() == 0 || ok.Load()+busy.Load() != clients {
		t.Errorf("%d ok, %d busy, %d bad of %d", ok.Load(), busy.Load(), bad.Load(), clients)
	}
	// The budget is 2 MiB of bodies; decoded strings, verdicts, connection
	// buffers and the clients' own goroutines come on top: far below the
	// 100 MiB the clients send.
	if growth > 32<<20 {
		t.Errorf("heap grew by %d MiB during the flood", growth>>20)
	}
}

// TestServeQueueAndRequestTimeout: a request that cannot get memory within
// --queue-timeout gets 503 with Retry-After; one whose grading outlives
// --request-timeout gets 503 and the grading stops.
func TestServeQueueAndRequestTimeout(t *testing.T) {
	ts, rs := newTestRewardServer(t, func(c *serveConfig) { c.maxBody, c.memory, c.queueTimeout = 1024, 1024, 50*time.Millisecond })
	rs.mem.Acquire(context.Background(), 1024) // memory held by a slow request
	resp, err := http.Post(ts.URL+"/get_reward", "application/json", strings.NewReader(`{"query": ["1"], "labels": ["1"]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(b), "the server is busy") {
		t.Errorf("no memory: %d %s", resp.StatusCode, b)
	}
	rs.mem.Release(1024)

	slow := &slowScorer{delay: 20 * time.Millisecond}
	cfg := defaultServeConfig()
	cfg.requestTimeout = 100 * time.Millisecond
	ts2 := httptest.NewServer(newRewardServer(cfg, slow))
	defer ts2.Close()
	q := strings.Repeat(`"1",`, 99) + `"1"`
	code, m, raw := post(t, ts2.URL+"/get_reward", `{"query": [`+q+`], "labels": [`+q+`]}`)
	if msg, _ := m["error"].(string); code != 503 || !strings.Contains(msg, "--request-timeout") {
		t.Errorf("slow grading: %d %s", code, raw)
	}
	if n := slow.graded.Load(); n >= 100 {
		t.Errorf("grading went on after the timeout: %d items", n)
	}
}

type slowScorer struct {
	delay  time.Duration
	graded atomic.Int64
}

func (s *slowScorer) name() string { return "slow" }
func (s *slowScorer) close()       {}
func (s *slowScorer) score(ctx context.Context, items []scoreItem) []scoreResult {
	out := make([]scoreResult, len(items))
	for range items {
		select {
		case <-ctx.Done():
			return out
		case <-time.After(s.delay):
		}
		s.graded.Add(1)
	}
	return out
}

// TestServeVerdictsMatchGrade: the server's rewards are redraft grade's
// verdicts on the public grader cases.
func TestServeVerdictsMatchGrade(t *testing.T) {
	ts, _ := newTestRewardServer(t, nil)
	f, err := os.Open(filepath.Join(repoRoot, "rewards", "mathgrade", "testdata", "public_cases.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var golds, preds []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var c struct{ Gold, Prediction *string }
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		g, p := "", ""
		if c.Gold != nil {
			g = *c.Gold
		}
		if c.Prediction != nil {
			p = *c.Prediction
		}
		golds, preds = append(golds, g), append(preds, p)
	}
	body, _ := json.Marshal(map[string]any{"query": preds, "labels": golds})
	code, m, raw := post(t, ts.URL+"/get_reward", string(body))
	if code != 200 {
		t.Fatalf("%d %.200s", code, raw)
	}
	rewards, _ := m["rewards"].([]any)
	g := mathgrade.New(mathgrade.Options{})
	for i := range golds {
		want := 0.0
		if g.GradeFinished(preds[i], golds[i], "").Correct {
			want = 1
		}
		if rewards[i] != want {
			t.Errorf("case %d: reward %v, redraft grade says %v", i, rewards[i], want)
		}
	}
}

// TestServePlugin: --verifier plugin sends each response with its label as
// the reference to the plug-in and returns its scores.
func TestServePlugin(t *testing.T) {
	script := filepath.Join(t.TempDir(), "plugin.py")
	err := os.WriteFile(script, []byte(`import json, sys
print(json.dumps({"protocol": "redraft-verifier/1", "name": "echo"}), flush=True)
for line in sys.stdin:
    r = json.loads(line)
    s = None if r["response"] == "?" else (0.5 if r["response"] == r.get("reference") else 0.0)
    print(json.dumps({"id": r["id"], "score": s, "reason": "unreadable" if s is None else ""}), flush=True)
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaultServeConfig()
	sc, err := newScorer(context.Background(), &codeFlags{verifier: "plugin", command: "python3 " + script, timeout: 10 * time.Second}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.close()
	ts := httptest.NewServer(newRewardServer(cfg, sc))
	defer ts.Close()
	code, m, raw := post(t, ts.URL+"/get_reward", `{"query": ["a", "b", "?"], "labels": ["a", "c", "x"]}`)
	if code != 200 || fmt.Sprint(m["rewards"]) != "[0.5 0 0]" {
		t.Errorf("plugin: %d %s", code, raw)
	}
	code, m, raw = post(t, ts.URL+"/verl/compute_score", `{"solution_str": "?", "ground_truth": "x"}`)
	if code != 200 || m["score"] != 0.0 || m["rule"] != "error:unverified" || m["reason"] != "unreadable" {
		t.Errorf("plugin verl: %d %s", code, raw)
	}
}

// TestServeCommand runs redraft serve on a free port: it prints its URL,
// answers /health, and stops with exit 0 when cancelled (Ctrl+C).
func TestServeCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--workers", "2"}, strings.NewReader(""), pw, &stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	url := strings.Fields(line[strings.Index(line, "http://"):])[0]
	if !strings.HasPrefix(line, "redraft serve: math verifier at http://127.0.0.1:") {
		t.Errorf("first line %q", line)
	}
	resp, err := http.Get(url + "health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("health: %d", resp.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	if !strings.Contains(stderr.String(), "GET /health 200") {
		t.Errorf("request log: %q", stderr.String())
	}
	if code, _, errOut := redraft(t, "serve", "--memory", "1", "--max-body", "2"); code != 2 || !strings.Contains(errOut, "--memory at least --max-body") {
		t.Errorf("bad limits: %d %s", code, errOut)
	}
}

func TestResponseOf(t *testing.T) {
	for _, tc := range []struct{ q, p, want string }{
		{"PROMPT answer", "PROMPT ", "answer"},
		{"<s> PROMPT answer", "PROMPT", " answer"},
		{"PROMPT answer", " PROMPT\n", " answer"},
		{"other", "PROMPT", "other"},
		{"all", "", "all"},
	} {
		if got := responseOf(tc.q, tc.p); got != tc.want {
			t.Errorf("responseOf(%q, %q) = %q, want %q", tc.q, tc.p, got, tc.want)
		}
	}
}

// TestServeDocs sends the requests docs/serve.md shows (its curl lines and
// the JSON requests of its error table) to a server and compares the
// answers with the page's.
func TestServeDocs(t *testing.T) {
	ts, _ := newTestRewardServer(t, nil)
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs", "serve.md"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	var got []string
	for _, m := range regexp.MustCompile(`(?m)^curl -s http://127\.0\.0\.1:5050(/\S*) -d '(.*)'$`).FindAllStringSubmatch(page, -1) {
		code, _, raw := post(t, ts.URL+m[1], m[2])
		if code != 200 {
			t.Errorf("%s: %d %s", m[1], code, raw)
		}
		got = append(got, strings.TrimSpace(raw))
	}
	var want []string
	for _, blk := range doccheck.Checked(t, repoRoot, "docs/serve.md", "TestServeDocs") {
		want = append(want, strings.Split(strings.TrimSpace(blk), "\n")...)
	}
	if len(got) != 3 || len(want) != len(got) {
		t.Fatalf("%d requests, %d answers on the page", len(got), len(want))
	}
	for i := range want {
		if want[i] != got[i] {
			t.Errorf("answer %d:\n page %s\n got  %s", i, want[i], got[i])
		}
	}
	rows := regexp.MustCompile("(?m)^\\| `(\\{[^`]*)` \\| (\\d+) \\| `(.*)` \\|$").FindAllStringSubmatch(page, -1)
	if len(rows) != 3 {
		t.Fatalf("%d error rows", len(rows))
	}
	for _, r := range rows {
		code, m, raw := post(t, ts.URL+"/get_reward", r[1])
		if fmt.Sprint(code) != r[2] || m["error"] != r[3] {
			t.Errorf("%s: %d %s, page says %s %s", r[1], code, raw, r[2], r[3])
		}
	}
	req, _ := http.NewRequest("POST", ts.URL+"/get_reward", io.LimitReader(zeros{}, 40<<20))
	req.ContentLength = 40 << 20
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if row := "| a 40 MiB body | 413 | `" + e.Error + "` |"; !strings.Contains(page, row) || resp.StatusCode != 413 {
		t.Errorf("40 MiB body: %d, the page lacks %s", resp.StatusCode, row)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// TestServePython: --verifier python runs the program in each response
// against the tests of its label (a JSON object: a string for OpenRLHF,
// an object for verl) in the sandbox; a label that is no task is an error
// verdict, not a failed request.
func TestServePython(t *testing.T) {
	if _, err := execute.New(execute.Options{}); err != nil {
		if errors.Is(err, execute.ErrUnavailable) && os.Getenv("REDRAFT_REQUIRE_SANDBOX") != "1" {
			t.Skipf("SKIPPING: no sandbox: %v", err)
		}
		t.Fatal(err)
	}
	cfg := defaultServeConfig()
	sc, err := newScorer(context.Background(), &codeFlags{verifier: "python", timeout: 10 * time.Second, slots: 2}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.close()
	ts := httptest.NewServer(newRewardServer(cfg, sc))
	defer ts.Close()
	task := map[string]string{"tests": "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(3) == 9\n", "entry_point": "sq"}
	tb, _ := json.Marshal(task)
	right, wrong := "```python\ndef sq(x):\n    return x * x\n```", "```python\ndef sq(x):\n    return x + x\n```"
	body, _ := json.Marshal(map[string]any{"query": []string{right, wrong, right}, "labels": []string{string(tb), string(tb), "4"}})
	code, m, raw := post(t, ts.URL+"/get_reward", string(body))
	if code != 200 || fmt.Sprint(m["rewards"]) != "[1 0 0]" || fmt.Sprint(m["rules"]) != "[code:pass code:tests_failed error:no_tests]" {
		t.Errorf("python: %d %s", code, raw)
	}
	body, _ = json.Marshal(map[string]any{"solution_str": right, "ground_truth": task})
	if code, m, raw = post(t, ts.URL+"/verl/compute_score", string(body)); code != 200 || m["score"] != 1.0 {
		t.Errorf("python verl: %d %s", code, raw)
	}
}
