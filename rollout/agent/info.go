package agent

import "encoding/json"

// Info summarises an episode for its rows (the "episode" object of an rl
// row's response_metadata and of an sft row's metadata) and for the audit.
// Every field is computed from the episode alone, and from what decides it
// (no wall-clock time), so a resumed run writes the rows an uninterrupted one
// would.
type Info struct {
	Env       string         `json:"env"`
	Task      string         `json:"task"`
	Variation int            `json:"variation"`
	Seed      int64          `json:"seed"`
	Options   map[string]any `json:"options,omitempty"`
	// Steps is the number of actions taken; InvalidActions and ToolErrors
	// count those the environment refused and the tool calls that failed.
	Steps          int `json:"steps"`
	InvalidActions int `json:"invalid_actions"`
	ToolErrors     int `json:"tool_errors"`
	// Reward is the sum of the step rewards (null: none given); Success the
	// environment's last word (null: it never said).
	Reward  *float64 `json:"reward"`
	Success *bool    `json:"success"`
	// End is how the episode ended (done, max_steps, env_error,
	// policy_error, no_gold, canceled); Reason is why it failed.
	End    string `json:"end"`
	Reason string `json:"reason,omitempty"`
	// FirstBadStep is the 0-based index of the first bad step by the
	// run's signals (null: none), FirstBadSignal the signal.
	FirstBadStep   *int   `json:"first_bad_step"`
	FirstBadSignal string `json:"first_bad_signal,omitempty"`
	// GoldSteps is the length of the gold path (null when the
	// environment gave none).
	GoldSteps *int `json:"gold_steps"`
	// StepRewards are the steps' rewards in order (null where none).
	StepRewards []*float64 `json:"step_rewards"`
	// Actions are the actions taken, in order.
	Actions []string `json:"actions"`
	Model   string   `json:"model"`
}

// Info returns the episode's summary, its first bad step found with signals
// (DefaultSignals when nil).
func (e *Episode) Info(signals []string) Info {
	in := Info{Env: e.Task.Env, Task: e.Task.Name, Variation: e.Task.Variation, Seed: e.Task.Seed, Options: e.Task.Options,
		Steps: len(e.Steps), Reward: e.Reward, Success: e.Success, End: e.End, Reason: e.Reason,
		Model: e.Model, Actions: e.Actions(), StepRewards: make([]*float64, len(e.Steps))}
	for i, s := range e.Steps {
		if s.Invalid {
			in.InvalidActions++
		}
		if s.ToolError != "" {
			in.ToolErrors++
		}
		in.StepRewards[i] = s.Reward
	}
	if k, sig := FirstBadStep(e, signals); k >= 0 {
		in.FirstBadStep, in.FirstBadSignal = &k, sig
	}
	if e.Gold != nil {
		n := len(e.Gold)
		in.GoldSteps = &n
	}
	return in
}

// JSON is the summary as compact JSON.
func (in Info) JSON() json.RawMessage {
	b, err := json.Marshal(in)
	if err != nil {
		// Options came from a task record, which was JSON.
		return json.RawMessage(`{}`)
	}
	return b
}
