package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redraft/redraft/rewards/mathgrade"
)

// verdict is one grading decision as the library returns it: the fields of
// redraft grade's output lines, under the same names.
type verdict struct {
	Correct     bool   `json:"correct"`
	Answer      string `json:"answer"`
	Found       bool   `json:"found"`
	ExtractRule string `json:"extract_rule"`
	Rule        string `json:"rule"`
	Pred        string `json:"pred"`
	Gold        string `json:"gold"`
	Reason      string `json:"reason"`
}

func verdictOf(r mathgrade.Result) verdict {
	return verdict{Correct: r.Correct, Answer: r.Answer, Found: r.Found, ExtractRule: r.ExtractRule,
		Rule: r.Rule, Pred: r.Pred, Gold: r.Gold, Reason: r.Reason}
}

// item is one pair to grade. The strings are Go copies: a call that gives
// up at its deadline leaves its grading goroutine running on them, so they
// must not point into the caller's memory.
type item struct {
	gold, pred, finish string
}

// Limits of the library, on top of the grader's own (mathgrade.Options).
const (
	// defaultTimeout is used when the caller passes a timeout <= 0.
	defaultTimeout = mathgrade.DefaultTimeout
	// maxTimeout caps what a caller may ask for.
	maxTimeout = 60 * time.Second
	// maxStragglers is how many abandoned gradings (ones that outlived
	// their hard deadline) may run at once before calls are refused
	// with error:overloaded instead of adding more.
	maxStragglers = 64
)

// graders holds one *mathgrade.Grader per timeout (Graders are immutable
// and safe for concurrent use).
var graders sync.Map // time.Duration -> *mathgrade.Grader

// stragglers counts gradings still running after their call returned.
var stragglers atomic.Int64

func clampTimeout(ms int64) time.Duration {
	if ms <= 0 {
		return defaultTimeout
	}
	d := time.Duration(ms) * time.Millisecond
	if d > maxTimeout || d <= 0 {
		return maxTimeout
	}
	return d
}

func graderFor(timeout time.Duration) *mathgrade.Grader {
	if g, ok := graders.Load(timeout); ok {
		return g.(*mathgrade.Grader)
	}
	g, _ := graders.LoadOrStore(timeout, mathgrade.New(mathgrade.Options{Timeout: timeout}))
	return g.(*mathgrade.Grader)
}

// hardLimit is how long a call waits for its grading: the grader stops
// itself at timeout (its step budget and clock), so this only matters if
// it failed to, and the call returns error:deadline instead of hanging.
func hardLimit(timeout time.Duration) time.Duration {
	return timeout + timeout/2 + 100*time.Millisecond
}

// gradeFunc grades one item; tests replace it to simulate a grader that
// never returns.
var gradeFunc = func(g *mathgrade.Grader, it item) mathgrade.Result {
	return g.GradeFinished(it.pred, it.gold, it.finish)
}

// gradeBounded grades it and returns within hardLimit(timeout) whatever the
// grader does.
func gradeBounded(it item, timeout time.Duration) verdict {
	g := graderFor(timeout)
	v, _ := bounded(timeout, func() verdict { return verdictOf(gradeFunc(g, it)) })
	return v
}

// extraction is what redraft_extract returns.
type extraction struct {
	Answer string `json:"answer"`
	Rule   string `json:"rule"`
	Found  bool   `json:"found"`
	// Error is "error:deadline" or "error:overloaded" when the call gave
	// up, else "".
	Error string `json:"error,omitempty"`
}

// extractBounded is mathgrade.Extract (which has its own default budget)
// under the same hard limit as grading.
func extractBounded(text string) extraction {
	v, ok := bounded(defaultTimeout, func() verdict {
		a, r, found := mathgrade.Extract(text)
		return verdict{Answer: a, ExtractRule: r, Found: found}
	})
	if !ok {
		return extraction{Error: v.Rule}
	}
	return extraction{Answer: v.Answer, Rule: v.ExtractRule, Found: v.Found}
}

