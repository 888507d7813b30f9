package agents

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/agent"
)

// Recipe names of the sft rows (the recipe column).
const (
	RecipeNameGRPO   = "agent-grpo"
	RecipeNameAgentR = "agent-r-env"
	RecipeNameStep   = "step-env"
	RecipeNameReReST = "re-rest"
)

// task plays one task's episodes and makes its rows.
func (j *job) task(ctx context.Context, rec agent.TaskRecord) pipeline.SFTGroup {
	n := j.cfg.Sampling.N
	eps := make([]*agent.Episode, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			eps[i] = agent.Run(ctx, j.env, j.policy, rec.Task, i, j.opts)
		}()
	}
	wg.Wait()
	g := pipeline.SFTGroup{Key: rec.ID, RL: j.rlRows(rec, eps)}
	e := j.cfg.Environment
	for _, ep := range eps {
		var t *pipeline.Trajectory
		var reason string
		switch e.Recipe {
		case pipeline.RecipeAgentGRPO:
			t, reason = j.episodeRow(rec, ep)
		case pipeline.RecipeAgentR, pipeline.RecipeStep:
			t, reason = j.revise(ctx, rec, ep)
		case pipeline.RecipeReReST:
			t, reason = j.reflect(ctx, rec, ep)
		}
		if t == nil {
			g.Skipped = append(g.Skipped, export.Skipped{File: rec.Origin.File, Line: rec.Origin.Line,
				Reason: fmt.Sprintf("task %s episode %d: %s", rec.ID, ep.Index, reason)})
			continue
		}
		g.Rows = append(g.Rows, t.SFTRow())
	}
	return g
}

// reward is an episode's reward by environment.reward, or nil and why.
func (j *job) reward(ep *agent.Episode) (*float64, string) {
	if ep.Failed() {
		return nil, "the episode failed: " + ep.Reason
	}
	success := func() (*float64, string) {
		if ep.Success == nil {
			return nil, "the environment never said whether the task is solved"
		}
		v := 0.0
		if *ep.Success {
			v = 1
		}
		return &v, ""
	}
	if j.cfg.Environment.Reward == "success" || ep.Reward == nil {
		return success()
	}
	v := *ep.Reward
	return &v, ""
}

// rlRows are the task's episodes as rl rows, with their group's advantages.
// A conversation the chat format cannot render (tool calls under chatml)
// has no token track, and its row says why.
func (j *job) rlRows(rec agent.TaskRecord, eps []*agent.Episode) []export.RLRow {
	cfg := j.cfg
	rs := make([]*float64, len(eps))
	reasons := make([]string, len(eps))
	for i, ep := range eps {
		rs[i], reasons[i] = j.reward(ep)
	}
	adv, stats := rewards.GroupAdvantages(cfg.Advantage, rs)
	mean, std := stats.Mean, stats.Std
	component := "env_" + cfg.Environment.Reward
	taskMeta := mustJSON(map[string]any{"task": rec.Task, "input": map[string]any{"file": rec.Origin.File, "line": rec.Origin.Line}})
	rows := make([]export.RLRow, len(eps))
	for i, ep := range eps {
		pl := ep.PromptLen()
		seed := ep.Seed
		r := export.RLRow{
			TaskID: rec.ID, GroupID: pipeline.GroupID(rec.ID, 0), SampleIndex: int32(ep.Index), DataSource: rec.DataSource, Model: ep.Model,
			Prompt: pipeline.PromptMessages(ep.Messages[:pl]), Messages: pipeline.ChatMessages(ep.Messages), Tools: toolsOf(ep),
			Response: lastAction(ep), Reward: rs[i], RewardReason: pipeline.StrPtr(reasons[i]),
			RewardComponents: []export.RewardComponent{{Name: component, Value: rs[i], Weight: 1, Reason: pipeline.StrPtr(reasons[i])}},
			Correct:          ep.Success, Advantage: adv[i], AdvantageEstimator: string(cfg.Advantage.Estimator), GroupSize: int32(stats.N),
			GroupRewardMean: &mean, GroupRewardStd: &std, Seed: &seed,
			TaskMetadata: &taskMeta, ResponseMetadata: pipeline.StrPtr(mustJSON(map[string]any{"episode": ep.Info(cfg.Environment.BadStep)})),
		}
		if ep.Model != "oracle" {
			r.Sampling = pipeline.SamplingColumn(&j.opts.Sampling)
		}
		if len(ep.Messages) == 0 {
			// The reset failed: there is no conversation (null, not empty).
			r.Messages = nil
		}
		if ep.Failed() {
			r.Error = pipeline.StrPtr(ep.End + ": " + ep.Reason)
		}
		if len(ep.Steps) > 0 {
			r.FinishReason = pipeline.StrPtr(ep.Steps[len(ep.Steps)-1].FinishReason)
		}
		tokens := export.RLTokens{Reason: export.NoTokenizer}
		if j.track != nil {
			var err error
			if tokens, err = j.track.RLTrackMessages(r.Messages, pl, r.Tools, len(ep.Steps) == 0); err != nil {
				tokens = export.RLTokens{Reason: "token track: " + err.Error()}
			}
		}
		tokens.Apply(&r)
		rows[i] = r
	}
	return rows
}

