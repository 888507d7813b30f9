package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Window bounds the number of groups in flight between the moment a producer
// starts a group and the moment the pipeline has written it. It is what keeps
// memory proportional to the window, not to the dataset.
//
// It also bounds the bytes of the answers in groups that are done but not
// yet written (PendingBytes): when answers are large and the writer is
// slower than the servers, finished groups would otherwise pile up, a
// window's worth of them. Acquire waits while more than PendingBytes are
// pending, so new groups start only as the writer catches up; the memory of
// a run is then about the answers being generated plus PendingBytes,
// whatever their size. Groups already started always finish, so the wait
// cannot deadlock.
type Window struct {
	slots chan struct{}

	mu sync.Mutex
	// pending maps the Seq of each emitted, unwritten group to the bytes
	// of its answers; held is their sum. released counts the groups the
	// pipeline has written (Release): it writes them in Seq order, so
	// released is the Seq of the next group to be written.
	pending  map[int64]int64
	held     int64
	released int64
	// freed is closed and replaced when held goes down.
	freed chan struct{}
}

// PendingBytes is how many bytes of answers in finished, unwritten groups
// make Window.Acquire wait: the size of one answer at
// DefaultMaxResponseBytes.
const PendingBytes = DefaultMaxResponseBytes

// NewWindow returns a window of n slots (n >= 1).
func NewWindow(n int) *Window {
	if n < 1 {
		n = 1
	}
	return &Window{slots: make(chan struct{}, n), pending: map[int64]int64{}, freed: make(chan struct{})}
}

