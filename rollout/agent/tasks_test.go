package agent

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/rollout"
)

func TestParseTask(t *testing.T) {
	for _, tt := range []struct {
		line, env string
		id, err   string
	}{
		{line: `{"task": "boil", "variation": 3}`, env: "scienceworld", id: "scienceworld/boil/3/0"},
		{line: `{"id": "b3", "task": "boil", "variation": 3, "seed": 7, "options": {"step_limit": 20}}`, env: "scienceworld", id: "b3"},
		{line: `{"id": 12, "env": "scienceworld", "task": "boil"}`, env: "", id: "12"},
		{line: `{"task": "boil", "variation": -1}`, env: "scienceworld", err: `t.jsonl:4: field "variation": want an integer from 0 to 2147483647, got -1`},
		{line: `{"task": "boil", "variation": 1.5}`, env: "scienceworld", err: `field "variation": want an integer`},
		{line: `{"variation": 1}`, env: "scienceworld", err: `t.jsonl:4: field "task": missing`},
		{line: `{"task": "boil"}`, env: "", err: `field "env": missing, and environment.env names none`},
		{line: `{"task": "boil", "env": "alfworld"}`, env: "scienceworld", err: `field "env": "alfworld", but the run's environment is "scienceworld"`},
		{line: `{"task": "boil", "level": 2}`, env: "x", err: `field "level": unknown key`},
		{line: `{"task": "boil", "options": [1]}`, env: "x", err: `field "options": want a JSON object, got [1]`},
		{line: `{"task": "boil", "id": ""}`, env: "x", err: `field "id": want a non-empty string or number`},
		{line: `[1, 2]`, env: "x", err: `t.jsonl:4: not a JSON object`},
		{line: `{"task": 5}`, env: "x", err: `field "task": want a string, got 5`},
	} {
		rec, err := ParseTask("t.jsonl", 4, []byte(tt.line), tt.env)
		switch {
		case tt.err != "":
			var ie *rollout.InputError
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.As(err, &ie) {
				t.Errorf("%s: err %v, want %q", tt.line, err, tt.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.line, err)
		case rec.ID != tt.id:
			t.Errorf("%s: id %q, want %q", tt.line, rec.ID, tt.id)
		}
	}
}

func TestTaskFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tasks.jsonl")
	os.WriteFile(path, []byte(`{"task": "count", "variation": 0}
{"task": "count", "variation": 1}

{"task": "count", "variation": 2}
{"task": "count", "variation": 1}
`), 0o644)
	f, err := OpenTasks(TasksOptions{Path: path, Env: "counting", Skip: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	var ids []string
	for {
		rec, err := f.Next(ctx)
		if errors.Is(err, io.EOF) {
			t.Fatal("the duplicate was not found")
		}
		if err != nil {
			if !strings.Contains(err.Error(), `tasks.jsonl:5: field "id": task "counting/count/1/0" is on line 2 already`) {
				t.Fatalf("err %v", err)
			}
			break
		}
		ids = append(ids, rec.ID)
	}
	if strings.Join(ids, ",") != "counting/count/1/0,counting/count/2/0" {
		t.Fatalf("ids %v (the first skipped)", ids)
	}
}

func FuzzParseTask(f *testing.F) {
	f.Add([]byte(`{"id": "b3", "task": "boil", "variation": 3, "seed": 7, "options": {"step_limit": 20}}`))
	f.Add([]byte(`{"task": "boil", "variation": 1e300}`))
	f.Add([]byte(`{"task": "boil", "options": null, "id": null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		rec, err := ParseTask("f.jsonl", 1, raw, "scienceworld")
		if err != nil {
			var ie *rollout.InputError
			if !errors.As(err, &ie) || ie.Line != 1 {
				t.Fatalf("error %v is not an input error at line 1", err)
			}
			return
		}
		if rec.ID == "" || rec.Task.Name == "" || rec.Task.Variation < 0 || rec.Task.Seed < 0 || rec.Task.Env != "scienceworld" {
			t.Fatalf("accepted %q as %+v", raw, rec)
		}
	})
}
