package judge

import (
	"errors"
	"math"
	"strings"
	"testing"
)

var (
	scale10  = Scale{Min: 0, Max: 10}
	scale110 = Scale{Min: 1, Max: 10}
	scale01  = Scale{Min: 0, Max: 1}
)

// parseCases are judge outputs as models write them. err is a substring of
// the expected error ("" for success).
var parseCases = []struct {
	name               string
	content, reasoning string
	scale              Scale
	raw                float64
	source             string
	err                string
}{
	{"plain", "The response computes 16-3-4=9 eggs and 9*2=18 dollars, matching the reference.\nScore: 10", "", scale10, 10, "content", ""},
	{"markdown bold key", "**Assessment.** Correct final answer but one arithmetic slip.\n\n**Score:** 7", "", scale10, 7, "content", ""},
	{"markdown bold key colon outside", "The reasoning is sound.\n**Score**: 8/10", "", scale10, 8, "content", ""},
	{"bold value", "Final score: **6**", "", scale10, 6, "content", ""},
	{"decimal with denominator", "Mostly right; units missing.\nScore: 7.5/10", "", scale10, 7.5, "content", ""},
	{"out of", "I would give it a Score: 9 out of 10.", "", scale10, 9, "content", ""},
	{"mt-bench", "The assistant's answer is accurate and concise.\n\nRating: [[8]]", "", scale110, 8, "content", ""},
	{"double bracket only", "Helpful and clear. [[9]]", "", scale110, 9, "content", ""},
	{"boxed", "Therefore the grade is $\\boxed{4}$.", "", scale10, 4, "content", ""},
	{"boxed fraction", "\\boxed{6/10}", "", scale10, 6, "content", ""},
	{"bare number", "7", "", scale10, 7, "content", ""},
	{"bare bold fraction", "**3/10**", "", scale10, 3, "content", ""},
	{"revised score takes last", "Score: 6\n\nWait, step 2 is actually fine on a second reading, and the final answer matches the reference.\n\nScore: 8", "", scale10, 8, "content", ""},
	{"agreeing final markers", "Score: 7/10\n[[7]]", "", scale10, 7, "content", ""},
	{"per-criterion then overall", "Correctness score: 8\nClarity score: 6\nOverall score: 7", "", scale10, 7, "content", ""},
	{"final outranks plain key", "Score: 6\nFinal score: 8", "", scale10, 8, "content", ""},
	{"final rating with brackets", "Final rating: [[9]]", "", scale110, 9, "content", ""},
	{"rating with brackets overlaps", "Rating: [[5]]", "", scale110, 5, "content", ""},
	{"score only in reasoning", "The response is mostly correct.", "Let me check each step. Step 1 fine. Step 2 fine. Score: 9", scale10, 9, "reasoning", ""},
	{"empty content, reasoning", "", "The final answer 42 matches. Score: 10", scale10, 10, "reasoning", ""},
	{"content wins over reasoning", "Score: 3", "Draft: Score: 9", scale10, 3, "content", ""},
	{"think block in content", "<think>Initially I thought Score: 2 but the answer matches.</think>\nScore: 9", "", scale10, 9, "content", ""},
	{"think block only", "<think>All steps check out. Score: 8</think>", "", scale10, 8, "reasoning", ""},
	{"unclosed think (cut off)", "<think>Step 1 ok. Step 2 ok. Score: 5", "", scale10, 5, "reasoning", ""},
	{"verdict correct", "Step 1 is right. Step 2 is right. The final answer 18 agrees with the reference.\nVerdict: correct", "", scale01, 1, "content", ""},
	{"verdict incorrect", "Step 2 multiplies instead of dividing.\n\n**Verdict:** Incorrect", "", scale01, 0, "content", ""},
	{"conclusion wrong", "Conclusion: wrong", "", scale01, 0, "content", ""},
	{"verdict numeric on 0/1", "Verdict: 1", "", scale01, 1, "content", ""},
	{"bare verdict word", "Correct.", "", scale01, 1, "content", ""},
	{"boxed text verdict", "\\boxed{\\text{incorrect}}", "", scale01, 0, "content", ""},
	{"unicode minus on symmetric scale", "Score: \u22121", "", Scale{Min: -1, Max: 1}, -1, "content", ""},
	{"negative in range", "Score: -0.5", "", Scale{Min: -1, Max: 1}, -0.5, "content", ""},

	{"two conflicting final markers", "Good answer.\nScore: 7\n[[8]]", "", scale10, 0, "content", "final score markers disagree"},
	{"final key and brackets disagree", "Final score: 8\n[[6]]", "", scale10, 0, "content", "final score markers disagree"},
	{"two qualified keys disagree", "Final score: 7\nOverall score: 8", "", scale10, 0, "content", "final score markers disagree"},
	{"conflict on one line", "Score: 7 and also Rating: 9", "", scale10, 0, "content", "final score markers disagree"},
	{"out of range", "The response is excellent.\nScore: 12", "", scale10, 0, "content", "score 12 outside 0-10"},
	{"out of range low", "Rating: [[0]]", "", scale110, 0, "content", "score 0 outside 1-10"},
	{"negative", "Score: -3", "", scale10, 0, "content", "score -3 outside 0-10"},
	{"wrong denominator", "Score: 4/5", "", scale10, 0, "content", "score 4/5 is not on the 0-10 scale"},
	{"huge number", "Score: " + strings.Repeat("9", 400), "", scale10, 0, "content", "not a finite number"},
	{"words only", "The response is quite good but misses a step, so I would rate it fairly high.", "", scale10, 0, "", "no score found"},
	{"verdict word on 0-10 scale", "Verdict: correct", "", scale10, 0, "", "no score found"},
	{"partially correct", "Verdict: partially correct", "", scale01, 0, "", "no score found"},
	{"score words", "Score: eight", "", scale10, 0, "", "no score found"},
	{"empty", "", "", scale10, 0, "", "no score found"},
	{"placeholder not filled", "Score: N", "", scale10, 0, "", "no score found"},
	{"value on next line is not read", "Score:\n1. The first step is fine.", "", scale10, 0, "", "no score found"},
	{"content error does not fall back", "Score: 11", "Score: 9", scale10, 0, "content", "outside"},
	{"ambiguous in reasoning", "", "Score: 3 [[4]]", scale10, 0, "reasoning", "disagree"},
	{"invalid scale", "Score: 3", "", Scale{Min: 1, Max: 1}, 0, "", "invalid scale"},
	{"NaN scale", "Score: 3", "", Scale{Min: math.NaN(), Max: 1}, 0, "", "invalid scale"},
}

