package splice

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rewards/mathgrade"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/fakeserver"
)

const mrPath = "../../testdata/mr_gsm8k/first_error_590.jsonl.gz"

// readMR returns the bundled MR-GSM8K records by line.
func readMR(t *testing.T) map[int]*mrRecord {
	t.Helper()
	f, err := os.Open(mrPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]*mrRecord{}
	sc := bufio.NewScanner(gz)
	sc.Buffer(nil, 64<<20)
	for line := 1; sc.Scan(); line++ {
		var r mrRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out[line] = &r
	}
	return out
}

// testAnswer is the reference answer of a record, found independently of
// mrReference: the number in ground_truth_answer, else the first number
// after " is" on the last line of the reference solution.
func testAnswer(r *mrRecord) string {
	var s string
	if json.Unmarshal(r.GroundTruthAnswer, &s) != nil {
		s = string(r.GroundTruthAnswer)
	}
	if _, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64); err == nil {
		return s
	}
	lines := strings.Split(strings.TrimSpace(r.GroundTruthSolution), "\n")
	last := lines[len(lines)-1]
	for _, w := range strings.Fields(last[strings.LastIndex(last, " is")+3:]) {
		w = strings.Trim(w, "$.:")
		if _, err := strconv.ParseFloat(strings.ReplaceAll(w, ",", ""), 64); err == nil {
			return w
		}
	}
	return ""
}

// continuer answers a continuation with a corrected step and a final
// answer: the reference for even seeds, a wrong one for odd seeds. It names
// the mode it saw, so rows show which request produced them.
func continuer(answers map[string]string) fakeserver.Responder {
	return func(req *fakeserver.Request) fakeserver.Reply {
		ans := answers[req.Messages[0].Content]
		if ans == "" {
			return fakeserver.Reply{Status: 400, Message: "unknown question"}
		}
		if req.Seed != nil && *req.Seed%2 == 1 {
			ans += "1"
		}
		mode := "a new turn"
		if req.ContinueFinalMessage != nil && *req.ContinueFinalMessage {
			mode = "the same turn"
		}
		return fakeserver.Reply{Text: fmt.Sprintf("Step 99: Redoing that step correctly in %s.\n#### %s", mode, ans)}
	}
}

type mrMeta struct {
	Line             int    `json:"source_line"`
	FirstErrorStep   int    `json:"first_error_step"`
	LocatedBy        string `json:"located_by"`
	FirstErrorReason string `json:"first_error_reason"`
	Reflection       struct {
		Source    string `json:"source"`
		PoolIndex int    `json:"pool_index"`
	} `json:"reflection"`
	Continuation continuationMeta `json:"continuation"`
	Grade        *gradeMeta       `json:"grade"`
}

