package rewards

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/redraft/redraft/rollout"
)

// Components of the self-verification reward.
const (
	// SelfVerifyGen is the generation reward of a solution: 1 for a correct
	// final answer, -0.5 for a stated final answer that is wrong, -1 when no
	// final answer is stated.
	SelfVerifyGen = "self_verify_gen"
	// SelfVerifyMatch is the verification reward: 1 when the verdict agrees
	// with the solution's generation reward (correct for 1, incorrect for
	// -0.5 or -1), else 0.
	SelfVerifyMatch = "self_verify_match"
)

// Kinds of verdict a verification is asked for.
const (
	// VerdictLabel is \boxed{correct} or \boxed{incorrect}: whether the
	// solution's final answer is right.
	VerdictLabel = "label"
	// VerdictScore is the generation reward the verifier predicts for the
	// solution, \boxed{1}, \boxed{-0.5} or \boxed{-1}, as the
	// Trust-but-Verify paper (Liu et al., 2025) asks.
	VerdictScore = "score"
)

// SelfVerify is the Trust-but-Verify reward. On a solution (a sample without
// Verifies) it adds SelfVerifyGen; on a verification it grades the solution
// it checked, reads the verdict and adds SelfVerifyMatch, with the verdict
// as the sample's answer and the details in its metadata under
// "self_verify". Its settings are a configuration's reward.self_verify.
type SelfVerify struct {
	Grader Grader `yaml:"-" json:"-"`
	// Require restricts the extraction rules that count as stating a final
	// answer (e.g. ["boxed"]); empty: any rule the grader knows.
	Require []string `yaml:"require" json:"require,omitempty"`
	// Verdict is VerdictLabel (the default when empty) or VerdictScore.
	Verdict string `yaml:"verdict" json:"verdict,omitempty"`
}

// Name implements Part.
func (SelfVerify) Name() string { return "self_verify" }

// GenerationReward is the value of SelfVerifyGen for a graded response.
func (p SelfVerify) GenerationReward(v Verdict) float64 {
	switch {
	case !v.Found || (len(p.Require) > 0 && !slices.Contains(p.Require, v.ExtractRule)):
		return -1
	case v.Correct:
		return 1
	default:
		return -0.5
	}
}

// Score implements Part.
func (p SelfVerify) Score(_ context.Context, g *rollout.Group, scores []Score) error {
	for i, smp := range g.Samples {
		s := &scores[i]
		switch {
		case smp.Verifies != nil:
			p.verification(g.Task, smp, s)
		case smp.Err != "":
			appendComponent(s, SelfVerifyGen, nil, noResponse(smp))
		case s.Verdict == nil:
			appendComponent(s, SelfVerifyGen, nil, "the task has no reference answer")
		default:
			appendComponent(s, SelfVerifyGen, f64(p.GenerationReward(*s.Verdict)), "")
		}
	}
	return nil
}

// verification scores one verification sample.
func (p SelfVerify) verification(task rollout.Task, smp rollout.Sample, s *Score) {
	t := smp.Verifies
	detail := map[string]any{"solution_sample": t.Index}
	s.Metadata = map[string]any{"self_verify": detail}
	if smp.Err != "" {
		appendComponent(s, SelfVerifyMatch, nil, noResponse(smp))
		return
	}
	parse := ParseSelfVerdict
	if p.Verdict == VerdictScore {
		parse = ParseSelfScore
	}
	var gen *float64
	if task.Reference != "" {
		v := grade(p.Grader, t.Text, t.FinishReason, task.Reference)
		gen = f64(p.GenerationReward(v))
		detail["solution_answer"], detail["solution_extract_rule"] = v.Answer, v.ExtractRule
		detail["solution_correct"], detail["solution_reward"] = v.Correct, *gen
		if p.Verdict == VerdictScore {
			detail["expected_verdict"] = *gen
		} else {
			detail["expected_verdict"] = verdictLabel(*gen == 1)
		}
	}
	verdict, err := parse(smp.Text)
	if err != nil && smp.Reasoning != "" {
		// A reasoning model may leave its verdict in the reasoning field.
		if rv, rerr := parse(smp.Reasoning); rerr == nil {
			verdict, err = rv, nil
			verdict.Rule += "_reasoning"
		}
	}
	if err == nil {
		s.Answer, s.ExtractRule = verdict.Label, "verdict_"+verdict.Rule
		detail["verdict"], detail["verdict_rule"] = verdict.Label, verdict.Rule
		if verdict.Score != nil {
			detail["verdict"] = *verdict.Score
		}
	}
	switch {
	case gen == nil:
		appendComponent(s, SelfVerifyMatch, nil, "the verified solution cannot be graded: the task has no reference answer")
	case err != nil:
		appendComponent(s, SelfVerifyMatch, nil, err.Error())
	case verdict.Score != nil && *verdict.Score == *gen, verdict.Score == nil && verdict.Correct == (*gen == 1):
		appendComponent(s, SelfVerifyMatch, f64(1), "")
	default:
		appendComponent(s, SelfVerifyMatch, f64(0), "")
	}
}

