package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/redraft/redraft/tokenizer"
)

// InputError is bad input, located precisely enough to fix it: file, line (or
// Parquet row, 1-based) and field.
type InputError struct {
	File  string
	Line  int // 0 when the error concerns the whole file
	Field string
	Err   error
}

func (e *InputError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString("field " + strconv.Quote(e.Field) + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *InputError) Unwrap() error { return e.Err }

// Layout names a record shape that input files may have.
type Layout string

const (
	// LayoutRedraft is redraft's own shape (see Fields for the keys).
	LayoutRedraft Layout = "redraft"
	// LayoutGSM8KSolutions is OpenAI grade-school-math's
	// example_model_solutions.jsonl: {question, ground_truth, <model>: {is_correct, solution}}
	// with four models per line.
	LayoutGSM8KSolutions Layout = "gsm8k-example-solutions"
	// LayoutHumanEval is OpenAI HumanEval's HumanEval.jsonl: {task_id,
	// prompt, canonical_solution, test, entry_point}. A task asks for the
	// function in a Python code block (HumanEvalInstruction), and its tests
	// are the problem's check function.
	LayoutHumanEval Layout = "humaneval"
)

// HumanEvalInstruction introduces a HumanEval problem's prompt (the
// function's signature and docstring, shown in a code block) in the user
// message of a LayoutHumanEval task.
const HumanEvalInstruction = "Complete the following Python function. Reply with the complete function, including the imports it needs, in a ```python code block."

// codeKeys are the record keys of a code task (see CodeSpec), fixed names
// in redraft's layout.
var codeKeys = []string{"tests", "entry_point", "code_prefix", "language"}

// Fields maps redraft's record keys to the keys a user's files use.
type Fields struct {
	ID         string `yaml:"id" json:"id"`
	Prompt     string `yaml:"prompt" json:"prompt"`
	Messages   string `yaml:"messages" json:"messages"`
	Reference  string `yaml:"reference" json:"reference"`
	DataSource string `yaml:"data_source" json:"data_source"`
	Metadata   string `yaml:"metadata" json:"metadata"`
	Responses  string `yaml:"responses" json:"responses"`
	Tools      string `yaml:"tools" json:"tools"`
}

// withDefaults fills unset keys with redraft's names.
func (f Fields) withDefaults() Fields {
	set := func(p *string, def string) {
		if *p == "" {
			*p = def
		}
	}
	set(&f.ID, "id")
	set(&f.Prompt, "prompt")
	set(&f.Messages, "messages")
	set(&f.Reference, "reference")
	set(&f.DataSource, "data_source")
	set(&f.Metadata, "metadata")
	set(&f.Responses, "responses")
	set(&f.Tools, "tools")
	return f
}

// InputOptions says how to read a task or rollout file.
type InputOptions struct {
	// Path is a file, or a directory whose *.jsonl, *.parquet and *.pq
	// files are read in name order as one stream (hidden files and
	// subdirectories are ignored; any other file is bad input, reported
	// with Line 0).
	Path string
	// Format is "jsonl" or "parquet"; "" picks by extension.
	Format string
	Layout Layout
	Fields Fields
	// DataSource is used for records that carry none.
	DataSource string
	// SystemPrompt, when set, is prepended to every prompt that does not
	// already start with a system message.
	SystemPrompt string
	// GenerateIDs names records without an id "<file base>:<line>" instead of
	// rejecting them.
	GenerateIDs bool
	// MaxLineBytes bounds one JSONL line, its newline excluded (default 64
	// MiB).
	MaxLineBytes int
	// OnError is what a bad record does: OnErrorFail ("" too) stops the
	// reading with its *InputError; OnErrorSkip drops the whole record,
	// keeps it in Skipped and reads on.
	OnError OnError
	// ExtraFields is what a key that redraft does not read does, in a record,
	// a message or a response (metadata is free-form and never checked):
	// ExtraFieldsIgnore ("" too) or ExtraFieldsError.
	ExtraFields ExtraFields
	// Shard keeps only the tasks of one shard of a cluster run (see ShardOf).
	Shard Shard
	// SkipTasks and SkipHash resume a run: the reader consumes the first
	// SkipTasks tasks it would have returned (after shard filtering and
	// skipped bad records), checks that TaskIDHash over their ids equals
	// SkipHash, and returns an error wrapping ErrInputChanged when it does
	// not or when the input holds fewer tasks.
	SkipTasks int64
	SkipHash  uint64
	// SpillDir is where the index of task ids seen (for duplicates) goes
	// once it outgrows 1 MiB of memory, about 49,000 tasks: a file of 21
	// to 43 bytes per task, unlinked at once (default: the system's
	// temporary directory).
	SpillDir string
}

// OnError is the bad-input policy.
type OnError string

// Bad-input policies.
const (
	OnErrorFail OnError = "fail"
	OnErrorSkip OnError = "skip"
)

// ExtraFields is the policy for keys that redraft does not read.
type ExtraFields string

// Extra-field policies. Ignore is the default because real datasets carry
// metadata columns that a run has no use for.
const (
	ExtraFieldsIgnore ExtraFields = "ignore"
	ExtraFieldsError  ExtraFields = "error"
)

// Shard selects the tasks of one shard: those whose ShardOf(id, Count) is
// Index. Count 0 or 1 means no sharding.
type Shard struct {
	Index, Count int
}

// check reports options that no reader can honour.
func (o InputOptions) check() error {
	bad := func(field string, format string, args ...any) error {
		return &InputError{File: o.Path, Field: field, Err: fmt.Errorf(format, args...)}
	}
	switch o.OnError {
	case "", OnErrorFail, OnErrorSkip:
	default:
		return bad("on_error", "unknown policy %q (want fail or skip)", o.OnError)
	}
	switch o.ExtraFields {
	case "", ExtraFieldsIgnore, ExtraFieldsError:
	default:
		return bad("extra_fields", "unknown policy %q (want ignore or error)", o.ExtraFields)
	}
	switch sh := o.Shard; {
	case sh.Count < 0:
		return bad("shard", "negative shard count %d", sh.Count)
	case sh.Count <= 1 && sh.Index != 0:
		return bad("shard", "shard index %d without a shard count", sh.Index)
	case sh.Count > 1 && (sh.Index < 0 || sh.Index >= sh.Count):
		return bad("shard", "shard index %d is not in [0, %d)", sh.Index, sh.Count)
	}
	if o.SkipTasks < 0 {
		return bad("skip_tasks", "negative count %d", o.SkipTasks)
	}
	switch o.Format {
	case "", "jsonl", "parquet":
	default:
		return bad("format", "unknown input format %q (want jsonl or parquet)", o.Format)
	}
	return nil
}

// decoder turns raw records into tasks and groups. It holds no state across
// records but the file being read, so a record that fails leaves nothing
// behind.
type decoder struct {
	opts   InputOptions
	fields Fields
	file   string // the file the records come from
}

func newDecoder(opts InputOptions) *decoder {
	if opts.Layout == "" {
		opts.Layout = LayoutRedraft
	}
	return &decoder{opts: opts, fields: opts.Fields.withDefaults(), file: opts.Path}
}

func (d *decoder) errf(line int, field, format string, args ...any) error {
	return &InputError{File: d.file, Line: line, Field: field, Err: fmt.Errorf(format, args...)}
}

// decode turns one raw record of file into a task and, for recorded
// rollouts, its samples. Every error is an *InputError.
func (d *decoder) decode(file string, line int, raw []byte, recorded bool) (Task, []Sample, error) {
	d.file = file
	obj, err := d.object(line, raw)
	if err != nil {
		return Task{}, nil, err
	}
	if err := d.extraFields(line, obj, recorded); err != nil {
		return Task{}, nil, err
	}
	task, err := d.task(line, obj)
	if err != nil || !recorded {
		return task, nil, err
	}
	var samples []Sample
	if d.opts.Layout == LayoutGSM8KSolutions {
		samples, err = d.gsm8kSamples(line, obj)
	} else {
		f := d.fields.Responses
		raw, ok := obj[f]
		if !ok || isNull(raw) {
			return task, nil, d.errf(line, f, "missing")
		}
		samples, err = d.responses(line, f, raw)
	}
	return task, samples, err
}

func (d *decoder) object(line int, raw []byte) (map[string]json.RawMessage, error) {
	valid := utf8.Valid(raw)
	var obj map[string]json.RawMessage
	var jsonErr error
	if valid {
		jsonErr = json.Unmarshal(raw, &obj)
	}
	if !valid || jsonErr != nil {
		// encoding/json would replace invalid UTF-8 silently and calls NaN
		// a syntax error: find the field instead.
		if p, ok := locateProblem(raw); ok {
			switch p.kind {
			case problemNonFinite:
				return nil, d.errf(line, p.path, "not a finite number: %s", p.token)
			case problemUTF8Key:
				return nil, d.errf(line, p.path, "invalid UTF-8 in the key")
			default:
				return nil, d.errf(line, p.path, "invalid UTF-8 in a string")
			}
		}
		if !valid {
			return nil, d.errf(line, "", "invalid UTF-8")
		}
		var te *json.UnmarshalTypeError
		if errors.As(jsonErr, &te) {
			return nil, d.errf(line, "", "malformed JSON: the record is a JSON %s, not an object", te.Value)
		}
		return nil, d.errf(line, "", "malformed JSON: %v", jsonErr)
	}
	if obj == nil {
		return nil, d.errf(line, "", "record is not a JSON object")
	}
	// encoding/json takes 1e999 for a valid number, so a record holding one
	// decodes; it is rejected like NaN, in every field (metadata and
	// reference are kept as written, and would carry it into the rows).
	if p, ok := locateOverflow(raw); ok {
		return nil, d.errf(line, p.path, "not a finite number: %s", p.token)
	}
	return obj, nil
}

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// scalarString accepts a JSON string or number and returns its text.
func scalarString(raw json.RawMessage) (string, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&n); err == nil {
		return n.String(), true
	}
	return "", false
}

