package splice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rollout"
)

// Reflection sources for MR-GSM8K splicing.
const (
	// ReflectionPool takes the reflection from the pool.
	ReflectionPool = "pool"
	// ReflectionLabelReason appends the annotator's first-error reason to
	// an opener from the pool.
	ReflectionLabelReason = "label-reason"
)

// MRGSM8KOptions configures MR-GSM8K splicing.
type MRGSM8KOptions struct {
	// Continuer asks the model for the corrected continuation (required).
	Continuer *rollout.Continuer
	Sampling  rollout.Sampling
	// Seed is the run seed; each record's request seed derives from it and
	// the record's id, and so does the choice of reflection.
	Seed int64
	// Model is recorded when the server does not name one.
	Model string
	// Reflections is the pool (default DefaultReflections).
	Reflections []string
	// ReflectionSource is ReflectionPool (default) or ReflectionLabelReason.
	ReflectionSource string
	// TrainPrefix trains the correct steps before the error (STeP, S3c-Math)
	// instead of masking them.
	TrainPrefix bool
	// Grader grades the continuation against the record's reference answer;
	// nil: not graded.
	Grader rewards.Grader
	// Keep is KeepAll (default) or KeepCorrect (needs Grader).
	Keep string
	// Concurrency is the number of records in flight (default 16).
	Concurrency int
	DataSource  string
}

// DefaultMRGSM8KOptions returns the STeP masking (only the erroneous step
// masked) with reflections from the default pool.
func DefaultMRGSM8KOptions(c *rollout.Continuer) MRGSM8KOptions {
	return MRGSM8KOptions{Continuer: c, TrainPrefix: true, Keep: KeepAll, ReflectionSource: ReflectionPool, DataSource: "dvlab-research/MR-GSM8K"}
}

// mrRecord is the part of an MR-GSM8K record that splicing reads.
type mrRecord struct {
	UUID                string          `json:"uuid"`
	Question            string          `json:"question"`
	GroundTruthSolution string          `json:"ground_truth_solution"`
	GroundTruthAnswer   json.RawMessage `json:"ground_truth_answer"`
	Steps               []string        `json:"model_output_steps"`
	FirstErrorStep      json.RawMessage `json:"model_output_solution_first_error_step"`
	FirstErrorReason    *string         `json:"model_output_solution_first_error_reason"`
	QuestionType        string          `json:"question_type"`
}

// mrItem is one line of the input.
type mrItem struct {
	line int
	key  string
	rec  *mrRecord
}

