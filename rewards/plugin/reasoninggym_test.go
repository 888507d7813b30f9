package plugin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/internal/doccheck"
)

// reasoningGymPython is a Python with reasoning-gym: REDRAFT_PYTHON (set
// by scripts/test.sh), else the virtual environment scripts/python-env.sh
// builds, ${REDRAFT_CACHE:-$HOME/.cache/redraft}/venv, when it exists.
// Without one, or without reasoning-gym in it, the test is skipped, and
// fails when REDRAFT_REQUIRE_PYTHON is set.
func reasoningGymPython(t *testing.T) string {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("REDRAFT_REQUIRE_PYTHON") != "" {
			t.Fatalf("REDRAFT_REQUIRE_PYTHON is set, but "+format, args...)
		}
		t.Skipf("SKIPPING: "+format+" (REDRAFT_REQUIRE_PYTHON=1 makes this a failure)", args...)
	}
	py := os.Getenv("REDRAFT_PYTHON")
	if py == "" {
		cache := os.Getenv("REDRAFT_CACHE")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache", "redraft")
		}
		py = filepath.Join(cache, "venv", "bin", "python")
		if _, err := os.Stat(py); err != nil {
			unavailable("REDRAFT_PYTHON is not set and there is no %s: run REDRAFT_PYTHON=$(scripts/python-env.sh)", py)
		}
	}
	if out, err := exec.Command(py, "-c", "import reasoning_gym").CombinedOutput(); err != nil {
		unavailable("%s cannot import reasoning_gym (%v: %s): rebuild it with scripts/python-env.sh", py, err, bytes.TrimSpace(out))
	}
	return py
}

// rgTask is a task record as scripts/reasoning-gym.py writes it.
type rgTask struct {
	ID         string          `json:"id"`
	Prompt     string          `json:"prompt"`
	Reference  string          `json:"reference"`
	DataSource string          `json:"data_source"`
	Metadata   json.RawMessage `json:"metadata"`
}

