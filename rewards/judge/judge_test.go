package judge

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/fakeserver"
)

const (
	question  = "Janet's ducks lay 16 eggs per day. She eats 3 and bakes with 4. She sells the rest at $2 each. How much does she make?"
	response  = "16 - 3 - 4 = 9 eggs. 9 * 2 = $18.\nA: 18"
	reference = "18"
)

func newJudge(t *testing.T, srv *fakeserver.Server, model, tmpl string, cache *Cache) *Judge {
	t.Helper()
	tm, err := BuiltinTemplate(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	return &Judge{
		Name:     model,
		Policy:   rollout.NewOpenAIPolicy(rollout.EndpointConfig{BaseURL: srv.BaseURL(), Model: model, Timeout: rollout.Duration(10 * time.Second)}),
		Model:    model,
		Template: tm,
		Seed:     7,
		Cache:    cache,
	}
}

func TestEvaluateAgainstServer(t *testing.T) {
	cases := []struct {
		name      string
		tmpl      string
		reply     fakeserver.Reply
		maxTokens int
		score     float64 // when reason == ""
		source    string
		reason    string // substrings joined by "|"; "" means a score is expected
	}{
		{"well formed", "correctness", fakeserver.Reply{Text: "The final answer 18 matches the reference and the steps are right. Score: 9"}, 0, 0.9, "content", ""},
		{"fraction", "correctness", fakeserver.Reply{Text: "Score: 7.5/10"}, 0, 0.75, "content", ""},
		{"score only in reasoning_content", "correctness", fakeserver.Reply{Text: "The response is right.", Reasoning: "Check: 16-3-4=9, 9*2=18. Matches. Score: 10"}, 0, 1, "reasoning", ""},
		{"empty content, reasoning only", "correctness", fakeserver.Reply{Text: "", Reasoning: "Score: 4"}, 0, 0.4, "reasoning", ""},
		{"helpfulness 1-10", "helpfulness", fakeserver.Reply{Text: "Clear and correct. Rating: [[10]]"}, 0, 1, "content", ""},
		{"helpfulness bottom", "helpfulness", fakeserver.Reply{Text: "Rating: [[1]]"}, 0, 0, "content", ""},
		{"critique verdict", "critique", fakeserver.Reply{Text: "Step 1 subtracts correctly. Step 2 doubles correctly. Final answer 18 agrees. Verdict: correct"}, 0, 1, "content", ""},
		{"critique incorrect", "critique", fakeserver.Reply{Text: "Step 2 is wrong. Verdict: incorrect"}, 0, 0, "content", ""},

		{"garbage", "correctness", fakeserver.Reply{Text: "\x00\x01 lorem ipsum }}{{ ### ###"}, 0, 0, "", "no score found in judge output"},
		{"empty reply", "correctness", fakeserver.Reply{Text: ""}, 0, 0, "", "no score found in judge output"},
		{"server error", "correctness", fakeserver.Reply{Status: 500}, 0, 0, "", "judge call failed: |HTTP 500"},
		{"rate limited", "correctness", fakeserver.Reply{Status: 429}, 0, 0, "", "judge call failed: |HTTP 429"},
		{"out of range", "correctness", fakeserver.Reply{Text: "Outstanding. Score: 12"}, 0, 0, "content", "score 12 outside 0-10"},
		{"negative", "correctness", fakeserver.Reply{Text: "Score: -1"}, 0, 0, "content", "score -1 outside 0-10"},
		{"ambiguous", "correctness", fakeserver.Reply{Text: "Score: 6 [[9]]"}, 0, 0, "content", "disagree"},
		{"out of range in reasoning", "correctness", fakeserver.Reply{Text: "ok", Reasoning: "Score: 11"}, 0, 0, "reasoning", "score 11 outside 0-10"},
		{"wrong scale", "helpfulness", fakeserver.Reply{Text: "Rating: [[0]]"}, 0, 0, "content", "score 0 outside 1-10"},
		{"cut off", "correctness", fakeserver.Reply{Text: "Let me check each step of the response carefully before grading Score: 8"}, 5, 0, "", "no score found in judge output (finish_reason=length"},
		{"verdict word on 0-10", "correctness", fakeserver.Reply{Text: "Verdict: correct"}, 0, 0, "", "no score found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return c.reply })
			defer srv.Close()
			j := newJudge(t, srv, "judge-m", c.tmpl, nil)
			if c.maxTokens > 0 {
				j.Sampling.MaxTokens = &c.maxTokens
			}
			v := j.Evaluate(context.Background(), question, response, reference)
			if srv.Count() != 1 {
				t.Fatalf("%d calls", srv.Count())
			}
			if v.Judge != "judge-m" || v.Source != c.source {
				t.Errorf("judge %q source %q, want source %q", v.Judge, v.Source, c.source)
			}
			if c.reason != "" {
				if v.Score != nil || v.Raw != nil {
					t.Fatalf("score %v raw %v, want nil (%s)", *v.Score, v.Raw, c.reason)
				}
				for _, want := range strings.Split(c.reason, "|") {
					if !strings.Contains(v.Reason, want) {
						t.Fatalf("reason %q, want %q", v.Reason, want)
					}
				}
				return
			}
			if v.Score == nil {
				t.Fatalf("no score: %s", v.Reason)
			}
			if *v.Score != c.score || v.Reason != "" {
				t.Fatalf("score %v (%q), want %v", *v.Score, v.Reason, c.score)
			}
		})
	}
}

