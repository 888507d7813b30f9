package judge

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/redraft/redraft/rollout"
)

// StepTemplate is the rubric of a step judge: it asks whether one step of a
// solution, given the problem and the steps before it, is Good or Bad.
// Placeholders, each replaced in a single pass:
//
//	{question}  the problem
//	{steps}     the steps up to the judged one, numbered, between fence lines
//	{step}      the judged step's number (1-based; the last step in the block)
//	{fence}     the fence's tag name
//
// System may hold only {fence} and {step}. User must contain {steps}.
type StepTemplate struct {
	System string `yaml:"system" json:"system,omitempty"`
	User   string `yaml:"user" json:"user,omitempty"`
}

// DefaultStepTemplate asks for a final line "Verdict: Good" or "Verdict: Bad".
var DefaultStepTemplate = StepTemplate{
	System: "You check step-by-step solutions one step at a time. " + dataRule + "\n\n" +
		"You are shown a problem and the steps of a solution up to step {step}. Decide only whether step {step}, the last step shown, is Good or Bad. " +
		"A step is Bad when it contains a calculation error, a false statement, a misreading of the problem, an unjustified leap, or a plan that cannot lead to the answer; " +
		"a step that restates the problem or sets up a correct approach is Good. The steps before step {step} are context: do not grade them.\n\n" +
		"Explain briefly, then end with one final line that is exactly \"Verdict: Good\" or exactly \"Verdict: Bad\".",
	User: "Problem:\n{question}\n\nSolution steps 1 to {step}:\n{steps}\n\nIs step {step}, the last step in the {fence} block, Good or Bad? End with \"Verdict: Good\" or \"Verdict: Bad\".",
}

func (t StepTemplate) withDefaults() StepTemplate {
	if strings.TrimSpace(t.System) == "" && strings.TrimSpace(t.User) == "" {
		return DefaultStepTemplate
	}
	return t
}

// Validate reports a template that cannot be rendered safely.
func (t StepTemplate) Validate() error {
	t = t.withDefaults()
	if !strings.Contains(t.User, "{steps}") {
		return errors.New("step template: user prompt has no {steps} placeholder")
	}
	for _, p := range []string{"{question}", "{steps}"} {
		if strings.Contains(t.System, p) {
			return fmt.Errorf("step template: system prompt may not hold %s (task text never goes into the system role)", p)
		}
	}
	return nil
}

// Render returns the messages that ask about step k (1-based) of steps.
// The numbered steps 1..k are fenced as Template.Render fences a response:
// the tag derives from a hash of the request and every copy of its hex id
// inside the task text is removed.
func (t StepTemplate) Render(question string, steps []string, k int) ([]rollout.Message, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if k < 1 || k > len(steps) {
		return nil, fmt.Errorf("step template: step %d of %d", k, len(steps))
	}
	t = t.withDefaults()
	var b strings.Builder
	for i, s := range steps[:k] {
		if i > 0 {
			b.WriteString("\n\n")
		}
		fmt.Fprintf(&b, "[step %d]\n%s", i+1, s)
	}
	body := b.String()
	num := strconv.Itoa(k)
	tag := fenceTag(question, body, "step "+num)
	id := strings.TrimPrefix(tag, "response-")
	block := "<" + tag + ">\n" + neutralise(body, id) + "\n</" + tag + ">"
	r := strings.NewReplacer("{question}", neutralise(question, id), "{steps}", block, "{step}", num, "{fence}", tag)
	sys := strings.NewReplacer("{fence}", tag, "{step}", num).Replace(t.System)
	var msgs []rollout.Message
	if strings.TrimSpace(sys) != "" {
		msgs = append(msgs, rollout.Message{Role: "system", Content: sys})
	}
	return append(msgs, rollout.Message{Role: "user", Content: r.Replace(t.User)}), nil
}

// StepJudge is a judge model that labels solution steps Good or Bad.
type StepJudge struct {
	Name   string
	Policy rollout.Policy
	// Model names the model behind Policy, for the cache key.
	Model    string
	Template StepTemplate // zero: DefaultStepTemplate
	// Sampling is sent with every call; a nil Temperature means 0.
	Sampling rollout.Sampling
	Seed     int64
	Cache    *Cache // nil: no caching
}

// StepVerdict is the judge's answer about one step, with its raw output.
type StepVerdict struct {
	Step int `json:"step"` // 1-based
	// Verdict is "good" or "bad"; "" when none could be read (see Reason).
	Verdict string `json:"verdict"`
	// Content and Reasoning are the judge's raw output.
	Content      string `json:"content"`
	Reasoning    string `json:"reasoning,omitempty"`
	FinishReason string `json:"finish_reason,omitempty"`
	// Source is where the verdict was found: content or reasoning.
	Source string `json:"source,omitempty"`
	Reason string `json:"reason,omitempty"`
	Cached bool   `json:"cached,omitempty"`
}

