package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/tokenizer"
)

// TrajectoryRecipe is the recipe of the sft rows of recorded trajectories.
const TrajectoryRecipe = "trajectory"

// Segment roles of a recorded trajectory's sft rows, by message, besides
// SegPrompt (the system and user messages before the first assistant
// message): the agent's actions (assistant messages: content and tool calls,
// trained), observations (tool results) and later user turns (both masked).
const (
	SegAction      = "action"
	SegObservation = "observation"
	SegUser        = "user"
)

// trajectoryKeys are the keys a trajectories job reads; anything else is
// refused by name and line.
var trajectoryKeys = []string{"name", "seed", "source", "source.", "advantage", "advantage.", "output", "output."}

// validateTrajectories checks the configuration of a trajectories job.
func (c *Config) validateTrajectories(set keyLines) error {
	if err := refuseUnread(set, "a trajectories job", trajectoryKeys,
		"name, seed, source.*, advantage.* and output.*"); err != nil {
		return err
	}
	s := c.Source
	switch {
	case s.Path == "":
		return keyErr("source.path", "missing")
	case s.Layout != "" && s.Layout != rollout.LayoutRedraft:
		return keyErr("source.layout", "%q: trajectories are read in redraft's layout only", s.Layout)
	case s.OnError != "" && s.OnError != rollout.OnErrorFail && s.OnError != rollout.OnErrorSkip:
		return keyErr("source.on_error", "%q is neither fail nor skip", s.OnError)
	case s.ExtraFields != "" && s.ExtraFields != rollout.ExtraFieldsIgnore && s.ExtraFields != rollout.ExtraFieldsError:
		return keyErr("source.extra_fields", "%q is neither ignore nor error", s.ExtraFields)
	case s.MaxLineBytes < 0 || (s.MaxLineBytes == 0 && set.has("source.max_line_bytes")):
		return keyErr("source.max_line_bytes", "must be at least 1, got %d (leave the key out for the default, 64 MiB)", s.MaxLineBytes)
	}
	for _, k := range []string{"prompt", "reference", "responses"} {
		if set.has("source.fields." + k) {
			return keyErr("source.fields."+k, "a trajectories job reads no %s (a trajectory's fields are id, messages, tools, metadata and data_source)", k)
		}
	}
	if err := c.validateOutputSizes(); err != nil {
		return err
	}
	if err := c.validateAdvantage(); err != nil {
		return err
	}
	a := c.Advantage
	switch {
	case a.Estimator == rewards.ReinforcePPBaseline:
		return keyErr("advantage.estimator", "reinforce_pp_baseline whitens over a batch of groups, which a trajectories job does not form: use grpo, dr_grpo, rloo or passk")
	case a.DropZeroVariance:
		return keyErr("advantage.drop_zero_variance", "not supported by a trajectories job (its sft rows are written for every trajectory)")
	case a.GroupBy == rewards.GroupByTrajectory:
		return keyErr("advantage.group_by", "a trajectories job groups by task (task_id); each trajectory is one rl row")
	}
	if err := c.validateMessageTrack(); err != nil {
		return err
	}
	if c.Output.Dir == "" {
		return keyErr("output.dir", "missing")
	}
	return nil
}

// validateMessageTrack checks the token track settings of a job whose rows
// are whole conversations (trajectories, environment episodes): a chat
// format that renders messages, and no format without a tokenizer.
func (c *Config) validateMessageTrack() error {
	if o := c.Output; o.Tokenizer != "" {
		switch tokenizer.Format(o.ChatFormat) {
		case tokenizer.FormatChatML, tokenizer.FormatQwen3, tokenizer.FormatLlama3:
		default:
			return keyErr("output.chat_format", "%q is not chatml, qwen3 or llama3", o.ChatFormat)
		}
	} else if o.ChatFormat != "" {
		return atKey("output.chat_format", errors.New("output.chat_format needs output.tokenizer"))
	}
	return nil
}

