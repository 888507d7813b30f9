package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// inputReader is what TaskFile and RecordedFile share, for tests that read
// both.
type inputReader interface {
	Skipped() []SkippedRecord
	SkippedTotal() int64
	Close() error
}

// readAll opens opts as tasks or recorded rollouts and reads until io.EOF or
// the first error, returning the ids read and the reader (closed).
func readAll(t *testing.T, opts InputOptions, recorded bool) ([]string, inputReader, error) {
	t.Helper()
	var ids []string
	var next func() (string, error)
	var rd inputReader
	if recorded {
		src, err := OpenRecorded(opts)
		if err != nil {
			return nil, nil, err
		}
		rd = src
		next = func() (string, error) {
			g, err := src.Next(context.Background())
			if err != nil {
				return "", err
			}
			return g.Task.ID, nil
		}
	} else {
		src, err := OpenTasks(opts)
		if err != nil {
			return nil, nil, err
		}
		rd = src
		next = func() (string, error) {
			task, err := src.Next(context.Background())
			return task.ID, err
		}
	}
	defer rd.Close()
	for {
		id, err := next()
		if errors.Is(err, io.EOF) {
			return ids, rd, nil
		}
		if err != nil {
			return ids, rd, err
		}
		ids = append(ids, id)
	}
}

func taskLine(id string) string { return fmt.Sprintf(`{"id": %q, "prompt": "p"}`, id) }
func recLine(id string) string {
	return fmt.Sprintf(`{"id": %q, "prompt": "p", "responses": ["r"]}`, id)
}

// checkInputError checks that err is an *InputError at file, line and field
// whose message contains msg and starts with the file.
func checkInputError(t *testing.T, err error, file string, line int, field, msg string) {
	t.Helper()
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Fatalf("want *InputError, got %v", err)
	}
	if ie.File != file || ie.Line != line || ie.Field != field || !strings.Contains(ie.Error(), msg) || !strings.HasPrefix(ie.Error(), file) {
		t.Errorf("got %q (file %s line %d field %q), want %s line %d field %q containing %q", ie.Error(), ie.File, ie.Line, ie.Field, file, line, field, msg)
	}
	t.Logf("error: %s", strings.ReplaceAll(ie.Error(), filepath.Dir(file)+"/", ""))
}

