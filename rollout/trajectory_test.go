package rollout

import (
	"context"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

const weatherTools = `[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]`

// trajLine is a small valid trajectory of task.
func trajLine(id, task string) string {
	return `{"id": "` + id + `", "task_id": "` + task + `", "reward": 1, "tools": ` + weatherTools + `, "messages": [` +
		`{"role": "user", "content": "Weather in Oslo?"}, ` +
		`{"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]}, ` +
		`{"role": "tool", "tool_call_id": "c1", "name": "get_weather", "content": "-3 °C, snow"}, ` +
		`{"role": "assistant", "content": "It is -3 °C and snowing in Oslo."}]}`
}

func readTrajectories(t *testing.T, opts InputOptions) ([]Trajectory, *TrajectoryFile, error) {
	t.Helper()
	src, err := OpenTrajectories(opts)
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { src.Close() })
	var out []Trajectory
	for {
		tr, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return out, src, nil
		}
		if err != nil {
			return out, src, err
		}
		out = append(out, tr)
	}
}

func TestTrajectoryFile(t *testing.T) {
	p := writeFile(t, "traj.jsonl", trajLine("t1", "oslo")+"\n"+trajLine("t2", "oslo")+"\n"+
		`{"id": "t3", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}], "metadata": {"agent": "x"}}`+"\n")
	trs, _, err := readTrajectories(t, InputOptions{Path: p, ExtraFields: ExtraFieldsError})
	if err != nil {
		t.Fatal(err)
	}
	if len(trs) != 3 {
		t.Fatalf("%d trajectories", len(trs))
	}
	a := trs[0]
	if a.ID != "t1" || a.TaskID != "oslo" || a.Reward == nil || *a.Reward != 1 || a.PromptLen() != 1 || a.Origin.Line != 1 {
		t.Errorf("t1: %+v", a)
	}
	if c := a.Messages[1]; c.Content != "" || len(c.ToolCalls) != 1 || c.ToolCalls[0].Function.Arguments != `{"city": "Oslo"}` || c.ToolCalls[0].Type != "function" {
		t.Errorf("tool call: %+v", c)
	}
	if m := a.Messages[2]; m.ToolCallID != "c1" || m.Name != "get_weather" {
		t.Errorf("tool result: %+v", m)
	}
	if string(a.Tools) != `[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]` {
		t.Errorf("tools %s", a.Tools)
	}
	if c := trs[2]; c.TaskID != "t3" || c.Reward != nil || c.Tools != nil || string(c.Metadata) != `{"agent":"x"}` || c.PromptLen() != 2 {
		t.Errorf("t3: %+v", c)
	}
	// An arguments object is kept as the JSON text a chat template writes for it.
	p = writeFile(t, "obj.jsonl", strings.Replace(trajLine("t1", "oslo"), `"arguments": "{\"city\": \"Oslo\"}"`, `"arguments": {"city":"Oslo","days":2}`, 1)+"\n")
	trs, _, err = readTrajectories(t, InputOptions{Path: p})
	if err != nil || trs[0].Messages[1].ToolCalls[0].Function.Arguments != `{"city": "Oslo", "days": 2}` {
		t.Errorf("arguments object: %v %+v", err, trs)
	}
	// Sharded by task: both trajectories of a task land in the same shard.
	p = writeFile(t, "many.jsonl", trajLine("a1", "a")+"\n"+trajLine("a2", "a")+"\n"+trajLine("b1", "b")+"\n"+trajLine("c1", "c")+"\n"+trajLine("c2", "c")+"\n")
	seen := map[string]int{}
	for i := range 2 {
		trs, _, err := readTrajectories(t, InputOptions{Path: p, Shard: Shard{Index: i, Count: 2}})
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range trs {
			if want := ShardOf(tr.TaskID, 2); want != i {
				t.Errorf("trajectory %s of task %s in shard %d, its task's shard is %d", tr.ID, tr.TaskID, i, want)
			}
			seen[tr.ID]++
		}
	}
	if len(seen) != 5 {
		t.Errorf("shards hold %v", seen)
	}
}

