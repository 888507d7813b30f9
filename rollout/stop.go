package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// TaskIDHash extends a rolling hash over task ids with id: FNV-1a 64 over the
// id's bytes followed by a 0xff separator byte (which UTF-8 text never
// contains), continuing from prev; prev 0 starts from the FNV offset basis.
// A checkpoint stores the hash of the ids it covers so that a resumed run can
// tell that its input still starts with the same tasks.
func TaskIDHash(prev uint64, id string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := prev
	if h == 0 {
		h = offset
	}
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= prime
	}
	h ^= 0xff
	h *= prime
	return h
}

// Stopper ends a producer's input early: once Stop is called, the sources it
// wraps report io.EOF instead of their next task, so producers finish the
// tasks they have started and return as at the end of the input.
type Stopper struct {
	ch      chan struct{}
	stopped atomic.Bool
	// hit is set when a source ended early because of Stop.
	hit atomic.Bool
}

// NewStopper returns a Stopper that has not been stopped.
func NewStopper() *Stopper { return &Stopper{ch: make(chan struct{})} }

// Stop asks the wrapped sources to end; it is safe to call more than once.
func (s *Stopper) Stop() {
	if s.stopped.CompareAndSwap(false, true) {
		close(s.ch)
	}
}

// Done is closed once Stop has been called.
func (s *Stopper) Done() <-chan struct{} { return s.ch }

// Stopped reports whether a wrapped source ended early because of Stop (a
// Stop after the input's real end does not count).
func (s *Stopper) Stopped() bool { return s.hit.Load() }

// Tasks wraps src so that it ends once Stop is called.
func (s *Stopper) Tasks(src TaskSource) TaskSource { return &stoppedTasks{src: src, s: s} }

type stoppedTasks struct {
	src TaskSource
	s   *Stopper
}

func (t *stoppedTasks) Next(ctx context.Context) (Task, error) {
	if t.s.stopped.Load() {
		t.s.hit.Store(true)
		return Task{}, io.EOF
	}
	return t.src.Next(ctx)
}

func (t *stoppedTasks) Close() error { return t.src.Close() }

// GroupSource yields recorded groups in input order; Next returns io.EOF
// after the last one.
type GroupSource interface {
	Next(ctx context.Context) (*Group, error)
}

// Groups wraps src so that it ends once Stop is called.
func (s *Stopper) Groups(src GroupSource) GroupSource { return &stoppedGroups{src: src, s: s} }

type stoppedGroups struct {
	src GroupSource
	s   *Stopper
}

func (g *stoppedGroups) Next(ctx context.Context) (*Group, error) {
	if g.s.stopped.Load() {
		g.s.hit.Store(true)
		return nil, io.EOF
	}
	return g.src.Next(ctx)
}

// ReplayProducer emits the groups of a GroupSource in order, one window slot
// each: the Producer for recorded rollouts.
type ReplayProducer struct{ Source GroupSource }

// Produce implements Producer.
func (p ReplayProducer) Produce(ctx context.Context, w *Window, out chan<- *Group) error {
	for seq := int64(0); ; seq++ {
		if err := w.Acquire(ctx); err != nil {
			return err
		}
		g, err := p.Source.Next(ctx)
		if err != nil {
			w.Release()
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		g.Seq = seq
		select {
		case out <- g:
		case <-ctx.Done():
			w.Release()
			return ctx.Err()
		}
	}
}

// SkipTasks wraps src for a resumed run: the first n tasks are read and
// discarded, and the TaskIDHash of their ids must equal hash, or Next fails:
// a run must not resume on an input whose start has changed.
func SkipTasks(src TaskSource, n int64, hash uint64) TaskSource {
	return &skippedTasks{src: src, skip: skipper{n: n, hash: hash}}
}

type skippedTasks struct {
	src  TaskSource
	skip skipper
}

func (t *skippedTasks) Next(ctx context.Context) (Task, error) {
	err := t.skip.run(ctx, func(ctx context.Context) (string, error) {
		task, err := t.src.Next(ctx)
		return task.ID, err
	})
	if err != nil {
		return Task{}, err
	}
	return t.src.Next(ctx)
}

func (t *skippedTasks) Close() error { return t.src.Close() }

// SkipGroups is SkipTasks for recorded groups (one per task).
func SkipGroups(src GroupSource, n int64, hash uint64) GroupSource {
	return &skippedGroups{src: src, skip: skipper{n: n, hash: hash}}
}

type skippedGroups struct {
	src  GroupSource
	skip skipper
}

func (g *skippedGroups) Next(ctx context.Context) (*Group, error) {
	err := g.skip.run(ctx, func(ctx context.Context) (string, error) {
		grp, err := g.src.Next(ctx)
		if err != nil {
			return "", err
		}
		return grp.Task.ID, nil
	})
	if err != nil {
		return nil, err
	}
	return g.src.Next(ctx)
}

// skipper consumes a resumed run's prefix once, checking its ids' hash.
type skipper struct {
	n    int64
	hash uint64
	done bool
	err  error
}

func (s *skipper) run(ctx context.Context, next func(ctx context.Context) (string, error)) error {
	if s.done {
		return s.err
	}
	s.done = true
	var h uint64
	for i := int64(0); i < s.n; i++ {
		id, err := next(ctx)
		if errors.Is(err, io.EOF) {
			s.err = fmt.Errorf("resuming: the input has %d tasks, fewer than the %d already written; it changed since the run started (pass --overwrite to start over)", i, s.n)
			return s.err
		}
		if err != nil {
			s.err = err
			return err
		}
		h = TaskIDHash(h, id)
	}
	if h != s.hash {
		s.err = fmt.Errorf("resuming: the first %d tasks of the input are not the ones already written; the input changed since the run started (pass --overwrite to start over)", s.n)
	}
	return s.err
}
