package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/doccheck"
	"github.com/redraft/redraft/internal/pycheck"
	"github.com/redraft/redraft/rewards"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/tokenizer"
	"github.com/redraft/redraft/validate"
)

const agentFixture = "../testdata/agents/trajectories.jsonl"

// trajectoriesConfig reads the fixture into dir; output holds more output keys ("k: v, ..."),
// extra more sections.
func trajectoriesConfig(t *testing.T, dir, output, extra string) *Config {
	t.Helper()
	if output != "" {
		output = ", " + output
	}
	cfg, err := ParseConfig("agents.yaml", strings.NewReader(fmt.Sprintf("name: agents\nsource: {kind: trajectories, path: %s}\noutput: {dir: %q%s}\n%s", agentFixture, dir, output, extra)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Recorded trajectories without a tokenizer: one sft row per trajectory (sft/3), its assistant
// messages trained and the rest masked, segments by role; one rl row per trajectory with a
// reward (rl/4), grouped by task, with the group's advantages; the manifest's rewards are the
// rl rows'. validate and the pyarrow check pass.
func TestTrajectoriesJob(t *testing.T) {
	dir := t.TempDir()
	m, err := Execute(context.Background(), trajectoriesConfig(t, dir, "", "advantage: {estimator: rloo}\n"), JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Source != "trajectories" || m.Datasets["sft"].Schema != export.SFTSchema || m.Datasets["sft"].Rows != 7 || m.Datasets["sft"].Groups != 4 ||
		m.Datasets["rl"].Rows != 6 || m.Datasets["rl"].Groups != 3 || m.Rewards.Rows != 6 || m.Rewards.Groups != 3 || *m.Rewards.FracZeroStd != 1.0/3 {
		t.Fatalf("manifest: %s %+v %+v", m.Source, m.Datasets, m.Rewards)
	}
	sft := readSFT(t, dir)
	if sft[0].ID != "wx-001" || sft[0].TaskID != "wx-lisbon-porto" || sft[0].Recipe != TrajectoryRecipe || sft[0].Tools == nil || *sft[0].Reward != 1 {
		t.Errorf("first row: %+v", sft[0])
	}
	roles := ""
	for _, msg := range sft[5].Messages { // ops-001: system, user, call, result, call+text, result, answer, user, answer
		role := "-"
		if len(msg.Segments) > 0 {
			role = msg.Segments[0].Role
		}
		roles += fmt.Sprintf("%s:%s:%d ", msg.Role, role, msg.LossMask)
	}
	if want := "system:prompt:0 user:prompt:0 assistant:-:1 tool:observation:0 assistant:action:1 tool:observation:0 assistant:action:1 user:user:0 assistant:action:1 "; roles != want {
		t.Errorf("ops-001 segments:\n got %s\nwant %s", roles, want)
	}
	var meta struct {
		Input struct {
			File string
			Line int
		}
		Metadata map[string]any
	}
	if err := json.Unmarshal([]byte(*sft[5].Metadata), &meta); err != nil || meta.Input.Line != 6 || meta.Metadata["ticket"] != "INC-4411" {
		t.Errorf("metadata %s", *sft[5].Metadata)
	}
	rows := readAll(t, dir)
	var rs []*float64
	for _, r := range rows[2:5] { // calc-tip: rewards 1, 0, 1
		rs = append(rs, r.Reward)
	}
	adv, _ := rewards.GroupAdvantages(rewards.AdvantageConfig{Estimator: rewards.RLOO}, rs)
	for i, r := range rows[2:5] {
		if r.GroupID != "calc-tip#t0" || r.SampleIndex != int32(i) || *r.Advantage != *adv[i] || r.GroupSize != 3 || r.Prompt[0].Role != "user" || len(r.Messages) < 2 {
			t.Errorf("calc-tip row %d: %+v", i, r)
		}
	}
	if r := rows[4]; r.Response != "With the tip the bill is 206.75 €, so 34.46 € each." || r.Messages[1].ToolCalls[0].Function.Arguments != `{"expression": "184.60 * 1.12"}` {
		t.Errorf("calc-003: response %q, first call %+v", r.Response, r.Messages[1].ToolCalls)
	}
	if r := rows[5]; r.TaskID != "wx-kyoto" || r.DataSource != "demo/travel-ja" || *r.Advantage != 0 || r.TokenReason == nil || *r.TokenReason != export.NoTokenizer {
		t.Errorf("wx-kyoto: %+v", r)
	}
	rep, err := validate.Dir(context.Background(), dir, validate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	rep.WriteText(&sb)
	if !rep.OK() {
		t.Fatalf("validate: %s", sb.String())
	}
	pycheck.Check(t, "..", dir)
}

// A trajectories job stopped after its first task resumes and writes every task's rows once:
// the same rows as a run that was never stopped.
func TestTrajectoriesResume(t *testing.T) {
	const tokOut = "tokenizer: ../tokenizer/testdata/synthetic.json, chat_format: qwen3, shard_rows: 2, row_group_rows: 1"
	ref := t.TempDir()
	if _, err := Execute(context.Background(), trajectoriesConfig(t, ref, tokOut, ""), JobOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := trajectoriesConfig(t, dir, tokOut, "")
	stop := rollout.NewStopper()
	m, err := Execute(context.Background(), cfg, JobOptions{Stop: stop, OnGroup: func(written int64, _ int) {
		if written == 1 {
			stop.Stop()
		}
	}})
	if !errors.Is(err, ErrInterrupted) || m.Status != export.StatusInterrupted || m.Datasets["sft"].Rows >= 7 {
		t.Fatalf("stopped run: %v %s %+v", err, m.Status, m.Datasets["sft"])
	}
	var resumed bool
	m, err = Execute(context.Background(), cfg, JobOptions{OnResume: func(ResumeInfo) { resumed = true }})
	if err != nil || !resumed || m.Status != export.StatusComplete {
		t.Fatalf("resume: %v %v", err, resumed)
	}
	if a, b := readSFT(t, ref), readSFT(t, dir); !reflect.DeepEqual(a, b) {
		t.Errorf("resumed sft rows differ from the uninterrupted run's")
	}
	if a, b := readAll(t, ref), readAll(t, dir); !reflect.DeepEqual(a, b) {
		t.Errorf("resumed rl rows differ from the uninterrupted run's")
	}
	rep, err := validate.Dir(context.Background(), dir, validate.Options{})
	if err != nil || !rep.OK() {
		t.Fatalf("validate: %v %+v", err, rep.Violations)
	}
}

// A trajectories job reads only its own keys, and refuses what it cannot do by name.
func TestTrajectoriesConfig(t *testing.T) {
	for _, c := range []struct{ extra, want string }{
		{"endpoint: {base_url: http://x/v1, model: m}\n", "endpoint: a trajectories job does not read this section"},
		{"sampling: {n: 4}\n", "sampling: a trajectories job does not read this section"},
		{"advantage: {estimator: reinforce_pp_baseline}\n", "advantage.estimator"},
		{"advantage: {drop_zero_variance: true}\n", "advantage.drop_zero_variance"},
		{"chat_format: qwen3", "output.chat_format needs output.tokenizer"},
	} {
		extra, output := c.extra, ""
		if !strings.HasSuffix(extra, "\n") {
			extra, output = "", ", "+c.extra
		}
		_, err := ParseConfig("agents.yaml", strings.NewReader(fmt.Sprintf("name: agents\nsource: {kind: trajectories, path: x.jsonl}\noutput: {dir: %q%s}\n%s",
			filepath.Join(t.TempDir(), "o"), output, extra)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error naming %s", c.extra, err, c.want)
		}
	}
	// A bad trajectory stops the run with its file, line and field.
	dir := t.TempDir()
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	writeLines(t, bad, `{"id": "a", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}`,
		`{"id": "b", "messages": [{"role": "user", "content": "q"}, {"role": "tool", "tool_call_id": "x", "content": "r"}, {"role": "assistant", "content": "a"}]}`)
	cfg, err := ParseConfig("agents.yaml", strings.NewReader(fmt.Sprintf("name: agents\nsource: {kind: trajectories, path: %s}\noutput: {dir: %q}\n", bad, dir)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Execute(context.Background(), cfg, JobOptions{})
	if err == nil || !strings.Contains(err.Error(), `bad.jsonl:2: field "messages[1].tool_call_id": "x" names no tool call`) {
		t.Errorf("bad input: %v", err)
	}
}

func writeLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAgentsDoc checks docs/agents.md's examples against the program: the record is a line of
// the fixture, the error table is what the reader says, the sft and rl rows are the rows a run
// of the fixture writes, and the rendering is the qwen3 track's text with its trained spans.
func TestAgentsDoc(t *testing.T) {
	blocks := doccheck.Checked(t, "..", "docs/agents.md", "TestAgentsDoc")
	if len(blocks) != 5 {
		t.Fatalf("docs/agents.md has %d blocks for TestAgentsDoc, want 5", len(blocks))
	}
	fixture, err := os.ReadFile(agentFixture)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(fixture)), "\n")
	record := strings.TrimSpace(blocks[0])
	if record != lines[2] {
		t.Errorf("docs/agents.md's record is not line 3 of %s", agentFixture)
	}

	// The error table.
	other := lines[0] // another task's trajectory
	sub := func(s, old, new string) string {
		if !strings.Contains(s, old) {
			t.Fatalf("%q not in %s", old, s)
		}
		return strings.Replace(s, old, new, 1)
	}
	cases := map[string][]string{
		"no assistant message":               {record, `{"id": "x", "messages": [{"role": "user", "content": "q"}]}`},
		"a tool result that answers no call": {record, sub(sub(record, `"id": "calc-001"`, `"id": "calc-009"`), `"tool_call_id": "c-17"`, `"tool_call_id": "c-9"`)},
		"a task's trajectories apart":        {record, other, lines[3]},
		"a reward that is not a number":      {record, sub(lines[3], `"reward": 0.0`, `"reward": "high"`)},
	}
	row := regexp.MustCompile("^\\| (.+?) \\| `(.+)` \\|$")
	seen := 0
	for _, l := range strings.Split(strings.TrimSpace(blocks[1]), "\n")[2:] {
		m := row.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("table row %q", l)
		}
		in, ok := cases[m[1]]
		if !ok {
			t.Errorf("docs/agents.md: no input for the case %q", m[1])
			continue
		}
		seen++
		dir := t.TempDir()
		p := filepath.Join(dir, "traj.jsonl")
		writeLines(t, p, in...)
		src, err := rollout.OpenTrajectories(rollout.InputOptions{Path: p})
		if err != nil {
			t.Fatal(err)
		}
		for err == nil {
			_, err = src.Next(context.Background())
		}
		src.Close()
		if got := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""); got != m[2] {
			t.Errorf("docs/agents.md, %s:\n  doc:     %s\n  program: %s", m[1], m[2], got)
		}
	}
	if seen != len(cases) {
		t.Errorf("the table has %d of the %d cases", seen, len(cases))
	}

	// The rows of a run of the fixture.
	out := t.TempDir()
	if _, err := Execute(context.Background(), trajectoriesConfig(t, out, "", "advantage: {estimator: grpo}\n"), JobOptions{}); err != nil {
		t.Fatal(err)
	}
	sft := readSFT(t, out)
	if err := doccheck.Match(blocks[2], sft[2]); err != nil {
		t.Errorf("docs/agents.md's sft row:\n%v", err)
	}
	rl := readAll(t, out)
	if err := doccheck.Match(blocks[3], rl[2]); err != nil {
		t.Errorf("docs/agents.md's rl row:\n%v", err)
	}

	// The rendering, trained text between ⟦ and ⟧.
	msgs, err := export.SFTTokenMessages(sft[2])
	if err != nil {
		t.Fatal(err)
	}
	tools, err := export.ParseTools(sft[2].Tools)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := export.LoadTokenTrack("../tokenizer/testdata/synthetic.json", tokenizer.FormatQwen3)
	if err != nil {
		t.Fatal(err)
	}
	text, spans, err := tok.Tok.RenderTextTools(tokenizer.FormatQwen3, tools, msgs)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	pos := 0
	for _, sp := range spans {
		b.WriteString(text[pos:sp[0]] + "⟦" + text[sp[0]:sp[1]] + "⟧")
		pos = sp[1]
	}
	b.WriteString(text[pos:])
	tool, err := tokenizer.PyJSON(tools[0])
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Replace(b.String(), tool, `{"type": "function", "function": {"name": "calculator", ...}}`, 1)
	doccheck.Lines(t, "docs/agents.md's rendering", got, blocks[4], nil)
}
