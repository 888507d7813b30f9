package rollout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// A request sends the task's tools exactly as declared and the history's tool calls and
// results; the answer's tool calls come back on the response, put together from the deltas
// when streamed.
func TestToolsSentAndToolCallsKept(t *testing.T) {
	tools := json.RawMessage(`[{"type":"function","function":{"name":"get_weather","description":"Weather now.","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"strict":true}}]`)
	calls := []fakeserver.ToolCall{
		fakeserver.Call("call_a", "get_weather", `{"city": "Lyon"}`),
		fakeserver.Call("call_b", "get_weather", `{"city": "Nîmes"}`),
	}
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		if req.Tools == nil {
			return fakeserver.Reply{Text: "no tools"}
		}
		return fakeserver.Reply{Text: "Let me check both.", ToolCalls: calls}
	})
	defer srv.Close()
	history := []rollout.Message{
		{Role: "user", Content: "Weather in Paris?"},
		{Role: "assistant", ToolCalls: []rollout.ToolCall{{ID: "call_0", Type: "function", Function: rollout.ToolFunction{Name: "get_weather", Arguments: `{"city": "Paris"}`}}}},
		{Role: "tool", Content: "12 °C", ToolCallID: "call_0", Name: "get_weather"},
		{Role: "user", Content: "And in Lyon and Nîmes?"},
	}
	want := []rollout.ToolCall{
		{ID: "call_a", Type: "function", Function: rollout.ToolFunction{Name: "get_weather", Arguments: `{"city": "Lyon"}`}},
		{ID: "call_b", Type: "function", Function: rollout.ToolFunction{Name: "get_weather", Arguments: `{"city": "Nîmes"}`}},
	}
	for _, stream := range []bool{false, true} {
		p := rollout.NewOpenAIPolicy(rollout.EndpointConfig{BaseURL: srv.BaseURL(), Model: "m", Stream: stream})
		resp, err := p.Sample(context.Background(), rollout.Request{Messages: history, Tools: tools, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Text != "Let me check both." || resp.FinishReason != "tool_calls" || !reflect.DeepEqual(resp.ToolCalls, want) {
			t.Errorf("stream %v: %q %q %+v", stream, resp.Text, resp.FinishReason, resp.ToolCalls)
		}
		reqs := srv.Requests()
		got := reqs[len(reqs)-1]
		var compact bytes.Buffer
		json.Compact(&compact, got.Tools)
		if compact.String() != string(tools) {
			t.Errorf("stream %v: tools sent %s, want %s", stream, got.Tools, tools)
		}
		if m := got.Messages[1]; len(m.ToolCalls) != 1 || m.ToolCalls[0].ID != "call_0" || m.ToolCalls[0].Function.Arguments != `{"city": "Paris"}` {
			t.Errorf("stream %v: assistant tool call sent as %+v", stream, m)
		}
		if m := got.Messages[2]; m.ToolCallID != "call_0" || m.Content != "12 °C" {
			t.Errorf("stream %v: tool result sent as %+v", stream, m)
		}
		// Without tools nothing is sent for them.
		if _, err := p.Sample(context.Background(), rollout.Request{Messages: history[:1], Seed: 1}); err != nil {
			t.Fatal(err)
		}
		if reqs := srv.Requests(); reqs[len(reqs)-1].Tools != nil {
			t.Errorf("tools sent for a request without any: %s", reqs[len(reqs)-1].Tools)
		}
	}
}
