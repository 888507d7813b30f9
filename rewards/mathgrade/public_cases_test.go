package mathgrade

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"testing"
)

// publicCase is one asserted case from another grader's test suite.
type publicCase struct {
	Source     string          `json:"source"`
	Gold       *string         `json:"gold"`
	Prediction *string         `json:"prediction"`
	Expected   bool            `json:"expected"`
	Kind       string          `json:"kind"`
	Options    json.RawMessage `json:"options"`
	Reason     string          `json:"reason"` // exceptions only
}

func (c publicCase) key() string {
	s := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	return fmt.Sprintf("%s\x00%s\x00%s\x00%v", c.Source, s(c.Gold), s(c.Prediction), c.Expected)
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func readJSONL[T any](t testing.TB, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// gradePublic grades one public case. Every upstream call mode maps to
// Grade(prediction, gold): compare_strings and verify(parse(gold),
// parse(pred)) extract from both sides, which Grade does; is_equiv,
// math_equal, accuracy_reward and the open-instruct verifiers compare a
// prediction with a label, which is a bare gold answer to Grade. Options
// without a redraft equivalent (precision, strict, allow_set_relation_comp,
// the "expr"-only extraction) are not emulated; the cases where that
// matters are in the exception list.
func gradePublic(g *Grader, c publicCase) Result {
	return g.Grade(str(c.Prediction), str(c.Gold))
}

func TestPublicCases(t *testing.T) {
	cases := readJSONL[publicCase](t, "testdata/public_cases.jsonl")
	exc := readJSONL[publicCase](t, "testdata/public_case_exceptions.jsonl")
	excepted := map[string]int{}
	for _, e := range exc {
		if e.Reason == "" {
			t.Errorf("exception without a reason: %s", e.key())
		}
		excepted[e.key()]++
	}
	g := New(Options{})
	pass := 0
	for i, c := range cases {
		r := gradePublic(g, c)
		ok := r.Correct == c.Expected
		k := c.key()
		if ok {
			pass++
			if excepted[k] > 0 {
				t.Errorf("case %d is listed as an exception but passes (remove it): gold=%q pred=%q", i, clip(str(c.Gold), 80), clip(str(c.Prediction), 80))
			}
			continue
		}
		if excepted[k] > 0 {
			continue
		}
		t.Errorf("case %d (%s) expected %v, got %v: rule=%s extract=%s answer=%q pred=%q gold=%q reason=%q\n  gold: %q\n  pred: %q",
			i, c.Kind, c.Expected, r.Correct, r.Rule, r.ExtractRule, clip(r.Answer, 80), clip(r.Pred, 80), clip(r.Gold, 80), r.Reason,
			clip(str(c.Gold), 200), clip(str(c.Prediction), 200))
	}
	for k, n := range excepted {
		found := 0
		for _, c := range cases {
			if c.key() == k {
				found++
			}
		}
		if found == 0 {
			t.Errorf("exception matches no public case: %q", k)
		} else if n > found {
			t.Errorf("exception listed %d times but matches %d cases: %q", n, found, k)
		}
	}
	rate := float64(pass) / float64(len(cases))
	t.Logf("public cases: %d/%d pass (%.1f%%), %d listed exceptions", pass, len(cases), 100*rate, len(exc))
	fmt.Printf("public cases: %d/%d pass (%.1f%%)\n", pass, len(cases), 100*rate)
	if rate < 0.95 {
		t.Errorf("pass rate %.1f%% is below 95%%", 100*rate)
	}
}
