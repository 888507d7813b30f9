package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redraft/redraft/internal/redact"
)

// maxBodyBytes bounds one HTTP answer.
const maxBodyBytes = 64 << 20

// httpTransport POSTs batches of requests to a verifier's URL.
type httpTransport struct {
	cfg     Config
	key     string // the bearer token, "" for none
	scrub   *redact.Scrubber
	client  *http.Client
	stats   *counters
	hello   Hello
	timeout time.Duration
	sem     chan struct{} // POSTs in flight
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func openHTTP(ctx context.Context, cfg Config, stats *counters) (*httpTransport, error) {
	t := &httpTransport{
		cfg: cfg, stats: stats, timeout: time.Duration(cfg.Timeout), sem: make(chan struct{}, cfg.Concurrency),
		client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
	}
	if cfg.APIKeyEnv != "" {
		t.key = os.Getenv(cfg.APIKeyEnv)
		if t.key == "" {
			return nil, fmt.Errorf("verifier %s: api_key_env names %s, which is not set", redact.URL(cfg.URL), cfg.APIKeyEnv)
		}
	}
	t.scrub = redact.NewScrubber(append(redact.Secrets(cfg.URL), t.key)...)
	t.ctx, t.cancel = context.WithCancel(context.Background())
	// The handshake: an empty batch.
	var a answer
	for attempt := 1; ; attempt++ {
		a = t.attempt(ctx, batchBody(nil), 0, time.Duration(cfg.StartTimeout))
		if !a.retry || attempt >= cfg.Retries || !t.backoff(ctx, attempt, a.after) {
			break
		}
	}
	if a.reason != "" {
		t.close()
		return nil, fmt.Errorf("verifier %s: handshake (an empty POST): %s", redact.URL(cfg.URL), a.reason)
	}
	t.hello = a.hello
	return t, nil
}

func (t *httpTransport) close() error {
	t.cancel()
	t.wg.Wait()
	t.client.CloseIdleConnections()
	return nil
}

func (t *httpTransport) verify(ctx context.Context, calls []*call) {
	var live []*call
	for _, k := range calls {
		if !k.finished() {
			live = append(live, k)
		}
	}
	var wg sync.WaitGroup
	for len(live) > 0 {
		n := min(len(live), t.cfg.Batch)
		chunk := live[:n]
		live = live[n:]
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.post(ctx, chunk)
		}()
	}
	wg.Wait()
}

// post sends one batch, with retries, and finishes its calls.
func (t *httpTransport) post(ctx context.Context, calls []*call) {
	finishAll := func(r Result) {
		for _, k := range calls {
			k.finish(r)
		}
	}
	lines := make([][]byte, len(calls))
	for i, k := range calls {
		lines[i] = k.line
	}
	body := batchBody(lines)
	for attempt := 1; ; attempt++ {
		select {
		case t.sem <- struct{}{}:
		case <-ctx.Done():
			finishAll(canceled(ctx))
			return
		case <-t.ctx.Done():
			finishAll(failed(reasonClosed))
			return
		}
		a := t.attempt(ctx, body, len(calls), t.timeout)
		<-t.sem
		switch {
		case a.reason == "":
			for i, k := range calls {
				k.finish(decodeResult(a.results[i], k.id))
			}
			return
		case !a.retry:
			finishAll(failed("%s", a.reason))
			return
		case attempt >= t.cfg.Retries:
			finishAll(failed("%s (attempt %d of %d)", a.reason, attempt, t.cfg.Retries))
			return
		}
		if !t.backoff(ctx, attempt, a.after) {
			if ctx.Err() != nil {
				finishAll(canceled(ctx))
			} else {
				finishAll(failed(reasonClosed))
			}
			return
		}
		t.stats.retries.Add(1)
	}
}

