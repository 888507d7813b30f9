package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"runtime"
	"strconv"
)

// Trajectory is one recorded agent trajectory (source.kind trajectories): a
// conversation in OpenAI's chat form, generated elsewhere, with the tools it
// declared and the reward it was given, if any.
type Trajectory struct {
	// ID names the trajectory (its "id", unique in the input).
	ID string
	// TaskID is the task the trajectory attempts (its "task_id", the id
	// when absent): a task's trajectories are consecutive records and
	// form one group.
	TaskID     string
	DataSource string
	// Messages are the conversation: the prompt (every message before the
	// first assistant message, of which there is at least one), then the
	// agent's messages (assistant, with tool calls) and what came back
	// (tool results, user turns).
	Messages []Message
	// Tools is the declared tools (compact JSON array), nil when none.
	Tools json.RawMessage
	// Reward is the trajectory's reward ("reward", a finite number), nil
	// when it has none.
	Reward *float64
	// Metadata is the record's free-form "metadata" object, nil when absent.
	Metadata json.RawMessage
	Origin   Origin
}

// PromptLen is the number of messages before the first assistant message.
func (t *Trajectory) PromptLen() int {
	for i, m := range t.Messages {
		if m.Role == "assistant" {
			return i
		}
	}
	return len(t.Messages)
}

// trajectoryKeys are a trajectory record's keys besides the configurable
// fields (id, messages, tools, metadata, data_source).
var trajectoryKeys = []string{"task_id", "reward"}

// trajectory decodes one trajectory record: {"id", "messages", "tools"?,
// "reward"?, "metadata"?, "task_id"?, "data_source"?}. Every error is an
// *InputError naming the file, line and field.
func (d *decoder) trajectory(file string, line int, raw []byte) (Trajectory, error) {
	d.file = file
	f := d.fields
	tr := Trajectory{Origin: Origin{File: file, Line: line}, DataSource: d.opts.DataSource}
	obj, err := d.object(line, raw)
	if err != nil {
		return tr, err
	}
	if err := d.unknownKeys(line, "", obj, append([]string{f.ID, f.Messages, f.Tools, f.Metadata, f.DataSource}, trajectoryKeys...)); err != nil {
		return tr, err
	}
	if raw, ok := obj[f.ID]; ok && !isNull(raw) {
		id, ok := scalarString(raw)
		if !ok || id == "" {
			return tr, d.errf(line, f.ID, "want a non-empty string or number, got %s", abbrev(raw))
		}
		tr.ID = id
	} else if d.opts.GenerateIDs {
		tr.ID = filepath.Base(file) + ":" + strconv.Itoa(line)
	} else {
		return tr, d.errf(line, f.ID, "missing (set source.generate_ids to name records by line)")
	}
	tr.TaskID = tr.ID
	if raw, ok := obj["task_id"]; ok && !isNull(raw) {
		id, ok := scalarString(raw)
		if !ok || id == "" {
			return tr, d.errf(line, "task_id", "want a non-empty string or number, got %s", abbrev(raw))
		}
		tr.TaskID = id
	}
	raw, ok := obj[f.Messages]
	if !ok || isNull(raw) {
		return tr, d.errf(line, f.Messages, "missing (a trajectory is a list of OpenAI chat messages)")
	}
	if tr.Messages, err = d.messages(line, f.Messages, raw); err != nil {
		return tr, err
	}
	if d.opts.SystemPrompt != "" && tr.Messages[0].Role != "system" {
		tr.Messages = append([]Message{{Role: "system", Content: d.opts.SystemPrompt}}, tr.Messages...)
	}
	switch n := tr.PromptLen(); {
	case n == len(tr.Messages):
		return tr, d.errf(line, f.Messages, "no assistant message: nothing to train on")
	case n == 0:
		return tr, d.errf(line, f.Messages+"[0].role", "the trajectory starts with an assistant message: it needs its prompt (the system and user messages before it)")
	}
	if raw, ok := obj[f.Tools]; ok && !isNull(raw) {
		if tr.Tools, err = d.tools(line, f.Tools, raw); err != nil {
			return tr, err
		}
	}
	if raw, ok := obj["reward"]; ok && !isNull(raw) {
		v, err := d.reward(line, "reward", raw)
		if err != nil {
			return tr, err
		}
		tr.Reward = &v
	}
	if raw, ok := obj[f.DataSource]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &tr.DataSource); err != nil {
			return tr, d.errf(line, f.DataSource, "want a string, got %s", abbrev(raw))
		}
	}
	if raw, ok := obj[f.Metadata]; ok && !isNull(raw) {
		if raw[0] != '{' {
			return tr, d.errf(line, f.Metadata, "want a JSON object, got %s", abbrev(raw))
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return tr, d.errf(line, f.Metadata, "%v", err)
		}
		tr.Metadata = buf.Bytes()
	}
	return tr, nil
}

// TrajectoryFile reads recorded agent trajectories from a JSONL or Parquet
// file, or a directory of them, with every policy of InputOptions: the
// bad-input policy (a bad record is dropped whole under OnErrorSkip),
// duplicate trajectory ids across all files, and the shard filter, by task id
// so that a task's group stays whole. A task's trajectories must be
// consecutive; a task id seen again after another task's is bad input.
// SkipTasks and SkipHash are not used: a job resumes by groups (see
// pipeline's trajectories job). Its methods are not safe for concurrent use,
// except Skipped and SkippedTotal.
type TrajectoryFile struct{ in *stream }

// OpenTrajectories opens a trajectory file or directory.
func OpenTrajectories(opts InputOptions) (*TrajectoryFile, error) {
	opts.SkipTasks, opts.SkipHash = 0, 0
	in, err := openStream(opts, false)
	if err != nil {
		return nil, err
	}
	in.traj = true
	in.groups = &dupSet{spillDir: opts.SpillDir}
	runtime.AddCleanup(in, (*dupSet).free, in.groups)
	return &TrajectoryFile{in: in}, nil
}

// Next returns the next trajectory, or io.EOF after the last. After an error
// other than a cancelled ctx, every later call returns the same error.
func (s *TrajectoryFile) Next(ctx context.Context) (Trajectory, error) {
	if _, _, err := s.in.next(ctx); err != nil {
		return Trajectory{}, err
	}
	return s.in.lastTraj, nil
}

// Skipped returns the records dropped under OnErrorSkip so far, in input
// order: the first MaxSkippedRecords of them.
func (s *TrajectoryFile) Skipped() []SkippedRecord { return s.in.skips.list() }

// SkippedTotal is the number of records dropped so far, including those
// beyond MaxSkippedRecords.
func (s *TrajectoryFile) SkippedTotal() int64 { return s.in.skips.count() }

// Close closes the file.
func (s *TrajectoryFile) Close() error { return s.in.close() }
