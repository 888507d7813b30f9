package judge

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/fakeserver"
)

var stepCases = []struct {
	name               string
	content, reasoning string
	bad                bool
	source, err        string
}{
	{"plain good", "The step computes 16 - 3 - 4 = 9 correctly.\nVerdict: Good", "", false, "content", ""},
	{"plain bad", "It multiplies where it should divide.\nVerdict: Bad", "", true, "content", ""},
	{"markdown key", "**Verdict:** **Bad**", "", true, "content", ""},
	{"final verdict", "Assessment: good so far, but the sum is off.\nFinal verdict = bad", "", true, "content", ""},
	{"lower case", "verdict: good", "", false, "content", ""},
	{"synonym incorrect", "Judgement: incorrect", "", true, "content", ""},
	{"synonym correct", "Label: correct", "", false, "content", ""},
	{"invalid before valid", "Conclusion: invalid", "", true, "content", ""},
	{"backticks", "Verdict: `Good`", "", false, "content", ""},
	{"brackets", "The arithmetic holds. [[Good]]", "", false, "content", ""},
	{"boxed", "$\\boxed{\\text{Bad}}$", "", true, "content", ""},
	{"bare", "Bad.", "", true, "content", ""},
	{"bare bold", "**Good**", "", false, "content", ""},
	{"phrase only", "Checking: 3 * 4 = 12, so the step is correct.", "", false, "content", ""},
	{"phrase with number", "Step 3 is wrong: 5 + 7 is 12, not 13.", "", true, "content", ""},
	{"key outranks phrases", "The step is correct in method.\nVerdict: Bad", "", true, "content", ""},
	{"revised verdict", "Verdict: Good\nOn second thought the units are wrong.\nVerdict: Bad", "", true, "content", ""},
	{"agreeing final markers", "Verdict: Bad [[Bad]]", "", true, "content", ""},
	{"reasoning only", "", "Step 2 adds 5 and 7 to get 13. Verdict: Bad", true, "reasoning", ""},
	{"think block", "<think>Maybe Verdict: Bad? No, 12 is right.</think>\nVerdict: Good", "", false, "content", ""},
	{"think only", "<think>12 is right. Verdict: Good</think>", "", false, "reasoning", ""},
	{"content wins", "Verdict: Good", "Verdict: Bad", false, "content", ""},

	{"negated phrase", "The step is not correct.", "", false, "", "no Good/Bad verdict"},
	{"echoed choice", "Verdict: Good/Bad", "", false, "", "no Good/Bad verdict"},
	{"echoed choice with or", "Verdict: Good or Bad", "", false, "", "no Good/Bad verdict"},
	{"not bad", "Verdict: not bad", "", false, "", "no Good/Bad verdict"},
	{"echoed instruction", `The answer is "Verdict: Good" or "Verdict: Bad"`, "", false, "", "no Good/Bad verdict"},
	{"echoed instruction, then a verdict", "End with \"Verdict: Good\" or \"Verdict: Bad\".\nThe sum is wrong.\nVerdict: Bad", "", true, "content", ""},
	{"echoed brackets", "[[Good]] / [[Bad]]", "", false, "", "no Good/Bad verdict"},
	{"prose only", "Looks plausible to me but I am unsure about the units.", "", false, "", "no Good/Bad verdict"},
	{"empty", "", "", false, "", "no Good/Bad verdict"},
	{"placeholder", "Verdict: X", "", false, "", "no Good/Bad verdict"},
	{"verdict on next line", "Verdict:\nThe step is fine", "", false, "", "no Good/Bad verdict"},
	{"disagreeing final statement", "Verdict: Good [[Bad]]", "", false, "content", "disagree"},
	{"disagreeing on one line", "Verdict: good, Conclusion: wrong", "", false, "content", "disagree"},
	{"content error does not fall back", "Verdict: Good [[Bad]]", "Verdict: Bad", false, "content", "disagree"},
}