// Every kind of bad record, under both policies: fail stops at it with a
// located error, skip drops the whole record, records it and reads on.
func TestBadInputPolicies(t *testing.T) {
	// around puts a bad record on line 2 between two good ones.
	around := func(bad string, recorded bool) string {
		good := taskLine
		if recorded {
			good = recLine
		}
		return good("a") + "\n" + bad + "\n" + good("c") + "\n"
	}
	long := `{"id": "b", "prompt": "` + strings.Repeat("x", 200) + `"}`
	rewardRec := func(reward string) string {
		return `{"id": "b", "prompt": "p", "responses": ["x", {"text": "y", "reward": 1}, {"text": "z", "reward": ` + reward + `}]}`
	}
	tests := []struct {
		name     string
		content  string
		recorded bool
		opts     InputOptions // Path, OnError set by the test
		ok       bool         // no bad record
		line     int
		field    string
		msg      string
		failIDs  []string // read before the error under fail
		skipIDs  []string // read under skip
	}{
		{name: "malformed json", content: around(`{"id": "b", "prompt": `, false), line: 2, msg: "malformed JSON", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "not an object", content: around(`[1, 2]`, false), line: 2, msg: "malformed JSON: the record is a JSON array, not an object", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "invalid utf8 in prompt", content: around("{\"id\": \"b\", \"prompt\": \"caf\xe9\"}", false), line: 2, field: "prompt", msg: "invalid UTF-8 in a string", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "invalid utf8 in a message", content: around("{\"id\": \"b\", \"messages\": [{\"role\": \"user\", \"content\": \"ok\"}, {\"role\": \"user\", \"content\": \"\xc3\x28\"}]}", false), line: 2, field: "messages[1].content", msg: "invalid UTF-8 in a string", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "invalid utf8 in a key", content: around("{\"id\": \"b\", \"prompt\": \"p\", \"note\xff\": 1}", false), line: 2, field: "note\uFFFD", msg: "invalid UTF-8 in the key", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "invalid utf8 in a response", content: around("{\"id\": \"b\", \"prompt\": \"p\", \"responses\": [{\"text\": \"\xff\"}]}", true), recorded: true, line: 2, field: "responses[0].text", msg: "invalid UTF-8 in a string", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "missing prompt", content: around(`{"id": "b"}`, false), line: 2, field: "prompt", msg: "missing", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "missing id", content: around(`{"prompt": "p"}`, false), line: 2, field: "id", msg: "missing (set source.generate_ids", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "missing responses", content: around(`{"id": "b", "prompt": "p"}`, true), recorded: true, line: 2, field: "responses", msg: "missing", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "extra field ignored", content: around(`{"id": "b", "prompt": "p", "difficulty": 3}`, false), ok: true, failIDs: []string{"a", "b", "c"}, skipIDs: []string{"a", "b", "c"}},
		{name: "extra fields ignored everywhere", content: around(`{"id": "b", "messages": [{"role": "user", "content": "x", "name": "bob"}], "responses": [{"text": "x", "score": 1}], "x": 1}`, true), recorded: true, ok: true, failIDs: []string{"a", "b", "c"}, skipIDs: []string{"a", "b", "c"}},
		{name: "extra field error", content: around(`{"id": "b", "prompt": "p", "difficulty": 3, "zz": 1}`, false), opts: InputOptions{ExtraFields: ExtraFieldsError}, line: 2, field: "difficulty", msg: "unknown field", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "extra field in a message", content: around(`{"id": "b", "messages": [{"role": "user", "content": "x", "weight": 2}]}`, false), opts: InputOptions{ExtraFields: ExtraFieldsError}, line: 2, field: "messages[0].weight", msg: "unknown field", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "extra field in a response", content: around(`{"id": "b", "prompt": "p", "responses": [{"text": "x", "score": 1}]}`, true), recorded: true, opts: InputOptions{ExtraFields: ExtraFieldsError}, line: 2, field: "responses[0].score", msg: "unknown field", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "responses unknown to tasks", content: around(`{"id": "b", "prompt": "p", "responses": []}`, false), opts: InputOptions{ExtraFields: ExtraFieldsError}, line: 2, field: "responses", msg: "unknown field", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "line too long", content: around(long, false), opts: InputOptions{MaxLineBytes: 64}, line: 2, msg: "line of 225 bytes is longer than the limit of 64 bytes (source.max_line_bytes)", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "duplicate id", content: taskLine("a") + "\n" + taskLine("b") + "\n" + taskLine("a") + "\n" + taskLine("c"), line: 3, field: "id", msg: `duplicate task id "a" (first on line 1)`, failIDs: []string{"a", "b"}, skipIDs: []string{"a", "b", "c"}},
		{name: "duplicate numeric id", content: `{"id": 7, "prompt": "p"}` + "\n" + `{"id": "7", "prompt": "q"}`, line: 2, field: "id", msg: `duplicate task id "7" (first on line 1)`, failIDs: []string{"7"}, skipIDs: []string{"7"}},
		{name: "NaN reward", content: around(rewardRec("NaN"), true), recorded: true, line: 2, field: "responses[2].reward", msg: "not a finite number: NaN", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "Infinity reward", content: around(rewardRec("Infinity"), true), recorded: true, line: 2, field: "responses[2].reward", msg: "not a finite number: Infinity", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "-Infinity reward", content: around(rewardRec("-Infinity"), true), recorded: true, line: 2, field: "responses[2].reward", msg: "not a finite number: -Infinity", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "overflowing reward", content: around(rewardRec("1e999"), true), recorded: true, line: 2, field: "responses[2].reward", msg: "not a finite number: 1e999", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "reward not a number", content: around(rewardRec(`"0.5"`), true), recorded: true, line: 2, field: "responses[2].reward", msg: "want a number", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "NaN in metadata", content: around(`{"id": "b", "prompt": "p", "metadata": {"score": NaN}}`, false), line: 2, field: "metadata.score", msg: "not a finite number: NaN", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		// Numbers too large for a float64 decode as infinities: rejected like
		// NaN, in every field, as written.
		{name: "overflowing number in metadata", content: around(`{"id": "b", "prompt": "p", "metadata": {"score": 1e999}}`, false), line: 2, field: "metadata.score", msg: "not a finite number: 1e999", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "negative overflow nested in metadata", content: around(`{"id": "b", "prompt": "p", "metadata": {"a": [1, {"b": -1e400}]}}`, false), line: 2, field: "metadata.a[1].b", msg: "not a finite number: -1e400", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "overflowing reference", content: around(`{"id": "b", "prompt": "p", "reference": 1e999}`, false), line: 2, field: "reference", msg: "not a finite number: 1e999", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "overflowing reference by digits", content: around(`{"id": "b", "prompt": "p", "reference": `+strings.Repeat("9", 400)+`}`, false), line: 2, field: "reference", msg: "not a finite number: 999", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "overflow in response metadata", content: around(`{"id": "b", "prompt": "p", "responses": [{"text": "x", "metadata": {"s": 1E+309}}]}`, true), recorded: true, line: 2, field: "responses[0].metadata.s", msg: "not a finite number: 1E+309", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "overflow in an ignored field", content: around(`{"id": "b", "prompt": "p", "difficulty": -1e400}`, false), line: 2, field: "difficulty", msg: "not a finite number: -1e400", failIDs: []string{"a"}, skipIDs: []string{"a", "c"}},
		{name: "tiny numbers and number-like strings are fine", content: around(`{"id": "b", "prompt": "3e5 and 1e999", "reference": 1e-400, "metadata": {"x": 1.5e308, "y": "1e999", "z": -1e-999}}`, false), ok: true, failIDs: []string{"a", "b", "c"}, skipIDs: []string{"a", "b", "c"}},
		{name: "empty file", content: "", msg: "file is empty"},
		{name: "blank lines only", content: "\n  \n\n", msg: "file is empty"},
	}
	for _, tt := range tests {
		for _, policy := range []OnError{OnErrorFail, OnErrorSkip} {
			t.Run(tt.name+"/"+string(policy), func(t *testing.T) {
				p := writeFile(t, "in.jsonl", tt.content)
				opts := tt.opts
				opts.Path, opts.OnError = p, policy
				ids, rd, err := readAll(t, opts, tt.recorded)
				want := tt.skipIDs
				if policy == OnErrorFail {
					want = tt.failIDs
				}
				if fmt.Sprint(ids) != fmt.Sprint(want) {
					t.Errorf("read %v, want %v", ids, want)
				}
				switch {
				case tt.ok:
					if err != nil || len(rd.Skipped()) != 0 {
						t.Fatalf("got %v, skipped %v; want no error", err, rd.Skipped())
					}
				case policy == OnErrorFail:
					checkInputError(t, err, p, tt.line, tt.field, tt.msg)
					if len(rd.Skipped()) != 0 {
						t.Errorf("fail recorded skips %v", rd.Skipped())
					}
				default:
					if err != nil {
						t.Fatal(err)
					}
					sk := rd.Skipped()
					if len(sk) != 1 || rd.SkippedTotal() != 1 || sk[0].File != p || sk[0].Line != tt.line || sk[0].Field != tt.field || !strings.Contains(sk[0].Reason, strings.TrimPrefix(tt.msg, "field ")) {
						t.Errorf("skipped %+v (total %d), want one at line %d field %q with %q", sk, rd.SkippedTotal(), tt.line, tt.field, tt.msg)
					}
				}
			})
		}
	}
}

// A bad record fails for good: later calls return the same error.
func TestFailIsSticky(t *testing.T) {
	p := writeFile(t, "in.jsonl", taskLine("a")+"\n{\n"+taskLine("c"))
	src, err := OpenTasks(InputOptions{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	if _, err := src.Next(ctx); err != nil {
		t.Fatal(err)
	}
	_, first := src.Next(ctx)
	_, again := src.Next(ctx)
	if first == nil || again != first {
		t.Errorf("got %v then %v, want the same error twice", first, again)
	}
}

// Recorded rewards are carried to the sample; null and absent are nil.
func TestRecordedReward(t *testing.T) {
	p := writeFile(t, "r.jsonl", `{"id": "a", "prompt": "x", "responses": [{"text": "t", "reward": 0.5}, {"text": "u", "reward": null}, "v", {"text": "w", "reward": -2}]}`)
	src, err := OpenRecorded(InputOptions{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	g, err := src.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range g.Samples {
		if s.RecordedReward == nil {
			got = append(got, "nil")
		} else {
			got = append(got, fmt.Sprint(*s.RecordedReward))
		}
	}
	if strings.Join(got, " ") != "0.5 nil nil -2" {
		t.Errorf("rewards %v", got)
	}
}

// An over-long line is passed over in chunks, never held whole, and reading
// goes on at the next line.
func TestLongLineResync(t *testing.T) {
	const max = 1024
	huge := `{"id": "b", "prompt": "` + strings.Repeat("x", 8<<20) + `"}`
	p := writeFile(t, "big.jsonl", taskLine("a")+"\n"+huge+"\n"+taskLine("c")+"\n")
	src, err := OpenTasks(InputOptions{Path: p, MaxLineBytes: max, OnError: OnErrorSkip})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var ids []string
	for range 2 {
		task, err := src.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, task.ID)
	}
	if fmt.Sprint(ids) != "[a c]" {
		t.Errorf("read %v", ids)
	}
	if c := cap(src.in.cur.(*jsonlReader).buf); c > 4*max {
		t.Errorf("the reader buffered %d bytes for a limit of %d", c, max)
	}
	sk := src.Skipped()
	if len(sk) != 1 || sk[0].Line != 2 || sk[0].Reason != fmt.Sprintf("line of %d bytes is longer than the limit of 1024 bytes (source.max_line_bytes)", len(huge)) {
		t.Errorf("skipped %+v", sk)
	}
}

// The skipped list is bounded; the count is not.
func TestSkippedBounded(t *testing.T) {
	n := MaxSkippedRecords + 5
	p := writeFile(t, "bad.jsonl", strings.Repeat("x\n", n)+taskLine("a")+"\n")
	ids, rd, err := readAll(t, InputOptions{Path: p, OnError: OnErrorSkip}, false)
	if err != nil || fmt.Sprint(ids) != "[a]" {
		t.Fatalf("read %v, %v", ids, err)
	}
	sk := rd.Skipped()
	if len(sk) != MaxSkippedRecords || rd.SkippedTotal() != int64(n) || sk[0].Line != 1 || sk[len(sk)-1].Line != MaxSkippedRecords {
		t.Errorf("kept %d (last line %d), total %d", len(sk), sk[len(sk)-1].Line, rd.SkippedTotal())
	}
}

func TestInputOptionsChecked(t *testing.T) {
	p := writeFile(t, "in.jsonl", taskLine("a"))
	tests := []struct {
		name  string
		opts  InputOptions
		field string
	}{
		{"on_error", InputOptions{OnError: "ignore"}, "on_error"},
		{"extra_fields", InputOptions{ExtraFields: "skip"}, "extra_fields"},
		{"negative count", InputOptions{Shard: Shard{Count: -1}}, "shard"},
		{"index without count", InputOptions{Shard: Shard{Index: 1}}, "shard"},
		{"index out of range", InputOptions{Shard: Shard{Index: 4, Count: 4}}, "shard"},
		{"negative skip", InputOptions{SkipTasks: -1}, "skip_tasks"},
		{"format", InputOptions{Format: "csv"}, "format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Path = p
			_, err := OpenTasks(tt.opts)
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field != tt.field {
				t.Errorf("got %v, want an error on %s", err, tt.field)
			}
		})
	}
}

// dirFiles builds an input directory from name -> content; a content of
// "/" makes a subdirectory, "rows:a,b" a Parquet file of those task ids.
func dirFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		switch {
		case content == "/":
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(content, "rows:"):
			var rows []pqRow
			for _, id := range strings.Split(strings.TrimPrefix(content, "rows:"), ",") {
				rows = append(rows, pqRow{id: id, prompt: "p"})
			}
			writeParquet(t, p, rows)
		default:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// A directory is one stream of its *.jsonl and *.parquet files in name
// order; hidden files and subdirectories are ignored, other files are bad
// input, and duplicates are found across files.
func TestDirectoryInput(t *testing.T) {
	files := map[string]string{
		"01.jsonl":      taskLine("a") + "\n" + taskLine("b") + "\n",
		"02.parquet":    "rows:c,d",
		"03.jsonl":      taskLine("e") + "\n" + taskLine("b") + "\n" + taskLine("f") + "\n",
		"notes.csv":     "id,prompt\n",
		".hidden.jsonl": "garbage",
		"sub/04.jsonl":  taskLine("g"),
		"sub/.keep":     "",
	}
	tests := []struct {
		name    string
		files   map[string]string
		policy  OnError
		ids     []string
		errFile string
		errLine int
		errMsg  string
		skipped []string // file:line
	}{
		{name: "skip", files: files, policy: OnErrorSkip, ids: []string{"a", "b", "c", "d", "e", "f"},
			skipped: []string{"03.jsonl:2", "notes.csv:0"}},
		{name: "fail on duplicate", files: files, policy: OnErrorFail, ids: []string{"a", "b", "c", "d", "e"},
			errFile: "03.jsonl", errLine: 2, errMsg: `duplicate task id "b" (first on DIR/01.jsonl:2)`},
		{name: "fail on other file", files: map[string]string{"01.jsonl": taskLine("a"), "README.md": "# data"}, policy: OnErrorFail,
			ids: []string{"a"}, errFile: "README.md", errMsg: "not an input file"},
		{name: "empty file in directory", files: map[string]string{"01.jsonl": taskLine("a"), "02.jsonl": "", "03.parquet": ""}, policy: OnErrorSkip,
			ids: []string{"a"}, skipped: []string{"02.jsonl:0", "03.parquet:0"}},
		{name: "empty directory", files: map[string]string{"sub": "/", ".x.jsonl": taskLine("a")}, policy: OnErrorFail,
			errFile: ".", errMsg: "directory holds no input files"},
		{name: "empty directory skipped", files: map[string]string{"sub": "/"}, policy: OnErrorSkip, skipped: []string{".:0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := dirFiles(t, tt.files)
			ids, rd, err := readAll(t, InputOptions{Path: dir, OnError: tt.policy}, false)
			if fmt.Sprint(ids) != fmt.Sprint(tt.ids) {
				t.Errorf("read %v, want %v", ids, tt.ids)
			}
			if tt.errMsg != "" {
				checkInputError(t, err, filepath.Join(dir, tt.errFile), tt.errLine, map[bool]string{true: "id"}[tt.errLine > 0], strings.ReplaceAll(tt.errMsg, "DIR", dir))
			} else if err != nil {
				t.Fatal(err)
			}
			var skipped []string
			for _, s := range rd.Skipped() {
				rel, _ := filepath.Rel(dir, s.File)
				skipped = append(skipped, fmt.Sprintf("%s:%d", rel, s.Line))
			}
			if fmt.Sprint(skipped) != fmt.Sprint(tt.skipped) {
				t.Errorf("skipped %v, want %v", skipped, tt.skipped)
			}
		})
	}
}

// Line numbers and generated ids are per file in a directory.
func TestDirectoryOrigins(t *testing.T) {
	dir := dirFiles(t, map[string]string{"a.jsonl": `{"prompt": "x"}`, "b.jsonl": "\n" + `{"prompt": "y"}`, "c.parquet": "rows:z"})
	src, err := OpenTasks(InputOptions{Path: dir, GenerateIDs: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var got []string
	for {
		task, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, task.Origin.File)
		got = append(got, fmt.Sprintf("%s %s:%d", task.ID, rel, task.Origin.Line))
	}
	if want := "[a.jsonl:1 a.jsonl:1 b.jsonl:2 b.jsonl:2 z c.parquet:1]"; fmt.Sprint(got) != want {
		t.Errorf("got %v, want %s", got, want)
	}
}

// The shard hash is pinned: Python users compute the same values.
func TestShardOf(t *testing.T) {
	tests := []struct {
		id           string
		count, shard int
	}{
		{"", 7, 2}, {"a", 2, 0}, {"gsm8k-test-0000", 8, 5}, {"q-17", 1000, 411}, {"tâche-é", 16, 15}, {"7", 3, 2},
		{"anything", 1, 0}, {"anything", 0, 0},
	}
	for _, tt := range tests {
		if got := ShardOf(tt.id, tt.count); got != tt.shard {
			t.Errorf("ShardOf(%q, %d) = %d, want %d", tt.id, tt.count, got, tt.shard)
		}
	}
}

func TestTaskIDHash(t *testing.T) {
	tests := []struct {
		ids  []string
		want uint64
	}{
		{nil, 0},
		{[]string{"a"}, 0x089bc907b544c769},
		{[]string{"a", "b", "c"}, 0x3ab336ed30c133fc},
		{[]string{"ab", "c"}, 0x20ba9b3025a8b421},
		{[]string{"a", "bc"}, 0xa0a3542c19b900ab},
	}
	for _, tt := range tests {
		if got := hashIDs(tt.ids...); got != tt.want {
			t.Errorf("hash of %q = %#016x, want %#016x", tt.ids, got, tt.want)
		}
	}
}

func hashIDs(ids ...string) uint64 {
	var h uint64
	for _, id := range ids {
		h = TaskIDHash(h, id)
	}
	return h
}

// Each shard reads its own tasks in input order; together they read every
// task once, and a duplicate fails every shard, not only the one it falls in.
func TestShardFilter(t *testing.T) {
	var lines, all []string
	for i := range 30 {
		id := fmt.Sprintf("t%02d", i)
		all = append(all, id)
		lines = append(lines, taskLine(id))
	}
	p := writeFile(t, "in.jsonl", strings.Join(lines, "\n"))
	dup := writeFile(t, "dup.jsonl", strings.Join(append(lines, taskLine("t07")), "\n"))
	const count = 3
	seen := map[string]int{}
	for shard := range count {
		for _, recorded := range []bool{false, true} {
			content := p
			if recorded {
				var rl []string
				for _, id := range all {
					rl = append(rl, recLine(id))
				}
				content = writeFile(t, "rec.jsonl", strings.Join(rl, "\n"))
			}
			ids, _, err := readAll(t, InputOptions{Path: content, Shard: Shard{Index: shard, Count: count}}, recorded)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, id := range all {
				if ShardOf(id, count) == shard {
					want = append(want, id)
				}
			}
			if fmt.Sprint(ids) != fmt.Sprint(want) || len(ids) == 0 {
				t.Errorf("shard %d read %v, want %v", shard, ids, want)
			}
			if !recorded {
				for _, id := range ids {
					seen[id]++
				}
			}
		}
		_, _, err := readAll(t, InputOptions{Path: dup, Shard: Shard{Index: shard, Count: count}}, false)
		checkInputError(t, err, dup, 31, "id", `duplicate task id "t07" (first on line 8)`)
	}
	if len(seen) != len(all) {
		t.Errorf("the shards read %d distinct tasks of %d", len(seen), len(all))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("task %s read by %d shards", id, n)
		}
	}
}

// A resumed reader consumes exactly the tasks the run had done, checks
// their ids, and still reports the records skipped among them.
func TestResume(t *testing.T) {
	// t0 t1 BAD t2 ... t9: the bad record lies inside every prefix below.
	lines := []string{taskLine("t0"), taskLine("t1"), "{bad"}
	recs := []string{recLine("t0"), recLine("t1"), "{bad"}
	var all []string
	for i := range 10 {
		all = append(all, fmt.Sprintf("t%d", i))
		if i >= 2 {
			lines = append(lines, taskLine(all[i]))
			recs = append(recs, recLine(all[i]))
		}
	}
	tasks := writeFile(t, "tasks.jsonl", strings.Join(lines, "\n"))
	recorded := writeFile(t, "rec.jsonl", strings.Join(recs, "\n"))
	shard0 := func(n int) []string { // the first n tasks of shard 0 of 2
		var ids []string
		for _, id := range all {
			if ShardOf(id, 2) == 0 && len(ids) < n {
				ids = append(ids, id)
			}
		}
		return ids
	}
	tests := []struct {
		name     string
		recorded bool
		skip     int64
		hash     uint64
		shard    Shard
		first    string // the first task read; "" for none (EOF)
		err      string
	}{
		{name: "no resume", first: "t0"},
		{name: "skip 3", skip: 3, hash: hashIDs("t0", "t1", "t2"), first: "t3"},
		{name: "skip 3 recorded", recorded: true, skip: 3, hash: hashIDs("t0", "t1", "t2"), first: "t3"},
		{name: "skip all", skip: 10, hash: hashIDs(all...)},
		{name: "wrong hash", skip: 3, hash: hashIDs("t0", "t1", "t3"), err: "input changed since the run started: the ids of its first 3 tasks hash to"},
		{name: "wrong hash recorded", recorded: true, skip: 2, hash: 1, err: "input changed since the run started"},
		{name: "more than exist", skip: 11, hash: hashIDs(all...), err: "input changed since the run started: it now holds 10 tasks, the run had already done 11"},
		{name: "sharded", skip: 2, hash: hashIDs(shard0(2)...), shard: Shard{Index: 0, Count: 2}, first: shard0(3)[2]},
		{name: "sharded too many", skip: 9, hash: 1, shard: Shard{Index: 0, Count: 2}, err: fmt.Sprintf("it now holds %d tasks in shard 0 of 2", len(shard0(10)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tasks
			if tt.recorded {
				path = recorded
			}
			ids, rd, err := readAll(t, InputOptions{Path: path, OnError: OnErrorSkip, SkipTasks: tt.skip, SkipHash: tt.hash, Shard: tt.shard}, tt.recorded)
			if tt.err != "" {
				var ie *InputError
				if !errors.Is(err, ErrInputChanged) || !errors.As(err, &ie) || ie.File != path || !strings.Contains(err.Error(), tt.err) || len(ids) != 0 {
					t.Fatalf("read %v, got %v, want an error containing %q", ids, err, tt.err)
				}
				t.Logf("error: %s", strings.ReplaceAll(err.Error(), filepath.Dir(path)+"/", ""))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if first := append(ids, "")[0]; first != tt.first {
				t.Errorf("first task %q, want %q (read %v)", first, tt.first, ids)
			}
			if sk := rd.Skipped(); len(sk) != 1 || sk[0].Line != 3 {
				t.Errorf("skipped %+v, want the bad line 3", sk)
			}
		})
	}
}

// FuzzLocateProblem: the locator never panics, finds invalid UTF-8 in
// exactly the documents that are JSON but not UTF-8, and never calls valid
// JSON non-finite.
func FuzzLocateProblem(f *testing.F) {
	for _, s := range []string{
		`{"a": [1, {"b": NaN}]}`, `{"a": -Infinity}`, `[Infinity]`, "{\"a\": \"\xff\"}", "{\"\xff\": 1}",
		`{"a": "x\"y", "b": [true, false, null, -1.5e3]}`, `{"a": NaN`, `{`, `"`, `[[[[`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, found := locateProblem(b)
		valid := json.Valid(b)
		switch {
		case valid && utf8.Valid(b) && found:
			t.Fatalf("problem %+v in valid JSON", p)
		case valid && !utf8.Valid(b) && (!found || p.kind == problemNonFinite):
			t.Fatalf("invalid UTF-8 not found (got %+v, %v)", p, found)
		case found && p.kind == problemNonFinite && (p.token != "NaN" && p.token != "Infinity" && p.token != "-Infinity"):
			t.Fatalf("token %q", p.token)
		}
		if found && p.kind != problemNonFinite && utf8.Valid(b) {
			t.Fatalf("invalid UTF-8 reported in valid UTF-8: %+v", p)
		}
	})
}