// Acquire takes a slot, blocking until one is free and no more than
// PendingBytes of answers wait to be written, or until ctx is done.
func (w *Window) Acquire(ctx context.Context) error {
	for {
		w.mu.Lock()
		held, freed := w.held, w.freed
		w.mu.Unlock()
		if held <= PendingBytes {
			break
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case w.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release frees the slot of the next group written, in Seq order: the
// pipeline calls it once per group it has written.
func (w *Window) Release() {
	<-w.slots
	w.mu.Lock()
	defer w.mu.Unlock()
	if b, ok := w.pending[w.released]; ok {
		delete(w.pending, w.released)
		w.held -= b
	}
	w.released++
	w.settle()
}

// unacquire gives back a slot that a producer took but used for no group
// (at the end of its input, or when it stops).
func (w *Window) unacquire() {
	<-w.slots
	w.mu.Lock()
	defer w.mu.Unlock()
	w.settle()
}

// settle wakes the producers waiting for bytes; with no group outstanding
// nothing can be pending, whatever a producer reported (a custom producer
// may number its groups otherwise), so the count restarts.
func (w *Window) settle() {
	if len(w.slots) == 0 && w.held != 0 {
		w.held = 0
		clear(w.pending)
	}
	close(w.freed)
	w.freed = make(chan struct{})
}

// emit records the bytes of g's answers as its producer emits it.
func (w *Window) emit(g *Group) {
	var n int64
	for i := range g.Samples {
		s := &g.Samples[i]
		n += int64(len(s.Text) + len(s.Reasoning) + 24*len(s.Logprobs))
		for _, lp := range s.Logprobs {
			n += int64(len(lp.Token))
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending[g.Seq] += n
	w.held += n
}

// Producer emits groups. Produce takes a window slot before starting each
// group, sends every group it starts to out exactly once (possibly out of Seq
// order), and returns nil at the end of the input. The consumer releases the
// slot once the group is written.
type Producer interface {
	Produce(ctx context.Context, w *Window, out chan<- *Group) error
}

// TaskSource yields tasks in input order. Next returns io.EOF after the last
// task and an *InputError for bad input.
type TaskSource interface {
	Next(ctx context.Context) (Task, error)
	Close() error
}

// Generator is a Producer that samples Policy Samples times per task, one
// request per sample, with at most MaxInFlight requests outstanding.
type Generator struct {
	Tasks       TaskSource
	Policy      Policy
	Samples     int
	Sampling    Sampling
	RunSeed     int64
	MaxInFlight int
	// Model is recorded on samples whose response does not name a model.
	Model string
	// Replay, when set, is asked first for each sample: the response an
	// earlier run of the same configuration got for this task, sample and
	// seed (redraft run --retry-failed). ok false: the policy is asked. A
	// replayed sample keeps that run's response, usage, endpoint, attempts
	// and latency. It must be safe for concurrent use.
	Replay func(taskID string, index int, seed int64) (s Sample, ok bool)
}

// Produce implements Producer.
func (g *Generator) Produce(ctx context.Context, w *Window, out chan<- *Group) error {
	if g.Samples < 1 {
		return fmt.Errorf("generator: samples per task must be at least 1, got %d", g.Samples)
	}
	limit := g.MaxInFlight
	if limit < 1 {
		limit = 1
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	// Requests in flight finish (or see ctx cancelled) before Produce returns,
	// so no goroutine outlives the call.
	defer wg.Wait()
	for seq := int64(0); ; seq++ {
		if err := w.Acquire(ctx); err != nil {
			return err
		}
		task, err := g.Tasks.Next(ctx)
		if errors.Is(err, io.EOF) {
			w.unacquire()
			return nil
		}
		if err != nil {
			w.unacquire()
			return err
		}
		grp := &Group{Seq: seq, Task: task, Samples: make([]Sample, g.Samples)}
		var pending atomic.Int32
		pending.Store(int32(g.Samples))
		for i := range g.Samples {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				grp.Samples[i] = g.sample(ctx, task, i)
				<-sem
				if pending.Add(-1) == 0 {
					w.emit(grp)
					select {
					case out <- grp:
					case <-ctx.Done():
					}
				}
			}()
		}
	}
}

// produceTasks is the loop of producers that work a task at a time and emit
// a fixed number of groups per task (slots): it takes the task's window
// slots, reads the task, and runs work in its own goroutine, which returns
// the task's groups in turn order; they are emitted unless ctx ended. A
// failing task cancels the others and the loop, which could otherwise wait
// forever for the window slots the failed task holds. Every goroutine has
// returned when produceTasks does.
func produceTasks(ctx context.Context, w *Window, tasks TaskSource, slots int, out chan<- *Group,
	work func(ctx context.Context, task Task, seq int64) ([]*Group, error)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	defer wg.Wait()
	for seq := int64(0); ; seq += int64(slots) {
		for range slots {
			if err := w.Acquire(ctx); err != nil {
				return context.Cause(ctx)
			}
		}
		task, err := tasks.Next(ctx)
		if err != nil {
			for range slots {
				w.unacquire()
			}
			if errors.Is(err, io.EOF) {
				wg.Wait()
				return context.Cause(ctx) // nil unless a task failed or ctx ended
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			groups, err := work(ctx, task, seq)
			if err != nil {
				cancel(err)
				return
			}
			if ctx.Err() != nil {
				return // the samples hold cancellation errors, not responses
			}
			for _, g := range groups {
				w.emit(g)
				select {
				case out <- g:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
}

// sample draws sample i of task. Failures are recorded on the sample, never
// returned: the sample stays in its group.
func (g *Generator) sample(ctx context.Context, task Task, i int) Sample {
	seed := DeriveSeed(g.RunSeed, task.ID, i, 0)
	settings := g.Sampling
	s := Sample{Index: i, Model: g.Model, Seed: &seed, Sampling: &settings}
	if g.Replay != nil {
		if r, ok := g.Replay(task.ID, i, seed); ok {
			s.Text, s.Reasoning, s.ToolCalls, s.FinishReason, s.Usage, s.Logprobs = r.Text, r.Reasoning, r.ToolCalls, r.FinishReason, r.Usage, r.Logprobs
			s.Endpoint, s.Attempts, s.Latency = r.Endpoint, r.Attempts, r.Latency
			s.PromptIDs, s.ResponseIDs = r.PromptIDs, r.ResponseIDs
			if r.Model != "" {
				s.Model = r.Model
			}
			return s
		}
	}
	start := time.Now()
	resp, err := g.Policy.Sample(ctx, Request{Messages: task.Messages, Tools: task.Tools, Sampling: g.Sampling, Seed: seed})
	s.record(resp, time.Since(start), err)
	return s
}

// record puts a policy's answer on the sample: the response, or the error
// with the endpoint and attempts of the failed request.
func (s *Sample) record(resp Response, latency time.Duration, err error) {
	s.Latency = latency
	if err != nil {
		s.Err = err.Error()
		var rf *RequestFailure
		if errors.As(err, &rf) {
			s.Endpoint, s.Attempts = rf.Endpoint, rf.Attempts
		}
		return
	}
	s.Text, s.Reasoning, s.ToolCalls, s.FinishReason = resp.Text, resp.Reasoning, resp.ToolCalls, resp.FinishReason
	s.Usage, s.Logprobs, s.Endpoint, s.Attempts = resp.Usage, resp.Logprobs, resp.Endpoint, resp.Attempts
	s.PromptIDs, s.ResponseIDs = resp.PromptIDs, resp.ResponseIDs
	if resp.Model != "" {
		s.Model = resp.Model
	}
}
