package env

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Environment opens sessions of one interactive environment. An
// implementation is safe for concurrent use by many goroutines.
type Environment interface {
	// Open starts a session: one episode's world (or several in a row,
	// with Reset called again). It may wait for the environment's
	// concurrency limit, which only ctx bounds. A nil error means the
	// caller owns the session and must Close it, on every path.
	Open(ctx context.Context) (Session, error)
}

// Session is one episode's world. Its methods are safe for concurrent use
// but run one at a time: an episode is a sequence.
//
// Every error a session returns is an *Error (errors.As) whose text names
// the call, the environment and the reason, ready to be recorded on an
// episode's row. No method panics on anything an environment sends, and
// none blocks past its timeout or ctx.
type Session interface {
	// Reset starts an episode of task and returns its first observation:
	// the text the agent reads, the actions or tools it may use, the
	// environment's info, and the gold actions when task.Oracle asks for
	// them and the environment has them.
	Reset(ctx context.Context, task Task) (Observation, error)
	// Step takes one action (text or a tool call) in the episode Reset
	// started. After a result with Done, or before any Reset, Step fails
	// without contacting the environment.
	Step(ctx context.Context, action Action) (StepResult, error)
	// Close ends the session and frees what it holds, here and in the
	// environment. It tries to reach the environment even when ctx is
	// already canceled (under the client's close timeout), always frees the
	// session's place under the concurrency limit, and is idempotent: the
	// second call returns nil.
	Close(ctx context.Context) error
}

// Task names one episode's world: the environment, a task within it, the
// variation (which instance of the task) and a seed. Two episodes with
// equal tasks (Oracle and Options aside, which do not change the world
// unless an environment says so) start in the same state.
type Task struct {
	// Env is the environment's name ("scienceworld", "textworld-express").
	// A Client whose Config.Env is set refuses a task for another one.
	Env string `json:"env"`
	// Name is the task within the environment (ScienceWorld's "boil",
	// TextWorldExpress's game "coin"); "" asks for the environment's
	// default.
	Name string `json:"task,omitempty"`
	// Variation picks the instance of the task: ScienceWorld's variation
	// index, TextWorldExpress's game seed. At least 0.
	Variation int `json:"variation"`
	// Seed is the episode's random seed, sent as OpenEnv's "seed" (at
	// least 0). Environments that are deterministic given the variation
	// record it and otherwise ignore it.
	Seed int64 `json:"seed"`
	// Options are environment-specific settings (docs/environments.md
	// lists those of the bundled environments). They travel as JSON.
	Options map[string]any `json:"options,omitempty"`
	// Oracle asks for the task's gold action sequence in Reset's
	// Observation.Gold. It is not part of the task's identity.
	Oracle bool `json:"-"`
}

// ID is the task's identity as one string, "ENV/TASK/VARIATION/SEED"
// ("scienceworld/boil/3/7"), with Options appended as canonical JSON when
// there are any. Equal IDs mean equal tasks.
func (t Task) ID() string {
	var b strings.Builder
	b.WriteString(t.Env)
	b.WriteByte('/')
	b.WriteString(t.Name)
	b.WriteByte('/')
	b.WriteString(strconv.Itoa(t.Variation))
	b.WriteByte('/')
	b.WriteString(strconv.FormatInt(t.Seed, 10))
	if len(t.Options) > 0 {
		// encoding/json sorts map keys, so this is canonical.
		if o, err := json.Marshal(t.Options); err == nil {
			b.WriteByte('/')
			b.Write(o)
		}
	}
	return b.String()
}

func (t Task) validate() error {
	switch {
	case t.Variation < 0:
		return fmt.Errorf("task %s: variation %d is negative", t.ID(), t.Variation)
	case t.Seed < 0:
		return fmt.Errorf("task %s: seed %d is negative (OpenEnv's seed is at least 0)", t.ID(), t.Seed)
	}
	if len(t.Options) > 0 {
		if _, err := json.Marshal(t.Options); err != nil {
			return fmt.Errorf("task %s: options are not JSON: %v", t.ID(), err)
		}
	}
	return nil
}

// Action is what the agent does in one step: a text command, or a tool
// call when the environment offers tools. Exactly one of the two is set (a
// zero Action is the empty text command).
type Action struct {
	// Text is a command in the environment's language ("open door to
	// kitchen"), usually the model's reply as is.
	Text string
	// Tool is a tool call as OpenAI's API returns it.
	Tool *ToolCall
}

// ToolCall is one OpenAI function call: its id, the function's name and its
// arguments as the JSON text the model wrote.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string
}

// Tool is an OpenAI function schema, {"type": "function", "function":
// {...}}, as a request's tools list takes it.
type Tool struct {
	Type     string   `json:"type"`
	Function Function `json:"function"`
}

// Function is a tool's name, description and JSON-schema parameters.
type Function struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// Observation is what the environment shows after a reset or a step.
type Observation struct {
	// Text is what the agent reads: the observation's "text", else a tool
	// call's result or error (OpenEnv's CallToolObservation), else the
	// whole observation object as JSON.
	Text string
	// Actions are the actions the environment offers now (templates or
	// complete commands; the environment's choice), nil when it says none.
	Actions []string
	// Tools are the functions the agent may call, nil for text
	// environments.
	Tools []Tool
	// Gold is the task's gold action sequence (an oracle: playing it from
	// the reset state solves the task), only from Reset with Task.Oracle
	// and only when the environment has one.
	Gold []string
	// Info is the environment's own details (a JSON object: score, moves,
	// ...), nil when it sent none.
	Info json.RawMessage
	// Raw is the observation object exactly as received.
	Raw json.RawMessage
}

// StepResult is the outcome of one step.
type StepResult struct {
	Observation
	// Reward is this step's reward, nil when the environment gave none
	// (never a made-up 0).
	Reward *float64
	// Done says the episode is over (solved, failed, or out of steps).
	Done bool
	// Success says whether the task is solved, nil when the environment
	// does not know or did not say. Meaningful at any step; final when
	// Done.
	Success *bool
	// Invalid says the environment did not accept the action (not
	// understood, not applicable, or a tool call it rejected).
	Invalid bool
	// ToolError is the environment's error message for a tool call that
	// failed, "" otherwise.
	ToolError string
}
