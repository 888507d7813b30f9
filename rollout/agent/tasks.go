package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"

	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/env"
)

// TaskRecord is one environment task: a line of a tasks file, {"id"?,
// "env"?, "task", "variation"?, "seed"?, "options"?, "data_source"?}.
type TaskRecord struct {
	// ID names the task in the run (its rows' task_id); env.Task.ID() when
	// the record has none.
	ID         string
	DataSource string
	Task       env.Task
	Origin     rollout.Origin
}

// TasksOptions configures a TaskFile.
type TasksOptions struct {
	// Path is the JSON lines file.
	Path string
	// Env is the environment of records that name none; a record naming
	// another is refused.
	Env string
	// MaxLineBytes bounds a line (default 1 MiB).
	MaxLineBytes int
	// Shard keeps only the tasks whose id falls in it (rollout.ShardOf).
	Shard rollout.Shard
	// Skip is how many of the shard's tasks to skip (a resumed run's).
	Skip int64
}

// TaskFile reads environment tasks. It is not safe for concurrent use.
type TaskFile struct {
	opts TasksOptions
	f    *os.File
	sc   *bufio.Scanner
	line int
	ids  map[string]int
	kept int64
	// skipHash hashes the ids of the tasks skipped (TasksOptions.Skip).
	skipHash uint64
}

// SkippedHash is rollout.TaskIDHash over the ids of the tasks skipped so
// far, in order: a resumed run compares it with the hash it recorded, to
// know the file still starts with the tasks it did.
func (t *TaskFile) SkippedHash() uint64 { return t.skipHash }

// OpenTasks opens a tasks file.
func OpenTasks(o TasksOptions) (*TaskFile, error) {
	f, err := os.Open(o.Path)
	if err != nil {
		return nil, &rollout.InputError{File: o.Path, Err: err}
	}
	max := o.MaxLineBytes
	if max <= 0 {
		max = 1 << 20
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), max)
	return &TaskFile{opts: o, f: f, sc: sc, ids: map[string]int{}}, nil
}

// Seen counts the shard's tasks read so far, the skipped ones included.
func (t *TaskFile) Seen() int64 { return t.kept }

// Close closes the file.
func (t *TaskFile) Close() error { return t.f.Close() }

