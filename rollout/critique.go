package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Critique modes of Critique-GRPO.
const (
	// CritiqueVerdictGT says whether the answer is correct and, when not,
	// what the reference answer is.
	CritiqueVerdictGT = "verdict_gt"
	// CritiqueVerdict says only whether the answer is correct.
	CritiqueVerdict = "verdict"
	// CritiqueCoT asks a critic model for a step-by-step critique of the
	// response against the reference.
	CritiqueCoT = "cot"
)

// RefineInstruction follows the critique in the refinement request.
const RefineInstruction = "Please refine your solution based on the critique above, and state the final answer."

// CritiqueGenerator is a Producer for Critique-GRPO: per task it samples
// Samples-1 initial responses, has each one critiqued (by the verifier's
// verdict or by a critic model), samples one refinement per initial response
// with the critique in the context, and adds ONE refinement to the group: the
// first that is correct, else the first. The refinement is placed as a
// response to the ORIGINAL prompt and flagged OffPolicy; its metadata keeps
// the critique, which response it refined, and the messages it was sampled
// from. Groups are single-turn, so advantages compare all Samples responses.
type CritiqueGenerator struct {
	Tasks       TaskSource
	Policy      Policy
	Samples     int
	Sampling    Sampling
	RunSeed     int64
	MaxInFlight int
	Model       string
	Mode        string
	// Critic writes cot critiques; CriticModel names it in metadata.
	Critic      Policy
	CriticModel string
	Verifier    Verifier
}

// Produce implements Producer.
func (c *CritiqueGenerator) Produce(ctx context.Context, w *Window, out chan<- *Group) error {
	if c.Samples < 2 {
		return fmt.Errorf("critique: a group needs at least 2 samples (G-1 initial + 1 refinement), got %d", c.Samples)
	}
	if c.Mode == CritiqueCoT && c.Critic == nil {
		return errors.New("critique: mode cot needs a critic endpoint")
	}
	sem := make(chan struct{}, max(c.MaxInFlight, 1))
	return produceTasks(ctx, w, c.Tasks, 1, out, func(ctx context.Context, task Task, seq int64) ([]*Group, error) {
		g, err := c.group(ctx, sem, task, seq)
		return []*Group{g}, err
	})
}

func (c *CritiqueGenerator) call(ctx context.Context, sem chan struct{}, p Policy, req Request) (Response, time.Duration, error) {
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return Response{}, 0, ctx.Err()
	}
	defer func() { <-sem }()
	start := time.Now()
	resp, err := p.Sample(ctx, req)
	return resp, time.Since(start), err
}

type refinement struct {
	sample   Sample
	from     int
	critique string
	prompt   []Message
	correct  *bool
}

func (c *CritiqueGenerator) group(ctx context.Context, sem chan struct{}, task Task, seq int64) (*Group, error) {
	n := c.Samples - 1
	g := &Group{Seq: seq, Task: task, Samples: make([]Sample, c.Samples)}
	refs := make([]*refinement, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seed := DeriveSeed(c.RunSeed, task.ID, i, 0)
			settings := c.Sampling
			s := Sample{Index: i, Model: c.Model, Seed: &seed, Sampling: &settings}
			resp, lat, err := c.call(ctx, sem, c.Policy, Request{Messages: task.Messages, Sampling: c.Sampling, Seed: seed})
			s.record(resp, lat, err)
			g.Samples[i] = s
			if s.Err != "" {
				return
			}
			crit, err := c.critique(ctx, sem, task, s)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			if crit == "" {
				return // the critique could not be written; no refinement
			}
			prompt := append(append([]Message(nil), task.Messages...),
				Message{Role: "assistant", Content: s.Text},
				Message{Role: "user", Content: crit + "\n\n" + RefineInstruction})
			rseed := DeriveSeed(c.RunSeed, task.ID, i, 1)
			r := Sample{Index: n, Model: c.Model, Seed: &rseed, Sampling: &settings, OffPolicy: true}
			resp, lat, err = c.call(ctx, sem, c.Policy, Request{Messages: prompt, Sampling: c.Sampling, Seed: rseed})
			r.record(resp, lat, err)
			ref := &refinement{sample: r, from: i, critique: crit, prompt: prompt}
			if r.Err == "" && c.Verifier != nil {
				ref.correct = c.Verifier.Verify(ctx, task, r).Correct
			}
			refs[i] = ref
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	// The refinement that joins the group: the first correct one, else the
	// first that exists.
	var chosen *refinement
	for _, r := range refs {
		if r != nil && r.correct != nil && *r.correct {
			chosen = r
			break
		}
	}
	for _, r := range refs {
		if chosen == nil && r != nil {
			chosen = r
		}
	}
	if chosen == nil {
		g.Samples[n] = Sample{Index: n, Model: c.Model, OffPolicy: true, Err: "no refinement: no initial response could be critiqued and refined"}
		return g, nil
	}
	meta, _ := json.Marshal(map[string]any{
		"critique_mode": c.Mode, "critique": chosen.critique, "refined_from": chosen.from,
		"refinement_prompt": chosen.prompt, "critic_model": c.CriticModel,
	})
	chosen.sample.Metadata = meta
	g.Samples[n] = chosen.sample
	return g, nil
}

// critique writes the critique of one initial response ("" when it cannot
// be written, e.g. a cot critic call failed).
func (c *CritiqueGenerator) critique(ctx context.Context, sem chan struct{}, task Task, s Sample) (string, error) {
	var correct *bool
	if c.Verifier != nil {
		correct = c.Verifier.Verify(ctx, task, s).Correct
	}
	switch c.Mode {
	case CritiqueVerdictGT, CritiqueVerdict:
		if correct == nil {
			return "", nil
		}
		if *correct {
			return "Critique: the solution above is correct.", nil
		}
		if c.Mode == CritiqueVerdictGT && task.Reference != "" {
			return "Critique: the solution above is incorrect. The correct final answer is " + task.Reference + ".", nil
		}
		return "Critique: the solution above is incorrect.", nil
	case CritiqueCoT:
		q := ""
		for _, m := range task.Messages {
			if m.Role == "user" {
				q = m.Content
				break
			}
		}
		var b strings.Builder
		fmt.Fprintf(&b, "Critique the following solution step by step against the reference answer. Point out the first error, if any, and end with \"Conclusion: correct\" or \"Conclusion: incorrect\".\n\nQuestion:\n%s\n\nSolution:\n%s\n\nReference answer: %s", q, s.Text, task.Reference)
		seed := DeriveSeed(c.RunSeed, task.ID+"#critic", s.Index, 0)
		resp, _, err := c.call(ctx, sem, c.Critic, Request{Messages: []Message{{Role: "user", Content: b.String()}}, Sampling: c.Sampling, Seed: seed})
		if err != nil || strings.TrimSpace(resp.Text) == "" {
			return "", nil
		}
		return "Critique: " + strings.TrimSpace(resp.Text), nil
	default:
		return "", fmt.Errorf("critique: unknown mode %q", c.Mode)
	}
}
