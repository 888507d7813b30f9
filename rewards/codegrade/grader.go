package codegrade

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/redraft/redraft/rewards/execute"
)

//go:embed harness.py
var harness []byte

// Task is what a program is tested against.
type Task struct {
	// Prompt is prepended to the program (HumanEval's prompt: imports and
	// the function's signature and docstring); may be empty.
	Prompt string `json:"prompt,omitempty"`
	// Tests is test code: a check(candidate) function (HumanEval) called
	// with EntryPoint, or plain assert statements.
	Tests string `json:"tests"`
	// EntryPoint names the function under test; needed by check(candidate).
	EntryPoint string `json:"entry_point,omitempty"`
	// Language is "python" or empty (python); others are refused.
	Language string `json:"language,omitempty"`
}

// TestResult is one test's verdict.
type TestResult struct {
	Test   string `json:"test"`
	Passed bool   `json:"passed"`
	Error  string `json:"error,omitempty"`
}

// Verdict is the result of grading one response.
type Verdict struct {
	// Correct is true when every test passed (the all-pass reward).
	Correct bool `json:"correct"`
	// Reason is "" when Correct, else why not (see the package doc).
	Reason string `json:"reason,omitempty"`
	// Found, ExtractRule, Code: the program found in the response.
	Found       bool   `json:"found"`
	ExtractRule string `json:"extract_rule,omitempty"`
	Code        string `json:"-"`
	// Passed of Total tests passed; PassRate = Passed/Total (0 when Total
	// is 0). Tests are the per-test verdicts, in order; tests after a
	// timeout are missing from it and count as not passed.
	Passed   int          `json:"passed"`
	Total    int          `json:"total"`
	PassRate float64      `json:"pass_rate"`
	Tests    []TestResult `json:"tests,omitempty"`
	// Message is the first failing test's source and error, or the error
	// that stopped the program (a syntax error, an exception at load time).
	Message string `json:"message,omitempty"`
	// What the execution did.
	Stdout          string  `json:"stdout,omitempty"`
	Stderr          string  `json:"stderr,omitempty"`
	StdoutTruncated bool    `json:"stdout_truncated,omitempty"`
	StderrTruncated bool    `json:"stderr_truncated,omitempty"`
	ExitCode        int     `json:"exit_code"`
	Signal          string  `json:"signal,omitempty"`
	WallMS          float64 `json:"wall_ms"`
	Sandboxed       bool    `json:"sandboxed"`
}

// Options configure a Grader.
type Options struct {
	// Python is the interpreter's path inside the sandbox (default
	// /usr/bin/python3).
	Python string
	// Limits override the sandbox's limits for each run (zero: keep).
	Limits execute.Limits
}

// Grader runs programs against tests in a sandbox. Safe for concurrent use.
type Grader struct {
	sb   *execute.Sandbox
	opts Options
}

// New returns a Grader that runs programs in sb.
func New(sb *execute.Sandbox, opts Options) *Grader {
	if opts.Python == "" {
		opts.Python = "/usr/bin/python3"
	}
	return &Grader{sb: sb, opts: opts}
}

// Grade extracts the program from a response and runs it with the task's
// tests.
func (g *Grader) Grade(ctx context.Context, response string, t Task) Verdict {
	code, rule, ok := Extract(response)
	if !ok {
		return Verdict{Reason: "no_code", Message: "the response states no program"}
	}
	v := g.Run(ctx, code, t)
	v.Found, v.ExtractRule, v.Code = true, rule, code
	return v
}

// Run runs a program (without extraction) with the task's tests.
func (g *Grader) Run(ctx context.Context, code string, t Task) Verdict {
	var v Verdict
	if l := strings.ToLower(t.Language); l != "" && l != "python" {
		v.Reason, v.Message = "unsupported_language", fmt.Sprintf("language %q: only python runs", t.Language)
		return v
	}
	src := code
	if t.Prompt != "" {
		src = t.Prompt + code
	}
	nb := make([]byte, 16)
	_, _ = rand.Read(nb)
	nonce := hex.EncodeToString(nb)
	r, err := g.sb.Run(ctx, execute.Spec{
		Argv: []string{g.opts.Python, "-I", "harness.py", t.EntryPoint},
		Files: []execute.File{{Name: "harness.py", Data: harness}, {Name: "solution.py", Data: []byte(src)},
			{Name: "tests.py", Data: []byte(t.Tests)}},
		Stdin:  []byte(nonce + "\n"),
		Limits: g.opts.Limits,
	})
	if err != nil {
		v.Reason, v.Message = "sandbox_error", err.Error()
		return v
	}
	v.Stdout, v.Stderr = string(r.Stdout), string(r.Stderr)
	v.StdoutTruncated, v.StderrTruncated = r.StdoutTruncated, r.StderrTruncated
	v.ExitCode, v.Signal, v.Sandboxed = r.ExitCode, r.Signal, r.Sandboxed
	v.WallMS = float64(r.Wall) / float64(time.Millisecond)

	var names []string
	done := false
	stop := "" // the harness's stopping report: syntax_error, program_error, tests_error
	sc := bufio.NewScanner(bytes.NewReader(r.Report))
	sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), nonce+" ")
		if !ok {
			continue
		}
		var m struct {
			Kind   string   `json:"kind"`
			Total  int      `json:"total"`
			Names  []string `json:"names"`
			Passed bool     `json:"passed"`
			Error  string   `json:"error"`
		}
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch m.Kind {
		case "plan":
			v.Total, names = m.Total, m.Names
		case "test":
			if len(v.Tests) < len(names) {
				v.Tests = append(v.Tests, TestResult{Test: names[len(v.Tests)], Passed: m.Passed, Error: m.Error})
				if m.Passed {
					v.Passed++
				} else if v.Message == "" {
					v.Message = names[len(v.Tests)-1] + "\n" + m.Error
				}
			}
		case "syntax_error", "program_error", "tests_error":
			stop = m.Kind
			v.Message = m.Error
		case "stopped":
			done = true
			if v.Message == "" {
				v.Message = m.Error
			}
		case "done":
			done = true
		}
	}
	if v.Total > 0 {
		v.PassRate = float64(v.Passed) / float64(v.Total)
	}
	memory := strings.Contains(v.Message, "MemoryError") || (!done && strings.Contains(v.Stderr, "MemoryError"))
	switch {
	case r.Reason == "timeout" || r.Reason == "cpu_time" || r.Reason == "output_limit" || r.Reason == "file_size" || r.Reason == "canceled":
		v.Reason = r.Reason
	case stop == "syntax_error":
		v.Reason = "syntax_error"
	case stop == "tests_error":
		v.Reason = "tests_error"
	case memory:
		v.Reason = "memory"
	case stop == "program_error":
		v.Reason = "runtime_error"
	case !done:
		v.Reason = "crashed"
		if v.Message == "" {
			v.Message = fmt.Sprintf("the program ended (%s, exit %d %s) before its tests finished", r.Reason, r.ExitCode, r.Signal)
		}
	case v.Total == 0:
		v.Reason = "no_tests"
		v.Message = "the tests hold no assert statement"
	case v.Passed < v.Total:
		v.Reason = "tests_failed"
	default:
		v.Correct = true
	}
	return v
}
