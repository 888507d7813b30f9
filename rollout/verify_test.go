package rollout

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
)

// listTasks is a TaskSource over a slice.
type listTasks struct {
	mu    sync.Mutex
	tasks []Task
}

func (l *listTasks) Next(context.Context) (Task, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.tasks) == 0 {
		return Task{}, io.EOF
	}
	t := l.tasks[0]
	l.tasks = l.tasks[1:]
	return t, nil
}

func (l *listTasks) Close() error { return nil }

// scriptedPolicy answers each request with a function of its messages and
// seed, and records what it was sent.
type scriptedPolicy struct {
	mu     sync.Mutex
	answer func(req Request) (string, error)
	sent   []Request
}

func (p *scriptedPolicy) Sample(_ context.Context, req Request) (Response, error) {
	p.mu.Lock()
	p.sent = append(p.sent, req)
	p.mu.Unlock()
	text, err := p.answer(req)
	return Response{Text: text, FinishReason: "stop"}, err
}

// Solutions and verifications form separate groups; each verification is
// sent a fresh conversation built on exactly its solution, with the seed of
// (task, sample, turn 1); a failed solution stays in its group and is not
// verified.
func TestSelfVerifyGenerator(t *testing.T) {
	tasks := &listTasks{tasks: []Task{
		{ID: "a", Messages: []Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "What is 1+1?"}}},
		{ID: "b", Messages: []Message{{Role: "user", Content: "What is 2+2?"}}},
	}}
	policy := &scriptedPolicy{answer: func(req Request) (string, error) {
		last := req.Messages[len(req.Messages)-1].Content
		switch {
		case strings.HasPrefix(last, "Check:"):
			return `\boxed{correct}`, nil
		case last == "What is 2+2?" && req.Seed == DeriveSeed(5, "b", 1, 0):
			return "", errors.New("endpoint: HTTP 503")
		}
		// A solution that quotes a placeholder must reach the verifier as
		// written.
		return "seed " + strings.Repeat("x", int(req.Seed%3)) + " {question}", nil
	}}
	gen := &SelfVerifyGenerator{Tasks: tasks, Policy: policy, Samples: 3, RunSeed: 5, MaxInFlight: 4, Model: "m",
		Template: "Check: {question}\n---\n{solution}"}
	out := make(chan *Group, 8)
	if err := gen.Produce(context.Background(), NewWindow(8), out); err != nil {
		t.Fatal(err)
	}
	close(out)
	groups := map[int64]*Group{}
	for g := range out {
		groups[g.Seq] = g
	}
	if len(groups) != 4 {
		t.Fatalf("%d groups, want 2 per task", len(groups))
	}
	for seq, g := range groups {
		wantTurn := int(seq % 2)
		if g.Turn != wantTurn {
			t.Fatalf("group %d: turn %d", seq, g.Turn)
		}
		if g.Turn == 0 {
			if len(g.Samples) != 3 {
				t.Fatalf("solve group %s: %d samples", g.Task.ID, len(g.Samples))
			}
			continue
		}
		solve := groups[seq-1]
		want := 3
		if g.Task.ID == "b" {
			want = 2 // sample 1 failed
			if solve.Samples[1].Err == "" {
				t.Fatal("the failed solution lost its error")
			}
		}
		if len(g.Samples) != want {
			t.Fatalf("verify group %s: %d samples, want %d", g.Task.ID, len(g.Samples), want)
		}
		for _, s := range g.Samples {
			sol := solve.Samples[s.Index]
			wantPrompt := "Check: " + firstUser(g.Task.Messages) + "\n---\n" + sol.Text
			if s.Verifies == nil || s.Verifies.Index != s.Index || s.Verifies.Text != sol.Text ||
				len(s.Prompt) != 1 || s.Prompt[0].Content != wantPrompt || s.Prompt[0].Role != "user" {
				t.Fatalf("verification %s/%d: verifies %+v prompt %+v", g.Task.ID, s.Index, s.Verifies, s.Prompt)
			}
			if *s.Seed != DeriveSeed(5, g.Task.ID, s.Index, 1) || *sol.Seed != DeriveSeed(5, g.Task.ID, s.Index, 0) {
				t.Errorf("%s/%d: seeds %d and %d", g.Task.ID, s.Index, *sol.Seed, *s.Seed)
			}
			if s.Text != `\boxed{correct}` || string(s.Metadata) != `{"verifies_sample":`+string(rune('0'+s.Index))+`}` {
				t.Errorf("%s/%d: text %q metadata %s", g.Task.ID, s.Index, s.Text, s.Metadata)
			}
		}
	}
	if len(policy.sent) != 6+5 {
		t.Errorf("%d requests, want 6 solutions and 5 verifications", len(policy.sent))
	}
}
