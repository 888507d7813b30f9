package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/rollout"
)

// llamaJSON sends body (GET when nil) to path under the server's root and
// decodes the JSON answer into out.
func llamaJSON(t *testing.T, url, path string, body, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	method, rd := "GET", io.Reader(nil)
	if body != nil {
		raw, _ := json.Marshal(body)
		method, rd = "POST", bytes.NewReader(raw)
	}
	req, _ := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(url, "/v1")+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
}

// A real llama-server ends a generation when its slot's context is full and
// reports it as finish_reason length, as it reports a max_tokens cut. A task
// whose prompt leaves 24 tokens of the slot (its size read from /props) and
// asks for a long story is cut there, and its rows record length_limit
// "context", with prompt and completion tokens adding up to the slot's
// size; the same story asked for with a short prompt is cut at max_tokens
// (48) and records "max_tokens". (The model writes its stories past 48
// tokens; a sample that stops earlier, which the server's batching can
// make vary, records nothing, and the test needs one of each kind.) About
// 35 s on scripts/test.sh's 2,048-token slots; a server with larger slots
// evaluates a longer prompt (with 1 thread on 2 busy cores, 8,192 tokens
// took over 2 minutes), hence the long timeout.
func TestLlamaServerContextLimit(t *testing.T) {
	url := llamaURL(t)
	var props struct {
		Settings struct {
			NCtx int `json:"n_ctx"`
		} `json:"default_generation_settings"`
	}
	llamaJSON(t, url, "/props", nil, &props)
	nctx := props.Settings.NCtx
	if nctx < 64 {
		t.Fatalf("slot context %d from /props", nctx)
	}
	const maxTokens = 48
	// The full task: GSM8K problems as filler (the model rambles on after
	// them; after a filler of one repeated word it mostly stops at once),
	// then " ok" tokens to size the prompt exactly, then the request for a
	// story, so that it leaves room tokens of the slot.
	const room = 24 // under max_tokens, over nothing a story ends in
	var filler []string
	for _, p := range gsm8kTasks(t, 200) {
		filler = append(filler, strings.Fields(p.Prompt)...)
	}
	prompt := func(words, pad int) string {
		return "Some problems: " + strings.Join(filler[:words], " ") + strings.Repeat(" ok", pad) +
			"\n\nNow forget the problems and write a long story about a cat who learns to count."
	}
	// The prompt's size in tokens, from the server itself: its chat
	// template (/apply-template), then its tokenizer (/tokenize), which
	// count what a chat completion's usage reports, without evaluating
	// the prompt.
	promptTokens := func(text string) int {
		var tmpl struct {
			Prompt string `json:"prompt"`
		}
		var tok struct {
			Tokens []json.RawMessage `json:"tokens"`
		}
		llamaJSON(t, url, "/apply-template", map[string]any{"messages": []map[string]string{{"role": "user", "content": text}}}, &tmpl)
		llamaJSON(t, url, "/tokenize", map[string]any{"content": tmpl.Prompt, "add_special": true, "parse_special": true}, &tok)
		return len(tok.Tokens)
	}
	target := nctx - room
	// The most filler words that fit, then one " ok" token per token short.
	lo, hi := 0, len(filler)
	if promptTokens(prompt(hi, 0)) <= target {
		t.Fatalf("%d filler words do not fill a %d-token slot", hi, nctx)
	}
	for lo+1 < hi {
		if mid := (lo + hi) / 2; promptTokens(prompt(mid, 0)) <= target {
			lo = mid
		} else {
			hi = mid
		}
	}
	pad := target - promptTokens(prompt(lo, 0))
	full := prompt(lo, pad)
	if p := promptTokens(full); p != target {
		t.Fatalf("could not size a prompt of %d tokens (%d filler words and %d pad tokens give %d)", target, lo, pad, p)
	}

	dir := t.TempDir()
	tasks := filepath.Join(dir, "tasks.jsonl")
	writeJSONL(t, tasks, []any{
		gsmTask{ID: "full", Prompt: full, Reference: "1"},
		gsmTask{ID: "story", Prompt: "Write a long story about a cat who learns to count.", Reference: "1"},
	})
	cfg, err := ParseConfig("llama.yaml", strings.NewReader(fmt.Sprintf(`
name: llama-limits
seed: 7
source: {kind: tasks, path: %s}
endpoint: {base_url: %s, model: %s, max_in_flight: 4, timeout: 10m}
sampling: {n: 2, temperature: 1.0, max_tokens: %d}
output: {dir: %s}
`, tasks, url, llamaModel, maxTokens, filepath.Join(dir, "out"))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, r := range readAll(t, cfg.Output.Dir) {
		if r.Error != nil {
			t.Fatalf("%s/%d failed: %s", r.TaskID, r.SampleIndex, *r.Error)
		}
		var meta struct {
			LengthLimit string `json:"length_limit"`
		}
		if r.ResponseMetadata != nil {
			if err := json.Unmarshal([]byte(*r.ResponseMetadata), &meta); err != nil {
				t.Fatal(err)
			}
		}
		p, c := int(*r.PromptTokens), int(*r.CompletionTokens)
		t.Logf("%s/%d: finish_reason %s, prompt %d + completion %d tokens, length_limit %q", r.TaskID, r.SampleIndex, *r.FinishReason, p, c, meta.LengthLimit)
		switch {
		case *r.FinishReason != "length":
			if meta.LengthLimit != "" {
				t.Errorf("%s/%d: finish_reason %s with length_limit %q", r.TaskID, r.SampleIndex, *r.FinishReason, meta.LengthLimit)
			}
		case r.TaskID == "full":
			// llama-server stops the slot when its tokens reach n_ctx
			// less one; completion_tokens also counts the token sampled
			// last, so the two add up to n_ctx.
			if meta.LengthLimit != rollout.LimitContext || p != nctx-room || p+c != nctx {
				t.Errorf("full/%d: length_limit %q with %d + %d tokens, want context at %d", r.SampleIndex, meta.LengthLimit, p, c, nctx)
			}
		default:
			if meta.LengthLimit != rollout.LimitMaxTokens || c != maxTokens {
				t.Errorf("story/%d: length_limit %q with %d completion tokens, want max_tokens at %d", r.SampleIndex, meta.LengthLimit, c, maxTokens)
			}
		}
		counts[r.TaskID+":"+meta.LengthLimit]++
	}
	if counts["full:context"] == 0 || counts["story:max_tokens"] == 0 {
		t.Errorf("want at least one context cut and one max_tokens cut: %v", counts)
	}
}
