package rollout

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redraft/redraft/rollout/fakeserver"
)

// Attacks from issue 14 on the client: a partial outage, answers too large
// to hold, answers without a message, hung requests.

// A partial outage (one URL, 30% of attempts hanging past the timeout) must
// not turn into failed samples: the hung attempts open the breaker, and
// waiting for it to close again must not use up the requests' attempts.
// Every request here can succeed within 4 attempts (no seed hangs more than
// 3 times in a row), so with 6 attempts none may fail, and every request
// must have been sent.
func TestEndpointsPartialOutage(t *testing.T) {
	check := noLeak(t)
	var counter attemptCounter
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		k := counter.next(*req.Seed)
		if (*req.Seed*7+int64(k))%10 < 3 {
			return fakeserver.Reply{Fault: fakeserver.Hang}
		}
		return fakeserver.Reply{Text: okText}
	})
	cfg := fastConfig(srv.BaseURL())
	cfg.Timeout, cfg.Retries = Duration(150*time.Millisecond), 6
	cfg.BreakerFailures, cfg.BreakerCooldown = 5, Duration(100*time.Millisecond)
	e := newEndpoints(t, cfg)
	const requests, conc = 120, 24
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	errs := make([]error, requests)
	resps := make([]Response, requests)
	for i := range requests {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			resps[i], errs[i] = e.Sample(context.Background(), seedReq(int64(i)))
		}()
	}
	wg.Wait()
	failed, neverSent := 0, 0
	for i, err := range errs {
		if err != nil {
			failed++
			var rf *RequestFailure
			if errors.As(err, &rf) && rf.Attempts == 0 {
				neverSent++
			}
			if failed <= 5 {
				t.Errorf("request %d: %v", i, err)
			}
			continue
		}
		if resps[i].Attempts > 4 {
			t.Errorf("request %d took %d attempts, at most 4 needed", i, resps[i].Attempts)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d requests failed (%d never sent) in a partial outage", failed, requests, neverSent)
	}
	if st := e.States(); st[0].Failed == 0 {
		t.Errorf("no attempt failed: the outage did not happen (%+v)", st)
	}
	srv.Close()
	e.Close()
	check()
}

// An answer larger than MaxResponseBytes fails its sample after one attempt,
// with the limit in its reason, having read no more than the limit; it is
// not the endpoint's fault (its breaker does not count it). The other
// samples are unaffected. Streamed or not, with a Content-Length or without.
func TestEndpointsResponseTooLarge(t *testing.T) {
	big := strings.Repeat("word ", 40_000) // 200 kB
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) {
			check := noLeak(t)
			srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
				if *req.Seed%2 == 0 {
					return fakeserver.Reply{Text: big}
				}
				return fakeserver.Reply{Text: okText}
			})
			cfg := fastConfig(srv.BaseURL())
			cfg.Stream, cfg.MaxResponseBytes = stream, 64<<10
			cfg.BreakerFailures = 1
			e := newEndpoints(t, cfg)
			for seed := range int64(6) {
				resp, err := e.Sample(context.Background(), Request{Messages: []Message{{Role: "user", Content: "q"}}, Seed: seed})
				if seed%2 == 1 {
					if err != nil || resp.Text != okText || resp.FinishReason != "stop" {
						t.Errorf("seed %d: %+v %v", seed, resp, err)
					}
					continue
				}
				var rf *RequestFailure
				if !errors.As(err, &rf) || rf.Attempts != 1 || rf.Retryable ||
					!strings.Contains(err.Error(), "over the limit of 64KiB (endpoint.max_response_bytes)") {
					t.Errorf("seed %d: %v", seed, err)
				}
			}
			if srv.Count() != 6 {
				t.Errorf("server saw %d requests, want 6 (no retries)", srv.Count())
			}
			if st := e.States(); st[0].Breaker != "closed" || st[0].Failed != 0 {
				t.Errorf("a too-large answer counted against the endpoint: %+v", st)
			}
			srv.Close()
			e.Close()
			check()
		})
	}
}