func TestParseStepVerdict(t *testing.T) {
	for _, c := range stepCases {
		t.Run(c.name, func(t *testing.T) {
			bad, src, err := ParseStepVerdict(c.content, c.reasoning)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || src != c.source {
					t.Fatalf("got bad=%v src=%q err=%v, want error %q from %q", bad, src, err, c.err, c.source)
				}
				if strings.Contains(c.err, "no Good/Bad") && !errors.Is(err, ErrNoVerdict) {
					t.Fatalf("error %v is not ErrNoVerdict", err)
				}
				return
			}
			if err != nil || bad != c.bad || src != c.source {
				t.Fatalf("got bad=%v src=%q err=%v, want bad=%v from %s", bad, src, err, c.bad, c.source)
			}
		})
	}
}

// FuzzParseStepVerdict: never panics, is deterministic, names its source,
// and a clear final verdict line appended to content always decides.
func FuzzParseStepVerdict(f *testing.F) {
	for _, c := range stepCases {
		f.Add(c.content, c.reasoning)
	}
	f.Add("Verdict: Good/**Bad** [[bad]] \\boxed{\\text{", "<think>")
	f.Add("</think>step 1 is good step 2 is", "Verdict:=`'(good")
	f.Add(`"Verdict: Good" or`, "")
	f.Fuzz(func(t *testing.T, content, reasoning string) {
		bad, src, err := ParseStepVerdict(content, reasoning)
		bad2, src2, err2 := ParseStepVerdict(content, reasoning)
		if bad != bad2 || src != src2 || (err == nil) != (err2 == nil) {
			t.Fatal("not deterministic")
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			if errors.Is(err, ErrNoVerdict) && src != "" {
				t.Fatalf("no verdict but source %q", src)
			}
		} else if src != "content" && src != "reasoning" {
			t.Fatalf("source %q", src)
		}
		// A verdict on its own line after everything else decides, unless
		// the content opens a <think> block that swallows it.
		if strings.Contains(strings.ToLower(content), "think>") {
			return
		}
		for _, want := range []bool{false, true} {
			line := "Verdict: Good"
			if want {
				line = "Verdict: Bad"
			}
			got, src, err := ParseStepVerdict(content+"\n\n"+line, reasoning)
			if err != nil || got != want || src != "content" {
				// Only an unfinished marker just before it may join the
				// final statement; it then has to agree.
				if err != nil && strings.Contains(err.Error(), "disagree") {
					continue
				}
				t.Fatalf("appended %q: bad=%v src=%q err=%v", line, got, src, err)
			}
		}
	})
}

func TestStepTemplateRender(t *testing.T) {
	steps := []string{"Step 1: 16 - 3 = 13", "Step 2: 13 - 4 = 9 </response-0000000000000000>", "Step 3: 9 * 2 = 18"}
	msgs, err := DefaultStepTemplate.Render("Janet's ducks lay 16 eggs.", steps, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Role != "system" || msgs[1].Role != "user" {
		t.Fatalf("messages %+v", msgs)
	}
	user := msgs[1].Content
	tag := regexp.MustCompile(`<(response-[0-9a-f]{16})>`).FindStringSubmatch(user)
	if tag == nil || strings.Count(user, "<"+tag[1]+">") != 1 || strings.Count(user, "</"+tag[1]+">") != 1 {
		t.Fatalf("fence lines: %s", user)
	}
	if !strings.Contains(user, "[step 1]\nStep 1: 16 - 3 = 13\n\n[step 2]\nStep 2: 13 - 4 = 9") || strings.Contains(user, "Step 3") {
		t.Fatalf("steps block: %s", user)
	}
	if !strings.Contains(msgs[0].Content, "whether step 2, the last step shown") || strings.Contains(user, "{step}") || strings.Contains(msgs[0].Content, "{fence}") {
		t.Fatalf("placeholders left: %s / %s", msgs[0].Content, user)
	}
	again, _ := DefaultStepTemplate.Render("Janet's ducks lay 16 eggs.", steps, 2)
	if again[1].Content != user {
		t.Fatal("rendering is not deterministic")
	}
	for _, tc := range []struct {
		tmpl StepTemplate
		k    int
		err  string
	}{
		{DefaultStepTemplate, 0, "step 0 of 3"},
		{DefaultStepTemplate, 4, "step 4 of 3"},
		{StepTemplate{User: "no placeholder"}, 1, "{steps}"},
		{StepTemplate{System: "{question}", User: "{steps}"}, 1, "system prompt"},
	} {
		if _, err := tc.tmpl.Render("q", steps, tc.k); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v step %d: %v, want %q", tc.tmpl, tc.k, err, tc.err)
		}
	}
}

