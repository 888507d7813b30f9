package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// The bundled HumanEval file, gzip-compressed, reads as 164 code tasks in
// the humaneval layout: the prompt shown in a code block after the
// instruction, the check function as tests, the prompt as the code prefix.
func TestHumanEvalLayout(t *testing.T) {
	src, err := OpenTasks(InputOptions{Path: "../rewards/codegrade/testdata/humaneval/HumanEval.jsonl.gz", Layout: LayoutHumanEval, ExtraFields: ExtraFieldsError})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	n := 0
	for ; ; n++ {
		task, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		c := task.Code
		if task.ID != fmt.Sprintf("HumanEval/%d", n) || c == nil || task.DataSource != "openai/openai_humaneval" ||
			!strings.Contains(c.Tests, "def check(candidate)") || c.EntryPoint == "" || c.Language != "python" ||
			len(task.Messages) != 1 || !strings.HasPrefix(task.Messages[0].Content, HumanEvalInstruction) ||
			!strings.Contains(task.Messages[0].Content, c.Prefix) || !strings.Contains(c.Prefix, "def "+c.EntryPoint) {
			t.Fatalf("task %d: %+v", n, task)
		}
	}
	if n != 164 {
		t.Errorf("%d tasks, want 164", n)
	}
}

// A redraft record's code keys: tests make a code task; the other keys
// without tests are refused by name.
func TestCodeTaskRecord(t *testing.T) {
	for _, tc := range []struct {
		line, err string
		code      *CodeSpec
	}{
		{`{"id": "a", "prompt": "p"}`, "", nil},
		{`{"id": "a", "prompt": "p", "tests": "assert f(1) == 2", "entry_point": "f"}`, "", &CodeSpec{Tests: "assert f(1) == 2", EntryPoint: "f"}},
		{`{"id": "a", "prompt": "p", "tests": "assert 1", "code_prefix": "import os\n", "language": "python"}`, "", &CodeSpec{Tests: "assert 1", Prefix: "import os\n", Language: "python"}},
		{`{"id": "a", "prompt": "p", "entry_point": "f"}`, `field "tests": missing`, nil},
		{`{"id": "a", "prompt": "p", "tests": 3}`, `field "tests": want a string`, nil},
	} {
		d := newDecoder(InputOptions{Path: "in.jsonl"})
		task, _, err := d.decode("in.jsonl", 1, []byte(tc.line), false)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "in.jsonl:1") {
				t.Errorf("%s: error %v, want %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.line, err)
			continue
		}
		if (task.Code == nil) != (tc.code == nil) || (task.Code != nil && *task.Code != *tc.code) {
			t.Errorf("%s: code %+v, want %+v", tc.line, task.Code, tc.code)
		}
	}
}
