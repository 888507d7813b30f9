package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/env"
)

// How an episode ended (Episode.End).
const (
	// EndDone: the environment said the episode is over (solved, failed or
	// out of its own step limit).
	EndDone = "done"
	// EndMaxSteps: the agent used Options.MaxSteps steps.
	EndMaxSteps = "max_steps"
	// EndEnvError: the environment failed (reset or step); Reason says how.
	EndEnvError = "env_error"
	// EndPolicyError: the model endpoint failed; Reason says how.
	EndPolicyError = "policy_error"
	// EndNoGold: the oracle was asked to act but the environment gave no
	// gold actions, or they ran out before the episode ended.
	EndNoGold = "no_gold"
	// EndCanceled: the run stopped (ctx ended) during the episode.
	EndCanceled = "canceled"
	// EndOutOfActions: a scripted episode (Options.Script) played every
	// action and the episode is not over.
	EndOutOfActions = "out_of_actions"
)

// DefaultSystem is the system message of an episode's prompt.
const DefaultSystem = "You are an agent in a text-based world. Each turn you read what you observe and reply with exactly one action: a single line in the world's command language, and nothing else."

// DefaultMaxSteps bounds an episode's steps when Options.MaxSteps is 0.
const DefaultMaxSteps = 30

// Options configures Run.
type Options struct {
	// MaxSteps is the most actions an episode takes (default
	// DefaultMaxSteps).
	MaxSteps int
	// System is the prompt's system message (default DefaultSystem; "-"
	// for none).
	System string
	// ListActions appends the actions the environment offers at reset to
	// the first user message.
	ListActions bool
	// Oracle plays the environment's gold actions instead of asking the
	// policy (the task is reset with Oracle set).
	Oracle bool
	// Gold asks the environment for the task's gold actions at reset
	// (without playing them): they mark the steps that leave the gold path
	// (SignalOffGold) and let a recipe continue with them. The model never
	// sees them.
	Gold bool
	// Script, when not nil, is the actions to play instead of asking the
	// policy (a repaired trajectory); Model names who wrote them.
	Script []string
	// Sampling and Seed go with every request; step k of sample i of a
	// task is sent rollout.DeriveSeed(Seed, task id, i, k).
	Sampling rollout.Sampling
	Seed     int64
	// Model is recorded on the episode when the endpoint reports none.
	Model string
	// SessionName, when set, names each session's episode id (what is
	// "episode", "branch" or "script") for an environment that can open
	// named sessions (env.Client.OpenNamed): a resumed run then sends the
	// ids a killed one left open, and the server gives those sessions back.
	SessionName func(task env.Task, index int, what string) string
}

// namedOpener is an environment whose sessions can be given their episode
// id (env.Client).
type namedOpener interface {
	OpenNamed(ctx context.Context, id string) (env.Session, error)
}

// open opens a session of e, named by o.SessionName when both can.
func open(ctx context.Context, e env.Environment, o Options, task env.Task, index int, what string) (env.Session, error) {
	if n, ok := e.(namedOpener); ok && o.SessionName != nil {
		return n.OpenNamed(ctx, o.SessionName(task, index, what))
	}
	return e.Open(ctx)
}

// Step is one action and what the environment answered.
type Step struct {
	// Action is the text command sent ("" for a tool call).
	Action string `json:"action,omitempty"`
	// Tool is the tool call sent, nil for a text command.
	Tool *rollout.ToolCall `json:"tool,omitempty"`
	// Message is the index in Episode.Messages of the assistant message
	// that took the action; the observation is the message after it.
	Message int `json:"message"`
	// Observation is the text the environment answered.
	Observation string `json:"observation"`
	// Reward is the step's reward, nil when the environment gave none.
	Reward    *float64 `json:"reward"`
	Done      bool     `json:"done,omitempty"`
	Success   *bool    `json:"success,omitempty"`
	Invalid   bool     `json:"invalid,omitempty"`
	ToolError string   `json:"tool_error,omitempty"`
	// OnGold says whether the action is the gold action of its step while
	// every earlier action was (nil when the episode has no gold path or
	// left it before this step).
	OnGold *bool `json:"on_gold,omitempty"`
	// FinishReason is the endpoint's for the reply ("stop", "length").
	FinishReason string `json:"finish_reason,omitempty"`
}