// Next returns the next task of the shard, io.EOF at the end, or an
// *rollout.InputError naming the file, line and field of a bad record.
// Duplicate ids are found across the whole file (every shard reads it all).
func (t *TaskFile) Next(ctx context.Context) (TaskRecord, error) {
	for {
		if err := ctx.Err(); err != nil {
			return TaskRecord{}, err
		}
		if !t.sc.Scan() {
			if err := t.sc.Err(); err != nil {
				if errors.Is(err, bufio.ErrTooLong) {
					return TaskRecord{}, &rollout.InputError{File: t.opts.Path, Line: t.line + 1, Err: fmt.Errorf("line longer than %d bytes", max(t.opts.MaxLineBytes, 1<<20))}
				}
				return TaskRecord{}, &rollout.InputError{File: t.opts.Path, Line: t.line + 1, Err: err}
			}
			return TaskRecord{}, io.EOF
		}
		t.line++
		raw := bytes.TrimSpace(t.sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		rec, err := ParseTask(t.opts.Path, t.line, raw, t.opts.Env)
		if err != nil {
			return rec, err
		}
		if prev, ok := t.ids[rec.ID]; ok {
			return rec, &rollout.InputError{File: t.opts.Path, Line: t.line, Field: "id", Err: fmt.Errorf("task %q is on line %d already", rec.ID, prev)}
		}
		t.ids[rec.ID] = t.line
		if rollout.ShardOf(rec.ID, t.opts.Shard.Count) != t.opts.Shard.Index {
			continue
		}
		t.kept++
		if t.kept <= t.opts.Skip {
			t.skipHash = rollout.TaskIDHash(t.skipHash, rec.ID)
			continue
		}
		return rec, nil
	}
}

var taskKeys = map[string]bool{"id": true, "env": true, "task": true, "variation": true, "seed": true, "options": true, "data_source": true}

// ParseTask decodes one task record of file at line; defaultEnv is the
// environment of a record that names none. Every error is an
// *rollout.InputError naming the field.
func ParseTask(file string, line int, raw []byte, defaultEnv string) (TaskRecord, error) {
	rec := TaskRecord{Origin: rollout.Origin{File: file, Line: line}}
	bad := func(field, format string, args ...any) (TaskRecord, error) {
		return rec, &rollout.InputError{File: file, Line: line, Field: field, Err: fmt.Errorf(format, args...)}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return bad("", "not a JSON object: %s", firstError(err))
	}
	for k := range obj {
		if !taskKeys[k] {
			return bad(k, "unknown key (a task has id, env, task, variation, seed, options and data_source)")
		}
	}
	str := func(k string) (string, bool, error) {
		v, ok := obj[k]
		if !ok || string(v) == "null" {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", true, fmt.Errorf("want a string, got %s", abbrev(v))
		}
		return s, true, nil
	}
	integer := func(k string) (int64, bool, error) {
		v, ok := obj[k]
		if !ok || string(v) == "null" {
			return 0, false, nil
		}
		var f float64
		if err := json.Unmarshal(v, &f); err != nil || f != math.Trunc(f) || f < 0 || f > 1<<31-1 {
			return 0, true, fmt.Errorf("want an integer from 0 to 2147483647, got %s", abbrev(v))
		}
		return int64(f), true, nil
	}
	var err error
	var ok bool
	if rec.Task.Name, ok, err = str("task"); err != nil {
		return bad("task", "%v", err)
	} else if !ok || rec.Task.Name == "" {
		return bad("task", "missing (the task within the environment, ScienceWorld's \"boil\")")
	}
	if rec.Task.Env, _, err = str("env"); err != nil {
		return bad("env", "%v", err)
	}
	switch {
	case rec.Task.Env == "":
		rec.Task.Env = defaultEnv
	case defaultEnv != "" && rec.Task.Env != defaultEnv:
		return bad("env", "%q, but the run's environment is %q", rec.Task.Env, defaultEnv)
	}
	if rec.Task.Env == "" {
		return bad("env", "missing, and environment.env names none")
	}
	v, _, err := integer("variation")
	if err != nil {
		return bad("variation", "%v", err)
	}
	rec.Task.Variation = int(v)
	if rec.Task.Seed, _, err = integer("seed"); err != nil {
		return bad("seed", "%v", err)
	}
	if o, ok := obj["options"]; ok && string(o) != "null" {
		if err := json.Unmarshal(o, &rec.Task.Options); err != nil || rec.Task.Options == nil {
			return bad("options", "want a JSON object, got %s", abbrev(o))
		}
	}
	if rec.DataSource, _, err = str("data_source"); err != nil {
		return bad("data_source", "%v", err)
	}
	if rec.DataSource == "" {
		rec.DataSource = rec.Task.Env
	}
	rec.ID = rec.Task.ID()
	if v, ok := obj["id"]; ok && string(v) != "null" {
		var s string
		if json.Unmarshal(v, &s) != nil {
			var n json.Number
			if json.Unmarshal(v, &n) != nil {
				return bad("id", "want a non-empty string or number, got %s", abbrev(v))
			}
			s = n.String()
		}
		if s == "" {
			return bad("id", "want a non-empty string or number, got %s", abbrev(v))
		}
		rec.ID = s
	}
	return rec, nil
}

func firstError(err error) string {
	if err == nil {
		return "null"
	}
	return err.Error()
}

func abbrev(v []byte) string {
	if len(v) > 40 {
		return strconv.Quote(string(v[:40])) + "..."
	}
	return string(v)
}
