package mathgrade

import (
	"strings"
	"sync"
	"testing"
)

func TestGradeBehaviour(t *testing.T) {
	cutOff := "Janet sells 16 - 3 - 4 = 9 duck eggs a day.\nShe makes 9 * 2 = $18 every day at the farmers' market, so she"
	tests := []struct {
		name, resp, gold string
		want             bool
		rule             string // prefix of Result.Rule
		extract          string // Result.ExtractRule, when set
	}{
		// Extraction and stated answers.
		{"cut-off last number", cutOff, "18", false, "no_answer:cut_off", ""},
		{"unmarked long text", "We compute 9 * 2 = 18.\nThat is the value we need.", "18", false, "no_answer:not_stated", ""},
		{"alternatives", "The answer is 5 or 6.", "5", false, "no_answer:ambiguous", "the_answer_is"},
		{"empty box", "So the answer is \\boxed{}.", "5", false, "no_answer:empty_boxed", ""},
		{"empty box after a full one", "First \\boxed{5}. Then \\boxed{ }", "5", false, "no_answer:empty_boxed", ""},
		{"boxed space", "Thus \\boxed 5.", "5", true, "equal:", "boxed"},
		{"fbox", "Thus \\fbox{5}.", "5", true, "equal:", "fbox"},
		{"last box wins", "Try \\boxed{4}. Actually, after checking, the result is \\boxed{5}.", "5", true, "equal:", "boxed"},
		{"nested braces", "So $\\boxed{\\frac{\\sqrt{2}}{2}}$.", "\\frac{1}{\\sqrt2}", true, "equal:numeric", "boxed"},
		{"boxes joined", "The roots are $\\boxed{2}$ and $\\boxed{3}$.", "\\{2, 3\\}", true, "equal:set", "boxed"},
		{"hash", "16 - 3 - 4 = 9\n9 * 2 = 18\n#### 18", "18", true, "equal:", "hash"},
		{"gsm8k gold", "The answer is 18.", "Janet sells 9 eggs.\nShe makes 9 * 2 = <<9*2=18>>18.\nA: 18", true, "equal:", "the_answer_is"},
		{"A: line", "She makes 18 dollars.\nA: 18", "18", true, "equal:", "answer_colon"},
		{"Answer colon", "**Answer:** 42", "42", true, "equal:", "answer_colon"},
		{"final answer beats box", "\\boxed{200} then \\boxed{255}. Final Answer: The final answer is $10,455$. I hope it is correct.", "10455", true, "equal:integer", "final_answer"},
		{"final answer prose", "Final Answer: The volume of the box is 120.", "120", true, "equal:", "final_answer"},
		{"think block", "<think>maybe 41? the answer is 41</think>The answer is 42.", "42", true, "equal:", "the_answer_is"},
		{"unclosed think", "<think>the answer is 42", "42", false, "no_answer:cut_off", ""},
		{"answer tag", "<answer>\\frac{1}{2}</answer>", "0.5", true, "equal:rational", "answer_tag"},
		{"bare", "18", "18", true, "equal:", "bare"},
		{"bare latex", "$\\frac12$", "0.5", true, "equal:rational", "bare"},
		{"choice marker", "After elimination, the correct option is (B).", "B", true, "equal:choice", "choice"},
		{"choice text", "The answer is \\text{(C)}.", "C", true, "equal:choice", ""},
		{"choice wrong", "The answer is (D).", "\\textbf{(C)}", false, "not_equal:choice", ""},
		{"chat tail", "The answer is 7.<|im_end|><|im_start|>user The answer is 8.", "7", true, "equal:", ""},

		// Numbers.
		{"thousands commas", "The answer is 1,000,000.", "1000000", true, "equal:integer", ""},
		{"thousands braces", "\\boxed{1{,}000}", "1000", true, "equal:integer", ""},
		{"thousands thin space", "\\boxed{1\\,000}", "1000", true, "equal:", ""},
		{"list not thousands", "\\boxed{3, 5}", "35", false, "not_equal:set_size", ""},
		{"list", "\\boxed{5, 3}", "3,5", true, "equal:set", ""},
		{"decimal", "\\boxed{2.50}", "\\frac52", true, "equal:rational", ""},
		{"not close enough", "\\boxed{5.001}", "5", false, "not_equal:rational", ""},
		{"fraction forms", "\\boxed{\\tfrac34}", "3/4", true, "equal:rational", ""},
		{"mixed number", "\\boxed{2\\frac{1}{2}}", "2.5", true, "equal:rational", ""},
		{"percent", "\\boxed{50\\%}", "0.5", true, "equal:percent", ""},
		{"percent omitted", "\\boxed{50}", "50\\%", true, "equal:percent", ""},
		{"units", "\\boxed{5 \\text{ cm}^2}", "5", true, "equal:integer", ""},
		{"degrees", "\\boxed{90^\\circ}", "90", true, "equal:integer", ""},
		{"currency", "The answer is \\$18.90.", "18.9", true, "equal:rational", ""},
		{"scientific", "\\boxed{1.5 \\times 10^{3}}", "1500", true, "equal:integer", ""},
		{"e notation", "\\boxed{1.5e3}", "1500", true, "equal:integer", ""},
		{"unicode minus", "The answer is −5.", "-5", true, "equal:integer", ""},
		{"scale word", "A: 1.8 million", "1800000", true, "equal:integer", ""},
		{"repeating", "\\boxed{0.\\overline{3}}", "\\frac13", true, "equal:rational", ""},
		{"repeating tail", "\\boxed{0.1\\overline{6}}", "\\frac16", true, "equal:rational", ""},
		{"number words", "The answer is twenty-one.", "21", true, "equal:integer", ""},
		{"rounded decimal", "\\boxed{3.14}", "\\pi", true, "equal:rounded(2dp)", ""},
		{"rounded fraction", "\\boxed{0.33}", "\\frac{1}{3}", true, "equal:rounded(2dp)", ""},
		{"too coarse", "\\boxed{0.3}", "\\frac{1}{3}", false, "not_equal:", ""},
		{"rounded vs rounded", "\\boxed{7.777}", "7.78", false, "not_equal:", ""},

		// Expressions.
		{"sqrt", "\\boxed{2\\sqrt{2}}", "\\sqrt{8}", true, "equal:numeric", ""},
		{"sqrt exact", "\\boxed{\\sqrt{16}}", "4", true, "equal:integer", ""},
		{"pi", "\\boxed{\\frac{\\pi}{2}}", "\\pi/2", true, "equal:numeric", ""},
		{"power", "\\boxed{2^{10}}", "1024", true, "equal:integer", ""},
		{"polynomial", "\\boxed{(x+1)^2}", "x^2+2x+1", true, "equal:expression", ""},
		{"polynomial wrong", "\\boxed{(x+1)^2}", "x^2+x+1", false, "not_equal:expression", ""},
		{"rational function", "\\boxed{\\frac{x^2-1}{x-1}}", "x+1", true, "equal:expression", ""},
		{"trig identity", "\\boxed{\\sin^2 x + \\cos^2 x}", "1", true, "equal:expression", ""},
		{"complex", "\\boxed{3+4i}", "4i+3", true, "equal:complex", ""},
		{"complex division", "\\boxed{\\frac{1}{i}}", "-i", true, "equal:complex", ""},
		{"plus-minus", "\\boxed{1 \\pm \\sqrt{2}}", "1+\\sqrt2, 1-\\sqrt2", true, "equal:set", ""},
		{"plus-minus half", "\\boxed{1 + \\sqrt{2}}", "1\\pm\\sqrt2", false, "not_equal:set_size", ""},
		{"different variables", "\\boxed{f(y)}", "f(x)", false, "not_equal:expression", ""},

		// Relations, intervals, sets.
		{"assignment", "\\boxed{x = 5}", "5", true, "equal:integer", ""},
		{"equation", "\\boxed{y = 2x + 3}", "2x - y + 3 = 0", true, "equal:equation", ""},
		{"equation gold", "\\boxed{0}", "a + 3z = 0", false, "not_equal:equation", ""},
		{"inequality to interval", "\\boxed{x > 5}", "(5, \\infty)", true, "equal:relation", ""},
		{"inequality flipped", "\\boxed{5 \\geq x}", "x \\le 5", true, "equal:relation", ""},
		{"interval brackets", "\\boxed{[1, 2)}", "[1, 2]", false, "not_equal:interval", ""},
		{"union", "\\boxed{(-\\infty, 0) \\cup (1, \\infty)}", "(1,\\infty)\\cup(-\\infty,0)", true, "equal:interval", ""},
		{"membership", "\\boxed{x \\in [0, 1]}", "0 \\le x \\le 1", true, "equal:relation", ""},
		{"set order", "\\boxed{\\{2, 1\\}}", "\\{1, 2\\}", true, "equal:set", ""},
		{"set vs tuple", "\\boxed{\\{1, 2\\}}", "(1, 2)", false, "not_equal:set", ""},
		{"tuple order", "\\boxed{(2, 1)}", "(1, 2)", false, "not_equal:", ""},
		{"tuple", "\\boxed{(1, 2)}", "(1, 2)", true, "equal:", ""},
		{"point", "The point is $\\boxed{\\left(3, \\frac{\\pi}{2}\\right)}$.", "(3, \\frac{\\pi}{2})", true, "equal:", ""},
		{"matrix", "\\boxed{\\begin{bmatrix}1 & 2\\\\ 3 & 4\\end{bmatrix}}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", true, "equal:matrix", ""},
		{"matrix wrong", "\\boxed{\\begin{pmatrix}1 & 2\\\\ 3 & 5\\end{pmatrix}}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", false, "not_equal:matrix", ""},
		{"vector", "\\boxed{(1, 2, 3)}", "\\begin{pmatrix}1\\\\2\\\\3\\end{pmatrix}", true, "equal:tuple", ""},

		// Text and bases.
		{"text", "The answer is \\text{Evelyn}.", "evelyn", true, "equal:text", ""},
		{"text wrong", "The answer is \\text{odd}.", "\\text{even}", false, "not_equal:text", ""},
		{"base", "\\boxed{204_5}", "204_{5}", true, "equal:", ""},
		{"base digits", "\\boxed{204}", "204_5", true, "equal:base", ""},
		{"base decimal value", "\\boxed{54}", "204_5", false, "not_equal:base", ""},
	}
	g := New(Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := g.Grade(tc.resp, tc.gold)
			if r.Correct != tc.want || !strings.HasPrefix(r.Rule, tc.rule) || tc.extract != "" && r.ExtractRule != tc.extract {
				t.Errorf("Grade(%q, %q) = correct %v rule %q extract %q (answer %q pred %q gold %q reason %q); want %v %q %q",
					tc.resp, tc.gold, r.Correct, r.Rule, r.ExtractRule, r.Answer, r.Pred, r.Gold, r.Reason, tc.want, tc.rule, tc.extract)
			}
			if r.Correct && r.Reason != "" || !r.Correct && r.Reason == "" {
				t.Errorf("Reason %q does not match Correct %v", r.Reason, r.Correct)
			}
		})
	}
}

