package view

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
)

func ptr[T any](v T) *T { return &v }

// testRows makes an rl dataset of tasks x 4 samples x 2 turns with every
// kind of value the filters look at: two data sources, transitions, a null
// reward with a reason, a null component, truncations, failed requests,
// judge scores that disagree with the verifier, flagged rows.
func testRows(tasks int) [][]export.RLRow {
	var groups [][]export.RLRow
	for t := range tasks {
		var task []export.RLRow
		id := fmt.Sprintf("task-%03d", t)
		for turn := range int32(2) {
			for s := range int32(4) {
				k := t*8 + int(turn)*4 + int(s)
				r := export.RLRow{TaskID: id, GroupID: fmt.Sprintf("%s#t%d", id, turn), SampleIndex: s, Turn: turn,
					DataSource: []string{"gsm8k", "math"}[t%2], Model: "m", AdvantageEstimator: "grpo", GroupSize: 4,
					Prompt:   []export.Message{{Role: "user", Content: fmt.Sprintf("Question %d?", t)}},
					Response: fmt.Sprintf("Answer %d for TASK %d, sample %d", k%5, t, s)}
				if turn == 1 {
					r.Prompt = append(r.Prompt, export.Message{Role: "assistant", Content: "first try"}, export.Message{Role: "user", Content: "Try again."})
					r.Transition = ptr([]string{"i->c", "c->i", "c->c", "i->i"}[k%4])
				}
				correct := k%3 != 0
				r.Correct = &correct
				reward := float64(k%5) / 4
				r.Reward = &reward
				r.RewardComponents = []export.RewardComponent{{Name: "verifiable", Value: ptr(b2f(correct)), Weight: 1}}
				if k%7 == 0 {
					adv := float64(k%11) - 5
					r.Advantage = &adv
				} else if k%13 != 0 {
					adv := reward - 0.5
					r.Advantage = &adv
				}
				switch {
				case k%17 == 0:
					r.Reward, r.RewardReason = nil, ptr("judge: no score in the reply")
				case k%19 == 0:
					r.RewardComponents = append(r.RewardComponents, export.RewardComponent{Name: "judge", Weight: 0.5, Reason: ptr("judge timed out")})
				case k%5 == 0:
					r.JudgeScores = []export.JudgeScore{{Judge: "j", Score: ptr(0.8)}}
				}
				r.FinishReason = ptr("stop")
				if k%6 == 0 {
					r.FinishReason = ptr("length")
				}
				if k%23 == 0 {
					r.Error, r.FinishReason, r.Response = ptr("HTTP 503"), nil, ""
				}
				if k%9 == 0 {
					r.JudgeFlagged, r.JudgeFlagReason = ptr(true), ptr("injection")
				}
				task = append(task, r)
			}
		}
		groups = append(groups, task)
	}
	return groups
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// writeRun writes the groups (one task's rows at a time, as a run does)
// with pairs and a verl prompt set, and a manifest.
func writeRun(t *testing.T, dir string, groups [][]export.RLRow, rowGroupRows, shardRows int64) []export.RLRow {
	t.Helper()
	ctx := context.Background()
	w, err := export.NewShardWriter[export.RLRow](export.ShardOptions{Dir: dir, Dataset: "rl", Split: "train", Schema: export.RLSchema,
		MaxBytes: 1 << 30, MaxRows: shardRows, RowGroupRows: rowGroupRows})
	if err != nil {
		t.Fatal(err)
	}
	pw, err := export.NewShardWriter[export.PairRow](export.ShardOptions{Dir: dir, Dataset: "pairs", Split: "train", Schema: export.PairsSchema, MaxBytes: 1 << 30, RowGroupRows: 16})
	if err != nil {
		t.Fatal(err)
	}
	vw, err := export.NewShardWriter[export.VerlRow](export.ShardOptions{Dir: dir, Dataset: export.VerlDataset, Split: "train", Schema: export.VerlSchema, MaxBytes: 1 << 30, RowGroupRows: 16})
	if err != nil {
		t.Fatal(err)
	}
	var all []export.RLRow
	for i, g := range groups {
		if err := w.WriteGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		all = append(all, g...)
		pair := export.PairRow{ID: fmt.Sprintf("pair-%d", i), TaskID: g[0].TaskID, DataSource: g[0].DataSource, Prompt: g[0].Prompt[:1],
			Transition: "i->c", Turn: 1, Model: "m"}
		pair.SetResponses("the right one "+g[0].TaskID, "the wrong one")
		if err := pw.WriteGroup(ctx, []export.PairRow{pair}); err != nil {
			t.Fatal(err)
		}
		if err := vw.WriteGroup(ctx, []export.VerlRow{{DataSource: g[0].DataSource, Prompt: g[0].Prompt[:1], Ability: "math",
			RewardModel: export.VerlRewardModel{Style: "rule", GroundTruth: ptr("3")}, ExtraInfo: export.VerlExtraInfo{Split: "train", Index: int64(i), TaskID: g[0].TaskID}}}); err != nil {
			t.Fatal(err)
		}
	}
	m := &export.Manifest{Status: export.StatusComplete, Source: "rollouts", Datasets: map[string]export.DatasetInfo{}, Config: []byte(`{}`)}
	for name, flush := range map[string]func() ([]export.ShardInfo, error){"rl": w.Flush, "pairs": pw.Flush, export.VerlDataset: vw.Flush} {
		shards, err := flush()
		if err != nil {
			t.Fatal(err)
		}
		ds := export.DatasetInfo{Shards: shards}
		for _, s := range shards {
			ds.Rows += s.Rows
		}
		m.Datasets[name] = ds
	}
	w.Commit()
	pw.Commit()
	vw.Commit()
	if err := export.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	return all
}

func get(t *testing.T, srv *httptest.Server, path string) string {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s\n%.2000s", path, resp.Status, b)
	}
	return string(b)
}