func verdictLabel(correct bool) string {
	if correct {
		return "correct"
	}
	return "incorrect"
}

// SelfVerdict is a verification's verdict on a solution.
type SelfVerdict struct {
	// Correct is whether the verdict says the solution is correct (a score
	// of 1). Label is "correct" or "incorrect" for a label verdict, the
	// score ("1", "-0.5", "-1") for a score verdict.
	Correct bool
	Label   string
	// Score is the predicted generation reward of a score verdict; nil for
	// a label verdict.
	Score *float64
	// Rule is where it was found: "boxed" (\boxed{...} or \fbox{...}) or
	// "line" ("Verdict: ..." and the like).
	Rule string
}

// ErrNoVerdict is wrapped by the parsers' error when the text states no
// verdict.
var ErrNoVerdict = errors.New("no verdict")

// Verdict words, after normalisation (see normaliseArg).
var verdictWords = map[string]bool{
	"correct": true, "right": true, "true": true, "yes": true, "valid": true,
	"incorrect": false, "wrong": false, "false": false, "no": false, "invalid": false,
	"not correct": false, "not right": false, "not valid": false,
}

// Limits that keep parsing linear in the text whatever the model wrote:
// boxes examined from the end, and the longest box argument read.
const (
	maxVerdictBoxes = 64
	maxVerdictArg   = 256
)

// verdictLineRe matches a verdict stated on a line: "Verdict: incorrect",
// "**Final verdict:** correct", "Conclusion = the solution is wrong".
var verdictLineRe = regexp.MustCompile(`(?i)\b(?:final[ \t]+)?(?:verdict|conclusion|judgement|judgment)\b[ \t]*(?:\*\*|__)?[ \t]*[:=][ \t*_"'$]*(?:the[ \t]+(?:proposed[ \t]+)?(?:solution|answer)[ \t]+is[ \t]+)?(not[ \t]+correct|not[ \t]+right|not[ \t]+valid|incorrect|correct|wrong|right|true|false|yes|no|invalid|valid)\b`)

// scoreLineRe matches a score stated on a line: "Score: -0.5", "**Final
// score:** 1", "Verdict = -1".
var scoreLineRe = regexp.MustCompile(`(?i)\b(?:final[ \t]+)?(?:score|verdict|rating)\b[ \t]*(?:\*\*|__)?[ \t]*[:=][ \t*_"'$]*([-+\x{2212}]?[ \t]*\d+(?:\.\d+)?(?:/\d+)?)`)

// ParseSelfVerdict reads the label verdict a verification states about a
// solution. The text is untrusted model output; parsing is bounded, linear
// in the text and never panics. The last \boxed{...} or \fbox{...} whose
// argument is a verdict word decides (boxes holding anything else, such as
// a recomputed answer, are skipped); without one, the last line of the form
// "Verdict: ..." (also "Conclusion", "Judgement", optionally "Final", with
// ':' or '=') decides. Verdict words, case-insensitive, inside optional
// \text{}-like wrappers, quotes or bold markers: correct, right, true, yes,
// valid; incorrect, wrong, false, no, invalid, "not correct", "not right",
// "not valid".
func ParseSelfVerdict(text string) (SelfVerdict, error) {
	if arg, ok := lastBox(text, func(a string) bool { _, ok := verdictWords[normaliseArg(a)]; return ok }); ok {
		c := verdictWords[normaliseArg(arg)]
		return SelfVerdict{Correct: c, Label: verdictLabel(c), Rule: "boxed"}, nil
	}
	if ms := verdictLineRe.FindAllStringSubmatch(text, -1); len(ms) > 0 {
		c := verdictWords[normaliseArg(ms[len(ms)-1][1])]
		return SelfVerdict{Correct: c, Label: verdictLabel(c), Rule: "line"}, nil
	}
	return SelfVerdict{}, fmt.Errorf(`%w: the verification states neither \boxed{correct} nor \boxed{incorrect} (nor a "Verdict: ..." line)`, ErrNoVerdict)
}

