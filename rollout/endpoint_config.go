package rollout

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/redraft/redraft/internal/redact"
)

// EndpointConfig is one model served by one or several OpenAI-compatible
// servers, and how hard to try each request: a configuration's endpoint
// section (the policy model) and every helper model's section (a judge of
// reward.judges, critique.critic, agent_r.step_judge). It is read from YAML;
// ApplyDefaults fills the keys a file leaves out (PolicyDefaults or
// HelperDefaults), Validate checks it naming each key, and Dial builds the
// Endpoints that serve it.
//
// The API key is read from the environment variable named by APIKeyEnv when
// the fleet is built, and is never stored, logged or recorded.
type EndpointConfig struct {
	// BaseURL is one base URL (ending in /v1); BaseURLs is several serving
	// the same model, each request going to the one with the fewest
	// requests in flight. Exactly one of the two.
	BaseURL  string   `yaml:"base_url" json:"base_url,omitempty"`
	BaseURLs []string `yaml:"base_urls" json:"base_urls,omitempty"`
	Model    string   `yaml:"model" json:"model"`
	// APIKeyEnv names the environment variable that holds the API key.
	APIKeyEnv string `yaml:"api_key_env" json:"api_key_env"`
	// MaxInFlight bounds the requests outstanding over all URLs.
	MaxInFlight int `yaml:"max_in_flight" json:"max_in_flight"`
	// Timeout bounds one attempt of a request (0: no bound beyond the
	// sample's).
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// MaxInFlightPerEndpoint bounds the requests outstanding at one URL (0:
	// no bound of its own).
	MaxInFlightPerEndpoint int `yaml:"max_in_flight_per_endpoint" json:"max_in_flight_per_endpoint"`
	// Retries is the most attempts per request, the first included (1
	// never retries). Waiting for open circuit breakers uses none.
	Retries int `yaml:"retries" json:"retries"`
	// BackoffInitial and BackoffMax shape the wait before retry k, uniform
	// in [0, min(BackoffMax, BackoffInitial * 2^(k-1))] ("full jitter").
	BackoffInitial Duration `yaml:"backoff_initial" json:"backoff_initial"`
	BackoffMax     Duration `yaml:"backoff_max" json:"backoff_max"`
	// BreakerFailures consecutive server or network failures open a URL's
	// circuit breaker; BreakerCooldown later one probe request is let
	// through, whose success closes it.
	BreakerFailures int      `yaml:"breaker_failures" json:"breaker_failures"`
	BreakerCooldown Duration `yaml:"breaker_cooldown" json:"breaker_cooldown"`
	// BreakerWait bounds how long one request waits, in all, while every
	// URL's breaker keeps it away; then it fails.
	BreakerWait Duration `yaml:"breaker_wait" json:"breaker_wait"`
	// SampleTimeout bounds one request from start to end, every attempt,
	// backoff and wait included (0: no bound), so that a stalled request
	// cannot hold back the groups written after its own for long.
	SampleTimeout Duration `yaml:"sample_timeout" json:"sample_timeout"`
	// MaxResponseBytes bounds one response body (streamed: its events); a
	// larger answer fails its request, without a retry.
	MaxResponseBytes ByteSize `yaml:"max_response_bytes" json:"max_response_bytes"`
	// Stream asks for answers as server-sent events, so that a request
	// that stops making progress is noticed within IdleTimeout.
	Stream bool `yaml:"stream" json:"stream,omitempty"`
	// IdleTimeout is the longest the server may stay silent while an
	// answer is being received (streamed: from the request on; otherwise
	// once the headers arrived) before the attempt fails as stalled and is
	// retried.
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// EngineTokens asks the server for its own token ids, which rl rows
	// then carry as their token track (token_source engine): vLLM's
	// return_token_ids (prompt_token_ids and the choice's token_ids), and
	// from llama-server, whose response ids come with logprobs, the prompt
	// ids of its /apply-template and /tokenize. Off by default: OpenAI
	// refuses the unknown key.
	EngineTokens bool `yaml:"engine_tokens" json:"engine_tokens,omitempty"`
	// PolicyVersion is written into every generated rl row's
	// policy_version column: a checkpoint id or training step, so that a
	// trainer mixing runs can filter or weight stale samples.
	PolicyVersion string `yaml:"policy_version" json:"policy_version,omitempty"`
}