func serve(t *testing.T, dir string, opts Options) (*Run, *httptest.Server) {
	t.Helper()
	r, err := Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(r)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return r, srv
}

var dataRowRE = regexp.MustCompile(`<tr class="row" data-row="(\d+)"`)

// TestLazyReading: opening reads footers only; the first page reads one
// row group; a deep page, a group and a trajectory read only the row groups
// that hold their rows; none of them builds the index, which a filtered
// page does (from the small columns).
func TestLazyReading(t *testing.T) {
	dir := t.TempDir()
	rows := writeRun(t, dir, testRows(60), 64, 200) // 480 rows: 3 shards, 64-row row groups
	start := rowGroupsRead.Load()
	r, srv := serve(t, dir, Options{NoIndex: true})
	d := r.Dataset("rl")
	if len(d.Shards) != 3 || d.Rows != int64(len(rows)) {
		t.Fatalf("%d shards, %d rows", len(d.Shards), d.Rows)
	}
	if n := rowGroupsRead.Load() - start; n != 0 {
		t.Errorf("opening read %d row groups", n)
	}
	reads := func(path string) (int64, string) {
		before := rowGroupsRead.Load()
		body := get(t, srv, path)
		return rowGroupsRead.Load() - before, body
	}
	n, body := reads("/")
	if n != 1 {
		t.Errorf("the first page read %d row groups, want 1", n)
	}
	if got := dataRowRE.FindAllStringSubmatch(body, -1); len(got) != PageRows || got[0][1] != "0" {
		t.Errorf("the first page lists %d rows", len(got))
	}
	// The row groups a page's rows are in.
	units := func(body string) int64 {
		seen := map[[2]int]bool{}
		for _, m := range dataRowRE.FindAllStringSubmatch(body, -1) {
			var row int64
			fmt.Sscan(m[1], &row)
			s, rg, _, _ := d.locate(row)
			seen[[2]int{slices.Index(d.Shards, s), rg}] = true
		}
		return int64(len(seen))
	}
	// Rows 400-449 (page 9): the row groups that hold them only.
	if n, body = reads("/rows?ds=rl&page=9"); n != units(body) || n > 2 || !strings.Contains(body, `data-row="449"`) {
		t.Errorf("page 9 read %d row groups, its rows are in %d", n, units(body))
	}
	// A group: the task_id and group_id of its row group (and a neighbour
	// when the task's rows reach the edge), then its rows; a trajectory,
	// the tokens, a row: one row group each.
	for path, most := range map[string]int64{"/group?ds=rl&row=300": 4, "/trajectory?ds=rl&row=300": 1, "/tokens?ds=rl&row=300": 1, "/row?ds=rl&row=300": 1} {
		if n, _ = reads(path); n > most {
			t.Errorf("%s read %d row groups, at most %d", path, n, most)
		}
	}
	if _, done, _ := d.IndexProgress(); done {
		t.Error("the index was built without a filter")
	}
	// A filter builds the index from every row group once, then reads the
	// page's rows; a second filter reads the page's rows only.
	all := int64(0)
	for _, s := range d.Shards {
		all += int64(len(s.RowGroups))
	}
	if n, body = reads("/rows?ds=rl&turn=1"); n != all+units(body) {
		t.Errorf("the first filter read %d row groups, want all %d for the index and %d for the page", n, all, units(body))
	}
	if n, body = reads("/rows?ds=rl&turn=0&sort=-reward"); n != units(body) {
		t.Errorf("a second filter read %d row groups, want the page's %d", n, units(body))
	}
}