// executeTrajectories runs a configuration with source.kind trajectories
// through the job harness (RunSFT): every recorded trajectory becomes one sft
// row (its assistant messages trained, everything else masked), and every
// trajectory with a reward one rl row; a task's trajectories (consecutive
// records with the same task_id) form one group of each dataset, whose rl
// rows get their advantages from the group's rewards. It is journalled like
// every job: a killed or interrupted run resumes after the last task it
// logged, and it takes a shard (tasks by task_id).
func executeTrajectories(ctx context.Context, cfg *Config, opts JobOptions) (*export.Manifest, error) {
	var track *export.TokenTrackConfig
	if o := cfg.Output; o.Tokenizer != "" {
		var err error
		if track, err = export.LoadTokenTrack(o.Tokenizer, tokenizer.Format(o.ChatFormat)); err != nil {
			return nil, fmt.Errorf("output.tokenizer: %w", err)
		}
	}
	h, err := Open(cfg, "trajectories", opts)
	if err != nil {
		return nil, err
	}
	var src *rollout.TrajectoryFile
	job := SFTJob{Track: track, RL: true, InputSkipped: func() ([]rollout.SkippedRecord, int64) {
		if src == nil {
			return nil, 0
		}
		return src.Skipped(), src.SkippedTotal()
	}}
	job.Produce = func(ctx context.Context, from SFTResume, stopped func() bool, emit func(SFTGroup) error) error {
		in := cfg.Source.InputOptions()
		in.Shard, in.SpillDir = opts.Shard, journalPath(h.Dir)
		var err error
		if src, err = rollout.OpenTrajectories(in); err != nil {
			return err
		}
		defer src.Close()
		var done int64 // groups read, the resumed ones included
		var hash uint64
		var cur []rollout.Trajectory
		flush := func() error {
			if len(cur) == 0 {
				return nil
			}
			key := cur[0].TaskID
			done++
			if done <= from.Inputs {
				// Written by an earlier session: the input must still start
				// with the same tasks.
				hash = rollout.TaskIDHash(hash, key)
				if done == from.Inputs && hash != from.Hash {
					return &rollout.InputError{File: cfg.Source.Path, Err: fmt.Errorf("resume: %w: the ids of its first %d tasks hash to %016x, the run recorded %016x",
						rollout.ErrInputChanged, done, hash, from.Hash)}
				}
				cur = cur[:0]
				return nil
			}
			g, err := trajectoryGroup(cfg, track, cur)
			if err != nil {
				return err
			}
			cur = cur[:0]
			return emit(g)
		}
		for {
			if done >= from.Inputs && len(cur) == 0 && stopped() {
				return ErrInterrupted
			}
			tr, err := src.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if len(cur) > 0 && tr.TaskID != cur[0].TaskID {
				if err := flush(); err != nil {
					return err
				}
				if done >= from.Inputs && stopped() {
					return ErrInterrupted
				}
			}
			cur = append(cur, tr)
		}
		if err := flush(); err != nil {
			return err
		}
		if done < from.Inputs {
			return &rollout.InputError{File: cfg.Source.Path, Err: fmt.Errorf("resume: %w: it now holds %d tasks, the run had already done %d",
				rollout.ErrInputChanged, done, from.Inputs)}
		}
		return nil
	}
	return RunSFT(ctx, h, job, opts)
}