// bounded runs f on its own goroutine and waits at most hardLimit(timeout)
// for it. When f does not finish in time, or too many earlier calls are
// still running past theirs, it returns an error verdict and false; f then
// runs on to its end unobserved, counted in stragglers.
func bounded(timeout time.Duration, f func() verdict) (verdict, bool) {
	if n := stragglers.Load(); n >= maxStragglers {
		return verdict{Rule: "error:overloaded",
			Reason: fmt.Sprintf("%d earlier gradings are still running past their deadline", n)}, false
	}
	done := make(chan verdict, 1)
	go func() { done <- f() }()
	t := time.NewTimer(hardLimit(timeout))
	defer t.Stop()
	select {
	case v := <-done:
		return v, true
	case <-t.C:
		stragglers.Add(1)
		go func() {
			<-done
			stragglers.Add(-1)
		}()
		return verdict{Rule: "error:deadline",
			Reason: fmt.Sprintf("grading did not finish within %v (the grader's %v limit plus grace)", hardLimit(timeout), timeout)}, false
	}
}

// gradeBatch grades items on workers goroutines (<= 0: GOMAXPROCS) and
// returns the verdicts in order.
//
// Workers grade inline (no goroutine per item: a hand-off costs more than
// a typical grading), and a watchdog enforces the hard limit: an item still
// being graded hardLimit after it started gets error:deadline, its worker
// is abandoned (counted in stragglers until it ends) and a new worker takes
// over the rest.
func gradeBatch(items []item, timeout time.Duration, workers int) []verdict {
	n := len(items)
	out := make([]verdict, n)
	if n == 0 {
		return out
	}
	if k := stragglers.Load(); k >= maxStragglers {
		for i := range out {
			out[i] = verdict{Rule: "error:overloaded",
				Reason: fmt.Sprintf("%d earlier gradings are still running past their deadline", k)}
		}
		return out
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, n)
	g := graderFor(timeout)
	limit := hardLimit(timeout)
	// state[i]: 0 pending, 1 decided by its worker, 2 timed out. Whoever
	// moves it from 0 writes out[i], then counts it resolved.
	state := make([]atomic.Int32, n)
	var next, resolved atomic.Int64
	allDone := make(chan struct{})
	resolve := func() {
		if resolved.Add(1) == int64(n) {
			close(allDone)
		}
	}
	const (
		running int32 = iota
		exited
		abandoned
	)
	type worker struct {
		item   atomic.Int64 // the item in hand, -1 between items
		start  atomic.Int64 // when it was taken, UnixNano
		status atomic.Int32 // running, exited or abandoned
	}
	run := func(w *worker) {
		defer func() {
			// Abandoned by the watchdog (which counted it a straggler):
			// it is over now.
			if !w.status.CompareAndSwap(running, exited) {
				stragglers.Add(-1)
			}
		}()
		for w.status.Load() == running {
			i := next.Add(1) - 1
			if i >= int64(n) {
				return
			}
			w.start.Store(time.Now().UnixNano())
			w.item.Store(i)
			v := verdictOf(gradeFunc(g, items[i]))
			w.item.Store(-1)
			if state[i].CompareAndSwap(0, 1) {
				out[i] = v
				resolve()
			}
		}
	}
	ws := make([]*worker, workers)
	for k := range ws {
		ws[k] = &worker{}
		ws[k].item.Store(-1)
		go run(ws[k])
	}
	tick := time.NewTicker(max(min(limit/4, 50*time.Millisecond), time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-allDone:
			return out
		case now := <-tick.C:
			for k, w := range ws {
				i := w.item.Load()
				if i < 0 || now.UnixNano()-w.start.Load() < int64(limit) || w.item.Load() != i {
					continue
				}
				if !state[i].CompareAndSwap(0, 2) {
					continue
				}
				out[i] = verdict{Rule: "error:deadline",
					Reason: fmt.Sprintf("grading did not finish within %v (the grader's %v limit plus grace)", limit, timeout)}
				// The worker is inside item i (its verdict is not in), so
				// it is running: it becomes a straggler.
				if w.status.CompareAndSwap(running, abandoned) {
					stragglers.Add(1)
				}
				ws[k] = &worker{}
				ws[k].item.Store(-1)
				go run(ws[k])
				resolve()
			}
		}
	}
}

// encodeJSON encodes v without HTML escaping (as redraft grade writes its
// lines) and without the encoder's trailing newline.
func encodeJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// verdicts hold only strings and bools, and invalid UTF-8 is
		// replaced, not refused: this cannot happen.
		return []byte(`{"correct":false,"rule":"error:internal","reason":"encoding the verdict failed"}`)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
