package rollout

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Defaults of EndpointsConfig, used where a field is zero.
const (
	DefaultMaxAttempts     = 6
	DefaultBackoffInitial  = 500 * time.Millisecond
	DefaultBackoffMax      = 30 * time.Second
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 10 * time.Second
)

// EndpointsConfig describes a fleet of OpenAI-compatible servers that serve
// the same model, and how hard to try each request.
type EndpointsConfig struct {
	// URLs are the base URLs (ending in /v1); at least one.
	URLs  []string
	Model string
	// APIKey is sent as a bearer token to every URL. It is never logged or
	// recorded, and it is scrubbed from error messages.
	APIKey string
	// Timeout bounds one attempt (not the request with its retries); 0: no
	// bound beyond the caller's context.
	Timeout time.Duration
	// MaxInFlight is the most requests outstanding at one endpoint; 0: no
	// limit of its own (the caller's concurrency applies).
	MaxInFlight int
	// MaxAttempts is the most attempts per request, the first included, so
	// 1 disables retrying (0: DefaultMaxAttempts).
	MaxAttempts int
	// BackoffInitial and BackoffMax shape the wait before retry k (k = 1,
	// 2, ...): uniform in [0, min(BackoffMax, BackoffInitial * 2^(k-1))]
	// ("full jitter"). 0: the defaults.
	BackoffInitial, BackoffMax time.Duration
	// BreakerFailures consecutive retryable failures open an endpoint's
	// circuit breaker (0: DefaultBreakerFailures); BreakerCooldown later
	// one probe request is let through (0: DefaultBreakerCooldown).
	BreakerFailures int
	BreakerCooldown time.Duration
	// HTTPClient overrides the transport (tests, custom TLS). Nil: one
	// pooled transport shared by all URLs, owned by Endpoints.
	HTTPClient *http.Client
}

// Endpoints is a Policy over several endpoints serving the same model. Each
// request goes to the endpoint with the fewest requests in flight among
// those whose circuit breaker lets it through, and is retried on server and
// network faults:
//
//   - Retried: HTTP 429, 408 and 5xx, attempt timeouts, connection errors
//     (refused, reset, closed mid-body), malformed JSON and responses without
//     choices. Each of these also counts as a failure of the endpoint.
//   - Not retried: any other HTTP status (a 400 is the request's fault, a 401
//     the configuration's), the caller's context ending, and every response
//     that decoded, whatever its finish_reason: truncation is data.
//   - A retry waits a full-jitter backoff and prefers another endpoint. A
//     Retry-After (seconds or HTTP date, at most 5 minutes) on a failed
//     response holds that endpoint back from every request until it passes.
//   - Breaker: BreakerFailures consecutive failures open an endpoint; it gets
//     no requests for BreakerCooldown, then exactly one probe; the probe's
//     success closes it, its failure opens it for another cool-down. Any
//     HTTP response that is not a server fault counts as success.
//   - When every endpoint is open, a request waits for the earliest
//     cool-down to end instead of failing; each such wait uses one attempt
//     of its budget, so a dead fleet fails every request in bounded time.
//
// A request that still fails returns a *RequestFailure. Endpoints is safe for
// concurrent use; Close releases its idle connections.
type Endpoints struct {
	eps            []*endpoint
	maxInFlight    int
	maxAttempts    int
	backoffInitial time.Duration
	backoffMax     time.Duration
	breakFailures  int
	cooldown       time.Duration
	transport      *http.Transport // owned; nil when the caller gave a client

	mu sync.Mutex
	// changed is closed and replaced when an endpoint may have become
	// available, waking the requests waiting for one.
	changed chan struct{}
	waiters int
	next    int // rotates ties so equal endpoints share the load
}

type breakerState int

const (
	closed breakerState = iota
	open
	halfOpen
)

func (b breakerState) String() string {
	return [...]string{"closed", "open", "half-open"}[b]
}

// endpoint is one URL's state; every field but policy and index is guarded
// by Endpoints.mu.
type endpoint struct {
	index     int
	policy    *OpenAIPolicy
	inFlight  int
	failures  int // consecutive retryable failures
	state     breakerState
	openUntil time.Time
	probing   bool      // half-open and its probe is in flight
	holdUntil time.Time // Retry-After
	served    int64
	failed    int64
}

