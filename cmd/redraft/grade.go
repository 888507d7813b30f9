package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rewards/mathgrade"
)

// gradeOut is one output line of redraft grade.
type gradeOut struct {
	Correct     bool   `json:"correct"`
	Answer      string `json:"answer"`
	Found       bool   `json:"found"`
	ExtractRule string `json:"extract_rule"`
	Rule        string `json:"rule"`
	Pred        string `json:"pred"`
	Gold        string `json:"gold"`
	Reason      string `json:"reason,omitempty"`
}

// cmdGrade grades JSON lines {"gold", "prediction"} (and optionally
// "finish_reason") from stdin, one output line per input line, in order.
func cmdGrade(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlagSet("grade", "[flags] < cases.jsonl", gradeAbout, stdout)
	code := addCodeFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if handled, err := code.run(stdin, stdout); handled {
		return err
	}
	g := rewards.NewMathGrader(mathgrade.Options{})
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for line := 1; sc.Scan(); line++ {
		var in struct {
			Gold       *string `json:"gold"`
			Prediction *string `json:"prediction"`
			// FinishReason, when given, is how the server said the
			// response ended: "length" makes a bare answer no answer.
			FinishReason string `json:"finish_reason"`
		}
		if err := json.Unmarshal(sc.Bytes(), &in); err != nil {
			return fmt.Errorf("stdin:%d: %w", line, err)
		}
		if in.Gold == nil {
			return fmt.Errorf("stdin:%d: field \"gold\": missing", line)
		}
		if in.Prediction == nil {
			return fmt.Errorf("stdin:%d: field \"prediction\": missing", line)
		}
		v := g.GradeFinished(*in.Prediction, *in.Gold, in.FinishReason)
		if err := enc.Encode(gradeOut{Correct: v.Correct, Answer: v.Answer, Found: v.Found, ExtractRule: v.ExtractRule,
			Rule: v.Rule, Pred: v.Pred, Gold: v.Gold, Reason: v.Reason}); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	return nil
}