func TestEvaluateRequest(t *testing.T) {
	srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{Text: "Score: 5"} })
	defer srv.Close()
	j := newJudge(t, srv, "judge-m", "correctness", nil)
	j.Evaluate(context.Background(), question, response, reference)
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Temperature == nil || *r.Temperature != 0 {
		t.Errorf("temperature %v, want an explicit 0", r.Temperature)
	}
	if r.Seed == nil || *r.Seed != 7 {
		t.Errorf("seed %v", r.Seed)
	}
	if r.Model != "judge-m" || len(r.Messages) != 2 || r.Messages[0].Role != "system" {
		t.Fatalf("request %+v", r)
	}
	got := dataBlock(t, r.Messages[1].Content, fenceTag(question, response, reference))
	if got != response {
		t.Errorf("data block %q", got)
	}
	if !strings.Contains(r.Messages[1].Content, "Reference answer:\n18") {
		t.Errorf("reference missing:\n%s", r.Messages[1].Content)
	}
}

func TestEvaluateWithoutCall(t *testing.T) {
	srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{Text: "Verdict: correct"} })
	defer srv.Close()
	j := newJudge(t, srv, "critic", "critique", nil)
	v := j.Evaluate(context.Background(), question, response, "  ")
	if v.Score != nil || !strings.Contains(v.Reason, "needs a reference answer") {
		t.Errorf("verdict %+v", v)
	}
	bad := &Judge{Name: "x", Policy: j.Policy, Template: Template{Name: "broken", User: "no placeholder", Scale: scale10}}
	if v := bad.Evaluate(context.Background(), "q", "r", ""); v.Score != nil || !strings.Contains(v.Reason, "no {response} placeholder") {
		t.Errorf("verdict %+v", v)
	}
	if v := (&Judge{Name: "y"}).Evaluate(context.Background(), "q", "r", ""); v.Score != nil || v.Reason != "judge has no policy" {
		t.Errorf("verdict %+v", v)
	}
	if srv.Count() != 0 {
		t.Errorf("%d calls", srv.Count())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if v := j.Evaluate(ctx, question, response, reference); v.Score != nil || !strings.HasPrefix(v.Reason, "judge call failed:") {
		t.Errorf("cancelled: %+v", v)
	}
}