// Episode is one agent episode.
type Episode struct {
	Task env.Task
	// Index is the sample's position in its task's group.
	Index int
	// Messages is the conversation: the prompt (system, user with the
	// first observation), then per step the agent's message and the
	// environment's answer.
	Messages []rollout.Message
	// Tools are the functions the environment offered at reset (compact
	// JSON array), nil for a text environment.
	Tools json.RawMessage
	Steps []Step
	// Gold is the task's gold action sequence, when the environment gave
	// it.
	Gold []string
	// Reward is the sum of the steps' rewards, nil when none had one.
	Reward *float64
	// Success is the environment's last word on success, nil when it never
	// said.
	Success *bool
	// End says how the episode ended (EndDone, ...), Reason why when it
	// failed.
	End    string
	Reason string
	// Model is the model that answered (the endpoint's, else
	// Options.Model); "oracle" for the gold actions.
	Model string
	// Seed is the first step's request seed.
	Seed int64
	// Start is the reset's info as the environment sent it (score, moves,
	// task description), nil when it sent none.
	Start json.RawMessage
	// Duration is the episode's wall-clock time.
	Duration time.Duration
}

// Failed reports whether the episode ended because something failed (the
// environment, the endpoint or the oracle), not by playing.
func (e *Episode) Failed() bool {
	switch e.End {
	case EndEnvError, EndPolicyError, EndNoGold, EndCanceled:
		return true
	}
	return false
}

// PromptLen is the number of prompt messages (before the first action).
func (e *Episode) PromptLen() int {
	if len(e.Steps) > 0 {
		return e.Steps[0].Message
	}
	return len(e.Messages)
}

// Actions returns the text of every action taken (a tool call as
// "name(arguments)").
func (e *Episode) Actions() []string {
	out := make([]string, len(e.Steps))
	for i, s := range e.Steps {
		out[i] = s.ActionText()
	}
	return out
}

// ActionText is the action as one string: the command, or a tool call as
// "name(arguments)".
func (s Step) ActionText() string {
	if s.Tool != nil {
		return s.Tool.Function.Name + "(" + s.Tool.Function.Arguments + ")"
	}
	return s.Action
}

// Run plays one episode of task in a session it opens from e: index is the
// sample's position in its task's group (it picks the seeds). Failures end
// the episode and are reported on it, never as an error; Run returns only
// when the episode is over, and always closes its session.
func Run(ctx context.Context, e env.Environment, p rollout.Policy, task env.Task, index int, o Options) *Episode {
	start := time.Now()
	ep := &Episode{Task: task, Index: index, Model: o.Model}
	if o.Oracle {
		ep.Model = "oracle"
	}
	ep.Seed = rollout.DeriveSeed(o.Seed, task.ID(), index, 0)
	defer func() { ep.Duration = time.Since(start) }()
	what := "episode"
	if o.Script != nil {
		what = "script"
	}
	s, err := open(ctx, e, o, task, index, what)
	if err != nil {
		ep.fail(ctx, EndEnvError, "open", err)
		return ep
	}
	defer s.Close(context.WithoutCancel(ctx))
	task.Oracle = task.Oracle || o.Oracle || o.Gold
	obs, err := s.Reset(ctx, task)
	if err != nil {
		ep.fail(ctx, EndEnvError, "reset", err)
		return ep
	}
	ep.Gold, ep.Start = obs.Gold, obs.Info
	if len(obs.Tools) > 0 {
		if b, err := json.Marshal(obs.Tools); err == nil {
			ep.Tools = b
		}
	}
	if o.System != "-" {
		sys := o.System
		if sys == "" {
			sys = DefaultSystem
		}
		ep.Messages = append(ep.Messages, rollout.Message{Role: "system", Content: sys})
	}
	ep.Messages = append(ep.Messages, rollout.Message{Role: "user", Content: FirstObservation(obs, o.ListActions)})
	ep.play(ctx, s, p, o, 0, len(ep.Gold) > 0)
	return ep
}

// Branch continues base from the state before its step k: it opens a
// session, replays base's first k actions (from a fresh reset of its task)
// and plays on from there, with the gold actions from step k (oracle) or
// the policy, which sees base's conversation up to that state. The result
// is a new episode whose first k steps are base's (observations as the
// replay gave them) and whose Index is index (it picks the policy's
// seeds). A replay that fails ends the branch with EndEnvError.
func Branch(ctx context.Context, e env.Environment, p rollout.Policy, base *Episode, k, index int, oracle bool, o Options) *Episode {
	start := time.Now()
	task := base.Task
	ep := &Episode{Task: task, Index: index, Model: base.Model, Gold: base.Gold, Tools: base.Tools, Start: base.Start}
	if oracle {
		ep.Model = "oracle"
	}
	ep.Seed = rollout.DeriveSeed(o.Seed, task.ID(), index, k)
	defer func() { ep.Duration = time.Since(start) }()
	if k < 0 || k > len(base.Steps) {
		ep.End, ep.Reason = EndEnvError, fmt.Sprintf("branch at step %d of an episode of %d steps", k, len(base.Steps))
		return ep
	}
	s, err := open(ctx, e, o, task, index, fmt.Sprintf("branch-%d", k))
	if err != nil {
		ep.fail(ctx, EndEnvError, "open", err)
		return ep
	}
	defer s.Close(context.WithoutCancel(ctx))
	task.Oracle = oracle
	_, rs, err := Replay(ctx, s, task, base.Steps[:k])
	if err != nil {
		ep.fail(ctx, EndEnvError, "replay", err)
		return ep
	}
	// The conversation up to the state: the prompt and the first k steps.
	end := base.PromptLen()
	if k < len(base.Steps) {
		end = base.Steps[k].Message
	} else if k > 0 {
		end = min(base.Steps[k-1].Message+2, len(base.Messages))
	}
	ep.Messages = slices.Clone(base.Messages[:end])
	onGold := len(ep.Gold) > 0
	for i, r := range rs {
		st := base.Steps[i]
		st.Observation, st.Reward, st.Done, st.Success, st.Invalid, st.ToolError = r.Text, r.Reward, r.Done, r.Success, r.Invalid, r.ToolError
		ep.record(st, r)
		// The replayed observation is what the branch's model reads.
		if st.Message+1 < len(ep.Messages) {
			ep.Messages[st.Message+1].Content = r.Text
		}
		if st.OnGold != nil {
			onGold = *st.OnGold
		}
	}
	if len(rs) > 0 && rs[len(rs)-1].Done {
		ep.End = EndDone
		return ep
	}
	o.Oracle = oracle
	ep.play(ctx, s, p, o, k, onGold)
	return ep
}

