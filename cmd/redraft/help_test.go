package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestCommandHelp runs every command with -h and --help: the help goes to
// stdout with exit 0 and has a usage line, a paragraph saying what the
// command does and reads, and the flags, without Go's "Usage of run:"
// header or a sentinel default such as "(default -1)"; the commands that
// read stdin say what they read there. A flag that does not parse is a usage
// error (exit 2) that points at the help (issue 16 item 7).
func TestCommandHelp(t *testing.T) {
	tests := map[string]struct {
		usage string   // the first line
		says  []string // in the paragraph
	}{
		"run":        {"Usage: redraft run --config FILE [flags]", []string{"YAML configuration", "output directory", "resumes"}},
		"splice":     {"Usage: redraft splice --format prm800k|mr-gsm8k --input FILE --out DIR [flags]", []string{"PRM800K", "MR-GSM8K", "--input"}},
		"audit":      {"Usage: redraft audit [flags] PATH", []string{"rl shards", "--compare"}},
		"probe":      {"Usage: redraft probe --config FILE [flags]", []string{"without a model", "honest", "--forbid", "--threshold"}},
		"validate":   {"Usage: redraft validate [flags] DIR", []string{"manifest.json", "violation"}},
		"merge":      {"Usage: redraft merge [--verify] DIR", []string{"--shard i/N", "manifest.json"}},
		"grade":      {"Usage: redraft grade [flags] < cases.jsonl", []string{"from stdin", `{"gold": REFERENCE, "prediction": RESPONSE}`, `{"prediction", "tests", "entry_point", "prompt"}`, "to stdout"}},
		"advantages": {"Usage: redraft advantages [flags] < groups.jsonl", []string{"from stdin", `{"rewards": [r1, r2, ...]}`, "to stdout"}},
		"tokenize":   {"Usage: redraft tokenize --tokenizer FILE < lines.txt", []string{"from stdin", "one text per line", "to stdout"}},
		"version":    {"Usage: redraft version", []string{"VCS revision"}},
		"view":       {"Usage: redraft view [flags] DIR", []string{"127.0.0.1", "row groups", "Ctrl+C"}},
		"serve":      {"Usage: redraft serve [flags]", []string{"127.0.0.1", "OpenRLHF", "verl", "413", "400", "503", "/health"}},
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	dispatch := regexp.MustCompile(`case "([a-z]+)":\n\t\terr = cmd`).FindAllStringSubmatch(string(src), -1)
	if len(dispatch) != len(tests) {
		t.Errorf("main.go dispatches %d commands, the test knows %d: give a new command its help and a row here", len(dispatch), len(tests))
	}
	for _, m := range dispatch {
		name := m[1]
		tc, ok := tests[name]
		if !ok {
			t.Errorf("command %q has no row in TestCommandHelp", name)
			continue
		}
		for _, h := range []string{"-h", "--help"} {
			code, stdout, stderr := redraft(t, name, h)
			if code != 0 || stderr != "" {
				t.Errorf("%s %s: exit %d, stderr %q", name, h, code, stderr)
			}
			first, rest, _ := strings.Cut(stdout, "\n")
			if first != tc.usage {
				t.Errorf("%s %s: first line %q, want %q", name, h, first, tc.usage)
			}
			if !strings.Contains(rest, "\n\nFlags:\n") || !strings.HasSuffix(stdout, "  -h, --help\n        print this help\n") {
				t.Errorf("%s %s: no Flags section:\n%s", name, h, stdout)
			}
			about, _, _ := strings.Cut(rest, "\n\nFlags:\n")
			about = strings.Join(strings.Fields(about), " ")
			for _, want := range tc.says {
				if !strings.Contains(about, want) {
					t.Errorf("%s %s: the paragraph does not say %q:\n%s", name, h, want, about)
				}
			}
			if bad := regexp.MustCompile(`Usage of|\(default (-1|0|0s|""|false)\)`).FindString(stdout); bad != "" {
				t.Errorf("%s %s: help shows %q:\n%s", name, h, bad, stdout)
			}
		}
		code, _, stderr := redraft(t, name, "--no-such-flag")
		if code != 2 || !strings.Contains(stderr, "redraft "+name+": flag provided but not defined: -no-such-flag (redraft "+name+" -h lists its flags)") {
			t.Errorf("%s --no-such-flag: exit %d: %s", name, code, stderr)
		}
	}
}

// The flags whose default means "left out" (the configuration's or the
// server's value applies) show no default, and still take any value given,
// which the command then checks.
func TestFlagsWithoutDefault(t *testing.T) {
	for _, tc := range []struct{ cmd, flag string }{{"run", "workers"}, {"splice", "temperature"}, {"advantages", "eps"}} {
		_, stdout, _ := redraft(t, tc.cmd, "-h")
		_, after, ok := strings.Cut(stdout, "  --"+tc.flag+" ")
		if !ok {
			t.Errorf("%s -h does not list --%s", tc.cmd, tc.flag)
			continue
		}
		kind, usage, _ := strings.Cut(after, "\n")
		usage, _, _ = strings.Cut(usage, "\n  -")
		if kind != "int" && kind != "float" || strings.Contains(usage, "(default ") {
			t.Errorf("%s --%s: %q %q", tc.cmd, tc.flag, kind, usage)
		}
	}
	if code, stdout, stderr := redraftIn(t, `{"rewards": [1, 0]}`+"\n", "advantages", "--eps", "0"); code != 0 || stdout != `{"advantages":[0.7071067811865475,-0.7071067811865475]}`+"\n" {
		t.Errorf("advantages --eps 0: exit %d: %s %s", code, stdout, stderr)
	}
	if code, _, stderr := redraftIn(t, "", "advantages", "--eps", "x"); code != 2 || !strings.Contains(stderr, `invalid value "x" for flag -eps: not a number`) {
		t.Errorf("advantages --eps x: exit %d: %s", code, stderr)
	}
}