func (d *decoder) task(line int, obj map[string]json.RawMessage) (Task, error) {
	switch d.opts.Layout {
	case LayoutGSM8KSolutions:
		return d.gsm8kTask(line, obj)
	case LayoutHumanEval:
		return d.humanEvalTask(line, obj)
	}
	f := d.fields
	t := Task{Origin: Origin{File: d.file, Line: line}, DataSource: d.opts.DataSource}
	if raw, ok := obj[f.ID]; ok && !isNull(raw) {
		id, ok := scalarString(raw)
		if !ok || id == "" {
			return t, d.errf(line, f.ID, "want a non-empty string or number, got %s", abbrev(raw))
		}
		t.ID = id
	} else if d.opts.GenerateIDs {
		t.ID = filepath.Base(d.file) + ":" + strconv.Itoa(line)
	} else {
		return t, d.errf(line, f.ID, "missing (set source.generate_ids to name records by line)")
	}

	if raw, ok := obj[f.Messages]; ok && !isNull(raw) {
		msgs, err := d.messages(line, f.Messages, raw)
		if err != nil {
			return t, err
		}
		t.Messages = msgs
	} else if raw, ok := obj[f.Prompt]; ok && !isNull(raw) {
		var p string
		if err := json.Unmarshal(raw, &p); err != nil {
			return t, d.errf(line, f.Prompt, "want a string, got %s", abbrev(raw))
		}
		if strings.TrimSpace(p) == "" {
			return t, d.errf(line, f.Prompt, "empty prompt")
		}
		t.Messages = []Message{{Role: "user", Content: p}}
	} else {
		return t, d.errf(line, f.Prompt, "missing (a record needs %q or %q)", f.Prompt, f.Messages)
	}
	if d.opts.SystemPrompt != "" && t.Messages[0].Role != "system" {
		t.Messages = append([]Message{{Role: "system", Content: d.opts.SystemPrompt}}, t.Messages...)
	}
	if raw, ok := obj[f.Reference]; ok && !isNull(raw) {
		ref, ok := scalarString(raw)
		if !ok {
			return t, d.errf(line, f.Reference, "want a string or number, got %s", abbrev(raw))
		}
		t.Reference = ref
	}
	if raw, ok := obj[f.DataSource]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &t.DataSource); err != nil {
			return t, d.errf(line, f.DataSource, "want a string, got %s", abbrev(raw))
		}
	}
	if raw, ok := obj[f.Metadata]; ok && !isNull(raw) {
		if raw[0] != '{' {
			return t, d.errf(line, f.Metadata, "want a JSON object, got %s", abbrev(raw))
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return t, d.errf(line, f.Metadata, "%v", err)
		}
		t.Metadata = buf.Bytes()
	}
	if raw, ok := obj[f.Tools]; ok && !isNull(raw) {
		tools, err := d.tools(line, f.Tools, raw)
		if err != nil {
			return t, err
		}
		t.Tools = tools
	}
	code, err := d.codeSpec(line, obj)
	t.Code = code
	return t, err
}

