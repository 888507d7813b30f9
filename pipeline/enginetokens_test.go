package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/redraft/redraft/audit"
	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/doccheck"
	"github.com/redraft/redraft/internal/pycheck"
	"github.com/redraft/redraft/rollout/fakeserver"
	"github.com/redraft/redraft/tokenizer"
	"github.com/redraft/redraft/validate"
)

// TestGenerateEngineTokens runs generations against the in-process server
// emulating vLLM's return_token_ids (endpoint.engine_tokens): every rl row
// stores the server's prompt_token_ids and token_ids byte for byte
// (token_source engine), never the tokenizer's; with output.tokenizer
// each row's token_check says whether they agree, a server whose ids
// disagree gives mismatch rows that audit counts; logprobs that are not
// one per id are flagged (logprobs_reason); policy_version is
// endpoint.policy_version; and validate and check_shards.py accept the
// shards.
func TestGenerateEngineTokens(t *testing.T) {
	tok := pycheck.Tokenizer(t, "qwen3")
	track, err := export.LoadTokenTrack(tok, tokenizer.FormatQwen3)
	if err != nil {
		t.Fatal(err)
	}
	// The server's ids: the tokenizer's track (what a server with the same
	// tokenizer and template sends), with its end-of-turn token, or one
	// id per word (as many as the fake's logprobs); off shifts the
	// response ids of every third answer, a server that disagrees.
	tokenizerIDs := func(req *fakeserver.Request, content string) ([]int32, []int32) {
		var prompt []export.Message
		for _, m := range req.Messages {
			prompt = append(prompt, export.Message{Role: m.Role, Content: m.Content})
		}
		tr, err := track.RLTrack(prompt, content, false)
		if err != nil || tr.Reason != "" {
			panic(fmt.Sprint(err, tr.Reason))
		}
		return tr.PromptIDs, tr.ResponseIDs
	}
	perWord := func(req *fakeserver.Request, content string) ([]int32, []int32) {
		p, _ := tokenizerIDs(req, content)
		ids := make([]int32, len(strings.Fields(content)))
		for i := range ids {
			ids[i] = int32(1000 + i)
		}
		return p, ids
	}
	for _, tc := range []struct {
		name         string
		ids          func(*fakeserver.Request, string) ([]int32, []int32)
		off          bool // every third answer's ids disagree with the tokenizer
		tokenizer    bool
		logprobs     bool
		version      string
		stream       bool
		wantMismatch bool
		wantAligned  bool
	}{
		{name: "ids agree with the tokenizer", ids: tokenizerIDs, tokenizer: true, version: "step-120"},
		{name: "ids disagree", ids: tokenizerIDs, off: true, tokenizer: true, wantMismatch: true},
		{name: "ids disagree, streamed", ids: tokenizerIDs, off: true, tokenizer: true, wantMismatch: true, stream: true},
		{name: "no tokenizer, logprobs one per id", ids: perWord, logprobs: true, wantAligned: true},
		{name: "logprobs not one per id", ids: tokenizerIDs, tokenizer: true, logprobs: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tasks, answers := writeTasks(t, 6)
			srv := fakeserver.New(fakeserver.AnswerBySeed(answers))
			defer srv.Close()
			var mu sync.Mutex
			sent := map[string][2][]int32{}
			n := 0
			srv.TokenIDs = func(req *fakeserver.Request, content string) ([]int32, []int32) {
				p, r := tc.ids(req, content)
				mu.Lock()
				defer mu.Unlock()
				n++
				if tc.off && n%3 == 0 {
					r = slices.Clone(r)
					r[0]++
				}
				sent[req.Messages[len(req.Messages)-1].Content+"\x00"+fmt.Sprint(*req.Seed)] = [2][]int32{p, r}
				return p, r
			}
			dir := t.TempDir()
			output := fmt.Sprintf("{dir: %q}", dir)
			if tc.tokenizer {
				output = fmt.Sprintf("{dir: %q, tokenizer: %q, chat_format: qwen3}", dir, tok)
			}
			version := ""
			if tc.version != "" {
				version = ", policy_version: " + tc.version
			}
			cfg, err := ParseConfig("test.yaml", strings.NewReader(fmt.Sprintf(`
name: engine-tokens
seed: 3
source: {kind: tasks, path: %q}
endpoint: {base_url: %s, model: policy, max_in_flight: 8, retries: 2, backoff_initial: 1ms, backoff_max: 2ms, engine_tokens: true, stream: %v%s}
sampling: {n: 4, temperature: 1.0, max_tokens: 64, logprobs: %v, top_k: 20, min_p: 0.05, presence_penalty: 0.5, frequency_penalty: -0.25}
pipeline: {workers: 2}
output: %s
`, tasks, srv.BaseURL(), tc.stream, version, tc.logprobs, output)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
				t.Fatal(err)
			}
			rows := readAll(t, dir)
			if len(rows) != 24 {
				t.Fatalf("%d rows", len(rows))
			}
			var match, mismatch int64
			for _, r := range rows {
				where := fmt.Sprintf("%s sample %d", r.GroupID, r.SampleIndex)
				want, ok := sent[r.Prompt[len(r.Prompt)-1].Content+"\x00"+fmt.Sprint(*r.Seed)]
				if !ok {
					t.Fatalf("%s: no request sent for it", where)
				}
				if r.TokenSource == nil || *r.TokenSource != export.TokenSourceEngine || !slices.Equal(r.PromptIDs, want[0]) || !slices.Equal(r.ResponseIDs, want[1]) {
					t.Fatalf("%s: source %v, ids %v %v; the server sent %v %v", where, r.TokenSource, r.PromptIDs, r.ResponseIDs, want[0], want[1])
				}
				if !slices.Equal(r.InputIDs, slices.Concat(want[0], want[1])) {
					t.Fatalf("%s: input_ids are not the server's prompt and response ids", where)
				}
				switch {
				case !tc.tokenizer && r.TokenCheck != nil:
					t.Fatalf("%s: token_check %q without a tokenizer", where, *r.TokenCheck)
				case tc.tokenizer && r.TokenCheck == nil:
					t.Fatalf("%s: no token_check", where)
				case tc.tokenizer && *r.TokenCheck == export.TokenCheckMatch:
					match++
				case tc.tokenizer:
					mismatch++
				}
				switch {
				case !tc.logprobs && (len(r.Logprobs) != 0 || r.LogprobsReason != nil):
					t.Fatalf("%s: logprobs %d, reason %v", where, len(r.Logprobs), r.LogprobsReason)
				case tc.logprobs && tc.wantAligned && r.LogprobsReason != nil:
					t.Fatalf("%s: %d logprobs for %d ids flagged: %s", where, len(r.Logprobs), len(r.ResponseIDs), *r.LogprobsReason)
				case tc.logprobs && !tc.wantAligned && (r.LogprobsReason == nil || !strings.Contains(*r.LogprobsReason, "not one per token")):
					t.Fatalf("%s: %d logprobs for %d ids, reason %v", where, len(r.Logprobs), len(r.ResponseIDs), r.LogprobsReason)
				}
				if sp := r.Sampling; sp == nil || sp.TopK == nil || *sp.TopK != 20 || sp.MinP == nil || *sp.MinP != 0.05 ||
					sp.PresencePenalty == nil || *sp.PresencePenalty != 0.5 || sp.FrequencyPenalty == nil || *sp.FrequencyPenalty != -0.25 {
					t.Fatalf("%s: sampling %+v does not record the settings sent", where, sp)
				}
				if got := r.PolicyVersion; (tc.version == "") != (got == nil) || (got != nil && *got != tc.version) {
					t.Fatalf("%s: policy_version %v, want %q", where, got, tc.version)
				}
			}
			if tc.tokenizer && ((mismatch > 0) != tc.wantMismatch || (tc.wantMismatch && mismatch != 8) || match+mismatch != 24) {
				t.Fatalf("%d match, %d mismatch", match, mismatch)
			}
			for _, req := range srv.Requests() {
				if req.TopK == nil || *req.TopK != 20 || req.MinP == nil || *req.MinP != 0.05 ||
					req.PresencePenalty == nil || *req.PresencePenalty != 0.5 || req.FrequencyPenalty == nil || *req.FrequencyPenalty != -0.25 {
					t.Fatalf("request sent top_k %v, min_p %v, presence_penalty %v, frequency_penalty %v", req.TopK, req.MinP, req.PresencePenalty, req.FrequencyPenalty)
				}
			}
			var opts validate.Options
			if tc.tokenizer {
				opts.Tokens = track
			}
			rep, err := validate.Dir(context.Background(), dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			var sb strings.Builder
			rep.WriteText(&sb)
			if !rep.OK() {
				t.Fatalf("validate: %s", sb.String())
			}
			a, err := audit.Dir(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			if a.Tokens == nil || a.Tokens.Engine != 24 || a.Tokens.Match != match || a.Tokens.Mismatch != mismatch {
				t.Fatalf("audit tokens %+v, want %d engine rows, %d match, %d mismatch", a.Tokens, 24, match, mismatch)
			}
			if tc.wantMismatch && (a.Tokens.MismatchRate == nil || *a.Tokens.MismatchRate != float64(mismatch)/24) {
				t.Fatalf("mismatch rate %v", a.Tokens.MismatchRate)
			}
			sb.Reset()
			a.WriteText(&sb)
			if !strings.Contains(sb.String(), fmt.Sprintf("token_check %d match, %d mismatch", match, mismatch)) {
				t.Fatalf("audit text lacks the token_check line:\n%s", sb.String())
			}
			if tc.name == "ids disagree" {
				// docs/token-track.md shows this run's audit line.
				want := doccheck.One(t, "..", "docs/token-track.md", "TestGenerateEngineTokens")
				if !strings.Contains(sb.String(), "\n"+want) {
					t.Fatalf("docs/token-track.md shows\n%sthe audit prints\n%s", want, sb.String())
				}
			}
			pycheck.Check(t, "..", dir)
		})
	}
}

// TestSamplingShapeKeys: sampling.top_k, min_p, presence_penalty and
// frequency_penalty are checked key by key.
func TestSamplingShapeKeys(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"top_k: 40, min_p: 0.1, presence_penalty: -2, frequency_penalty: 2", ""},
		{"top_k: -2", "sampling.top_k: must be at least -1"},
		{"min_p: 1.5", "sampling.min_p: must be in [0, 1]"},
		{"presence_penalty: 2.5", "sampling.presence_penalty: must be in [-2, 2]"},
		{"frequency_penalty: -3", "sampling.frequency_penalty: must be in [-2, 2]"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			_, err := ParseConfig("c.yaml", strings.NewReader(fmt.Sprintf(`
source: {kind: tasks, path: t.jsonl}
endpoint: {base_url: http://127.0.0.1:1/v1, model: m}
sampling: {n: 2, %s}
output: {dir: o}
`, tc.set)))
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