// TestSelect checks every filter and sort against the rows.
func TestSelect(t *testing.T) {
	dir := t.TempDir()
	rows := writeRun(t, dir, testRows(40), 32, 100)
	r, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := r.Dataset("rl")
	is := func(p *string, v string) bool { return p != nil && *p == v }
	judge := func(x export.RLRow) (float64, bool) {
		a := anyRow{RLRow: x}
		return judgeScore(&a)
	}
	cases := []struct {
		q    Query
		keep func(export.RLRow) bool
	}{
		{Query{Source: "math"}, func(x export.RLRow) bool { return x.DataSource == "math" }},
		{Query{Turn: ptr(1)}, func(x export.RLRow) bool { return x.Turn == 1 }},
		{Query{Transition: "c->i"}, func(x export.RLRow) bool { return is(x.Transition, "c->i") }},
		{Query{Transition: "none"}, func(x export.RLRow) bool { return x.Transition == nil }},
		{Query{Finish: "none"}, func(x export.RLRow) bool { return x.FinishReason == nil }},
		{Query{RewardMin: ptr(0.25), RewardMax: ptr(0.75)}, func(x export.RLRow) bool { return x.Reward != nil && *x.Reward >= 0.25 && *x.Reward <= 0.75 }},
		{Query{NullReason: "*"}, func(x export.RLRow) bool { a := anyRow{RLRow: x}; return nullReason(&a) != "" }},
		{Query{NullReason: "judge: judge timed out"}, func(x export.RLRow) bool { a := anyRow{RLRow: x}; return nullReason(&a) == "judge: judge timed out" }},
		{Query{Truncated: true}, func(x export.RLRow) bool { return is(x.FinishReason, "length") }},
		{Query{Failed: true}, func(x export.RLRow) bool { return x.Error != nil }},
		{Query{Flagged: true, Turn: ptr(0)}, func(x export.RLRow) bool { return x.JudgeFlagged != nil && *x.JudgeFlagged && x.Turn == 0 }},
		{Query{Disagree: true}, func(x export.RLRow) bool {
			j, ok := judge(x)
			return ok && x.Correct != nil && (j >= 0.5) != *x.Correct
		}},
		{Query{Task: "task-01"}, func(x export.RLRow) bool { return strings.Contains(x.TaskID, "task-01") }},
		{Query{Text: "task 3", Source: "gsm8k"}, func(x export.RLRow) bool {
			return x.DataSource == "gsm8k" && strings.Contains(strings.ToLower(x.Response), "task 3")
		}},
	}
	for _, tc := range cases {
		res, err := d.Select(context.Background(), tc.q)
		if err != nil {
			t.Fatal(err)
		}
		var want []int64
		for i, x := range rows {
			if tc.keep(x) {
				want = append(want, int64(i))
			}
		}
		if len(want) == 0 || len(want) == len(rows) {
			t.Errorf("%+v: the test rows give %d of %d rows: not a test", tc.q, len(want), len(rows))
		}
		if !slices.Equal(res.Rows, want) {
			t.Errorf("%+v: %d rows %v, want %d %v", tc.q, len(res.Rows), res.Rows, len(want), want)
		}
	}
	// Sorts: nulls last, ties in file order.
	for _, s := range []string{"reward", "-reward", "advantage", "-advantage"} {
		res, err := d.Select(context.Background(), Query{Sort: s})
		if err != nil {
			t.Fatal(err)
		}
		want := make([]int64, len(rows))
		for i := range want {
			want[i] = int64(i)
		}
		val := func(i int64) *float64 {
			if strings.HasSuffix(s, "advantage") {
				return rows[i].Advantage
			}
			return rows[i].Reward
		}
		sort.SliceStable(want, func(i, j int) bool {
			a, b := val(want[i]), val(want[j])
			if a == nil || b == nil {
				return a != nil && b == nil
			}
			if s[0] == '-' {
				return *a > *b
			}
			return *a < *b
		})
		if !slices.Equal(res.Rows, want) {
			t.Errorf("sort %s: %v, want %v", s, res.Rows[:10], want[:10])
		}
	}
	// An unknown value selects nothing.
	if res, _ := d.Select(context.Background(), Query{Source: "nope"}); len(res.Rows) != 0 {
		t.Errorf("source nope: %d rows", len(res.Rows))
	}
}