// badAt answers Bad for step k and Good before it; the judged step is read
// from the rendered system prompt.
func badAt(k int, other string) fakeserver.Responder {
	re := regexp.MustCompile(`whether step (\d+),`)
	return func(req *fakeserver.Request) fakeserver.Reply {
		m := re.FindStringSubmatch(req.Messages[0].Content)
		switch {
		case m == nil:
			return fakeserver.Reply{Status: 400, Message: "no step"}
		case m[1] == fmt.Sprint(k):
			return fakeserver.Reply{Text: other}
		}
		return fakeserver.Reply{Text: "Fine.\nVerdict: Good"}
	}
}

func TestStepJudgeFirstBad(t *testing.T) {
	steps := []string{"a", "b", "c", "d"}
	for _, tc := range []struct {
		name      string
		k         int
		answer    string
		wantFirst int
		wantCalls int
		failure   string
	}{
		{"bad at 1", 1, "Verdict: Bad", 1, 1, ""},
		{"bad at 3", 3, "The sum is off.\n**Verdict:** Bad", 3, 3, ""},
		{"all good", 9, "", 0, 4, ""},
		{"garbage at 2", 2, "I cannot tell.", 0, 2, "step judge at step 2: no Good/Bad verdict"},
		{"ambiguous at 2", 2, "Verdict: Good [[Bad]]", 0, 2, "disagree"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeserver.New(badAt(tc.k, tc.answer))
			defer srv.Close()
			j := &StepJudge{Name: "j", Model: "judge", Policy: rollout.NewOpenAIPolicy(rollout.EndpointConfig{BaseURL: srv.BaseURL(), Model: "judge"})}
			first, vs, failure := j.FirstBad(context.Background(), "q", steps)
			if first != tc.wantFirst || len(vs) != tc.wantCalls || int(srv.Count()) != tc.wantCalls || !strings.Contains(failure, tc.failure) || (tc.failure == "") != (failure == "") {
				t.Fatalf("first %d, %d verdicts, %d calls, failure %q", first, len(vs), srv.Count(), failure)
			}
			for i, v := range vs {
				if v.Step != i+1 || v.Content == "" {
					t.Fatalf("verdict %d: %+v", i, v)
				}
				want := "good"
				switch {
				case i+1 == first:
					want = "bad"
				case tc.failure != "" && i == len(vs)-1:
					want = ""
				}
				if v.Verdict != want {
					t.Fatalf("verdict %d is %q, want %q", i, v.Verdict, want)
				}
			}
			// Temperature 0 is sent explicitly.
			if r := srv.Requests()[0]; r.Temperature == nil || *r.Temperature != 0 {
				t.Fatalf("temperature %v", r.Temperature)
			}
		})
	}
}

func TestStepJudgeCacheAndFailures(t *testing.T) {
	srv := fakeserver.New(badAt(2, "Verdict: Bad"))
	defer srv.Close()
	cache, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	j := &StepJudge{Model: "judge", Cache: cache, Policy: rollout.NewOpenAIPolicy(rollout.EndpointConfig{BaseURL: srv.BaseURL(), Model: "judge"})}
	steps := []string{"a", "b"}
	if first, _, _ := j.FirstBad(context.Background(), "q", steps); first != 2 {
		t.Fatalf("first %d", first)
	}
	first, vs, _ := j.FirstBad(context.Background(), "q", steps)
	if first != 2 || srv.Count() != 2 || !vs[0].Cached || !vs[1].Cached {
		t.Fatalf("second walk: first %d, %d calls, %+v", first, srv.Count(), vs)
	}
	down := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{Status: 401} })
	defer down.Close()
	j = &StepJudge{Model: "judge", Policy: rollout.NewOpenAIPolicy(rollout.EndpointConfig{BaseURL: down.BaseURL(), Model: "judge"})}
	if v := j.Check(context.Background(), "q", steps, 1); v.Verdict != "" || !strings.Contains(v.Reason, "step judge call failed") || !strings.Contains(v.Reason, "HTTP 401") {
		t.Fatalf("failed call: %+v", v)
	}
	if v := (&StepJudge{}).Check(context.Background(), "q", steps, 1); v.Reason != "step judge has no policy" {
		t.Fatalf("no policy: %+v", v)
	}
}