// codeSpec reads a code task's keys; nil when the record has no tests.
func (d *decoder) codeSpec(line int, obj map[string]json.RawMessage) (*CodeSpec, error) {
	var vals [4]string
	for i, k := range codeKeys {
		raw, ok := obj[k]
		if !ok || isNull(raw) {
			continue
		}
		if err := json.Unmarshal(raw, &vals[i]); err != nil {
			return nil, d.errf(line, k, "want a string, got %s", abbrev(raw))
		}
	}
	c := &CodeSpec{Tests: vals[0], EntryPoint: vals[1], Prefix: vals[2], Language: vals[3]}
	if strings.TrimSpace(c.Tests) == "" {
		if *c != (CodeSpec{Tests: c.Tests}) {
			return nil, d.errf(line, "tests", "missing: entry_point, code_prefix and language describe a code task's tests")
		}
		return nil, nil
	}
	return c, nil
}

// humanEvalTask reads one HumanEval problem.
func (d *decoder) humanEvalTask(line int, obj map[string]json.RawMessage) (Task, error) {
	t := Task{Origin: Origin{File: d.file, Line: line}, DataSource: d.opts.DataSource}
	if t.DataSource == "" {
		t.DataSource = "openai/openai_humaneval"
	}
	var p struct{ TaskID, Prompt, CanonicalSolution, Test, EntryPoint string }
	for _, f := range []struct {
		key string
		dst *string
	}{{"task_id", &p.TaskID}, {"prompt", &p.Prompt}, {"canonical_solution", &p.CanonicalSolution}, {"test", &p.Test}, {"entry_point", &p.EntryPoint}} {
		raw := obj[f.key]
		if err := json.Unmarshal(raw, f.dst); err != nil || (*f.dst == "" && f.key != "canonical_solution") {
			return t, d.errf(line, f.key, "want a non-empty string, got %s", abbrev(raw))
		}
	}
	t.ID = p.TaskID
	t.Messages = []Message{{Role: "user", Content: HumanEvalInstruction + "\n\n```python\n" + p.Prompt + "```"}}
	if d.opts.SystemPrompt != "" {
		t.Messages = append([]Message{{Role: "system", Content: d.opts.SystemPrompt}}, t.Messages...)
	}
	t.Code = &CodeSpec{Tests: p.Test, EntryPoint: p.EntryPoint, Prefix: p.Prompt, Language: "python"}
	if p.CanonicalSolution != "" {
		t.Metadata = marshalPlain(map[string]string{"canonical_solution": p.CanonicalSolution})
	}
	return t, nil
}