// TestReasoningGym runs scripts/reasoning-gym.py for real: it writes
// tasks of 8 datasets (and docs/plugins.md's example line), and its serve
// plug-in, through the Client, scores a set of responses to each exactly
// as reasoning-gym's score_answer does when called directly (the script's
// score command); requests it cannot score get a null with the reason.
func TestReasoningGym(t *testing.T) {
	py := reasoningGymPython(t)
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "reasoning-gym.py"))
	if err != nil {
		t.Fatal(err)
	}
	run := func(stdin []byte, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(py, append([]string{script}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("reasoning-gym.py %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return out
	}

	// docs/plugins.md's example task, as the page says to make it.
	example := doccheck.One(t, "../..", "docs/plugins.md", "TestReasoningGym")
	doccheck.Lines(t, "docs/plugins.md's example task", string(run(nil, "tasks", "--kinds", "chain_sum", "--per-kind", "1", "--seed", "42")), example, nil)

	kinds := []string{"basic_arithmetic", "chain_sum", "leg_counting", "spell_backward", "letter_counting", "word_sorting", "number_sorting", "gcd"}
	const perKind = 3
	var tasks []rgTask
	sc := bufio.NewScanner(bytes.NewReader(run(nil, "tasks", "--kinds", strings.Join(kinds, ","), "--per-kind", "3", "--seed", "11")))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var tk rgTask
		if err := json.Unmarshal(sc.Bytes(), &tk); err != nil {
			t.Fatalf("a task line: %v: %s", err, sc.Bytes())
		}
		tasks = append(tasks, tk)
	}
	if len(tasks) != len(kinds)*perKind {
		t.Fatalf("%d tasks, want %d", len(tasks), len(kinds)*perKind)
	}
	for i, tk := range tasks {
		kind := kinds[i/perKind]
		if tk.ID != kind+"-"+string(rune('0'+i%perKind)) || tk.DataSource != "reasoning_gym/"+kind || tk.Reference == "" ||
			!strings.Contains(tk.Prompt, "<answer> and </answer>") {
			t.Errorf("task %d: %+v", i, tk)
		}
	}

	// Every task gets these responses; each is also sent with metadata
	// that holds only the stored entry, so both ways of rebuilding it are
	// compared with score_answer.
	responses := func(ref string) []string {
		return []string{
			"<answer>" + ref + "</answer>",
			"Let me think.\n<answer>" + ref + "</answer>\nWait, no: <answer>wrong</answer>",
			"",
			ref,
			"<answer>" + ref + "0</answer>",
			"<answer> " + ref + " </answer>",
			"\x00\ufffd<answer><answer>]]}{</answer></answer>\xff",
		}
	}
	type sent struct {
		req    Request
		direct Request // what score gets: the full metadata
		task   rgTask
		nth    int // which response
	}
	var all []sent
	for _, tk := range tasks {
		var meta struct {
			RG map[string]json.RawMessage `json:"reasoning_gym"`
		}
		if err := json.Unmarshal(tk.Metadata, &meta); err != nil || meta.RG["entry"] == nil {
			t.Fatalf("task %s: metadata %s (%v)", tk.ID, tk.Metadata, err)
		}
		stored, _ := json.Marshal(map[string]any{"reasoning_gym": map[string]json.RawMessage{"dataset": meta.RG["dataset"], "entry": meta.RG["entry"]}})
		for n, resp := range responses(tk.Reference) {
			r := Request{TaskID: tk.ID, DataSource: tk.DataSource, Reference: tk.Reference, Metadata: tk.Metadata, Response: resp}
			all = append(all, sent{req: r, direct: r, task: tk, nth: n})
			r.Metadata = stored
			all = append(all, sent{req: r, direct: all[len(all)-1].direct, task: tk, nth: n})
		}
	}

	c := open(t, Config{Command: []string{py, script, "serve"}, Concurrency: 2, Batch: 16})
	if h := c.Hello(); h.Name != "reasoning-gym" || h.Version == "" {
		t.Errorf("hello %+v", h)
	}
	reqs := make([]Request, len(all))
	var direct bytes.Buffer
	for i, s := range all {
		reqs[i] = s.req
		b, _ := json.Marshal(s.direct)
		direct.Write(append(b, '\n'))
	}
	res := c.Verify(context.Background(), reqs)

	// score_answer called directly, one line per request, in order.
	var scored []struct {
		Score *float64 `json:"score"`
		Error string   `json:"error"`
	}
	for _, l := range strings.Split(strings.TrimSpace(string(run(direct.Bytes(), "score"))), "\n") {
		var w struct {
			Score *float64 `json:"score"`
			Error string   `json:"error"`
		}
		if err := json.Unmarshal([]byte(l), &w); err != nil {
			t.Fatalf("score: %v: %s", err, l)
		}
		scored = append(scored, w)
	}
	if len(scored) != len(all) {
		t.Fatalf("score printed %d lines for %d requests", len(scored), len(all))
	}
	ones := 0
	for i, s := range all {
		got, w := res[i], scored[i]
		what := s.task.ID + " response " + string(rune('0'+s.nth))
		if strings.Contains(string(s.req.Metadata), `"seed"`) {
			what += " (regenerated)"
		} else {
			what += " (stored entry)"
		}
		switch {
		case w.Score == nil:
			if got.Score != nil || !strings.Contains(got.Reason, "score_answer raised") {
				t.Errorf("%s: score_answer raised %s; the plug-in gives %s (%q)", what, w.Error, fmtScore(got.Score), got.Reason)
			}
		case got.Score == nil || *got.Score != *w.Score:
			t.Errorf("%s: %q scores %s through the plug-in (%q), %v by score_answer", what, s.req.Response, fmtScore(got.Score), got.Reason, *w.Score)
		}
		if s.nth == 0 {
			if got.Score == nil || *got.Score != 1 || got.Correct == nil || !*got.Correct || got.Answer != s.task.Reference {
				t.Errorf("%s: the correct answer gets %+v", what, got)
			} else {
				ones++
			}
		}
		if s.nth == 3 && got.Reason != "no <answer>...</answer> in the response" {
			t.Errorf("%s: an answer without tags: reason %q", what, got.Reason)
		}
	}
	if ones != 2*len(tasks) {
		t.Errorf("%d correct answers scored 1 of %d", ones, 2*len(tasks))
	}

	// Requests it cannot score: a null with the reason, and the plug-in
	// goes on.
	tk := tasks[0]
	var meta map[string]map[string]any
	json.Unmarshal(tk.Metadata, &meta)
	withRG := func(edit func(rg map[string]any)) json.RawMessage {
		rg := map[string]any{}
		for k, v := range meta["reasoning_gym"] {
			rg[k] = v
		}
		edit(rg)
		b, _ := json.Marshal(map[string]any{"reasoning_gym": rg})
		return b
	}
	tampered := withRG(func(rg map[string]any) {
		e := map[string]any{}
		for k, v := range rg["entry"].(map[string]any) {
			e[k] = v
		}
		e["answer"] = "tampered"
		rg["entry"] = e
	})
	bad := []struct {
		meta   json.RawMessage
		resp   string
		reason string
		score  *float64
	}{
		{json.RawMessage(`{"reasoning_gym": {"dataset": "no_such_dataset", "seed": 1, "size": 1, "index": 0}}`), "<answer>1</answer>", "unknown reasoning-gym dataset 'no_such_dataset'", nil},
		{nil, "<answer>1</answer>", "the task's metadata has no reasoning_gym object", nil},
		{json.RawMessage(`{"level": 3}`), "<answer>1</answer>", "the task's metadata has no reasoning_gym object", nil},
		{withRG(func(rg map[string]any) { rg["index"] = 99 }), "<answer>1</answer>", "index 99 is outside the dataset's size 3", nil},
		{withRG(func(rg map[string]any) { delete(rg, "entry"); delete(rg, "seed") }), "<answer>1</answer>", "neither an entry nor integer seed, size and index", nil},
		{withRG(func(rg map[string]any) { rg["entry"] = "a string" }), "<answer>1</answer>", "entry is not an object with an answer", nil},
		// A stored entry that the regenerated one does not match wins.
		{tampered, "<answer>tampered</answer>", "", f(1)},
	}
	var badReqs []Request
	for _, b := range bad {
		badReqs = append(badReqs, Request{TaskID: tk.ID, Metadata: b.meta, Response: b.resp})
	}
	for i, got := range c.Verify(context.Background(), badReqs) {
		if bad[i].score == nil {
			check(t, string(bad[i].meta), got, want{reason: []string{bad[i].reason}})
			continue
		}
		check(t, "tampered entry", got, want{score: bad[i].score})
		if !strings.Contains(string(got.Detail), `"entry":"stored"`) || !strings.Contains(string(got.Detail), "differs") {
			t.Errorf("tampered entry: detail %s", got.Detail)
		}
	}
	if s := c.Stats(); s.Failed != 0 || s.Restarts != 0 {
		t.Errorf("stats %+v: the plug-in failed a request or restarted", s)
	}
}
