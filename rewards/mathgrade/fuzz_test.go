package mathgrade

import (
	"strings"
	"testing"
	"time"
)

// adversarial returns inputs meant to exhaust a naive parser: deep
// nesting, unbalanced delimiters, many markers, 1 MB of text.
func adversarial() map[string]string {
	const mb = 1 << 20
	return map[string]string{
		"nested braces":     "\\boxed{" + strings.Repeat("{", mb/2-8) + strings.Repeat("}", mb/2-8) + "}",
		"unbalanced boxes":  strings.Repeat("\\boxed{", mb/7),
		"unbalanced left":   "\\boxed{" + strings.Repeat("\\left(", mb/7) + "}",
		"nested parens":     "The answer is " + strings.Repeat("(", 5000) + "1" + strings.Repeat(")", 5000),
		"nested fracs":      "\\boxed{" + strings.Repeat("\\frac{1}{", 3000) + "2" + strings.Repeat("}", 3000) + "}",
		"dollars":           strings.Repeat("$", mb),
		"display openers":   strings.Repeat("\\[ x ", mb/5),
		"markers":           strings.Repeat("The answer is The final answer is Answer: ", mb/42),
		"long number":       "The answer is " + strings.Repeat("9", mb-20),
		"huge power":        "\\boxed{10^{10^{10^{10}}}}",
		"power tower":       "\\boxed{" + strings.Repeat("2^{", 2000) + "2" + strings.Repeat("}", 2000) + "}",
		"factorial":         "\\boxed{100000!}",
		"big sum":           "\\boxed{\\sum_{k=1}^{1000000000} k}",
		"many list items":   "\\boxed{" + strings.Repeat("1, ", 30000) + "1}",
		"many pm":           "\\boxed{" + strings.Repeat("1 \\pm ", 2000) + "1}",
		"long prose":        strings.Repeat("Let us think about this step by step and compute 9 * 2 = 18. ", mb/64),
		"boxes with gaps":   strings.Repeat("\\boxed{1} and ", mb/16),
		"deep abs":          "\\boxed{" + strings.Repeat("|", 20000) + "}",
		"matrix rows":       "\\boxed{\\begin{pmatrix}" + strings.Repeat("1 & 2 \\\\ ", 20000) + "\\end{pmatrix}}",
		"repeating":         "\\boxed{0.\\overline{" + strings.Repeat("3", 5000) + "}}",
		"text nesting":      "\\boxed{" + strings.Repeat("\\text{1", 5000) + strings.Repeat("}", 5000) + "}",
		"think never ends":  "<think>" + strings.Repeat("hmm ", mb/4-4),
		"answer tag spam":   strings.Repeat("<answer>", mb/8),
		"invalid utf8":      "\\boxed{\xff\xfe\xfd}",
		"over size limit":   strings.Repeat("x", mb+1),
		"unicode operators": "\\boxed{" + strings.Repeat("−×÷≤≥≠≈±∓∞π√°∈∪", 4000) + "}",
	}
}

// TestAdversarialBounded grades adversarial responses and requires each to
// return a Result (with a Reason when not correct) well within a generous
// bound. The bound is a sanity check against runaway work, not a timing
// benchmark: the Timeout option is what guarantees it.
func TestAdversarialBounded(t *testing.T) {
	g := New(Options{Timeout: 2 * time.Second})
	for name, resp := range adversarial() {
		start := time.Now()
		r := g.Grade(resp, "18")
		el := time.Since(start)
		if el > 20*time.Second {
			t.Errorf("%s: took %v", name, el)
		}
		if r.Correct || r.Reason == "" || r.Rule == "" {
			t.Errorf("%s: %+v, want a not-correct result with a reason", name, r)
		}
		if r.Rule == "error:internal" {
			t.Errorf("%s: internal error: %s", name, r.Reason)
		}
		t.Logf("%-18s %8.1fms %s", name, float64(el.Microseconds())/1000, r.Rule)
		// Extract must also return.
		Extract(resp)
	}
	// The size limit rejects long responses before any work.
	r := New(Options{MaxResponseBytes: 1000}).Grade(strings.Repeat("1", 1001), "1")
	if r.Rule != "no_answer:too_long" || r.Reason == "" {
		t.Errorf("size limit: %+v", r)
	}
	// A timeout turns into a result, not a hang.
	r = New(Options{Timeout: time.Nanosecond}).Grade(adversarial()["long prose"]+"\\boxed{18}", "18")
	if r.Rule != "error:timeout" || r.Reason == "" {
		t.Errorf("timeout: %+v", r)
	}
}

func fuzzSeeds(f *testing.F, add func(resp, gold string)) {
	cases := readJSONL[publicCase](f, "testdata/public_cases.jsonl")
	for _, c := range cases {
		add(str(c.Prediction), str(c.Gold))
	}
	for _, v := range math500Variants("\\frac{\\sqrt{3}}{2} \\cup [0, 1)") {
		add(v, "x")
	}
	for _, s := range []string{"\\boxed{\\left(", "$$\\boxed{", "\\frac", "\\sqrt[", "\\begin{pmatrix}1&", "0.\\overline{", "((((", "|||", "\\sum_{k=1}^{n}", "1 \\pm \\pm 2"} {
		add(s, s)
	}
}

func FuzzExtract(f *testing.F) {
	fuzzSeeds(f, func(resp, _ string) { f.Add(resp) })
	f.Fuzz(func(t *testing.T, text string) {
		a, rule, ok := Extract(text)
		if ok != (rule != "") || !ok && a != "" {
			t.Fatalf("Extract(%q) = %q, %q, %v: inconsistent", text, a, rule, ok)
		}
	})
}

func FuzzGrade(f *testing.F) {
	fuzzSeeds(f, func(resp, gold string) { f.Add(resp, gold) })
	g := New(Options{Timeout: time.Second})
	f.Fuzz(func(t *testing.T, resp, gold string) {
		start := time.Now()
		r := g.Grade(resp, gold)
		if el := time.Since(start); el > 10*time.Second {
			t.Fatalf("Grade took %v", el)
		}
		if r.Rule == "error:internal" {
			t.Fatalf("Grade(%q, %q): %s", resp, gold, r.Reason)
		}
		if r.Correct == (r.Reason != "") {
			t.Fatalf("Grade(%q, %q): Correct %v with Reason %q", resp, gold, r.Correct, r.Reason)
		}
		if r.Correct && !r.Found {
			t.Fatalf("Grade(%q, %q): correct without an answer", resp, gold)
		}
	})
}
