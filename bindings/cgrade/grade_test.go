package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redraft/redraft/rewards/mathgrade"
)

type pair struct {
	Gold       *string `json:"gold"`
	Prediction *string `json:"prediction"`
}

func publicPairs(t *testing.T) []item {
	t.Helper()
	f, err := os.Open("../../rewards/mathgrade/testdata/public_cases.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []item
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var p pair
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		it := item{}
		if p.Gold != nil {
			it.gold = *p.Gold
		}
		if p.Prediction != nil {
			it.pred = *p.Prediction
		}
		out = append(out, it)
	}
	if len(out) < 388 {
		t.Fatalf("%d public cases", len(out))
	}
	return out
}

// TestBatchMatchesGrader: the library's verdicts (one at a time and in a
// batch on 1 and 4 workers) are the grader's, field for field, in order.
func TestBatchMatchesGrader(t *testing.T) {
	items := publicPairs(t)
	g := mathgrade.New(mathgrade.Options{})
	want := make([]verdict, len(items))
	for i, it := range items {
		want[i] = verdictOf(g.GradeFinished(it.pred, it.gold, ""))
	}
	for i, it := range items {
		if got := gradeBounded(it, defaultTimeout); got != want[i] {
			t.Fatalf("case %d: %+v, want %+v", i, got, want[i])
		}
	}
	for _, w := range []int{1, 4, 0} {
		got := gradeBatch(items, clampTimeout(0), w)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("workers %d, case %d: %+v, want %+v", w, i, got[i], want[i])
			}
		}
	}
	if got := gradeBatch(nil, defaultTimeout, 0); len(got) != 0 {
		t.Errorf("empty batch: %v", got)
	}
}

// TestHardDeadline: a grading that never returns (a simulated grader bug)
// costs its caller hardLimit, not forever; the abandoned gradings are
// counted, and past maxStragglers calls are refused at once until they end.
func TestHardDeadline(t *testing.T) {
	release := make(chan struct{})
	old := gradeFunc
	gradeFunc = func(*mathgrade.Grader, item) mathgrade.Result {
		<-release
		return mathgrade.Result{Rule: "late"}
	}
	defer func() { gradeFunc = old }()
	timeout := 20 * time.Millisecond
	start := time.Now()
	v := gradeBounded(item{gold: "1", pred: "1"}, timeout)
	if took := time.Since(start); took > hardLimit(timeout)+time.Second || took < hardLimit(timeout) {
		t.Errorf("returned after %v, hard limit %v", took, hardLimit(timeout))
	}
	if v.Rule != "error:deadline" || v.Correct || !strings.Contains(v.Reason, "did not finish") {
		t.Errorf("verdict %+v", v)
	}
	var wg sync.WaitGroup
	for i := 0; i < maxStragglers; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); gradeBounded(item{}, timeout) }()
	}
	wg.Wait()
	if n := stragglers.Load(); n < maxStragglers {
		t.Fatalf("%d stragglers", n)
	}
	start = time.Now()
	if v := gradeBounded(item{}, timeout); v.Rule != "error:overloaded" || time.Since(start) > time.Second {
		t.Errorf("over the straggler cap: %+v after %v", v, time.Since(start))
	}
	if e := extractBounded("#### 5"); e.Error != "error:overloaded" {
		t.Errorf("extract over the cap: %+v", e)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for stragglers.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := stragglers.Load(); n != 0 {
		t.Fatalf("%d stragglers after release", n)
	}
	gradeFunc = old
	if v := gradeBounded(item{gold: "2", pred: "#### 2"}, defaultTimeout); !v.Correct {
		t.Errorf("after release: %+v", v)
	}
}

func TestExtractAndJSON(t *testing.T) {
	if e := extractBounded("so \\boxed{x<y & z>0}"); !e.Found || e.Rule != "boxed" || e.Answer != "x<y & z>0" {
		t.Errorf("extract: %+v", e)
	}
	b := string(encodeJSON(extractBounded("so \\boxed{x<y & z>0}")))
	if b != `{"answer":"x<y & z>0","rule":"boxed","found":true}` {
		t.Errorf("JSON %s", b)
	}
	b = string(encodeJSON(gradeBounded(item{gold: "1", pred: "\x00\xff"}, defaultTimeout)))
	if strings.ContainsRune(b, 0) || !json.Valid([]byte(b)) {
		t.Errorf("JSON with NUL or invalid: %q", b)
	}
	for ms, want := range map[int64]time.Duration{0: defaultTimeout, -5: defaultTimeout, 1: time.Millisecond,
		1500: 1500 * time.Millisecond, 1 << 40: maxTimeout} {
		if got := clampTimeout(ms); got != want {
			t.Errorf("clampTimeout(%d) = %v, want %v", ms, got, want)
		}
	}
	first, again := graderFor(time.Second), graderFor(time.Second)
	if first != again {
		t.Error("graders are not reused")
	}
}

// TestBatchWatchdog: in a batch, an item whose grading never returns gets
// error:deadline after the hard limit, its worker is replaced, the other
// items are graded, and the abandoned worker is a straggler until it ends.
func TestBatchWatchdog(t *testing.T) {
	release := make(chan struct{})
	old := gradeFunc
	gradeFunc = func(g *mathgrade.Grader, it item) mathgrade.Result {
		if it.pred == "hang" {
			<-release
		}
		return old(g, it)
	}
	defer func() { gradeFunc = old }()
	var items []item
	for i := 0; i < 40; i++ {
		p := fmt.Sprintf("#### %d", i)
		if i == 3 || i == 17 {
			p = "hang"
		}
		items = append(items, item{gold: fmt.Sprint(i), pred: p})
	}
	// Long enough that an item graded normally never meets the watchdog,
	// even on a loaded machine under -race.
	timeout := 200 * time.Millisecond
	start := time.Now()
	out := gradeBatch(items, timeout, 2)
	if took := time.Since(start); took > 3*hardLimit(timeout)+time.Second {
		t.Errorf("batch took %v", took)
	}
	for i, v := range out {
		switch {
		case i == 3 || i == 17:
			if v.Rule != "error:deadline" {
				t.Errorf("item %d: %+v", i, v)
			}
		case !v.Correct:
			t.Errorf("item %d: %+v", i, v)
		}
	}
	if n := stragglers.Load(); n != 2 {
		t.Errorf("%d stragglers, want 2", n)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for stragglers.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := stragglers.Load(); n != 0 {
		t.Fatalf("%d stragglers after release", n)
	}
}