// record appends a step taken and adds its reward and success to the
// episode's.
func (ep *Episode) record(step Step, r env.StepResult) {
	ep.Steps = append(ep.Steps, step)
	if r.Reward != nil {
		sum := *r.Reward
		if ep.Reward != nil {
			sum += *ep.Reward
		}
		ep.Reward = &sum
	}
	if r.Success != nil {
		ep.Success = r.Success
	}
}

// play takes steps from step k until the episode ends, appending to
// ep.Messages and ep.Steps.
func (ep *Episode) play(ctx context.Context, s env.Session, p rollout.Policy, o Options, from int, onGold bool) {
	task := ep.Task
	max := o.MaxSteps
	if max <= 0 {
		max = DefaultMaxSteps
	}
	for k := from; ; k++ {
		if k >= max {
			ep.End = EndMaxSteps
			return
		}
		var msg rollout.Message
		var finish string
		if o.Script != nil {
			if k >= len(o.Script) {
				ep.End = EndOutOfActions
				return
			}
			msg = rollout.Message{Role: "assistant", Content: o.Script[k]}
		} else if o.Oracle {
			if k >= len(ep.Gold) {
				ep.End, ep.Reason = EndNoGold, fmt.Sprintf("the gold path has %d actions and the episode is not over after them", len(ep.Gold))
				if len(ep.Gold) == 0 {
					ep.Reason = "the environment gave no gold actions for this task"
				}
				return
			}
			msg = rollout.Message{Role: "assistant", Content: ep.Gold[k]}
		} else {
			req := rollout.Request{Messages: ep.Messages, Tools: ep.Tools, Sampling: o.Sampling, Seed: rollout.DeriveSeed(o.Seed, task.ID(), ep.Index, k)}
			resp, err := p.Sample(ctx, req)
			if err != nil {
				ep.fail(ctx, EndPolicyError, fmt.Sprintf("step %d: sample", k), err)
				return
			}
			if resp.Model != "" {
				ep.Model = resp.Model
			}
			msg = rollout.Message{Role: "assistant", Content: resp.Text, ToolCalls: resp.ToolCalls}
			finish = resp.FinishReason
		}
		step := Step{Message: len(ep.Messages), FinishReason: finish}
		var action env.Action
		if len(msg.ToolCalls) > 0 {
			// One call per step: the environment takes one action.
			tc := msg.ToolCalls[0]
			msg.ToolCalls = msg.ToolCalls[:1]
			step.Tool = &tc
			action.Tool = &env.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments}
		} else {
			step.Action = ParseAction(msg.Content)
			action.Text = step.Action
		}
		if onGold {
			on := k < len(ep.Gold) && step.Tool == nil && step.Action == ep.Gold[k]
			step.OnGold = &on
			onGold = on
		}
		ep.Messages = append(ep.Messages, msg)
		r, err := s.Step(ctx, action)
		if err != nil {
			// The action was taken (or tried); its outcome is unknown.
			ep.Steps = append(ep.Steps, step)
			ep.fail(ctx, EndEnvError, fmt.Sprintf("step %d", k), err)
			return
		}
		step.Observation, step.Reward, step.Done, step.Success = r.Text, r.Reward, r.Done, r.Success
		step.Invalid, step.ToolError = r.Invalid, r.ToolError
		ep.record(step, r)
		if step.Tool != nil {
			ep.Messages = append(ep.Messages, rollout.Message{Role: "tool", ToolCallID: step.Tool.ID, Name: step.Tool.Function.Name, Content: r.Text})
		} else {
			ep.Messages = append(ep.Messages, rollout.Message{Role: "user", Content: r.Text})
		}
		if r.Done {
			ep.End = EndDone
			return
		}
	}
}