var validRoles = map[string]bool{"system": true, "user": true, "assistant": true, "tool": true, "developer": true}

// messages decodes a list of OpenAI chat messages: role and content, an
// assistant message's tool_calls (content may then be null or absent), a
// tool result's tool_call_id (naming a call of an earlier assistant message)
// and optional name.
func (d *decoder) messages(line int, field string, raw json.RawMessage) ([]Message, error) {
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, d.errf(line, field, "want a list of {role, content} objects, got %s", abbrev(raw))
	}
	if len(items) == 0 {
		return nil, d.errf(line, field, "empty message list")
	}
	msgs := make([]Message, len(items))
	calls := map[string]bool{} // the ids of the calls made so far
	for i, it := range items {
		name := fmt.Sprintf("%s[%d]", field, i)
		if it == nil {
			return nil, d.errf(line, name, "want a {role, content} object, got null")
		}
		if err := d.unknownKeys(line, name+".", it, messageKeys); err != nil {
			return nil, err
		}
		m := &msgs[i]
		if err := json.Unmarshal(it["role"], &m.Role); err != nil || !validRoles[m.Role] {
			return nil, d.errf(line, name+".role", "want one of system, user, assistant, tool, developer; got %s", abbrev(it["role"]))
		}
		if raw, ok := it["tool_calls"]; ok && !isNull(raw) {
			if m.Role != "assistant" {
				return nil, d.errf(line, name+".tool_calls", "only an assistant message calls tools (this one is %s)", m.Role)
			}
			tcs, err := d.toolCalls(line, name+".tool_calls", raw)
			if err != nil {
				return nil, err
			}
			for _, tc := range tcs {
				calls[tc.ID] = true
			}
			m.ToolCalls = tcs
		}
		if raw := it["content"]; !(isNull(raw) && len(m.ToolCalls) > 0) {
			if err := json.Unmarshal(raw, &m.Content); err != nil || isNull(raw) {
				return nil, d.errf(line, name+".content", "want a string (null only on an assistant message with tool_calls), got %s", abbrev(raw))
			}
		}
		if raw, ok := it["name"]; ok && !isNull(raw) {
			if err := json.Unmarshal(raw, &m.Name); err != nil {
				return nil, d.errf(line, name+".name", "want a string, got %s", abbrev(raw))
			}
		}
		raw, ok := it["tool_call_id"]
		switch {
		case m.Role == "tool":
			if err := json.Unmarshal(raw, &m.ToolCallID); err != nil || m.ToolCallID == "" {
				return nil, d.errf(line, name+".tool_call_id", "a tool message needs the id of the call it answers, got %s", abbrev(raw))
			}
			if !calls[m.ToolCallID] {
				return nil, d.errf(line, name+".tool_call_id", "%q names no tool call of an earlier assistant message", m.ToolCallID)
			}
		case ok && !isNull(raw):
			return nil, d.errf(line, name+".tool_call_id", "only a tool message answers a call (this one is %s)", m.Role)
		}
	}
	return msgs, nil
}

