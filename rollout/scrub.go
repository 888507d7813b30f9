package rollout

import (
	"context"

	"github.com/redraft/redraft/internal/redact"
)

// A base URL may carry credentials (http://user:pass@host/v1?api-key=...),
// and the errors of a request quote it: net/http's *url.Error names the
// request URL with its user name and query, and a server may echo a key back
// in its error body. Those errors become rows, lines of failures.jsonl and
// the journal, judge reasons and messages on stderr. ScrubPolicy is where
// they are cleaned, once, for every policy a configuration builds (the
// endpoint fleet, judges, critics, step judges: see EndpointConfig.Dial).

// ScrubPolicy wraps p so that the errors and endpoint it returns hold none
// of secrets (see redact.Secrets) and no URL credentials. The wrapped
// error's message is scrubbed; errors.As and errors.Is still reach the
// original (a *RequestFailure's attempts and endpoint, a context error).
func ScrubPolicy(p Policy, secrets ...string) Policy {
	return &scrubbedPolicy{p: p, s: redact.NewScrubber(secrets...)}
}

type scrubbedPolicy struct {
	p Policy
	s *redact.Scrubber
}

func (p *scrubbedPolicy) Sample(ctx context.Context, req Request) (Response, error) {
	resp, err := p.p.Sample(ctx, req)
	resp.Endpoint = p.s.Scrub(resp.Endpoint)
	if err != nil {
		if msg := p.s.Scrub(err.Error()); msg != err.Error() {
			err = &scrubbedError{msg: msg, err: err}
		}
	}
	return resp, err
}

// scrubbedError is an error whose message had credentials removed.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