// trajectoryGroup turns one task's trajectories into its sft rows and, for
// those with a reward, its rl rows with their group's advantages.
func trajectoryGroup(cfg *Config, track *export.TokenTrackConfig, trs []rollout.Trajectory) (SFTGroup, error) {
	task := trs[0].TaskID
	g := SFTGroup{Key: task}
	var rewarded []rollout.Trajectory
	for _, tr := range trs {
		g.Rows = append(g.Rows, TrajectorySFTRow(tr))
		if tr.Reward != nil {
			rewarded = append(rewarded, tr)
		}
	}
	if len(rewarded) == 0 {
		return g, nil
	}
	rs := make([]*float64, len(rewarded))
	for i, tr := range rewarded {
		rs[i] = tr.Reward
	}
	adv, stats := rewards.GroupAdvantages(cfg.Advantage, rs)
	mean, std := stats.Mean, stats.Std
	for i, tr := range rewarded {
		n := tr.PromptLen()
		r := export.RLRow{
			TaskID: task, GroupID: GroupID(task, 0), SampleIndex: int32(i), DataSource: dataSourceOf(tr),
			Prompt: exportMessages(tr.Messages[:n]), Messages: chatMessages(tr.Messages), Tools: toolsOf(tr),
			Reward: tr.Reward, RewardComponents: []export.RewardComponent{{Name: "recorded", Value: tr.Reward, Weight: 1}},
			Advantage: adv[i], AdvantageEstimator: string(cfg.Advantage.Estimator), GroupSize: int32(stats.N),
			GroupRewardMean: &mean, GroupRewardStd: &std,
		}
		// The response: the last assistant message's content.
		for k := len(tr.Messages) - 1; k >= n; k-- {
			if tr.Messages[k].Role == "assistant" {
				r.Response = tr.Messages[k].Content
				break
			}
		}
		if len(tr.Metadata) > 0 {
			r.TaskMetadata = strPtr(string(tr.Metadata))
		}
		r.ResponseMetadata = strPtr(string(trajectoryOrigin(tr)))
		tokens := export.RLTokens{Reason: export.NoTokenizer}
		if track != nil {
			var err error
			if tokens, err = track.RLTrackMessages(r.Messages, n, r.Tools, false); err != nil {
				return g, fmt.Errorf("%s:%d: trajectory %s: token track: %w", tr.Origin.File, tr.Origin.Line, tr.ID, err)
			}
		}
		tokens.Apply(&r)
		g.RL = append(g.RL, r)
	}
	return g, nil
}

// TrajectorySFTRow is a recorded trajectory's sft row: every message with
// one segment over its content, the assistant messages (content and tool
// calls) trained and the others masked, segment roles by message (SegPrompt,
// SegAction, SegObservation, SegUser).
func TrajectorySFTRow(tr rollout.Trajectory) export.SFTRow {
	row := export.SFTRow{ID: tr.ID, TaskID: tr.TaskID, Recipe: TrajectoryRecipe, DataSource: dataSourceOf(tr), Reward: tr.Reward, Tools: toolsOf(tr)}
	meta := map[string]json.RawMessage{"input": trajectoryOrigin(tr)}
	if len(tr.Metadata) > 0 {
		meta["metadata"] = tr.Metadata
	}
	if b, err := json.Marshal(meta); err == nil {
		row.Metadata = strPtr(string(b))
	}
	n := tr.PromptLen()
	for i, m := range tr.Messages {
		c := chatMessage(m)
		sm := export.SFTMessage{Role: m.Role, Content: m.Content, ToolCalls: c.ToolCalls, ToolCallID: c.ToolCallID, Name: c.Name, Segments: []export.SFTSpan{}}
		role := SegPrompt
		switch {
		case m.Role == "assistant":
			role = SegAction
		case i < n:
		case m.Role == "tool":
			role = SegObservation
		default:
			role = SegUser
		}
		trained := role == SegAction
		if end := int32(len([]rune(m.Content))); end > 0 {
			sm.Segments = append(sm.Segments, export.SFTSpan{Role: role, End: end, Trainable: trained})
		}
		if trained && (m.Content != "" || len(m.ToolCalls) > 0) {
			sm.LossMask = 1
		}
		row.Messages = append(row.Messages, sm)
	}
	return row
}

func dataSourceOf(tr rollout.Trajectory) string {
	if tr.DataSource != "" {
		return tr.DataSource
	}
	return "trajectories"
}

func toolsOf(tr rollout.Trajectory) *string {
	if len(tr.Tools) == 0 {
		return nil
	}
	s := string(tr.Tools)
	return &s
}

// trajectoryOrigin is where a trajectory was read, as JSON: {"file", "line"}.
func trajectoryOrigin(tr rollout.Trajectory) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"file": tr.Origin.File, "line": tr.Origin.Line})
	return b
}