// NewEndpoints returns a Policy over cfg.URLs.
func NewEndpoints(cfg EndpointsConfig) (*Endpoints, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("endpoints: no base URL")
	}
	e := &Endpoints{
		maxInFlight: cfg.MaxInFlight, maxAttempts: cfg.MaxAttempts,
		backoffInitial: cfg.BackoffInitial, backoffMax: cfg.BackoffMax,
		breakFailures: cfg.BreakerFailures, cooldown: cfg.BreakerCooldown,
		changed: make(chan struct{}),
	}
	if e.maxAttempts <= 0 {
		e.maxAttempts = DefaultMaxAttempts
	}
	if e.backoffInitial <= 0 {
		e.backoffInitial = DefaultBackoffInitial
	}
	if e.backoffMax <= 0 {
		e.backoffMax = DefaultBackoffMax
	}
	e.backoffMax = max(e.backoffMax, e.backoffInitial)
	if e.breakFailures <= 0 {
		e.breakFailures = DefaultBreakerFailures
	}
	if e.cooldown <= 0 {
		e.cooldown = DefaultBreakerCooldown
	}
	hc := cfg.HTTPClient
	if hc == nil {
		conns := cfg.MaxInFlight
		if conns <= 0 {
			conns = 64
		}
		e.transport = newTransport(conns)
		e.transport.MaxIdleConns = conns * len(cfg.URLs)
		hc = &http.Client{Transport: e.transport}
	}
	for i, u := range cfg.URLs {
		if strings.TrimSpace(u) == "" {
			return nil, fmt.Errorf("endpoints: base URL %d is empty", i+1)
		}
		p := NewOpenAIPolicy(EndpointConfig{BaseURL: u, Model: cfg.Model, APIKey: cfg.APIKey, Timeout: cfg.Timeout, HTTPClient: hc})
		e.eps = append(e.eps, &endpoint{index: i, policy: p})
	}
	return e, nil
}

// Close releases idle connections. Requests still running are not affected.
func (e *Endpoints) Close() {
	if e.transport != nil {
		e.transport.CloseIdleConnections()
	}
}

// RequestFailure is the error of a request that failed for good. Its Error
// is one line: the attempts made, why it stopped, and the last failure with
// its HTTP status and endpoint; never the API key.
type RequestFailure struct {
	// Attempts is the number of requests sent; BreakerWaits the number of
	// waits because every endpoint's breaker was open.
	Attempts, BreakerWaits int
	// Endpoint is the URL of the last attempt ("" if none was sent).
	Endpoint string
	// Status is the last HTTP status, 0 when no response arrived.
	Status int
	// Retryable is false when the last failure was not worth retrying.
	Retryable bool
	// Last describes the last failure.
	Last string
	// Reason is why no further attempt was made when that was not the
	// last failure itself (every breaker open); "" otherwise.
	Reason string
	// Cause is the caller's context error when it ended the request.
	Cause error
}

func (f *RequestFailure) Error() string {
	var b strings.Builder
	switch {
	case f.Cause != nil:
		fmt.Fprintf(&b, "cancelled after %s", plural(f.Attempts, "attempt"))
	case f.Attempts > 0 && !f.Retryable:
		fmt.Fprintf(&b, "not retryable, after %s", plural(f.Attempts, "attempt"))
	default:
		fmt.Fprintf(&b, "gave up after %s", plural(f.Attempts, "attempt"))
	}
	if f.BreakerWaits > 0 {
		fmt.Fprintf(&b, " and %s for open circuit breakers", plural(f.BreakerWaits, "wait"))
	}
	if f.Reason != "" {
		fmt.Fprintf(&b, ": %s", f.Reason)
	}
	if f.Endpoint != "" {
		fmt.Fprintf(&b, "; last: %s from %s", f.Last, f.Endpoint)
	}
	return b.String()
}

// Unwrap returns the caller's context error, if that is what ended the
// request.
func (f *RequestFailure) Unwrap() error { return f.Cause }

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// errAllOpen is acquire's answer when every breaker is open and the request
// has no attempts left to wait with.
var errAllOpen = errors.New("every endpoint's circuit breaker is open")

// Sample implements Policy: it sends req to one endpoint after another until
// a response decodes, a failure is not retryable, the attempts run out or
// ctx ends. The Response names the endpoint that served it and the attempts
// it took.
func (e *Endpoints) Sample(ctx context.Context, req Request) (Response, error) {
	fail := &RequestFailure{}
	avoid := -1
	for {
		ep, err := e.acquire(ctx, avoid, fail)
		if err != nil {
			if ctx.Err() != nil {
				fail.Cause = ctx.Err()
			} else {
				fail.Reason = err.Error()
			}
			return Response{}, fail
		}
		fail.Attempts++
		resp, f := ep.policy.attempt(ctx, req)
		e.release(ep, f)
		if f == nil {
			resp.Endpoint, resp.Attempts = ep.policy.url, fail.Attempts
			return resp, nil
		}
		fail.Endpoint, fail.Status, fail.Retryable, fail.Last = ep.policy.url, f.status, f.retryable, f.msg
		if f.cancelled {
			fail.Cause = ctx.Err()
			return Response{}, fail
		}
		if !f.retryable || fail.Attempts+fail.BreakerWaits >= e.maxAttempts {
			return Response{}, fail
		}
		if err := sleep(ctx, e.backoff(fail.Attempts)); err != nil {
			fail.Cause = err
			return Response{}, fail
		}
		avoid = ep.index
	}
}