// EndpointDefaults are the settings an endpoint section gets for the keys
// it leaves out. Two more are derived: max_in_flight_per_endpoint is
// max_in_flight, sample_timeout is 3 x timeout, and backoff_max is at least
// backoff_initial.
type EndpointDefaults struct {
	APIKeyEnv        string
	MaxInFlight      int
	Timeout          time.Duration
	Retries          int
	BackoffInitial   time.Duration
	BackoffMax       time.Duration
	BreakerFailures  int
	BreakerCooldown  time.Duration
	BreakerWait      time.Duration
	MaxResponseBytes int64
	IdleTimeout      time.Duration
	// Helper marks a helper model's section, whose answers are not rows:
	// it refuses engine_tokens and policy_version.
	Helper bool
}

// PolicyDefaults are the policy endpoint's defaults: a sample is the
// expensive thing a run makes, so a request rides out an overloaded or
// restarting server (6 attempts, and up to 5 minutes waiting for open
// breakers) rather than fail, and one attempt may take as long as a long
// reasoning answer (10 minutes).
var PolicyDefaults = EndpointDefaults{
	APIKeyEnv: "OPENAI_API_KEY", MaxInFlight: 64, Timeout: 10 * time.Minute,
	Retries: DefaultMaxAttempts, BackoffInitial: DefaultBackoffInitial, BackoffMax: DefaultBackoffMax,
	BreakerFailures: DefaultBreakerFailures, BreakerCooldown: DefaultBreakerCooldown, BreakerWait: DefaultBreakerWait,
	MaxResponseBytes: DefaultMaxResponseBytes, IdleTimeout: DefaultIdleTimeout,
}

// HelperDefaults are the defaults of a helper model: a judge, a critic, an
// Agent-R step judge. Their requests are retried, balanced and guarded by
// breakers like the policy's, with shorter bounds: a helper's answer (a
// verdict, a critique) is short, and a helper that is down must fail the
// component it serves (a judge score of null, with the reason) in bounded,
// short time rather than stall the run, since every judged sample would wait
// for it. So 3 attempts of at most 2 minutes each, and at most 30 seconds
// waiting for open breakers; a dead helper costs each request about that
// much (see docs/endpoints.md).
var HelperDefaults = EndpointDefaults{
	APIKeyEnv: "OPENAI_API_KEY", MaxInFlight: 64, Timeout: 2 * time.Minute,
	Retries: 3, BackoffInitial: DefaultBackoffInitial, BackoffMax: DefaultBackoffMax,
	BreakerFailures: DefaultBreakerFailures, BreakerCooldown: DefaultBreakerCooldown, BreakerWait: 30 * time.Second,
	MaxResponseBytes: DefaultMaxResponseBytes, IdleTimeout: DefaultIdleTimeout, Helper: true,
}

// sampleTimeoutFactor derives sample_timeout's default from timeout.
const sampleTimeoutFactor = 3

