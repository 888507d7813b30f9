package mathgrade

import (
	"fmt"
	"strings"
	"time"
)

// Result explains one grading decision.
type Result struct {
	Correct bool
	// Answer is the final answer exactly as stated in the response ("" when
	// none); Found is true when a final answer was stated.
	Answer string
	Found  bool
	// ExtractRule says how the answer was found: "answer_tag",
	// "final_answer", "boxed", "fbox", "hash", "the_answer_is",
	// "answer_colon", "choice" or "bare" ("" when not found).
	ExtractRule string
	// Rule is the rule that decided the verdict: "equal:<kind>",
	// "not_equal:<kind>", "no_answer:<why>" or "error:<why>".
	Rule string
	// Pred and Gold are the normalised forms that were compared.
	Pred, Gold string
	// Reason is one sentence saying why the response is not correct; it is
	// "" when Correct.
	Reason string
}

// Options bounds one grading call. Zero values select the defaults.
type Options struct {
	// MaxResponseBytes is the largest response (and reference) graded;
	// longer ones get Rule "no_answer:too_long". Default 1 MiB.
	MaxResponseBytes int
	// Timeout bounds the time one Grade call may take; past it Grade
	// returns Rule "error:timeout". Default 2s.
	Timeout time.Duration
	// MaxAnswerBytes is the largest extracted answer that is parsed;
	// longer answers are compared as normalised strings only. Default 4096.
	MaxAnswerBytes int
	// MaxSteps bounds the work of one Grade call in parser and evaluator
	// steps, independent of the clock. Default 2,000,000.
	MaxSteps int
}

// Grader grades responses. It holds only its options, so one Grader is
// safe for concurrent use by many goroutines.
type Grader struct {
	opts Options
}

// Default limits.
const (
	DefaultMaxResponseBytes = 1 << 20
	DefaultTimeout          = 2 * time.Second
	DefaultMaxAnswerBytes   = 4096
	DefaultMaxSteps         = 2_000_000
)

// New returns a Grader with opts, zero fields replaced by the defaults.
func New(opts Options) *Grader {
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxAnswerBytes <= 0 {
		opts.MaxAnswerBytes = DefaultMaxAnswerBytes
	}
	if opts.MaxSteps <= 0 {
		opts.MaxSteps = DefaultMaxSteps
	}
	return &Grader{opts: opts}
}

// Grade extracts the final answer from response (a whole chain-of-thought
// or a bare answer) and compares it by value with gold. gold may be a bare
// answer or a full reference solution, whose final answer is extracted the
// same way. Grade never panics; see the package doc for the rules.
func (g *Grader) Grade(response, gold string) (res Result) {
	b := newBudget(g.opts.Timeout, g.opts.MaxSteps)
	defer func() {
		if r := recover(); r != nil {
			keep := Result{Answer: res.Answer, Found: res.Found, ExtractRule: res.ExtractRule}
			switch r {
			case errTimeout:
				keep.Rule = "error:timeout"
				keep.Reason = fmt.Sprintf("grading took longer than the %v limit", g.opts.Timeout)
			case errSteps:
				keep.Rule = "error:too_complex"
				keep.Reason = "grading exceeded its step budget"
			default:
				keep.Rule = "error:internal"
				keep.Reason = fmt.Sprintf("internal grader error: %v", r)
			}
			res = keep
		}
	}()
	if len(response) > g.opts.MaxResponseBytes {
		return Result{Rule: "no_answer:too_long",
			Reason: fmt.Sprintf("the response is %d bytes, over the %d-byte limit", len(response), g.opts.MaxResponseBytes)}
	}
	if len(gold) > g.opts.MaxResponseBytes {
		return Result{Rule: "error:gold_too_long",
			Reason: fmt.Sprintf("the reference is %d bytes, over the %d-byte limit", len(gold), g.opts.MaxResponseBytes)}
	}
	ex := extract(response, b)
	res.Answer, res.Found, res.ExtractRule = ex.answer, ex.ok, ex.rule
	if !ex.ok {
		res.Rule = "no_answer:" + ex.why
		res.Reason = noAnswerReason(ex.why)
		return res
	}
	gx := extract(gold, b)
	goldAns := gx.answer
	if !gx.ok {
		goldAns = strings.TrimSpace(gold)
	}
	if strings.TrimSpace(goldAns) == "" {
		res.Rule = "error:no_gold"
		res.Reason = "the reference answer is empty"
		return res
	}
	c := &comparer{b: b, maxAnswer: g.opts.MaxAnswerBytes}
	v := c.compareAnswers(ex.answer, goldAns)
	res.Pred, res.Gold = v.pred, v.gold
	res.Correct = v.eq
	res.Rule = v.rule
	if !v.eq {
		res.Reason = v.reason
		if res.Reason == "" {
			res.Reason = fmt.Sprintf("the stated answer %q does not equal the reference %q", clip(ex.answer, 80), clip(goldAns, 80))
		}
	}
	return res
}

// GradeFinished is Grade for a response whose end the server reported:
// finishReason is the finish_reason it sent with the response.
//
//   - "length": the response was cut off at a token limit. If it states
//     no marked final answer it is no_answer:cut_off, and a bare answer
//     does not count either: the text is a fragment of reasoning, not an
//     answer, whatever it happens to end with.
//   - any other value ("stop", "tool_calls", ...): the response ended on
//     its own, so it was not cut off: one that states no final answer is
//     no_answer:not_stated however its text ends (an unclosed <think>
//     included).
//   - "" (unknown, as for recorded text): Grade, which tells a cut-off
//     response by how its text ends.
func (g *Grader) GradeFinished(response, gold, finishReason string) Result {
	res := g.Grade(response, gold)
	switch finishReason {
	case "":
	case "length":
		if res.Rule == "no_answer:not_stated" || res.Rule == "no_answer:cut_off" || res.Found && res.ExtractRule == "bare" {
			res = Result{Gold: res.Gold, Rule: "no_answer:cut_off",
				Reason: "the response was cut off (finish_reason=length) before stating a final answer"}
		}
	default:
		if res.Rule == "no_answer:cut_off" {
			res.Rule, res.Reason = "no_answer:not_stated", noAnswerReason("not_stated")
		}
	}
	return res
}

func noAnswerReason(why string) string {
	switch why {
	case "empty":
		return "the response is empty"
	case "empty_boxed":
		return "the last \\boxed{} is empty"
	case "cut_off":
		return "the response was cut off before stating a final answer"
	default:
		return "the response never states a final answer"
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "..."
}

// budget bounds the work of one Grade call. It is owned by one call and
// never shared.
type budget struct {
	deadline time.Time
	steps    int
	maxSteps int
}

type budgetErr string

const (
	errTimeout budgetErr = "timeout"
	errSteps   budgetErr = "steps"
)

func newBudget(timeout time.Duration, maxSteps int) *budget {
	return &budget{deadline: time.Now().Add(timeout), maxSteps: maxSteps}
}

// tick charges n steps; it panics with errTimeout or errSteps (recovered in
// Grade) when the budget is spent. A nil budget is unlimited.
func (b *budget) tick(n int) {
	if b == nil {
		return
	}
	before := b.steps
	b.steps += n
	if b.steps > b.maxSteps {
		panic(errSteps)
	}
	// Reading the clock is comparatively slow: do it every 4096 steps.
	if before>>12 != b.steps>>12 && time.Now().After(b.deadline) {
		panic(errTimeout)
	}
}
