package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/audit"
	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/pycheck"
	"github.com/redraft/redraft/tokenizer"
	"github.com/redraft/redraft/validate"
)

// llamaPost posts body to a llama-server endpoint (root: the URL without
// /v1) and decodes its answer into out.
func llamaPost(t *testing.T, root, path string, body, out any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", root+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: HTTP %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestLlamaServerEngineTokens generates with endpoint.engine_tokens against
// a real llama-server, whole and streamed: every row's token track is the
// server's (token_source engine), its response_ids decode with the
// server's own /detokenize to exactly the stored response (followed by
// the end-of-turn token the model stopped on when finish_reason is stop),
// its prompt_ids are as many as the prompt_tokens the server counted and
// decode to the prompt its /apply-template renders, there is one logprob
// per response id (logprobs_reason null), and the cross-check with the
// configured tokenizer (Qwen3's, not SmolLM2's) is recorded on every row,
// counted by audit and accepted by validate.
func TestLlamaServerEngineTokens(t *testing.T) {
	url := llamaURL(t)
	root := strings.TrimSuffix(url, "/v1")
	tok := pycheck.Tokenizer(t, "qwen3")
	problems := gsm8kTasks(t, 1)
	recs := []any{problems[0], gsmTask{ID: "hi", Prompt: "Say hi.", Reference: "0", Source: "greeting"}}
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			dir := t.TempDir()
			tasks := filepath.Join(dir, "tasks.jsonl")
			writeJSONL(t, tasks, recs)
			out := filepath.Join(dir, "out")
			cfg, err := ParseConfig("llama.yaml", strings.NewReader(fmt.Sprintf(`
name: llama-engine-tokens
seed: 77
source: {kind: tasks, path: %s}
endpoint: {base_url: %s, model: %s, max_in_flight: 4, timeout: 2m, backoff_initial: 50ms, backoff_max: 1s, engine_tokens: true, stream: %v, policy_version: ckpt-7}
sampling: {n: 2, temperature: 0.7, max_tokens: 64, logprobs: true, top_k: 40, min_p: 0.05}
output: {dir: %s, tokenizer: %s, chat_format: qwen3}
`, tasks, url, llamaModel, stream, out, tok)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
				t.Fatal(err)
			}
			rows := readAll(t, out)
			if len(rows) != 4 {
				t.Fatalf("%d rows", len(rows))
			}
			var engine, checked int64
			stops, fallbacks := 0, 0
			for _, r := range rows {
				id := fmt.Sprintf("%s/%d", r.TaskID, r.SampleIndex)
				if r.Error != nil || r.TokenSource == nil || r.TokenReason != nil || r.CompletionTokens == nil {
					t.Fatalf("row %s: error %v, token_source %v, token_reason %v", id, r.Error, r.TokenSource, r.TokenReason)
				}
				if r.PolicyVersion == nil || *r.PolicyVersion != "ckpt-7" || r.Model != llamaModel {
					t.Fatalf("row %s: policy_version %v, model %q", id, r.PolicyVersion, r.Model)
				}
				if *r.TokenSource == export.TokenSourceTokenizer {
					// A stream that stopped on <|im_end|>: llama-server sent no
					// logprob (and so no id) for it, one short of its count;
					// the row falls back to the tokenizer, its logprobs flagged.
					if !stream || *r.FinishReason != "stop" || len(r.Logprobs)+1 != int(*r.CompletionTokens) || r.LogprobsReason == nil || r.TokenCheck != nil {
						t.Fatalf("row %s: tokenizer track, stream %v, finish %s, %d logprobs for %d completion tokens, logprobs_reason %v",
							id, stream, *r.FinishReason, len(r.Logprobs), *r.CompletionTokens, r.LogprobsReason)
					}
					fallbacks++
					continue
				}
				engine++
				var detok struct {
					Content string `json:"content"`
				}
				llamaPost(t, root, "/detokenize", map[string]any{"tokens": r.ResponseIDs}, &detok)
				switch {
				case detok.Content == r.Response:
				case *r.FinishReason == "stop" && detok.Content == r.Response+"<|im_end|>":
					stops++
				default:
					t.Fatalf("row %s: response_ids decode to %q, the response is %q (finish_reason %s)", id, detok.Content, r.Response, *r.FinishReason)
				}
				if len(r.ResponseIDs) != int(*r.CompletionTokens) || r.PromptTokens == nil || len(r.PromptIDs) != int(*r.PromptTokens) {
					t.Fatalf("row %s: %d prompt_ids and %d response_ids, the server counted %v and %d tokens", id, len(r.PromptIDs), len(r.ResponseIDs), r.PromptTokens, *r.CompletionTokens)
				}
				var tmpl struct {
					Prompt string `json:"prompt"`
				}
				llamaPost(t, root, "/apply-template", map[string]any{"messages": r.Prompt}, &tmpl)
				llamaPost(t, root, "/detokenize", map[string]any{"tokens": r.PromptIDs}, &detok)
				if detok.Content != tmpl.Prompt {
					t.Fatalf("row %s: prompt_ids decode to %q, /apply-template gives %q", id, detok.Content, tmpl.Prompt)
				}
				if len(r.Logprobs) != len(r.ResponseIDs) || r.LogprobsReason != nil {
					t.Fatalf("row %s: %d logprobs for %d response ids, reason %v", id, len(r.Logprobs), len(r.ResponseIDs), r.LogprobsReason)
				}
				// SmolLM2's vocabulary is not Qwen3's: the cross-check differs.
				if r.TokenCheck == nil || *r.TokenCheck != export.TokenCheckMismatch {
					t.Fatalf("row %s: token_check %v", id, r.TokenCheck)
				}
				checked++
			}
			// The greeting's answers end on <|im_end|>: whole, the server
			// reports it as a generated token (with its logprob); streamed,
			// it leaves it out.
			if !stream && (stops == 0 || engine != 4) {
				t.Fatalf("%d engine rows, %d ended on the end-of-turn token", engine, stops)
			}
			if stream && fallbacks == 0 {
				t.Fatal("no streamed response stopped on the end-of-turn token: the short stream went untested")
			}
			track, err := export.LoadTokenTrack(tok, tokenizer.FormatQwen3)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := validate.Dir(context.Background(), out, validate.Options{Tokens: track})
			if err != nil {
				t.Fatal(err)
			}
			var sb strings.Builder
			rep.WriteText(&sb)
			if !rep.OK() {
				t.Fatalf("validate: %s", sb.String())
			}
			a, err := audit.Dir(context.Background(), out)
			if err != nil {
				t.Fatal(err)
			}
			if a.Tokens == nil || a.Tokens.Engine != engine || a.Tokens.Mismatch != checked || a.Tokens.MismatchRate == nil || *a.Tokens.MismatchRate != 1 {
				t.Fatalf("audit tokens %+v", a.Tokens)
			}
			pycheck.Check(t, "..", out)
		})
	}
}