// ApplyDefaults fills the settings the file leaves out from d. set reports
// whether the file sets a key of the section ("timeout"); nil: it sets none.
// A key set to 0 or "" keeps that value, for Validate to use or refuse.
func (c *EndpointConfig) ApplyDefaults(d EndpointDefaults, set func(key string) bool) {
	absent := func(key string) bool { return set == nil || !set(key) }
	if absent("api_key_env") {
		c.APIKeyEnv = d.APIKeyEnv
	}
	if absent("max_in_flight") {
		c.MaxInFlight = d.MaxInFlight
	}
	if absent("timeout") {
		c.Timeout = Duration(d.Timeout)
	}
	if absent("max_in_flight_per_endpoint") {
		c.MaxInFlightPerEndpoint = c.MaxInFlight
	}
	if absent("retries") {
		c.Retries = d.Retries
	}
	if absent("backoff_initial") {
		c.BackoffInitial = Duration(d.BackoffInitial)
	}
	if absent("backoff_max") {
		c.BackoffMax = Duration(max(d.BackoffMax, time.Duration(c.BackoffInitial)))
	}
	if absent("breaker_failures") {
		c.BreakerFailures = d.BreakerFailures
	}
	if absent("breaker_cooldown") {
		c.BreakerCooldown = Duration(d.BreakerCooldown)
	}
	if absent("breaker_wait") {
		c.BreakerWait = Duration(d.BreakerWait)
	}
	if absent("sample_timeout") {
		c.SampleTimeout = sampleTimeoutFactor * c.Timeout
	}
	if absent("max_response_bytes") {
		c.MaxResponseBytes = ByteSize(d.MaxResponseBytes)
	}
	if absent("idle_timeout") {
		c.IdleTimeout = Duration(d.IdleTimeout)
	}
}

// Validate checks the section named section (endpoint, reward.judges[0],
// ...): the URLs, the model, the key's variable, and the concurrency,
// retry and breaker settings. Its error is a *KeyError naming the key; URLs
// are quoted without their credentials. d are the defaults the section was
// given, which a message may suggest.
func (c *EndpointConfig) Validate(section string, d EndpointDefaults) error {
	key := func(k string) string { return section + "." + k }
	switch {
	case d.Helper && c.EngineTokens:
		return keyErr(key("engine_tokens"), "a helper model's answers are not rows: only the policy endpoint stores the engine's token ids")
	case d.Helper && c.PolicyVersion != "":
		return keyErr(key("policy_version"), "a helper model's answers are not rows: only the policy endpoint's version is recorded")
	case c.BaseURL == "" && len(c.BaseURLs) == 0:
		return keyErr(key("base_url"), "missing (or give several as %s)", key("base_urls"))
	case c.BaseURL != "" && len(c.BaseURLs) > 0:
		return keyErr(section, "give base_url or base_urls, not both")
	case c.Model == "":
		return keyErr(key("model"), "missing")
	}
	urls := key("base_url")
	if c.BaseURL == "" {
		urls = key("base_urls")
	}
	seen := map[string]bool{}
	for i, raw := range c.URLs() {
		// The message names the key; the line is the URL's own.
		at := urls
		if c.BaseURL == "" {
			at = fmt.Sprintf("%s[%d]", urls, i)
		}
		if err := badBaseURL(raw); err != nil {
			return &KeyError{Key: urls, At: at, Err: err}
		}
		if seen[raw] {
			return &KeyError{Key: urls, At: at, Err: fmt.Errorf("%q is listed twice", redact.URL(raw))}
		}
		seen[raw] = true
	}
	if !redact.IsEnvName(c.APIKeyEnv) {
		// Most often the key itself, pasted where its variable's name
		// belongs: not quoted.
		return keyErr(key("api_key_env"), "not an environment variable name (letters, digits and _; the value is not shown in case it is a key): put the API key in the environment and name its variable here")
	}
	switch {
	case c.MaxInFlight < 1:
		return keyErr(key("max_in_flight"), "must be at least 1, got %d", c.MaxInFlight)
	case c.MaxInFlightPerEndpoint < 0:
		return keyErr(key("max_in_flight_per_endpoint"), "must be >= 0 (0: no bound of its own), got %d", c.MaxInFlightPerEndpoint)
	case c.Timeout < 0:
		return keyErr(key("timeout"), "must be >= 0 (0: no bound on an attempt), got %s", c.Timeout)
	case c.Retries < 1:
		return keyErr(key("retries"), "must be at least 1 (the first attempt), got %d", c.Retries)
	case c.BackoffInitial <= 0:
		return keyErr(key("backoff_initial"), "must be > 0, got %s", c.BackoffInitial)
	case c.BackoffMax < c.BackoffInitial:
		return keyErr(key("backoff_max"), "need backoff_initial <= backoff_max, got %s > %s", c.BackoffInitial, c.BackoffMax)
	case c.BreakerFailures < 1:
		return keyErr(key("breaker_failures"), "must be at least 1, got %d", c.BreakerFailures)
	case c.BreakerCooldown <= 0:
		return keyErr(key("breaker_cooldown"), "must be > 0, got %s", c.BreakerCooldown)
	case c.BreakerWait <= 0:
		return keyErr(key("breaker_wait"), "must be > 0, got %s (leave the key out for the default, %s)", c.BreakerWait, d.BreakerWait)
	case c.SampleTimeout < 0:
		return keyErr(key("sample_timeout"), "must be >= 0 (0: no bound), got %s", c.SampleTimeout)
	case c.SampleTimeout > 0 && c.Timeout > 0 && c.SampleTimeout < c.Timeout:
		return keyErr(key("sample_timeout"), "%s is shorter than one attempt's %s (%s): raise it, or lower the timeout", c.SampleTimeout, key("timeout"), c.Timeout)
	case c.MaxResponseBytes <= 0:
		return keyErr(key("max_response_bytes"), "must be at least 1 byte, got %d (leave the key out for the default, %s)", c.MaxResponseBytes, formatBytes(d.MaxResponseBytes))
	case c.IdleTimeout <= 0:
		return keyErr(key("idle_timeout"), "must be > 0, got %s (leave the key out for the default, %s)", c.IdleTimeout, d.IdleTimeout)
	}
	return nil
}

