package rollout

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
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
)

// Fields maps redraft's record keys to the keys a user's files use.
type Fields struct {
	ID         string `yaml:"id" json:"id"`
	Prompt     string `yaml:"prompt" json:"prompt"`
	Messages   string `yaml:"messages" json:"messages"`
	Reference  string `yaml:"reference" json:"reference"`
	DataSource string `yaml:"data_source" json:"data_source"`
	Metadata   string `yaml:"metadata" json:"metadata"`
	Responses  string `yaml:"responses" json:"responses"`
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
	return f
}

// InputOptions says how to read a task or rollout file.
type InputOptions struct {
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
	// MaxLineBytes bounds one JSONL line (default 64 MiB).
	MaxLineBytes int
}

// recordReader yields one JSON object per input record.
type recordReader interface {
	next() (line int, raw []byte, err error) // io.EOF at the end
	close() error
}

func openRecords(opts InputOptions) (recordReader, error) {
	format := opts.Format
	if format == "" {
		switch strings.ToLower(filepath.Ext(opts.Path)) {
		case ".parquet", ".pq":
			format = "parquet"
		default:
			format = "jsonl"
		}
	}
	switch format {
	case "jsonl":
		f, err := os.Open(opts.Path)
		if err != nil {
			return nil, &InputError{File: opts.Path, Err: err}
		}
		max := opts.MaxLineBytes
		if max <= 0 {
			max = 64 << 20
		}
		sc := bufio.NewScanner(f)
		// The scanner's limit is the larger of max and the buffer's capacity.
		sc.Buffer(make([]byte, 0, min(64<<10, max)), max)
		return &jsonlReader{path: opts.Path, f: f, sc: sc, max: max}, nil
	case "parquet":
		return openParquetRecords(opts.Path)
	default:
		return nil, &InputError{File: opts.Path, Field: "format", Err: fmt.Errorf("unknown input format %q (want jsonl or parquet)", format)}
	}
}

type jsonlReader struct {
	path string
	f    *os.File
	sc   *bufio.Scanner
	line int
	max  int
}

func (r *jsonlReader) next() (int, []byte, error) {
	for r.sc.Scan() {
		r.line++
		b := bytes.TrimSpace(r.sc.Bytes())
		if len(b) == 0 {
			continue
		}
		return r.line, b, nil
	}
	if err := r.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return r.line + 1, nil, &InputError{File: r.path, Line: r.line + 1, Err: fmt.Errorf("line longer than the limit of %d bytes", r.max)}
		}
		return r.line, nil, &InputError{File: r.path, Line: r.line + 1, Err: err}
	}
	return r.line, nil, io.EOF
}

func (r *jsonlReader) close() error { return r.f.Close() }

// decoder turns raw records into tasks and groups.
type decoder struct {
	opts   InputOptions
	fields Fields
	seen   map[string]int // task id -> line, to reject duplicates
}

func newDecoder(opts InputOptions) *decoder {
	if opts.Layout == "" {
		opts.Layout = LayoutRedraft
	}
	return &decoder{opts: opts, fields: opts.Fields.withDefaults(), seen: map[string]int{}}
}

func (d *decoder) errf(line int, field, format string, args ...any) error {
	return &InputError{File: d.opts.Path, Line: line, Field: field, Err: fmt.Errorf(format, args...)}
}

func (d *decoder) object(line int, raw []byte) (map[string]json.RawMessage, error) {
	if !utf8.Valid(raw) {
		return nil, d.errf(line, "", "invalid UTF-8")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, d.errf(line, "", "malformed JSON: %v", err)
	}
	if obj == nil {
		return nil, d.errf(line, "", "record is not a JSON object")
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
	if d.opts.Layout == LayoutGSM8KSolutions {
		return d.gsm8kTask(line, obj)
	}
	f := d.fields
	t := Task{Origin: Origin{File: d.opts.Path, Line: line}, DataSource: d.opts.DataSource}
	if raw, ok := obj[f.ID]; ok && !isNull(raw) {
		id, ok := scalarString(raw)
		if !ok || id == "" {
			return t, d.errf(line, f.ID, "want a non-empty string or number, got %s", abbrev(raw))
		}
		t.ID = id
	} else if d.opts.GenerateIDs {
		t.ID = filepath.Base(d.opts.Path) + ":" + strconv.Itoa(line)
	} else {
		return t, d.errf(line, f.ID, "missing (set source.generate_ids to name records by line)")
	}
	if first, dup := d.seen[t.ID]; dup {
		return t, d.errf(line, f.ID, "duplicate task id %q (first on line %d)", t.ID, first)
	}
	d.seen[t.ID] = line

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
	return t, nil
}

var validRoles = map[string]bool{"system": true, "user": true, "assistant": true, "tool": true, "developer": true}

func (d *decoder) messages(line int, field string, raw json.RawMessage) ([]Message, error) {
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, d.errf(line, field, "want a list of {role, content} objects, got %s", abbrev(raw))
	}
	if len(items) == 0 {
		return nil, d.errf(line, field, "empty message list")
	}
	msgs := make([]Message, len(items))
	for i, it := range items {
		name := fmt.Sprintf("%s[%d]", field, i)
		if err := json.Unmarshal(it["role"], &msgs[i].Role); err != nil || !validRoles[msgs[i].Role] {
			return nil, d.errf(line, name+".role", "want one of system, user, assistant, tool, developer; got %s", abbrev(it["role"]))
		}
		if err := json.Unmarshal(it["content"], &msgs[i].Content); err != nil {
			return nil, d.errf(line, name+".content", "want a string, got %s", abbrev(it["content"]))
		}
	}
	return msgs, nil
}

