package env

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestDecodeResponse: every field of the protocol's answer, OpenEnv's
// tool-call observations, and each malformed shape with the field it names.
func TestDecodeResponse(t *testing.T) {
	yes, no := true, false
	ok := []struct {
		name, body string
		want       StepResult
	}{
		{"full", `{"observation": {"text": "You see a door.", "actions": ["open door"], "success": false, "invalid_action": true, "info": {"score": 3}, "extra": 1}, "reward": 0.25, "done": false}`,
			StepResult{Observation: Observation{Text: "You see a door.", Actions: []string{"open door"}, Info: json.RawMessage(`{"score": 3}`)}, Reward: ptr(0.25), Success: &no, Invalid: true}},
		{"minimal OpenEnv", `{"observation": {"text": "hi"}}`, StepResult{Observation: Observation{Text: "hi"}}},
		{"nulls", `{"observation": {"text": "x", "success": null, "actions": null, "info": null}, "reward": null, "done": null}`, StepResult{Observation: Observation{Text: "x"}}},
		{"done and won", `{"observation": {"text": "Done!", "success": true}, "reward": 1, "done": true}`,
			StepResult{Observation: Observation{Text: "Done!"}, Reward: ptr(1), Done: true, Success: &yes}},
		{"gold", `{"observation": {"text": "t", "gold_actions": ["a", "b"]}, "reward": null, "done": false}`,
			StepResult{Observation: Observation{Text: "t", Gold: []string{"a", "b"}}}},
		{"tool result string", `{"observation": {"tool_name": "search", "result": "3 hits"}, "reward": 0, "done": false}`,
			StepResult{Observation: Observation{Text: "3 hits"}, Reward: ptr(0)}},
		{"tool result object", `{"observation": {"tool_name": "search", "result": {"hits": [1, 2]}}}`,
			StepResult{Observation: Observation{Text: `{"hits":[1,2]}`}}},
		{"tool error", `{"observation": {"tool_name": "nope", "error": {"error_type": "tool_not_found", "message": "no tool nope"}}}`,
			StepResult{Observation: Observation{Text: "tool_not_found: no tool nope"}, Invalid: true, ToolError: "tool_not_found: no tool nope"}},
		{"tool error with text", `{"observation": {"text": "Error: bad", "error": "bad"}}`,
			StepResult{Observation: Observation{Text: "Error: bad"}, Invalid: true, ToolError: "bad"}},
		{"no text field", `{"observation": {"board": [1, 2], "turn": "x"}, "done": false}`,
			StepResult{Observation: Observation{Text: `{"board":[1,2],"turn":"x"}`}}},
		{"negative reward", `{"observation": {"text": "ouch"}, "reward": -1.0, "done": true}`,
			StepResult{Observation: Observation{Text: "ouch"}, Reward: ptr(-1), Done: true}},
	}
	for _, c := range ok {
		got, err := decodeResponse([]byte(c.body), "text")
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		got.Raw = nil
		if g, w := describe(got), describe(c.want); g != w {
			t.Errorf("%s:\n got %s\nwant %s", c.name, g, w)
		}
	}

	bad := []struct{ name, body, reason string }{
		{"empty", ``, "not a JSON object"},
		{"html", `<html>502 Bad Gateway</html>`, "not a JSON object"},
		{"array", `[1]`, "not a JSON object"},
		{"truncated", `{"observation": {"text": "a`, "not a JSON object"},
		{"trailing", `{"observation": {"text": "a"}} {}`, "data after the object"},
		{"NaN", `{"observation": {"text": "a"}, "reward": NaN}`, "not a JSON object"},
		{"huge", `{"observation": {"text": "a"}, "reward": 1e999}`, `"reward"`},
		{"no observation", `{"reward": 1, "done": false}`, `no "observation"`},
		{"observation string", `{"observation": "hello"}`, `"observation" is not a JSON object`},
		{"text number", `{"observation": {"text": 5}}`, `"observation.text" is not a string`},
		{"reward string", `{"observation": {"text": "a"}, "reward": "1"}`, `"reward" is not a number`},
		{"done string", `{"observation": {"text": "a"}, "done": "yes"}`, `"done" is not a boolean`},
		{"success number", `{"observation": {"text": "a", "success": 1}}`, `"observation.success"`},
		{"invalid string", `{"observation": {"text": "a", "invalid_action": "no"}}`, `"observation.invalid_action"`},
		{"actions objects", `{"observation": {"text": "a", "actions": [{"x": 1}]}}`, `"observation.actions"`},
		{"gold string", `{"observation": {"text": "a", "gold_actions": "go"}}`, `"observation.gold_actions"`},
		{"info list", `{"observation": {"text": "a", "info": [1]}}`, `"observation.info"`},
		{"tools object", `{"observation": {"text": "a", "tools": {}}}`, `"observation.tools"`},
		{"tool without name", `{"observation": {"text": "a", "tools": [{"type": "function", "function": {}}]}}`, "no function name"},
		{"tool bad params", `{"observation": {"text": "a", "tools": [{"name": "f", "input_schema": 3}]}}`, "parameters"},
		{"tool error number", `{"observation": {"error": 3}}`, `"observation.error"`},
	}
	for _, c := range bad {
		_, err := decodeResponse([]byte(c.body), "text")
		if err == nil || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.reason)
		}
	}
}

