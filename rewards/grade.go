package rewards

import (
	"math/big"
	"regexp"
	"strings"
)

// Verdict explains one grading decision.
type Verdict struct {
	Correct bool
	// Found is true when the response stated a final answer; Answer is that
	// answer as written.
	Found  bool
	Answer string
	// ExtractRule says how the answer was found ("boxed", "hash", ...).
	ExtractRule string
	// Rule is the rule that decided the verdict.
	Rule string
	// Pred and Gold are the normalised forms that were compared.
	Pred, Gold string
	// Reason says, in one sentence, why a response is not correct.
	Reason string
}

// Grader decides whether a response states the reference answer. It must be
// deterministic and safe for concurrent use.
type Grader interface {
	// Grade extracts the response's final answer and compares it with the
	// reference (a bare answer or a whole reference solution).
	Grade(response, reference string) Verdict
	// Extract returns the final answer a response states, and how it was
	// found; ok is false when it states none.
	Extract(response string) (answer, rule string, ok bool)
	// Equivalent says whether two extracted answers are equal by value.
	Equivalent(a, b string) bool
}

// NumericGrader grades GSM8K-style numeric answers. An answer counts only when
// stated as final, in this order of precedence: the last \boxed{...}, the last
// "#### x", the last line starting "A:", the last "The answer is x" /
// "final answer is x" / "Answer: x". The stated answer must hold exactly one
// number ("5 or 6" states nothing); there is no fallback to the last number in
// the text, so a cut-off response earns nothing. Numbers compare as exact
// rationals (18 = 18.00 = 36/2).
type NumericGrader struct{}

var (
	boxedRe  = regexp.MustCompile(`\\boxed\{([^{}]*)\}`)
	hashRe   = regexp.MustCompile(`(?m)####\s*(.+)$`)
	aLineRe  = regexp.MustCompile(`(?m)^\s*A:\s*(.+)$`)
	phraseRe = regexp.MustCompile(`(?i)(?:the (?:final )?answer is|final answer:|answer:)\s*:?\s*([^\n]+)`)
	numRe    = regexp.MustCompile(`[-−]?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?`)
)

// extractStated returns the text stated as the final answer and the rule that
// found it.
func extractStated(text string) (string, string, bool) {
	for _, r := range []struct {
		re   *regexp.Regexp
		name string
	}{{boxedRe, "boxed"}, {hashRe, "hash"}, {aLineRe, "answer_line"}, {phraseRe, "answer_phrase"}} {
		if m := r.re.FindAllStringSubmatch(text, -1); len(m) > 0 {
			return strings.TrimSpace(m[len(m)-1][1]), r.name, true
		}
	}
	return "", "", false
}

// parseNumber reads exactly one number from a stated answer.
func parseNumber(s string) (*big.Rat, string, bool) {
	nums := numRe.FindAllString(s, -1)
	if len(nums) != 1 {
		return nil, "", false
	}
	n := strings.NewReplacer("$", "", ",", "", " ", "", "−", "-").Replace(nums[0])
	r, ok := new(big.Rat).SetString(n)
	if !ok {
		return nil, "", false
	}
	return r, r.RatString(), true
}

// Extract implements Grader.
func (NumericGrader) Extract(response string) (string, string, bool) {
	a, rule, ok := extractStated(response)
	if !ok || a == "" {
		return "", "", false
	}
	return a, rule, true
}

// Equivalent implements Grader: both answers hold one number, and the
// numbers are equal.
func (NumericGrader) Equivalent(a, b string) bool {
	x, _, ok := parseNumber(a)
	if !ok {
		return false
	}
	y, _, ok := parseNumber(b)
	return ok && x.Cmp(y) == 0
}

// Grade implements Grader.
func (NumericGrader) Grade(response, reference string) Verdict {
	var v Verdict
	gold := strings.TrimSpace(reference)
	if g, _, found := extractStated(reference); found {
		gold = g
	}
	goldNum, goldNorm, ok := parseNumber(gold)
	if !ok {
		v.Rule, v.Reason = "bad_reference", "the reference answer is not a single number"
		return v
	}
	v.Gold = goldNorm
	ans, rule, found := extractStated(response)
	if !found || ans == "" {
		v.Rule, v.Reason = "no_answer", "no final answer was stated"
		return v
	}
	v.Found, v.Answer, v.ExtractRule = true, ans, rule
	num, norm, ok := parseNumber(ans)
	if !ok {
		v.Rule, v.Reason = "no_answer:not_one_number", "the stated answer does not hold exactly one number"
		return v
	}
	v.Pred = norm
	if num.Cmp(goldNum) == 0 {
		v.Correct, v.Rule = true, "equal:rational"
		return v
	}
	v.Rule, v.Reason = "not_equal:rational", "the stated answer differs from the reference"
	return v
}
