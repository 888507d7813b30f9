package pipeline

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rollout"
)

// GroupID names a (task, turn) group.
func GroupID(taskID string, turn int) string { return fmt.Sprintf("%s#t%d", taskID, turn) }

// groupID names the group a row's advantage was computed in: the (task,
// turn) group, or the task's episodes ("<task_id>#traj") with trajectory
// grouping.
func groupID(g *rollout.Group, adv rewards.AdvantageConfig) string {
	if adv.GroupBy == rewards.GroupByTrajectory {
		return g.Task.ID + "#traj"
	}
	return GroupID(g.Task.ID, g.Turn)
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func int32Ptr(n int) *int32 {
	v := int32(n)
	return &v
}

// Rows turns a scored group into rl rows, one per sample.
func Rows(s *Scored, adv rewards.AdvantageConfig) []export.RLRow {
	g := s.Group
	prompt := exportMessages(g.Task.Messages)
	var mean, std *float64
	if s.Stats.N > 0 {
		m, sd := s.Stats.Mean, s.Stats.Std
		mean, std = &m, &sd
	}
	rows := make([]export.RLRow, len(g.Samples))
	for i, smp := range g.Samples {
		sc := s.Scores[i]
		r := export.RLRow{
			TaskID:             g.Task.ID,
			GroupID:            groupID(g, adv),
			SampleIndex:        int32(smp.Index),
			Turn:               int32(g.Turn),
			DataSource:         g.Task.DataSource,
			Model:              smp.Model,
			Prompt:             prompt,
			Response:           smp.Text,
			Reasoning:          strPtr(smp.Reasoning),
			FinishReason:       strPtr(smp.FinishReason),
			Error:              strPtr(smp.Err),
			OffPolicy:          smp.OffPolicy,
			Seed:               smp.Seed,
			Reference:          strPtr(g.Task.Reference),
			Reward:             sc.Reward.Total,
			RewardReason:       strPtr(sc.Reward.Reason),
			Advantage:          s.Advantages[i],
			AdvantageEstimator: string(adv.Estimator),
			GroupSize:          int32(s.Stats.N),
			GroupRewardMean:    mean,
			GroupRewardStd:     std,
		}
		if smp.Prompt != nil {
			r.Prompt = exportMessages(smp.Prompt)
		}
		r.Messages, r.Tools = toolMessages(g.Task, smp)
		if s.Tokens != nil {
			s.Tokens[i].Apply(&r)
		} else {
			export.RLTokens{Reason: export.NoTokenizer}.Apply(&r)
		}
		if u := smp.Usage; u != nil {
			r.PromptTokens, r.CompletionTokens = int32Ptr(u.PromptTokens), int32Ptr(u.CompletionTokens)
		}
		r.Endpoint = strPtr(smp.Endpoint)
		if smp.Attempts > 0 {
			r.Attempts = int32Ptr(smp.Attempts)
		}
		if smp.Latency > 0 {
			ms := float64(smp.Latency.Microseconds()) / 1000
			r.LatencyMS = &ms
		}
		if sp := smp.Sampling; sp != nil {
			r.Sampling = exportSampling(sp)
		}
		if len(smp.Logprobs) > 0 {
			r.Logprobs = make([]export.TokenLogprob, len(smp.Logprobs))
			for j, lp := range smp.Logprobs {
				r.Logprobs[j] = export.TokenLogprob{Token: lp.Token, Logprob: lp.Logprob}
			}
		}
		lpWhy := export.LogprobsAlignment(len(r.Logprobs), r.ResponseIDs)
		if lpWhy == "" && len(r.Logprobs) > 0 && smp.ResponseIDs != nil && !slices.Equal(smp.ResponseIDs, r.ResponseIDs) {
			// As many, but for other tokens: the server's, not the
			// tokenizer's that the row stores.
			lpWhy = fmt.Sprintf("the %d logprobs are for the server's token ids, which are not the response_ids of the tokenizer's track", len(r.Logprobs))
		}
		r.LogprobsReason = strPtr(lpWhy)
		if smp.Seed != nil {
			r.PolicyVersion = strPtr(s.PolicyVersion)
		}
		r.ExtractedAnswer, r.ExtractRule = strPtr(sc.Answer), strPtr(sc.ExtractRule)
		if v := sc.Verdict; v != nil {
			c := v.Correct
			r.Correct = &c
			if p := smp.PrevCorrect; p != nil && g.Turn > 0 {
				tr := mark(*p) + "->" + mark(c)
				r.Transition = &tr
			}
			r.GradeRule = strPtr(v.Rule)
			r.GradeReason = strPtr(v.Reason)
		}
		if c := sc.Consensus; c != nil {
			r.ConsensusLabel, r.ConsensusRatio, r.ConsensusLabelCorrect = &c.Label, &c.Ratio, c.LabelCorrect
		}
		if j := sc.Judge; j != nil {
			flagged := j.Flagged
			r.JudgeFlagged, r.JudgeFlagReason = &flagged, strPtr(j.FlagReason)
			for _, js := range j.Scores {
				r.JudgeScores = append(r.JudgeScores, export.JudgeScore{Judge: js.Judge, Score: js.Score, Raw: js.Raw, Reason: strPtr(js.Reason)})
			}
		}
		if b := s.Batch; b != nil && r.Advantage != nil {
			idx, m, sd := b.Index, b.Mean, b.Std
			r.AdvantageBatch, r.AdvantageBatchMean, r.AdvantageBatchStd = &idx, &m, &sd
		}
		r.RewardComponents = make([]export.RewardComponent, len(sc.Reward.Components))
		for j, c := range sc.Reward.Components {
			r.RewardComponents[j] = export.RewardComponent{Name: c.Name, Value: c.Value, Weight: c.Weight, Reason: strPtr(c.Reason)}
		}
		if meta := taskMetadata(g.Task); len(meta) > 0 {
			r.TaskMetadata = strPtr(string(meta))
		}
		scoring := sc.Metadata
		if l := smp.LengthLimit(); l != "" {
			scoring = maps.Clone(scoring)
			if scoring == nil {
				scoring = map[string]any{}
			}
			scoring["length_limit"] = l
		}
		if meta := responseMetadata(smp.Metadata, scoring); len(meta) > 0 {
			r.ResponseMetadata = strPtr(string(meta))
		}
		rows[i] = r
	}
	return rows
}

// tokenize computes the token track of every sample of a group, from the
// prompt and response its rl row will carry: the engine's ids when the
// server reported both the prompt's and the response's (token_source
// engine, cross-checked against the tokenizer's track when there is a
// tokenizer), else the tokenizer's; nil without a tokenizer when no sample
// has engine ids.
func tokenize(track *export.TokenTrackConfig, g *rollout.Group) ([]export.RLTokens, error) {
	engine := slices.ContainsFunc(g.Samples, func(s rollout.Sample) bool { return hasEngineIDs(s) })
	if track == nil && !engine {
		return nil, nil
	}
	prompt := exportMessages(g.Task.Messages)
	out := make([]export.RLTokens, len(g.Samples))
	for i, smp := range g.Samples {
		p := prompt
		if smp.Prompt != nil {
			p = exportMessages(smp.Prompt)
		}
		tok := export.RLTokens{Reason: export.NoTokenizer}
		if track != nil {
			var err error
			if msgs, tools := toolMessages(g.Task, smp); msgs != nil {
				tok, err = track.RLTrackMessages(msgs, len(p), tools, smp.Err != "")
			} else {
				tok, err = track.RLTrack(p, smp.Text, smp.Err != "")
			}
			if err != nil {
				return nil, fmt.Errorf("token track of group %q sample %d: %w", g.Task.ID, smp.Index, err)
			}
		}
		if !hasEngineIDs(smp) {
			out[i] = tok
			continue
		}
		if why := incompleteEngineIDs(smp); why != "" {
			// Not the whole generation: the tokenizer's track, or none.
			if track == nil {
				tok = export.RLTokens{Reason: why}
			}
			out[i] = tok
			continue
		}
		eng := export.RLTokens{PromptIDs: smp.PromptIDs, ResponseIDs: smp.ResponseIDs, Source: export.TokenSourceEngine}
		if track != nil {
			eng.Check = export.CompareTracks(eng, tok)
		}
		out[i] = eng
	}
	return out, nil
}

// incompleteEngineIDs says why a sample's engine ids are not its whole
// generation: the server counted more (or fewer) completion tokens than it
// reported ids. llama-server's streams leave out the logprob entry, and so
// the id, of the end-of-generation token a response stops on.
func incompleteEngineIDs(s rollout.Sample) string {
	if u := s.Usage; u != nil && u.CompletionTokens != 0 && u.CompletionTokens != len(s.ResponseIDs) {
		return fmt.Sprintf("the server reported %d response token ids for %d completion tokens, so its ids are not the whole generation (llama-server streams no logprob for the end-of-generation token; do not stream with endpoint.engine_tokens)", len(s.ResponseIDs), u.CompletionTokens)
	}
	return ""
}

// hasEngineIDs reports a sample whose server reported the ids of its
// prompt and of a response of at least one token.
func hasEngineIDs(s rollout.Sample) bool {
	return s.Err == "" && len(s.PromptIDs) > 0 && len(s.ResponseIDs) > 0
}

// toolMessages is an rl row's messages and tools columns: for a sample that
// involves tools (its task declares them, its prompt holds tool calls or
// results, or its response calls tools), the prompt and the response as
// one assistant message in OpenAI's chat form, and the task's tools as JSON
// text; nil for other samples.
func toolMessages(task rollout.Task, smp rollout.Sample) ([]export.ChatMessage, *string) {
	prompt := task.Messages
	if smp.Prompt != nil {
		prompt = smp.Prompt
	}
	involved := len(task.Tools) > 0 || len(smp.ToolCalls) > 0 || slices.ContainsFunc(prompt, func(m rollout.Message) bool {
		return len(m.ToolCalls) > 0 || m.ToolCallID != "" || m.Role == "tool"
	})
	if !involved {
		return nil, nil
	}
	msgs := chatMessages(prompt)
	msgs = append(msgs, chatMessage(rollout.Message{Role: "assistant", Content: smp.Text, ToolCalls: smp.ToolCalls}))
	var tools *string
	if len(task.Tools) > 0 {
		s := string(task.Tools)
		tools = &s
	}
	return msgs, tools
}

// chatMessages are messages in the export's OpenAI form.
func chatMessages(ms []rollout.Message) []export.ChatMessage {
	out := make([]export.ChatMessage, len(ms))
	for i, m := range ms {
		out[i] = chatMessage(m)
	}
	return out
}

func chatMessage(m rollout.Message) export.ChatMessage {
	c := export.ChatMessage{Role: m.Role, Content: m.Content, ToolCallID: strPtr(m.ToolCallID), Name: strPtr(m.Name)}
	for _, tc := range m.ToolCalls {
		c.ToolCalls = append(c.ToolCalls, export.ToolCall{ID: tc.ID, Type: tc.Type, Function: export.ToolFunction{Name: tc.Function.Name, Arguments: tc.Function.Arguments}})
	}
	return c
}

// taskMetadata is the task's metadata, with a code task's tests under
// "code" (rollout.CodeSpec's fields), so that a row says what its program
// was run against.
func taskMetadata(t rollout.Task) json.RawMessage {
	if t.Code == nil {
		return t.Metadata
	}
	return responseMetadata(t.Metadata, map[string]any{"code": t.Code})
}

// responseMetadata is the response's metadata with the scoring details
// added as top-level keys. Metadata that is not a JSON object is kept under
// "response".
func responseMetadata(raw json.RawMessage, scoring map[string]any) json.RawMessage {
	if len(scoring) == 0 {
		return raw
	}
	// Raw values keep the response's own numbers exactly as written.
	merged := map[string]json.RawMessage{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &merged); err != nil || merged == nil {
			merged = map[string]json.RawMessage{"response": raw}
		}
	}
	for k, v := range scoring {
		b, err := json.Marshal(v)
		if err != nil {
			// Scoring details are plain values; keep the response's own
			// metadata rather than lose it.
			return raw
		}
		merged[k] = b
	}
	b, err := json.Marshal(merged)
	if err != nil {
		return raw
	}
	return b
}