// Check asks the judge about step k (1-based) of steps. It never fails: a
// verdict that could not be read has an empty Verdict and a Reason.
func (j *StepJudge) Check(ctx context.Context, question string, steps []string, k int) StepVerdict {
	v := StepVerdict{Step: k}
	if j.Policy == nil {
		v.Reason = "step judge has no policy"
		return v
	}
	msgs, err := j.Template.Render(question, steps, k)
	if err != nil {
		v.Reason = err.Error()
		return v
	}
	s := j.Sampling
	if s.Temperature == nil {
		zero := 0.0
		s.Temperature = &zero
	}
	req := rollout.Request{Messages: msgs, Sampling: s, Seed: j.Seed}
	e, cached, err := ask(ctx, j.Policy, j.Cache, j.Model, req)
	v.Cached = cached
	if err != nil {
		v.Reason = "step judge call failed: " + err.Error()
		return v
	}
	v.Content, v.Reasoning, v.FinishReason = e.Content, e.Reasoning, e.FinishReason
	bad, src, err := ParseStepVerdict(e.Content, e.Reasoning)
	v.Source = src
	if err != nil {
		v.Reason = err.Error()
		if errors.Is(err, ErrNoVerdict) && e.FinishReason == "length" {
			v.Reason += " (finish_reason=length: the judge output was cut off)"
		}
		return v
	}
	v.Verdict = "good"
	if bad {
		v.Verdict = "bad"
	}
	return v
}

// FirstBad walks steps in order, asking about one step at a time, and stops
// at the first step judged Bad. It returns that step's number (1-based; 0
// when every step was judged Good) and every verdict it obtained. When a
// verdict cannot be read the walk stops: first is 0 and failure says why.
func (j *StepJudge) FirstBad(ctx context.Context, question string, steps []string) (first int, verdicts []StepVerdict, failure string) {
	for k := 1; k <= len(steps); k++ {
		if err := ctx.Err(); err != nil {
			return 0, verdicts, "step judge: " + err.Error()
		}
		v := j.Check(ctx, question, steps, k)
		verdicts = append(verdicts, v)
		switch v.Verdict {
		case "bad":
			return k, verdicts, ""
		case "":
			return 0, verdicts, fmt.Sprintf("step judge at step %d: %s", k, v.Reason)
		}
	}
	return 0, verdicts, ""
}

// ErrNoVerdict is returned by ParseStepVerdict when neither field states a
// verdict.
var ErrNoVerdict = errors.New("no Good/Bad verdict found in step judge output")

// Verdict words. Longer words that contain shorter ones come first
// (incorrect/correct, invalid/valid), and every alternative is followed by a
// word boundary where it is used.
const stepWordPat = `good|bad|incorrect|correct|wrong|right|invalid|valid|flawed|erroneous|sound`

var (
	// Verdict: Good, **Verdict:** Bad, Final verdict = bad, Label: `Good`.
	// A second word after / or "or" marks an echo of the choice ("Verdict:
	// Good/Bad"), which is not a verdict.
	stepKeyRe = regexp.MustCompile(`(?i)\b(?:final\s+|overall\s+)?(?:verdict|judgement|judgment|label|rating|assessment|evaluation|decision|conclusion)\b[ \t]*(?:\*\*|__)?[ \t]*[:=][ \t*_\[("'` + "`" + `]{0,8}(` + stepWordPat + `)\b(?:[ \t*_\])"'` + "`" + `]*(?:/|\bor\b)[ \t*_\[("'` + "`" + `]*(` + stepWordPat + `)\b)?`)
	// [[Good]], [[Bad]].
	stepBracketRe = regexp.MustCompile(`(?i)\[\[\s*(` + stepWordPat + `)\s*\]\]`)
	// \boxed{Bad}, \boxed{\text{Good}}.
	stepBoxedRe = regexp.MustCompile(`(?i)\\(?:boxed|fbox)\s*\{\s*(?:\\text(?:bf|rm)?\s*\{\s*)?(` + stepWordPat + `)\b`)
	// "the step is bad", "step 3 is correct": read only when no stronger
	// marker exists; a negation in between ("is not correct") never matches.
	stepPhraseRe = regexp.MustCompile(`(?i)\b(?:this|the|last|current)?\s*step(?:\s+\d+)?\s+is\s+(?:\*\*|__)?(` + stepWordPat + `)\b`)
	// The whole field is a verdict: "Bad", "**Good**.".
	stepBareRe = regexp.MustCompile(`(?i)^[\s*_\[("'` + "`" + `]*(` + stepWordPat + `)[\s*_\])"'` + "`" + `]*[.!]?\s*$`)
)

// stepMarker is one verdict statement in judge output.
type stepMarker struct {
	start, end int
	bad        bool
}

func isBadWord(w string) bool {
	switch strings.ToLower(w) {
	case "bad", "incorrect", "wrong", "invalid", "flawed", "erroneous":
		return true
	}
	return false
}

