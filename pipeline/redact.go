package pipeline

import (
	"context"
	"os"

	"github.com/redraft/redraft/internal/redact"
	"github.com/redraft/redraft/rollout"
)

// A base URL may carry credentials (http://user:pass@host/v1?api-key=...),
// and the errors of a request quote it: net/http's *url.Error names the
// request URL with its user name and query, and a server may echo a key back
// in its error body. Those errors become rows, lines of failures.jsonl and
// the journal, judge reasons and messages on stderr. ScrubPolicy is where
// they are cleaned, once, for every policy a configuration builds (the
// endpoint fleet, judges, critics, step judges).

// ScrubPolicy wraps p so that the errors and endpoint it returns hold none
// of secrets (see redact.Secrets) and no URL credentials. The wrapped
// error's message is scrubbed; errors.As and errors.Is still reach the
// original (a *rollout.RequestFailure's attempts and endpoint, a context
// error).
func ScrubPolicy(p rollout.Policy, secrets ...string) rollout.Policy {
	return &scrubbedPolicy{p: p, s: redact.NewScrubber(secrets...)}
}

type scrubbedPolicy struct {
	p rollout.Policy
	s *redact.Scrubber
}

func (p *scrubbedPolicy) Sample(ctx context.Context, req rollout.Request) (rollout.Response, error) {
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

// secrets lists the credentials the fleet's URLs carry and its API key, for
// ScrubPolicy.
func (e *EndpointConfig) secrets() []string {
	var out []string
	for _, u := range e.URLs() {
		out = append(out, redact.Secrets(u)...)
	}
	return append(out, os.Getenv(e.APIKeyEnv))
}

// Scrub wraps p, a policy over the fleet's URLs, with ScrubPolicy.
func (e *EndpointConfig) Scrub(p rollout.Policy) rollout.Policy {
	return ScrubPolicy(p, e.secrets()...)
}

// RedactedURLs is the fleet's base URLs without credentials, comma-separated,
// as the manifest's endpoint records them.
func (e *EndpointConfig) RedactedURLs() string {
	out := ""
	for i, u := range e.URLs() {
		if i > 0 {
			out += ","
		}
		out += redact.URL(u)
	}
	return out
}