// lastAction is the content of the episode's last assistant message.
func lastAction(ep *agent.Episode) string {
	for k := len(ep.Messages) - 1; k >= 0; k-- {
		if ep.Messages[k].Role == "assistant" {
			return ep.Messages[k].Content
		}
	}
	return ""
}

func toolsOf(ep *agent.Episode) *string {
	if len(ep.Tools) == 0 {
		return nil
	}
	s := string(ep.Tools)
	return &s
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf(`{"error": %q}`, err.Error())
	}
	return string(b)
}

// succeeded reports whether the episode solved its task.
func succeeded(ep *agent.Episode) bool { return ep.Success != nil && *ep.Success && !ep.Failed() }

// builder assembles a trajectory's messages.
type builder struct {
	t *pipeline.Trajectory
}

// prompt adds the episode's prompt messages, masked.
func (b *builder) prompt(ep *agent.Episode) {
	for _, m := range ep.Messages[:ep.PromptLen()] {
		b.t.Messages = append(b.t.Messages, pipeline.Text(m.Role, pipeline.SegPrompt, m.Content, false))
	}
}

// message adds one message of an episode as one segment (role segRole),
// trained or not, with its tool calls.
func (b *builder) message(m rollout.Message, segRole string, trained bool) {
	tm := pipeline.TMessage{Role: m.Role, ToolCalls: m.ToolCalls, ToolCallID: m.ToolCallID, Name: m.Name}
	if m.Content != "" || len(m.ToolCalls) > 0 {
		tm.Segments = []pipeline.Segment{{Text: m.Content, Role: segRole, Trainable: trained}}
	}
	b.t.Messages = append(b.t.Messages, tm)
}

// steps adds ep's steps from..to-1: each action (segRole, trained or not)
// and its observation (masked).
func (b *builder) steps(ep *agent.Episode, from, to int, segRole string, trained bool) {
	for k := from; k < to; k++ {
		s := ep.Steps[k]
		b.message(ep.Messages[s.Message], segRole, trained)
		if s.Message+1 < len(ep.Messages) {
			b.message(ep.Messages[s.Message+1], pipeline.SegObservation, false)
		}
	}
}

func (j *job) newTrajectory(rec agent.TaskRecord, ep *agent.Episode, recipe string) *pipeline.Trajectory {
	return &pipeline.Trajectory{ID: fmt.Sprintf("%s#%d", rec.ID, ep.Index), TaskID: rec.ID, Recipe: recipe, DataSource: rec.DataSource}
}

// episodeRow is a grpo episode's sft row: the prompt and observations
// masked, every action trained; only successful episodes unless
// environment.keep is all.
func (j *job) episodeRow(rec agent.TaskRecord, ep *agent.Episode) (*pipeline.Trajectory, string) {
	switch {
	case ep.Failed():
		return nil, "the episode failed: " + ep.Reason
	case len(ep.Steps) == 0:
		return nil, "no action taken"
	case !succeeded(ep) && j.cfg.Environment.Keep != "all":
		return nil, "not solved (" + ep.End + "): only successful episodes are kept (environment.keep success)"
	}
	t := j.newTrajectory(rec, ep, RecipeNameGRPO)
	b := builder{t}
	b.prompt(ep)
	b.steps(ep, 0, len(ep.Steps), pipeline.SegAction, true)
	t.Reward, _ = j.reward(ep)
	t.Metadata = mustJSON(map[string]any{"episode": ep.Info(j.cfg.Environment.BadStep)})
	return t, ""
}

