package view

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"html/template"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/redraft/redraft/export"
)

// anyRow holds a row of any of the datasets (rl, sft, pairs; the verl
// prompt set's columns partly): the columns a dataset lacks stay zero.
type anyRow struct {
	export.RLRow
	ID       string              `json:"id"`
	Recipe   string              `json:"recipe"`
	Messages []export.SFTMessage `json:"messages"`
	Metadata *string             `json:"metadata"`
	Chosen   pairText            `json:"chosen"`
	Rejected pairText            `json:"rejected"`
}

// pairText is a pair's chosen or rejected response: text in pairs/1, one
// assistant message in pairs/2 (whose content it keeps).
type pairText string

func (p *pairText) UnmarshalJSON(b []byte) error {
	var msgs []export.Message
	if err := json.Unmarshal(b, &msgs); err == nil {
		var parts []string
		for _, m := range msgs {
			parts = append(parts, m.Content)
		}
		*p = pairText(strings.Join(parts, "\n"))
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*p = pairText(s)
	return nil
}

// Kind is how pages show a dataset's rows: "rl" (samples in groups), "sft"
// (trajectories with segments), "pairs" or "other".
func (d *Dataset) Kind() string {
	switch {
	case d.Columns["group_id"] && d.Columns["response"]:
		return "rl"
	case d.Columns["messages"]:
		return "sft"
	case d.Columns["chosen"] && d.Columns["rejected"]:
		return "pairs"
	}
	return "other"
}

// HasTokens says whether the token view has something to show: logprobs
// or a token track.
func (d *Dataset) HasTokens() bool {
	return d.Columns["input_ids"] || d.Columns["logprobs"]
}

// heavyColumns are the token lists, read by the token view only.
var heavyColumns = map[string]bool{"prompt_ids": true, "response_ids": true, "input_ids": true, "labels": true, "attention_mask": true, "logprobs": true}

func (d *Dataset) lightColumns() []string {
	var out []string
	for c := range d.Columns {
		if !heavyColumns[c] {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

var listColumns = map[string][]string{
	"rl": {"task_id", "group_id", "sample_index", "turn", "data_source", "model", "reward", "advantage", "correct", "transition",
		"finish_reason", "error", "reward_reason", "reward_components", "judge_flagged", "judge_scores", "response", "extracted_answer", "off_policy"},
	"sft":   {"id", "task_id", "recipe", "data_source", "reward", "messages"},
	"pairs": {"id", "task_id", "data_source", "transition", "turn", "model", "sample_index", "chosen"},
}

// ---- the list of rows

// ListRow is one line of the list.
type ListRow struct {
	Row        int64
	R          *anyRow
	NullReason string
	Disagree   bool
	Snippet    string
	Messages   int
	Trained    int // trained segments (sft)
	Links      rowLinks
}

type rowLinks struct{ Group, Trajectory, Tokens, Row string }

// listPage is the content of the list.
type listPage struct {
	Kind        string
	Query       Query
	Form        url.Values
	Total       int64 // rows matching
	All         int64 // rows of the dataset
	Page, Pages int
	First, Last int64 // 1-based numbers of the first and last rows shown
	Rows        []ListRow
	Prev, Next  string
	Facets      Facets
	Indexed     bool
	IndexRows   int64
	TextScanned int64
	TextLimited bool
	TextLimit   int
	Filtered    bool
	Turns       []int
	QueryString string
}

func parseQuery(q url.Values) (Query, error) {
	var out Query
	out.Dataset = q.Get("ds")
	out.Source, out.Recipe, out.Transition, out.Finish = q.Get("source"), q.Get("recipe"), q.Get("transition"), q.Get("finish")
	out.NullReason, out.Task, out.Text = q.Get("null"), strings.TrimSpace(q.Get("task")), strings.TrimSpace(q.Get("q"))
	out.Truncated, out.Disagree, out.Flagged, out.Failed = q.Get("truncated") != "", q.Get("disagree") != "", q.Get("flagged") != "", q.Get("failed") != ""
	switch s := q.Get("sort"); s {
	case "", "reward", "-reward", "advantage", "-advantage":
		out.Sort = s
	default:
		return out, badRequest("sort=%q: want reward, -reward, advantage or -advantage", s)
	}
	if t := q.Get("turn"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return out, badRequest("turn=%q: not a number", t)
		}
		out.Turn = &n
	}
	for _, p := range []struct {
		key string
		dst **float64
	}{{"rmin", &out.RewardMin}, {"rmax", &out.RewardMax}} {
		if v := q.Get(p.key); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(f) {
				return out, badRequest("%s=%q: not a number", p.key, v)
			}
			*p.dst = &f
		}
	}
	return out, nil
}

// listQuery is the query string of the list without the page.
func listQuery(q url.Values) string {
	c := url.Values{}
	for k, v := range q {
		if k != "page" && k != "from" && len(v) > 0 && v[0] != "" {
			c[k] = v[:1]
		}
	}
	return c.Encode()
}

func (s *Server) rowsPage(ctx context.Context, q url.Values, l *layout) error {
	d := l.Dataset
	query, err := parseQuery(q)
	if err != nil {
		return err
	}
	query.Dataset = d.Name
	p := &listPage{Kind: d.Kind(), Query: query, Form: q, All: d.Rows, TextLimit: TextLimit, Filtered: query.Filtered()}
	p.Facets, p.Indexed = d.Facets()
	p.IndexRows, _, _ = d.IndexProgress()
	for t := 0; t <= p.Facets.MaxTurn; t++ {
		p.Turns = append(p.Turns, t)
	}
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)
	var rows []int64
	if p.Filtered {
		res, err := d.Select(ctx, query)
		if err != nil {
			return err
		}
		p.Total, p.TextScanned, p.TextLimited = int64(len(res.Rows)), res.TextScanned, res.TextLimited
		lo := min(int64(page-1)*PageRows, p.Total)
		rows = res.Rows[lo:min(lo+PageRows, p.Total)]
	} else {
		p.Total = d.Rows
		for r := int64(page-1) * PageRows; r < min(int64(page)*PageRows, d.Rows); r++ {
			rows = append(rows, r)
		}
	}
	p.Page, p.Pages = page, int((p.Total+PageRows-1)/PageRows)
	p.First = int64(page-1)*PageRows + 1
	p.Last = p.First + int64(len(rows)) - 1
	p.QueryString = listQuery(q)
	from := url.QueryEscape(p.QueryString + "&page=" + strconv.Itoa(page))
	if page > 1 {
		p.Prev = "/rows?" + p.QueryString + "&page=" + strconv.Itoa(page-1)
	}
	if page < p.Pages {
		p.Next = "/rows?" + p.QueryString + "&page=" + strconv.Itoa(page+1)
	}
	cols := listColumns[p.Kind]
	got, err := readRows[anyRow](ctx, d, rows, cols)
	if err != nil {
		return err
	}
	for _, row := range rows {
		r := got[row]
		lr := ListRow{Row: row, R: r, Links: d.links(row, from)}
		switch p.Kind {
		case "rl":
			lr.Snippet = snippet(r.Response, 90)
			if r.Error != nil {
				lr.Snippet = "error: " + snippet(*r.Error, 80)
			}
			lr.NullReason = nullReason(r)
			lr.Disagree = disagrees(r)
		case "sft":
			lr.Messages = len(r.Messages)
			for _, m := range r.Messages {
				for _, sg := range m.Segments {
					if sg.Trainable {
						lr.Trained++
					}
				}
			}
			if n := len(r.Messages); n > 0 {
				lr.Snippet = snippet(r.Messages[n-1].Content, 90)
			}
		case "pairs":
			lr.Snippet = snippet(string(r.Chosen), 90)
		default:
			b, _ := json.Marshal(r)
			lr.Snippet = snippet(string(b), 120)
		}
		p.Rows = append(p.Rows, lr)
	}
	l.Title = fmt.Sprintf("%s rows", d.Name)
	l.Content = p
	return nil
}

func (d *Dataset) links(row int64, from string) rowLinks {
	base := fmt.Sprintf("?ds=%s&row=%d&from=%s", url.QueryEscape(d.Name), row, from)
	l := rowLinks{Row: "/row" + base}
	switch d.Kind() {
	case "rl":
		l.Group, l.Trajectory = "/group"+base, "/trajectory"+base
	case "sft", "pairs":
		l.Trajectory = "/trajectory" + base
	}
	if d.HasTokens() {
		l.Tokens = "/tokens" + base
	}
	return l
}

func snippet(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// nullReason is why a row's reward, or one of its components, is null.
func nullReason(r *anyRow) string {
	if r.RewardReason != nil {
		return *r.RewardReason
	}
	for _, c := range r.RewardComponents {
		if c.Value == nil {
			if c.Reason != nil {
				return c.Name + ": " + *c.Reason
			}
			return c.Name + ": null"
		}
	}
	return ""
}

// judgeScore is the judge's score as the audit takes it.
func judgeScore(r *anyRow) (float64, bool) {
	for _, c := range r.RewardComponents {
		if c.Name == "judge" && c.Value != nil {
			return *c.Value, true
		}
	}
	sum, n := 0.0, 0
	for _, j := range r.JudgeScores {
		if j.Score != nil {
			sum += *j.Score
			n++
		}
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}

func disagrees(r *anyRow) bool {
	j, ok := judgeScore(r)
	return ok && r.Correct != nil && (j >= 0.5) != *r.Correct
}

// ---- a group

type groupPage struct {
	Group        string
	Task         string
	Source       string
	Turn         int32
	Rows         []int64
	Prompt       []export.Message // the messages every sample's prompt starts with
	Reference    *string
	Samples      []sampleView
	Estimator    string
	Size         int32
	Mean, Std    *float64
	Prev, Next   string
	From         string
	ScannedRows  int64
	ScannedUnits int
}

type sampleView struct {
	Row        int64
	R          *anyRow
	Extra      []export.Message // prompt messages after the shared ones (its own earlier turns)
	Judge      *float64
	Disagree   bool
	NullReason string
	Links      rowLinks
}

// scanRange calls fn for every row in [lo, hi) with the given columns.
func (d *Dataset) scanRange(ctx context.Context, lo, hi int64, cols []string, fn func(c cols, i int, row int64)) error {
	want := map[string]bool{}
	for _, c := range cols {
		if d.Columns[c] {
			want[c] = true
		}
	}
	if len(want) == 0 {
		return fmt.Errorf("%s has none of the columns %v", d.Name, cols)
	}
	for _, s := range d.Shards {
		if s.First+s.Rows <= lo || s.First >= hi {
			continue
		}
		var rgs []int
		for rg := range s.RowGroups {
			if s.rgFirst[rg] < hi && s.rgFirst[rg]+s.RowGroups[rg] > lo {
				rgs = append(rgs, rg)
			}
		}
		err := s.scan(ctx, rgs, want, 4096, func(rec arrow.Record, first int64) bool {
			c := columnsOf(rec)
			for i := 0; i < int(rec.NumRows()); i++ {
				if row := first + int64(i); row >= lo && row < hi {
					fn(c, i, row)
				}
			}
			return first+rec.NumRows() < hi
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// rgBounds are the rows of the row group holding row.
func (d *Dataset) rgBounds(row int64) (int64, int64) {
	s, rg, _, _ := d.locate(row)
	return s.rgFirst[rg], s.rgFirst[rg] + s.RowGroups[rg]
}

// groupOf finds the rows of row's group: the rows with its group_id among
// the consecutive rows of its task (a group is written whole, within its
// task's rows). It reads task_id and group_id of row's row group, and of
// the neighbouring ones while the task's rows reach their edge.
func (d *Dataset) groupOf(ctx context.Context, row int64) (rows []int64, group string, scanned int64, units int, err error) {
	lo, hi := d.rgBounds(row)
	for {
		tasks := make([]string, 0, hi-lo)
		groups := make([]string, 0, hi-lo)
		err = d.scanRange(ctx, lo, hi, []string{"task_id", "group_id"}, func(c cols, i int, _ int64) {
			t, _ := c.str("task_id", i)
			g, _ := c.str("group_id", i)
			tasks, groups = append(tasks, strings.Clone(t)), append(groups, strings.Clone(g))
		})
		if err != nil {
			return nil, "", 0, 0, err
		}
		scanned += hi - lo
		units++
		k := row - lo
		b0, b1 := k, k+1
		for b0 > 0 && tasks[b0-1] == tasks[k] {
			b0--
		}
		for b1 < int64(len(tasks)) && tasks[b1] == tasks[k] {
			b1++
		}
		extended := false
		if b0 == 0 && lo > 0 && units < 64 {
			lo, _ = d.rgBounds(lo - 1)
			extended = true
		}
		if b1 == int64(len(tasks)) && hi < d.Rows && units < 64 {
			_, hi = d.rgBounds(hi)
			extended = true
		}
		if extended {
			continue
		}
		group = groups[k]
		for j := b0; j < b1; j++ {
			if groups[j] == group {
				rows = append(rows, lo+j)
			}
		}
		return rows, group, scanned, units, nil
	}
}

func (s *Server) groupPage(ctx context.Context, q url.Values, l *layout) error {
	d := l.Dataset
	if d.Kind() != "rl" {
		return badRequest("the %s dataset has no groups: open a row's trajectory", d.Name)
	}
	row, err := rowParam(q, d)
	if err != nil {
		return err
	}
	rows, group, scanned, units, err := d.groupOf(ctx, row)
	if err != nil {
		return err
	}
	got, err := readRows[anyRow](ctx, d, rows, d.lightColumns())
	if err != nil {
		return err
	}
	from := url.QueryEscape(q.Get("from"))
	p := &groupPage{Group: group, Rows: rows, From: q.Get("from"), ScannedRows: scanned, ScannedUnits: units}
	for i, r := range rows {
		x := got[r]
		if i == 0 {
			p.Task, p.Source, p.Turn, p.Reference = x.TaskID, x.DataSource, x.Turn, x.Reference
			p.Estimator, p.Size, p.Mean, p.Std = x.AdvantageEstimator, x.GroupSize, x.GroupRewardMean, x.GroupRewardStd
			p.Prompt = x.Prompt
		}
		p.Prompt = commonPrefix(p.Prompt, x.Prompt)
		sv := sampleView{Row: r, R: x, Disagree: disagrees(x), NullReason: nullReason(x), Links: d.links(r, from)}
		if j, ok := judgeScore(x); ok {
			sv.Judge = &j
		}
		p.Samples = append(p.Samples, sv)
	}
	for i := range p.Samples {
		p.Samples[i].Extra = p.Samples[i].R.Prompt[len(p.Prompt):]
	}
	sort.SliceStable(p.Samples, func(i, j int) bool {
		a, b := p.Samples[i].R.Advantage, p.Samples[j].R.Advantage
		switch {
		case a == nil || b == nil:
			return a != nil && b == nil
		case *a != *b:
			return *a > *b
		}
		return p.Samples[i].R.SampleIndex < p.Samples[j].R.SampleIndex
	})
	first, last := rows[0], rows[len(rows)-1]
	if first > 0 {
		p.Prev = fmt.Sprintf("/group?ds=%s&row=%d&from=%s", url.QueryEscape(d.Name), first-1, from)
	}
	if last+1 < d.Rows {
		p.Next = fmt.Sprintf("/group?ds=%s&row=%d&from=%s", url.QueryEscape(d.Name), last+1, from)
	}
	l.Title = "group " + group
	l.Content = p
	return nil
}

func commonPrefix(a, b []export.Message) []export.Message {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return a[:n]
}

// ---- a trajectory

// SegView is a span of a message with its role and whether it is trained.
type SegView struct {
	Role      string
	Text      string
	Start     int // code points into the message's content
	End       int
	Trainable bool
	Hue       int
}

// MsgView is one message of a trajectory.
type MsgView struct {
	Role     string
	Label    string // "chosen", "rejected", "response", "prompt"
	LossMask *int32
	Segs     []SegView
}

type legendEntry struct {
	Role                  string
	Hue                   int
	Trained, Masked       int // code points
	TrainedSegs, MaskSegs int
}

type trajectoryPage struct {
	Row      int64
	R        *anyRow
	Kind     string
	Derived  bool // rl: roles read from the messages' order
	Messages []MsgView
	Legend   []legendEntry
	Links    rowLinks
}

// roleHues are the colours of the segment roles (HSL hues).
var roleHues = map[string]int{
	"prompt": 215, "attempt": 25, "feedback": 195, "critique": 275, "prefix": 175,
	"erroneous_step": 0, "reflection": 50, "revision": 38, "correction": 130, "continuation": 265,
	"separator": 300, "thought": 255, "answer": 145, "observation": 225, "tool_result": 185, "tool": 185,
	"action": 320, "tool_call": 340, "response": 120, "reasoning": 290, "system": 230, "chosen": 120, "rejected": 350,
}

func hueOf(role string) int {
	if h, ok := roleHues[role]; ok {
		return h
	}
	f := fnv.New32a()
	f.Write([]byte(role))
	return int(f.Sum32() % 360)
}

// rlMessages turns an rl row into a trajectory: the prompt's messages
// masked, with roles read from their order (the first user message the
// prompt; an assistant message an earlier attempt; a user message after one
// feedback; a tool message a tool result), and the response trained.
func rlMessages(r *anyRow) []MsgView {
	if len(r.Messages) > len(r.Prompt) {
		return conversation(r)
	}
	var out []MsgView
	zero, one := int32(0), int32(1)
	sawAssistant := false
	for _, m := range r.Prompt {
		role := "prompt"
		switch m.Role {
		case "assistant":
			role, sawAssistant = "attempt", true
		case "tool":
			role = "tool_result"
		case "user":
			if sawAssistant {
				role = "feedback"
			}
		}
		out = append(out, MsgView{Role: m.Role, Label: "prompt", LossMask: &zero, Segs: []SegView{{Role: role, Text: m.Content, End: len([]rune(m.Content)), Hue: hueOf(role)}}})
	}
	if r.Reasoning != nil {
		out = append(out, MsgView{Role: "assistant", Label: "reasoning (not in the token track)", LossMask: &zero,
			Segs: []SegView{{Role: "reasoning", Text: *r.Reasoning, End: len([]rune(*r.Reasoning)), Hue: hueOf("reasoning")}}})
	}
	resp := MsgView{Role: "assistant", Label: "response", LossMask: &one,
		Segs: []SegView{{Role: "response", Text: r.Response, End: len([]rune(r.Response)), Trainable: r.Response != "", Hue: hueOf("response")}}}
	if r.Response == "" {
		resp.LossMask = &zero
	}
	return append(out, resp)
}

// conversation shows an rl row whose messages column holds the whole
// conversation (tool calls, recorded trajectories, agent episodes): the
// prompt's messages masked, then every assistant message trained (its tool
// calls with it) and every other message (tool results, observations, user
// turns) masked, as the row's token track has them.
func conversation(r *anyRow) []MsgView {
	var out []MsgView
	zero, one := int32(0), int32(1)
	for i, m := range r.Messages {
		role, lm := "prompt", &zero
		switch {
		case i < len(r.Prompt):
		case m.Role == "assistant":
			role, lm = "action", &one
		case m.Role == "tool":
			role = "tool_result"
		default:
			role = "observation"
		}
		mv := MsgView{Role: m.Role, LossMask: lm}
		if i < len(r.Prompt) {
			mv.Label = "prompt"
		}
		if m.Content != "" {
			mv.Segs = append(mv.Segs, SegView{Role: role, Text: m.Content, End: len([]rune(m.Content)), Trainable: lm == &one, Hue: hueOf(role)})
		}
		mv.Segs = append(mv.Segs, toolCalls(m.ToolCalls, lm == &one)...)
		out = append(out, mv)
	}
	return out
}

// toolCalls shows a message's tool calls, one segment each ("name(arguments)"),
// after its content: they are not part of the content, so they have no span.
func toolCalls(calls []export.ToolCall, trained bool) []SegView {
	var out []SegView
	for _, c := range calls {
		out = append(out, SegView{Role: "tool_call", Text: c.Function.Name + "(" + c.Function.Arguments + ")", Trainable: trained, Hue: hueOf("tool_call")})
	}
	return out
}

// sftMessages are an sft row's messages cut into their segments.
func sftMessages(r *anyRow) []MsgView {
	var out []MsgView
	for _, m := range r.Messages {
		runes := []rune(m.Content)
		lm := m.LossMask
		mv := MsgView{Role: m.Role, LossMask: &lm}
		pos := 0
		for _, sg := range m.Segments {
			s, e := int(sg.Start), int(sg.End)
			if s < pos || e < s || e > len(runes) {
				// Not a tiling: show the span's numbers with no text rather
				// than guess.
				mv.Segs = append(mv.Segs, SegView{Role: sg.Role + " (span out of range)", Start: s, End: e, Trainable: sg.Trainable, Hue: hueOf(sg.Role)})
				continue
			}
			if s > pos {
				mv.Segs = append(mv.Segs, SegView{Role: "(no segment)", Text: string(runes[pos:s]), Start: pos, End: s, Hue: 0})
			}
			mv.Segs = append(mv.Segs, SegView{Role: sg.Role, Text: string(runes[s:e]), Start: s, End: e, Trainable: sg.Trainable, Hue: hueOf(sg.Role)})
			pos = e
		}
		if pos < len(runes) {
			mv.Segs = append(mv.Segs, SegView{Role: "(no segment)", Text: string(runes[pos:]), Start: pos, End: len(runes)})
		}
		mv.Segs = append(mv.Segs, toolCalls(m.ToolCalls, lm == 1)...)
		out = append(out, mv)
	}
	return out
}

func pairMessages(r *anyRow) []MsgView {
	var out []MsgView
	for _, m := range r.Prompt {
		out = append(out, MsgView{Role: m.Role, Label: "prompt", Segs: []SegView{{Role: "prompt", Text: m.Content, End: len([]rune(m.Content)), Hue: hueOf("prompt")}}})
	}
	for _, c := range []struct{ label, text string }{{"chosen", string(r.Chosen)}, {"rejected", string(r.Rejected)}} {
		out = append(out, MsgView{Role: "assistant", Label: c.label, Segs: []SegView{{Role: c.label, Text: c.text, End: len([]rune(c.text)), Hue: hueOf(c.label)}}})
	}
	return out
}

func legend(msgs []MsgView) []legendEntry {
	idx := map[string]int{}
	var out []legendEntry
	for _, m := range msgs {
		for _, s := range m.Segs {
			i, ok := idx[s.Role]
			if !ok {
				i = len(out)
				idx[s.Role] = i
				out = append(out, legendEntry{Role: s.Role, Hue: s.Hue})
			}
			n := s.End - s.Start
			if s.Trainable {
				out[i].Trained += n
				out[i].TrainedSegs++
			} else {
				out[i].Masked += n
				out[i].MaskSegs++
			}
		}
	}
	return out
}

func (s *Server) trajectoryPage(ctx context.Context, q url.Values, l *layout) error {
	d := l.Dataset
	row, err := rowParam(q, d)
	if err != nil {
		return err
	}
	got, err := readRows[anyRow](ctx, d, []int64{row}, d.lightColumns())
	if err != nil {
		return err
	}
	r := got[row]
	p := &trajectoryPage{Row: row, R: r, Kind: d.Kind(), Links: d.links(row, url.QueryEscape(q.Get("from")))}
	switch p.Kind {
	case "rl":
		p.Messages, p.Derived = rlMessages(r), true
	case "sft":
		p.Messages = sftMessages(r)
	case "pairs":
		p.Messages = pairMessages(r)
	default:
		return badRequest("the %s dataset has no trajectories: open the row", d.Name)
	}
	p.Legend = legend(p.Messages)
	l.Title = fmt.Sprintf("%s row %d: trajectory", d.Name, row)
	l.Content = p
	return nil
}

// ---- tokens

// TokView is one token.
type TokView struct {
	Text    string
	ID      *int32
	Label   *int32
	Logprob *float64
	Hue     int  // logprob heat: 0 (red, improbable) to 120 (green, certain)
	Break   bool // the token ends a line
}

type tokSection struct {
	Title, Note    string
	Kind           string // "logprobs" or "track"
	Tokens         []TokView
	Count, Trained int
	Masked         int
	MeanLogprob    *float64
}

type tokensPage struct {
	Row         int64
	R           *anyRow
	Sections    []tokSection
	NoTrack     string
	TokenizerOK bool
	Tokenizer   string
	Links       rowLinks
}

func heat(lp float64) int {
	p := math.Exp(lp)
	if math.IsNaN(p) {
		return 0
	}
	return int(math.Round(120 * math.Max(0, math.Min(1, p))))
}

func (s *Server) tokensPage(ctx context.Context, q url.Values, l *layout) error {
	d := l.Dataset
	row, err := rowParam(q, d)
	if err != nil {
		return err
	}
	cols := []string{"id", "task_id", "group_id", "sample_index", "turn", "recipe", "reward", "error", "token_reason", "finish_reason",
		"logprobs", "prompt_ids", "response_ids", "input_ids", "labels"}
	got, err := readRows[anyRow](ctx, d, []int64{row}, cols)
	if err != nil {
		return err
	}
	r := got[row]
	p := &tokensPage{Row: row, R: r, Links: d.links(row, url.QueryEscape(q.Get("from")))}
	if len(r.Logprobs) > 0 {
		sec := tokSection{Title: "response tokens with their logprobs", Kind: "logprobs",
			Note: "as the server reported them (colour: probability, red improbable to green certain)"}
		sum := 0.0
		for i := range r.Logprobs {
			t := r.Logprobs[i]
			lp := t.Logprob
			sec.Tokens = append(sec.Tokens, TokView{Text: t.Token, Logprob: &lp, Hue: heat(lp), Break: strings.HasSuffix(t.Token, "\n")})
			sum += lp
		}
		sec.Count = len(sec.Tokens)
		mean := sum / float64(sec.Count)
		sec.MeanLogprob = &mean
		p.Sections = append(p.Sections, sec)
	}
	if len(r.InputIDs) > 0 {
		tok, why := d.tokenizerFor()
		p.TokenizerOK = tok != nil
		p.Tokenizer = why
		if tok != nil {
			p.Tokenizer = d.run.opts.Tokenizer
			if p.Tokenizer == "" {
				p.Tokenizer = d.Meta["redraft.tokenizer"]
			}
		}
		sec := tokSection{Title: "token track: input_ids with labels", Kind: "track",
			Note: "trained tokens (label = the id) on colour, masked ones (label -100) struck grey"}
		for i := range r.InputIDs {
			id := r.InputIDs[i]
			tv := TokView{ID: &id}
			if i < len(r.Labels) {
				lab := r.Labels[i]
				tv.Label = &lab
				if lab != -100 {
					sec.Trained++
				} else {
					sec.Masked++
				}
			}
			if tok != nil {
				tv.Text = tok.Decode([]int{int(id)})
				tv.Break = strings.HasSuffix(tv.Text, "\n")
			} else {
				tv.Text = strconv.Itoa(int(id))
			}
			sec.Tokens = append(sec.Tokens, tv)
		}
		sec.Count = len(sec.Tokens)
		p.Sections = append(p.Sections, sec)
	}
	if len(p.Sections) == 0 {
		p.NoTrack = "this row has no token track and no logprobs"
		if r.TokenReason != nil {
			p.NoTrack += ": " + *r.TokenReason
		}
	}
	l.Title = fmt.Sprintf("%s row %d: tokens", d.Name, row)
	l.Content = p
	return nil
}

// ---- one row, every column

type rowPage struct {
	Row     int64
	Columns []colValue
	Links   rowLinks
}

type colValue struct{ Name, Value string }

func (s *Server) rowPage(ctx context.Context, q url.Values, l *layout) error {
	d := l.Dataset
	row, err := rowParam(q, d)
	if err != nil {
		return err
	}
	got, err := d.readJSON(ctx, []int64{row}, nil)
	if err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(got[row], &m); err != nil {
		return err
	}
	p := &rowPage{Row: row, Links: d.links(row, url.QueryEscape(q.Get("from")))}
	for _, c := range sortedKeys(m) {
		v := string(m[c])
		var str string
		if json.Unmarshal(m[c], &str) == nil {
			v = str
		} else if len(v) > 4000 {
			v = v[:4000] + fmt.Sprintf("… (%d bytes)", len(v))
		}
		p.Columns = append(p.Columns, colValue{c, v})
	}
	l.Title = fmt.Sprintf("%s row %d", d.Name, row)
	l.Content = p
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ---- template helpers

var funcs = template.FuncMap{
	// num is a number exactly (data attributes), "null" for nil.
	"num": func(v any) string {
		switch v := v.(type) {
		case *float64:
			if v == nil {
				return "null"
			}
			return strconv.FormatFloat(*v, 'g', -1, 64)
		case float64:
			return strconv.FormatFloat(v, 'g', -1, 64)
		case *int32:
			if v == nil {
				return "null"
			}
			return strconv.Itoa(int(*v))
		}
		return fmt.Sprint(v)
	},
	// show is a number for reading, "–" for nil.
	"show": func(v any) string {
		switch v := v.(type) {
		case *float64:
			if v == nil {
				return "–"
			}
			return strconv.FormatFloat(*v, 'g', 6, 64)
		case float64:
			return strconv.FormatFloat(v, 'g', 6, 64)
		}
		return fmt.Sprint(v)
	},
	"str": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"boolv": func(b *bool) string {
		if b == nil {
			return "null"
		}
		return strconv.FormatBool(*b)
	},
	"commas": func(n any) string {
		s := fmt.Sprint(n)
		neg := strings.HasPrefix(s, "-")
		s = strings.TrimPrefix(s, "-")
		for i := len(s) - 3; i > 0; i -= 3 {
			s = s[:i] + "," + s[i:]
		}
		if neg {
			s = "-" + s
		}
		return s
	},
	"pct": func(a, b int64) string {
		if b == 0 {
			return "0%"
		}
		return fmt.Sprintf("%.0f%%", 100*float64(a)/float64(b))
	},
	"eq1": func(a, b string) bool { return a == b },
	"sel": func(form url.Values, key, val string) bool { return form.Get(key) == val },
	"visible": func(s string) string {
		// Whitespace a token is made of, made visible.
		s = strings.ReplaceAll(s, "\n", "↵")
		s = strings.ReplaceAll(s, "\t", "⇥")
		return strings.ReplaceAll(s, " ", "\u00a0")
	},
	"add": func(a, b int) int { return a + b },
}
