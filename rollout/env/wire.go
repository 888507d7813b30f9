package env

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
)

// resetRequest is POST /reset's body: OpenEnv's ResetRequest (seed,
// episode_id) with this protocol's fields, which OpenEnv's model allows as
// extras and passes to an environment's reset as keyword arguments.
type resetRequest struct {
	Seed      int64          `json:"seed"`
	EpisodeID string         `json:"episode_id"`
	Env       string         `json:"env,omitempty"`
	Task      string         `json:"task,omitempty"`
	Variation int            `json:"variation"`
	Options   map[string]any `json:"options,omitempty"`
	Oracle    bool           `json:"oracle,omitempty"`
}

// stepRequest is POST /step's body: OpenEnv's StepRequest (action,
// timeout_s, request_id) with episode_id as an extra.
type stepRequest struct {
	Action    json.RawMessage `json:"action"`
	TimeoutS  float64         `json:"timeout_s,omitempty"`
	RequestID string          `json:"request_id,omitempty"`
	EpisodeID string          `json:"episode_id"`
}

// closeRequest is POST /close's body (this protocol's extension).
type closeRequest struct {
	EpisodeID string `json:"episode_id"`
}

// encodeAction is the "action" object of a step: {"<field>": text} for a
// text command, OpenEnv's CallToolAction {"type": "call_tool",
// "tool_name": ..., "arguments": {...}} for a tool call. A tool call whose
// arguments are not a JSON object (an empty string is {}) is an error.
func encodeAction(a Action, field string) (json.RawMessage, error) {
	if a.Tool == nil {
		return json.Marshal(map[string]string{field: a.Text})
	}
	if a.Text != "" {
		return nil, errors.New("an action has text and a tool call; send one")
	}
	if a.Tool.Name == "" {
		return nil, errors.New("a tool call without a function name")
	}
	args := json.RawMessage(`{}`)
	if t := bytes.TrimSpace([]byte(a.Tool.Arguments)); len(t) > 0 {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(t, &obj); err != nil || obj == nil {
			return nil, fmt.Errorf("tool call %s: arguments are not a JSON object: %s", a.Tool.Name, quote(t, 120))
		}
		args = t
	}
	return json.Marshal(struct {
		Type      string          `json:"type"`
		ToolName  string          `json:"tool_name"`
		Arguments json.RawMessage `json:"arguments"`
	}{"call_tool", a.Tool.Name, args})
}

// wireResponse is OpenEnv's ResetResponse / StepResponse: {"observation":
// {...}, "reward": number|null, "done": bool}.
type wireResponse struct {
	Observation json.RawMessage `json:"observation"`
	Reward      json.RawMessage `json:"reward"`
	Done        json.RawMessage `json:"done"`
}

// wireObservation holds the observation fields this protocol defines; any
// other field stays in Observation.Raw.
type wireObservation struct {
	Text          json.RawMessage `json:"text"`
	Actions       json.RawMessage `json:"actions"`
	Tools         json.RawMessage `json:"tools"`
	Success       json.RawMessage `json:"success"`
	InvalidAction json.RawMessage `json:"invalid_action"`
	Info          json.RawMessage `json:"info"`
	GoldActions   json.RawMessage `json:"gold_actions"`
	// OpenEnv's CallToolObservation.
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// decodeResponse reads a /reset or /step answer. textField is the
// observation field that carries the text ("text" unless configured). Any
// field of the wrong type is an error that names it; fields the protocol
// does not define are ignored (and kept in Raw).
func decodeResponse(body []byte, textField string) (StepResult, error) {
	var r StepResult
	var w wireResponse
	if err := strictObject(body, &w); err != nil {
		return r, fmt.Errorf("not a JSON object: %v", err)
	}
	if isNull(w.Observation) {
		return r, errors.New(`no "observation"`)
	}
	obs, err := decodeObservation(w.Observation, textField)
	if err != nil {
		return r, err
	}
	r.Observation = obs
	if !isNull(w.Reward) {
		var f float64
		if err := json.Unmarshal(w.Reward, &f); err != nil {
			return r, fmt.Errorf(`"reward" is not a number or null: %s`, quote(w.Reward, 40))
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return r, fmt.Errorf(`"reward" is not finite: %s`, quote(w.Reward, 40))
		}
		r.Reward = &f
	}
	if !isNull(w.Done) {
		if err := json.Unmarshal(w.Done, &r.Done); err != nil {
			return r, fmt.Errorf(`"done" is not a boolean: %s`, quote(w.Done, 40))
		}
	}
	var o wireObservation
	if err := json.Unmarshal(w.Observation, &o); err != nil {
		return r, fmt.Errorf(`"observation": %v`, err)
	}
	if !isNull(o.Success) {
		var b bool
		if err := json.Unmarshal(o.Success, &b); err != nil {
			return r, fmt.Errorf(`"observation.success" is not a boolean or null: %s`, quote(o.Success, 40))
		}
		r.Success = &b
	}
	if !isNull(o.InvalidAction) {
		if err := json.Unmarshal(o.InvalidAction, &r.Invalid); err != nil {
			return r, fmt.Errorf(`"observation.invalid_action" is not a boolean: %s`, quote(o.InvalidAction, 40))
		}
	}
	if !isNull(o.Error) {
		msg, err := toolError(o.Error)
		if err != nil {
			return r, err
		}
		r.ToolError = msg
		r.Invalid = true
	}
	return r, nil
}

// decodeObservation reads the observation object.
func decodeObservation(raw json.RawMessage, textField string) (Observation, error) {
	var obs Observation
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return obs, fmt.Errorf(`"observation" is not a JSON object: %s`, quote(raw, 60))
	}
	obs.Raw = raw
	var o wireObservation
	if err := json.Unmarshal(raw, &o); err != nil {
		return obs, fmt.Errorf(`"observation": %v`, err)
	}
	text, hasText := fields[textField]
	switch {
	case hasText && !isNull(text):
		if err := json.Unmarshal(text, &obs.Text); err != nil {
			return obs, fmt.Errorf(`"observation.%s" is not a string: %s`, textField, quote(text, 40))
		}
	case !isNull(o.Result):
		var s string
		if json.Unmarshal(o.Result, &s) == nil {
			obs.Text = s
		} else {
			obs.Text = compact(o.Result)
		}
	case !isNull(o.Error):
		msg, err := toolError(o.Error)
		if err != nil {
			return obs, err
		}
		obs.Text = msg
	default:
		obs.Text = compact(raw)
	}
	if obs.Text == "" && !isNull(o.Error) {
		// A tool error that left the text empty: the message is what the
		// agent reads.
		if msg, err := toolError(o.Error); err == nil {
			obs.Text = msg
		}
	}
	if !isNull(o.Actions) {
		if err := json.Unmarshal(o.Actions, &obs.Actions); err != nil {
			return obs, fmt.Errorf(`"observation.actions" is not a list of strings: %s`, quote(o.Actions, 60))
		}
	}
	if !isNull(o.GoldActions) {
		if err := json.Unmarshal(o.GoldActions, &obs.Gold); err != nil {
			return obs, fmt.Errorf(`"observation.gold_actions" is not a list of strings: %s`, quote(o.GoldActions, 60))
		}
	}
	if !isNull(o.Info) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(o.Info, &m); err != nil || m == nil {
			return obs, fmt.Errorf(`"observation.info" is not an object: %s`, quote(o.Info, 60))
		}
		obs.Info = o.Info
	}
	if !isNull(o.Tools) {
		tools, err := decodeTools(o.Tools)
		if err != nil {
			return obs, err
		}
		obs.Tools = tools
	}
	return obs, nil
}