func TestMRGSM8KSplice(t *testing.T) {
	records := readMR(t)
	answers := map[string]string{}
	for _, r := range records {
		answers[r.Question] = testAnswer(r)
	}
	grader := rewards.NewMathGrader(mathgrade.Options{})
	for _, tc := range []struct {
		name       string
		mode       string
		noPrefill  bool
		echo       bool
		maskPrefix bool
		reflection string
		keep       string
		wantMode   string
		// wantRows < 0: the rows whose seed is even (graded correct).
		wantRows int
	}{
		{"prefill", rollout.ContinuePrefill, false, false, false, ReflectionPool, KeepAll, rollout.ContinuePrefill, 590},
		{"prefill echoed by the server", rollout.ContinuePrefill, false, true, false, ReflectionPool, KeepAll, rollout.ContinuePrefill, 590},
		{"auto on a server without prefill", rollout.ContinueAuto, true, false, false, ReflectionPool, KeepAll, rollout.ContinueUserTurn, 590},
		{"user turn, prefix masked", rollout.ContinueUserTurn, false, false, true, ReflectionPool, KeepAll, rollout.ContinueUserTurn, 590},
		{"label reason, keep correct", rollout.ContinueAuto, false, false, false, ReflectionLabelReason, KeepCorrect, rollout.ContinuePrefill, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeserver.New(continuer(answers))
			srv.NoPrefill, srv.EchoPrefill = tc.noPrefill, tc.echo
			defer srv.Close()
			pol := rollout.NewOpenAIPolicy(rollout.EndpointConfig{BaseURL: srv.BaseURL(), Model: "policy"})
			opts := DefaultMRGSM8KOptions(&rollout.Continuer{Policy: pol, Mode: tc.mode})
			opts.TrainPrefix, opts.ReflectionSource, opts.Keep, opts.Grader, opts.Seed = !tc.maskPrefix, tc.reflection, tc.keep, grader, 3
			var rows []export.SFTRow
			skips, err := mrgsm8k(context.Background(), mrPath, opts, func(tr *pipeline.Trajectory) error {
				row := tr.SFTRow()
				rows = append(rows, row)
				checkMRRow(t, tr, row, records, tc.maskPrefix, tc.wantMode, tc.reflection)
				var m mrMeta
				json.Unmarshal([]byte(*row.Metadata), &m)
				if m.Continuation.EchoedPrefix != tc.echo {
					t.Fatalf("%s: echoed_prefix %v", row.ID, m.Continuation.EchoedPrefix)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want := tc.wantRows
			if want < 0 {
				want = 0
				for _, r := range records {
					if rollout.DeriveSeed(3, "mr-gsm8k-"+r.UUID, 0, 0)%2 == 0 {
						want++
					}
				}
				for _, s := range skips {
					if !strings.HasPrefix(s.Reason, "continuation graded incorrect (answer ") {
						t.Fatalf("line %d skipped: %s", s.Line, s.Reason)
					}
				}
			} else if len(skips) != 0 {
				t.Fatalf("%d skips, first %+v", len(skips), skips[0])
			}
			if len(rows) != want || len(rows)+len(skips) != 590 {
				t.Fatalf("%d rows and %d skips, want %d rows", len(rows), len(skips), want)
			}
			// Rows come in input order.
			prev := 0
			for _, r := range rows {
				var m mrMeta
				json.Unmarshal([]byte(*r.Metadata), &m)
				if m.Line <= prev {
					t.Fatalf("row for line %d after line %d", m.Line, prev)
				}
				prev = m.Line
			}
		})
	}
}

// checkMRRow checks one row against its source record: the masked text is
// exactly the erroneous step (with the steps before it when the prefix is
// masked), the trained text is exactly reflection and continuation (after
// the prefix when it is trained), the segments tile the content, the
// content is the prefix sent to the model plus the continuation, and the
// metadata names what happened.
func checkMRRow(t *testing.T, tr *pipeline.Trajectory, row export.SFTRow, records map[int]*mrRecord, maskPrefix bool, wantMode, reflSource string) {
	t.Helper()
	var m mrMeta
	if err := json.Unmarshal([]byte(*row.Metadata), &m); err != nil {
		t.Fatal(err)
	}
	rec := records[m.Line]
	if rec == nil || len(row.Messages) != 2 || row.Messages[0].Content != rec.Question || row.Messages[0].LossMask != 0 || row.Messages[1].LossMask != 1 {
		t.Fatalf("%s: messages %+v", row.ID, row.Messages)
	}
	var k int
	json.Unmarshal(rec.FirstErrorStep, &k)
	if m.FirstErrorStep != k || m.LocatedBy != "label" || row.TaskID != rec.UUID {
		t.Fatalf("%s: metadata %+v", row.ID, m)
	}
	content := []rune(row.Messages[1].Content)
	var masked, trained strings.Builder
	var refl, cont []string
	for i, sp := range row.Messages[1].Segments {
		seg := tr.Messages[1].Segments[i]
		if got := string(content[sp.Start:sp.End]); got != seg.Text || sp.Trainable != seg.Trainable || sp.Role != seg.Role {
			t.Fatalf("%s: span %d [%d:%d] %q, segment %+v", row.ID, i, sp.Start, sp.End, got, seg)
		}
		if sp.Trainable {
			trained.WriteString(seg.Text)
		} else {
			masked.WriteString(seg.Text)
		}
		switch sp.Role {
		case pipeline.SegReflection:
			refl = append(refl, seg.Text)
		case pipeline.SegContinuation:
			cont = append(cont, seg.Text)
		}
	}
	if last := row.Messages[1].Segments[len(row.Messages[1].Segments)-1]; int(last.End) != utf8.RuneCountInString(row.Messages[1].Content) {
		t.Fatalf("%s: segments end at %d of %d", row.ID, last.End, len(content))
	}
	if len(refl) != 1 || len(cont) != 1 {
		t.Fatalf("%s: %d reflections, %d continuations", row.ID, len(refl), len(cont))
	}
	prefix := strings.Join(rec.Steps[:k-1], "\n")
	wantMasked, wantTrained := rec.Steps[k-1], "\n"+refl[0]+"\n"+cont[0]
	if k > 1 {
		if maskPrefix {
			wantMasked = prefix + "\n" + rec.Steps[k-1]
		} else {
			wantTrained = prefix + "\n" + wantTrained
		}
	}
	if masked.String() != wantMasked {
		t.Fatalf("%s: masked %q, want %q", row.ID, masked.String(), wantMasked)
	}
	if trained.String() != wantTrained {
		t.Fatalf("%s: trained %q, want %q", row.ID, trained.String(), wantTrained)
	}
	pool := DefaultReflections[m.Reflection.PoolIndex]
	if reflSource == ReflectionLabelReason {
		pool += " " + strings.Join(strings.Fields(*rec.FirstErrorReason), " ")
	}
	if refl[0] != pool || m.Reflection.Source != reflSource {
		t.Fatalf("%s: reflection %q from %s", row.ID, refl[0], m.Reflection.Source)
	}
	// The continuation was asked for from exactly the text before it, line
	// break included.
	c := m.Continuation
	before := strings.TrimSuffix(row.Messages[1].Content, "\n"+cont[0])
	if c.Mode != wantMode || c.Messages[0].Content != rec.Question || c.Messages[1].Role != "assistant" || c.Messages[1].Content != before+"\n" {
		t.Fatalf("%s: continuation %+v", row.ID, c)
	}
	if wantMode == rollout.ContinueUserTurn && (len(c.Messages) != 3 || c.Messages[2].Content != rollout.DefaultContinueInstruction || c.ContinueFinalMessage || !strings.Contains(cont[0], "a new turn")) {
		t.Fatalf("%s: user-turn continuation %+v", row.ID, c)
	}
	if wantMode == rollout.ContinuePrefill && (len(c.Messages) != 2 || !c.ContinueFinalMessage || !strings.Contains(cont[0], "the same turn")) {
		t.Fatalf("%s: prefill continuation %+v", row.ID, c)
	}
	if c.Seed != rollout.DeriveSeed(3, row.ID, 0, 0) {
		t.Fatalf("%s: seed %d", row.ID, c.Seed)
	}
	wantCorrect := c.Seed%2 == 0
	if g := m.Grade; g == nil || g.Correct == nil || *g.Correct != wantCorrect || row.Reward == nil || (*row.Reward == 1) != wantCorrect || g.Reference != testAnswer(rec) {
		t.Fatalf("%s: grade %+v reward %v, want correct %v", row.ID, m.Grade, row.Reward, wantCorrect)
	}
}

func TestMRReference(t *testing.T) {
	g := rewards.NewMathGrader(mathgrade.Options{})
	for _, tc := range []struct {
		answer, solution, ref, source, reason string
	}{
		{`5`, "x\n#### 5", "5", "ground_truth_answer", ""},
		{`"1,200"`, "", "1,200", "ground_truth_answer", ""},
		{`"Let's think step by step."`, "a\nx = 20 minutes\nThe value of x is 20.", "20", "ground_truth_solution", ""},
		{`"Mr. Jackson wants to give each student 2 glue sticks."`, "Mr. Jackson ...\nThe answer is: 2", "2", "ground_truth_solution", ""},
		{`null`, "no answer stated here at all, really", "", "", "is not an answer"},
	} {
		rec := &mrRecord{GroundTruthAnswer: json.RawMessage(tc.answer), GroundTruthSolution: tc.solution}
		ref, src, reason := mrReference(rec, g)
		if ref != tc.ref || src != tc.source || !strings.Contains(reason, tc.reason) || (tc.reason == "") != (reason == "") {
			t.Errorf("%s: %q %q %q", tc.answer, ref, src, reason)
		}
	}
}

// Records that cannot be spliced are skipped with their reason; records
// that cannot be read stop the run with their line.
func TestMRGSM8KBadRecords(t *testing.T) {
	srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{Text: "Step 3: fixed.\n#### 7"} })
	defer srv.Close()
	pol := rollout.NewOpenAIPolicy(rollout.EndpointConfig{BaseURL: srv.BaseURL(), Model: "policy"})
	rec := func(step string, steps ...string) string {
		b, _ := json.Marshal(map[string]any{"uuid": "u", "question": "q?", "ground_truth_answer": 7, "model_output_steps": steps})
		s := string(b)
		if step != "" {
			s = strings.TrimSuffix(s, "}") + `,"model_output_solution_first_error_step":` + step + `}`
		}
		return s
	}
	for _, tc := range []struct {
		name, line, skip, err string
	}{
		{"null step", rec("null", "Step 1: a"), "no first error step labelled (null)", ""},
		{"missing step", rec("", "Step 1: a"), "no first error step labelled (null)", ""},
		{"N/A", rec(`"N/A"`, "Step 1: a"), "first error step N/A is not a step number", ""},
		{"zero", rec("0", "Step 1: a"), "has no erroneous step", ""},
		{"string number", rec(`"2"`, "Step 1: a", "Step 2: b"), "", ""},
		{"beyond", rec("3", "Step 1: a", "Step 2: b"), "first error step 3 is beyond the solution's 2 steps", ""},
		{"empty step", rec("1", "Step 1: \r", "Step 2: b"), "erroneous step 1 is empty", ""},
		{"no steps", rec("1"), "no model_output_steps", ""},
		{"missing question", `{"uuid": "u", "model_output_steps": ["a"]}`, "", "field \"question\": missing"},
		{"malformed", `{"uuid": `, "", ":1: malformed JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "in.jsonl")
			os.WriteFile(p, []byte(tc.line+"\n"), 0o644)
			n := 0
			skips, err := mrgsm8k(context.Background(), p, DefaultMRGSM8KOptions(&rollout.Continuer{Policy: pol}), func(*pipeline.Trajectory) error { n++; return nil })
			switch {
			case tc.err != "":
				var ie *rollout.InputError
				if err == nil || !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
			case err != nil:
				t.Fatal(err)
			case tc.skip == "":
				if n != 1 || len(skips) != 0 {
					t.Fatalf("%d rows, skips %v", n, skips)
				}
			default:
				if n != 0 || len(skips) != 1 || !strings.Contains(skips[0].Reason, tc.skip) || skips[0].Line != 1 {
					t.Fatalf("%d rows, skips %+v, want %q", n, skips, tc.skip)
				}
			}
		})
	}
}

