package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rollout"
)

// Why an episode gave no sft trajectory; the manifest counts each under the
// sft dataset's "filtered".
const (
	// FilterIncomplete: a turn of the episode has no response (its request
	// failed, which ends the episode).
	FilterIncomplete = "incomplete"
	// FilterTruncated: a response that would be trained was cut off
	// (finish_reason=length).
	FilterTruncated = "truncated"
	// FilterUngraded: PAM's final answer could not be graded (the task has
	// no reference).
	FilterUngraded = "ungraded"
	// FilterIncorrect: PAM's final answer is wrong.
	FilterIncorrect = "incorrect"
	// FilterFirstTry: the repair recipe's episode passed at its first
	// attempt, so there is nothing repaired to learn from.
	FilterFirstTry = "passed_first"
	// FilterUnrepaired: no attempt of the repair recipe's episode passed.
	FilterUnrepaired = "unrepaired"
)

// PAMSeparator joins the first answer and the self-verification in PAM's
// single assistant turn. It is trained: it is where the model learns to go
// on to a verification instead of stopping after its first answer.
const PAMSeparator = "\n\n"

// PAMTrajectory builds the ISC/PAM trajectory of one 2-turn episode (its rl
// rows in turn order): the question (masked), then ONE assistant message of
// the first answer (masked, "attempt"), the separator, the
// self-verification ("reflection") and the modified answer ("correction"),
// all trained. The revision is split into verification and modified answer
// at the last rollout.PAMAnswerMarker; without one it is a single
// "correction" segment. Only episodes whose final answer is graded correct
// are kept; otherwise the trajectory is nil and the reason is one of the
// Filter constants.
func PAMTrajectory(ep []export.RLRow) (*Trajectory, string) {
	if why := incomplete(ep, 2); why != "" {
		return nil, why
	}
	first, rev := ep[0], ep[1]
	switch {
	case truncated(rev):
		return nil, FilterTruncated
	case rev.Correct == nil:
		return nil, FilterUngraded
	case !*rev.Correct:
		return nil, FilterIncorrect
	}
	asst := TMessage{Role: "assistant", Segments: []Segment{
		{Text: first.Response, Role: SegAttempt},
		{Text: PAMSeparator, Role: SegSeparator, Trainable: true},
	}}
	split := "none"
	if i := strings.LastIndex(rev.Response, rollout.PAMAnswerMarker); i > 0 {
		split = "marker"
		asst.Segments = append(asst.Segments,
			Segment{Text: rev.Response[:i], Role: SegReflection, Trainable: true},
			Segment{Text: rev.Response[i:], Role: SegCorrection, Trainable: true})
	} else {
		asst.Segments = append(asst.Segments, Segment{Text: rev.Response, Role: SegCorrection, Trainable: true})
	}
	meta := map[string]any{
		"sample_index": rev.SampleIndex, "model": rev.Model, "instruction": lastContent(rev.Prompt),
		"first_correct": first.Correct, "final_correct": true, "transition": rev.Transition,
		"seeds": seeds(ep), "split": split,
	}
	return &Trajectory{
		ID: fmt.Sprintf("%s#s%d#pam", rev.TaskID, rev.SampleIndex), TaskID: rev.TaskID, Recipe: SFTPAM,
		DataSource: rev.DataSource, Messages: append(promptMessages(first.Prompt), asst),
		Reward: rev.Reward, Metadata: mustJSON(meta),
	}, ""
}

// PTRTrajectory builds the Progressive Thought Refinement trajectory of one
// episode of turns rounds (its rl rows in turn order). Rounds map to the
// conversation as it was sampled: the question (masked), round 0's response
// (the initial attempt, all masked), then per refinement round the
// refinement instruction as a user message (masked) and the response as an
// assistant message whose thought is masked ("thought") and whose refined
// answer is trained ("answer"). The thought is the reasoning field when the
// server returned one (rendered "<think>\n...\n</think>\n\n" before the
// answer), else the text up to the last "</think>" and the white space after
// it, else empty. No reward filter: only incomplete episodes and cut-off
// refinements are left out.
func PTRTrajectory(ep []export.RLRow, turns int) (*Trajectory, string) {
	if why := incomplete(ep, turns); why != "" {
		return nil, why
	}
	for _, r := range ep[1:] {
		if truncated(r) {
			return nil, FilterTruncated
		}
	}
	msgs := promptMessages(ep[0].Prompt)
	correct := make([]*bool, len(ep))
	sources := make([]string, len(ep))
	for t, r := range ep {
		if t > 0 {
			msgs = append(msgs, Text("user", SegFeedback, lastContent(r.Prompt), false))
		}
		thought, answer, source := SplitThought(r.Response, ptrString(r.Reasoning))
		m := TMessage{Role: "assistant"}
		if thought != "" {
			m.Segments = append(m.Segments, Segment{Text: thought, Role: SegThought})
		}
		if t == 0 {
			m.Segments = append(m.Segments, Segment{Text: answer, Role: SegAttempt})
		} else {
			m.Segments = append(m.Segments, Segment{Text: answer, Role: SegAnswer, Trainable: true})
		}
		msgs = append(msgs, m)
		correct[t], sources[t] = r.Correct, source
	}
	last := ep[len(ep)-1]
	meta := map[string]any{
		"sample_index": last.SampleIndex, "model": last.Model, "rounds": len(ep), "instruction": lastContent(last.Prompt),
		"correct": correct, "thought_source": sources, "seeds": seeds(ep),
	}
	return &Trajectory{
		ID: fmt.Sprintf("%s#s%d#ptr", last.TaskID, last.SampleIndex), TaskID: last.TaskID, Recipe: SFTPTR,
		DataSource: last.DataSource, Messages: msgs, Metadata: mustJSON(meta),
	}, ""
}

