// Package splice builds step-level self-correction trajectories (sft): an
// erroneous step, masked, then a reflection and a correction, trained.
//
//   - PRM800K (STeP, S3c-Math): steps rated by people, corrected by a sibling
//     rated +1 or a human step; no model is needed.
//   - MR-GSM8K (STeP, S3c-Math): a labelled first error step; a model writes
//     the continuation after the reflection (rollout.Continuer).
//   - Agent-R: a step judge model finds a solution's first bad step; a good
//     branch is sampled from the steps before it; the whole bad prefix is
//     masked (ExecuteAgentR runs a configuration's agent_r section).
package splice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rewards/mathgrade"
	"github.com/redraft/redraft/rollout"
)

// DefaultReflections is the pool reflection text is drawn from when none is
// configured. The pick for a trajectory is a hash of its id, so a rerun
// produces the same rows.
var DefaultReflections = []string{
	"Wait, that step is wrong. Let me check it again.",
	"Hold on, I made a mistake in the last step. Let me redo it.",
	"Let me double-check that step: it does not follow. I'll correct it.",
	"Hmm, that doesn't look right. Let me reconsider this step.",
	"I realize that step was flawed. Let me fix it before going on.",
}

// Options configures splicing.
type Options struct {
	// Reflections is the pool of reflection texts (default DefaultReflections).
	Reflections []string
	// TrainPrefix and TrainContinuation say whether the correct steps before
	// the error and the steps after the correction are trained (default
	// true for both: STeP trains everything but the erroneous step).
	TrainPrefix, TrainContinuation bool
	// DataSource labels the rows.
	DataSource string
	// Keep is KeepCorrect (default: a trajectory whose corrected solution
	// does not end in the ground-truth answer is not written, as STeP keeps
	// successful trajectories) or KeepAll. A record without a ground-truth
	// answer is kept either way.
	Keep string
	// Grader grades the corrected solution (the correction and the steps
	// after it) against the ground-truth answer; the verdict is on the row.
	// Nil: not graded (then Keep must be KeepAll).
	Grader rewards.Grader
}

// DefaultOptions returns the STeP masking (only the erroneous step
// masked) and its success filter (KeepCorrect with the math grader).
func DefaultOptions() Options {
	return Options{Reflections: DefaultReflections, TrainPrefix: true, TrainContinuation: true, DataSource: "openai/prm800k",
		Keep: KeepCorrect, Grader: rewards.NewMathGrader(mathgrade.Options{})}
}

// prmRecord is the part of a PRM800K record that splicing reads.
type prmRecord struct {
	Question struct {
		Problem           string  `json:"problem"`
		GroundTruthAnswer *string `json:"ground_truth_answer"`
	} `json:"question"`
	Label struct {
		Steps []struct {
			Completions []struct {
				Text   string `json:"text"`
				Rating *int   `json:"rating"`
			} `json:"completions"`
			HumanCompletion *struct {
				Text string `json:"text"`
			} `json:"human_completion"`
			ChosenCompletion *int `json:"chosen_completion"`
		} `json:"steps"`
		FinishReason string `json:"finish_reason"`
	} `json:"label"`
}

// PRM800K reads the PRM800K records (JSONL, optionally gzipped) that cur
// selects from path and calls emit once per record, in input order. A record
// whose steps contain a step rated -1 gives a trajectory: the steps before it
// (as the labeller's chosen path), the first completion rated -1 at that
// step (masked), a reflection, the step the labeller continued with there (a
// sibling rated +1, or the human-written step), and the rest of the chosen
// path. Any other record gives the reason it has none.
func PRM800K(ctx context.Context, path string, cur Cursor, opts Options, emit func(Record) error) error {
	if len(opts.Reflections) == 0 {
		opts.Reflections = DefaultReflections
	}
	switch {
	case opts.Keep == "":
		opts.Keep = KeepCorrect
	case opts.Keep != KeepCorrect && opts.Keep != KeepAll:
		return fmt.Errorf("keep %q: want all or correct", opts.Keep)
	}
	if opts.Keep == KeepCorrect && opts.Grader == nil {
		return errors.New("keep correct needs a grader")
	}
	lf, err := openLines(path)
	if err != nil {
		return err
	}
	defer lf.close()
	cf := &cursorFile{lineFile: lf, c: cur}
	for {
		line, raw, key, ok, err := cf.next(ctx)
		if err != nil || !ok {
			return errors.Join(err, cf.end())
		}
		var rec prmRecord
		if err := json.Unmarshal(raw, &rec); err != nil {
			return &rollout.InputError{File: path, Line: line, Err: fmt.Errorf("malformed JSON: %w", err)}
		}
		t, reason, err := splicePRM(path, line, &rec, opts)
		if err != nil {
			return err
		}
		if err := emit(Record{Line: line, Key: key, Trajectory: t, Reason: reason}); err != nil {
			return err
		}
	}
}

