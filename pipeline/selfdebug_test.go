package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/doccheck"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/fakeserver"
	"github.com/redraft/redraft/tokenizer"
	"github.com/redraft/redraft/validate"
)

// pyBlock is a reply holding program in a python code block.
func pyBlock(program string) string { return "```python\n" + program + "```" }

// firstAssert is the first line of a HumanEval problem's tests with an
// assert in it: the test a program returning None fails first.
func firstAssert(t *testing.T, tests string) string {
	t.Helper()
	for l := range strings.SplitSeq(tests, "\n") {
		if strings.Contains(l, "assert") {
			return strings.TrimSpace(l)
		}
	}
	t.Fatalf("no assert in %q", tests)
	return ""
}

// codeRequest says which problem, turn and sample an episode request is
// for: the problem by its prompt in the first user message, the turn by the
// messages (question, then attempt and feedback per turn), the sample by the
// seed (rollout.DeriveSeed with the run's seed).
func codeRequest(req *fakeserver.Request, probs []map[string]string, seed int64, n int) (p map[string]string, turn, sample int) {
	for _, pp := range probs {
		if strings.Contains(req.Messages[0].Content, pp["prompt"]) {
			p = pp
		}
	}
	turn = (len(req.Messages) - 1) / 2
	sample = -1
	if p != nil {
		for i := range n {
			if rollout.DeriveSeed(seed, p["task_id"], i, turn) == *req.Seed {
				sample = i
			}
		}
	}
	return p, turn, sample
}

// codeBySeed answers HumanEval problems with the canonical solution for
// even seeds and a body returning None for odd ones (fakeserver's
// convention for toy tasks), whatever the turn.
func codeBySeed(probs []map[string]string) fakeserver.Responder {
	return func(req *fakeserver.Request) fakeserver.Reply {
		p, _, _ := codeRequest(req, probs, 0, 0)
		if p == nil {
			return fakeserver.Reply{Status: 400, Message: "unknown problem"}
		}
		if fakeserver.IsCorrectSeed(*req.Seed) {
			return fakeserver.Reply{Text: pyBlock(p["prompt"] + p["canonical_solution"])}
		}
		return fakeserver.Reply{Text: pyBlock(p["prompt"] + "    return None\n")}
	}
}

