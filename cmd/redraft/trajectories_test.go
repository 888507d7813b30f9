package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/pycheck"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/tokenizer"
)

// Recorded agent trajectories with tool calls (testdata/agents: 7 trajectories of 4 tasks in
// OpenAI's chat form, with parallel calls, tool results, a follow-up question and Japanese)
// go through `redraft run` to sft rows (and rl rows for the 6 with a reward) whose token
// track, with the real Qwen3 tokenizer and format, is exactly Hugging Face's rendering of the
// same messages: python/test_loader.py --template renders every row's messages, read back by
// pyarrow and by `datasets` as OpenAI messages, with Qwen3's own chat template under jinja2,
// tokenizes the text with `tokenizers` and requires the same ids, every tool-result token
// masked and every assistant token trained. `redraft validate --tokenizer` re-renders every
// track and passes, and fails once one mask bit is shifted.
func TestRecordedTrajectoriesQwen3(t *testing.T) {
	tok := pycheck.Tokenizer(t, "qwen3")
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cfg := filepath.Join(dir, "agents.yaml")
	fixture, err := filepath.Abs(filepath.Join(repoRoot, "testdata", "agents", "trajectories.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	yaml := "name: agents\nsource: {kind: trajectories, path: " + fixture + "}\nadvantage: {estimator: grpo}\n" +
		"output: {dir: " + out + ", tokenizer: " + tok + ", chat_format: qwen3}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"run", "--config", cfg, "--progress", "off"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "wrote 7 sft rows (4 groups) in 1 shard(s)") {
		t.Errorf("run said: %s", stderr.String())
	}
	m, err := export.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if sft, rl := m.Datasets["sft"], m.Datasets["rl"]; sft.Schema != export.SFTTokensSchema || sft.Rows != 7 || rl.Schema != export.RLSchema || rl.Rows != 6 || rl.Groups != 3 || m.Source != "trajectories" {
		t.Fatalf("manifest: source %s, sft %+v, rl %+v", m.Source, sft, rl)
	}
	rows, err := export.ReadRows[export.SFTTokensRow](context.Background(), filepath.Join(out, m.Datasets["sft"].Shards[0].Path))
	if err != nil {
		t.Fatal(err)
	}
	calls, results := 0, 0
	for _, r := range rows {
		for i, msg := range r.Messages {
			trained := msg.LossMask == 1
			switch msg.Role {
			case "assistant":
				calls += len(msg.ToolCalls)
				if !trained || (msg.Content != "" && (len(msg.Segments) != 1 || msg.Segments[0].Role != pipeline.SegAction || !msg.Segments[0].Trainable)) {
					t.Errorf("%s message %d: assistant message not trained: %+v", r.ID, i, msg)
				}
			case "tool":
				results++
				if trained || msg.ToolCallID == nil || msg.Segments[0].Role != pipeline.SegObservation || msg.Segments[0].Trainable {
					t.Errorf("%s message %d: tool result %+v", r.ID, i, msg)
				}
			default:
				if trained {
					t.Errorf("%s message %d: %s message trained", r.ID, i, msg.Role)
				}
			}
		}
	}
	if calls != 9 || results != 9 {
		t.Errorf("%d tool calls and %d tool results in the rows, the fixture has 9 and 9", calls, results)
	}
	// validate re-renders every token track from the messages.
	var vout bytes.Buffer
	if code := run(context.Background(), []string{"validate", "--tokenizer", tok, out}, nil, &vout, &vout); code != 0 || !strings.Contains(vout.String(), ": valid; ") {
		t.Fatalf("validate: exit %d\n%s", code, vout.String())
	}
	// Hugging Face's side: the template, tokenizers, pyarrow and datasets.
	py := pycheck.Python(t)
	config := filepath.Join(filepath.Dir(tok), "tokenizer_config.json")
	b, err := exec.Command(py, filepath.Join(repoRoot, "python", "test_loader.py"), "--sft", out, "--tokenizer", tok, "--template", config, "--hf").CombinedOutput()
	t.Logf("%s", b)
	if err != nil {
		t.Fatalf("python/test_loader.py: %v", err)
	}
	pycheck.Check(t, repoRoot, out)

	// One mask bit shifted: the first trained token of the first row masked and the template
	// token before it trained. validate fails on it.
	shifted := filepath.Join(dir, "shifted")
	copyTree(t, out, shifted)
	k := 0
	for rows[0].Labels[k] == -100 {
		k++
	}
	rows[0].Labels[k-1], rows[0].Labels[k] = rows[0].InputIDs[k-1], -100
	track, err := export.LoadTokenTrack(tok, tokenizer.FormatQwen3)
	if err != nil {
		t.Fatal(err)
	}
	w, err := export.NewShardWriter[export.SFTTokensRow](export.ShardOptions{Dir: shifted, Dataset: "sft", Schema: export.SFTTokensSchema, Metadata: track.Metadata()})
	if err != nil {
		t.Fatal(err)
	}
	for start := 0; start < len(rows); {
		end := start + 1
		for end < len(rows) && rows[end].TaskID == rows[start].TaskID {
			end++
		}
		if err := w.WriteGroup(context.Background(), rows[start:end]); err != nil {
			t.Fatal(err)
		}
		start = end
	}
	shards, err := w.Flush()
	if err != nil {
		t.Fatal(err)
	}
	ds := m.Datasets["sft"]
	ds.Shards = shards
	m.Datasets["sft"] = ds
	if err := export.WriteManifest(shifted, m); err != nil {
		t.Fatal(err)
	}
	vout.Reset()
	code := run(context.Background(), []string{"validate", "--tokenizer", tok, shifted}, nil, &vout, &vout)
	if code == 0 || !strings.Contains(vout.String(), "row 0 ("+rows[0].ID+"): labels do not match the trainable spans") {
		t.Fatalf("validate of a shifted mask: exit %d\n%s", code, vout.String())
	}
}

// copyTree copies the regular files under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