func exportMessages(ms []rollout.Message) []export.Message {
	out := make([]export.Message, len(ms))
	for i, m := range ms {
		out[i] = export.Message{Role: m.Role, Content: m.Content}
	}
	return out
}

func mark(correct bool) string {
	if correct {
		return "c"
	}
	return "i"
}

// Pairs derives SCL/ReVISE preference pairs from the rl rows of a revision
// turn: a flip i->c prefers the revision, c->i the first attempt; other
// transitions give no pair. The prompt is the original question: the
// messages before the episode's first answer.
func Pairs(rows []export.RLRow) []export.PairRow {
	var out []export.PairRow
	for _, r := range rows {
		if r.Transition == nil || (*r.Transition != "i->c" && *r.Transition != "c->i") || len(r.Prompt) < 3 {
			continue
		}
		// History: question..., assistant (previous attempt), user (feedback).
		prev := r.Prompt[len(r.Prompt)-2]
		if prev.Role != "assistant" {
			continue
		}
		first := 0
		for first < len(r.Prompt) && r.Prompt[first].Role != "assistant" {
			first++
		}
		p := export.PairRow{
			ID: fmt.Sprintf("%s#s%d#t%d", r.TaskID, r.SampleIndex, r.Turn), TaskID: r.TaskID, DataSource: r.DataSource,
			Prompt: r.Prompt[:first], Transition: *r.Transition, Turn: r.Turn, SampleIndex: r.SampleIndex, Model: r.Model,
		}
		if *r.Transition == "i->c" {
			p.SetResponses(r.Response, prev.Content)
		} else {
			p.SetResponses(prev.Content, r.Response)
		}
		out = append(out, p)
	}
	return out
}

func exportSampling(sp *rollout.Sampling) *export.Sampling {
	out := &export.Sampling{Temperature: sp.Temperature, TopP: sp.TopP, Stop: sp.Stop, Logprobs: sp.Logprobs,
		MinP: sp.MinP, PresencePenalty: sp.PresencePenalty, FrequencyPenalty: sp.FrequencyPenalty}
	if sp.MaxTokens != nil {
		out.MaxTokens = int32Ptr(*sp.MaxTokens)
	}
	if sp.TopK != nil {
		out.TopK = int32Ptr(*sp.TopK)
	}
	return out
}
