package export

import (
	"context"
	"fmt"
)

// VerlSchema is the schema version of the verl prompt set.
const VerlSchema = "verl/1"

// VerlDataset is the dataset name of the verl prompt set: its shards are
// data/verl/train-NNNNN.parquet.
const VerlDataset = "verl"

// VerlRewardModel is verl's reward_model column: the style of reward ("rule"
// for a verifiable reference) and the ground truth its reward function gets.
type VerlRewardModel struct {
	Style       string  `parquet:"style,dict" json:"style"`
	GroundTruth *string `parquet:"ground_truth,optional" json:"ground_truth"`
}

// VerlExtraInfo is verl's extra_info column. verl passes it to the reward
// function; task_id joins a prompt back to its rl rows.
type VerlExtraInfo struct {
	Split  string `parquet:"split,dict" json:"split"`
	Index  int64  `parquet:"index" json:"index"`
	TaskID string `parquet:"task_id" json:"task_id"`
}

// VerlRow is one prompt of the verl prompt set, with the column names and
// types verl's RLHF dataset reads (data.prompt_key: prompt, data.reward_fn_key:
// data_source).
type VerlRow struct {
	DataSource  string          `parquet:"data_source,dict" json:"data_source"`
	Prompt      []Message       `parquet:"prompt,list" json:"prompt"`
	Ability     string          `parquet:"ability,dict" json:"ability"`
	RewardModel VerlRewardModel `parquet:"reward_model" json:"reward_model"`
	ExtraInfo   VerlExtraInfo   `parquet:"extra_info" json:"extra_info"`
}

// VerlTask is what a verl prompt is made from: one task of the run.
type VerlTask struct {
	TaskID     string
	DataSource string
	// Messages is the prompt as sent at the first turn (system prompt
	// included when the run adds one).
	Messages []Message
	// Reference is the ground truth; nil when the task has none.
	Reference *string
}

// VerlUnknownSource is the data_source of a verl row whose task has none.
const VerlUnknownSource = "unknown"

// VerlPrompt builds the verl row of a task. ability names the skill verl
// groups prompts by ("math"); split and index fill extra_info.
func VerlPrompt(t VerlTask, ability, split string, index int64) VerlRow {
	style := "rule"
	if t.Reference == nil {
		// No ground truth: the reward cannot be a rule on a reference
		// (consensus or judge runs).
		style = "model"
	}
	ds := t.DataSource
	if ds == "" {
		// verl routes its default reward by data_source and its columns
		// hold a value: a task without one is named as such.
		ds = VerlUnknownSource
	}
	return VerlRow{
		DataSource:  ds,
		Prompt:      append([]Message(nil), t.Messages...),
		Ability:     ability,
		RewardModel: VerlRewardModel{Style: style, GroundTruth: t.Reference},
		ExtraInfo:   VerlExtraInfo{Split: split, Index: index, TaskID: t.TaskID},
	}
}

// VerlPrompts writes the verl prompt set: one row per task, in the order the
// tasks are given, numbered from 0 in extra_info.index. Give it each task
// once; WriteRLGroup does so from the rl groups, using only the first turn's
// group of each task.
type VerlPrompts struct {
	w       *ShardWriter[VerlRow]
	ability string
	split   string
	// start is the index of the writer's first prompt, next of the next.
	start, next int64
}

// NewVerlPrompts prepares a writer of the verl prompt set under opts.Dir;
// opts.Dataset and opts.Schema are set here. ability is verl's ability column
// ("math" when empty).
func NewVerlPrompts(opts ShardOptions, ability string) (*VerlPrompts, error) {
	opts.Dataset, opts.Schema = VerlDataset, VerlSchema
	if opts.Split == "" {
		opts.Split = "train"
	}
	if ability == "" {
		ability = "math"
	}
	w, err := NewShardWriter[VerlRow](opts)
	if err != nil {
		return nil, err
	}
	return &VerlPrompts{w: w, ability: ability, split: opts.Split}, nil
}

// StartAt sets the extra_info.index of the next prompt: a resumed run
// continues the numbering of the prompts already committed.
func (v *VerlPrompts) StartAt(index int64) { v.start, v.next = index, index }

// WriteTask appends one task's prompt.
func (v *VerlPrompts) WriteTask(ctx context.Context, t VerlTask) error {
	_, err := v.Write(ctx, t)
	return err
}

// Write appends one task's prompt and returns the row written.
func (v *VerlPrompts) Write(ctx context.Context, t VerlTask) (VerlRow, error) {
	if len(t.Messages) == 0 {
		return VerlRow{}, fmt.Errorf("verl prompt for task %s: no messages", t.TaskID)
	}
	row := VerlPrompt(t, v.ability, v.split, v.next)
	if err := v.w.WriteGroup(ctx, []VerlRow{row}); err != nil {
		return VerlRow{}, err
	}
	v.next++
	return row, nil
}

// WriteRLGroup appends the task of an rl group when the group is a first
// turn (turn 0), and does nothing otherwise, so that a correction episode's
// later turns (whose prompt is the episode's history) never add a prompt.
func (v *VerlPrompts) WriteRLGroup(ctx context.Context, rows []RLRow) error {
	if len(rows) == 0 || rows[0].Turn != 0 {
		return nil
	}
	r := rows[0]
	return v.WriteTask(ctx, VerlTask{TaskID: r.TaskID, DataSource: r.DataSource, Messages: r.Prompt, Reference: r.Reference})
}

// Flush finishes the open shard and returns every finished shard (see
// ShardWriter.Flush).
func (v *VerlPrompts) Flush() ([]ShardInfo, error) { return v.w.Flush() }

// Commit commits the finished shards (see ShardWriter.Commit).
func (v *VerlPrompts) Commit() []ShardInfo { return v.w.Commit() }

// Rollback returns to the last Commit (see ShardWriter.Rollback); the next
// prompt is numbered after the committed ones.
func (v *VerlPrompts) Rollback() ([]ShardInfo, error) {
	committed, err := v.w.Rollback()
	v.next = v.start
	for _, s := range committed {
		v.next += s.Rows
	}
	return committed, err
}

// Writer is the underlying shard writer, for code that closes writers
// generically.
func (v *VerlPrompts) Writer() *ShardWriter[VerlRow] { return v.w }

// Full reports whether the current shard has reached its size limit.
func (v *VerlPrompts) Full() bool { return v.w.Full() }