// rowExecutionOf is a row's response_metadata.execution.
type rowExecutionOf struct {
	Found   bool   `json:"found"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Passed  int    `json:"passed"`
	Total   int    `json:"total"`
	Tests   []struct {
		Test   string `json:"test"`
		Passed bool   `json:"passed"`
	} `json:"tests"`
}

func executionOf(t *testing.T, r export.RLRow) *rowExecutionOf {
	t.Helper()
	if r.ResponseMetadata == nil {
		return nil
	}
	var m struct {
		Execution *rowExecutionOf `json:"execution"`
	}
	if err := json.Unmarshal([]byte(*r.ResponseMetadata), &m); err != nil {
		t.Fatalf("%s/%d turn %d: response_metadata: %v", r.TaskID, r.SampleIndex, r.Turn, err)
	}
	return m.Execution
}

func component(r export.RLRow, name string) (*float64, bool) {
	for _, c := range r.RewardComponents {
		if c.Name == name {
			return c.Value, true
		}
	}
	return nil, false
}

// The self-debug preset against the in-process server, scripted per sample
// on four HumanEval problems, each program run in the sandbox:
//
//	sample 0: the canonical solution at once (the episode stops there);
//	sample 1: a body returning None, then the canonical solution ONLY if
//	          the feedback it receives holds the problem's first assert and
//	          AssertionError (what the sandbox reports), else None again;
//	sample 2: prose without code, then (if told no program was found) a
//	          body raising ValueError("boom"), then (if the feedback holds
//	          "ValueError: boom") the canonical solution;
//	sample 3: None every time (never repaired).
//
// So a pass at turn 1 or 2 proves the feedback was built from the real
// execution. The rl rows, the sft repair rows and their masks (segments and
// token labels) follow.
func TestSelfDebugExecutionFeedback(t *testing.T) {
	requireSandbox(t)
	path, probs := humanEvalFile(t, 4)
	cfg, err := LoadConfig("../configs/presets/self-debug.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Episode.Feedback != "execution" || cfg.Episode.SFT != SFTRepair || cfg.Reward.Grader != "python" || cfg.Episode.Turns != 3 {
		t.Fatalf("self-debug preset: %+v %+v", cfg.Episode, cfg.Reward.Grader)
	}
	const n = 4
	seed := cfg.Seed
	asserts := map[string]string{}
	for _, p := range probs {
		asserts[p["task_id"]] = firstAssert(t, p["test"])
	}
	feedbackOK := func(msg string, want ...string) bool {
		for _, w := range want {
			if !strings.Contains(msg, w) {
				return false
			}
		}
		return strings.HasSuffix(msg, "\n\n"+rollout.ExecutionInstruction)
	}
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		p, turn, sample := codeRequest(req, probs, seed, n)
		if p == nil || sample < 0 {
			return fakeserver.Reply{Status: 400, Message: "unknown problem or seed"}
		}
		canonical := pyBlock(p["prompt"] + p["canonical_solution"])
		none := pyBlock(p["prompt"] + "    return None\n")
		last := req.Messages[len(req.Messages)-1].Content
		switch {
		case sample == 0 && turn == 0:
			return fakeserver.Reply{Text: "Here it is:\n" + canonical}
		case sample == 1 && turn == 1 && feedbackOK(last, asserts[p["task_id"]], "AssertionError", "Your program failed"):
			return fakeserver.Reply{Text: "The check failed; fixed:\n" + canonical}
		case sample == 2 && turn == 0:
			return fakeserver.Reply{Text: "I would loop over the input and compare:\n```text\nfor each pair: compare\n```"}
		case sample == 2 && turn == 1 && feedbackOK(last, "No Python program was found"):
			return fakeserver.Reply{Text: pyBlock(p["prompt"] + "    raise ValueError(\"boom\")\n")}
		case sample == 2 && turn == 2 && feedbackOK(last, "ValueError: boom"):
			return fakeserver.Reply{Text: canonical}
		}
		return fakeserver.Reply{Text: none}
	})
	defer srv.Close()
	cfg.Source.Path, cfg.Endpoint.BaseURL, cfg.Output.Dir = path, srv.BaseURL(), t.TempDir()
	cfg.Sampling.N = n
	tok := "../tokenizer/testdata/synthetic.json"
	cfg.Output.Tokenizer, cfg.Output.ChatFormat = tok, "chatml"
	m, err := Execute(context.Background(), cfg, JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkManifest(t, cfg.Output.Dir, m)
	track, err := export.LoadTokenTrack(tok, "")
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := validate.Dir(context.Background(), cfg.Output.Dir, validate.Options{Tokens: track}); err != nil || !rep.OK() {
		t.Fatalf("validate with re-rendering: %v %+v", err, rep)
	}

	// rl: 4 episodes of 1, 2, 3 and 3 turns per problem.
	rows := readAll(t, cfg.Output.Dir)
	if len(rows) != 9*len(probs) || srv.Count() != int64(len(rows)) {
		t.Fatalf("%d rows for %d requests, want %d", len(rows), srv.Count(), 9*len(probs))
	}
	type key struct {
		task         string
		sample, turn int
	}
	byKey := map[key]export.RLRow{}
	for _, r := range rows {
		byKey[key{r.TaskID, int(r.SampleIndex), int(r.Turn)}] = r
	}
	wantTurns := []int{1, 2, 3, 3}
	wantCorrect := [][]bool{{true}, {false, true}, {false, false, true}, {false, false, false}}
	for _, p := range probs {
		id := p["task_id"]
		for s := range n {
			for turn := range 3 {
				r, ok := byKey[key{id, s, turn}]
				if ok != (turn < wantTurns[s]) {
					t.Fatalf("%s sample %d turn %d: row present %v, want %v (episodes end at their first pass)", id, s, turn, ok, !ok)
				}
				if !ok {
					continue
				}
				where := fmt.Sprintf("%s sample %d turn %d", id, s, turn)
				want := wantCorrect[s][turn]
				v, _ := component(r, "verifiable")
				if v == nil || (*v == 1) != want || r.Correct == nil || *r.Correct != want {
					t.Errorf("%s: verifiable %v correct %v, want %v (%s)\n%s", where, v, r.Correct, want, deref(r.GradeReason), r.Response)
				}
				ex := executionOf(t, r)
				if ex == nil {
					t.Fatalf("%s: no response_metadata.execution", where)
				}
				if s == 2 && turn == 0 && (ex.Found || !strings.HasPrefix(deref(r.GradeReason), "no_code")) {
					t.Errorf("%s: prose graded %+v, reason %q", where, ex, deref(r.GradeReason))
				}
				if turn == 0 {
					if r.Transition != nil || len(r.Prompt) != 1 {
						t.Errorf("%s: transition %v, %d prompt messages", where, r.Transition, len(r.Prompt))
					}
					continue
				}
				// A revision: the exact conversation, whose last message
				// is the previous attempt's real failure and the
				// instruction.
				prev := byKey[key{id, s, turn - 1}]
				wantTr := map[bool]string{false: "i", true: "c"}[*prev.Correct] + "->" + map[bool]string{false: "i", true: "c"}[want]
				if deref(r.Transition) != wantTr {
					t.Errorf("%s: transition %q, want %q", where, deref(r.Transition), wantTr)
				}
				if len(r.Prompt) != 1+2*turn || r.Prompt[2*turn-1].Content != prev.Response {
					t.Fatalf("%s: prompt %+v", where, r.Prompt)
				}
				fb := r.Prompt[2*turn].Content
				pex := executionOf(t, prev)
				if r.Prompt[2*turn].Role != "user" || !strings.HasSuffix(fb, "\n\n"+rollout.ExecutionInstruction) ||
					(pex.Reason != "no_code" && !strings.Contains(fb, strings.TrimSpace(pex.Message))) {
					t.Errorf("%s: feedback %q is not the previous attempt's failure %q and the instruction", where, fb, pex.Message)
				}
				if s == 1 && turn == 1 {
					for _, w := range []string{firstAssert(t, p["test"]), "AssertionError", fmt.Sprintf("failed %d of %d tests", pex.Total, pex.Total)} {
						if !strings.Contains(fb, w) {
							t.Errorf("%s: feedback %q lacks %q", where, fb, w)
						}
					}
				}
			}
		}
	}

	// sft: the repaired episodes (samples 1 and 2), counted out: the
	// others by reason.
	sft := m.Datasets["sft"]
	if sft.Rows != int64(2*len(probs)) || sft.Filtered[FilterFirstTry] != int64(len(probs)) || sft.Filtered[FilterUnrepaired] != int64(len(probs)) {
		t.Fatalf("sft dataset: %d rows, filtered %v", sft.Rows, sft.Filtered)
	}
	paths, _ := filepath.Glob(filepath.Join(cfg.Output.Dir, "data", "sft", "*.parquet"))
	var trows []export.SFTTokensRow
	for _, p := range paths {
		rs, err := export.ReadRows[export.SFTTokensRow](context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		trows = append(trows, rs...)
	}
	tk, err := tokenizer.Load(tok)
	if err != nil {
		t.Fatal(err)
	}
	var sftRows []export.SFTRow
	for _, tr := range trows {
		r := tr.SFT()
		sftRows = append(sftRows, r)
		var meta struct {
			SampleIndex    int      `json:"sample_index"`
			Attempts       int      `json:"attempts"`
			RepairedAtTurn int      `json:"repaired_at_turn"`
			Transition     *string  `json:"transition"`
			FixedTests     []string `json:"fixed_tests"`
			Failures       []struct {
				Turn        int      `json:"turn"`
				Reason      string   `json:"reason"`
				FailedTests []string `json:"failed_tests"`
			} `json:"failures"`
		}
		if err := json.Unmarshal([]byte(*r.Metadata), &meta); err != nil {
			t.Fatal(err)
		}
		s := meta.SampleIndex
		if r.Recipe != SFTRepair || (s != 1 && s != 2) || r.ID != fmt.Sprintf("%s#s%d#repair", r.TaskID, s) {
			t.Fatalf("sft row %s: recipe %q sample %d", r.ID, r.Recipe, s)
		}
		turns := wantTurns[s]
		if meta.Attempts != turns || meta.RepairedAtTurn != turns-1 || deref(meta.Transition) != "i->c" || len(meta.Failures) != turns-1 {
			t.Errorf("%s: metadata %s", r.ID, *r.Metadata)
		}
		// The conversation: question, then attempt and feedback per failed
		// turn, then the passing revision; only the revision trained.
		if len(r.Messages) != 2*turns {
			t.Fatalf("%s: %d messages, want %d", r.ID, len(r.Messages), 2*turns)
		}
		final := byKey[key{r.TaskID, s, turns - 1}]
		if !slices.EqualFunc(r.Messages[:len(r.Messages)-1], final.Prompt, func(a export.SFTMessage, b export.Message) bool {
			return a.Role == b.Role && a.Content == b.Content
		}) {
			t.Errorf("%s: the conversation is not the prompt the revision was sampled with", r.ID)
		}
		for i, msg := range r.Messages {
			role := map[bool]string{true: SegAttempt, false: SegFeedback}[i%2 == 1]
			switch {
			case i == 0:
				role = SegPrompt
			case i == len(r.Messages)-1:
				role = SegCorrection
			}
			trained := i == len(r.Messages)-1
			if len(msg.Segments) != 1 || msg.Segments[0].Role != role || msg.Segments[0].Trainable != trained || (msg.LossMask == 1) != trained {
				t.Errorf("%s message %d: segments %+v loss_mask %d, want one %s segment, trained %v", r.ID, i, msg.Segments, msg.LossMask, role, trained)
			}
		}
		if last := r.Messages[len(r.Messages)-1]; last.Content != final.Response || r.Reward == nil || *r.Reward != 1 {
			t.Errorf("%s: trained %q reward %v, want the passing revision", r.ID, last.Content, r.Reward)
		}
		// Every test of the problem failed (None; ValueError; no program)
		// and passes in the revision.
		fex := executionOf(t, final)
		if len(fex.Tests) == 0 || len(meta.FixedTests) != len(fex.Tests) {
			t.Errorf("%s: fixed_tests %q, want the %d tests", r.ID, meta.FixedTests, len(fex.Tests))
		}
		if s == 2 && (!strings.HasPrefix(meta.Failures[0].Reason, "no_code") || len(meta.Failures[0].FailedTests) != 0 || !strings.HasPrefix(meta.Failures[1].Reason, "tests_failed")) {
			t.Errorf("%s: failures %+v", r.ID, meta.Failures)
		}
		// The token labels: only the revision's tokens are trained.
		trainedText := final.Response + "<|im_end|>"
		var run []int
		covered := 0
		flush := func() {
			if len(run) > 0 {
				txt := tk.Decode(run)
				if !strings.Contains(trainedText, txt) {
					t.Fatalf("%s: trained tokens %q are not the revision's", r.ID, txt)
				}
				covered += len(txt)
			}
			run = run[:0]
		}
		for i, l := range tr.Labels {
			if l == -100 {
				flush()
				continue
			}
			if l != tr.InputIDs[i] {
				t.Fatalf("%s: label %d for id %d", r.ID, l, tr.InputIDs[i])
			}
			run = append(run, int(l))
		}
		flush()
		if covered < len(trainedText)/2 {
			t.Errorf("%s: %d trained bytes for a %d-byte revision", r.ID, covered, len(trainedText))
		}
	}
	checkDocRow(t, "docs/recipes/self-debug.md", doccheck.One(t, "..", "docs/recipes/self-debug.md", "TestSelfDebugExecutionFeedback"), sftRows)
}

// The score-code preset against the in-process server on three HumanEval
// problems: every episode runs both turns after the fixed SCoRe
// instruction (no test output in it), the programs run in the sandbox, and
// the turn-2 rows carry the transition and score_bonus = 10 (r2 - r1).
func TestScoreCodePreset(t *testing.T) {
	requireSandbox(t)
	path, probs := humanEvalFile(t, 3)
	cfg, err := LoadConfig("../configs/presets/score-code.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Episode.Feedback != "fixed" || cfg.Episode.Turns != 2 || cfg.Reward.Grader != "python" || cfg.Episode.Instruction != rollout.SCoReInstruction {
		t.Fatalf("score-code preset: %+v", cfg.Episode)
	}
	const n = 4
	seed := cfg.Seed
	// Per sample, (turn 0, turn 1) correct: c->c, i->c, c->i, i->i.
	plan := [][2]bool{{true, true}, {false, true}, {true, false}, {false, false}}
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		p, turn, sample := codeRequest(req, probs, seed, n)
		if p == nil || sample < 0 {
			return fakeserver.Reply{Status: 400, Message: "unknown problem or seed"}
		}
		if plan[sample][turn] {
			return fakeserver.Reply{Text: "```python\n" + p["prompt"] + p["canonical_solution"] + "```"}
		}
		return fakeserver.Reply{Text: "```python\n" + p["prompt"] + "    return None\n```"}
	})
	defer srv.Close()
	cfg.Source.Path, cfg.Endpoint.BaseURL, cfg.Output.Dir = path, srv.BaseURL(), t.TempDir()
	cfg.Sampling.N = n
	m, err := Execute(context.Background(), cfg, JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkManifest(t, cfg.Output.Dir, m)
	checkValid(t, cfg.Output.Dir)
	rows := readAll(t, cfg.Output.Dir)
	if len(rows) != 2*n*len(probs) {
		t.Fatalf("%d rows, want %d: every episode runs both turns", len(rows), 2*n*len(probs))
	}
	for _, r := range rows {
		where := fmt.Sprintf("%s sample %d turn %d", r.TaskID, r.SampleIndex, r.Turn)
		want := plan[r.SampleIndex][r.Turn]
		if v, _ := component(r, "verifiable"); v == nil || (*v == 1) != want {
			t.Errorf("%s: verifiable %v, want %v (%s)", where, v, want, deref(r.GradeReason))
		}
		if executionOf(t, r) == nil {
			t.Errorf("%s: no response_metadata.execution", where)
		}
		bonus, ok := component(r, "score_bonus")
		if r.Turn == 0 {
			if ok || r.Transition != nil {
				t.Errorf("%s: score_bonus %v transition %v on a first attempt", where, bonus, r.Transition)
			}
			continue
		}
		first := plan[r.SampleIndex][0]
		wantBonus := rewards.ScoreBonus(10, b2f(first), b2f(want))
		wantTr := map[bool]string{false: "i", true: "c"}[first] + "->" + map[bool]string{false: "i", true: "c"}[want]
		if bonus == nil || *bonus != wantBonus || deref(r.Transition) != wantTr {
			t.Errorf("%s: score_bonus %v transition %q, want %v %q", where, bonus, deref(r.Transition), wantBonus, wantTr)
		}
		if r.Reward == nil || *r.Reward != b2f(want)+wantBonus {
			t.Errorf("%s: reward %v, want %v", where, r.Reward, b2f(want)+wantBonus)
		}
		if len(r.Prompt) != 3 || r.Prompt[2].Content != rollout.SCoReInstruction {
			t.Errorf("%s: the revision's prompt %+v does not end with SCoRe's instruction alone", where, r.Prompt)
		}
	}
	checkDocRow(t, "docs/recipes/score-code.md", doccheck.One(t, "..", "docs/recipes/score-code.md", "TestScoreCodePreset"), rows)
}

// Self-debugging against a real llama-server (SmolLM2-135M on CPU), the
// self-debug preset cut to 2 HumanEval problems, 2 episodes each of 2
// turns (an attempt and one repair) and 256 tokens a response, so that it
// takes about a minute on two busy cores: the small model mostly fails,
// which is what the plumbing needs. Every response's program is extracted (or no_code
// recorded) and run; every revision's prompt carries the real failure of
// the attempt before it; transitions are recorded.
func TestSelfDebugLlama(t *testing.T) {
	cfg := codePresetOnLlama(t, "self-debug", 256)
	cfg.Episode.Turns = 2
	start := time.Now()
	m, err := Execute(context.Background(), cfg, JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("self-debug on llama-server: %v", time.Since(start).Round(time.Second))
	checkManifest(t, cfg.Output.Dir, m)
	checkValid(t, cfg.Output.Dir)
	rows := readAll(t, cfg.Output.Dir)
	type key struct {
		task         string
		sample, turn int32
	}
	byKey := map[key]export.RLRow{}
	for _, r := range rows {
		byKey[key{r.TaskID, r.SampleIndex, r.Turn}] = r
	}
	revisions := 0
	reasons := map[string]int{}
	for _, r := range rows {
		where := fmt.Sprintf("%s sample %d turn %d", r.TaskID, r.SampleIndex, r.Turn)
		if r.Error != nil {
			t.Fatalf("%s: request failed: %s", where, *r.Error)
		}
		ex := executionOf(t, r)
		if ex == nil {
			t.Fatalf("%s: no response_metadata.execution", where)
		}
		reason := deref(r.GradeReason)
		reason, _, _ = strings.Cut(reason, ":")
		reasons[reason]++
		switch {
		case reason == "no_code":
			if ex.Found {
				t.Errorf("%s: no_code with a program found", where)
			}
		case !ex.Found || deref(r.ExtractRule) == "":
			t.Errorf("%s: reason %q but no program extracted (extract rule %q)", where, reason, deref(r.ExtractRule))
		}
		if r.Correct == nil {
			t.Fatalf("%s: ungraded (%s)", where, reason)
		}
		_, more := byKey[key{r.TaskID, r.SampleIndex, r.Turn + 1}]
		if more == *r.Correct && int(r.Turn) < cfg.Episode.Turns-1 {
			t.Errorf("%s: correct %v, next turn present %v (a failing attempt gets feedback, a passing one ends the episode)", where, *r.Correct, more)
		}
		if r.Turn == 0 {
			continue
		}
		revisions++
		if revisions == 1 {
			t.Logf("%s: the feedback it was given:\n%s", where, r.Prompt[len(r.Prompt)-1].Content)
		}
		prev := byKey[key{r.TaskID, r.SampleIndex, r.Turn - 1}]
		pex := executionOf(t, prev)
		wantTr := map[bool]string{false: "i", true: "c"}[*prev.Correct] + "->" + map[bool]string{false: "i", true: "c"}[*r.Correct]
		if deref(r.Transition) != wantTr {
			t.Errorf("%s: transition %q, want %q", where, deref(r.Transition), wantTr)
		}
		fb := r.Prompt[len(r.Prompt)-1].Content
		if r.Prompt[len(r.Prompt)-2].Content != prev.Response || !strings.HasSuffix(fb, "\n\n"+rollout.ExecutionInstruction) {
			t.Errorf("%s: the prompt does not end with the previous attempt and its feedback: %q", where, fb)
		}
		// The feedback is the previous program's real failure: its first
		// failing test and error (or why it did not run), as the sandbox
		// reported it on the previous row.
		prevReason, _, _ := strings.Cut(deref(prev.GradeReason), ":")
		switch {
		case prevReason == "no_code":
			if !strings.Contains(fb, "No Python program was found") {
				t.Errorf("%s: feedback %q after no_code", where, fb)
			}
		case pex.Message != "" && slices.Contains([]string{"tests_failed", "syntax_error", "runtime_error", "crashed"}, prevReason):
			line, _, _ := strings.Cut(strings.TrimSpace(pex.Message), "\n")
			if !strings.Contains(fb, line) {
				t.Errorf("%s: feedback %q lacks the failure %q", where, fb, line)
			}
		}
		if prevReason == "tests_failed" && !strings.Contains(fb, fmt.Sprintf("failed %d of %d tests", pex.Total-pex.Passed, pex.Total)) {
			t.Errorf("%s: feedback %q does not count the failed tests (%d of %d passed)", where, fb, pex.Passed, pex.Total)
		}
	}
	t.Logf("%d rows, %d revisions, grade reasons %v, sft %+v", len(rows), revisions, reasons, m.Datasets["sft"].Filtered)
	if revisions == 0 {
		t.Fatal("no revision: every first attempt passed, so no feedback was exercised")
	}
}

// RepairTrajectory on hand-made episodes: what is kept, where the row
// stops, and why the rest is left out; and episode.sft repair's checks.
func TestRepairTrajectoryFilters(t *testing.T) {
	bp := func(b bool) *bool { return &b }
	row := func(turn int32, correct *bool) export.RLRow {
		r := export.RLRow{TaskID: "t", Turn: turn, Correct: correct, Response: fmt.Sprintf("program %d", turn),
			Prompt: []export.Message{{Role: "user", Content: "q"}}}
		for k := int32(0); k < turn; k++ {
			r.Prompt = append(r.Prompt, export.Message{Role: "assistant", Content: fmt.Sprintf("program %d", k)},
				export.Message{Role: "user", Content: fmt.Sprintf("feedback %d", k)})
		}
		v := 0.0
		if correct != nil && *correct {
			v = 1
		}
		r.RewardComponents = []export.RewardComponent{{Name: "verifiable", Value: &v, Weight: 1}}
		return r
	}
	i, c := bp(false), bp(true)
	errRow := row(1, nil)
	errRow.Error = strPtr("HTTP 500")
	unverified := row(0, i)
	unverified.RewardComponents[0].Value = nil
	cut := row(1, c)
	cut.FinishReason = strPtr("length")
	for _, tc := range []struct {
		name     string
		ep       []export.RLRow
		why      string
		messages int
	}{
		{"repaired at turn 1", []export.RLRow{row(0, i), row(1, c)}, "", 4},
		{"repaired at turn 2", []export.RLRow{row(0, i), row(1, i), row(2, c)}, "", 6},
		{"fixed feedback: the row stops at the first pass", []export.RLRow{row(0, i), row(1, c), row(2, i)}, "", 4},
		{"passed at once", []export.RLRow{row(0, c)}, FilterFirstTry, 0},
		{"fixed feedback, passed at once", []export.RLRow{row(0, c), row(1, i)}, FilterFirstTry, 0},
		{"never passed", []export.RLRow{row(0, i), row(1, i), row(2, i)}, FilterUnrepaired, 0},
		{"a request failed", []export.RLRow{row(0, i), errRow}, FilterIncomplete, 0},
		{"a turn missing", []export.RLRow{row(0, i), row(2, c)}, FilterIncomplete, 0},
		{"sandbox failure", []export.RLRow{unverified}, FilterUngraded, 0},
		{"revision cut off", []export.RLRow{row(0, i), cut}, FilterTruncated, 0},
	} {
		tr, why := RepairTrajectory(tc.ep)
		if why != tc.why || (tr == nil) != (tc.why != "") {
			t.Errorf("%s: %v %q, want %q", tc.name, tr != nil, why, tc.why)
			continue
		}
		if tr == nil {
			continue
		}
		r := tr.SFTRow()
		if len(r.Messages) != tc.messages {
			t.Errorf("%s: %d messages, want %d", tc.name, len(r.Messages), tc.messages)
			continue
		}
		for k, m := range r.Messages {
			last := k == len(r.Messages)-1
			if (m.LossMask == 1) != last || (k%2 == 0 && k > 0 && m.Content != fmt.Sprintf("feedback %d", k/2-1)) ||
				(k%2 == 1 && m.Content != fmt.Sprintf("program %d", k/2)) {
				t.Errorf("%s: message %d %+v", tc.name, k, m)
			}
		}
		if strings.Contains(*r.Metadata, "fixed_tests") {
			t.Errorf("%s: fixed_tests without execution reports: %s", tc.name, *r.Metadata)
		}
	}

	tasks, _ := writeTasks(t, 1)
	srv := fakeserver.New(fakeserver.AnswerBySeed(nil))
	defer srv.Close()
	for extra, want := range map[string]string{
		"episode: {turns: 3, feedback: execution, sft: repair}\n":                                        "",
		"episode: {turns: 2, feedback: retry_if_wrong, sft: repair}\n":                                   "",
		"episode: {turns: 2, feedback: fixed, sft: repair}\n":                                            "",
		"episode: {turns: 1, sft: repair}\n":                                                             "needs episode.turns >= 2",
		"episode: {turns: 2, feedback: execution, sft: repair}\nadvantage: {drop_zero_variance: true}\n": "drop_zero_variance",
		"episode: {turns: 2, feedback: fixed, sft: repairs}\n":                                           "is not pam, ptr, repair or none",
	} {
		_, err := ParseConfig("repair.yaml", strings.NewReader(fmt.Sprintf("source: {kind: tasks, path: %q}\nendpoint: {base_url: %s, model: m}\noutput: {dir: %q}\n%s",
			tasks, srv.BaseURL(), t.TempDir(), extra)))
		if (err == nil) != (want == "") || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", extra, err, want)
		}
	}
}
