package splice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rewards/judge"
	"github.com/redraft/redraft/rollout"
)

// DefaultRevisions is the pool of Agent-R revision thoughts, the text placed
// after the first bad step. The pick for a trajectory is a hash of the run
// seed and the trajectory id.
var DefaultRevisions = []string{
	"I realize my approach was flawed. Let me go back to before that step and take a different path.",
	"Wait, that step is wrong, and everything after it would build on the mistake. Let me redo it from there.",
	"Looking back, the last step does not follow from what came before. I'll revise my approach from that point.",
	"Hmm, this is going in the wrong direction: that step was a mistake. Let me reconsider it.",
	"I see the error now. That step was incorrect, so let me correct my course before continuing.",
}

// AgentROptions configures Agent-R trajectories.
type AgentROptions struct {
	// Judge locates the first bad step (required).
	Judge *judge.StepJudge
	// Continuer samples the good branch from the shared prefix (required).
	Continuer *rollout.Continuer
	// Policy samples a solution for items without one.
	Policy   rollout.Policy
	Sampling rollout.Sampling
	Seed     int64
	// Model is recorded when the server does not name one.
	Model string
	// Steps is StepsLines (default) or StepsParagraphs; MaxSteps skips
	// longer solutions (0: no limit).
	Steps    string
	MaxSteps int
	// Revisions is the pool of revision thoughts (default DefaultRevisions).
	Revisions []string
	// Branches is the number of good branches tried (default 1); with
	// KeepCorrect the first correct one is kept, with KeepAll the first.
	Branches int
	// Keep is KeepCorrect (default) or KeepAll.
	Keep string
	// JudgeCorrect walks solutions the grader already finds correct too.
	JudgeCorrect bool
	// Grader grades solutions and branches against the task's reference.
	Grader rewards.Grader
	// Concurrency is the number of solutions in flight (default 16).
	Concurrency int
}

// AgentRItem is one solution to revise.
type AgentRItem struct {
	Task  rollout.Task
	Index int
	// Sample is a recorded solution; nil: sample one from Policy.
	Sample *rollout.Sample
}

// AgentRResult is what one solution gave: a trajectory or a skip.
type AgentRResult struct {
	Item       AgentRItem
	Trajectory *pipeline.Trajectory
	Reason     string
}

// AgentR revises the solutions next yields, up to Concurrency at a time, and
// calls emit with each one's result in input order. See ReviseOne.
func AgentR(ctx context.Context, next func() (AgentRItem, bool, error), opts AgentROptions, emit func(AgentRResult) error) error {
	if err := opts.check(); err != nil {
		return err
	}
	opts.fill()
	return ordered(ctx, opts.Concurrency, next, func(ctx context.Context, it AgentRItem) AgentRResult {
		t, reason := ReviseOne(ctx, it, &opts)
		return AgentRResult{Item: it, Trajectory: t, Reason: reason}
	}, emit)
}

func (o *AgentROptions) check() error {
	switch {
	case o.Judge == nil:
		return errors.New("agent-r needs a step judge")
	case o.Continuer == nil || o.Continuer.Policy == nil:
		return errors.New("agent-r needs a model endpoint for the good branches")
	case o.Continuer.Mode != "" && !rollout.ValidContinueMode(o.Continuer.Mode):
		return fmt.Errorf("continuation mode %q: want prefill, user-turn or auto", o.Continuer.Mode)
	case o.Steps != "" && o.Steps != StepsLines && o.Steps != StepsParagraphs:
		return fmt.Errorf("steps %q: want lines or paragraphs", o.Steps)
	case o.Keep != "" && o.Keep != KeepAll && o.Keep != KeepCorrect:
		return fmt.Errorf("keep %q: want all or correct", o.Keep)
	case o.Grader == nil && (o.Keep == "" || o.Keep == KeepCorrect):
		return errors.New("keep correct needs a grader")
	}
	return nil
}

