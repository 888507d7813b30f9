package rollout

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Defaults NewEndpoints uses where a setting is zero (PolicyDefaults holds
// them, with the others).
const (
	DefaultMaxAttempts     = 6
	DefaultBackoffInitial  = 500 * time.Millisecond
	DefaultBackoffMax      = 30 * time.Second
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 10 * time.Second
	DefaultBreakerWait     = 5 * time.Minute
)

// Endpoints is a Policy over several endpoints serving the same model (an
// EndpointConfig's URLs). Each request goes to the endpoint with the fewest
// requests in flight among those whose circuit breaker lets it through
// (and under MaxInFlightPerEndpoint, with at most MaxInFlight in flight
// over all of them), and is retried on server and network faults:
//
//   - Retried: HTTP 429, 408 and 5xx, attempt timeouts, stalls (no data
//     for IdleTimeout), connection errors (refused, reset, closed
//     mid-body), malformed JSON or event streams, an error reported in a
//     200, and 200s without an answer (no choices, no message, a message
//     with nothing in it, nothing generated: see answer.response). Each of
//     these also counts as a failure of the endpoint.
//   - Not retried: any other HTTP status (a 400 is the request's fault, a 401
//     the configuration's), a response over MaxResponseBytes (the same seed
//     would bring it again; not the endpoint's fault either), the caller's
//     context ending, and every answer, whatever its finish_reason:
//     truncation is data.
//   - A retry waits a full-jitter backoff and prefers another endpoint. A
//     Retry-After (seconds or HTTP date, at most 5 minutes) on a failed
//     response holds that endpoint back from every request until it passes.
//   - Retries: at most Retries attempts in all.
//   - Breaker: BreakerFailures consecutive failures open an endpoint; it gets
//     no requests for BreakerCooldown, then exactly one probe; the probe's
//     success closes it, its failure opens it for another cool-down. Any
//     HTTP response that is not a server fault counts as success. A failure
//     of an attempt that started before the endpoint's last success is not
//     counted: the endpoint answered since, so the failure is the request's
//     own (a request that hung while others were served), not a sign that
//     the endpoint is down. Otherwise a few hung requests, failing one
//     after another while nothing else is in flight, would open a healthy
//     endpoint's breaker and stall every request.
//   - When no endpoint takes requests because of its breaker (open, or
//     half-open with its probe in flight), a request waits instead of
//     failing. Waiting uses none of its attempts (a partial outage must not
//     turn into failures of requests that were never sent); it is bounded
//     by time instead: BreakerWait in all, so a dead fleet fails every
//     request in bounded time.
//   - SampleTimeout bounds a request from start to end, whatever it is
//     doing, so that one sample cannot hold its group, and the groups
//     written after it, without bound.
//
// A request that still fails returns a *RequestFailure. Endpoints is safe for
// concurrent use; Close releases its idle connections.
type Endpoints struct {
	eps            []*endpoint
	maxInFlight    int // per endpoint
	maxTotal       int // over all endpoints
	maxAttempts    int
	backoffInitial time.Duration
	backoffMax     time.Duration
	breakFailures  int
	cooldown       time.Duration
	breakerWait    time.Duration
	sampleTimeout  time.Duration
	transport      *http.Transport // owned; nil when the caller gave a client

	mu sync.Mutex
	// changed is closed and replaced when an endpoint may have become
	// available, waking the requests waiting for one.
	changed chan struct{}
	waiters int
	next    int // rotates ties so equal endpoints share the load
	total   int // requests in flight over all endpoints
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
	// alive is when the endpoint last answered (any response that is not
	// a server fault).
	alive  time.Time
	served int64
	failed int64
}

// NewEndpoints returns a Policy over cfg's URLs, with the API key read from
// cfg.APIKeyEnv. A setting left zero gets its default (DefaultMaxAttempts,
// ...; Timeout, SampleTimeout, MaxInFlight and MaxInFlightPerEndpoint: no
// bound). Its errors quote the URLs as given: EndpointConfig.Dial, which
// scrubs them, is what a configuration uses.
func NewEndpoints(cfg EndpointConfig) (*Endpoints, error) {
	return buildEndpoints(cfg, os.Getenv(cfg.APIKeyEnv), nil)
}

// buildEndpoints is NewEndpoints with the key given, and the transport when
// hc is not nil.
func buildEndpoints(cfg EndpointConfig, key string, hc *http.Client) (*Endpoints, error) {
	urls := cfg.URLs()
	if len(urls) == 0 {
		return nil, errors.New("endpoints: no base URL")
	}
	e := &Endpoints{
		maxInFlight: max(cfg.MaxInFlightPerEndpoint, 0), maxTotal: max(cfg.MaxInFlight, 0), maxAttempts: cfg.Retries,
		backoffInitial: time.Duration(cfg.BackoffInitial), backoffMax: time.Duration(cfg.BackoffMax),
		breakFailures: cfg.BreakerFailures, cooldown: time.Duration(cfg.BreakerCooldown),
		breakerWait: time.Duration(cfg.BreakerWait), sampleTimeout: max(time.Duration(cfg.SampleTimeout), 0),
		changed: make(chan struct{}),
	}
	if e.breakerWait <= 0 {
		e.breakerWait = DefaultBreakerWait
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
	if hc == nil {
		conns := e.maxInFlight
		if conns <= 0 {
			conns = e.maxTotal
		}
		if conns <= 0 {
			conns = 64
		}
		e.transport = newTransport(conns)
		e.transport.MaxIdleConns = conns * len(urls)
		hc = &http.Client{Transport: e.transport}
	}
	for i, u := range urls {
		if strings.TrimSpace(u) == "" {
			return nil, fmt.Errorf("endpoints: base URL %d is empty", i+1)
		}
		p := newOpenAIPolicy(attemptConfig{
			baseURL: u, model: cfg.Model, apiKey: key, timeout: time.Duration(cfg.Timeout), client: hc,
			maxBytes: int64(cfg.MaxResponseBytes), stream: cfg.Stream, idle: time.Duration(cfg.IdleTimeout),
			engineTokens: cfg.EngineTokens,
		})
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
	// times the request had to wait because no endpoint's breaker let it
	// through, and BreakerWaited how long that took in all.
	Attempts, BreakerWaits int
	BreakerWaited          time.Duration
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
		fmt.Fprintf(&b, " and %s waiting for open circuit breakers", f.BreakerWaited.Round(time.Millisecond))
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

// errAllOpen is acquire's answer when no breaker lets the request through
// and it has waited BreakerWait.
var errAllOpen = errors.New("every endpoint's circuit breaker is open")

// errSampleDeadline is the cause of a request's context when SampleTimeout
// passed.
var errSampleDeadline = errors.New("sample deadline")

// Sample implements Policy: it sends req to one endpoint after another until
// a response decodes, a failure is not retryable, the attempts run out, the
// sample deadline passes or ctx ends. The Response names the endpoint that
// served it and the attempts it took.
func (e *Endpoints) Sample(ctx context.Context, req Request) (Response, error) {
	sctx := ctx
	if e.sampleTimeout > 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeoutCause(ctx, e.sampleTimeout, errSampleDeadline)
		defer cancel()
	}
	fail := &RequestFailure{}
	avoid := -1
	for {
		ep, err := e.acquire(sctx, avoid, fail)
		if err != nil {
			return Response{}, e.stopped(ctx, sctx, fail, err)
		}
		fail.Attempts++
		started := time.Now()
		resp, f := ep.policy.attempt(sctx, req)
		e.release(ep, f, started)
		if f == nil {
			resp.Endpoint, resp.Attempts = ep.policy.url, fail.Attempts
			return resp, nil
		}
		fail.Endpoint, fail.Status, fail.Retryable, fail.Last = ep.policy.url, f.status, f.retryable, f.msg
		if f.cancelled {
			if ctx.Err() == nil {
				fail.Last = "cut off by the sample deadline"
				if f.status != 0 {
					fail.Last = fmt.Sprintf("HTTP %d: %s", f.status, fail.Last)
				}
			}
			return Response{}, e.stopped(ctx, sctx, fail, sctx.Err())
		}
		if !f.retryable || fail.Attempts >= e.maxAttempts {
			return Response{}, fail
		}
		if err := sleep(sctx, e.backoff(fail.Attempts)); err != nil {
			return Response{}, e.stopped(ctx, sctx, fail, err)
		}
		avoid = ep.index
	}
}

// stopped completes fail for a request that ended on err before its
// attempts ran out: the caller's context ended (Cause), the sample deadline
// passed or every breaker stayed open (Reason).
func (e *Endpoints) stopped(ctx, sctx context.Context, fail *RequestFailure, err error) *RequestFailure {
	switch {
	case ctx.Err() != nil:
		fail.Cause = ctx.Err()
	case errors.Is(context.Cause(sctx), errSampleDeadline):
		fail.Reason = fmt.Sprintf("no answer within endpoint.sample_timeout (%s)", e.sampleTimeout)
		fail.Retryable = true
	default:
		fail.Reason = err.Error()
		fail.Retryable = true
	}
	return fail
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
// available: for a slot (MaxInFlight, MaxInFlightPerEndpoint), a
// Retry-After hold, or a breaker (an open one's cool-down, a half-open
// one's probe). Breaker waits are counted
// in fail (BreakerWaits, BreakerWaited) and bounded by BreakerWait over the
// whole request; they use no attempt.
func (e *Endpoints) acquire(ctx context.Context, avoid int, fail *RequestFailure) (*endpoint, error) {
	counted := false // this call's breaker wait is counted in BreakerWaits
	e.mu.Lock()
	for {
		now := time.Now()
		var best *endpoint
		var wake time.Time
		blocked := true // by breakers, every endpoint
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
			if ep.state == halfOpen && ep.probing {
				continue // woken by the probe's release
			}
			blocked = false
			if now.Before(ep.holdUntil) {
				wake = earliest(wake, ep.holdUntil)
				continue
			}
			if e.maxInFlight > 0 && ep.inFlight >= e.maxInFlight || e.maxTotal > 0 && e.total >= e.maxTotal {
				continue // woken by a release
			}
			if best == nil || better(ep, best, avoid) {
				best = ep
			}
		}
		if best != nil {
			best.inFlight++
			e.total++
			if best.state == halfOpen {
				best.probing = true
			}
			e.next = (best.index + 1) % n
			e.mu.Unlock()
			return best, nil
		}
		if blocked {
			left := e.breakerWait - fail.BreakerWaited
			if left <= 0 {
				e.mu.Unlock()
				return nil, errAllOpen
			}
			if !counted {
				fail.BreakerWaits++
				counted = true
			}
			wake = earliest(wake, now.Add(left))
		}
		ch := e.changed
		e.waiters++
		e.mu.Unlock()
		err := waitFor(ctx, ch, wake)
		e.mu.Lock()
		e.waiters--
		if blocked {
			fail.BreakerWaited += time.Since(now)
		}
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

// release returns ep's slot and feeds the outcome (nil: success) of the
// attempt that started at started to its breaker.
func (e *Endpoints) release(ep *endpoint, f *failure, started time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ep.inFlight--
	e.total--
	now := time.Now()
	switch {
	case f == nil || (!f.retryable && !f.cancelled):
		// The endpoint answered: healthy, whatever the request's fate.
		ep.failures, ep.state, ep.probing, ep.alive = 0, closed, false, now
		if f == nil {
			ep.served++
		}
	case f.cancelled:
		// Says nothing about the endpoint; let another request probe.
		ep.probing = false
	case ep.state != halfOpen && ep.alive.After(started):
		// Answered since this attempt started: the request's fault.
		ep.failed++
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