func (ep *Episode) fail(ctx context.Context, end, what string, err error) {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		end = EndCanceled
	}
	ep.End, ep.Reason = end, what+": "+err.Error()
}

// FirstObservation is the first user message: the reset's text and, with
// list, the actions the environment offers (one per line).
func FirstObservation(obs env.Observation, list bool) string {
	if !list || len(obs.Actions) == 0 {
		return obs.Text
	}
	var b strings.Builder
	b.WriteString(strings.TrimRight(obs.Text, "\n"))
	b.WriteString("\n\nActions you can take:\n")
	for _, a := range obs.Actions {
		b.WriteString("- ")
		b.WriteString(a)
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n")
}

// ParseAction reads the command from a reply: the text after the last
// "Action:" (any case) on its line when there is one, else the reply's last
// non-empty line; surrounding spaces, backticks, quotes and a leading "> " or
// "- " are removed. Models asked for one line often add a reason or wrap
// the command; the environment judges what remains.
func ParseAction(reply string) string {
	line := ""
	lower := strings.ToLower(reply)
	if i := strings.LastIndex(lower, "action:"); i >= 0 {
		line = reply[i+len("action:"):]
		if j := strings.IndexByte(line, '\n'); j >= 0 {
			line = line[:j]
		}
	} else {
		lines := strings.Split(strings.TrimSpace(reply), "\n")
		line = lines[len(lines)-1]
	}
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "> ")
	line = strings.TrimPrefix(line, "- ")
	return strings.TrimSpace(strings.Trim(line, "`\"'* \t\r"))
}

// Replay resets task in s and plays actions in order, returning each step's
// result: how a recipe reaches a trajectory's state after those actions in
// a fresh session. It fails when the environment fails, refuses one of the
// actions (a step that was valid once should be valid again from the same
// start) or ends the episode before the last action.
func Replay(ctx context.Context, s env.Session, task env.Task, actions []Step) (env.Observation, []env.StepResult, error) {
	obs, err := s.Reset(ctx, task)
	if err != nil {
		return obs, nil, err
	}
	var out []env.StepResult
	for i, st := range actions {
		a := env.Action{Text: st.Action}
		if st.Tool != nil {
			a = env.Action{Tool: &env.ToolCall{ID: st.Tool.ID, Name: st.Tool.Function.Name, Arguments: st.Tool.Function.Arguments}}
		}
		r, err := s.Step(ctx, a)
		if err != nil {
			return obs, out, fmt.Errorf("replaying action %d (%q): %w", i, st.ActionText(), err)
		}
		out = append(out, r)
		if r.Done && i < len(actions)-1 {
			return obs, out, fmt.Errorf("replaying action %d (%q): the episode ended before the last of %d actions", i, st.ActionText(), len(actions))
		}
	}
	return obs, out, nil
}

// Signals that mark a bad step (FirstBadStep).
const (
	// SignalInvalid: the environment refused the action (or the tool call
	// failed).
	SignalInvalid = "invalid"
	// SignalRewardDrop: the step's reward is negative (the score fell).
	SignalRewardDrop = "reward_drop"
	// SignalOffGold: the action leaves the gold path (the first action that
	// differs from the gold action of its step, all earlier ones on it).
	SignalOffGold = "off_gold"
)

// DefaultSignals are the signals FirstBadStep uses when given none. Leaving
// the gold path is not among them: a task may have several good routes, and
// an environment's gold path is one of them (ScienceWorld's differs from
// one reset of a variation to the next), so SignalOffGold is asked for by
// name.
var DefaultSignals = []string{SignalInvalid, SignalRewardDrop}

// FirstBadStep returns the index of the episode's first bad step and the
// signal that marked it (the first of signals, in their order, that a step
// shows), or -1 and "" when no step is bad by them.
func FirstBadStep(ep *Episode, signals []string) (int, string) {
	if len(signals) == 0 {
		signals = DefaultSignals
	}
	for i, s := range ep.Steps {
		for _, sig := range signals {
			switch sig {
			case SignalInvalid:
				if s.Invalid || s.ToolError != "" {
					return i, sig
				}
			case SignalRewardDrop:
				if s.Reward != nil && *s.Reward < 0 {
					return i, sig
				}
			case SignalOffGold:
				if s.OnGold != nil && !*s.OnGold {
					return i, sig
				}
			}
		}
	}
	return -1, ""
}

// ValidSignal reports whether name is a FirstBadStep signal.
func ValidSignal(name string) bool {
	switch name {
	case SignalInvalid, SignalRewardDrop, SignalOffGold:
		return true
	}
	return false
}