// Bad trajectories are reported with the file, the line and the field.
func TestTrajectoryErrors(t *testing.T) {
	good := trajLine("t1", "a")
	sub := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("%q not in the good line", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	for _, c := range []struct{ line, field, msg string }{
		{`{"id": "x"}`, "messages", "missing"},
		{`{"id": "x", "messages": [{"role": "user", "content": "q"}]}`, "messages", "no assistant message"},
		{`{"id": "x", "messages": [{"role": "assistant", "content": "a"}]}`, "messages[0].role", "needs its prompt"},
		{sub(`"tool_call_id": "c1"`, `"tool_call_id": "c9"`), "messages[2].tool_call_id", `"c9" names no tool call of an earlier assistant message`},
		{sub(`, "tool_call_id": "c1"`, ``), "messages[2].tool_call_id", "a tool message needs the id of the call it answers"},
		{sub(`{"role": "user", "content": "Weather in Oslo?"}`, `{"role": "user", "content": "q", "tool_call_id": "c1"}`), "messages[0].tool_call_id", "only a tool message answers a call"},
		{sub(`{"role": "user", "content": "Weather in Oslo?"}`, `{"role": "user", "content": null}`), "messages[0].content", "want a string"},
		{sub(`"type": "function", "function": {"name": "get_weather", "arguments"`, `"type": "function", "function": {"name": "", "arguments"`), "messages[1].tool_calls[0].function.name", "want a non-empty string"},
		{sub(`"arguments": "{\"city\": \"Oslo\"}"`, `"arguments": 3`), "messages[1].tool_calls[0].function.arguments", "want JSON text"},
		{sub(`{"id": "c1", "type": "function"`, `{"id": "c1", "type": "retrieval"`), "messages[1].tool_calls[0].type", `want "function"`},
		{sub(`[{"id": "c1", "type"`, `[{"type"`), "messages[1].tool_calls[0].id", "want a non-empty string"},
		{sub(`"tools": [{"type": "function", "function": {"name": "get_weather"`, `"tools": [{"type": "function", "function": {"nom": "get_weather"`), "tools[0].function.name", "want a non-empty string"},
		{sub(`"tools": `+weatherTools, `"tools": 7`), "tools", "want a JSON array"},
		{sub(`"reward": 1`, `"reward": NaN`), "reward", "not a finite number"},
		{sub(`"reward": 1`, `"reward": "1"`), "reward", "want a number"},
		{sub(`"task_id": "a"`, `"task_id": ""`), "task_id", "want a non-empty string"},
		{sub(`"reward": 1`, `"reward": 1, "score": 2`), "score", "unknown field"},
	} {
		p := writeFile(t, "bad.jsonl", trajLine("t0", "a")+"\n"+c.line+"\n")
		_, _, err := readTrajectories(t, InputOptions{Path: p, ExtraFields: ExtraFieldsError})
		checkInputError(t, err, p, 2, c.field, c.msg)
	}
	// A task's trajectories are consecutive; ids are unique.
	p := writeFile(t, "order.jsonl", trajLine("a1", "a")+"\n"+trajLine("b1", "b")+"\n"+trajLine("a2", "a")+"\n")
	_, _, err := readTrajectories(t, InputOptions{Path: p})
	checkInputError(t, err, p, 3, "task_id", `task "a" has trajectories on line 1 already: a task's trajectories must be consecutive`)
	p = writeFile(t, "dup.jsonl", trajLine("a1", "a")+"\n"+trajLine("a1", "a")+"\n")
	_, _, err = readTrajectories(t, InputOptions{Path: p})
	checkInputError(t, err, p, 2, "id", `duplicate trajectory id "a1"`)
	// Under on_error skip a bad record is dropped and listed.
	p = writeFile(t, "skip.jsonl", trajLine("a1", "a")+"\n"+`{"id": "x"}`+"\n"+trajLine("b1", "b")+"\n")
	trs, src, err := readTrajectories(t, InputOptions{Path: p, OnError: OnErrorSkip})
	if err != nil || len(trs) != 2 || src.SkippedTotal() != 1 || src.Skipped()[0].Line != 2 {
		t.Errorf("skip: %v %d %+v", err, len(trs), src.Skipped())
	}
}

// FuzzDecodeTrajectory: any line decodes or fails with an error located in
// the file; a decoded trajectory has a prompt and an assistant message, every
// tool result answers an earlier call, and its reward is finite.
func FuzzDecodeTrajectory(f *testing.F) {
	for _, s := range []string{
		trajLine("t1", "a"),
		`{"id": 1, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], "reward": 0.5}`,
		`{"id": "x", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": {"k": [1, 2.50, "é"]}}}]}, {"role": "tool", "tool_call_id": "a", "content": "r"}]}`,
		`{"id": null}`, `[]`, `"x"`, `{`, "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		for _, extra := range []ExtraFields{ExtraFieldsIgnore, ExtraFieldsError} {
			d := newDecoder(InputOptions{Path: "f.jsonl", ExtraFields: extra})
			tr, err := d.trajectory("f.jsonl", 1, []byte(line))
			var ie *InputError
			if err != nil {
				if !errors.As(err, &ie) || ie.File != "f.jsonl" || ie.Line != 1 {
					t.Fatalf("error is not a located InputError: %v", err)
				}
				continue
			}
			n := tr.PromptLen()
			if n == 0 || n == len(tr.Messages) || tr.ID == "" || tr.TaskID == "" {
				t.Fatalf("trajectory without a prompt or an assistant message: %+v", tr)
			}
			calls := map[string]bool{}
			for _, m := range tr.Messages {
				for _, c := range m.ToolCalls {
					if m.Role != "assistant" || c.ID == "" || c.Function.Name == "" || c.Type != "function" {
						t.Fatalf("bad tool call kept: %+v", m)
					}
					calls[c.ID] = true
				}
				if m.Role == "tool" && !calls[m.ToolCallID] {
					t.Fatalf("tool result answers no call: %+v", m)
				}
			}
			if r := tr.Reward; r != nil && (math.IsNaN(*r) || math.IsInf(*r, 0)) {
				t.Fatalf("non-finite reward %v accepted", *r)
			}
		}
	})
}