func TestMRGSM8KEndpointFailures(t *testing.T) {
	if _, err := mrgsm8k(context.Background(), mrPath, MRGSM8KOptions{}, nil); err == nil || !strings.Contains(err.Error(), "needs a model endpoint") {
		t.Fatalf("no endpoint: %v", err)
	}
	srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{Status: 401, Message: "bad key"} })
	defer srv.Close()
	e, err := rollout.NewEndpoints(rollout.EndpointConfig{BaseURL: srv.BaseURL(), Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	opts := DefaultMRGSM8KOptions(&rollout.Continuer{Policy: e, Mode: rollout.ContinueUserTurn})
	rows := 0
	skips, err := mrgsm8k(context.Background(), mrPath, opts, func(*pipeline.Trajectory) error { rows++; return nil })
	if err != nil || rows != 0 || len(skips) != 590 || !strings.HasPrefix(skips[0].Reason, "continuation request failed: ") || !strings.Contains(skips[0].Reason, "HTTP 401: bad key") {
		t.Fatalf("err %v, %d rows, %d skips: %+v", err, rows, len(skips), skips[:1])
	}
	opts.Keep = KeepCorrect
	if _, err := mrgsm8k(context.Background(), mrPath, opts, nil); err == nil || !strings.Contains(err.Error(), "needs a grader") {
		t.Fatalf("keep correct without grader: %v", err)
	}
	// An emit error stops the run and is returned.
	srv2 := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{Text: "#### 1"} })
	defer srv2.Close()
	opts = DefaultMRGSM8KOptions(&rollout.Continuer{Policy: rollout.NewOpenAIPolicy(rollout.EndpointConfig{BaseURL: srv2.BaseURL(), Model: "m"})})
	stop := errors.New("disk full")
	rows = 0
	_, err = mrgsm8k(context.Background(), mrPath, opts, func(*pipeline.Trajectory) error {
		rows++
		if rows == 3 {
			return stop
		}
		return nil
	})
	// At most the records in flight (16, the default) are asked for after
	// the failing one.
	if !errors.Is(err, stop) || rows != 3 || srv2.Count() > 3+2*16+2 {
		t.Fatalf("err %v after %d rows and %d requests", err, rows, srv2.Count())
	}
}