// batchBody is a POST's body, {"requests":[...]}, made of encoded
// request lines.
func batchBody(lines [][]byte) []byte {
	var b bytes.Buffer
	b.WriteString(`{"requests":[`)
	for i, l := range lines {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(bytes.TrimRight(l, "\n"))
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// backoff waits before attempt+1: uniform in [0, min(backoffMax,
// backoffInitial*2^(attempt-1))], or the server's Retry-After (at most
// backoffMax) when that is longer. It reports false when ctx or the
// client ended first.
func (t *httpTransport) backoff(ctx context.Context, attempt int, after time.Duration) bool {
	ceiling := min(backoffMax, backoffInitial<<min(attempt-1, 16))
	wait := time.Duration(rand.Int64N(int64(ceiling) + 1))
	wait = max(wait, min(after, backoffMax))
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	case <-t.ctx.Done():
		return false
	}
}

// answer is the outcome of one POST: results (one per request) when
// reason is "", else whether it may be retried and, for a 429 or 503,
// the server's Retry-After.
type answer struct {
	results []json.RawMessage
	hello   Hello
	reason  string
	retry   bool
	after   time.Duration
}

// attempt POSTs body once, for n requests.
func (t *httpTransport) attempt(ctx context.Context, body []byte, n int, timeout time.Duration) answer {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := context.AfterFunc(t.ctx, cancel)
	defer stop()
	ended := func(err error) answer {
		switch {
		case ctx.Err() != nil:
			return answer{reason: "canceled: " + context.Cause(ctx).Error()}
		case t.ctx.Err() != nil:
			return answer{reason: reasonClosed}
		case errors.Is(actx.Err(), context.DeadlineExceeded):
			return answer{reason: timeoutResult(timeout, "").Reason}
		}
		return answer{reason: "verifier unreachable: " + t.clean(err.Error()), retry: true}
	}
	req, err := http.NewRequestWithContext(actx, http.MethodPost, t.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return answer{reason: "verifier: " + t.clean(err.Error())}
	}
	req.Header.Set("Content-Type", "application/json")
	if t.key != "" {
		req.Header.Set("Authorization", "Bearer "+t.key)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return ended(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		a := ended(err)
		if a.retry {
			a.reason = "reading the verifier's answer failed: " + t.clean(err.Error())
		}
		return a
	}
	quote := func() string { return snippet([]byte(t.clean(string(b[:min(len(b), 4096)]))), 200) }
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests || code >= 500:
		return answer{reason: fmt.Sprintf("verifier answered %s: %s", resp.Status, quote()), retry: true,
			after: retryAfter(resp.Header.Get("Retry-After"))}
	case code < 200 || code > 299:
		return answer{reason: fmt.Sprintf("verifier answered %s: %s", resp.Status, quote())}
	case len(b) > maxBodyBytes:
		return answer{reason: fmt.Sprintf("malformed answer: longer than %d bytes", maxBodyBytes)}
	}
	clean, _ := sanitize(b)
	var doc struct {
		Results *[]json.RawMessage `json:"results"`
		Hello
	}
	if err := json.Unmarshal(clean, &doc); err != nil {
		return answer{reason: fmt.Sprintf("malformed answer (%s): %s", jsonErr(err, clean), quote())}
	}
	switch {
	case doc.Results == nil:
		return answer{reason: fmt.Sprintf(`malformed answer: no "results" array: %s`, quote())}
	case len(*doc.Results) != n:
		return answer{reason: fmt.Sprintf("malformed answer: %d results for %d requests", len(*doc.Results), n)}
	case doc.Protocol != "" && doc.Protocol != Protocol:
		return answer{reason: fmt.Sprintf("the verifier speaks %q, redraft speaks %q", doc.Protocol, Protocol)}
	}
	return answer{results: *doc.Results, hello: doc.Hello}
}

// clean removes credentials from text the client quotes: URLs' user info
// and queries, and the API key wherever it appears.
func (t *httpTransport) clean(s string) string { return t.scrub.Scrub(s) }

// retryAfter reads a Retry-After header given in seconds (0 otherwise).
func retryAfter(h string) time.Duration {
	s, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || s < 0 {
		return 0
	}
	return time.Duration(min(s, 3600)) * time.Second
}