// ParseSelfScore reads a score verdict: the generation reward the verifier
// predicts, 1, -0.5 or -1 (also written 1.0, +1, -1/2, -\frac{1}{2}, with a
// Unicode minus). As for ParseSelfVerdict, the last box holding one of those
// values decides, else the last "Score: ..." (or "Verdict", "Rating") line
// holding one; other numbers are skipped as answers.
func ParseSelfScore(text string) (SelfVerdict, error) {
	scored := func(v float64, rule string) SelfVerdict {
		return SelfVerdict{Correct: v == 1, Label: strconv.FormatFloat(v, 'g', -1, 64), Score: &v, Rule: rule}
	}
	if arg, ok := lastBox(text, func(a string) bool { _, ok := scoreValue(a); return ok }); ok {
		v, _ := scoreValue(arg)
		return scored(v, "boxed"), nil
	}
	ms := scoreLineRe.FindAllStringSubmatch(text, -1)
	for k := len(ms) - 1; k >= 0; k-- {
		if v, ok := scoreValue(ms[k][1]); ok {
			return scored(v, "line"), nil
		}
	}
	return SelfVerdict{}, fmt.Errorf(`%w: the verification states no score of 1, -0.5 or -1 in \boxed{} (nor a "Score: ..." line)`, ErrNoVerdict)
}

// scoreValue reads a box argument as one of the scores 1, -0.5, -1.
func scoreValue(arg string) (float64, bool) {
	s := strings.ReplaceAll(normaliseArg(arg), "\u2212", "-")
	s = strings.ReplaceAll(s, " ", "")
	sign := 1.0
	switch {
	case strings.HasPrefix(s, "-"):
		sign, s = -1, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	var v float64
	switch s {
	case "1/2", `\frac{1}{2}`, `\frac12`, `\dfrac{1}{2}`, `\tfrac{1}{2}`:
		v = 0.5
	default:
		if s == "" || strings.Trim(s, "0123456789.") != "" {
			return 0, false // digits only: no exponents, hex or "inf"
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, false
		}
		v = f
	}
	v *= sign
	if v != 1 && v != -0.5 && v != -1 {
		return 0, false
	}
	return v, true
}

// lastBox returns the argument of the last box that accept takes. It walks
// backslashes from the end, so the scan is linear in the text however many
// commands it holds, and it looks at no more than maxVerdictBoxes boxes.
func lastBox(text string, accept func(string) bool) (string, bool) {
	boxes := 0
	for i := len(text); boxes < maxVerdictBoxes; {
		if i = strings.LastIndexByte(text[:i], '\\'); i < 0 {
			break
		}
		name := boxCommand(text[i:])
		if name == "" {
			continue
		}
		boxes++
		if arg, ok := braceArg(text, i+len(name)); ok && accept(arg) {
			return arg, true
		}
	}
	return "", false
}

// boxCommand returns the box command t starts with, \boxed or \fbox (not a
// longer command such as \boxedanswer), or "".
func boxCommand(t string) string {
	for _, name := range []string{`\boxed`, `\fbox`} {
		if strings.HasPrefix(t, name) && (len(t) == len(name) || !isLetter(t[len(name)])) {
			return name
		}
	}
	return ""
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// braceArg returns the brace-delimited argument starting at t[j] (after
// spaces), reading at most maxVerdictArg bytes. A backslash escapes the next
// byte, so \{ and \} do not count as braces.
func braceArg(t string, j int) (string, bool) {
	for j < len(t) && (t[j] == ' ' || t[j] == '\t') {
		j++
	}
	if j >= len(t) || t[j] != '{' {
		return "", false
	}
	depth := 0
	for k := j; k < len(t) && k-j <= maxVerdictArg; k++ {
		switch t[k] {
		case '\\':
			k++
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return t[j+1 : k], true
			}
		}
	}
	return "", false
}

// textWrappers are commands whose argument is read as the verdict itself:
// \text{correct}, \textbf{Incorrect}, \mathrm{wrong}, ...
var textWrappers = []string{`\textbf`, `\textrm`, `\textsf`, `\texttt`, `\textit`, `\textnormal`, `\text`, `\mathrm`, `\mathbf`, `\mathit`, `\mathsf`, `\mbox`, `\emph`}

// normaliseArg prepares a box argument for lookup: wrappers around the
// whole argument unwrapped, surrounding quotes, punctuation and markup
// trimmed, case and LaTeX spaces folded.
func normaliseArg(s string) string {
	for range 4 {
		s = strings.Trim(s, " \t\r\n$*_\"'`.!:;,")
		unwrapped := false
		for _, w := range textWrappers {
			if !strings.HasPrefix(s, w) || (len(s) > len(w) && isLetter(s[len(w)])) {
				continue
			}
			// Only a wrapper around the whole argument: "\text{in}correct"
			// is not a verdict word.
			rest := strings.TrimLeft(s[len(w):], " \t")
			if arg, ok := braceArg(rest, 0); ok && len(rest) == len(arg)+2 {
				s, unwrapped = arg, true
			}
			break
		}
		if !unwrapped {
			break
		}
	}
	s = strings.NewReplacer(`\ `, " ", "~", " ", `\,`, " ", `\;`, " ", `\quad`, " ").Replace(s)
	s = strings.Join(strings.Fields(strings.ToLower(s)), " ")
	return strings.Trim(s, " $*_\"'`.!:;,")
}