// A body that never ends (no Content-Length) is cut at the limit, promptly,
// instead of being read until memory or the attempt timeout runs out.
func TestEndpointsEndlessBody(t *testing.T) {
	check := noLeak(t)
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"choices":[{"message":{"content":"`))
		chunk := []byte(strings.Repeat("a", 32<<10))
		for r.Context().Err() == nil {
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	cfg := fastConfig(srv.URL + "/v1")
	cfg.Timeout, cfg.MaxResponseBytes = Duration(20*time.Second), 1<<20
	e := newEndpoints(t, cfg)
	start := time.Now()
	_, err := e.Sample(context.Background(), seedReq(1))
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %s to give up on an endless body", el)
	}
	if err == nil || !strings.Contains(err.Error(), "over the limit of 1MiB") || !strings.Contains(err.Error(), "not retryable, after 1 attempt") {
		t.Errorf("endless body: %v", err)
	}
	e.Close()
	srv.Close()
	check()
}

// A hung request is noticed by the idle timeout, far sooner than the
// attempt timeout, when the server stops sending: streamed, before the
// headers or mid-stream; not streamed, mid-body. A slow but steady stream
// is not cut, even when it takes longer than the idle timeout in all. A
// non-streamed answer's wait for its headers is bounded by the attempt
// timeout only: the server writes it at once when the answer is complete.
func TestEndpointsIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	slow := strings.Repeat("tick ", 12)
	for _, tc := range []struct {
		name   string
		stream bool
		reply  fakeserver.Reply
		errHas string // "" for success
		within time.Duration
	}{
		{"streamed, hung before the headers", true, fakeserver.Reply{Fault: fakeserver.Hang}, "last: stalled: no data for 300ms (endpoint.idle_timeout)", 3 * idle},
		{"streamed, stalled mid-stream", true, fakeserver.Reply{Fault: fakeserver.Stall, Text: okText}, "last: HTTP 200: stalled: no data for 300ms", 3 * idle},
		{"not streamed, stalled mid-body", false, fakeserver.Reply{Fault: fakeserver.Stall, Text: okText}, "last: HTTP 200: stalled: no data for 300ms", 3 * idle},
		{"streamed, slow but steady", true, fakeserver.Reply{Text: slow, TokenDelay: idle / 3}, "", 10 * time.Second},
		{"not streamed, hung before the headers", false, fakeserver.Reply{Fault: fakeserver.Hang}, "last: timeout after 2s", 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := noLeak(t)
			srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return tc.reply })
			cfg := fastConfig(srv.BaseURL())
			cfg.Stream, cfg.IdleTimeout, cfg.Timeout, cfg.Retries = tc.stream, Duration(idle), Duration(2*time.Second), 1
			e := newEndpoints(t, cfg)
			start := time.Now()
			resp, err := e.Sample(context.Background(), Request{Messages: []Message{{Role: "user", Content: "q"}}, Seed: 1})
			el := time.Since(start)
			switch {
			case tc.errHas == "" && (err != nil || resp.Text != strings.TrimSpace(slow) || el < 4*idle):
				t.Errorf("%+v %v after %s", resp, err, el)
			case tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)):
				t.Errorf("error %v, want %q", err, tc.errHas)
			case el > tc.within:
				t.Errorf("took %s, bound %s", el, tc.within)
			}
			srv.Close()
			e.Close()
			check()
		})
	}
}

// SampleTimeout bounds a request with all its attempts: a server that
// always hangs fails the sample at the deadline, with the reason, however
// many attempts were left.
func TestEndpointsSampleTimeout(t *testing.T) {
	check := noLeak(t)
	srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{Fault: fakeserver.Hang} })
	cfg := fastConfig(srv.BaseURL())
	cfg.Timeout, cfg.Retries, cfg.SampleTimeout = Duration(300*time.Millisecond), 100, Duration(time.Second)
	e := newEndpoints(t, cfg)
	start := time.Now()
	_, err := e.Sample(context.Background(), seedReq(1))
	el := time.Since(start)
	var rf *RequestFailure
	if !errors.As(err, &rf) || rf.Attempts < 2 || rf.Cause != nil || errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "gave up after") || !strings.Contains(err.Error(), "no answer within endpoint.sample_timeout (1s)") {
		t.Errorf("error %v", err)
	}
	if el < time.Second || el > 2*time.Second {
		t.Errorf("took %s with a sample timeout of 1s", el)
	}
	srv.Close()
	e.Close()
	check()
}