// TestTextSearchLimit: a text search stops at TextLimit matches and says so.
func TestTextSearchLimit(t *testing.T) {
	dir := t.TempDir()
	writeRun(t, dir, testRows(TextLimit/8+10), 256, 1<<20)
	_, srv := serve(t, dir, Options{})
	body := get(t, srv, "/rows?ds=rl&q=ANSWER")
	if !strings.Contains(body, fmt.Sprintf(`data-total="%d"`, TextLimit)) || !strings.Contains(body, "stopped at the first 1,000 matches") {
		t.Errorf("a search matching every row: %s", regexp.MustCompile(`<p class="summary">[\s\S]*?</p>`).FindString(body))
	}
}

// TestGroupOf finds every row's group, whose rows straddle row groups of 3
// rows and shards of 12.
func TestGroupOf(t *testing.T) {
	dir := t.TempDir()
	rows := writeRun(t, dir, testRows(7), 3, 12)
	r, err := Open(context.Background(), dir, Options{NoIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	d := r.Dataset("rl")
	for row := range int64(len(rows)) {
		got, group, _, _, err := d.groupOf(context.Background(), row)
		if err != nil {
			t.Fatal(err)
		}
		var want []int64
		for i, x := range rows {
			if x.GroupID == rows[row].GroupID {
				want = append(want, int64(i))
			}
		}
		if group != rows[row].GroupID || !slices.Equal(got, want) {
			t.Fatalf("row %d: group %s %v, want %s %v", row, group, got, rows[row].GroupID, want)
		}
	}
}

// TestPages renders every page of every dataset (rl, pairs, the verl
// prompt set) and the ways a run can be given: a directory without a
// manifest, one shard file.
func TestPages(t *testing.T) {
	dir := t.TempDir()
	writeRun(t, dir, testRows(5), 16, 1<<20)
	_, srv := serve(t, dir, Options{})
	for path, want := range map[string]string{
		"/":                               `data-total="40"`,
		"/rows?ds=rl&turn=1&sort=-reward": `data-total="20"`,
		"/group?ds=rl&row=12":             `<code id="group-id">task-001#t1</code>`,
		"/trajectory?ds=rl&row=12":        `data-seg-role="feedback"`,
		"/tokens?ds=rl&row=12":            `id="no-track"`,
		"/rows?ds=pairs":                  `data-total="5"`,
		"/trajectory?ds=pairs&row=1":      `the right one task-001`,
		"/rows?ds=verl":                   `data-total="5"`,
		"/row?ds=verl&row=2":              `data-column="reward_model"`,
		"/static/view.css":                `.seg.trained`,
	} {
		if body := get(t, srv, path); !strings.Contains(body, want) {
			t.Errorf("GET %s lacks %s", path, want)
		}
	}
	for path, code := range map[string]int{"/group?ds=rl&row=40": 400, "/rows?ds=nope": 404, "/rows?ds=rl&sort=x": 400, "/nope": 404, "/group?ds=pairs&row=0": 400} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, code)
		}
	}
	// A page of another site cannot read it through a name of its own.
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.Host = "attacker.example:80"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("Host attacker.example: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}

	if err := os.Remove(filepath.Join(dir, export.ManifestName)); err != nil {
		t.Fatal(err)
	}
	r, srv2 := serve(t, dir, Options{})
	if r.Manifest != nil || len(r.Datasets) != 3 || r.Datasets[0].Name != "rl" {
		t.Fatalf("without a manifest: %d datasets", len(r.Datasets))
	}
	if body := get(t, srv2, "/"); !strings.Contains(body, `data-total="40"`) || !strings.Contains(body, "no manifest") {
		t.Error("without a manifest: the first page")
	}
	shard, _ := filepath.Glob(filepath.Join(dir, "data", "rl", "*.parquet"))
	r, srv3 := serve(t, shard[0], Options{})
	if len(r.Datasets) != 1 || r.Datasets[0].Name != "rl" {
		t.Fatalf("one shard: %+v", r.Datasets)
	}
	if body := get(t, srv3, "/group?ds=rl&row=0"); !strings.Contains(body, `task-000#t0`) {
		t.Error("one shard: the group page")
	}
}