func TestExtract(t *testing.T) {
	tests := []struct{ text, answer, rule string }{
		{"so \\boxed{\\frac{1}{2}} done", "\\frac{1}{2}", "boxed"},
		{"\\boxed{1}, \\boxed{2}", "1, 2", "boxed"},
		{"\\boxed{1} no no no no no \\boxed{2}", "2", "boxed"},
		{"#### 18", "18", "hash"},
		{"Reasoning.\nA: 18", "18", "answer_colon"},
		{"The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac{3}{4}", "final_answer"},
		{"Therefore the answer is -3", "-3", "the_answer_is"},
		{"42", "42", "bare"},
		{"", "", ""},
	}
	for _, tc := range tests {
		a, rule, ok := Extract(tc.text)
		if a != tc.answer || rule != tc.rule || ok != (tc.answer != "") {
			t.Errorf("Extract(%q) = %q, %q, %v; want %q, %q", tc.text, a, rule, ok, tc.answer, tc.rule)
		}
	}
}

func TestGradeConcurrentDeterministic(t *testing.T) {
	cases := readJSONL[publicCase](t, "testdata/public_cases.jsonl")
	g := New(Options{})
	want := make([]Result, len(cases))
	for i, c := range cases {
		want[i] = gradePublic(g, c)
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, c := range cases {
				if got := gradePublic(g, c); got != want[i] {
					t.Errorf("case %d: concurrent result %+v differs from %+v", i, got, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestFinalAnswerPhraseBeforeBox(t *testing.T) {
	g := New(Options{})
	r := g.Grade("To get the final answer: we add 3 and 4.\nSo the sum is $\\boxed{7}$.", "7")
	if !r.Correct || r.ExtractRule != "boxed" {
		t.Errorf("%+v", r)
	}
}

func TestLastStatementWins(t *testing.T) {
	g := New(Options{})
	tests := []struct{ resp, gold, rule string }{
		{"Earlier I thought the answer is 5.\nRecounting: 1 + 2 = 3.\nA: 3", "3", "answer_colon"},
		{"The final answer: not yet known. We compute 7 * 6.\n#### 42", "42", "hash"},
		{"So we get $\\boxed{42}$. I think the answer is correct.", "42", "boxed"},
		{"Final Answer: The final answer is $42$. I hope it is correct.", "42", "final_answer"},
		{"\\boxed{41} was wrong. Answer: 42", "42", "answer_colon"},
	}
	for _, tc := range tests {
		if r := g.Grade(tc.resp, tc.gold); !r.Correct || r.ExtractRule != tc.rule {
			t.Errorf("Grade(%q) = %+v, want correct via %s", tc.resp, r, tc.rule)
		}
	}
}

func TestAnswerColonMidSentence(t *testing.T) {
	r := New(Options{}).Grade("Therefore $x \\equiv \\boxed{44}$.\n\nWe may check our answer: $17 \\cdot 44 = 748$, so our answer is correct.", "44")
	if !r.Correct || r.ExtractRule != "boxed" {
		t.Errorf("%+v", r)
	}
}

// The finish_reason the server reported decides whether a response that
// states nothing was cut off; the text's ending is read only when it is
// unknown (recorded text). "length" also voids a bare answer, a fragment of
// reasoning; a marked answer counts however the response ended.
func TestGradeFinished(t *testing.T) {
	g := New(Options{})
	midSentence := "Janet sells 16 - 3 - 4 = 9 duck eggs a day.\nShe makes 9 * 2 = $18 every day at the farmers' market, so she"
	fullStop := "We compute 9 * 2 = 18.\nThat is the value we need."
	tests := []struct {
		name, resp, finish, rule string
		correct                  bool
	}{
		{"mid-sentence, unknown", midSentence, "", "no_answer:cut_off", false},
		{"mid-sentence, stop", midSentence, "stop", "no_answer:not_stated", false},
		{"mid-sentence, tool_calls", midSentence, "tool_calls", "no_answer:not_stated", false},
		{"mid-sentence, length", midSentence, "length", "no_answer:cut_off", false},
		{"full stop, unknown", fullStop, "", "no_answer:not_stated", false},
		{"full stop, stop", fullStop, "stop", "no_answer:not_stated", false},
		{"full stop, length", fullStop, "length", "no_answer:cut_off", false},
		{"unclosed think, unknown", "<think>\nLet me add 9 and 9", "", "no_answer:cut_off", false},
		{"unclosed think, stop", "<think>\nLet me add 9 and 9", "stop", "no_answer:not_stated", false},
		{"unclosed think, length", "<think>\nLet me add 9 and 9", "length", "no_answer:cut_off", false},
		{"bare, unknown", "so she makes 9 * 2 = 18", "", "equal:", true},
		{"bare, stop", "so she makes 9 * 2 = 18", "stop", "equal:", true},
		{"bare, length", "so she makes 9 * 2 = 18", "length", "no_answer:cut_off", false},
		{"marked, length", "9 * 2 = 18\n#### 18", "length", "equal:", true},
		{"marked wrong, stop", "#### 17", "stop", "not_equal:", false},
		{"empty, length", "", "length", "no_answer:empty", false},
	}
	for _, tc := range tests {
		r := g.GradeFinished(tc.resp, "18", tc.finish)
		if !strings.HasPrefix(r.Rule, tc.rule) || r.Correct != tc.correct {
			t.Errorf("%s: rule %q correct %v, want %q %v", tc.name, r.Rule, r.Correct, tc.rule, tc.correct)
		}
		if strings.HasPrefix(r.Rule, "no_answer:") && (r.Found || r.Answer != "" || r.Reason == "") {
			t.Errorf("%s: no answer, but found %v answer %q reason %q", tc.name, r.Found, r.Answer, r.Reason)
		}
		if tc.rule == "no_answer:cut_off" && tc.finish == "length" && !strings.Contains(r.Reason, "finish_reason=length") {
			t.Errorf("%s: reason %q does not name the server's finish_reason", tc.name, r.Reason)
		}
		if tc.finish == "" {
			if want := g.Grade(tc.resp, "18"); r != want {
				t.Errorf("%s: unknown finish_reason gives %+v, Grade %+v", tc.name, r, want)
			}
		}
	}
}
