package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestPyJSON(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"b":1,"a":[true,false,null],"c":{}}`, `{"b": 1, "a": [true, false, null], "c": {}}`},
		{`[]`, `[]`},
		{`{"k":1,"j":2,"k":3}`, `{"k": 3, "j": 2}`}, // json.loads: first position, last value
		{`"é\u00e9\n\t\"\\\u0001\u001f\u007f/"`, "\"éé\\n\\t\\\"\\\\\\u0001\\u001f\u007f/\""},
		{`"\u2028 <>&'"`, "\"\u2028 <>&'\""},
		{`[-0, 0, 12345678901234567890123, -7]`, `[0, 0, 12345678901234567890123, -7]`},
		{`[1.0, 1.5e3, 1e16, 1e15, 0.0001, 0.00001, -2.50, 1E-7, 123456789.123456789, -0.0, 0.1]`,
			`[1.0, 1500.0, 1e+16, 1000000000000000.0, 0.0001, 1e-05, -2.5, 1e-07, 123456789.12345679, -0.0, 0.1]`},
		{` { "a" : "x" } `, `{"a": "x"}`},
	} {
		got, err := PyJSON([]byte(c.in))
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.in, got, c.want)
		}
	}
	for _, bad := range []string{`{"a":}`, `[1] 2`, `1e999`, ``} {
		if _, err := PyJSON([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// toolConv is a conversation with tools, written both ways: as the tokenizer's messages and
// as the OpenAI chat messages a chat template takes.
type toolConv struct {
	tools []json.RawMessage
	msgs  []Message
	ids   [][]string // per message: its tool calls' ids (assistant) or the id it answers (tool)
}

func (c toolConv) openAI() map[string]any {
	var msgs []map[string]any
	for i, m := range c.msgs {
		o := map[string]any{"role": m.Role, "content": concat(m.Segments)}
		if len(m.ToolCalls) > 0 {
			var calls []map[string]any
			for k, tc := range m.ToolCalls {
				calls = append(calls, map[string]any{"id": c.ids[i][k], "type": "function",
					"function": map[string]any{"name": tc.Name, "arguments": tc.Arguments}})
			}
			o["tool_calls"] = calls
		}
		if m.Role == "tool" {
			o["tool_call_id"] = c.ids[i][0]
		}
		msgs = append(msgs, o)
	}
	out := map[string]any{"messages": msgs}
	if len(c.tools) > 0 {
		out["tools"] = c.tools
	}
	return out
}

var weatherTool = json.RawMessage(`{"type":"function","function":{"name":"get_weather","description":"Current weather in a city (°C).","parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"],"default":"celsius"},"days":{"type":"integer","minimum":1,"maximum":7.5}},"required":["city"]}}}`)
var calcTool = json.RawMessage(`{"type":"function","function":{"name":"calculator","description":"Evaluates an arithmetic expression such as \"2*(3+4)\".","parameters":{"type":"object","properties":{"expression":{"type":"string"}},"required":["expression"]}}}`)

func call(name, args string) ToolCall { return ToolCall{Name: name, Arguments: args} }

func withCalls(m Message, trainable bool, calls ...ToolCall) Message {
	m.ToolCalls, m.ToolCallsTrainable = calls, trainable
	return m
}

var toolConvs = []toolConv{
	{ // tools and a system message; two parallel calls with no content; two results grouped
		tools: []json.RawMessage{weatherTool, calcTool},
		msgs: []Message{
			msg("system", seg("You are a helpful assistant.", false)),
			msg("user", seg("What's the weather in Paris and in 東京 right now?", false)),
			withCalls(msg("assistant"), true, call("get_weather", `{"city": "Paris"}`), call("get_weather", `{"city":"東京","unit":"celsius"}`)),
			msg("tool", seg(`{"temperature": 18, "sky": "cloudy"}`, false)),
			msg("tool", seg(`{"temperature": 22, "sky": "sunny"}`, false)),
			msg("assistant", seg("Paris: 18°C and cloudy. Tokyo: 22°C and sunny.", true)),
		},
		ids: [][]string{nil, nil, {"call_1", "call_2"}, {"call_1"}, {"call_2"}, nil},
	},
	{ // tools, no system message; content before a call; a second round after a new user query
		tools: []json.RawMessage{calcTool},
		msgs: []Message{
			msg("user", seg("How much is 17% of 2,340?", false)),
			withCalls(msg("assistant", seg("Let me compute that.", true)), true, call("calculator", `{"expression": "0.17*2340"}`)),
			msg("tool", seg("397.8", false)),
			msg("assistant", seg("17% of 2,340 is 397.8.", true)),
			msg("user", seg("And 3% of that?", false)),
			withCalls(msg("assistant"), true, call("calculator", `{"expression": "0.03*397.8"}`)),
			msg("tool", seg("11.934", false)),
			msg("assistant", seg("3% of 397.8 is 11.934.", true)),
		},
		ids: [][]string{nil, {"c1"}, {"c1"}, nil, nil, {"c2"}, {"c2"}, nil},
	},
	{ // tool calls without declared tools; a masked earlier call; the conversation ends on a result
		msgs: []Message{
			msg("system", seg("Answer with tools.", false)),
			msg("user", seg("Is 2**61-1 prime?", false)),
			withCalls(msg("assistant", seg("I will check.\n", false)), false, call("calculator", `{"expression":"2**61-1"}`)),
			msg("tool", seg("2305843009213693951", false)),
			withCalls(msg("assistant"), true, call("is_prime", `{"n": 2305843009213693951}`)),
			msg("tool", seg("true", false)),
		},
		ids: [][]string{nil, nil, {"a"}, {"a"}, {"b"}, {"b"}},
	},
}

func TestRenderQwen3ToolCalls(t *testing.T) {
	tk := synthetic(t)
	c := toolConvs[1]
	text, _, err := tk.RenderTextTools(FormatQwen3, c.tools, c.msgs)
	if err != nil {
		t.Fatal(err)
	}
	calc, _ := PyJSON(calcTool)
	want := "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
		"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" + calc + "\n</tools>\n\n" +
		"For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n" +
		"<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" +
		"<|im_start|>user\nHow much is 17% of 2,340?<|im_end|>\n" +
		"<|im_start|>assistant\nLet me compute that.\n<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"0.17*2340\"}}\n</tool_call><|im_end|>\n" +
		"<|im_start|>user\n<tool_response>\n397.8\n</tool_response><|im_end|>\n" +
		"<|im_start|>assistant\n17% of 2,340 is 397.8.<|im_end|>\n" +
		"<|im_start|>user\nAnd 3% of that?<|im_end|>\n" +
		"<|im_start|>assistant\n<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"0.03*397.8\"}}\n</tool_call><|im_end|>\n" +
		"<|im_start|>user\n<tool_response>\n11.934\n</tool_response><|im_end|>\n" +
		"<|im_start|>assistant\n<think>\n\n</think>\n\n3% of 397.8 is 11.934.<|im_end|>\n"
	if text != want {
		t.Fatalf("text:\n got %q\nwant %q", text, want)
	}
	ids, labels, _, err := tk.RenderTools(FormatQwen3, c.tools, c.msgs)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, tk.Encode(text)) {
		t.Fatal("input_ids are not Encode(text)")
	}
	wantTrained := "Let me compute that.\n<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"0.17*2340\"}}\n</tool_call><|im_end|>" +
		"17% of 2,340 is 397.8.<|im_end|>" +
		"<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"0.03*397.8\"}}\n</tool_call><|im_end|>" +
		"3% of 397.8 is 11.934.<|im_end|>"
	if got := trainedText(tk, labels); got != wantTrained {
		t.Errorf("trained:\n got %q\nwant %q", got, wantTrained)
	}
	// Masked tool calls are not trained, nor is the end of their turn.
	_, labels, _, err = tk.RenderTools(FormatQwen3, toolConvs[2].tools, toolConvs[2].msgs)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := trainedText(tk, labels), "<tool_call>\n{\"name\": \"is_prime\", \"arguments\": {\"n\": 2305843009213693951}}\n</tool_call><|im_end|>"; got != want {
		t.Errorf("trained %q, want %q", got, want)
	}
}

func TestRenderToolErrors(t *testing.T) {
	tk := synthetic(t)
	c := toolConvs[0]
	for _, f := range []Format{FormatChatML, FormatLlama3} {
		if _, _, _, err := tk.RenderTools(f, c.tools, c.msgs[:2]); err == nil || !strings.Contains(err.Error(), "does not render tools") {
			t.Errorf("%s rendered tools: %v", f, err)
		}
		if _, _, _, err := tk.Render(f, c.msgs); err == nil || !strings.Contains(err.Error(), "does not render tool calls") {
			t.Errorf("%s rendered tool calls: %v", f, err)
		}
	}
	if _, _, _, err := tk.RenderTools(FormatQwen3, []json.RawMessage{json.RawMessage(`{"a":`)}, c.msgs); err == nil {
		t.Error("a malformed tool was rendered")
	}
	if _, _, _, err := tk.Render(FormatQwen3, []Message{withCalls(msg("user", seg("x", false)), false, call("f", "{}"))}); err == nil {
		t.Error("tool calls on a user message were rendered")
	}
}

// The conversations with tool calls and tool results render to exactly the text of Qwen3's
// own chat template (run by jinja2 as transformers runs it), and Render's ids are exactly what
// Hugging Face tokenizers gives for that text with the real Qwen3 tokenizer. Every token of a
// tool result (and of the template around it) is masked; every token of a trainable assistant
// message's content and tool calls, and its end of turn, is trained.
func TestToolCallsMatchQwen3Template(t *testing.T) {
	dir := tokenizersDirOrSkip(t)
	py := pythonOrSkip(t)
	var in strings.Builder
	for _, c := range toolConvs {
		b, err := json.Marshal(c.openAI())
		if err != nil {
			t.Fatal(err)
		}
		in.Write(b)
		in.WriteByte('\n')
	}
	cmd := exec.Command(py, filepath.Join("testdata", "chat_template.py"), filepath.Join(dir, "qwen3", "tokenizer_config.json"))
	cmd.Stdin = strings.NewReader(in.String())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		t.Skip("jinja2 is not installed in REDRAFT_PYTHON")
	}
	if err != nil {
		t.Fatalf("testdata/chat_template.py: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(toolConvs) {
		t.Fatalf("%d renderings for %d conversations", len(lines), len(toolConvs))
	}
	tk := loadReal(t, dir, "qwen3")
	texts := make([]string, len(lines))
	for i, c := range toolConvs {
		if err := json.Unmarshal([]byte(lines[i]), &texts[i]); err != nil {
			t.Fatal(err)
		}
		got, _, err := tk.RenderTextTools(FormatQwen3, c.tools, c.msgs)
		if err != nil {
			t.Fatal(err)
		}
		if got != texts[i] {
			t.Fatalf("conversation %d:\n  go       %q\n  template %q", i, got, texts[i])
		}
	}
	hf, version := hfEncode(t, py, filepath.Join(dir, "qwen3", "tokenizer.json"), texts)
	for i, c := range toolConvs {
		ids, labels, _, err := tk.RenderTools(FormatQwen3, c.tools, c.msgs)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, hf[i]) {
			t.Fatalf("conversation %d: ids differ from tokenizers %s (first at %d)", i, version, firstDiffInt(ids, hf[i]))
		}
		// What is trained, message by message: the assistant messages' text as rendered.
		var want strings.Builder
		for _, m := range c.msgs {
			if m.Role != "assistant" {
				continue
			}
			content := concat(m.Segments)
			if trainable := slices.ContainsFunc(m.Segments, func(s Segment) bool { return s.Trainable }); trainable {
				want.WriteString(content)
			}
			for k, tc := range m.ToolCalls {
				if !m.ToolCallsTrainable {
					continue
				}
				if k > 0 || content != "" {
					want.WriteString("\n")
				}
				fmt.Fprintf(&want, "<tool_call>\n{\"name\": %q, \"arguments\": %s}\n</tool_call>", tc.Name, tc.Arguments)
			}
			if (len(m.ToolCalls) > 0 && m.ToolCallsTrainable) || (len(m.ToolCalls) == 0 && m.Segments[len(m.Segments)-1].Trainable) {
				want.WriteString("<|im_end|>")
			}
		}
		if got := trainedText(tk, labels); got != want.String() {
			t.Errorf("conversation %d trains\n %q\nwant\n %q", i, got, want.String())
		}
		for k, id := range ids {
			if labels[k] != -100 && strings.Contains(tk.Decode([]int{id}), "tool_response") {
				t.Errorf("conversation %d: a token of a tool response is trained", i)
			}
		}
	}
	t.Logf("%d conversations with tool calls: Qwen3 template text and tokenizers %s ids identical", len(toolConvs), version)
}

func firstDiffInt(a, b []int) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