func TestCacheAvoidsRepeatCalls(t *testing.T) {
	srv := fakeserver.New(func(r *fakeserver.Request) fakeserver.Reply {
		return fakeserver.Reply{Text: "Score: 8", Reasoning: "thinking about " + r.Model}
	})
	defer srv.Close()
	dir := t.TempDir()
	cache, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	j := newJudge(t, srv, "judge-m", "correctness", cache)

	calls := int64(0)
	step := func(name string, j *Judge, wantCall bool) {
		t.Helper()
		v := j.Evaluate(ctx, question, response, reference)
		if wantCall {
			calls++
		}
		if srv.Count() != calls {
			t.Fatalf("%s: %d server calls, want %d", name, srv.Count(), calls)
		}
		if v.Score == nil || *v.Score != 0.8 || v.Cached == wantCall {
			t.Fatalf("%s: verdict %+v", name, v)
		}
	}
	step("first", j, true)
	step("same request", j, false)

	temp := 0.7
	j2 := *j
	j2.Sampling.Temperature = &temp
	step("changed temperature", &j2, true)
	step("changed temperature again", &j2, false)

	j3 := *j
	j3.Model = "judge-other"
	step("changed model", &j3, true)

	j4 := *j
	j4.Seed = 8
	step("changed seed", &j4, true)

	mt := 512
	j5 := *j
	j5.Sampling.MaxTokens = &mt
	step("changed max_tokens", &j5, true)

	if v := j.Evaluate(ctx, question, response+" ", reference); v.Cached || srv.Count() != calls+1 {
		t.Fatalf("changed response: %+v", v)
	}
	calls++
	if cache.Len() != 6 {
		t.Errorf("cache holds %d entries, want 6", cache.Len())
	}
	if err := cache.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen from disk: nothing is paid again.
	cache2, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cache2.Close()
	if cache2.Len() != 6 {
		t.Fatalf("reopened cache holds %d entries", cache2.Len())
	}
	j.Cache, j3.Cache = cache2, cache2
	step("after reopen", j, false)
	step("after reopen, other model", &j3, false)
	if cache2.Err() != nil {
		t.Fatal(cache2.Err())
	}
}

func TestCacheDoesNotStoreFailures(t *testing.T) {
	var mu sync.Mutex
	fail := true
	srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return fakeserver.Reply{Status: 503}
		}
		return fakeserver.Reply{Text: "garbage without a score"}
	})
	defer srv.Close()
	cache, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	j := newJudge(t, srv, "m", "correctness", cache)
	ctx := context.Background()
	if v := j.Evaluate(ctx, question, response, reference); !strings.HasPrefix(v.Reason, "judge call failed") {
		t.Fatalf("%+v", v)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	// The failure was not cached: the call is made again. The unparseable
	// answer is a real response and is cached.
	for range 2 {
		if v := j.Evaluate(ctx, question, response, reference); v.Reason != "no score found in judge output" {
			t.Fatalf("%+v", v)
		}
	}
	if srv.Count() != 2 {
		t.Fatalf("%d calls, want 2", srv.Count())
	}
}

func TestCacheTornAndCorruptLines(t *testing.T) {
	srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{Text: "Score: 6"} })
	defer srv.Close()
	dir := t.TempDir()
	cache, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	j := newJudge(t, srv, "m", "correctness", cache)
	j.Evaluate(ctx, question, response, reference)
	cache.Close()

	path := filepath.Join(dir, CacheFile)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A corrupt complete line, then a torn last line (a crash mid-write).
	f.WriteString("not json at all\n")
	f.WriteString(`{"v":1,"key":"` + strings.Repeat("a", 64) + `","content":"Score: 1`)
	f.Close()

	cache, err = OpenCache(dir)
	if err != nil {
		t.Fatalf("torn line was fatal: %v", err)
	}
	if cache.Len() != 1 || cache.skipped != 1 {
		t.Fatalf("len %d skipped %d", cache.Len(), cache.skipped)
	}
	j.Cache = cache
	if v := j.Evaluate(ctx, question, response, reference); !v.Cached || srv.Count() != 1 {
		t.Fatalf("after torn line: %+v, %d calls", v, srv.Count())
	}
	// A new entry after the torn tail starts on its own line.
	j.Evaluate(ctx, question, "another response", reference)
	cache.Close()
	cache, err = OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	if cache.Len() != 2 || cache.skipped != 1 {
		t.Fatalf("after append: len %d skipped %d", cache.Len(), cache.skipped)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasSuffix(string(b), "}\n") || strings.Contains(string(b), `"content":"Score: 1`) {
		t.Errorf("file not repaired:\n%s", b)
	}
}