// MRGSM8K reads the MR-GSM8K records (JSONL, optionally gzipped) that cur
// selects from path and calls emit once per record, in input order, up to
// opts.Concurrency records in flight. A record that can be spliced gives a
// trajectory: the question; then one assistant message of the steps before the
// labelled first error (trained when TrainPrefix), the erroneous step
// (masked), a reflection, and the model's continuation (both trained). The
// continuation is requested from the prefix as the row has it, erroneous
// step and reflection included, and a line break, so the trained text is
// conditioned in training on exactly what it was generated from. A record
// that cannot be spliced, and with KeepCorrect one whose continuation is not
// graded correct, gives the reason instead.
func MRGSM8K(ctx context.Context, path string, cur Cursor, opts MRGSM8KOptions, emit func(Record) error) error {
	if opts.Continuer == nil || opts.Continuer.Policy == nil {
		return errors.New("mr-gsm8k splicing needs a model endpoint for the continuations")
	}
	if opts.Continuer.Mode != "" && !rollout.ValidContinueMode(opts.Continuer.Mode) {
		return fmt.Errorf("continuation mode %q: want prefill, user-turn or auto", opts.Continuer.Mode)
	}
	switch opts.Keep {
	case "", KeepAll:
	case KeepCorrect:
		if opts.Grader == nil {
			return errors.New("keep correct needs a grader")
		}
	default:
		return fmt.Errorf("keep %q: want all or correct", opts.Keep)
	}
	switch opts.ReflectionSource {
	case "", ReflectionPool, ReflectionLabelReason:
	default:
		return fmt.Errorf("reflection source %q: want pool or label-reason", opts.ReflectionSource)
	}
	if len(opts.Reflections) == 0 {
		opts.Reflections = DefaultReflections
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	lf, err := openLines(path)
	if err != nil {
		return err
	}
	defer lf.close()
	cf := &cursorFile{lineFile: lf, c: cur}
	next := func() (mrItem, bool, error) {
		line, raw, key, ok, err := cf.next(ctx)
		if !ok || err != nil {
			return mrItem{}, false, err
		}
		var rec mrRecord
		if err := json.Unmarshal(raw, &rec); err != nil {
			return mrItem{}, false, &rollout.InputError{File: path, Line: line, Err: fmt.Errorf("malformed JSON: %w", err)}
		}
		if strings.TrimSpace(rec.Question) == "" {
			return mrItem{}, false, &rollout.InputError{File: path, Line: line, Field: "question", Err: errors.New("missing")}
		}
		return mrItem{line, key, &rec}, true, nil
	}
	work := func(ctx context.Context, it mrItem) Record {
		t, reason := spliceMR(ctx, it.line, it.rec, &opts)
		return Record{Line: it.line, Key: it.key, Trajectory: t, Reason: reason}
	}
	if err := ordered(ctx, opts.Concurrency, next, work, emit); err != nil {
		return err
	}
	return cf.end()
}

// firstErrorStep reads the 1-based first error step: a number or a string of
// digits. ok is false, with the reason, when the record labels none.
func firstErrorStep(raw json.RawMessage, steps int) (int, string) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, "no first error step labelled (null)"
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		s = strings.TrimSpace(str)
	}
	k, err := strconv.Atoi(s)
	switch {
	case err != nil:
		return 0, fmt.Sprintf("first error step %s is not a step number", clip(s, 20))
	case k < 1:
		return 0, fmt.Sprintf("first error step %d: the label says the solution has no erroneous step", k)
	case k > steps:
		return 0, fmt.Sprintf("first error step %d is beyond the solution's %d steps", k, steps)
	}
	return k, ""
}

var (
	numericRe = regexp.MustCompile(`^[-+]?\$?(?:\d[\d,]*(?:\.\d+)?|\.\d+)$`)
	// "The value of x is 20." closes the reference solutions of MR-GSM8K's
	// reversed questions.
	valueOfRe = regexp.MustCompile(`(?i)\bthe value of\b[^\n]*?\bis:?\s*\$?([-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+))`)
)

// mrReference is the reference answer of a record and where it came from.
// MR-GSM8K's ground_truth_answer is a number for most records; for 74 of its
// reversed questions it is "Let's think step by step." and for one a
// sentence of the question, so the answer is then read from the last line of
// the reference solution.
func mrReference(rec *mrRecord, g rewards.Grader) (ref, source, reason string) {
	var ans string
	if json.Unmarshal(rec.GroundTruthAnswer, &ans) != nil {
		ans = strings.TrimSpace(string(rec.GroundTruthAnswer)) // a JSON number
	}
	ans = strings.TrimSpace(ans)
	if ans != "" && ans != "null" && numericRe.MatchString(ans) {
		return ans, "ground_truth_answer", ""
	}
	sol := strings.TrimSpace(rec.GroundTruthSolution)
	last := sol[strings.LastIndexByte(sol, '\n')+1:]
	if m := valueOfRe.FindStringSubmatch(last); m != nil {
		return m[1], "ground_truth_solution", ""
	}
	if g != nil && sol != "" {
		// A bare answer is not enough: any short last line would pass.
		if a, rule, ok := g.Extract(sol); ok && rule != "bare" {
			return a, "ground_truth_solution", ""
		}
	}
	return "", "", fmt.Sprintf("ground_truth_answer %s is not an answer and the reference solution states none", clip(string(rec.GroundTruthAnswer), 40))
}