// toolCalls decodes an assistant message's tool_calls: OpenAI's {id, type
// "function", function {name, arguments}} with arguments as JSON text; an
// arguments object (some recorders write one) is kept as the JSON text a chat
// template writes for it (tokenizer.PyJSON), and type defaults to function.
func (d *decoder) toolCalls(line int, field string, raw json.RawMessage) ([]ToolCall, error) {
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, d.errf(line, field, "want a list of {id, type, function} objects, got %s", abbrev(raw))
	}
	out := make([]ToolCall, len(items))
	seen := map[string]bool{}
	for i, it := range items {
		name := fmt.Sprintf("%s[%d]", field, i)
		if it == nil {
			return nil, d.errf(line, name, "want an {id, type, function} object, got null")
		}
		if err := d.unknownKeys(line, name+".", it, []string{"id", "type", "function", "index"}); err != nil {
			return nil, err
		}
		tc := &out[i]
		if err := json.Unmarshal(it["id"], &tc.ID); err != nil || tc.ID == "" {
			return nil, d.errf(line, name+".id", "want a non-empty string, got %s", abbrev(it["id"]))
		}
		if seen[tc.ID] {
			return nil, d.errf(line, name+".id", "%q is the id of an earlier call of the same message", tc.ID)
		}
		seen[tc.ID] = true
		tc.Type = "function"
		if raw, ok := it["type"]; ok && !isNull(raw) {
			if err := json.Unmarshal(raw, &tc.Type); err != nil || tc.Type != "function" {
				return nil, d.errf(line, name+".type", "want \"function\", got %s", abbrev(raw))
			}
		}
		var fn map[string]json.RawMessage
		if err := json.Unmarshal(it["function"], &fn); err != nil || fn == nil {
			return nil, d.errf(line, name+".function", "want a {name, arguments} object, got %s", abbrev(it["function"]))
		}
		if err := d.unknownKeys(line, name+".function.", fn, []string{"name", "arguments"}); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(fn["name"], &tc.Function.Name); err != nil || tc.Function.Name == "" {
			return nil, d.errf(line, name+".function.name", "want a non-empty string, got %s", abbrev(fn["name"]))
		}
		args := fn["arguments"]
		switch {
		case isNull(args):
			return nil, d.errf(line, name+".function.arguments", "missing (want the arguments as JSON text, \"{}\" for none)")
		case args[0] == '"':
			if err := json.Unmarshal(args, &tc.Function.Arguments); err != nil {
				return nil, d.errf(line, name+".function.arguments", "%v", err)
			}
		case args[0] == '{':
			s, err := tokenizer.PyJSON(args)
			if err != nil {
				return nil, d.errf(line, name+".function.arguments", "%v", err)
			}
			tc.Function.Arguments = s
		default:
			return nil, d.errf(line, name+".function.arguments", "want JSON text in a string (or an object), got %s", abbrev(args))
		}
	}
	return out, nil
}