// chosenText is the text the labeller continued with at a step.
func chosenText(rec *prmRecord, i int) (string, bool) {
	s := rec.Label.Steps[i]
	if c := s.ChosenCompletion; c != nil && *c >= 0 && *c < len(s.Completions) {
		return s.Completions[*c].Text, true
	}
	if s.HumanCompletion != nil {
		return s.HumanCompletion.Text, true
	}
	return "", false
}

func splicePRM(path string, line int, rec *prmRecord, opts Options) (*pipeline.Trajectory, string, error) {
	if rec.Question.Problem == "" {
		return nil, "", &rollout.InputError{File: path, Line: line, Field: "question.problem", Err: errors.New("missing")}
	}
	bad, badAt := -1, -1
	for i, s := range rec.Label.Steps {
		for j, c := range s.Completions {
			if c.Rating != nil && *c.Rating == -1 {
				bad, badAt = i, j
				break
			}
		}
		if bad >= 0 {
			break
		}
	}
	if bad < 0 {
		return nil, "no step rated -1", nil
	}
	step := rec.Label.Steps[bad]
	correction, source := "", ""
	if c := step.ChosenCompletion; c != nil && *c >= 0 && *c < len(step.Completions) && step.Completions[*c].Rating != nil && *step.Completions[*c].Rating == 1 {
		correction, source = step.Completions[*c].Text, "sibling_rated_+1"
	} else if step.HumanCompletion != nil && step.HumanCompletion.Text != "" {
		correction, source = step.HumanCompletion.Text, "human_step"
	} else {
		for _, c := range step.Completions {
			if c.Rating != nil && *c.Rating == 1 {
				correction, source = c.Text, "sibling_rated_+1"
				break
			}
		}
	}
	if correction == "" {
		return nil, fmt.Sprintf("step %d has no +1 sibling and no human step", bad), nil
	}
	var prefix []string
	for i := 0; i < bad; i++ {
		t, ok := chosenText(rec, i)
		if !ok {
			return nil, fmt.Sprintf("step %d before the error has no chosen completion", i), nil
		}
		prefix = append(prefix, t)
	}
	var rest []string
	for i := bad + 1; i < len(rec.Label.Steps); i++ {
		t, ok := chosenText(rec, i)
		if !ok {
			break // the labelled path ends here
		}
		rest = append(rest, t)
	}
	id := fmt.Sprintf("prm800k-%05d", line)
	h := fnv.New32a()
	h.Write([]byte(id))
	reflection := opts.Reflections[int(h.Sum32()%uint32(len(opts.Reflections)))]

	var segs []pipeline.Segment
	add := func(text, role string, trainable bool) {
		if len(segs) > 0 {
			// Steps are lines; the newline between two segments is trained
			// (so the masked span is exactly the erroneous step's text).
			segs = append(segs, pipeline.Segment{Text: "\n", Role: pipeline.SegSeparator, Trainable: true})
		}
		segs = append(segs, pipeline.Segment{Text: text, Role: role, Trainable: trainable})
	}
	for _, p := range prefix {
		add(p, pipeline.SegPrefix, opts.TrainPrefix)
	}
	add(step.Completions[badAt].Text, pipeline.SegErroneousStep, false)
	add(reflection, pipeline.SegReflection, true)
	add(correction, pipeline.SegCorrection, true)
	for _, c := range rest {
		add(c, pipeline.SegContinuation, opts.TrainContinuation)
	}
	m := map[string]any{
		"source_line": line, "erroneous_step_index": bad, "erroneous_completion_index": badAt,
		"correction_source": source, "finish_reason": rec.Label.FinishReason,
		"ground_truth_answer": rec.Question.GroundTruthAnswer,
	}
	if opts.Grader != nil {
		// The corrected solution is what the filter verifies (S3c-Math):
		// the correction and the labelled steps after it, where the final
		// answer is stated.
		ref := ""
		if gt := rec.Question.GroundTruthAnswer; gt != nil {
			ref = *gt
		}
		gm := grade(opts.Grader, strings.Join(append([]string{correction}, rest...), "\n"), "stop", ref, "ground_truth_answer", "the record has no ground_truth_answer")
		m["grade"] = gm
		if opts.Keep == KeepCorrect && ref != "" {
			if r := gm.keepReason("corrected solution"); r != "" {
				return nil, r + " (splice.keep correct; all keeps it)", nil
			}
		}
	}
	meta, _ := json.Marshal(m)
	t := &pipeline.Trajectory{
		ID: id, TaskID: id, Recipe: "step-splice", DataSource: opts.DataSource,
		Messages: []pipeline.TMessage{
			pipeline.Text("user", pipeline.SegPrompt, rec.Question.Problem, false),
			{Role: "assistant", Segments: segs},
		},
		Metadata: string(meta),
	}
	return t, "", nil
}
