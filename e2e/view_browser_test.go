package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/view"
)

// TestViewInBrowser opens `redraft view` on the quickstart, a PRM800K splice
// (sft rows with a token track) and a two-way sharded SCoRe run merged with
// export.Merge, in headless Chromium driven over the DevTools protocol, and
// clicks through list -> group -> trajectory -> tokens. Every value checked
// on a page (totals, rewards, advantages, components, segments and their
// masks, token ids, labels and logprobs, filter counts) is compared with the
// rows read from the shards. No request may leave the machine: Chromium runs
// with a proxy that points nowhere and host resolution off, every request
// the page makes is recorded (DevTools Network events) and must go to the
// view server, which logs every request it answers; no element may name an
// external URL. With REDRAFT_VIEW_SCREENSHOTS=1 it writes the screenshots of
// docs/view.md (docs/images/view-*.png).
func TestViewInBrowser(t *testing.T) {
	bin := chromium(t)
	b := startBrowser(t, bin)
	shots := os.Getenv("REDRAFT_VIEW_SCREENSHOTS") == "1"
	// The browser cannot reach another host: a navigation there fails.
	var res struct {
		ErrorText string `json:"errorText"`
	}
	b.drainLoads()
	b.call(t, "Page.navigate", map[string]any{"url": "http://example.com/"}, &res)
	if res.ErrorText == "" {
		t.Fatal("the browser reached http://example.com/: the test cannot tell that nothing leaves the machine")
	}
	b.waitLoad(t, "the error page")
	b.navigate(t, "about:blank")
	b.mu.Lock()
	b.requests, b.problems = nil, nil
	b.mu.Unlock()

	t.Run("quickstart", func(t *testing.T) {
		dir := quickstartRun(t)
		srv := serveView(t, dir, "out/quickstart")
		rows := readDataset[export.RLRow](t, dir, "rl")
		b.navigate(t, srv.URL+"/")
		if got := b.evalString(t, `document.getElementById("total").dataset.total`); got != strconv.Itoa(len(rows)) {
			t.Fatalf("list total %s, shards %d", got, len(rows))
		}
		checkListRows(t, b, rows, 0)
		// The form: reward at most 0, applied by clicking.
		b.eval(t, `document.querySelector("input[name=rmax]").value = "0"`, nil)
		b.click(t, "#apply")
		want := 0
		for _, r := range rows {
			if r.Reward != nil && *r.Reward <= 0 {
				want++
			}
		}
		if got := b.evalString(t, `document.getElementById("total").dataset.total`); got != strconv.Itoa(want) {
			t.Errorf("reward <= 0: page %s rows, shards %d", got, want)
		}
		// Back to file order; group of row 4 (gsm8k-test-0001: three right, one wrong).
		b.navigate(t, srv.URL+"/rows?ds=rl")
		b.click(t, `tr.row[data-row="4"] a[data-nav=group]`)
		checkGroup(t, b, rows, rows[4].GroupID)
		b.click(t, `tr.sample a[data-nav=trajectory]`)
		row := b.pageRow(t)
		checkRLTrajectory(t, b, rows[row])
		b.click(t, `a[data-nav=tokens]`)
		if got := b.evalString(t, `document.getElementById("no-track").textContent`); rows[row].TokenReason == nil || !strings.Contains(got, *rows[row].TokenReason) {
			t.Errorf("token view of a row without a track: %q", got)
		}
		checkLocal(t, b, srv)
	})

	t.Run("prm800k splice", func(t *testing.T) {
		out := spliceOutput(t, "../tokenizer/testdata/synthetic.json")
		srv := serveView(t, out.dir, "out/prm800k-splice")
		rows := readDataset[export.SFTTokensRow](t, out.dir, "sft")
		b.navigate(t, srv.URL+"/")
		if got := b.evalString(t, `document.getElementById("total").dataset.total`); got != strconv.Itoa(len(rows)) {
			t.Fatalf("list total %s, shards %d", got, len(rows))
		}
		// A row with an erroneous step, a reflection and a correction.
		pick := -1
		for i, r := range rows {
			roles := map[string]bool{}
			for _, m := range r.Messages {
				for _, s := range m.Segments {
					roles[s.Role] = true
				}
			}
			if roles["erroneous_step"] && roles["reflection"] && i >= 3 {
				pick = i
				break
			}
		}
		if pick < 0 {
			t.Fatal("no splice row with an erroneous step and a reflection")
		}
		b.navigate(t, fmt.Sprintf("%s/rows?ds=sft&page=%d", srv.URL, pick/view.PageRows+1))
		b.click(t, fmt.Sprintf(`tr.row[data-row="%d"] a[data-nav=trajectory]`, pick))
		checkSFTTrajectory(t, b, rows[pick])
		if shots {
			b.screenshot(t, "view-trajectory.png", 1000)
		}
		b.click(t, `a[data-nav=tokens]`)
		checkTrack(t, b, rows[pick].InputIDs, rows[pick].Labels, true)
		if shots {
			b.screenshot(t, "view-tokens-track.png", 700)
		}
		checkLocal(t, b, srv)
	})

	t.Run("score sharded and merged", func(t *testing.T) {
		dir := scoreShardedRun(t)
		srv := serveView(t, dir, "out/score (2 shards, merged)")
		rows := readDataset[export.RLRow](t, dir, "rl")
		if len(rows) != 12*4*2 {
			t.Fatalf("%d rows", len(rows))
		}
		b.navigate(t, srv.URL+"/")
		checkListRows(t, b, rows, 0)
		// Filters against the rows.
		count := func(f func(r export.RLRow) bool) int {
			n := 0
			for _, r := range rows {
				if f(r) {
					n++
				}
			}
			return n
		}
		is := func(p *string, v string) bool { return p != nil && *p == v }
		filters := []struct {
			query string
			want  int
		}{
			{"turn=1", count(func(r export.RLRow) bool { return r.Turn == 1 })},
			{"turn=1&transition=i-%3Ec", count(func(r export.RLRow) bool { return r.Turn == 1 && is(r.Transition, "i->c") })},
			{"rmin=0.5&rmax=5", count(func(r export.RLRow) bool { return r.Reward != nil && *r.Reward >= 0.5 && *r.Reward <= 5 })},
			{"disagree=1", count(func(r export.RLRow) bool { return disagreesRow(r) })},
			{"flagged=1", count(func(r export.RLRow) bool { return r.JudgeFlagged != nil && *r.JudgeFlagged })},
			{"truncated=1", count(func(r export.RLRow) bool { return is(r.FinishReason, "length") })},
			{"task=toy-1", count(func(r export.RLRow) bool { return strings.Contains(r.TaskID, "toy-1") })},
			{"q=6", count(func(r export.RLRow) bool { return strings.Contains(r.Response, "6") })},
		}
		for _, f := range filters {
			b.navigate(t, srv.URL+"/rows?ds=rl&"+f.query)
			if got := b.evalString(t, `document.getElementById("total").dataset.total`); got != strconv.Itoa(f.want) {
				t.Errorf("%s: page %s rows, shards %d", f.query, got, f.want)
			}
		}
		// Sorted by advantage, high first: the page's order is the rows'.
		b.navigate(t, srv.URL+"/rows?ds=rl&turn=1&sort=-advantage")
		var advs []string
		b.eval(t, `JSON.stringify([...document.querySelectorAll("tr.row")].map(tr => tr.dataset.advantage))`, &advs)
		var want []float64
		for _, r := range rows {
			if r.Turn == 1 && r.Advantage != nil {
				want = append(want, *r.Advantage)
			}
		}
		sort.Sort(sort.Reverse(sort.Float64Slice(want)))
		for i := range min(len(want), len(advs), view.PageRows) {
			if advs[i] != strconv.FormatFloat(want[i], 'g', -1, 64) {
				t.Errorf("sorted by advantage: row %d shows %s, want %v", i, advs[i], want[i])
				break
			}
		}
		if shots {
			b.navigate(t, srv.URL+"/rows?ds=rl&turn=1")
			b.screenshot(t, "view-list.png", 900)
		}
		// A turn-2 row's group, its trajectory, its tokens.
		b.navigate(t, srv.URL+"/rows?ds=rl&turn=1")
		first := b.evalString(t, `document.querySelector("tr.row").dataset.row`)
		b.click(t, `tr.row a[data-nav=group]`)
		n, _ := strconv.Atoi(first)
		checkGroup(t, b, rows, rows[n].GroupID)
		if shots {
			b.screenshot(t, "view-group.png", 1100)
		}
		b.click(t, `tr.sample a[data-nav=trajectory]`)
		row := b.pageRow(t)
		checkRLTrajectory(t, b, rows[row])
		b.click(t, `a[data-nav=tokens]`)
		checkLogprobs(t, b, rows[row].Logprobs)
		if shots {
			b.screenshot(t, "view-tokens.png", 500)
		}
		checkLocal(t, b, srv)
	})

	// The browser asked nothing of any other host.
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.requests) < 20 {
		t.Errorf("only %d requests recorded", len(b.requests))
	}
	for _, u := range b.requests {
		if !strings.HasPrefix(u, "http://127.0.0.1:") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the page requested %s", u)
		}
	}
	for _, e := range b.problems {
		t.Errorf("browser: %s", e)
	}
}

