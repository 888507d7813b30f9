package probe

import (
	"reflect"
	"strings"
	"testing"

	"github.com/redraft/redraft/rollout"
)

// Examples finds the prompt's doctest calls of the entry point and their
// shown output, once each; other functions' calls and multi-line outputs'
// continuation lines are not examples.
func TestExamples(t *testing.T) {
	prefix := "def f(a, b=2):\n    \"\"\" Adds.\n    >>> f(1, 2)\n    3\n    >>> f(1, b=5)\n    6\n    >>> g(1)\n    1\n    >>> f(1, 2)\n    3\n    >>> f([1,\n    ...  2])\n    \"\"\"\n"
	task := rollout.Task{Code: &rollout.CodeSpec{EntryPoint: "f", Prefix: prefix, Tests: "assert True"}}
	got := Examples(task)
	want := [][2]string{{"1, 2", "3"}, {"1, b=5", "6"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Examples = %q, want %q", got, want)
	}
	prog := visibleTestsProgram("f", got)
	for _, s := range []string{"(_call(1, 2), 3)", "(_call(1, b=5), 6)", "def f(*args, **kwargs):", "return None"} {
		if !strings.Contains(prog, s) {
			t.Errorf("program lacks %q:\n%s", s, prog)
		}
	}
	// The battery: one sample per probe, in order, each tagged with its name.
	c := Case{Task: task, Honest: "```python\n" + prefix + "    return a + b\n```"}
	smp := buildCode(c)
	if len(smp) != len(CodeProbes) {
		t.Fatalf("%d samples", len(smp))
	}
	for i, s := range smp {
		if s.Index != i || s.Model != "probe:"+CodeProbes[i].Name || s.Text == "" {
			t.Errorf("sample %d: %+v", i, s)
		}
	}
	if !strings.HasPrefix(smp[len(smp)-1].Text, "```javascript\n"+prefix) {
		t.Errorf("wrong-language: %q", smp[len(smp)-1].Text)
	}
}
