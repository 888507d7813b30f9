package env

import (
	"fmt"
	"strings"
)

// Kind classifies an *Error.
type Kind string

// The kinds of failure a session reports.
const (
	// KindUnreachable: no connection to the environment (after Reset's
	// retries).
	KindUnreachable Kind = "unreachable"
	// KindTimeout: no complete answer within the call's timeout.
	KindTimeout Kind = "timeout"
	// KindStatus: the environment answered with an HTTP status other than
	// 200 (Error.Status).
	KindStatus Kind = "http_status"
	// KindMalformed: the answer was not the protocol's JSON.
	KindMalformed Kind = "malformed"
	// KindCanceled: the caller's context ended first.
	KindCanceled Kind = "canceled"
	// KindBadAction: the action could not be sent (a tool call whose
	// arguments are not a JSON object). The episode may go on: nothing
	// reached the environment.
	KindBadAction Kind = "bad_action"
	// KindUsage: the call was not allowed in the session's state (Step
	// before Reset or after Done, a closed session, a task for another
	// environment, a negative seed). Nothing reached the environment.
	KindUsage Kind = "usage"
)

// Error is every failure of a session: which call, against which
// environment, what kind, and why. Its text is one line that can be
// recorded on an episode's row as is.
type Error struct {
	Op     string // "open", "reset", "step", "state" or "close"
	URL    string // the environment's base URL, without credentials
	Kind   Kind
	Status int    // the HTTP status for KindStatus, else 0
	Reason string // what happened, one line
	Err    error  // the underlying error, when there is one
}

func (e *Error) Error() string {
	return fmt.Sprintf("environment %s %s: %s: %s", e.Op, e.URL, e.Kind, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }

// quote is at most n bytes of b, on one line, for a reason.
func quote(b []byte, n int) string {
	s := string(b)
	cut := len(s) > n
	if cut {
		s = s[:n]
		// Do not end inside a UTF-8 sequence.
		s = strings.ToValidUTF8(s, "")
	}
	s = strings.Join(strings.Fields(s), " ")
	if cut {
		s += "..."
	}
	return fmt.Sprintf("%q", s)
}
