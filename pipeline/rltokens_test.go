package pipeline

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/pycheck"
	"github.com/redraft/redraft/rollout/fakeserver"
	"github.com/redraft/redraft/tokenizer"
	"github.com/redraft/redraft/validate"
)

// qwen3Tokenizer is the real Qwen3 tokenizer.json (see pycheck.Tokenizer).
func qwen3Tokenizer(t *testing.T) string { return pycheck.Tokenizer(t, "qwen3") }

// A generation with output.tokenizer gives every rl row its token track
// (two turns, so later prompts hold an earlier answer and feedback), the
// one that tokenizing its own prompt and response gives, in shards that
// name the tokenizer; without a tokenizer the columns are null and the rows
// say so.
func TestGenerateRLTokenTrack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		output string
		qwen3  bool
	}{
		{"qwen3", "tokenizer: %q, chat_format: qwen3", true},
		{"no tokenizer", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := ""
			out := tc.output
			if tc.qwen3 {
				tok = qwen3Tokenizer(t)
				out = fmt.Sprintf(out, tok)
			}
			tasks, answers := writeTasks(t, 6)
			srv := fakeserver.New(fakeserver.AnswerBySeed(answers))
			defer srv.Close()
			dir := t.TempDir()
			cfg, err := ParseConfig("test.yaml", strings.NewReader(fmt.Sprintf(`
name: rl-tokens
seed: 3
source: {kind: tasks, path: %q}
endpoint: {base_url: %s, model: policy, max_in_flight: 8, retries: 2, backoff_initial: 1ms, backoff_max: 2ms}
sampling: {n: 4, temperature: 1.0, max_tokens: 64}
episode: {turns: 2, feedback: fixed}
pipeline: {workers: 2}
output: {dir: %q, %s}
`, tasks, srv.BaseURL(), dir, out)))
			if err != nil {
				t.Fatal(err)
			}
			m, err := Execute(context.Background(), cfg, JobOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if s := m.Datasets["rl"].Schema; s != export.RLSchema {
				t.Fatalf("rl schema %s", s)
			}
			rows := readAll(t, dir)
			if len(rows) != 6*4*2 {
				t.Fatalf("%d rows", len(rows))
			}
			var opts validate.Options
			if tc.qwen3 {
				if opts.Tokens, err = export.LoadTokenTrack(tok, ""); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := validate.Dir(context.Background(), dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			var sb strings.Builder
			rep.WriteText(&sb)
			if !rep.OK() || len(rep.Notes) > 0 {
				t.Fatalf("validate: %s", sb.String())
			}
			if !tc.qwen3 {
				for _, r := range rows {
					if r.TokenReason == nil || *r.TokenReason != export.NoTokenizer || r.PromptIDs != nil || r.InputIDs != nil || r.Labels != nil {
						t.Fatalf("row without a tokenizer: reason %v, prompt_ids %v", r.TokenReason, r.PromptIDs)
					}
				}
				return
			}
			track, err := export.LoadTokenTrack(tok, tokenizer.FormatQwen3)
			if err != nil {
				t.Fatal(err)
			}
			eot, _ := track.Tok.TokenID("<|im_end|>")
			multi := 0
			for _, r := range rows {
				if r.TokenReason != nil {
					t.Fatalf("%s: no track: %s", r.GroupID, *r.TokenReason)
				}
				want, err := track.RLTrack(r.Prompt, r.Response, false)
				if err != nil || !slices.Equal(want.PromptIDs, r.PromptIDs) || !slices.Equal(want.ResponseIDs, r.ResponseIDs) {
					t.Fatalf("%s sample %d: track differs from tokenizing its prompt and response (%v)", r.GroupID, r.SampleIndex, err)
				}
				np := len(r.PromptIDs)
				ids := make([]int, len(r.InputIDs))
				for k, id := range r.InputIDs {
					ids[k] = int(id)
					if (k < np) != (r.Labels[k] == -100) || (k >= np && r.Labels[k] != id) || r.AttentionMask[k] != 1 {
						t.Fatalf("%s sample %d token %d: label %d, %d prompt tokens", r.GroupID, r.SampleIndex, k, r.Labels[k], np)
					}
				}
				if last := ids[len(ids)-1]; last != eot {
					t.Errorf("response ends with token %d, not <|im_end|>", last)
				}
				text := track.Tok.Decode(ids)
				if !strings.HasSuffix(text, "<|im_start|>assistant\n<think>\n\n</think>\n\n"+strings.TrimLeft(r.Response, "\n")+"<|im_end|>") ||
					!strings.HasPrefix(text, "<|im_start|>user\n"+r.Prompt[0].Content) {
					t.Fatalf("input_ids decode to %q", text)
				}
				if len(r.Prompt) > 1 {
					multi++
				}
			}
			if multi == 0 {
				t.Error("no multi-turn prompt was tokenized")
			}
			pycheck.Check(t, "..", dir)
			// The loader batches the stored track for a training loop.
			if b, err := exec.Command(pycheck.Python(t), "../python/test_loader.py", "--rl", dir).CombinedOutput(); err != nil {
				t.Fatalf("python loader: %v\n%s", err, b)
			}
		})
	}
}