func (o *AgentROptions) fill() {
	if o.Steps == "" {
		o.Steps = StepsLines
	}
	if len(o.Revisions) == 0 {
		o.Revisions = DefaultRevisions
	}
	if o.Branches < 1 {
		o.Branches = 1
	}
	if o.Keep == "" {
		o.Keep = KeepCorrect
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
}

// question is the text a judge is shown as the problem: the first user
// message.
func question(t rollout.Task) string {
	for _, m := range t.Messages {
		if m.Role == "user" {
			return m.Content
		}
	}
	return ""
}

// solutionMeta says where the revised solution came from.
type solutionMeta struct {
	Source       string     `json:"source"` // sampled or recorded
	Seed         *int64     `json:"seed,omitempty"`
	Model        string     `json:"model,omitempty"`
	FinishReason string     `json:"finish_reason,omitempty"`
	Grade        *gradeMeta `json:"grade"`
}

// branchMeta is one good branch tried.
type branchMeta struct {
	Seed         int64  `json:"seed"`
	Mode         string `json:"mode"`
	FinishReason string `json:"finish_reason,omitempty"`
	Correct      *bool  `json:"correct"`
	Error        string `json:"error,omitempty"`
}

// ReviseOne builds the Agent-R trajectory of one solution, or says why there
// is none: a failed or empty solution, one the grader finds correct (unless
// JudgeCorrect), more than MaxSteps steps, a step verdict that could not be
// read, no step judged Bad, or (with KeepCorrect) no correct branch.
//
// The solution is cut into steps; the judge is asked about step 1, 2, ...
// until it answers Bad at step k. Branches are sampled from the steps before
// k (the shared parent; from the task alone when k is 1), seeded by (run
// seed, task, sample, 1+branch). The row's assistant message is steps 1..k
// with the text between them, all masked; a revision thought; and the
// branch, both trained. Its reward is the verifier's on the branch.
func ReviseOne(ctx context.Context, it AgentRItem, o *AgentROptions) (*pipeline.Trajectory, string) {
	task := it.Task
	sm := solutionMeta{Source: "recorded"}
	var text string
	if it.Sample == nil {
		if o.Policy == nil {
			return nil, "no solution to revise and no policy to sample one"
		}
		seed := rollout.DeriveSeed(o.Seed, task.ID, it.Index, 0)
		resp, err := o.Policy.Sample(ctx, rollout.Request{Messages: task.Messages, Sampling: o.Sampling, Seed: seed})
		if err != nil {
			return nil, "solution request failed: " + err.Error()
		}
		text, sm.Source, sm.Seed, sm.Model, sm.FinishReason = resp.Text, "sampled", &seed, resp.Model, resp.FinishReason
		if sm.Model == "" {
			sm.Model = o.Model
		}
	} else {
		s := it.Sample
		if s.Err != "" {
			return nil, "recorded sample failed: " + s.Err
		}
		text, sm.Seed, sm.Model, sm.FinishReason = s.Text, s.Seed, s.Model, s.FinishReason
	}
	if strings.TrimSpace(text) == "" {
		return nil, "empty solution"
	}
	if o.Grader != nil {
		sm.Grade = grade(o.Grader, text, sm.FinishReason, task.Reference, "task", "the task has no reference answer")
		if c := sm.Grade.Correct; c != nil && *c && !o.JudgeCorrect {
			return nil, "solution is already correct: nothing to revise"
		}
	}
	spans := splitSteps(text, o.Steps)
	if o.MaxSteps > 0 && len(spans) > o.MaxSteps {
		return nil, fmt.Sprintf("solution has %d steps, more than max_steps %d", len(spans), o.MaxSteps)
	}
	steps := make([]string, len(spans))
	for i, sp := range spans {
		steps[i] = text[sp.start:sp.end]
	}
	first, verdicts, failure := o.Judge.FirstBad(ctx, question(task), steps)
	if ctx.Err() != nil {
		return nil, "cancelled: " + ctx.Err().Error()
	}
	if failure != "" {
		return nil, failure
	}
	if first == 0 {
		return nil, fmt.Sprintf("step judge found no bad step in %d steps", len(steps))
	}
	// The shared parent keeps the text up to the bad step, the line break
	// before it included, so the branch starts with a step of its own.
	shared := text[spans[0].start:spans[first-1].start]

	var (
		chosen    *rollout.Continuation
		branch    string
		branchSep string
		cm        continuationMeta
		gm        *gradeMeta
		tried     []branchMeta
		lastFail  string
	)
	for b := range o.Branches {
		seed := rollout.DeriveSeed(o.Seed, task.ID, it.Index, 1+b)
		c, err := o.Continuer.Continue(ctx, task.Messages, shared, o.Sampling, seed)
		bm := branchMeta{Seed: seed, Mode: c.Mode, FinishReason: c.Response.FinishReason}
		if err != nil {
			bm.Error, lastFail = err.Error(), "good branch request failed: "+err.Error()
			tried = append(tried, bm)
			continue
		}
		m, lead, bt := newContinuationMeta(c, o.Continuer.Mode, seed, o.Sampling, o.Model)
		if strings.TrimSpace(bt) == "" {
			bm.Error, lastFail = "empty", fmt.Sprintf("empty good branch (finish_reason %q)", c.Response.FinishReason)
			tried = append(tried, bm)
			continue
		}
		var g *gradeMeta
		if o.Grader != nil {
			g = grade(o.Grader, bt, c.Response.FinishReason, task.Reference, "task", "the task has no reference answer")
			bm.Correct = g.Correct
		}
		tried = append(tried, bm)
		if o.Keep == KeepCorrect {
			if r := g.keepReason("good branch"); r != "" {
				lastFail = r
				continue
			}
		}
		chosen, branch, branchSep, cm, gm = &c, bt, "\n"+lead, m, g
		break
	}
	if chosen == nil {
		if o.Branches > 1 {
			return nil, fmt.Sprintf("no good branch kept in %d tries (last: %s)", o.Branches, lastFail)
		}
		return nil, lastFail
	}

	var bld builder
	for j := range first {
		sep := ""
		if j > 0 {
			sep = text[spans[j-1].end:spans[j].start]
		}
		role := pipeline.SegPrefix
		if j == first-1 {
			role = pipeline.SegErroneousStep
		}
		bld.add(sep, steps[j], role, false)
	}
	id := fmt.Sprintf("agent-r-%s-%d", task.ID, it.Index)
	ri := pick(o.Revisions, o.Seed, id)
	bld.add("\n", o.Revisions[ri], pipeline.SegRevision, true)
	bld.add(branchSep, branch, pipeline.SegContinuation, true)

	msgs := make([]pipeline.TMessage, 0, len(task.Messages)+1)
	for _, m := range task.Messages {
		msgs = append(msgs, pipeline.Text(m.Role, pipeline.SegPrompt, m.Content, false))
	}
	msgs = append(msgs, pipeline.TMessage{Role: "assistant", Segments: bld.segs})
	judgeName := o.Judge.Name
	if judgeName == "" {
		judgeName = o.Judge.Model
	}
	meta, err := json.Marshal(map[string]any{
		"task_id": task.ID, "sample_index": it.Index, "solution": sm,
		"step_split": o.Steps, "steps": len(steps), "first_bad_step": first,
		"located_by": "judge", "judge": map[string]string{"name": judgeName, "model": o.Judge.Model},
		"judge_verdicts": verdicts,
		"revision":       map[string]any{"source": "pool", "pool_index": ri},
		"continuation":   cm, "branches_tried": tried, "grade": gm,
		"source_file": task.Origin.File, "source_line": task.Origin.Line,
	})
	if err != nil {
		return nil, "encoding metadata: " + err.Error()
	}
	return &pipeline.Trajectory{
		ID: id, TaskID: task.ID, Recipe: "agent-r", DataSource: task.DataSource,
		Messages: msgs, Reward: gm.reward(), Metadata: string(meta),
	}, ""
}
