// Package ordered runs work on a stream of items concurrently and hands the
// results on in input order: the shape of every job that revises or plays
// inputs one by one (splices, Agent-R, agent episodes) and writes them in
// order so that a resumed run skips exactly the inputs done.
package ordered

import (
	"context"
	"sync"
)

// Map runs work on the items next yields, up to n at a time, and calls
// emit with the results in input order. It stops at the first error of next
// or emit, or when ctx ends; work must return promptly once ctx is done.
// next returns ok false at the end of the input.
func Map[I, R any](ctx context.Context, n int, next func() (I, bool, error), work func(context.Context, I) R, emit func(R) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n = max(n, 1)
	queue := make(chan chan R, n)
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	var readErr error
	go func() {
		defer close(queue)
		for ctx.Err() == nil {
			it, ok, err := next()
			if err != nil {
				readErr = err
				return
			}
			if !ok {
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			ch := make(chan R, 1)
			select {
			case queue <- ch:
			case <-ctx.Done():
				<-sem
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ch <- work(ctx, it)
				<-sem
			}()
		}
	}()
	var emitErr error
	for ch := range queue {
		if emitErr != nil || ctx.Err() != nil {
			continue // drain: the workers write to buffered channels
		}
		r := <-ch
		if ctx.Err() != nil {
			// A result made while ctx ended may only say so; it is not
			// an answer about the item.
			continue
		}
		if err := emit(r); err != nil {
			emitErr = err
			cancel()
		}
	}
	wg.Wait()
	switch {
	case emitErr != nil:
		return emitErr
	case readErr != nil:
		return readErr
	}
	return context.Cause(ctx)
}
