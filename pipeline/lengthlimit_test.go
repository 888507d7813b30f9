package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// A response cut off by the server's context is told apart from one cut
// off by max_tokens: both come back as finish_reason length (llama-server
// reports a full slot exactly as it reports max_tokens), and the row's
// response_metadata says which limit ended it. The in-process server
// emulates a llama-server slot of 40 tokens; TestLlamaServerContextLimit
// does the same against the real one.
func TestLengthLimitRecorded(t *testing.T) {
	long := strings.Repeat("so ", 30) + "#### 7"
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		if strings.Contains(req.Messages[len(req.Messages)-1].Content, "quick") {
			return fakeserver.Reply{Text: "#### 7"}
		}
		return fakeserver.Reply{Text: long}
	})
	srv.ContextTokens = 40
	defer srv.Close()
	tasks := filepath.Join(t.TempDir(), "tasks.jsonl")
	writeJSONL(t, tasks, []any{
		// 3 + 4 prompt tokens: room for 32, so max_tokens (16) ends it.
		map[string]string{"id": "short", "prompt": "What is 7?", "reference": "7"},
		// 25 + 4 prompt tokens: room for 10, so the context ends it.
		map[string]string{"id": "long", "prompt": strings.Repeat("word ", 22) + "What is 7?", "reference": "7"},
		// Answered in 2 tokens: finish_reason stop, no limit.
		map[string]string{"id": "quick", "prompt": "quick: what is 7?", "reference": "7"},
	})
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			cfg, err := ParseConfig("limits.yaml", strings.NewReader(fmt.Sprintf(`
name: limits
seed: 1
source: {kind: tasks, path: %s}
endpoint: {base_url: %s, model: m, stream: %v}
sampling: {n: 2, max_tokens: 16}
output: {dir: %s}
`, tasks, srv.BaseURL(), stream, t.TempDir())))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
				t.Fatal(err)
			}
			checkLengthLimits(t, readAll(t, cfg.Output.Dir))
		})
	}
}

func checkLengthLimits(t *testing.T, rows []export.RLRow) {
	t.Helper()
	want := map[string]struct {
		finish, limit string
		tokens        int32
	}{
		"short": {"length", rollout.LimitMaxTokens, 16},
		"long":  {"length", rollout.LimitContext, 10},
		"quick": {"stop", "", 2},
	}
	if len(rows) != 6 {
		t.Fatalf("%d rows, want 6", len(rows))
	}
	for _, r := range rows {
		w := want[r.TaskID]
		var meta struct {
			LengthLimit *string `json:"length_limit"`
		}
		if r.ResponseMetadata != nil {
			if err := json.Unmarshal([]byte(*r.ResponseMetadata), &meta); err != nil {
				t.Fatalf("%s: response_metadata %q: %v", r.TaskID, *r.ResponseMetadata, err)
			}
		}
		got := ""
		if meta.LengthLimit != nil {
			got = *meta.LengthLimit
		}
		if r.FinishReason == nil || *r.FinishReason != w.finish || got != w.limit || r.CompletionTokens == nil || *r.CompletionTokens != w.tokens {
			t.Errorf("%s/%d: finish_reason %s, length_limit %q, completion_tokens %s; want %s, %q, %d",
				r.TaskID, r.SampleIndex, fmtPtr(r.FinishReason), got, fmtPtr(r.CompletionTokens), w.finish, w.limit, w.tokens)
		}
		if (w.limit != "") != (r.ResponseMetadata != nil) {
			t.Errorf("%s: response_metadata %s", r.TaskID, fmtPtr(r.ResponseMetadata))
		}
	}
}

// Sample.LengthLimit decides from what the server reported and what was
// sent; without either it says nothing.
func TestSampleLengthLimit(t *testing.T) {
	n := func(v int) *int { return &v }
	tests := []struct {
		finish string
		usage  *rollout.Usage
		sent   *rollout.Sampling
		want   string
	}{
		{"length", &rollout.Usage{CompletionTokens: 16}, &rollout.Sampling{MaxTokens: n(16)}, rollout.LimitMaxTokens},
		{"length", &rollout.Usage{CompletionTokens: 9}, &rollout.Sampling{MaxTokens: n(16)}, rollout.LimitContext},
		{"length", &rollout.Usage{CompletionTokens: 9}, &rollout.Sampling{}, rollout.LimitContext},
		{"stop", &rollout.Usage{CompletionTokens: 16}, &rollout.Sampling{MaxTokens: n(16)}, ""},
		{"length", nil, &rollout.Sampling{MaxTokens: n(16)}, ""},
		{"length", &rollout.Usage{CompletionTokens: 9}, nil, ""}, // recorded rollout
	}
	for i, tc := range tests {
		s := rollout.Sample{FinishReason: tc.finish, Usage: tc.usage, Sampling: tc.sent}
		if got := s.LengthLimit(); got != tc.want {
			t.Errorf("case %d: %q, want %q", i, got, tc.want)
		}
	}
}
