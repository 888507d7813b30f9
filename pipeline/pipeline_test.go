package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rollout"
)

// shuffledProducer starts groups in order but emits them in a random order
// within batches, as concurrent generation does, and records how many groups
// it has started.
type shuffledProducer struct {
	n       int
	started atomic.Int64
	fail    error
}

func (p *shuffledProducer) Produce(ctx context.Context, w *rollout.Window, out chan<- *rollout.Group) error {
	rng := rand.New(rand.NewPCG(1, 2))
	var batch []*rollout.Group
	flush := func() error {
		rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		for _, g := range batch {
			select {
			case out <- g:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		batch = batch[:0]
		return nil
	}
	for i := range p.n {
		if err := w.Acquire(ctx); err != nil {
			return err
		}
		p.started.Add(1)
		if p.fail != nil && i == p.n/2 {
			return p.fail
		}
		batch = append(batch, &rollout.Group{Seq: int64(i), Task: rollout.Task{ID: fmt.Sprint(i), Reference: "1"},
			Samples: []rollout.Sample{{Index: 0, Text: "#### 1"}, {Index: 1, Text: "#### 2"}}})
		if len(batch) == 3 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

type slowSink struct {
	prod       *shuffledProducer
	written    int64
	maxPending int64
	order      []string
}

func (s *slowSink) Write(ctx context.Context, f *Flush) error {
	for _, g := range f.Groups {
		time.Sleep(100 * time.Microsecond)
		s.written++
		if p := s.prod.started.Load() - s.written; p > s.maxPending {
			s.maxPending = p
		}
		s.order = append(s.order, g.Rows[0].TaskID)
	}
	return nil
}

func TestRunOrderAndWindow(t *testing.T) {
	prod := &shuffledProducer{n: 500}
	sink := &slowSink{prod: prod}
	scorer := verifiableScorer()
	sum, err := Run(context.Background(), prod, scorer, sink, Options{Workers: 4, Window: 6, Advantage: rewards.AdvantageConfig{Estimator: rewards.GRPO, Eps: 1e-6}})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range sink.order {
		if id != fmt.Sprint(i) {
			t.Fatalf("group %d written at position %d: output must follow input order", i, len(sink.order))
		}
	}
	if sum.Groups != 500 || sum.Rows != 1000 || *sum.Accuracy != 0.5 || *sum.FracZeroStd != 0 {
		t.Errorf("summary %+v", sum)
	}
	// Started but unwritten groups never exceed the window (+1 for the group
	// counted as started just before its slot is checked by the writer).
	if sink.maxPending > 6+1 {
		t.Errorf("%d groups in flight with a window of 6", sink.maxPending)
	}
}

func TestRunProducerError(t *testing.T) {
	boom := errors.New("boom")
	prod := &shuffledProducer{n: 100, fail: boom}
	sink := &slowSink{prod: prod}
	scorer := verifiableScorer()
	_, err := Run(context.Background(), prod, scorer, sink, Options{Workers: 2, Window: 4, Advantage: rewards.AdvantageConfig{Estimator: rewards.GRPO}})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	prod := &shuffledProducer{n: 100}
	_, err := Run(ctx, prod, verifiableScorer(), &slowSink{prod: prod},
		Options{Advantage: rewards.AdvantageConfig{Estimator: rewards.GRPO}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func verifiableScorer() rewards.Scorer {
	return &rewards.Composite{Grader: defaultGrader(), Parts: []rewards.Part{rewards.Verifiable{}}, Weights: map[string]float64{"verifiable": 1}}
}