// backoff is the full-jitter wait before retry k (k >= 1).
func (e *Endpoints) backoff(k int) time.Duration {
	ceiling := e.backoffMax
	if k-1 < 62 {
		if d := e.backoffInitial << (k - 1); d > 0 && d < ceiling {
			ceiling = d
		}
	}
	return rand.N(ceiling + 1)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// acquire reserves an endpoint for one attempt, preferring any endpoint but
// avoid, then the fewest requests in flight. It waits while none is
// available: for a slot (MaxInFlight), a Retry-After hold, a half-open probe
// to finish, or, counted in fail.BreakerWaits against the attempt budget, an
// open breaker's cool-down.
func (e *Endpoints) acquire(ctx context.Context, avoid int, fail *RequestFailure) (*endpoint, error) {
	// counted is the cool-down this call has charged a wait for: wake-ups
	// while the same breakers stay open (other requests releasing) are free.
	var counted time.Time
	e.mu.Lock()
	for {
		now := time.Now()
		var best *endpoint
		var wake time.Time
		allOpen := true
		n := len(e.eps)
		for k := range n {
			ep := e.eps[(e.next+k)%n]
			if ep.state == open && !now.Before(ep.openUntil) {
				ep.state, ep.probing = halfOpen, false
			}
			if ep.state == open {
				wake = earliest(wake, ep.openUntil)
				continue
			}
			allOpen = false
			if ep.state == halfOpen && ep.probing {
				continue // woken by the probe's release
			}
			if now.Before(ep.holdUntil) {
				wake = earliest(wake, ep.holdUntil)
				continue
			}
			if e.maxInFlight > 0 && ep.inFlight >= e.maxInFlight {
				continue // woken by a release
			}
			if best == nil || better(ep, best, avoid) {
				best = ep
			}
		}
		if best != nil {
			best.inFlight++
			if best.state == halfOpen {
				best.probing = true
			}
			e.next = (best.index + 1) % n
			e.mu.Unlock()
			return best, nil
		}
		if allOpen && !wake.Equal(counted) {
			// The wait and the attempt after it must both fit the budget.
			if fail.Attempts+fail.BreakerWaits+1 >= e.maxAttempts {
				e.mu.Unlock()
				return nil, errAllOpen
			}
			fail.BreakerWaits++
			counted = wake
		}
		ch := e.changed
		e.waiters++
		e.mu.Unlock()
		err := waitFor(ctx, ch, wake)
		e.mu.Lock()
		e.waiters--
		if err != nil {
			e.mu.Unlock()
			return nil, err
		}
	}
}

func better(a, b *endpoint, avoid int) bool {
	if (a.index == avoid) != (b.index == avoid) {
		return b.index == avoid
	}
	return a.inFlight < b.inFlight
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// waitFor blocks until ch is closed, the wall clock reaches wake (if not
// zero), or ctx ends.
func waitFor(ctx context.Context, ch <-chan struct{}, wake time.Time) error {
	var timeout <-chan time.Time
	if !wake.IsZero() {
		t := time.NewTimer(time.Until(wake))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ch:
	case <-timeout:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// release returns ep's slot and feeds the attempt's outcome (nil: success)
// to its breaker.
func (e *Endpoints) release(ep *endpoint, f *failure) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ep.inFlight--
	now := time.Now()
	switch {
	case f == nil || (!f.retryable && !f.cancelled):
		// The endpoint answered: healthy, whatever the request's fate.
		ep.failures, ep.state, ep.probing = 0, closed, false
		if f == nil {
			ep.served++
		}
	case f.cancelled:
		// Says nothing about the endpoint; let another request probe.
		ep.probing = false
	default:
		ep.failed++
		ep.failures++
		if ep.state == halfOpen || ep.failures >= e.breakFailures {
			ep.state, ep.openUntil, ep.probing = open, now.Add(e.cooldown), false
		}
	}
	if f != nil && f.retryAfter > 0 {
		if until := now.Add(f.retryAfter); until.After(ep.holdUntil) {
			ep.holdUntil = until
		}
	}
	if e.waiters > 0 {
		close(e.changed)
		e.changed = make(chan struct{})
	}
}

// EndpointState is a snapshot of one endpoint, for tests and progress
// reports.
type EndpointState struct {
	URL      string
	Breaker  string // closed, open or half-open
	InFlight int
	// ConsecutiveFailures is the run of retryable failures since the last
	// success.
	ConsecutiveFailures int
	// Served and Failed count attempts that succeeded and that failed with
	// a server or network fault.
	Served, Failed int64
}

// States returns a snapshot of every endpoint, in URL order.
func (e *Endpoints) States() []EndpointState {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]EndpointState, len(e.eps))
	for i, ep := range e.eps {
		out[i] = EndpointState{
			URL: ep.policy.url, Breaker: ep.state.String(), InFlight: ep.inFlight,
			ConsecutiveFailures: ep.failures, Served: ep.served, Failed: ep.failed,
		}
	}
	return out
}
