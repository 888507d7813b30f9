package pipeline

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/redraft/redraft/rollout"
)

// Progress counts a job's work as it happens, for a progress display. Rows
// are written in input order, so a count of written groups stalls behind
// the slowest sample in flight; the request counts move with the server.
// All counts are totals since the run started, earlier sessions of a
// resumed run included where the journal knows them (tasks, groups, rows).
// It is safe for concurrent use; the zero value is ready.
type Progress struct {
	// Requests to the policy model: started, answered, failed for good
	// (after the endpoint's retries). Started minus answered minus failed
	// are in flight.
	RequestsStarted, RequestsDone, RequestsFailed atomic.Int64
	// CompletionTokens the policy generated (as the servers report usage).
	CompletionTokens atomic.Int64
	// Tasks (inputs) whose rows are written, Groups and Rows written.
	Tasks, Groups, Rows atomic.Int64
	// TasksTotal is the number of input records when it is known (0 until
	// then): an upper bound on Tasks, for an estimate of the time left.
	TasksTotal atomic.Int64
}

// Snapshot is Progress at one moment.
type Snapshot struct {
	RequestsStarted, RequestsDone, RequestsFailed, InFlight int64
	CompletionTokens                                        int64
	Tasks, Groups, Rows, TasksTotal                         int64
	At                                                      time.Time
}

// Snapshot reads the counts.
func (p *Progress) Snapshot() Snapshot {
	s := Snapshot{
		RequestsDone: p.RequestsDone.Load(), RequestsFailed: p.RequestsFailed.Load(),
		CompletionTokens: p.CompletionTokens.Load(),
		Tasks:            p.Tasks.Load(), Groups: p.Groups.Load(), Rows: p.Rows.Load(), TasksTotal: p.TasksTotal.Load(),
		At: time.Now(),
	}
	// Started is read last: a request counted as done is then always
	// counted as started too.
	s.RequestsStarted = p.RequestsStarted.Load()
	s.InFlight = max(0, s.RequestsStarted-s.RequestsDone-s.RequestsFailed)
	return s
}

// Policy wraps next so that its requests are counted (nil p: next itself).
func (p *Progress) Policy(next rollout.Policy) rollout.Policy {
	if p == nil {
		return next
	}
	return &countedPolicy{next: next, p: p}
}

type countedPolicy struct {
	next rollout.Policy
	p    *Progress
}

func (c *countedPolicy) Sample(ctx context.Context, req rollout.Request) (rollout.Response, error) {
	c.p.RequestsStarted.Add(1)
	resp, err := c.next.Sample(ctx, req)
	if err != nil {
		c.p.RequestsFailed.Add(1)
		return resp, err
	}
	c.p.RequestsDone.Add(1)
	if u := resp.Usage; u != nil {
		c.p.CompletionTokens.Add(int64(u.CompletionTokens))
	}
	return resp, nil
}

// CountInput sets p.TasksTotal to the input's record count, in the
// background; it returns at once and stops when ctx ends.
func (p *Progress) CountInput(ctx context.Context, in rollout.InputOptions) {
	if p == nil {
		return
	}
	go func() {
		if n, err := rollout.CountRecords(ctx, in); err == nil {
			if in.Shard.Count > 1 {
				// A shard reads about its share.
				n = (n + int64(in.Shard.Count) - 1) / int64(in.Shard.Count)
			}
			p.TasksTotal.Store(n)
		}
	}()
}