// responses decodes recorded responses: strings, or objects with text (or
// content), model, finish_reason, usage, reasoning and metadata.
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
		}
		if err := json.Unmarshal(it, &r); err != nil {
			return nil, d.errf(line, name, "want a string or an object with \"text\", got %s", abbrev(it))
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

// gsm8kModels is the order of the four solutions in example_model_solutions.jsonl.
var gsm8kModels = []string{"6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"}

func (d *decoder) gsm8kTask(line int, obj map[string]json.RawMessage) (Task, error) {
	t := Task{Origin: Origin{File: d.opts.Path, Line: line}, DataSource: d.opts.DataSource}
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

// TaskFile is a TaskSource over a JSONL or Parquet file.
type TaskFile struct {
	rd  recordReader
	dec *decoder
}

// OpenTasks opens a task file.
func OpenTasks(opts InputOptions) (*TaskFile, error) {
	rd, err := openRecords(opts)
	if err != nil {
		return nil, err
	}
	return &TaskFile{rd: rd, dec: newDecoder(opts)}, nil
}

// Next implements TaskSource.
func (s *TaskFile) Next(ctx context.Context) (Task, error) {
	if err := ctx.Err(); err != nil {
		return Task{}, err
	}
	line, raw, err := s.rd.next()
	if err != nil {
		return Task{}, err
	}
	obj, err := s.dec.object(line, raw)
	if err != nil {
		return Task{}, err
	}
	return s.dec.task(line, obj)
}

// Close implements TaskSource.
func (s *TaskFile) Close() error { return s.rd.close() }

// RecordedFile is a Producer over a file of recorded rollouts: each record is
// a task and its responses, which become one group without any generation.
type RecordedFile struct {
	rd  recordReader
	dec *decoder
}

// OpenRecorded opens a recorded-rollouts file.
func OpenRecorded(opts InputOptions) (*RecordedFile, error) {
	rd, err := openRecords(opts)
	if err != nil {
		return nil, err
	}
	return &RecordedFile{rd: rd, dec: newDecoder(opts)}, nil
}

// Next returns the next recorded group, or io.EOF.
func (s *RecordedFile) Next(ctx context.Context) (*Group, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	line, raw, err := s.rd.next()
	if err != nil {
		return nil, err
	}
	obj, err := s.dec.object(line, raw)
	if err != nil {
		return nil, err
	}
	task, err := s.dec.task(line, obj)
	if err != nil {
		return nil, err
	}
	var samples []Sample
	if s.dec.opts.Layout == LayoutGSM8KSolutions {
		samples, err = s.dec.gsm8kSamples(line, obj)
	} else {
		f := s.dec.fields.Responses
		raw, ok := obj[f]
		if !ok || isNull(raw) {
			return nil, s.dec.errf(line, f, "missing")
		}
		samples, err = s.dec.responses(line, f, raw)
	}
	if err != nil {
		return nil, err
	}
	return &Group{Task: task, Samples: samples}, nil
}

// Produce implements Producer; groups are emitted in input order.
func (s *RecordedFile) Produce(ctx context.Context, w *Window, out chan<- *Group) error {
	for seq := int64(0); ; seq++ {
		if err := w.Acquire(ctx); err != nil {
			return err
		}
		g, err := s.Next(ctx)
		if err != nil {
			w.Release()
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		g.Seq = seq
		select {
		case out <- g:
		case <-ctx.Done():
			w.Release()
			return ctx.Err()
		}
	}
}

// Close closes the file.
func (s *RecordedFile) Close() error { return s.rd.close() }
