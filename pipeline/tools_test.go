package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/pycheck"
	"github.com/redraft/redraft/rollout/fakeserver"
	"github.com/redraft/redraft/tokenizer"
	"github.com/redraft/redraft/validate"
)

// A task's tools are sent with every request for it, and a response's tool calls come back
// on its rl row: the messages column holds the prompt and the response with its calls, the
// tools column the task's tools, and the token track (qwen3) trains the response's content and
// calls; a task without tools keeps null messages and tools. validate re-renders every track.
func TestGeneratedToolCalls(t *testing.T) {
	tools := `[{"type":"function","function":{"name":"calculator","description":"Evaluates an arithmetic expression.","parameters":{"type":"object","properties":{"expression":{"type":"string"}},"required":["expression"]}}}]`
	tasks := filepath.Join(t.TempDir(), "tasks.jsonl")
	lines := []string{
		`{"id": "calc-1", "reference": "397.8", "tools": ` + tools + `, "messages": [{"role": "system", "content": "Use the calculator for arithmetic."}, {"role": "user", "content": "What is 17% of 2,340?"}]}`,
		`{"id": "plain-1", "reference": "4", "prompt": "What is 2+2?"}`,
	}
	if err := os.WriteFile(tasks, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		if req.Tools == nil {
			return fakeserver.Reply{Text: "The answer is 4."}
		}
		return fakeserver.Reply{ToolCalls: []fakeserver.ToolCall{fakeserver.Call(fmt.Sprintf("call_%d", *req.Seed%1000), "calculator", `{"expression": "0.17*2340"}`)}}
	})
	defer srv.Close()
	track := "../tokenizer/testdata/synthetic.json"
	for _, stream := range []bool{false, true} {
		dir := t.TempDir()
		cfg, err := ParseConfig("test.yaml", strings.NewReader(fmt.Sprintf(`
name: tools
source: {kind: tasks, path: %q, data_source: toy}
endpoint: {base_url: %s, model: policy, stream: %v, retries: 1, backoff_initial: 1ms, backoff_max: 2ms}
sampling: {n: 2, max_tokens: 64}
output: {dir: %q, tokenizer: %q, chat_format: qwen3}
`, tasks, srv.BaseURL(), stream, dir, track)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
			t.Fatal(err)
		}
		var sent int
		for _, r := range srv.Requests() {
			if r.Messages[len(r.Messages)-1].Content == "What is 17% of 2,340?" {
				var a, b any
				json.Unmarshal(r.Tools, &a)
				json.Unmarshal([]byte(tools), &b)
				if fmt.Sprint(a) != fmt.Sprint(b) {
					t.Errorf("tools sent: %s", r.Tools)
				}
				sent++
			} else if r.Tools != nil {
				t.Errorf("tools sent with a task that declares none: %s", r.Tools)
			}
		}
		if sent < 2 {
			t.Errorf("%d requests carried the task's tools", sent)
		}
		rows := readAll(t, dir)
		tt, err := export.LoadTokenTrack(track, tokenizer.FormatQwen3)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.TaskID == "plain-1" {
				if r.Messages != nil || r.Tools != nil || r.TokenReason != nil {
					t.Errorf("plain row: messages %v tools %v reason %v", r.Messages, r.Tools, r.TokenReason)
				}
				continue
			}
			if r.Tools == nil || *r.Tools != tools || len(r.Messages) != 3 || r.Response != "" || r.FinishReason == nil || *r.FinishReason != "tool_calls" {
				t.Fatalf("tool row: tools %v, %d messages, response %q, finish %v", r.Tools, len(r.Messages), r.Response, r.FinishReason)
			}
			last := r.Messages[2]
			if last.Role != "assistant" || len(last.ToolCalls) != 1 || last.ToolCalls[0].Function.Name != "calculator" ||
				last.ToolCalls[0].Function.Arguments != `{"expression": "0.17*2340"}` || last.ToolCalls[0].ID != fmt.Sprintf("call_%d", *r.Seed%1000) {
				t.Fatalf("response message %+v", last)
			}
			if r.TokenReason != nil {
				t.Fatalf("no token track: %s", *r.TokenReason)
			}
			var trained []int
			for k, l := range r.Labels {
				if l != -100 {
					trained = append(trained, int(r.InputIDs[k]))
				}
			}
			if got, want := tt.Tok.Decode(trained), "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"0.17*2340\"}}\n</tool_call><|im_end|>"; got != want {
				t.Errorf("trained %q, want %q", got, want)
			}
			prompt := make([]int, len(r.PromptIDs))
			for k, id := range r.PromptIDs {
				prompt[k] = int(id)
			}
			if p := tt.Tok.Decode(prompt); !strings.HasPrefix(p, "<|im_start|>system\nUse the calculator for arithmetic.\n\n# Tools\n") || !strings.HasSuffix(p, "<|im_start|>assistant\n<think>\n\n</think>\n\n") {
				t.Errorf("prompt_ids decode to %q", p)
			}
		}
		rep, err := validate.Dir(context.Background(), dir, validate.Options{Tokens: tt})
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		rep.WriteText(&sb)
		if !rep.OK() || len(rep.Notes) > 0 {
			t.Fatalf("validate: %s", sb.String())
		}
		pycheck.Check(t, "..", dir)
	}
}
