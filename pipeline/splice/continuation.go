package splice

import (
	"strings"
	"unicode"

	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rollout"
)

// Keep settings: which spliced trajectories are written.
const (
	KeepAll     = "all"
	KeepCorrect = "correct"
)

// continuationMeta records how a continuation was asked for and what came
// back, so a row says exactly what the model was sent.
type continuationMeta struct {
	Mode          string `json:"mode"`
	RequestedMode string `json:"requested_mode"`
	// EchoedPrefix: the server returned the prefix before the continuation
	// (llama-server) and it was cut.
	EchoedPrefix bool `json:"echoed_prefix,omitempty"`
	// Fallback is the 400 that made auto mode use a user turn.
	Fallback             string            `json:"fallback,omitempty"`
	ContinueFinalMessage bool              `json:"continue_final_message"`
	Messages             []rollout.Message `json:"messages"`
	Seed                 int64             `json:"seed"`
	Sampling             rollout.Sampling  `json:"sampling"`
	Model                string            `json:"model,omitempty"`
	Endpoint             string            `json:"endpoint,omitempty"`
	Attempts             int               `json:"attempts,omitempty"`
	FinishReason         string            `json:"finish_reason"`
	PromptTokens         *int              `json:"prompt_tokens,omitempty"`
	CompletionTokens     *int              `json:"completion_tokens,omitempty"`
	// LeadingWhitespace is the whitespace the continuation began with; the
	// row keeps it in the separator before the continuation segment.
	LeadingWhitespace string `json:"leading_whitespace,omitempty"`
}

// newContinuationMeta describes c. It returns the continuation without its
// leading whitespace, and that whitespace.
func newContinuationMeta(c rollout.Continuation, requested string, seed int64, sampling rollout.Sampling, model string) (m continuationMeta, lead, text string) {
	if requested == "" {
		requested = rollout.ContinueAuto
	}
	m = continuationMeta{
		Mode: c.Mode, RequestedMode: requested, EchoedPrefix: c.EchoedPrefix, Fallback: c.Fallback, ContinueFinalMessage: c.ContinueFinal,
		Messages: c.Messages, Seed: seed, Sampling: sampling, Model: model,
		Endpoint: c.Response.Endpoint, Attempts: c.Response.Attempts, FinishReason: c.Response.FinishReason,
	}
	if c.Response.Model != "" {
		m.Model = c.Response.Model
	}
	if u := c.Response.Usage; u != nil {
		p, q := u.PromptTokens, u.CompletionTokens
		m.PromptTokens, m.CompletionTokens = &p, &q
	}
	text = strings.TrimLeftFunc(c.Text, unicode.IsSpace)
	m.LeadingWhitespace = c.Text[:len(c.Text)-len(text)]
	return m, m.LeadingWhitespace, text
}

// gradeMeta is the verifier's decision on a corrected solution.
type gradeMeta struct {
	Reference       string `json:"reference"`
	ReferenceSource string `json:"reference_source,omitempty"`
	// Correct is null when the solution could not be graded (no reference);
	// Reason then says why.
	Correct *bool  `json:"correct"`
	Answer  string `json:"answer,omitempty"`
	Rule    string `json:"rule,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// grade grades text against reference, with the finish_reason the server
// reported for it when the grader takes one (a "stop" response is never
// graded as cut off, a "length" one is: rewards.FinishGrader); an empty
// reference gives a null verdict with noRef as the reason.
func grade(g rewards.Grader, text, finishReason, reference, source, noRef string) *gradeMeta {
	gm := &gradeMeta{Reference: reference, ReferenceSource: source}
	if reference == "" {
		gm.Reason = noRef
		return gm
	}
	var v rewards.Verdict
	if fg, ok := g.(rewards.FinishGrader); ok {
		v = fg.GradeFinished(text, reference, finishReason)
	} else {
		v = g.Grade(text, reference)
	}
	ok := v.Correct
	gm.Correct, gm.Answer, gm.Rule, gm.Reason = &ok, v.Answer, v.Rule, v.Reason
	return gm
}

// reward is 1 or 0 for a graded solution, nil otherwise.
func (gm *gradeMeta) reward() *float64 {
	if gm == nil || gm.Correct == nil {
		return nil
	}
	r := 0.0
	if *gm.Correct {
		r = 1
	}
	return &r
}

// keepReason says why keep=correct drops a graded solution ("" to keep).
func (gm *gradeMeta) keepReason(what string) string {
	switch {
	case gm == nil:
		return what + " was not graded"
	case gm.Correct == nil:
		return what + " could not be graded: " + gm.Reason
	case !*gm.Correct:
		r := what + " graded incorrect"
		if gm.Answer != "" {
			r += " (answer " + clip(gm.Answer, 40) + ", reference " + clip(gm.Reference, 40) + ")"
		} else if gm.Reason != "" {
			r += ": " + gm.Reason
		}
		return r
	}
	return ""
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "..."
}