func TestHeat(t *testing.T) {
	for lp, want := range map[float64]int{0: 120, math.Log(0.5): 60, -50: 0, math.Inf(-1): 0} {
		if got := heat(lp); got != want {
			t.Errorf("heat(%v) = %d, want %d", lp, got, want)
		}
	}
}

// An rl row holding a whole conversation (an agent episode, a recorded
// trajectory) shows every message: the prompt and what came back masked,
// each assistant message trained with its tool calls.
func TestConversationMessages(t *testing.T) {
	id := "c-1"
	r := &anyRow{Messages: []export.SFTMessage{
		{Role: "user", Content: "Count to 2."},
		{Role: "assistant", ToolCalls: []export.ToolCall{{ID: "c-1", Type: "function", Function: export.ToolFunction{Name: "say", Arguments: `{"n": 1}`}}}},
		{Role: "tool", Content: "1.", ToolCallID: &id},
		{Role: "assistant", Content: "say 2"},
		{Role: "user", Content: "2."},
	}}
	r.Prompt = []export.Message{{Role: "user", Content: "Count to 2."}}
	var got []string
	for _, m := range rlMessages(r) {
		var segs []string
		for _, s := range m.Segs {
			segs = append(segs, fmt.Sprintf("%s:%s:%v", s.Role, s.Text, s.Trainable))
		}
		got = append(got, fmt.Sprintf("%s/%d[%s]", m.Role, *m.LossMask, strings.Join(segs, " ")))
	}
	want := `user/0[prompt:Count to 2.:false] assistant/1[tool_call:say({"n": 1}):true] tool/0[tool_result:1.:false] assistant/1[action:say 2:true] user/0[observation:2.:false]`
	if strings.Join(got, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
}