// tools decodes a task's tools: a JSON array of OpenAI function schemas
// ({"type": "function", "function": {"name", ...}}), kept as compact JSON in
// the order written.
func (d *decoder) tools(line int, field string, raw json.RawMessage) (json.RawMessage, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, d.errf(line, field, "want a JSON array of tool schemas, got %s", abbrev(raw))
	}
	for i, it := range items {
		name := fmt.Sprintf("%s[%d]", field, i)
		var tool struct {
			Type     *string         `json:"type"`
			Function json.RawMessage `json:"function"`
		}
		if len(it) == 0 || it[0] != '{' || json.Unmarshal(it, &tool) != nil {
			return nil, d.errf(line, name, "want a {type, function} object, got %s", abbrev(it))
		}
		if tool.Type != nil && *tool.Type != "function" {
			return nil, d.errf(line, name+".type", "want \"function\", got %q", *tool.Type)
		}
		var fn struct {
			Name *string `json:"name"`
		}
		if json.Unmarshal(tool.Function, &fn) != nil || len(tool.Function) == 0 || tool.Function[0] != '{' {
			return nil, d.errf(line, name+".function", "want a {name, description, parameters} object, got %s", abbrev(tool.Function))
		}
		if fn.Name == nil || *fn.Name == "" {
			return nil, d.errf(line, name+".function.name", "want a non-empty string")
		}
	}
	if len(items) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, d.errf(line, field, "%v", err)
	}
	return buf.Bytes(), nil
}

// responseKeys are the keys of a response object.
var responseKeys = []string{"text", "content", "model", "finish_reason", "reasoning", "reasoning_content", "usage", "metadata", "error", "reward"}

var messageKeys = []string{"role", "content", "tool_calls", "tool_call_id", "name"}

// responses decodes recorded responses: strings, or objects with text (or
// content), model, finish_reason, usage, reasoning, metadata and reward.
func (d *decoder) responses(line int, field string, raw json.RawMessage) ([]Sample, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, d.errf(line, field, "want a list of responses, got %s", abbrev(raw))
	}
	if len(items) == 0 {
		return nil, d.errf(line, field, "empty list: a group needs at least one response")
	}
	out := make([]Sample, len(items))
	for i, it := range items {
		name := fmt.Sprintf("%s[%d]", field, i)
		out[i].Index = i
		var text string
		if err := json.Unmarshal(it, &text); err == nil {
			out[i].Text = text
			continue
		}
		var r struct {
			Text             *string `json:"text"`
			Content          *string `json:"content"`
			Model            string  `json:"model"`
			FinishReason     string  `json:"finish_reason"`
			Reasoning        string  `json:"reasoning"`
			ReasoningContent string  `json:"reasoning_content"`
			Usage            *struct {
				PromptTokens     *int `json:"prompt_tokens"`
				CompletionTokens *int `json:"completion_tokens"`
			} `json:"usage"`
			Metadata json.RawMessage `json:"metadata"`
			Error    string          `json:"error"`
			Reward   json.RawMessage `json:"reward"`
		}
		if err := json.Unmarshal(it, &r); err != nil {
			return nil, d.errf(line, name, "want a string or an object with \"text\", got %s", abbrev(it))
		}
		if d.opts.ExtraFields == ExtraFieldsError {
			var keys map[string]json.RawMessage
			json.Unmarshal(it, &keys) // it decoded into a struct: it is an object
			if err := d.unknownKeys(line, name+".", keys, responseKeys); err != nil {
				return nil, err
			}
		}
		if !isNull(r.Reward) {
			v, err := d.reward(line, name+".reward", r.Reward)
			if err != nil {
				return nil, err
			}
			out[i].RecordedReward = &v
		}
		switch {
		case r.Text != nil:
			out[i].Text = *r.Text
		case r.Content != nil:
			out[i].Text = *r.Content
		case r.Error != "":
		default:
			return nil, d.errf(line, name+".text", "missing")
		}
		out[i].Model, out[i].FinishReason, out[i].Err = r.Model, r.FinishReason, r.Error
		out[i].Reasoning = r.Reasoning
		if out[i].Reasoning == "" {
			out[i].Reasoning = r.ReasoningContent
		}
		if r.Usage != nil && r.Usage.PromptTokens != nil && r.Usage.CompletionTokens != nil {
			out[i].Usage = &Usage{PromptTokens: *r.Usage.PromptTokens, CompletionTokens: *r.Usage.CompletionTokens}
		}
		if !isNull(r.Metadata) {
			var buf bytes.Buffer
			if err := json.Compact(&buf, r.Metadata); err != nil {
				return nil, d.errf(line, name+".metadata", "%v", err)
			}
			out[i].Metadata = buf.Bytes()
		}
	}
	return out, nil
}

