package rollout

import (
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTaskFileDecodes(t *testing.T) {
	p := writeFile(t, "tasks.jsonl", `{"id": 7, "prompt": "What is 2+2?", "reference": 4, "data_source": "toy", "metadata": {"level": 1}}

{"id": "b", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "3+3?"}], "reference": "6", "extra": true}
`)
	src, err := OpenTasks(InputOptions{Path: p, DataSource: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	a, err := src.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != "7" || a.Reference != "4" || a.DataSource != "toy" || len(a.Messages) != 1 || a.Messages[0].Role != "user" || string(a.Metadata) != `{"level":1}` || a.Origin.Line != 1 {
		t.Errorf("task a = %+v", a)
	}
	b, err := src.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b.ID != "b" || b.DataSource != "default" || len(b.Messages) != 2 || b.Origin.Line != 3 {
		t.Errorf("task b = %+v", b)
	}
	if _, err := src.Next(ctx); !errors.Is(err, io.EOF) {
		t.Errorf("want io.EOF, got %v", err)
	}
}

func TestTaskFileFieldMapping(t *testing.T) {
	p := writeFile(t, "gsm8k.jsonl", `{"question": "Q?", "answer": "work\n#### 18"}`+"\n")
	src, err := OpenTasks(InputOptions{Path: p, GenerateIDs: true, SystemPrompt: "sys",
		Fields: Fields{Prompt: "question", Reference: "answer"}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	task, err := src.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if task.ID != "gsm8k.jsonl:1" || task.Reference != "work\n#### 18" || task.Messages[0].Content != "sys" || task.Messages[1].Content != "Q?" {
		t.Errorf("task = %+v", task)
	}
}

// Bad input must name the file, the line and the field.
func TestInputErrors(t *testing.T) {
	tests := []struct {
		name, content string
		recorded      bool
		line          int
		field, msg    string
	}{
		{"malformed json", `{"id": "a", "prompt": "x"}` + "\n" + `{"id": "b", "prompt": ` + "\n", false, 2, "", "malformed JSON"},
		{"missing id", `{"prompt": "x"}`, false, 1, "id", "missing"},
		{"missing prompt", `{"id": "a"}`, false, 1, "prompt", "missing"},
		{"prompt not a string", `{"id": "a", "prompt": 3}`, false, 1, "prompt", "want a string"},
		{"bad role", `{"id": "a", "messages": [{"role": "robot", "content": "x"}]}`, false, 1, "messages[0].role", "want one of"},
		{"content not a string", `{"id": "a", "messages": [{"role": "user", "content": [1]}]}`, false, 1, "messages[0].content", "want a string"},
		{"duplicate id", `{"id": "a", "prompt": "x"}` + "\n" + `{"id": "a", "prompt": "y"}`, false, 2, "id", "duplicate task id"},
		{"not an object", `[1, 2]`, false, 1, "", "malformed JSON"},
		{"invalid utf8", "{\"id\": \"a\", \"prompt\": \"\xff\"}", false, 1, "prompt", "invalid UTF-8"},
		{"metadata not an object", `{"id": "a", "prompt": "x", "metadata": 5}`, false, 1, "metadata", "JSON object"},
		{"missing responses", `{"id": "a", "prompt": "x"}`, true, 1, "responses", "missing"},
		{"empty responses", `{"id": "a", "prompt": "x", "responses": []}`, true, 1, "responses", "empty"},
		{"response without text", `{"id": "a", "prompt": "x", "responses": ["ok", {"model": "m"}]}`, true, 1, "responses[1].text", "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, "in.jsonl", tt.content)
			var err error
			if tt.recorded {
				var src *RecordedFile
				if src, err = OpenRecorded(InputOptions{Path: p}); err == nil {
					for err == nil {
						_, err = src.Next(context.Background())
					}
					src.Close()
				}
			} else {
				var src *TaskFile
				if src, err = OpenTasks(InputOptions{Path: p}); err == nil {
					for err == nil {
						_, err = src.Next(context.Background())
					}
					src.Close()
				}
			}
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("want *InputError, got %v", err)
			}
			if ie.File != p || ie.Line != tt.line || ie.Field != tt.field || !strings.Contains(ie.Error(), tt.msg) {
				t.Errorf("got %q (line %d field %q), want line %d field %q containing %q", ie.Error(), ie.Line, ie.Field, tt.line, tt.field, tt.msg)
			}
			if !strings.HasPrefix(ie.Error(), p+":") {
				t.Errorf("message %q does not start with the file name", ie.Error())
			}
		})
	}
}

func TestLineTooLong(t *testing.T) {
	p := writeFile(t, "big.jsonl", `{"id": "a", "prompt": "`+strings.Repeat("x", 200)+`"}`)
	src, err := OpenTasks(InputOptions{Path: p, MaxLineBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, err = src.Next(context.Background())
	var ie *InputError
	if !errors.As(err, &ie) || ie.Line != 1 || !strings.Contains(err.Error(), "longer than the limit") {
		t.Fatalf("got %v", err)
	}
}

func TestMissingFile(t *testing.T) {
	_, err := OpenTasks(InputOptions{Path: "/nonexistent/tasks.jsonl"})
	var ie *InputError
	if !errors.As(err, &ie) || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "/nonexistent/tasks.jsonl") {
		t.Fatalf("got %v", err)
	}
}

func TestRecordedResponses(t *testing.T) {
	p := writeFile(t, "r.jsonl", `{"id": "a", "prompt": "x", "reference": "1", "responses": ["plain", {"text": "t", "model": "m", "finish_reason": "length", "usage": {"prompt_tokens": 3, "completion_tokens": 5}, "reasoning_content": "hmm", "metadata": {"k": 1}}, {"error": "timeout"}]}`)
	src, err := OpenRecorded(InputOptions{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	g, err := src.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := g.Samples
	if len(s) != 3 || s[0].Text != "plain" || s[1].Model != "m" || s[1].FinishReason != "length" ||
		s[1].Usage == nil || s[1].Usage.CompletionTokens != 5 || s[1].Reasoning != "hmm" || string(s[1].Metadata) != `{"k":1}` ||
		s[2].Err != "timeout" || s[2].Index != 2 {
		t.Errorf("samples = %+v", s)
	}
}

func TestGSM8KLayout(t *testing.T) {
	src, err := OpenRecorded(InputOptions{Path: "../testdata/gsm8k/example_model_solutions.jsonl", Layout: LayoutGSM8KSolutions})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	n := 0
	for {
		g, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 && (g.Task.ID != "gsm8k-test-0000" || g.Task.Reference != "18" || g.Samples[3].Model != "175b_verification" || string(g.Samples[3].Metadata) != `{"is_correct":true}`) {
			t.Errorf("first group = %+v", g)
		}
		if len(g.Samples) != 4 {
			t.Fatalf("group %d has %d samples", n, len(g.Samples))
		}
		n++
	}
	if n != 1319 {
		t.Errorf("read %d groups, want 1319", n)
	}
}

func TestDeriveSeed(t *testing.T) {
	a := DeriveSeed(1, "task", 0, 0)
	if a != DeriveSeed(1, "task", 0, 0) {
		t.Fatal("not deterministic")
	}
	seen := map[int64]bool{}
	for _, s := range []int64{DeriveSeed(1, "task", 0, 0), DeriveSeed(2, "task", 0, 0), DeriveSeed(1, "tas", 0, 0),
		DeriveSeed(1, "task", 1, 0), DeriveSeed(1, "task", 0, 1), DeriveSeed(1, "ab", 1, 0), DeriveSeed(1, "a", 11, 0)} {
		if s < 0 || s > 0x7fffffff {
			t.Errorf("seed %d out of 31-bit range", s)
		}
		if seen[s] {
			t.Errorf("seed collision %d", s)
		}
		seen[s] = true
	}
}

// FuzzDecodeRecord: no input line panics the decoder, and every error is an
// *InputError that names the file.
func FuzzDecodeRecord(f *testing.F) {
	for _, s := range []string{
		`{"id": "a", "prompt": "x", "reference": 4, "responses": ["a", {"text": "b"}]}`,
		`{"id": 1, "messages": [{"role": "user", "content": "hi"}], "metadata": {"a": [1]}}`,
		`{"question": "q", "ground_truth": "x\nA: 5", "6b_finetuning": {"is_correct": true, "solution": "s"}}`,
		`{"id": null}`, `[]`, `"x"`, `{`, "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		for _, layout := range []Layout{LayoutRedraft, LayoutGSM8KSolutions} {
			for _, extra := range []ExtraFields{ExtraFieldsIgnore, ExtraFieldsError} {
				d := newDecoder(InputOptions{Path: "f.jsonl", Layout: layout, ExtraFields: extra})
				for _, recorded := range []bool{false, true} {
					task, samples, err := d.decode("f.jsonl", 1, []byte(line), recorded)
					var ie *InputError
					if err != nil && (!errors.As(err, &ie) || ie.File != "f.jsonl") {
						t.Fatalf("error is not a located InputError: %v", err)
					}
					if err == nil && recorded && len(samples) == 0 {
						t.Fatalf("group of task %q has no samples", task.ID)
					}
					for _, s := range samples {
						if r := s.RecordedReward; r != nil && (math.IsNaN(*r) || math.IsInf(*r, 0)) {
							t.Fatalf("non-finite reward %v accepted", *r)
						}
					}
				}
			}
		}
	})
}