// RepairTrajectory builds the repair trajectory of one episode (its rl rows
// in turn order; with feedback execution or retry_if_wrong an episode ends
// at its first passing attempt, so episodes differ in length): when the
// episode's first passing attempt comes after at least one failing one,
// the conversation as it was sampled up to that attempt. The question
// (masked, "prompt"), every failed attempt (masked, "attempt"), the
// feedback after each (masked, "feedback": with feedback execution the
// first failing test and its error, then the instruction) and the passing
// revision (trained, "correction"). Rows after the first pass (feedback
// fixed runs every turn) are not part of it. The metadata names the tests
// the failed attempts did not pass and the revision does ("fixed_tests",
// code tasks only) and each failed attempt's grade reason and failing
// tests. Episodes left out get one of the Filter constants: a failed
// request (incomplete), an attempt that could not be graded (ungraded), no
// passing attempt (unrepaired), a pass at the first attempt (passed_first)
// or a passing revision cut off (truncated).
func RepairTrajectory(ep []export.RLRow) (*Trajectory, string) {
	end := -1
	for t, r := range ep {
		switch {
		case r.Error != nil || int(r.Turn) != t:
			return nil, FilterIncomplete
		case !graded(r):
			return nil, FilterUngraded
		}
		if *r.Correct {
			end = t
			break
		}
	}
	switch {
	case end < 0:
		return nil, FilterUnrepaired
	case end == 0:
		return nil, FilterFirstTry
	case truncated(ep[end]):
		return nil, FilterTruncated
	}
	ep = ep[:end+1]
	fix := ep[end]
	fixEx := rowExecution(fix)
	msgs := promptMessages(ep[0].Prompt)
	failures := make([]map[string]any, 0, end)
	fixed := []string{} // the revision's tests that some failed attempt did not pass
	for t, r := range ep {
		if t > 0 {
			msgs = append(msgs, Text("user", SegFeedback, lastContent(r.Prompt), false))
		}
		if t == end {
			msgs = append(msgs, Text("assistant", SegCorrection, r.Response, true))
			break
		}
		msgs = append(msgs, Text("assistant", SegAttempt, r.Response, false))
		f := map[string]any{"turn": t, "reason": ptrString(r.GradeReason)}
		if ex := rowExecution(r); ex != nil {
			passed := map[string]bool{}
			failing := []string{}
			for _, tr := range ex.Tests {
				passed[tr.Test] = passed[tr.Test] || tr.Passed
				if !tr.Passed {
					failing = append(failing, tr.Test)
				}
			}
			f["failed_tests"], f["passed"], f["total"] = failing, ex.Passed, ex.Total
			// A test missing from an attempt's verdicts (its program did
			// not load, or timed out before it) was not passed either.
			if fixEx != nil {
				for _, tr := range fixEx.Tests {
					if !passed[tr.Test] && !slices.Contains(fixed, tr.Test) {
						fixed = append(fixed, tr.Test)
					}
				}
			}
		}
		failures = append(failures, f)
	}
	meta := map[string]any{
		"sample_index": fix.SampleIndex, "model": fix.Model, "attempts": len(ep), "repaired_at_turn": end,
		"transition": fix.Transition, "failures": failures, "seeds": seeds(ep),
	}
	if fixEx != nil {
		// In the revision's test order.
		slices.SortStableFunc(fixed, func(a, b string) int { return testIndex(fixEx, a) - testIndex(fixEx, b) })
		meta["fixed_tests"] = fixed
	}
	return &Trajectory{
		ID: fmt.Sprintf("%s#s%d#repair", fix.TaskID, fix.SampleIndex), TaskID: fix.TaskID, Recipe: SFTRepair,
		DataSource: fix.DataSource, Messages: msgs, Reward: fix.Reward, Metadata: mustJSON(meta),
	}, ""
}