// decodeTools reads a tools list: OpenAI function schemas ({"type":
// "function", "function": {...}}) or MCP tools as OpenEnv lists them
// ({"name", "description", "input_schema"}), both returned in OpenAI's
// form.
func decodeTools(raw json.RawMessage) ([]Tool, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf(`"observation.tools" is not a list: %s`, quote(raw, 60))
	}
	tools := make([]Tool, 0, len(items))
	for i, it := range items {
		var t struct {
			Type        string          `json:"type"`
			Function    *Function       `json:"function"`
			Name        string          `json:"name"`
			Description string          `json:"description"`
			InputSchema json.RawMessage `json:"input_schema"`
		}
		if err := json.Unmarshal(it, &t); err != nil {
			return nil, fmt.Errorf(`"observation.tools[%d]": %v`, i, err)
		}
		var f Function
		switch {
		case t.Function != nil:
			f = *t.Function
		case t.Name != "":
			f = Function{Name: t.Name, Description: t.Description, Parameters: t.InputSchema}
		}
		if f.Name == "" {
			return nil, fmt.Errorf(`"observation.tools[%d]" has no function name: %s`, i, quote(it, 60))
		}
		if isNull(f.Parameters) {
			f.Parameters = nil
		} else {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(f.Parameters, &m); err != nil || m == nil {
				return nil, fmt.Errorf(`"observation.tools[%d]" (%s): parameters are not a JSON schema object`, i, f.Name)
			}
		}
		tools = append(tools, Tool{Type: "function", Function: f})
	}
	return tools, nil
}

// toolError reads OpenEnv's ToolError, {"error_type": ..., "message":
// ...}, or a plain string, as one message.
func toolError(raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var e struct {
		ErrorType string `json:"error_type"`
		Message   string `json:"message"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		return "", fmt.Errorf(`"observation.error" is not a tool error: %s`, quote(raw, 60))
	}
	switch {
	case e.ErrorType != "" && e.Message != "":
		return e.ErrorType + ": " + e.Message, nil
	case e.Message != "":
		return e.Message, nil
	case e.ErrorType != "":
		return e.ErrorType, nil
	}
	return "tool error", nil
}

// strictObject decodes body, which must be one JSON object and nothing
// after it, into v.
func strictObject(body []byte, v any) error {
	t := bytes.TrimSpace(body)
	if len(t) == 0 || t[0] != '{' {
		return fmt.Errorf("starts with %s", quote(t, 40))
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if rest := bytes.TrimSpace(t[dec.InputOffset():]); len(rest) > 0 {
		return fmt.Errorf("data after the object: %s", quote(rest, 40))
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// compact is raw on one line, as valid UTF-8.
func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return strings.ToValidUTF8(string(raw), "\uFFFD")
	}
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}
