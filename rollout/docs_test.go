package rollout

import (
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/redraft/redraft/internal/doccheck"
)

// TestInputErrorTable reads every bad input of docs/inputs.md's table of
// errors and compares the error with the table's example, the temporary
// directory left out.
func TestInputErrorTable(t *testing.T) {
	table := doccheck.One(t, "..", "docs/inputs.md", "TestInputErrorTable")
	good, rec := taskLine("a"), recLine("a")
	rewardRec := func(reward string) string {
		return `{"id": "b", "prompt": "p", "responses": ["x", {"text": "y", "reward": 1}, {"text": "z", "reward": ` + reward + `}]}`
	}
	type input struct {
		name, content string // content "dir": a directory with a README.md; "parquet": 2,000 rows, a NaN reward in the last
		recorded      bool
		opts          InputOptions
	}
	cases := map[string]input{
		"malformed JSON":                 {name: "in.jsonl", content: good + "\n" + `{"id": "b", "prompt": `},
		"a record that is not an object": {name: "in.jsonl", content: good + "\n[1, 2]"},
		"invalid UTF-8 in a string (JSONL or Parquet)": {name: "in.jsonl",
			content: good + "\n" + "{\"id\": \"b\", \"messages\": [{\"role\": \"user\", \"content\": \"ok\"}, {\"role\": \"user\", \"content\": \"\xc3\x28\"}]}"},
		"missing required field": {name: "in.jsonl", content: good + "\n" + `{"id": "b"}`},
		"wrong type":             {name: "in.jsonl", content: rec + "\n" + rewardRec(`"0.5"`), recorded: true},
		"unknown field, with `extra_fields: error`": {name: "in.jsonl", content: good + "\n" + `{"id": "b", "prompt": "p", "difficulty": 3}`,
			opts: InputOptions{ExtraFields: ExtraFieldsError}},
		"line over `source.max_line_bytes`": {name: "in.jsonl", content: good + "\n" + `{"id": "b", "prompt": "` + strings.Repeat("x", 200) + `"}`,
			opts: InputOptions{MaxLineBytes: 64}},
		"duplicate task id":                       {name: "in.jsonl", content: good + "\n" + taskLine("b") + "\n" + good},
		"NaN or infinite number":                  {name: "in.jsonl", content: rec + "\n" + rewardRec("NaN"), recorded: true},
		"... in Parquet":                          {name: "in.parquet", content: "parquet", recorded: true},
		"empty file (no records)":                 {name: "in.jsonl", content: ""},
		"a file in a directory that is not input": {name: "data", content: "dir"},
		"a tool result that answers no earlier call": {name: "in.jsonl", content: good + "\n" + `{"id": "b", "messages": [{"role": "user", "content": "q"}, ` +
			`{"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, ` +
			`{"role": "tool", "tool_call_id": "call_9", "content": "r"}]}`},
		"a number too large for a float64, anywhere (metadata and reference too)": {name: "in.jsonl",
			content: good + "\n" + `{"id": "b", "prompt": "p", "metadata": {"score": 1e999}}`},
	}
	row := regexp.MustCompile("^\\| (.+?) \\| `(.+)` \\|$")
	seen := 0
	for _, l := range strings.Split(strings.TrimRight(table, "\n"), "\n")[2:] {
		m := row.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("docs/inputs.md: table row %q is not | case | `example` |", l)
			continue
		}
		in, ok := cases[m[1]]
		if !ok {
			t.Errorf("docs/inputs.md: no input for the case %q", m[1])
			continue
		}
		seen++
		dir := t.TempDir()
		p := filepath.Join(dir, in.name)
		switch in.content {
		case "parquet":
			rows := make([]pqRow, 2000)
			for i := range rows {
				rows[i] = goodRows("r" + string(rune('a'+i%26)) + strings.Repeat("x", i/26))[0]
			}
			rows[1999].responses = []pqResp{{text: "x", reward: math.NaN(), hasReward: true}}
			writeParquet(t, p, rows)
		case "dir":
			os.Mkdir(p, 0o755)
			os.WriteFile(filepath.Join(p, "01.jsonl"), []byte(good+"\n"), 0o644)
			os.WriteFile(filepath.Join(p, "README.md"), []byte("# data\n"), 0o644)
		default:
			os.WriteFile(p, []byte(in.content), 0o644)
		}
		opts := in.opts
		opts.Path, opts.OnError = p, OnErrorFail
		_, _, err := readAll(t, opts, in.recorded)
		if err == nil {
			t.Errorf("%s: no error", m[1])
			continue
		}
		if got := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""); got != m[2] {
			t.Errorf("docs/inputs.md, %s:\n  doc:     %s\n  program: %s", m[1], m[2], got)
		}
	}
	if seen != len(cases) {
		t.Errorf("the table has %d of the %d cases", seen, len(cases))
	}
}

// TestInputDocRecords reads the task records docs/inputs.md shows as the
// input they are.
func TestInputDocRecords(t *testing.T) {
	block := doccheck.One(t, "..", "docs/inputs.md", "TestInputDocRecords")
	ids, _, err := readAll(t, InputOptions{Path: writeFile(t, "tasks.jsonl", block), ExtraFields: ExtraFieldsError}, false)
	if err != nil || strings.Join(ids, " ") != "q-17 q-18 q-19" {
		t.Fatalf("docs/inputs.md's task records: read %v, %v", ids, err)
	}
}
