package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
)

// DefaultVerifyTemplate is the self-verification prompt of the self-verify
// recipe. {question} is the task's first user message and {solution} the
// sampled solution; the verdict is asked for as \boxed{correct} or
// \boxed{incorrect}, which rewards.ParseSelfVerdict reads.
const DefaultVerifyTemplate = `Here is a question and a proposed solution. Check the solution carefully: go through its steps, verify each computation, and check that its final answer answers the question.

Question:
{question}

Proposed solution:
{solution}

After checking, end your response with your verdict on the proposed solution: \boxed{correct} if its final answer is right, or \boxed{incorrect} if it is wrong or it gives no final answer.`

// DefaultVerifyScoreTemplate asks for the verdict as the score the solution
// earns (the Trust-but-Verify paper's form): \boxed{1}, \boxed{-0.5} or
// \boxed{-1}, which rewards.ParseSelfScore reads.
const DefaultVerifyScoreTemplate = `Here is a question and a proposed solution. Check the solution carefully: go through its steps, verify each computation, and check that its final answer answers the question.

Question:
{question}

Proposed solution:
{solution}

After checking, end your response with the score the proposed solution earns, in \boxed{}: \boxed{1} if its final answer is right, \boxed{-0.5} if it states a final answer that is wrong, \boxed{-1} if it states no final answer.`

// VerifyTarget is the solution a self-verification sample was asked to
// check: the solve sample with the same index in the same task.
type VerifyTarget struct {
	Index        int
	Text         string
	FinishReason string
}

// RenderVerifyPrompt fills a verification template. The placeholders are
// replaced in one pass, so a solution that happens to contain "{question}"
// is left as written.
func RenderVerifyPrompt(template, question, solution string) string {
	return strings.NewReplacer("{question}", question, "{solution}", solution).Replace(template)
}

// firstUser is a task's question: its first user message.
func firstUser(ms []Message) string {
	for _, m := range ms {
		if m.Role == "user" {
			return m.Content
		}
	}
	return ""
}

// SelfVerifyGenerator is a Producer for self-verification (Trust-but-Verify):
// per task it samples Samples solutions, then asks the same policy to verify
// each solution that came back, in a new conversation whose only message is
// Template filled with the question and that solution. It emits two groups
// per task so that advantages are computed separately: turn 0 holds the
// solutions, turn 1 the verifications (each carrying the exact prompt it was
// sent and the solution it checks in Verifies). A solution whose request
// failed stays in its group with the error and gets no verification.
type SelfVerifyGenerator struct {
	Tasks       TaskSource
	Policy      Policy
	Samples     int
	Sampling    Sampling
	RunSeed     int64
	MaxInFlight int
	Model       string
	// Template is the verification prompt (default DefaultVerifyTemplate).
	Template string
}

// Produce implements Producer. It takes two window slots per task.
func (v *SelfVerifyGenerator) Produce(ctx context.Context, w *Window, out chan<- *Group) error {
	if v.Samples < 1 {
		return fmt.Errorf("self-verify: samples per task must be at least 1, got %d", v.Samples)
	}
	tmpl := v.Template
	if tmpl == "" {
		tmpl = DefaultVerifyTemplate
	}
	sem := make(chan struct{}, max(v.MaxInFlight, 1))
	return produceTasks(ctx, w, v.Tasks, 2, out, func(ctx context.Context, task Task, seq int64) ([]*Group, error) {
		solve, verify := v.task(ctx, sem, task, seq, tmpl)
		return []*Group{solve, verify}, nil
	})
}

// task samples one task's solutions and their verifications.
func (v *SelfVerifyGenerator) task(ctx context.Context, sem chan struct{}, task Task, seq int64, tmpl string) (solve, verify *Group) {
	solutions := make([]Sample, v.Samples)
	checks := make([]*Sample, v.Samples)
	question := firstUser(task.Messages)
	var wg sync.WaitGroup
	for i := range v.Samples {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := v.call(ctx, sem, task.ID, i, 0, task.Messages)
			solutions[i] = s
			if s.Err != "" {
				return
			}
			prompt := []Message{{Role: "user", Content: RenderVerifyPrompt(tmpl, question, s.Text)}}
			c := v.call(ctx, sem, task.ID, i, 1, prompt)
			c.Prompt = prompt
			c.Verifies = &VerifyTarget{Index: i, Text: s.Text, FinishReason: s.FinishReason}
			c.Metadata, _ = json.Marshal(map[string]int{"verifies_sample": i})
			checks[i] = &c
		}()
	}
	wg.Wait()
	solve = &Group{Seq: seq, Task: task, Turn: 0, Samples: solutions, More: true}
	verify = &Group{Seq: seq + 1, Task: task, Turn: 1}
	for _, c := range checks {
		if c != nil {
			verify.Samples = append(verify.Samples, *c)
		}
	}
	return solve, verify
}

// call sends one request; failures are recorded on the sample.
func (v *SelfVerifyGenerator) call(ctx context.Context, sem chan struct{}, taskID string, i, turn int, msgs []Message) Sample {
	seed := DeriveSeed(v.RunSeed, taskID, i, turn)
	settings := v.Sampling
	s := Sample{Index: i, Model: v.Model, Seed: &seed, Sampling: &settings}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		s.Err = ctx.Err().Error()
		return s
	}
	start := time.Now()
	resp, err := v.Policy.Sample(ctx, Request{Messages: msgs, Sampling: v.Sampling, Seed: seed})
	<-sem
	s.record(resp, time.Since(start), err)
	return s
}