// scoreShardedRun is a two-turn SCoRe run with a judge and logprobs written
// as two shard runs (--shard 0/2 and 1/2 into one directory, 3-row row
// groups so that groups straddle row groups) and merged.
func scoreShardedRun(t *testing.T) string {
	t.Helper()
	tasks, policy, judge := scoreSetup(t)
	out := filepath.Join(t.TempDir(), "score")
	for i := range 2 {
		cfg, err := pipeline.ParseConfig("score.yaml", strings.NewReader(fmt.Sprintf(`
name: score-view
seed: 7
source: {kind: tasks, path: %s}
endpoint: {base_url: %s, model: policy, max_in_flight: 8, retries: 2, backoff_initial: 1ms, backoff_max: 2ms}
sampling: {n: 4, temperature: 1.0, max_tokens: 64, logprobs: true}
episode: {turns: 2, feedback: fixed}
reward:
  weights: {verifiable: 1, score_bonus: 1, judge: 0.5, consensus: 0}
  score_bonus: {alpha: 10}
  judges: [{name: j1, base_url: %s, model: judge-model, template: correctness}]
output: {dir: %s, row_group_rows: 3}
`, tasks, policy.BaseURL(), judge.BaseURL(), filepath.Join(out, export.ShardDir(export.ShardSpec{Index: i, Count: 2})))))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pipeline.Execute(context.Background(), cfg, pipeline.JobOptions{Shard: rollout.Shard{Index: i, Count: 2}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := export.Merge(out, export.MergeOptions{Verify: true}); err != nil {
		t.Fatal(err)
	}
	return out
}

// readDataset reads a dataset's rows in the manifest's shard order.
func readDataset[T any](t *testing.T, dir, name string) []T {
	t.Helper()
	m, err := export.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	var rows []T
	for _, s := range m.Datasets[name].Shards {
		r, err := export.ReadRows[T](context.Background(), filepath.Join(dir, filepath.FromSlash(s.Path)))
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r...)
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no %s rows", dir, name)
	}
	return rows
}

// viewServer is the view of one directory, logging every request.
type viewServer struct {
	*httptest.Server
	mu  sync.Mutex
	log []string
}

// serveView serves dir, calling it name on the pages.
func serveView(t *testing.T, dir, name string) *viewServer {
	t.Helper()
	run, err := view.Open(context.Background(), dir, view.Options{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	h, err := view.NewServer(run)
	if err != nil {
		t.Fatal(err)
	}
	vs := &viewServer{}
	h.Log = func(method, url string, status int, _ time.Duration) {
		vs.mu.Lock()
		vs.log = append(vs.log, fmt.Sprintf("%s %s %d", method, url, status))
		vs.mu.Unlock()
	}
	vs.Server = httptest.NewServer(h)
	t.Cleanup(vs.Close)
	return vs
}

func num(p *float64) string {
	if p == nil {
		return "null"
	}
	return strconv.FormatFloat(*p, 'g', -1, 64)
}

func show(p *float64) string {
	if p == nil {
		return "–"
	}
	return strconv.FormatFloat(*p, 'g', 6, 64)
}

// checkListRows compares the list page's rows with rows[first:].
func checkListRows(t *testing.T, b *browser, rows []export.RLRow, first int) {
	t.Helper()
	var got []struct{ Row, Task, Reward, Adv, RewardText string }
	b.eval(t, `JSON.stringify([...document.querySelectorAll("tr.row")].map(tr => ({Row: tr.dataset.row, Task: tr.dataset.task,
		Reward: tr.dataset.reward, Adv: tr.dataset.advantage, RewardText: tr.querySelector("td.reward").textContent})))`, &got)
	if want := min(view.PageRows, len(rows)-first); len(got) != want {
		t.Fatalf("list shows %d rows, want %d", len(got), want)
	}
	for i, g := range got {
		r := rows[first+i]
		if g.Row != strconv.Itoa(first+i) || g.Task != r.TaskID || g.Reward != num(r.Reward) || g.Adv != num(r.Advantage) || g.RewardText != show(r.Reward) {
			t.Errorf("list row %d: page %+v, shard %s reward %s advantage %s", first+i, g, r.TaskID, num(r.Reward), num(r.Advantage))
		}
	}
}

// checkGroup compares the group page with the group's rows, sorted by
// advantage (high first, nulls last).
func checkGroup(t *testing.T, b *browser, rows []export.RLRow, group string) {
	t.Helper()
	if got := b.evalString(t, `document.getElementById("group-id").textContent`); got != group {
		t.Fatalf("group page shows %q, want %q", got, group)
	}
	type comp struct{ Name, Value, Weight string }
	var got []struct {
		Row, Reward, Adv, RewardText string
		Comps                        []comp
		Response                     string
	}
	b.eval(t, `JSON.stringify([...document.querySelectorAll("tr.sample")].map(tr => ({Row: tr.dataset.row, Reward: tr.dataset.reward,
		Adv: tr.dataset.advantage, RewardText: tr.querySelector("td.reward").textContent,
		Comps: [...tr.querySelectorAll(".comp")].map(c => ({Name: c.dataset.name, Value: c.dataset.value, Weight: c.dataset.weight})),
		Response: tr.nextElementSibling.querySelector("pre.response").textContent})))`, &got)
	var want []int
	for i, r := range rows {
		if r.GroupID == group {
			want = append(want, i)
		}
	}
	sort.SliceStable(want, func(i, j int) bool {
		a, c := rows[want[i]].Advantage, rows[want[j]].Advantage
		if a == nil || c == nil {
			return a != nil && c == nil
		}
		if *a != *c {
			return *a > *c
		}
		return rows[want[i]].SampleIndex < rows[want[j]].SampleIndex
	})
	if len(got) != len(want) || len(want) == 0 {
		t.Fatalf("group %s: page shows %d samples, shards have %d", group, len(got), len(want))
	}
	for i, g := range got {
		r := rows[want[i]]
		if g.Row != strconv.Itoa(want[i]) || g.Reward != num(r.Reward) || g.Adv != num(r.Advantage) || g.RewardText != show(r.Reward) || g.Response != r.Response {
			t.Errorf("group %s sample %d: page %+v, shard row %d reward %s advantage %s", group, i, g, want[i], num(r.Reward), num(r.Advantage))
		}
		if len(g.Comps) != len(r.RewardComponents) {
			t.Errorf("group %s row %d: %d components on the page, %d in the shard", group, want[i], len(g.Comps), len(r.RewardComponents))
			continue
		}
		for k, c := range r.RewardComponents {
			if w := (comp{c.Name, num(c.Value), strconv.FormatFloat(c.Weight, 'g', -1, 64)}); g.Comps[k] != w {
				t.Errorf("group %s row %d component %d: page %+v, shard %+v", group, want[i], k, g.Comps[k], w)
			}
		}
	}
}

type segOnPage struct {
	Role, Trainable, Start, End, Text string
}

type msgOnPage struct {
	Role, LossMask string
	Segs           []segOnPage
}

func (b *browser) messages(t *testing.T) []msgOnPage {
	t.Helper()
	var got []msgOnPage
	b.eval(t, `JSON.stringify([...document.querySelectorAll(".chat .msg")].map(m => ({Role: m.dataset.role, LossMask: m.dataset.lossMask || "",
		Segs: [...m.querySelectorAll(".seg")].map(s => ({Role: s.dataset.segRole, Trainable: s.dataset.trainable, Start: s.dataset.start, End: s.dataset.end, Text: s.textContent}))})))`, &got)
	return got
}

// checkRLTrajectory: the prompt's messages masked, with the roles their
// order gives them, then the response trained.
func checkRLTrajectory(t *testing.T, b *browser, r export.RLRow) {
	t.Helper()
	got := b.messages(t)
	if len(got) != len(r.Prompt)+1 {
		t.Fatalf("trajectory of %s: %d messages on the page, %d prompt messages + the response in the shard", r.GroupID, len(got), len(r.Prompt))
	}
	seen := false
	for i, m := range r.Prompt {
		role := "prompt"
		switch {
		case m.Role == "assistant":
			role, seen = "attempt", true
		case m.Role == "user" && seen:
			role = "feedback"
		}
		want := msgOnPage{Role: m.Role, LossMask: "0", Segs: []segOnPage{{role, "false", "0", strconv.Itoa(len([]rune(m.Content))), m.Content}}}
		if !sameMsg(got[i], want) {
			t.Errorf("message %d: page %+v, want %+v", i, got[i], want)
		}
	}
	want := msgOnPage{Role: "assistant", LossMask: "1", Segs: []segOnPage{{"response", "true", "0", strconv.Itoa(len([]rune(r.Response))), r.Response}}}
	if !sameMsg(got[len(got)-1], want) {
		t.Errorf("response: page %+v, want %+v", got[len(got)-1], want)
	}
	if r.Turn == 1 && (len(got) != 4 || got[1].Segs[0].Role != "attempt" || got[2].Segs[0].Role != "feedback") {
		t.Errorf("a turn-2 SCoRe row: prompt, attempt, feedback, response; page %+v", got)
	}
}

func sameMsg(a, b msgOnPage) bool {
	if a.Role != b.Role || a.LossMask != b.LossMask || len(a.Segs) != len(b.Segs) {
		return false
	}
	for i := range a.Segs {
		if a.Segs[i] != b.Segs[i] {
			return false
		}
	}
	return true
}

// checkSFTTrajectory: every segment with its role, mask and span as the
// shard has it, and its text the span of the content.
func checkSFTTrajectory(t *testing.T, b *browser, r export.SFTTokensRow) {
	t.Helper()
	got := b.messages(t)
	if len(got) != len(r.Messages) {
		t.Fatalf("trajectory %s: %d messages on the page, %d in the shard", r.ID, len(got), len(r.Messages))
	}
	trained := 0
	for i, m := range r.Messages {
		want := msgOnPage{Role: m.Role, LossMask: strconv.Itoa(int(m.LossMask))}
		runes := []rune(m.Content)
		for _, s := range m.Segments {
			want.Segs = append(want.Segs, segOnPage{s.Role, strconv.FormatBool(s.Trainable), strconv.Itoa(int(s.Start)), strconv.Itoa(int(s.End)), string(runes[s.Start:s.End])})
			if s.Trainable {
				trained += int(s.End - s.Start)
			}
		}
		if !sameMsg(got[i], want) {
			t.Errorf("%s message %d: page %+v, shard %+v", r.ID, i, got[i], want)
		}
	}
	var legend map[string]string
	b.eval(t, `JSON.stringify(Object.fromEntries([...document.querySelectorAll("#legend [data-role]")].map(e => [e.dataset.role, e.dataset.trainedChars])))`, &legend)
	sum := 0
	for _, v := range legend {
		n, _ := strconv.Atoi(v)
		sum += n
	}
	if sum != trained || legend["erroneous_step"] != "0" {
		t.Errorf("legend %v: trained characters %d, the shard's %d; the erroneous step must be masked", legend, sum, trained)
	}
}

// checkTrack: one token per input id, with its label, and as many trained
// and masked tokens as the labels say.
func checkTrack(t *testing.T, b *browser, ids, labels []int32, decoded bool) {
	t.Helper()
	var sec struct {
		Count, Trained, Masked string
		IDs, Labels            []string
		Texts                  []string
	}
	b.eval(t, `(() => { const s = document.querySelector("section.tokens[data-kind=track]"); if (!s) return "null";
		const toks = [...s.querySelectorAll(".tok")];
		return JSON.stringify({Count: s.dataset.count, Trained: s.dataset.trained, Masked: s.dataset.masked,
			IDs: toks.map(e => e.dataset.id), Labels: toks.map(e => e.dataset.label), Texts: toks.map(e => e.textContent)}) })()`, &sec)
	trained := 0
	for _, l := range labels {
		if l != -100 {
			trained++
		}
	}
	if sec.Count != strconv.Itoa(len(ids)) || sec.Trained != strconv.Itoa(trained) || sec.Masked != strconv.Itoa(len(ids)-trained) || len(sec.IDs) != len(ids) {
		t.Fatalf("token track: page count %s trained %s masked %s (%d tokens), shard %d ids, %d trained", sec.Count, sec.Trained, sec.Masked, len(sec.IDs), len(ids), trained)
	}
	for i := range ids {
		if sec.IDs[i] != strconv.Itoa(int(ids[i])) || sec.Labels[i] != strconv.Itoa(int(labels[i])) {
			t.Fatalf("token %d: page id %s label %s, shard %d %d", i, sec.IDs[i], sec.Labels[i], ids[i], labels[i])
		}
	}
	if decoded && strings.Join(sec.Texts, "") == strings.Join(sec.IDs, "") {
		t.Errorf("the tokens are shown as ids: the shards' tokenizer was not used")
	}
}

func checkLogprobs(t *testing.T, b *browser, lps []export.TokenLogprob) {
	t.Helper()
	var got []struct{ LP, Text string }
	b.eval(t, `JSON.stringify([...document.querySelectorAll("section.tokens[data-kind=logprobs] .tok")].map(e => ({LP: e.dataset.logprob, Text: e.textContent})))`, &got)
	if len(got) != len(lps) || len(lps) == 0 {
		t.Fatalf("logprobs: %d tokens on the page, %d in the shard", len(got), len(lps))
	}
	for i, lp := range lps {
		want := strings.NewReplacer("\n", "↵", "\t", "⇥", " ", "\u00a0").Replace(lp.Token)
		if got[i].LP != strconv.FormatFloat(lp.Logprob, 'g', -1, 64) || got[i].Text != want {
			t.Errorf("token %d: page %+v, shard %q %v", i, got[i], lp.Token, lp.Logprob)
		}
	}
}

// disagreesRow is the audit's judge-verifier disagreement.
func disagreesRow(r export.RLRow) bool {
	judge, ok := 0.0, false
	for _, c := range r.RewardComponents {
		if c.Name == "judge" && c.Value != nil {
			judge, ok = *c.Value, true
		}
	}
	if !ok {
		n := 0
		for _, j := range r.JudgeScores {
			if j.Score != nil {
				judge += *j.Score
				n++
			}
		}
		ok = n > 0
		if ok {
			judge /= float64(n)
		}
	}
	return ok && r.Correct != nil && (judge >= 0.5) != *r.Correct && !math.IsNaN(judge)
}

// checkLocal: the server set its content security policy and logged every
// request the browser made of it.
func checkLocal(t *testing.T, b *browser, srv *viewServer) {
	t.Helper()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	b.mu.Lock()
	reqs := append([]string(nil), b.requests...)
	b.mu.Unlock()
	srv.mu.Lock()
	logged := strings.Join(srv.log, "\n")
	srv.mu.Unlock()
	n := 0
	for _, u := range reqs {
		if !strings.HasPrefix(u, srv.URL+"/") {
			continue
		}
		n++
		if !strings.Contains(logged, "GET "+strings.TrimPrefix(u, srv.URL)+" ") {
			t.Errorf("the browser requested %s; the server's log lacks it", u)
		}
	}
	if n < 5 {
		t.Errorf("only %d requests to the view server recorded", n)
	}
}

// ---- Chromium over the DevTools protocol, on a pipe

// browser is a headless Chromium driven over --remote-debugging-pipe (fd 3
// in, fd 4 out, JSON messages ending in NUL): one page target, its session
// flattened into the connection.
type browser struct {
	w       io.Writer
	mu      sync.Mutex
	nextID  int
	pending map[int]chan cdpMsg
	session string
	loads   chan struct{}
	// every URL the page requested, and console errors, exceptions and
	// log errors (a blocked request is one)
	requests []string
	problems []string
}

type cdpMsg struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Error     *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

func startBrowser(t *testing.T, bin string) *browser {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--disable-default-apps", "--user-data-dir="+t.TempDir(), "--remote-debugging-pipe",
		// Nothing but loopback can be reached: every other host goes to a
		// proxy that does not exist, and no name resolves.
		"--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"about:blank")
	cmd.ExtraFiles = []*os.File{inR, outW}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	b := &browser{w: inW, pending: map[int]chan cdpMsg{}, loads: make(chan struct{}, 64)}
	t.Cleanup(func() {
		inW.Close()
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("chromium stderr:\n%.3000s", stderr.String())
		}
	})
	go b.read(outR)
	var target struct {
		TargetID string `json:"targetId"`
	}
	b.call(t, "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var att struct {
		SessionID string `json:"sessionId"`
	}
	b.call(t, "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att)
	b.session = att.SessionID
	for _, m := range []string{"Page.enable", "Runtime.enable", "Network.enable", "Log.enable"} {
		b.call(t, m, nil, nil)
	}
	b.call(t, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}, nil)
	return b
}

func (b *browser) read(r io.Reader) {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		var m cdpMsg
		if json.Unmarshal(bytes.TrimSuffix(line, []byte{0}), &m) != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch, ok := b.pending[m.ID]; ok {
				ch <- m
				delete(b.pending, m.ID)
			}
			b.mu.Unlock()
			continue
		}
		switch m.Method {
		case "Page.loadEventFired":
			select {
			case b.loads <- struct{}{}:
			default:
			}
		case "Network.requestWillBeSent":
			var p struct {
				Request struct {
					URL string `json:"url"`
				} `json:"request"`
			}
			json.Unmarshal(m.Params, &p)
			b.requests = append(b.requests, p.Request.URL)
		case "Runtime.consoleAPICalled":
			var p struct {
				Type string            `json:"type"`
				Args []json.RawMessage `json:"args"`
			}
			json.Unmarshal(m.Params, &p)
			if p.Type == "error" || p.Type == "warning" || p.Type == "assert" {
				b.problems = append(b.problems, fmt.Sprintf("console %s: %s", p.Type, m.Params))
			}
		case "Runtime.exceptionThrown":
			b.problems = append(b.problems, "exception: "+string(m.Params))
		case "Log.entryAdded":
			var p struct {
				Entry struct {
					Level, Text, URL string
				} `json:"entry"`
			}
			json.Unmarshal(m.Params, &p)
			// The favicon the page does not have is no problem.
			if p.Entry.Level == "error" && !strings.HasSuffix(p.Entry.URL, "/favicon.ico") {
				b.problems = append(b.problems, fmt.Sprintf("log: %s %s", p.Entry.Text, p.Entry.URL))
			}
		}
		b.mu.Unlock()
	}
}

func (b *browser) call(t *testing.T, method string, params any, result any) {
	t.Helper()
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMsg, 1)
	b.pending[id] = ch
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if b.session != "" && !strings.HasPrefix(method, "Target.") {
		msg["sessionId"] = b.session
	}
	data, _ := json.Marshal(msg)
	_, err := b.w.Write(append(data, 0))
	b.mu.Unlock()
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the browser went away", method)
		}
		if m.Error != nil {
			t.Fatalf("%s: %s", method, m.Error.Message)
		}
		if result != nil {
			if err := json.Unmarshal(m.Result, result); err != nil {
				t.Fatalf("%s: %v: %s", method, err, m.Result)
			}
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: no answer in 60s", method)
	}
}