// reward decodes a recorded reward: a finite JSON number. A number too
// large for float64 is infinite, and rejected like NaN.
func (d *decoder) reward(line int, field string, raw json.RawMessage) (float64, error) {
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return 0, d.errf(line, field, "want a number, got %s", abbrev(raw))
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, d.errf(line, field, "not a finite number: %s", abbrev(raw))
	}
	if err != nil {
		return 0, d.errf(line, field, "want a number, got %s", abbrev(raw))
	}
	return v, nil
}

// extraFields applies ExtraFieldsError to the record's own keys.
func (d *decoder) extraFields(line int, obj map[string]json.RawMessage, recorded bool) error {
	if d.opts.ExtraFields != ExtraFieldsError {
		return nil
	}
	var known []string
	if d.opts.Layout == LayoutGSM8KSolutions {
		// The models' solutions are part of the layout even when it is read
		// as tasks.
		known = append([]string{"question", "ground_truth"}, gsm8kModels...)
	} else if d.opts.Layout == LayoutHumanEval {
		known = []string{"task_id", "prompt", "canonical_solution", "test", "entry_point"}
	} else {
		f := d.fields
		known = append([]string{f.ID, f.Prompt, f.Messages, f.Reference, f.DataSource, f.Metadata, f.Tools}, codeKeys...)
		if recorded {
			known = append(known, f.Responses)
		}
	}
	return d.unknownKeys(line, "", obj, known)
}