// graded says whether a row's response was decided: it has a verdict and,
// when the row has a verifiable component, a value (a code task whose
// sandbox failed is unverified: null, not wrong).
func graded(r export.RLRow) bool {
	if r.Correct == nil {
		return false
	}
	for _, c := range r.RewardComponents {
		if c.Name == "verifiable" && c.Value == nil {
			return false
		}
	}
	return true
}

// rowExecution is the execution report a code task's row carries in its
// response_metadata (rewards.ExecutionDetail), nil when it has none.
func rowExecution(r export.RLRow) *rowExec {
	if r.ResponseMetadata == nil {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(*r.ResponseMetadata), &m) != nil || m[rewards.ExecutionDetail] == nil {
		return nil
	}
	var ex rowExec
	if json.Unmarshal(m[rewards.ExecutionDetail], &ex) != nil {
		return nil
	}
	return &ex
}

func testIndex(ex *rowExec, test string) int {
	for i, tr := range ex.Tests {
		if tr.Test == test {
			return i
		}
	}
	return len(ex.Tests)
}

// rowExec is the part of a codegrade.Verdict the repair recipe reads.
type rowExec struct {
	Passed int `json:"passed"`
	Total  int `json:"total"`
	Tests  []struct {
		Test   string `json:"test"`
		Passed bool   `json:"passed"`
	} `json:"tests"`
}

// SplitThought separates a response's thought from its answer and says
// where the thought came from: "reasoning" (the separate reasoning field,
// wrapped in think tags), "inline" (text up to the last "</think>") or
// "none". thought + answer is the message content.
func SplitThought(response, reasoning string) (thought, answer, source string) {
	if reasoning != "" {
		return "<think>\n" + reasoning + "\n</think>\n\n", response, "reasoning"
	}
	i := strings.LastIndex(response, "</think>")
	if i < 0 {
		return "", response, "none"
	}
	k := i + len("</think>")
	rest := strings.TrimLeftFunc(response[k:], unicode.IsSpace)
	k = len(response) - len(rest)
	return response[:k], response[k:], "inline"
}

func incomplete(ep []export.RLRow, turns int) string {
	if len(ep) < turns {
		return FilterIncomplete
	}
	for _, r := range ep {
		if r.Error != nil {
			return FilterIncomplete
		}
	}
	return ""
}

func truncated(r export.RLRow) bool { return r.FinishReason != nil && *r.FinishReason == "length" }

func ptrString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func lastContent(ms []export.Message) string {
	if len(ms) == 0 {
		return ""
	}
	return ms[len(ms)-1].Content
}

// promptMessages is the task's prompt as masked trajectory messages.
func promptMessages(ms []export.Message) []TMessage {
	out := make([]TMessage, len(ms))
	for i, m := range ms {
		out[i] = Text(m.Role, SegPrompt, m.Content, false)
	}
	return out
}

func seeds(ep []export.RLRow) []*int64 {
	out := make([]*int64, len(ep))
	for i, r := range ep {
		out[i] = r.Seed
	}
	return out
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain values go in
	}
	return string(b)
}

// episodeSFT collects the rl rows of one task's episodes as its turn groups
// are written (in order, consecutively) and, once the task is complete,
// writes one sft row per episode that makes a trajectory and counts the
// others by reason.
type episodeSFT struct {
	mode  string
	turns int
	w     *export.SFTWriter
	// episodes holds the task being collected's rows by sample index.
	episodes map[int32][]export.RLRow
	filtered map[string]int64
}

func newEpisodeSFT(mode string, turns int, w *export.SFTWriter) *episodeSFT {
	return &episodeSFT{mode: mode, turns: turns, w: w, episodes: map[int32][]export.RLRow{}, filtered: map[string]int64{}}
}

// add collects the rows of one written group; the job flushes at the
// task's last group.
func (b *episodeSFT) add(rows []export.RLRow) {
	for _, r := range rows {
		b.episodes[r.SampleIndex] = append(b.episodes[r.SampleIndex], r)
	}
}

// flush writes the collected task's trajectories, in sample order, one
// shard group each.
func (b *episodeSFT) flush(ctx context.Context) error {
	idx := make([]int32, 0, len(b.episodes))
	for i := range b.episodes {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	for _, i := range idx {
		var t *Trajectory
		var why string
		switch b.mode {
		case SFTPAM:
			t, why = PAMTrajectory(b.episodes[i])
		case SFTRepair:
			t, why = RepairTrajectory(b.episodes[i])
		default:
			t, why = PTRTrajectory(b.episodes[i], b.turns)
		}
		if t == nil {
			b.filtered[why]++
			continue
		}
		if err := b.w.WriteGroup(ctx, []export.SFTRow{t.SFTRow()}); err != nil {
			return fmt.Errorf("writing sft row %s: %w", t.ID, err)
		}
	}
	clear(b.episodes)
	return nil
}

// reset drops a task being collected, for a run rolled back to its last
// checkpoint (which ends at a task boundary).
func (b *episodeSFT) reset() { clear(b.episodes) }