// FuzzMRFields: the label and reference readers never panic on a record's
// raw fields, a step they accept is within the solution, and a reference
// comes with its source.
func FuzzMRFields(f *testing.F) {
	f.Add(`3`, 5, `"Let's think step by step."`, "x\nThe value of x is $10,000.")
	f.Add(`"N/A"`, 2, `12`, "")
	f.Add(`null`, 0, `"Mr. Jackson"`, "The answer is: 2")
	f.Add(`-1`, 3, `{"a": 1}`, "The value of y is")
	g := rewards.NewMathGrader(mathgrade.Options{})
	f.Fuzz(func(t *testing.T, step string, steps int, answer, solution string) {
		steps = max(0, min(steps, 64))
		k, reason := firstErrorStep(json.RawMessage(step), steps)
		if reason == "" && (k < 1 || k > steps) {
			t.Fatalf("step %d of %d accepted", k, steps)
		}
		if reason != "" && k != 0 {
			t.Fatalf("rejected with step %d", k)
		}
		ref, src, why := mrReference(&mrRecord{GroundTruthAnswer: json.RawMessage(answer), GroundTruthSolution: solution}, g)
		if (ref == "") != (why != "") || (ref != "") != (src != "") {
			t.Fatalf("ref %q source %q reason %q", ref, src, why)
		}
	})
}