func TestCacheLockedWhileOpen(t *testing.T) {
	dir := t.TempDir()
	c, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c2, err := OpenCache(dir); err == nil {
		c2.Close()
		t.Fatal("second open of a cache in use succeeded")
	}
	c.Close()
	c2, err := OpenCache(dir)
	if err != nil {
		t.Fatalf("reopen after Close: %v", err)
	}
	c2.Close()
}

func TestCacheConcurrentIdenticalCallsPayOnce(t *testing.T) {
	srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{Text: "Score: 3"} })
	srv.Latency = 50 * time.Millisecond
	defer srv.Close()
	cache, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	j := newJudge(t, srv, "m", "correctness", cache)
	var wg sync.WaitGroup
	verdicts := make([]Verdict, 8)
	for i := range verdicts {
		wg.Go(func() { verdicts[i] = j.Evaluate(context.Background(), question, response, reference) })
	}
	wg.Wait()
	if srv.Count() != 1 {
		t.Fatalf("%d calls for 8 identical requests", srv.Count())
	}
	own := 0
	for _, v := range verdicts {
		if v.Score == nil || *v.Score != 0.3 {
			t.Fatalf("%+v", v)
		}
		if !v.Cached {
			own++
		}
	}
	if own != 1 {
		t.Errorf("%d verdicts claim their own call", own)
	}
}

func TestRequestKey(t *testing.T) {
	t0, t1 := 0.0, 1.0
	base := rollout.Request{Messages: []rollout.Message{{Role: "user", Content: "x"}}, Sampling: rollout.Sampling{Temperature: &t0}, Seed: 1}
	k := RequestKey("m", base)
	if len(k) != 64 || k != RequestKey("m", base) {
		t.Fatalf("key %q", k)
	}
	variants := []rollout.Request{
		{Messages: []rollout.Message{{Role: "system", Content: "x"}}, Sampling: base.Sampling, Seed: 1},
		{Messages: []rollout.Message{{Role: "user", Content: "y"}}, Sampling: base.Sampling, Seed: 1},
		{Messages: base.Messages, Sampling: rollout.Sampling{Temperature: &t1}, Seed: 1},
		{Messages: base.Messages, Sampling: rollout.Sampling{Temperature: &t0, Stop: []string{"\n"}}, Seed: 1},
		{Messages: base.Messages, Sampling: rollout.Sampling{Temperature: &t0, Logprobs: true}, Seed: 1},
		{Messages: base.Messages, Sampling: base.Sampling, Seed: 2},
	}
	seen := map[string]bool{k: true}
	for i, v := range variants {
		kv := RequestKey("m", v)
		if seen[kv] {
			t.Errorf("variant %d collides", i)
		}
		seen[kv] = true
	}
	if RequestKey("m2", base) == k {
		t.Error("model not in key")
	}
}

func TestClosedCacheCallsEveryTime(t *testing.T) {
	srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{Text: "Score: 2"} })
	defer srv.Close()
	cache, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	j := newJudge(t, srv, "m", "correctness", cache)
	j.Evaluate(context.Background(), question, response, reference)
	cache.Close()
	for range 2 {
		if v := j.Evaluate(context.Background(), question, response, reference); v.Cached || v.Score == nil || *v.Score != 0.2 {
			t.Fatalf("%+v", v)
		}
	}
	if srv.Count() != 3 || cache.Err() != nil {
		t.Fatalf("%d calls, err %v", srv.Count(), cache.Err())
	}
}