// badBaseURL refuses a base URL that is not http(s), quoting it without its
// credentials (a malformed URL may still hold a password).
func badBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL like http://localhost:8000/v1", redact.URL(raw))
	}
	return nil
}

// URLs returns the configured base URLs, one or several.
func (c *EndpointConfig) URLs() []string {
	if c.BaseURL != "" {
		return []string{c.BaseURL}
	}
	return c.BaseURLs
}

// RedactedURLs is the base URLs without credentials, comma-separated, as a
// manifest's endpoint records them.
func (c *EndpointConfig) RedactedURLs() string {
	out := ""
	for i, u := range c.URLs() {
		if i > 0 {
			out += ","
		}
		out += redact.URL(u)
	}
	return out
}

// Dial builds the section's fleet (Endpoints: retries, backoff and circuit
// breakers over its URLs, the API key read from APIKeyEnv) and returns the
// Policy to send its requests through, the fleet behind ScrubPolicy so that
// no error or endpoint it returns quotes a credential of a base URL or the
// key, and the function that releases the fleet's connections.
func (c *EndpointConfig) Dial() (Policy, func(), error) {
	key := os.Getenv(c.APIKeyEnv)
	e, err := buildEndpoints(*c, key, nil)
	if err != nil {
		return nil, nil, err
	}
	return ScrubPolicy(e, c.secrets(key)...), e.Close, nil
}

// Policy is Dial's policy, for a helper model that serves until the process
// ends (a judge, a critic, a step judge): its fleet is not closed, and its
// idle connections close by themselves after 90 seconds. A section that
// Dial refuses gives a policy that fails every request with the reason.
func (c *EndpointConfig) Policy() Policy {
	p, _, err := c.Dial()
	if err != nil {
		return failing{err}
	}
	return p
}

// secrets lists the credentials the URLs carry and the API key, for
// ScrubPolicy.
func (c *EndpointConfig) secrets(key string) []string {
	var out []string
	for _, u := range c.URLs() {
		out = append(out, redact.Secrets(u)...)
	}
	return append(out, key)
}

// failing is a Policy that fails every request with err.
type failing struct{ err error }

func (f failing) Sample(context.Context, Request) (Response, error) { return Response{}, f.err }
