package codegrade

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestExtract(t *testing.T) {
	cases := []struct{ name, in, code, rule string }{
		{"python block", "Here:\n```python\ndef f():\n    return 1\n```\nDone.", "def f():\n    return 1\n", "python_block"},
		{"last python block wins", "```python\nx = 1\n```\ntext\n```python\nx = 2\n```\n", "x = 2\n", "python_block"},
		{"python over a later bare block", "```py\nx = 1\n```\n```\nx = 2\n```\n", "x = 1\n", "python_block"},
		{"last bare block when none is tagged", "```\na = 1\n```\nand\n```\nb = 2\n```", "b = 2\n", "bare_block"},
		{"tag case and info words", "```Python title=\"x\"\nx = 3\n```", "x = 3\n", "python_block"},
		{"tildes", "~~~python\nx = 4\n~~~\n", "x = 4\n", "python_block"},
		{"longer fence holds a shorter one", "````python\ns = '''\n```\n'''\n````\n", "s = '''\n```\n'''\n", "python_block"},
		{"indented body kept", "```python\n    return x + 1\n```", "    return x + 1\n", "python_block"},
		{"unclosed block", "```python\ndef f():\n    return 1\n", "def f():\n    return 1\n", "python_block_unclosed"},
		{"no fence: whole response", "    return x + 1\n", "    return x + 1\n", "whole"},
		{"think dropped", "<think>```python\nx = 0\n```</think>```python\nx = 5\n```", "x = 5\n", "python_block"},
	}
	for _, c := range cases {
		code, rule, ok := Extract(c.in)
		if !ok || code != c.code || rule != c.rule {
			t.Errorf("%s: got %q %q %v, want %q %q", c.name, code, rule, ok, c.code, c.rule)
		}
	}
	for _, in := range []string{"", "  \n", "```bash\nrm -rf /\n```", "```python\n\n```", "<think>still thinking ```python\nx=1\n```"} {
		if code, rule, ok := Extract(in); ok {
			t.Errorf("Extract(%q) = %q %q, want nothing", in, code, rule)
		}
	}
}

func FuzzExtractCode(f *testing.F) {
	for _, s := range []string{"```python\nx=1\n```", "~~~\n~~~", "````py\n```\n````", "<think>", "</think>```", "   ```python\n  ```", "plain text"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, rule, ok := Extract(s)
		if !ok {
			if code != "" || rule != "" {
				t.Fatalf("not found but %q %q", code, rule)
			}
			return
		}
		if strings.TrimSpace(code) == "" {
			t.Fatalf("empty code found by %s", rule)
		}
		if rule == "whole" && strings.Contains(s, "```") && !strings.Contains(s, "<think>") {
			// A whole-response program never holds a fence that opens a block.
			for _, b := range fencedBlocks(s) {
				t.Fatalf("whole response although block %+v", b)
			}
		}
		if utf8.ValidString(s) && !utf8.ValidString(code) {
			t.Fatalf("valid UTF-8 in, invalid out")
		}
		if rule != "whole" && !strings.Contains(s, code) {
			t.Fatalf("block %q is not a substring of the response", code)
		}
	})
}