// spliceMR builds one record's trajectory, or says why there is none.
func spliceMR(ctx context.Context, line int, rec *mrRecord, opts *MRGSM8KOptions) (*pipeline.Trajectory, string) {
	if len(rec.Steps) == 0 {
		return nil, "no model_output_steps"
	}
	k, reason := firstErrorStep(rec.FirstErrorStep, len(rec.Steps))
	if reason != "" {
		return nil, reason
	}
	bad := rec.Steps[k-1]
	if strings.TrimSpace(stepBody(bad)) == "" {
		return nil, fmt.Sprintf("erroneous step %d is empty (%q)", k, bad)
	}
	id := rec.UUID
	if id == "" {
		id = fmt.Sprintf("line-%d", line)
	}
	id = "mr-gsm8k-" + id
	ri := pick(opts.Reflections, opts.Seed, id)
	reflection, refSource := opts.Reflections[ri], ReflectionPool
	if opts.ReflectionSource == ReflectionLabelReason {
		if rec.FirstErrorReason == nil || strings.TrimSpace(*rec.FirstErrorReason) == "" {
			return nil, "no first error reason to reflect with"
		}
		reflection += " " + strings.Join(strings.Fields(*rec.FirstErrorReason), " ")
		refSource = ReflectionLabelReason
	}

	var b builder
	for _, s := range rec.Steps[:k-1] {
		b.add("\n", s, pipeline.SegPrefix, opts.TrainPrefix)
	}
	b.add("\n", bad, pipeline.SegErroneousStep, false)
	b.add("\n", reflection, pipeline.SegReflection, true)
	// The prefill ends with the line break that starts the next step, so
	// the model writes a new step rather than going on with the reflection.
	prefill := pipeline.TMessage{Segments: b.segs}.Content() + "\n"

	prompt := []rollout.Message{{Role: "user", Content: rec.Question}}
	seed := rollout.DeriveSeed(opts.Seed, id, 0, 0)
	c, err := opts.Continuer.Continue(ctx, prompt, prefill, opts.Sampling, seed)
	if err != nil {
		return nil, "continuation request failed: " + err.Error()
	}
	cm, lead, text := newContinuationMeta(c, opts.Continuer.Mode, seed, opts.Sampling, opts.Model)
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Sprintf("empty continuation (finish_reason %q)", c.Response.FinishReason)
	}
	var gm *gradeMeta
	if opts.Grader != nil {
		ref, src, why := mrReference(rec, opts.Grader)
		// Only the continuation is graded: the erroneous step may itself
		// state a final answer ("#### 2.8").
		gm = grade(opts.Grader, text, c.Response.FinishReason, ref, src, why)
	}
	if opts.Keep == KeepCorrect {
		if r := gm.keepReason("continuation"); r != "" {
			return nil, r
		}
	}
	// In prefill mode the content is then exactly the prefill followed by
	// the response.
	b.add("\n"+lead, text, pipeline.SegContinuation, true)

	reason = ""
	if rec.FirstErrorReason != nil {
		reason = *rec.FirstErrorReason
	}
	meta, err := json.Marshal(map[string]any{
		"source_line": line, "uuid": rec.UUID, "question_type": rec.QuestionType,
		"first_error_step": k, "located_by": "label", "first_error_reason": reason,
		"reflection":   map[string]any{"source": refSource, "pool_index": ri},
		"train_prefix": opts.TrainPrefix,
		"continuation": cm, "grade": gm,
	})
	if err != nil {
		return nil, "encoding metadata: " + err.Error()
	}
	return &pipeline.Trajectory{
		ID: id, TaskID: rec.UUID, Recipe: "step-splice", DataSource: opts.DataSource,
		Messages: []pipeline.TMessage{
			pipeline.Text("user", pipeline.SegPrompt, rec.Question, false),
			{Role: "assistant", Segments: b.segs},
		},
		Reward:   gm.reward(),
		Metadata: string(meta),
	}, ""
}

// stepLabelRe is the "Step 3:" label MR-GSM8K puts before each step.
var stepLabelRe = regexp.MustCompile(`^\s*[Ss]tep\s*\d+\s*[:.]`)

// stepBody is a step without its label.
func stepBody(s string) string { return stepLabelRe.ReplaceAllString(s, "") }
