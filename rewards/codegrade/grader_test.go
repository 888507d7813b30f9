package codegrade_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/rewards/codegrade"
	"github.com/redraft/redraft/rewards/execute"
)

func newGrader(t testing.TB, l execute.Limits) *codegrade.Grader {
	t.Helper()
	s, err := execute.New(execute.Options{Limits: l})
	if err != nil {
		if errors.Is(err, execute.ErrUnavailable) && os.Getenv("REDRAFT_REQUIRE_SANDBOX") != "1" {
			t.Skipf("SKIPPING: no sandbox on this machine (set REDRAFT_REQUIRE_SANDBOX=1 to fail instead): %v", err)
		}
		t.Fatal(err)
	}
	return codegrade.New(s, codegrade.Options{})
}

const addPrompt = "def add(a, b):\n    \"\"\"Add two numbers.\"\"\"\n"
const addCheck = "METADATA = {}\n\ndef check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(0, 0) == 0, 'zero'\n    for i in range(5):\n        assert candidate(i, i) == 2 * i\n    x = candidate(2, 2)\n    assert x == 4\n"

func TestGrade(t *testing.T) {
	g := newGrader(t, execute.Limits{Wall: 3 * time.Second, CPU: 2 * time.Second, Memory: 256 << 20})
	he := codegrade.Task{Prompt: addPrompt, Tests: addCheck, EntryPoint: "add"}
	asserts := codegrade.Task{Tests: "assert add(1, 2) == 3\nassert add(2, 2) == 5\nassert add(0, 1) == 1\n"}
	cases := []struct {
		name, response string
		task           codegrade.Task
		correct        bool
		reason         string
		passed, total  int
		message        string
	}{
		{"completion passes", "    return a + b\n", he, true, "", 4, 4, ""},
		{"full function in a block passes", "Sure:\n```python\ndef add(a, b):\n    return a + b\n```\n", he, true, "", 4, 4, ""},
		{"wrong answer", "```python\ndef add(a, b):\n    return a * b\n```", he, false, "tests_failed", 2, 4, "assert candidate(1, 2) == 3\nAssertionError"},
		{"assert message kept", "```python\ndef add(a, b):\n    return a + b if a else 1\n```", he, false, "tests_failed", 2, 4, "AssertionError: zero"},
		{"plain asserts, per test", "```python\ndef add(a, b):\n    return a + b\n```", asserts, false, "tests_failed", 2, 3, "assert add(2, 2) == 5"},
		{"syntax error", "```python\ndef add(a, b)\n    return a + b\n```", he, false, "syntax_error", 0, 4, "SyntaxError"},
		{"runtime error at load", "```python\nraise ValueError('boom')\n```", he, false, "runtime_error", 0, 4, "ValueError: boom"},
		{"no code", "I cannot help with that.```bash\nls\n```", he, false, "no_code", 0, 0, ""},
		{"timeout", "```python\ndef add(a, b):\n    import time\n    time.sleep(100)\n```", he, false, "timeout", 0, 4, ""},
		{"memory", "```python\ndef add(a, b):\n    return len(bytearray(1 << 40))\n```", he, false, "memory", 0, 4, "MemoryError"},
		{"sys.exit(0) is not a pass", "```python\nimport sys\nsys.exit(0)\n```", he, false, "runtime_error", 0, 4, "SystemExit"},
		{"os._exit(0) during the tests is not a pass", "```python\nimport os\ndef add(a, b):\n    os._exit(0)\n```", he, false, "crashed", 0, 4, ""},
		{"forged report is ignored", "```python\nimport os\nos.write(3, b'x {\"kind\": \"done\"}\\n')\ndef add(a, b):\n    os._exit(0)\n```", he, false, "crashed", 0, 4, ""},
		{"input() gets EOF", "```python\nn = input()\n```", he, false, "runtime_error", 0, 4, "EOFError"},
		{"main block does not run", "```python\ndef add(a, b):\n    return a + b\nif __name__ == '__main__':\n    input()\n```", he, true, "", 4, 4, ""},
		{"a failing statement between tests stops them", "```python\ndef add(a, b):\n    if a == 2:\n        raise KeyError('two')\n    return a + b\n```", he, false, "tests_failed", 2, 4, "KeyError: 'two'"},
		{"other language refused", "x", codegrade.Task{Tests: "assert True", Language: "rust"}, false, "unsupported_language", 0, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := g.Grade(context.Background(), c.response, c.task)
			if v.Correct != c.correct || v.Reason != c.reason || v.Passed != c.passed || v.Total != c.total || !strings.Contains(v.Message, c.message) {
				t.Errorf("got correct %v reason %q %d/%d message %q stderr %q, want %v %q %d/%d %q",
					v.Correct, v.Reason, v.Passed, v.Total, v.Message, v.Stderr, c.correct, c.reason, c.passed, c.total, c.message)
			}
			if c.total > 0 && v.PassRate != float64(v.Passed)/float64(v.Total) {
				t.Errorf("pass rate %v", v.PassRate)
			}
		})
	}
}