// A task record may declare tools and carry a conversation with tool calls and results.
func TestTaskTools(t *testing.T) {
	p := writeFile(t, "tasks.jsonl", `{"id": "w", "tools": `+weatherTools+`, "messages": [{"role": "user", "content": "Weather in Oslo?"}, `+
		`{"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]}, `+
		`{"role": "tool", "tool_call_id": "c1", "content": "-3 °C"}, {"role": "user", "content": "Should I go skiing?"}]}`+"\n"+
		`{"id": "plain", "prompt": "2+2?"}`+"\n")
	src, err := OpenTasks(InputOptions{Path: p, ExtraFields: ExtraFieldsError})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	task, err := src.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(task.Tools) == 0 || task.Messages[1].ToolCalls[0].Type != "function" || task.Messages[2].ToolCallID != "c1" || task.Messages[1].Content != "" {
		t.Errorf("task: %+v tools %s", task.Messages, task.Tools)
	}
	if plain, err := src.Next(context.Background()); err != nil || plain.Tools != nil {
		t.Errorf("plain task: %v %s", err, plain.Tools)
	}
	p = writeFile(t, "bad.jsonl", `{"id": "w", "messages": [{"role": "user", "content": "q", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}]}]}`+"\n")
	_, _, err = readAll(t, InputOptions{Path: p}, false)
	checkInputError(t, err, p, 1, "messages[0].tool_calls", "only an assistant message calls tools (this one is user)")
}