// TestDecodeTools: OpenAI schemas pass as they are; MCP tools (OpenEnv's
// ListToolsObservation) become OpenAI schemas.
func TestDecodeTools(t *testing.T) {
	body := `{"observation": {"text": "t", "tools": [
		{"type": "function", "function": {"name": "act", "description": "d", "parameters": {"type": "object"}}},
		{"name": "search", "description": "find", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}]}}`
	r, err := decodeResponse([]byte(body), "text")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(r.Tools)
	want := `[{"type":"function","function":{"name":"act","description":"d","parameters":{"type":"object"}}},` +
		`{"type":"function","function":{"name":"search","description":"find","parameters":{"type":"object","properties":{"q":{"type":"string"}}}}}]`
	if string(got) != want {
		t.Errorf("tools\n got %s\nwant %s", got, want)
	}
}

// TestEncodeAction: text commands under the configured field, tool calls as
// OpenEnv's CallToolAction, and the tool calls that cannot be sent.
func TestEncodeAction(t *testing.T) {
	cases := []struct {
		a     Action
		field string
		want  string
	}{
		{Action{Text: "open door"}, "text", `{"text":"open door"}`},
		{Action{Text: "hello"}, "message", `{"message":"hello"}`},
		{Action{}, "text", `{"text":""}`},
		{Action{Tool: &ToolCall{ID: "c1", Name: "act", Arguments: `{"command": "look"}`}}, "text",
			`{"type":"call_tool","tool_name":"act","arguments":{"command":"look"}}`},
		{Action{Tool: &ToolCall{Name: "list"}}, "text", `{"type":"call_tool","tool_name":"list","arguments":{}}`},
	}
	for _, c := range cases {
		got, err := encodeAction(c.a, c.field)
		if err != nil || string(got) != c.want {
			t.Errorf("%+v: %s, %v; want %s", c.a, got, err, c.want)
		}
	}
	for _, a := range []Action{
		{Tool: &ToolCall{Name: "act", Arguments: `{"command": `}},
		{Tool: &ToolCall{Name: "act", Arguments: `["look"]`}},
		{Tool: &ToolCall{Name: "act", Arguments: `null`}},
		{Tool: &ToolCall{Arguments: `{}`}},
		{Text: "both", Tool: &ToolCall{Name: "act"}},
	} {
		if got, err := encodeAction(a, "text"); err == nil {
			t.Errorf("%+v (%+v): encoded as %s, want an error", a, a.Tool, got)
		}
	}
}

// TestTaskID: the identity string, options included canonically.
func TestTaskID(t *testing.T) {
	a := Task{Env: "scienceworld", Name: "boil", Variation: 3, Seed: 7}
	if a.ID() != "scienceworld/boil/3/7" {
		t.Errorf("ID %q", a.ID())
	}
	a.Options = map[string]any{"step_limit": 50, "simplifications": "easy"}
	if got := a.ID(); got != `scienceworld/boil/3/7/{"simplifications":"easy","step_limit":50}` {
		t.Errorf("ID with options %q", got)
	}
	a.Oracle = true
	if b := (Task{Env: "scienceworld", Name: "boil", Variation: 3, Seed: 7, Options: map[string]any{"simplifications": "easy", "step_limit": 50}}); b.ID() != a.ID() {
		t.Errorf("Oracle changed the identity: %q vs %q", a.ID(), b.ID())
	}
	for _, bad := range []Task{{Env: "e", Variation: -1}, {Env: "e", Seed: -2}, {Env: "e", Options: map[string]any{"f": math.Inf(1)}}} {
		if bad.validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}

// FuzzDecodeResponse: nothing a server sends panics the decoder; what it
// accepts has a finite reward and valid UTF-8 text, and its error names a
// reason.
func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{
		`{"observation": {"text": "You see a door.", "actions": ["open door"], "success": false, "invalid_action": true, "info": {"score": 3}}, "reward": 0.25, "done": false}`,
		`{"observation": {"tool_name": "nope", "error": {"error_type": "tool_not_found", "message": "no"}}}`,
		`{"observation": {"text": "t", "tools": [{"name": "s", "input_schema": {"type": "object"}}], "gold_actions": ["a"]}}`,
		`{"observation": {"result": {"a": [1, 2]}}, "reward": null, "done": true}`,
		`{"observation": {"text": "a"}, "reward": 1e308, "done": false}`,
		`{"observation": {}}`, `{}`, `null`, `[]`, `{"observation": {"text": "\ud800"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeResponse(body, "text")
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a reason")
			}
			return
		}
		if r.Reward != nil && (math.IsNaN(*r.Reward) || math.IsInf(*r.Reward, 0)) {
			t.Fatalf("reward %v", *r.Reward)
		}
		if !utf8.ValidString(r.Text) {
			t.Fatalf("text %q is not UTF-8", r.Text)
		}
		for _, tool := range r.Tools {
			if tool.Function.Name == "" || tool.Type != "function" {
				t.Fatalf("tool %+v", tool)
			}
		}
		if len(r.Raw) == 0 {
			t.Fatal("no raw observation")
		}
	})
}

func ptr(f float64) *float64 { return &f }

// describe prints a result with its pointers' values, for comparisons.
func describe(r StepResult) string {
	b, _ := json.Marshal(struct {
		Observation
		Reward    *float64
		Done      bool
		Success   *bool
		Invalid   bool
		ToolError string
	}{r.Observation, r.Reward, r.Done, r.Success, r.Invalid, r.ToolError})
	return string(b)
}
