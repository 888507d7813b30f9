package codegrade_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redraft/redraft/rewards/codegrade"
	"github.com/redraft/redraft/rewards/execute"
)

// mutations are wrong versions of a canonical solution; for every problem at
// least one of them must fail its tests.
var mutations = []struct {
	name string
	f    func(p codegrade.Problem) string
}{
	{"return None", func(p codegrade.Problem) string { return "    return None\n" }},
	{"drop the last line", func(p codegrade.Problem) string {
		lines := strings.Split(strings.TrimRight(p.CanonicalSolution, "\n"), "\n")
		return strings.Join(lines[:len(lines)-1], "\n") + "\n    pass\n"
	}},
	{"wrong constant", func(p codegrade.Problem) string { return "    return 0\n" }},
	{"raise", func(p codegrade.Problem) string { return "    raise NotImplementedError\n" }},
}

// TestHumanEval: all 164 canonical solutions pass in the sandbox, and every
// problem has a mutated solution that fails; per-test verdicts are counted.
func TestHumanEval(t *testing.T) {
	g := newGrader(t, execute.Limits{Wall: 20 * time.Second})
	ps, err := codegrade.ReadHumanEval("testdata/humaneval/HumanEval.jsonl.gz")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 164 {
		t.Fatalf("%d problems, want 164", len(ps))
	}
	type out struct {
		canon  codegrade.Verdict
		caught string
	}
	res := make([]out, len(ps))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res[i].canon = g.Run(context.Background(), p.CanonicalSolution, p.Task())
			for _, m := range mutations {
				if v := g.Run(context.Background(), m.f(p), p.Task()); !v.Correct {
					res[i].caught = m.name + ": " + v.Reason
					break
				}
			}
		}()
	}
	wg.Wait()
	passed, tests, perTest := 0, 0, 0
	for i, r := range res {
		v := r.canon
		if !v.Correct {
			t.Errorf("%s: canonical solution fails: %s %s %q", ps[i].TaskID, v.Reason, v.Message, v.Stderr)
			continue
		}
		passed++
		tests += v.Total
		if v.Total > 1 {
			perTest++
		}
		if r.caught == "" {
			t.Errorf("%s: every mutated solution passes", ps[i].TaskID)
		}
	}
	t.Logf("canonical solutions passing: %d/164; %d tests in all; %d problems with more than one separable test", passed, tests, perTest)
}
