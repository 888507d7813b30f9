package rewards

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/redraft/redraft/rewards/codegrade"
	"github.com/redraft/redraft/rollout"
)

// CodeVerifier decides the responses to code tasks (tasks with tests,
// rollout.Task.Code) by running their programs against the tests in the
// sandbox (package codegrade). The verdict's Correct is the all-pass reward,
// PassRate the fraction of tests passed; the whole codegrade.Verdict (per-test
// verdicts, output, exit status, wall time) is its Detail, under
// "execution". A sandbox that could not start the program leaves the
// response unverified (null, not 0); everything the program does wrong,
// timeouts and memory included, is the response's fault (0).
type CodeVerifier struct {
	Grader *codegrade.Grader
}

// Verifies implements Verifier: code tasks only.
func (CodeVerifier) Verifies(task rollout.Task) bool { return task.Code != nil }

// Verify implements Verifier. The programs run concurrently; the sandbox
// bounds how many execute at once.
func (c CodeVerifier) Verify(ctx context.Context, task rollout.Task, samples []rollout.Sample) []Verdict {
	out := make([]Verdict, len(samples))
	t := CodeTask(task)
	var wg sync.WaitGroup
	for i := range samples {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = codeVerdict(c.Grader.Grade(ctx, samples[i].Text, t), samples[i].FinishReason)
		}()
	}
	wg.Wait()
	return out
}

// CodeTask is the codegrade task of a code task.
func CodeTask(task rollout.Task) codegrade.Task {
	if task.Code == nil {
		return codegrade.Task{}
	}
	c := task.Code
	return codegrade.Task{Prompt: c.Prefix, Tests: c.Tests, EntryPoint: c.EntryPoint, Language: c.Language}
}

// ExecutionDetail is the key of a code verdict's Detail on a row's
// response_metadata.
const ExecutionDetail = "execution"

// feedbackMax caps the failure text handed back to the model.
const feedbackMax = 1500

func codeVerdict(v codegrade.Verdict, finishReason string) Verdict {
	out := Verdict{Correct: v.Correct, Found: v.Found, ExtractRule: v.ExtractRule, Rule: "tests",
		DetailKey: ExecutionDetail, Detail: v}
	// Every verdict has a pass rate (0 for no program, a syntax error, a
	// timeout: the response's fault), except one the sandbox could not
	// reach (below).
	pr := v.PassRate
	out.PassRate = &pr
	if v.Correct {
		return out
	}
	out.Reason = v.Reason
	if v.Message != "" {
		out.Reason += ": " + firstLine(v.Message)
	}
	switch v.Reason {
	case "sandbox_error", "canceled":
		out.Unverified, out.PassRate = true, nil
	case "no_code":
		if finishReason == "length" {
			out.Reason = "no_code: the response was cut off (finish_reason=length) before its program ended"
		}
	}
	out.Feedback = codeFeedback(v)
	return out
}

// codeFeedback says what went wrong in words for the model: the first
// failing test and its error, or why the program did not run.
func codeFeedback(v codegrade.Verdict) string {
	var s string
	switch v.Reason {
	case "no_code":
		s = "No Python program was found in your answer. Write the complete function in a ```python code block."
	case "timeout", "cpu_time":
		s = "Your program did not finish within the time limit."
	case "memory":
		s = "Your program ran out of memory."
	case "output_limit", "file_size":
		s = "Your program wrote too much output."
	case "syntax_error":
		s = "Your program has a syntax error:\n" + v.Message
	case "runtime_error":
		s = "Your program raised an error when it was loaded:\n" + v.Message
	case "tests_failed":
		s = fmt.Sprintf("Your program failed %d of %d tests. The first failure:\n%s", v.Total-v.Passed, v.Total, v.Message)
	case "crashed":
		s = "Your program stopped before its tests finished:\n" + v.Message
	default:
		s = v.Message
	}
	s = strings.TrimSpace(s)
	if len(s) > feedbackMax {
		cut := feedbackMax
		for cut > 0 && s[cut]&0xC0 == 0x80 { // not inside a UTF-8 sequence
			cut--
		}
		s = s[:cut] + "\n[... trimmed]"
	}
	return s
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