func TestParseScore(t *testing.T) {
	for _, c := range parseCases {
		t.Run(c.name, func(t *testing.T) {
			raw, src, err := ParseScore(c.content, c.reasoning, c.scale)
			if c.err != "" {
				if err == nil {
					t.Fatalf("got %v from %s, want error %q", raw, src, c.err)
				}
				if !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %q, want %q", err, c.err)
				}
				if src != c.source {
					t.Errorf("source %q, want %q", src, c.source)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v, want %v", err, c.raw)
			}
			if raw != c.raw || src != c.source {
				t.Fatalf("got %v from %s, want %v from %s", raw, src, c.raw, c.source)
			}
		})
	}
}

func TestParseScoreNoScoreIsErrNoScore(t *testing.T) {
	_, _, err := ParseScore("nothing here", "nor here", scale10)
	if !errors.Is(err, ErrNoScore) {
		t.Fatalf("got %v", err)
	}
}

func FuzzParseScore(f *testing.F) {
	scales := []Scale{scale10, scale110, scale01, {Min: -1, Max: 1}, {Min: 0, Max: 100}}
	for _, c := range parseCases {
		for i, s := range scales {
			if s == c.scale {
				f.Add(c.content, c.reasoning, uint8(i))
			}
		}
	}
	f.Add("Score: 7\n\n[[7]] \\boxed{7/10}", "<think>", uint8(0))
	f.Add("</think><think></think>Score:=**[$7", "Verdict: true", uint8(2))
	f.Fuzz(func(t *testing.T, content, reasoning string, si uint8) {
		scale := scales[int(si)%len(scales)]
		raw, src, err := ParseScore(content, reasoning, scale)
		raw2, src2, err2 := ParseScore(content, reasoning, scale)
		if raw != raw2 || src != src2 || (err == nil) != (err2 == nil) {
			t.Fatalf("not deterministic")
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if math.IsNaN(raw) || raw < scale.Min || raw > scale.Max {
			t.Fatalf("raw %v outside %v", raw, scale)
		}
		if src != "content" && src != "reasoning" {
			t.Fatalf("source %q", src)
		}
	})
}