// revise makes an unsuccessful episode's Agent-R or STeP trajectory: find
// its first bad step k, branch from the state before it, and splice.
func (j *job) revise(ctx context.Context, rec agent.TaskRecord, ep *agent.Episode) (*pipeline.Trajectory, string) {
	e := j.cfg.Environment
	switch {
	case ep.Failed():
		return nil, "the episode failed: " + ep.Reason
	case succeeded(ep):
		return nil, "solved: nothing to revise"
	}
	k, signal := agent.FirstBadStep(ep, e.BadStep)
	if k < 0 {
		return nil, fmt.Sprintf("no bad step by %s: nothing to revise", strings.Join(e.BadStep, ", "))
	}
	// The oracle continues only from a state on the gold path.
	canOracle := len(ep.Gold) > k && (k == 0 || onGold(ep.Steps[k-1]))
	var branch *agent.Episode
	kind := ""
	switch {
	case e.Branch == "oracle" && !canOracle:
		return nil, fmt.Sprintf("step %d (%s): the state before it is off the gold path, so the oracle cannot continue from it (environment.branch oracle)", k, signal)
	case e.Branch == "oracle" || (e.Branch == "auto" && canOracle):
		kind = "oracle"
		// The gold path is as long as it is: environment.max_steps bounds
		// the model's episodes, not the oracle's continuation.
		o := j.opts
		o.MaxSteps = max(o.MaxSteps, len(ep.Gold))
		branch = agent.Branch(ctx, j.env, nil, ep, k, ep.Index, true, o)
	default:
		kind = "policy"
		if j.policy == nil {
			return nil, "no endpoint to continue from the state before the bad step"
		}
		for b := range e.Branches {
			// Branch seeds differ from every episode's: index n + ...
			idx := j.cfg.Sampling.N*(b+1) + ep.Index
			branch = agent.Branch(ctx, j.env, j.policy, ep, k, idx, false, j.opts)
			if succeeded(branch) {
				break
			}
		}
	}
	ok := succeeded(branch)
	switch {
	case branch.Failed():
		return nil, fmt.Sprintf("step %d (%s): the %s branch failed: %s", k, signal, kind, branch.Reason)
	case len(branch.Steps) <= k:
		// The replay itself ended the episode: the environment is not the
		// one the episode played in.
		return nil, fmt.Sprintf("step %d (%s): replaying the %d actions before it ended the episode (%s)", k, signal, k, branch.End)
	}
	if !ok && e.Keep != "all" {
		return nil, fmt.Sprintf("step %d (%s): the %s branch did not solve the task (%s)", k, signal, kind, branch.End)
	}
	recipe := RecipeNameAgentR
	if e.Recipe == pipeline.RecipeStep {
		recipe = RecipeNameStep
	}
	t := j.newTrajectory(rec, ep, recipe)
	b := builder{t}
	b.prompt(ep)
	first := branch.Steps[k]
	firstMsg := branch.Messages[first.Message]
	if e.Recipe == pipeline.RecipeAgentR {
		// The bad prefix through the first bad action and what it showed,
		// masked; a revision thought and the good branch, trained.
		b.steps(ep, 0, k, pipeline.SegPrefix, false)
		b.steps(ep, k, k+1, pipeline.SegErroneousStep, false)
		thought := e.Revisions[int(ep.Seed)%len(e.Revisions)]
		b.join(thought, pipeline.SegRevision, firstMsg, pipeline.SegContinuation)
	} else {
		// STeP: the good steps trained, the erroneous step and its
		// observation masked, a reflection and the corrected step trained.
		b.steps(ep, 0, k, pipeline.SegAction, true)
		b.steps(ep, k, k+1, pipeline.SegErroneousStep, false)
		b.join(reflection(ep.Steps[k], signal), pipeline.SegReflection, firstMsg, pipeline.SegCorrection)
	}
	if first.Message+1 < len(branch.Messages) {
		b.message(branch.Messages[first.Message+1], pipeline.SegObservation, false)
	}
	b.steps(branch, k+1, len(branch.Steps), pipeline.SegContinuation, true)
	r := 0.0
	if ok {
		r = 1
	}
	t.Reward = &r
	t.Metadata = mustJSON(map[string]any{"episode": ep.Info(e.BadStep), "revision": map[string]any{
		"recipe": recipe, "first_bad_step": k, "signal": signal, "branch": kind, "branch_success": ok,
		"branch_steps": len(branch.Steps) - k, "branch_end": branch.End, "branch_actions": branch.Actions()[k:],
	}})
	return t, ""
}

// join adds one assistant message: lead (trained, role leadRole), a newline,
// then m's content and tool calls (trained, role segRole).
func (b *builder) join(lead, leadRole string, m rollout.Message, segRole string) {
	tm := pipeline.TMessage{Role: "assistant", ToolCalls: m.ToolCalls}
	tm.Segments = append(tm.Segments, pipeline.Segment{Text: lead, Role: leadRole, Trainable: true})
	if m.Content != "" {
		tm.Segments = append(tm.Segments, pipeline.Segment{Text: "\n", Role: pipeline.SegSeparator, Trainable: true},
			pipeline.Segment{Text: m.Content, Role: segRole, Trainable: true})
	}
	b.t.Messages = append(b.t.Messages, tm)
}

func onGold(s agent.Step) bool { return s.OnGold != nil && *s.OnGold }

// reflection is STeP's reflection on a bad step, from the signal that marked
// it.
func reflection(s agent.Step, signal string) string {
	why := "it does not lead toward the goal"
	switch signal {
	case agent.SignalInvalid:
		why = "the environment did not accept it"
		if s.ToolError != "" {
			why = "the tool call failed: " + s.ToolError
		}
	case agent.SignalRewardDrop:
		why = "it lowered my score"
	case agent.SignalOffGold:
		why = "it leaves the path to the goal"
	}
	return fmt.Sprintf("Reflection: my last action, %q, was a mistake: %s. I will take the right step from the state before it.", s.ActionText(), why)
}