func (b *browser) drainLoads() {
	for {
		select {
		case <-b.loads:
		default:
			return
		}
	}
}

func (b *browser) waitLoad(t *testing.T, what string) {
	t.Helper()
	select {
	case <-b.loads:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: the page did not load in 60s", what)
	}
}

func (b *browser) navigate(t *testing.T, url string) {
	t.Helper()
	b.drainLoads()
	var res struct {
		ErrorText string `json:"errorText"`
	}
	b.call(t, "Page.navigate", map[string]any{"url": url}, &res)
	if res.ErrorText != "" {
		t.Fatalf("navigate %s: %s", url, res.ErrorText)
	}
	b.waitLoad(t, url)
	b.checkNoError(t)
}

// click clicks the first element matching a CSS selector and waits for the
// page it leads to.
func (b *browser) click(t *testing.T, selector string) {
	t.Helper()
	b.drainLoads()
	var ok bool
	b.eval(t, fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return "false"; e.click(); return "true" })()`, selector), &ok)
	if !ok {
		t.Fatalf("no element %s on %s", selector, b.evalString(t, "location.href"))
	}
	b.waitLoad(t, "click "+selector)
	b.checkNoError(t)
}

// checkNoError fails on a page that shows an error or names a URL of
// another host (in a src, href or action).
func (b *browser) checkNoError(t *testing.T) {
	t.Helper()
	if e := b.evalString(t, `(document.getElementById("error") || {textContent: ""}).textContent`); e != "" {
		t.Fatalf("%s: the page shows an error: %s", b.evalString(t, "location.href"), e)
	}
	var ext []string
	b.eval(t, `JSON.stringify([...document.querySelectorAll("[src],[href],[action]")].map(e => e.getAttribute("src") || e.getAttribute("href") || e.getAttribute("action")).filter(u => /^([a-z][a-z0-9+.-]*:|\/\/)/i.test(u)))`, &ext)
	if len(ext) > 0 {
		t.Errorf("%s names external URLs: %v", b.evalString(t, "location.href"), ext)
	}
}

// eval runs a JavaScript expression whose value is a string; with out, the
// string is JSON decoded into it.
func (b *browser) eval(t *testing.T, expr string, out any) string {
	t.Helper()
	var res struct {
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails json.RawMessage `json:"exceptionDetails"`
	}
	b.call(t, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res)
	if len(res.ExceptionDetails) > 0 {
		t.Fatalf("evaluating %.200s: %s", expr, res.ExceptionDetails)
	}
	var s string
	if res.Result.Type == "string" {
		json.Unmarshal(res.Result.Value, &s)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(s), out); err != nil {
			t.Fatalf("evaluating %.200s: %v: %.300s", expr, err, s)
		}
	}
	return s
}

func (b *browser) evalString(t *testing.T, expr string) string {
	t.Helper()
	return b.eval(t, "String("+expr+")", nil)
}

// pageRow is the row= of the page's URL.
func (b *browser) pageRow(t *testing.T) int {
	t.Helper()
	n, err := strconv.Atoi(b.evalString(t, `new URL(location.href).searchParams.get("row")`))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// screenshot writes the top height pixels of the page to
// docs/images/NAME.
func (b *browser) screenshot(t *testing.T, name string, height int) {
	t.Helper()
	var res struct {
		Data string `json:"data"`
	}
	b.call(t, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}}, &res)
	raw, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("../docs/images", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeDocPNG(filepath.Join("..", "docs", "images", name), img, height); err != nil {
		t.Fatal(err)
	}
}
