package rollout

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Verifier says whether a response to a task is correct, for feedback that
// depends on it. It must be safe for concurrent use.
type Verifier interface {
	Verify(ctx context.Context, task Task, attempt Sample) Check
}

// Check is a Verifier's decision on one attempt.
type Check struct {
	// Correct is nil when the verifier cannot tell (no reference; a
	// verifier that failed); an attempt stating no answer is wrong.
	Correct *bool
	// Feedback is what the verifier would tell the model about a wrong
	// attempt (a code task's first failing test and its error); "" when it
	// has nothing to say.
	Feedback string
}

// Feedback decides what the user says after an attempt. Next returns the
// feedback message, or ok=false to end the episode there.
type Feedback interface {
	Next(ctx context.Context, task Task, attempt Sample, check Check, turn int) (msg string, ok bool, err error)
}

// SCoReInstruction is the fixed second-turn instruction of SCoRe (Kumar et
// al., 2024), as quoted in the paper.
const SCoReInstruction = "There might be an error in the solution above because of lack of understanding of the question. Please correct the error, if any, and rewrite the solution."

// RISEFeedback is RISE's feedback to a wrong attempt.
const RISEFeedback = "Your answer is incorrect. Try again."

// PAMAnswerMarker introduces the modified answer in a PAM revision;
// PAMInstruction asks for it, and the sft builder splits the revision at it
// into the verification and the modified answer.
const PAMAnswerMarker = "Modified answer:"

// PAMInstruction is redraft's self-verification instruction for intrinsic
// self-correction episodes (ISC with Partial Answer Masking): verify the
// answer, then restate it, corrected when needed.
const PAMInstruction = "Verify your answer above step by step and say whether it is correct. Then write \"" + PAMAnswerMarker +
	"\" followed by the complete solution, corrected if you found an error, ending with the final answer in \\boxed{}."

// PTRInstruction is redraft's refinement instruction for Progressive Thought
// Refinement rounds: a thought, then the refined answer.
const PTRInstruction = "Think about how your previous answer could be improved, and write these thoughts between <think> and </think>. " +
	"Then write the refined solution, ending with the final answer in \\boxed{}."

// FixedInstruction always answers with Text (SCoRe).
type FixedInstruction struct{ Text string }

// Next implements Feedback.
func (f FixedInstruction) Next(_ context.Context, _ Task, _ Sample, _ Check, _ int) (string, bool, error) {
	return f.Text, true, nil
}

// RetryIfWrong answers with Text only when the verifier says the attempt is
// wrong, and ends the episode when it is right or cannot be graded (RISE).
type RetryIfWrong struct{ Text string }

// Next implements Feedback.
func (f RetryIfWrong) Next(_ context.Context, _ Task, _ Sample, check Check, _ int) (string, bool, error) {
	if correct := check.Correct; correct == nil || *correct {
		return "", false, nil
	}
	return f.Text, true, nil
}

// ExecutionInstruction follows the execution result in the feedback of
// execution-feedback episodes (self-debugging).
const ExecutionInstruction = "Fix the program and reply with the complete corrected function in a ```python code block."

// ExecutionFeedback answers a wrong attempt with what its verifier found
// (a code task's first failing test and its error, trimmed) followed by
// Text, and ends the episode when the attempt is right or could not be
// checked (self-debugging, Chen et al., 2023; Re-ReST). A wrong attempt on
// which the verifier has nothing to say gets Text alone.
type ExecutionFeedback struct{ Text string }

// Next implements Feedback.
func (f ExecutionFeedback) Next(_ context.Context, _ Task, _ Sample, check Check, _ int) (string, bool, error) {
	if correct := check.Correct; correct == nil || *correct {
		return "", false, nil
	}
	if check.Feedback == "" {
		return f.Text, true, nil
	}
	return check.Feedback + "\n\n" + f.Text, true, nil
}

// EpisodeGenerator is a Producer of multi-turn correction episodes: for each
// task it runs Samples independent episodes of up to Turns turns (attempt,
// feedback, revision, ...) and emits one group per turn, (task, turn), with
// every sample carrying the exact messages it was sent. A turn's group holds
// the episodes still running at that turn; it may be empty (an empty group
// writes no rows).
type EpisodeGenerator struct {
	Tasks       TaskSource
	Policy      Policy
	Samples     int
	Turns       int
	Sampling    Sampling
	RunSeed     int64
	MaxInFlight int
	Model       string
	Feedback    Feedback
	Verifier    Verifier
}

// Produce implements Producer. It takes Turns window slots per task, one per
// group it will emit.
func (e *EpisodeGenerator) Produce(ctx context.Context, w *Window, out chan<- *Group) error {
	if e.Samples < 1 || e.Turns < 1 {
		return fmt.Errorf("episodes: samples (%d) and turns (%d) must be at least 1", e.Samples, e.Turns)
	}
	sem := make(chan struct{}, max(e.MaxInFlight, 1))
	return produceTasks(ctx, w, e.Tasks, e.Turns, out, func(ctx context.Context, task Task, seq int64) ([]*Group, error) {
		return e.task(ctx, sem, task, seq)
	})
}

// task runs every episode of one task and returns its groups, turn by turn.
func (e *EpisodeGenerator) task(ctx context.Context, sem chan struct{}, task Task, seq int64) ([]*Group, error) {
	turns := make([][]*Sample, e.Turns) // [turn][episode]
	for t := range turns {
		turns[t] = make([]*Sample, e.Samples)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range e.Samples {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.episode(ctx, sem, task, i, turns); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	groups := make([]*Group, e.Turns)
	for t := range turns {
		g := &Group{Seq: seq + int64(t), Task: task, Turn: t, More: t < e.Turns-1}
		for _, s := range turns[t] {
			if s != nil {
				g.Samples = append(g.Samples, *s)
			}
		}
		groups[t] = g
	}
	return groups, nil
}

// episode runs episode i of a task, filling turns[t][i] for each turn taken.
func (e *EpisodeGenerator) episode(ctx context.Context, sem chan struct{}, task Task, i int, turns [][]*Sample) error {
	history := append([]Message(nil), task.Messages...)
	var prev *bool
	for t := range e.Turns {
		seed := DeriveSeed(e.RunSeed, task.ID, i, t)
		settings := e.Sampling
		s := &Sample{Index: i, Model: e.Model, Seed: &seed, Sampling: &settings, PrevCorrect: prev}
		if t > 0 {
			s.Prompt = append([]Message(nil), history...)
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		start := time.Now()
		resp, err := e.Policy.Sample(ctx, Request{Messages: history, Tools: task.Tools, Sampling: e.Sampling, Seed: seed})
		<-sem
		s.record(resp, time.Since(start), err)
		turns[t][i] = s
		if err != nil {
			return nil // a failed turn ends the episode; the sample stays, with the error
		}
		if t == e.Turns-1 {
			return nil
		}
		var check Check
		if e.Verifier != nil {
			check = e.Verifier.Verify(ctx, task, *s)
		}
		msg, ok, err := e.Feedback.Next(ctx, task, *s, check, t)
		if err != nil {
			return fmt.Errorf("feedback for task %q turn %d: %w", task.ID, t, err)
		}
		if !ok {
			return nil
		}
		history = append(history, Message{Role: "assistant", Content: s.Text, ToolCalls: s.ToolCalls}, Message{Role: "user", Content: msg})
		prev = check.Correct
	}
	return nil
}
