package rollout

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redraft/redraft/rollout/fakeserver"
)

// Defaults fill only what the section leaves out, with the derived ones
// following the values given; Validate names each key under its section.
func TestEndpointConfigDefaults(t *testing.T) {
	var p EndpointConfig
	p.ApplyDefaults(PolicyDefaults, nil)
	if p.Retries != 6 || time.Duration(p.Timeout) != 10*time.Minute || time.Duration(p.SampleTimeout) != 30*time.Minute ||
		time.Duration(p.BreakerWait) != 5*time.Minute || p.MaxInFlightPerEndpoint != 64 || p.APIKeyEnv != "OPENAI_API_KEY" {
		t.Errorf("policy defaults: %+v", p)
	}
	set := map[string]bool{"timeout": true, "retries": true, "max_in_flight": true}
	h := EndpointConfig{Timeout: Duration(time.Minute), Retries: 0, MaxInFlight: 8}
	h.ApplyDefaults(HelperDefaults, func(k string) bool { return set[k] })
	if h.Retries != 0 || time.Duration(h.SampleTimeout) != 3*time.Minute || h.MaxInFlightPerEndpoint != 8 || time.Duration(h.BreakerWait) != 30*time.Second {
		t.Errorf("helper defaults: %+v", h)
	}
	h.BaseURL, h.Model = "http://j/v1", "jm"
	err := h.Validate("critique.critic", HelperDefaults)
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key != "critique.critic.retries" || err.Error() != "critique.critic.retries: must be at least 1 (the first attempt), got 0" {
		t.Errorf("got %v", err)
	}
	h.Retries, h.BaseURL, h.BaseURLs = 1, "", []string{"http://a/v1", "ftp://u:pw@b"}
	err = h.Validate("endpoint", PolicyDefaults)
	if !errors.As(err, &ke) || ke.Line() != "endpoint.base_urls[1]" || strings.Contains(err.Error(), "pw") || !strings.Contains(err.Error(), "endpoint.base_urls: ") {
		t.Errorf("got %v", err)
	}
	h.BaseURLs = nil
	h.BaseURL = "http://a/v1"
	if err := h.Validate("endpoint", PolicyDefaults); err != nil {
		t.Error(err)
	}
}

// MaxInFlight bounds the requests in flight over all URLs, and
// MaxInFlightPerEndpoint those at one.
func TestFleetMaxInFlight(t *testing.T) {
	var cur, peak atomic.Int64
	mk := func() *fakeserver.Server {
		return fakeserver.New(func(*fakeserver.Request) fakeserver.Reply {
			n := cur.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(5 * time.Millisecond)
			cur.Add(-1)
			return fakeserver.Reply{Text: "4"}
		})
	}
	a, b := mk(), mk()
	defer a.Close()
	defer b.Close()
	cfg := fastConfig(a.BaseURL(), b.BaseURL())
	cfg.MaxInFlight = 3
	e := newEndpoints(t, cfg)
	defer e.Close()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.Sample(context.Background(), seedReq(int64(i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if peak.Load() > 3 || a.Count() == 0 || b.Count() == 0 {
		t.Errorf("peak %d in flight over both URLs (limit 3); served %d and %d", peak.Load(), a.Count(), b.Count())
	}
}

// A dead helper (nothing listens) fails every request within its bounds:
// its attempts (quick: the connection is refused) and at most breaker_wait
// waiting for its open breaker. The fleet's policy quotes no credential.
func TestHelperFleetDeadFailsInBounds(t *testing.T) {
	check := noLeak(t)
	closed := httptest.NewServer(nil)
	dead := "http://judge:JUDGEPASS@" + strings.TrimPrefix(closed.URL, "http://") + "/v1?key=QUERYKEY"
	closed.Close()
	cfg := EndpointConfig{BaseURL: dead, Model: "jm"}
	cfg.ApplyDefaults(HelperDefaults, nil)
	cfg.BreakerWait, cfg.BreakerCooldown = Duration(300*time.Millisecond), Duration(100*time.Millisecond)
	policy, closeFleet, err := cfg.Dial()
	if err != nil {
		t.Fatal(err)
	}
	// 3 attempts with backoffs of at most 500ms and 1s, then the wait.
	bound := 1500*time.Millisecond + time.Duration(cfg.BreakerWait) + 500*time.Millisecond
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			_, err := policy.Sample(context.Background(), seedReq(int64(i)))
			took := time.Since(start)
			var rf *RequestFailure
			switch {
			case !errors.As(err, &rf) || rf.Attempts > 3:
				t.Errorf("request %d: %v", i, err)
			case took > bound:
				t.Errorf("request %d failed after %s, bound %s", i, took, bound)
			case strings.Contains(err.Error(), "JUDGEPASS") || strings.Contains(err.Error(), "QUERYKEY"):
				t.Errorf("request %d: credential in %q", i, err)
			}
		}()
	}
	wg.Wait()
	closeFleet()
	check()
}

// TestHelperRefusesPolicyKeys: engine_tokens and policy_version are the
// policy endpoint's; a helper section that sets them fails naming the key,
// and the policy section takes them.
func TestHelperRefusesPolicyKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  EndpointConfig
		d    EndpointDefaults
		want string
	}{
		{"helper engine_tokens", EndpointConfig{EngineTokens: true}, HelperDefaults, "critique.critic.engine_tokens: a helper model's answers are not rows"},
		{"helper policy_version", EndpointConfig{PolicyVersion: "7"}, HelperDefaults, "critique.critic.policy_version: a helper model's answers are not rows"},
		{"policy", EndpointConfig{EngineTokens: true, PolicyVersion: "7"}, PolicyDefaults, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			c.BaseURL, c.Model = "http://127.0.0.1:1/v1", "m"
			c.ApplyDefaults(tc.d, nil)
			err := c.Validate("critique.critic", tc.d)
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