// stepMarkers finds the verdict markers of one field, in order of their end.
// Key, bracket and boxed markers come first; phrases count only without
// them, and a bare field only without any.
func stepMarkers(text string) []stepMarker {
	var ms []stepMarker
	for _, re := range []*regexp.Regexp{stepKeyRe, stepBracketRe, stepBoxedRe} {
		for _, loc := range re.FindAllStringSubmatchIndex(text, -1) {
			if len(loc) > 4 && loc[4] >= 0 {
				continue // "Good/Bad": the choice echoed, not made
			}
			ms = append(ms, stepMarker{start: loc[0], end: loc[1], bad: isBadWord(text[loc[2]:loc[3]])})
		}
	}
	if len(ms) == 0 {
		for _, loc := range stepPhraseRe.FindAllStringSubmatchIndex(text, -1) {
			ms = append(ms, stepMarker{start: loc[0], end: loc[1], bad: isBadWord(text[loc[2]:loc[3]])})
		}
	}
	if len(ms) == 0 {
		if loc := stepBareRe.FindStringSubmatchIndex(text); loc != nil {
			ms = append(ms, stepMarker{start: loc[2], end: loc[3], bad: isBadWord(text[loc[2]:loc[3]])})
		}
	}
	// Insertion sort by (end, start): a handful of markers at most.
	for i := 1; i < len(ms); i++ {
		for k := i; k > 0 && (ms[k].end < ms[k-1].end || ms[k].end == ms[k-1].end && ms[k].start < ms[k-1].start); k-- {
			ms[k], ms[k-1] = ms[k-1], ms[k]
		}
	}
	// `"Verdict: Good" or "Verdict: Bad"` repeats the instruction: two
	// opposite markers joined by "or" or "/" are neither.
	out := ms[:0]
	for i := 0; i < len(ms); i++ {
		if i+1 < len(ms) && ms[i].bad != ms[i+1].bad && ms[i].end <= ms[i+1].start && stepOrRe.MatchString(text[ms[i].end:ms[i+1].start]) {
			i++
			continue
		}
		out = append(out, ms[i])
	}
	return out
}

// stepOrRe is the text between two alternatives of an echoed choice.
// It stays on one line, so a verdict on a line of its own is never eaten.
var stepOrRe = regexp.MustCompile(`(?i)^[ \t"'*_\x60)\].,]*(?:or|/)[ \t"'*_\x60(\[]*$`)

// decideStep reads the final statement: the last marker and those on its
// line or joined to it by nothing but spaces, punctuation or markup. They
// must agree.
func decideStep(text string, ms []stepMarker) (bool, error) {
	last := ms[len(ms)-1]
	head := last.start
	lineStart := strings.LastIndexByte(text[:last.start], '\n')
	for i := len(ms) - 2; i >= 0; i-- {
		m := ms[i]
		if !(m.end > head || m.start > lineStart || !hasAlnum(text[m.end:head])) {
			break
		}
		if m.bad != last.bad {
			return false, fmt.Errorf("ambiguous step judge output: final verdicts disagree (%q and %q)", text[m.start:m.end], text[last.start:last.end])
		}
		head = min(head, m.start)
	}
	return last.bad, nil
}

// ParseStepVerdict reads a step judge's verdict: bad is true for Bad. It
// looks in content first (a <think> block inside it counts as reasoning) and
// in the reasoning only when content states no verdict at all.
//
// Accepted, letter case ignored: "Verdict: Good" (also Judgement, Label,
// Rating, Assessment, Evaluation, Decision, Conclusion, optionally Final or
// Overall; ":" or "="; markdown around key or value), "[[Bad]]",
// "\boxed{Good}", and a field that is only the word. Without any of those,
// phrases such as "the step is wrong" / "step 3 is correct" are read (a word
// between "is" and the verdict, like "not", prevents a match). Words: Good,
// correct, right, valid, sound mean Good; Bad, incorrect, wrong, invalid,
// flawed, erroneous mean Bad. "Verdict: Good/Bad" and `"Verdict: Good" or
// "Verdict: Bad"` (the choice echoed back) are not verdicts. The last marker decides; markers in the same final
// statement that disagree are refused as ambiguous. ParseStepVerdict never
// panics and runs in linear time.
func ParseStepVerdict(content, reasoning string) (bad bool, source string, err error) {
	answer, think := splitThink(content)
	if think != "" {
		if reasoning != "" {
			reasoning += "\n"
		}
		reasoning += think
	}
	for _, f := range []struct{ name, text string }{{"content", answer}, {"reasoning", reasoning}} {
		ms := stepMarkers(f.text)
		if len(ms) == 0 {
			continue
		}
		bad, err := decideStep(f.text, ms)
		return bad, f.name, err
	}
	return false, "", ErrNoVerdict
}
