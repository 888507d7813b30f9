package plugin

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Client verifies responses through one verifier. It is safe for
// concurrent use; Close stops everything it started.
type Client struct {
	cfg   Config
	hello Hello
	next  atomic.Uint64 // the last id given
	t     transport
	stats counters

	closeOnce sync.Once
	closeErr  error
}

// transport sends calls and finishes each one exactly once.
type transport interface {
	// verify sends calls (whose lines are encoded) and returns when every
	// one is finished.
	verify(ctx context.Context, calls []*call)
	close() error
}

// call is one request on its way: finished exactly once.
type call struct {
	id   string
	line []byte // the request as one JSON line, newline included
	once sync.Once
	done chan struct{}
	res  Result
}

func newCall(id string) *call { return &call{id: id, done: make(chan struct{})} }

// finish sets the call's result unless it has one, and reports whether it
// did.
func (c *call) finish(r Result) bool {
	set := false
	c.once.Do(func() {
		c.res = r
		close(c.done)
		set = true
	})
	return set
}

func (c *call) finished() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Stats counts what a Client did since Open.
type Stats struct {
	Requests int64 // requests given to Verify
	Scored   int64 // results with a score
	Unscored int64 // results the verifier itself left without a score
	Failed   int64 // results without a usable answer (Result.Failed)
	Timeouts int64 // of Failed: no answer within the timeout
	Restarts int64 // plug-in processes started again after one exited
	Retries  int64 // POSTs sent again after a transport failure
	// Stray counts lines on the plug-in's stdout that answered no
	// outstanding request (not JSON, no id, an id not outstanding); Last
	// Stray quotes the last one.
	Stray     int64
	LastStray string
}

type counters struct {
	requests, scored, unscored, failed, timeouts, restarts, retries, stray atomic.Int64
	mu                                                                     sync.Mutex
	lastStray                                                              string
}

func (s *counters) strayLine(q string) {
	s.stray.Add(1)
	s.mu.Lock()
	s.lastStray = q
	s.mu.Unlock()
}

// Open starts the verifier cfg describes (after ApplyDefaults; it is
// validated here) and waits for its handshake: the subprocess's first
// line, or an empty POST's answer. ctx bounds the start only.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(""); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg}
	var err error
	if len(cfg.Command) > 0 {
		var p *procTransport
		p, err = openProc(ctx, cfg, &c.stats)
		if p != nil {
			c.t, c.hello = p, p.hello
		}
	} else {
		var h *httpTransport
		h, err = openHTTP(ctx, cfg, &c.stats)
		if h != nil {
			c.t, c.hello = h, h.hello
		}
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Hello is the verifier's handshake.
func (c *Client) Hello() Hello { return c.hello }

// Verify verifies reqs and returns one Result per request, in order. It
// never fails as a whole: a request without a usable answer gets a nil
// Score, Failed and a Reason. The IDs of reqs are assigned here (the
// caller's are ignored). When ctx ends, the requests not yet answered get
// the reason "canceled: ...".
func (c *Client) Verify(ctx context.Context, reqs []Request) []Result {
	out := make([]Result, len(reqs))
	if len(reqs) == 0 {
		return out
	}
	c.stats.requests.Add(int64(len(reqs)))
	calls := make([]*call, len(reqs))
	for i, r := range reqs {
		r.ID = strconv.FormatUint(c.next.Add(1), 10)
		k := newCall(r.ID)
		calls[i] = k
		line, err := encodeRequest(r)
		if err != nil {
			k.finish(failed("bad request: metadata is not valid JSON"))
			continue
		}
		k.line = line
	}
	c.t.verify(ctx, calls)
	for i, k := range calls {
		<-k.done
		out[i] = k.res
		switch {
		case k.res.Failed:
			c.stats.failed.Add(1)
			if strings.HasPrefix(k.res.Reason, "timeout after ") {
				c.stats.timeouts.Add(1)
			}
		case k.res.Score == nil:
			c.stats.unscored.Add(1)
		default:
			c.stats.scored.Add(1)
		}
	}
	return out
}

// Stats returns the counts so far.
func (c *Client) Stats() Stats {
	s := &c.stats
	s.mu.Lock()
	last := s.lastStray
	s.mu.Unlock()
	return Stats{
		Requests: s.requests.Load(), Scored: s.scored.Load(), Unscored: s.unscored.Load(),
		Failed: s.failed.Load(), Timeouts: s.timeouts.Load(), Restarts: s.restarts.Load(),
		Retries: s.retries.Load(), Stray: s.stray.Load(), LastStray: last,
	}
}

// Close stops the verifier: requests still outstanding get the reason
// "verifier closed", plug-in processes get end of file on stdin and are
// killed when they have not exited 5 seconds later, and every goroutine
// the Client started has ended when it returns. Verify after Close gives
// every request that reason. Close may be called more than once.
func (c *Client) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.t.close() })
	return c.closeErr
}

// Reasons the client gives.
const (
	reasonClosed = "verifier closed"
)

func canceled(ctx context.Context) Result {
	err := context.Cause(ctx)
	if err == nil {
		err = errors.New("context canceled")
	}
	return failed("canceled: %v", err)
}

// seconds writes d as the reasons do: "30s", "0.2s".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

func timeoutResult(d time.Duration, more string) Result {
	return failed("timeout after %s%s", seconds(d), more)
}
