package rollout

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
)

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
			w.unacquire()
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		g.Seq = seq
		w.emit(g)
		select {
		case out <- g:
		case <-ctx.Done():
			w.unacquire()
			return ctx.Err()
		}
	}
}
