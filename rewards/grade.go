package rewards

import (
	"context"

	"github.com/redraft/redraft/rewards/mathgrade"
	"github.com/redraft/redraft/rollout"
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

	// The fields below are a Verifier's; a Grader leaves them zero.

	// Unverified is set when the verifier could not decide (a sandbox or
	// plug-in failure, not the response's fault): the verifiable component
	// is then null with Reason, never 0.
	Unverified bool
	// Value is the verifier's own reward when it grades on a scale (a
	// plug-in's score); nil means 1 when Correct, else 0.
	Value *float64
	// PassRate is the fraction of the task's tests passed (code); nil when
	// the verifier runs no tests.
	PassRate *float64
	// Detail is the verifier's account of its decision (per-test verdicts,
	// the program's output, a plug-in's answer), stored on the row's
	// response_metadata under DetailKey.
	DetailKey string
	Detail    any
	// Feedback is what the verifier would tell the model about a wrong
	// response (the first failing test and its error, trimmed): the
	// feedback of execution-feedback episodes. "" when it has none.
	Feedback string
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

// Verifier decides responses by doing something rather than comparing
// answers: running a program against the task's tests, asking a plug-in.
// It must be safe for concurrent use. A failure to verify is a Verdict with
// Unverified set and a Reason, never an error: an environment or verifier
// that fails ends one sample, not the run.
type Verifier interface {
	// Verifies reports whether the verifier decides this task's responses;
	// the Grader decides the others.
	Verifies(task rollout.Task) bool
	// Verify decides each response, returning one Verdict per sample in
	// order. Samples are responses (no failed or verification samples).
	Verify(ctx context.Context, task rollout.Task, samples []rollout.Sample) []Verdict
}

// FinishGrader is a Grader that takes into account how the server said a
// response ended (its finish_reason, "" when unknown): a response the
// server cut off ("length") is graded as cut off, one it ended ("stop") is
// not, and only an unknown ending is guessed from the text.
type FinishGrader interface {
	GradeFinished(response, reference, finishReason string) Verdict
}

// MathGrader is the default Grader: redraft's math answer engine
// (rewards/mathgrade). It finds the answer stated as final (a bare short
// answer is its own answer) and compares it by value: numbers, fractions,
// expressions, intervals, sets, tuples, matrices and text.
type MathGrader struct{ g *mathgrade.Grader }

// NewMathGrader returns a MathGrader with the engine's limits.
func NewMathGrader(opts mathgrade.Options) MathGrader { return MathGrader{g: mathgrade.New(opts)} }

// Grade implements Grader.
func (m MathGrader) Grade(response, reference string) Verdict {
	r := m.g.Grade(response, reference)
	return Verdict{Correct: r.Correct, Found: r.Found, Answer: r.Answer, ExtractRule: r.ExtractRule,
		Rule: r.Rule, Pred: r.Pred, Gold: r.Gold, Reason: r.Reason}
}

// GradeFinished implements FinishGrader (see mathgrade's GradeFinished).
func (m MathGrader) GradeFinished(response, reference, finishReason string) Verdict {
	r := m.g.GradeFinished(response, reference, finishReason)
	return Verdict{Correct: r.Correct, Found: r.Found, Answer: r.Answer, ExtractRule: r.ExtractRule,
		Rule: r.Rule, Pred: r.Pred, Gold: r.Gold, Reason: r.Reason}
}

// Extract implements Grader.
func (MathGrader) Extract(response string) (string, string, bool) { return mathgrade.Extract(response) }

// Equivalent implements Grader: a and b are bare answers, each its own
// stated answer.
func (m MathGrader) Equivalent(a, b string) bool { return m.g.Grade(a, b).Correct }
