package export

import (
	"context"
	"path/filepath"
	"testing"
)

// The prompt set has one row per task, from the first turn's group only, in
// order, with verl's reward_model and extra_info.
func TestVerlPromptsFromGroups(t *testing.T) {
	ref := "42"
	group := func(task string, turn int32, reference *string, prompt ...string) []RLRow {
		rows := make([]RLRow, 3)
		for i := range rows {
			rows[i] = RLRow{TaskID: task, GroupID: task, Turn: turn, DataSource: "toy", Reference: reference}
			for j, p := range prompt {
				role := "user"
				if j%2 == 1 {
					role = "assistant"
				}
				rows[i].Prompt = append(rows[i].Prompt, Message{Role: role, Content: p})
			}
		}
		return rows
	}
	dir := t.TempDir()
	v, err := NewVerlPrompts(ShardOptions{Dir: dir}, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, g := range [][]RLRow{
		group("t1", 0, &ref, "What is 6*7?"),
		group("t1", 1, &ref, "What is 6*7?", "41", "Try again."),
		group("t2", 0, nil, "Say something"),
		group("t2", 1, nil, "Say something", "x", "Again."),
		nil,
	} {
		if err := v.WriteRLGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	shards, err := v.Flush()
	if err != nil || len(shards) != 1 || shards[0].Path != "data/verl/train-00000.parquet" || shards[0].Rows != 2 {
		t.Fatalf("shards %+v, %v", shards, err)
	}
	rows, err := ReadRows[VerlRow](ctx, filepath.Join(dir, shards[0].Path))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		task, style, prompt string
		gt                  *string
	}{{"t1", "rule", "What is 6*7?", &ref}, {"t2", "model", "Say something", nil}}
	if len(rows) != len(want) {
		t.Fatalf("%d rows: %+v", len(rows), rows)
	}
	for i, w := range want {
		r := rows[i]
		if r.ExtraInfo.TaskID != w.task || r.ExtraInfo.Index != int64(i) || r.ExtraInfo.Split != "train" || r.Ability != "math" ||
			r.DataSource != "toy" || r.RewardModel.Style != w.style || len(r.Prompt) != 1 || r.Prompt[0].Content != w.prompt ||
			(r.RewardModel.GroundTruth == nil) != (w.gt == nil) || (w.gt != nil && *r.RewardModel.GroundTruth != *w.gt) {
			t.Errorf("row %d: %+v", i, r)
		}
	}
	if err := (&VerlPrompts{}).WriteTask(ctx, VerlTask{TaskID: "x"}); err == nil {
		t.Error("a task without messages must be refused")
	}
}

// A task without a data_source gets VerlUnknownSource on its verl row, so
// that the prompt set is valid (verl's data_source column holds a value).
func TestVerlPromptWithoutDataSource(t *testing.T) {
	r := VerlPrompt(VerlTask{TaskID: "t"}, "math", "train", 0)
	if r.DataSource != VerlUnknownSource || r.Ability != "math" {
		t.Errorf("data_source %q ability %q", r.DataSource, r.Ability)
	}
	if r := VerlPrompt(VerlTask{TaskID: "t", DataSource: "openai/gsm8k"}, "math", "train", 0); r.DataSource != "openai/gsm8k" {
		t.Errorf("data_source %q", r.DataSource)
	}
}