// A streamed answer is the same answer: text, reasoning, finish_reason,
// usage and one logprob per token, as the non-streamed one.
func TestEndpointsStreamedEqualsWhole(t *testing.T) {
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		return fakeserver.Reply{Text: "Step one.\nStep two: 2 + 2 = 4.\n\nThe answer is 4.", Reasoning: "Let me think it over."}
	})
	defer srv.Close()
	mt := 10
	req := Request{Messages: []Message{{Role: "user", Content: "q"}}, Seed: 3,
		Sampling: Sampling{Logprobs: true, MaxTokens: &mt}}
	var got [2]Response
	for i, stream := range []bool{false, true} {
		cfg := fastConfig(srv.BaseURL())
		cfg.Stream = stream
		e := newEndpoints(t, cfg)
		resp, err := e.Sample(context.Background(), req)
		e.Close()
		if err != nil {
			t.Fatalf("stream=%v: %v", stream, err)
		}
		got[i] = resp
	}
	w, s := got[0], got[1]
	if w.Text != "Step one.\nStep two: 2 + 2 = 4.\n\nThe" || w.FinishReason != "length" || w.Usage == nil || len(w.Logprobs) != 10 {
		t.Fatalf("non-streamed answer %+v", w)
	}
	if s.Text != w.Text || s.Reasoning != w.Reasoning || s.FinishReason != w.FinishReason || s.Model != w.Model ||
		s.Usage == nil || *s.Usage != *w.Usage || fmt.Sprint(s.Logprobs) != fmt.Sprint(w.Logprobs) {
		t.Errorf("streamed %+v\nwhole    %+v", s, w)
	}
	reqs := srv.Requests()
	if !reqs[1].Stream || reqs[1].StreamOptions == nil || !reqs[1].StreamOptions.IncludeUsage || reqs[0].Stream {
		t.Errorf("requests did not ask for the stream as configured: %+v", reqs)
	}
}

// Waiting for an open breaker uses no attempt: in a short outage (every
// request fails fast for 300ms, then the server is back), requests with 2
// attempts each fail once, wait out the breaker (its cool-down outlasts the
// outage, so no probe fails) and then succeed.
func TestEndpointsBreakerWaitUsesNoAttempt(t *testing.T) {
	check := noLeak(t)
	var first atomic.Int64
	srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply {
		first.CompareAndSwap(0, time.Now().UnixNano())
		if time.Since(time.Unix(0, first.Load())) < 300*time.Millisecond {
			return fakeserver.Reply{Status: 503}
		}
		return fakeserver.Reply{Text: okText}
	})
	cfg := fastConfig(srv.BaseURL())
	cfg.Retries, cfg.BreakerFailures, cfg.BreakerCooldown = 2, 1, Duration(400*time.Millisecond)
	e := newEndpoints(t, cfg)
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.Sample(context.Background(), seedReq(int64(i)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	srv.Close()
	e.Close()
	check()
}

// Requests that hang while the endpoint serves others do not open its
// breaker, even when their timeouts arrive one after another with nothing
// in between: the endpoint answered after they started.
func TestEndpointsHungRequestsDoNotOpenBreaker(t *testing.T) {
	check := noLeak(t)
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		if *req.Seed < 5 {
			return fakeserver.Reply{Fault: fakeserver.Hang}
		}
		return fakeserver.Reply{Text: okText}
	})
	cfg := fastConfig(srv.BaseURL())
	cfg.Timeout, cfg.Retries, cfg.BreakerFailures = Duration(300*time.Millisecond), 1, 3
	e := newEndpoints(t, cfg)
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.Sample(context.Background(), seedReq(int64(i)))
		}()
	}
	for srv.Count() < 5 {
		time.Sleep(time.Millisecond)
	}
	for i := range 10 {
		if _, err := e.Sample(context.Background(), seedReq(int64(100+i))); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait() // the 5 hung requests time out, one after another
	if st := e.States(); st[0].Breaker != "closed" || st[0].Failed != 5 {
		t.Errorf("after 5 hung requests on a serving endpoint: %+v", st)
	}
	if _, err := e.Sample(context.Background(), seedReq(200)); err != nil {
		t.Error(err)
	}
	srv.Close()
	e.Close()
	check()
}

// A model may answer "": an empty content whose end-of-sequence token was
// counted is an answer, streamed or not, and is not retried.
func TestEndpointsEmptyAnswerIsAnswer(t *testing.T) {
	srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{} })
	defer srv.Close()
	for _, stream := range []bool{false, true} {
		cfg := fastConfig(srv.BaseURL())
		cfg.Stream = stream
		e := newEndpoints(t, cfg)
		resp, err := e.Sample(context.Background(), seedReq(1))
		e.Close()
		if err != nil || resp.Text != "" || resp.FinishReason != "stop" || resp.Attempts != 1 || resp.Usage == nil || resp.Usage.CompletionTokens != 1 {
			t.Errorf("stream=%v: %+v %v", stream, resp, err)
		}
	}
}