// unknownKeys reports, under ExtraFieldsError, the first key of obj (in
// sorted order, so that the error does not depend on map order) that is not
// in known.
func (d *decoder) unknownKeys(line int, prefix string, obj map[string]json.RawMessage, known []string) error {
	if d.opts.ExtraFields != ExtraFieldsError {
		return nil
	}
	var unknown []string
	for k := range obj {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return d.errf(line, prefix+unknown[0], "unknown field (source.extra_fields is error; known fields here: %s)", strings.Join(known, ", "))
}

// gsm8kModels is the order of the four solutions in example_model_solutions.jsonl.
var gsm8kModels = []string{"6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"}

func (d *decoder) gsm8kTask(line int, obj map[string]json.RawMessage) (Task, error) {
	t := Task{Origin: Origin{File: d.file, Line: line}, DataSource: d.opts.DataSource}
	if t.DataSource == "" {
		t.DataSource = "openai/gsm8k"
	}
	t.ID = fmt.Sprintf("gsm8k-test-%04d", line-1)
	var q string
	if err := json.Unmarshal(obj["question"], &q); err != nil || q == "" {
		return t, d.errf(line, "question", "want a non-empty string, got %s", abbrev(obj["question"]))
	}
	t.Messages = []Message{{Role: "user", Content: q}}
	if d.opts.SystemPrompt != "" {
		t.Messages = append([]Message{{Role: "system", Content: d.opts.SystemPrompt}}, t.Messages...)
	}
	var gt string
	if err := json.Unmarshal(obj["ground_truth"], &gt); err != nil {
		return t, d.errf(line, "ground_truth", "want a string, got %s", abbrev(obj["ground_truth"]))
	}
	// The reference solution ends with "A: <answer>"; the answer is the task's
	// reference, the whole solution goes to metadata.
	idx := strings.LastIndex(gt, "\nA:")
	if idx < 0 {
		return t, d.errf(line, "ground_truth", "no final \"A: <answer>\" line")
	}
	t.Reference = strings.TrimSpace(gt[idx+3:])
	t.Metadata = marshalPlain(map[string]string{"reference_solution": gt})
	return t, nil
}

func (d *decoder) gsm8kSamples(line int, obj map[string]json.RawMessage) ([]Sample, error) {
	out := make([]Sample, len(gsm8kModels))
	for i, m := range gsm8kModels {
		var r struct {
			IsCorrect *bool   `json:"is_correct"`
			Solution  *string `json:"solution"`
		}
		if err := json.Unmarshal(obj[m], &r); err != nil {
			return nil, d.errf(line, m, "want {is_correct, solution}, got %s", abbrev(obj[m]))
		}
		if r.Solution == nil {
			return nil, d.errf(line, m+".solution", "missing")
		}
		if r.IsCorrect == nil {
			return nil, d.errf(line, m+".is_correct", "missing")
		}
		out[i] = Sample{Index: i, Model: m, Text: *r.Solution, Metadata: marshalPlain(map[string]bool{"is_correct": *r.IsCorrect})}
	}
	return out, nil
}

// marshalPlain encodes v without escaping <, > and &, so that metadata
// reads as the text it holds.
func marshalPlain(v any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return bytes.TrimRight(b.Bytes(), "\n")
}

// abbrev shortens a raw JSON value for an error message.
func abbrev(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	s := string(raw)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// TaskFile is a TaskSource over a JSONL or Parquet file, or a directory of
// them. Its methods are not safe for concurrent use, except Skipped and
// SkippedTotal.
type TaskFile struct{ in *stream }

// OpenTasks opens a task file or directory.
func OpenTasks(opts InputOptions) (*TaskFile, error) {
	in, err := openStream(opts, false)
	if err != nil {
		return nil, err
	}
	return &TaskFile{in: in}, nil
}

// Next implements TaskSource. After an error other than a cancelled ctx,
// every later call returns the same error.
func (s *TaskFile) Next(ctx context.Context) (Task, error) {
	task, _, err := s.in.next(ctx)
	return task, err
}

// Skipped returns the records dropped under OnErrorSkip so far, in input
// order: the first MaxSkippedRecords of them.
func (s *TaskFile) Skipped() []SkippedRecord { return s.in.skips.list() }

// SkippedTotal is the number of records dropped so far, including those
// beyond MaxSkippedRecords.
func (s *TaskFile) SkippedTotal() int64 { return s.in.skips.count() }

// Close implements TaskSource.
func (s *TaskFile) Close() error { return s.in.close() }

// RecordedFile is a Producer over a file (or directory) of recorded
// rollouts: each record is a task and its responses, which become one group
// without any generation. Its methods are not safe for concurrent use,
// except Skipped and SkippedTotal.
type RecordedFile struct{ in *stream }

// OpenRecorded opens a recorded-rollouts file or directory.
func OpenRecorded(opts InputOptions) (*RecordedFile, error) {
	in, err := openStream(opts, true)
	if err != nil {
		return nil, err
	}
	return &RecordedFile{in: in}, nil
}

// Next returns the next recorded group, or io.EOF. After an error other
// than a cancelled ctx, every later call returns the same error.
func (s *RecordedFile) Next(ctx context.Context) (*Group, error) {
	task, samples, err := s.in.next(ctx)
	if err != nil {
		return nil, err
	}
	return &Group{Task: task, Samples: samples}, nil
}

// Produce implements Producer; groups are emitted in input order, with Seq
// counting from 0 at the first group after the resumed prefix.
func (s *RecordedFile) Produce(ctx context.Context, w *Window, out chan<- *Group) error {
	return ReplayProducer{Source: s}.Produce(ctx, w, out)
}

// Skipped returns the records dropped under OnErrorSkip so far, in input
// order: the first MaxSkippedRecords of them.
func (s *RecordedFile) Skipped() []SkippedRecord { return s.in.skips.list() }

// SkippedTotal is the number of records dropped so far, including those
// beyond MaxSkippedRecords.
func (s *RecordedFile) SkippedTotal() int64 { return s.in.skips.count() }

// Close closes the file.
func (s *RecordedFile) Close() error { return s.in.close() }
