package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/redraft/redraft/rollout/fakeserver"
)

// TestEngineTokenIDs reads the engine's token ids out of the answers of
// vLLM (return_token_ids: prompt_token_ids and the choice's token_ids) and
// llama-server (the id of each logprob entry), whole and streamed.
func TestEngineTokenIDs(t *testing.T) {
	for _, tc := range []struct {
		name             string
		body             string
		stream           bool
		prompt, response []int32
	}{
		{name: "vllm", body: `{"model":"m","prompt_token_ids":[1,2,3],"choices":[{"index":0,"message":{"content":"a b"},"finish_reason":"stop","token_ids":[7,8,2]}]}`,
			prompt: []int32{1, 2, 3}, response: []int32{7, 8, 2}},
		{name: "vllm token_ids win over logprob ids", body: `{"model":"m","prompt_token_ids":[1],"choices":[{"index":0,"message":{"content":"a"},"finish_reason":"stop","token_ids":[7],"logprobs":{"content":[{"token":"a","logprob":-1,"id":99}]}}]}`,
			prompt: []int32{1}, response: []int32{7}},
		{name: "vllm empty token_ids", body: `{"model":"m","prompt_token_ids":[1],"choices":[{"index":0,"message":{"content":""},"finish_reason":"length","token_ids":[]}]}`,
			prompt: []int32{1}, response: []int32{}},
		{name: "llama logprob ids", body: `{"model":"m","choices":[{"index":0,"message":{"content":"Hi!"},"finish_reason":"stop","logprobs":{"content":[{"id":57,"token":"Hi","logprob":-0.5,"top_logprobs":[{"id":3,"token":"x","logprob":-2}]},{"id":17,"token":"!","logprob":-0.1},{"id":2,"token":"","logprob":-0.01}]}}]}`,
			response: []int32{57, 17, 2}},
		{name: "a logprob entry without id gives no ids", body: `{"model":"m","choices":[{"index":0,"message":{"content":"Hi!"},"finish_reason":"stop","logprobs":{"content":[{"id":57,"token":"Hi","logprob":-0.5},{"token":"!","logprob":-0.1}]}}]}`},
		{name: "openai: no ids", body: `{"model":"m","choices":[{"index":0,"message":{"content":"Hi"},"finish_reason":"stop","logprobs":{"content":[{"token":"Hi","logprob":-0.5}]}}]}`},
		{name: "vllm streamed", stream: true, body: "data: {\"prompt_token_ids\":[4,5],\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n" +
			"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"token_ids\":[10]}]}\n\n" +
			"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" b\"},\"token_ids\":[11,12]}]}\n\n" +
			"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\",\"token_ids\":[2]}]}\n\ndata: [DONE]\n\n",
			prompt: []int32{4, 5}, response: []int32{10, 11, 12, 2}},
		{name: "llama streamed", stream: true, body: "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"logprobs\":{\"content\":[{\"id\":10,\"token\":\"a\",\"logprob\":-1}]}}]}\n\n" +
			"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" b\"},\"logprobs\":{\"content\":[{\"id\":11,\"token\":\" b\",\"logprob\":-1}]}}]}\n\n" +
			"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
			response: []int32{10, 11}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a *answer
			var err error
			if tc.stream {
				a, err = readStream(strings.NewReader(tc.body))
			} else {
				a, err = decodeCompletion([]byte(tc.body))
			}
			if err != nil {
				t.Fatal(err)
			}
			resp, why := a.response()
			if why != "" {
				t.Fatal(why)
			}
			if !slices.Equal(resp.PromptIDs, tc.prompt) || (resp.PromptIDs == nil) != (tc.prompt == nil) {
				t.Errorf("prompt ids %v, want %v", resp.PromptIDs, tc.prompt)
			}
			if !slices.Equal(resp.ResponseIDs, tc.response) || (resp.ResponseIDs == nil) != (tc.response == nil) {
				t.Errorf("response ids %v, want %v", resp.ResponseIDs, tc.response)
			}
		})
	}
}

// TestEngineTokensRequest: endpoint.engine_tokens sends return_token_ids,
// and the ids of an in-process vLLM-style server come back byte for byte,
// whole and streamed; without the key nothing is asked and none come.
func TestEngineTokensRequest(t *testing.T) {
	srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply { return fakeserver.Reply{Text: "one two three"} })
	defer srv.Close()
	srv.TokenIDs = func(req *fakeserver.Request, content string) ([]int32, []int32) {
		return []int32{100, 101, int32(len(req.Messages))}, []int32{7, 8, 9}
	}
	for _, tc := range []struct {
		name          string
		engine, strm  bool
		prompt, reply []int32
	}{
		{name: "off"},
		{name: "on", engine: true, prompt: []int32{100, 101, 1}, reply: []int32{7, 8, 9}},
		{name: "on streamed", engine: true, strm: true, prompt: []int32{100, 101, 1}, reply: []int32{7, 8, 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := EndpointConfig{BaseURL: srv.BaseURL(), Model: "m", EngineTokens: tc.engine, Stream: tc.strm}
			p := NewOpenAIPolicy(cfg)
			resp, err := p.Sample(context.Background(), Request{Messages: []Message{{Role: "user", Content: "q"}}})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(resp.PromptIDs, tc.prompt) || !slices.Equal(resp.ResponseIDs, tc.reply) {
				t.Errorf("ids %v %v, want %v %v", resp.PromptIDs, resp.ResponseIDs, tc.prompt, tc.reply)
			}
			reqs := srv.Requests()
			if got := reqs[len(reqs)-1].ReturnTokenIDs; got != tc.engine {
				t.Errorf("return_token_ids sent %v, want %v", got, tc.engine)
			}
		})
	}
}

// FuzzEngineTokenIDs: any body, whole or streamed, decodes or fails without
// a panic, and ids read from logprob entries are one per entry.
func FuzzEngineTokenIDs(f *testing.F) {
	for _, s := range []string{
		`{"prompt_token_ids":[1,2],"choices":[{"index":0,"message":{"content":"a"},"token_ids":[3]}]}`,
		`{"choices":[{"index":0,"message":{"content":"a"},"logprobs":{"content":[{"id":5,"token":"a","logprob":-1}]}}]}`,
		`{"choices":[{"index":0,"message":{"content":"a"},"logprobs":{"content":[{"id":-1},{"id":null}]},"token_ids":null}]}`,
		`{"prompt_token_ids":[99999999999]}`, `{"prompt_token_ids":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		check := func(a *answer) {
			if a == nil {
				return
			}
			if !a.tokenIDsSeen && a.engineIDs() != nil && len(a.engineIDs()) != len(a.logprobs) {
				t.Fatalf("%d logprob ids for %d logprobs", len(a.engineIDs()), len(a.logprobs))
			}
		}
		a, err := decodeCompletion(bytes.Clone(body))
		if err == nil {
			check(a)
		}
		a, err = readStream(bytes.NewReader(append([]byte("data: "), append(bytes.Clone(body), "\n\n"...)...)))
		if err == nil {
			check(a)
		}
	})
}

// TestLlamaPromptIDs: with endpoint.engine_tokens, a llama-server-style
// answer (ids on its logprob entries, no prompt ids) gets its prompt ids
// from the server's /apply-template then /tokenize (special tokens added
// and parsed), kept only when their count is the prompt_tokens reported.
func TestLlamaPromptIDs(t *testing.T) {
	for _, tc := range []struct {
		name         string
		promptTokens int
		tmplStatus   int
		want         []int32
	}{
		{name: "fetched", promptTokens: 3, want: []int32{1, 40, 41}},
		{name: "count differs from usage", promptTokens: 4},
		{name: "no /apply-template", promptTokens: 3, tmplStatus: http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tokenized map[string]any
			mux := http.NewServeMux()
			mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
				json.NewEncoder(w).Encode(map[string]any{"model": "m", "usage": map[string]int{"prompt_tokens": tc.promptTokens, "completion_tokens": 2},
					"choices": []any{map[string]any{"index": 0, "finish_reason": "stop", "message": map[string]any{"content": "ok"},
						"logprobs": map[string]any{"content": []any{map[string]any{"id": 9, "token": "ok", "logprob": -0.1}, map[string]any{"id": 2, "token": "", "logprob": -0.2}}}}}})
			})
			mux.HandleFunc("POST /apply-template", func(w http.ResponseWriter, r *http.Request) {
				if tc.tmplStatus != 0 {
					w.WriteHeader(tc.tmplStatus)
					return
				}
				var body struct {
					Messages []Message `json:"messages"`
				}
				json.NewDecoder(r.Body).Decode(&body)
				json.NewEncoder(w).Encode(map[string]string{"prompt": "<s>" + body.Messages[0].Content})
			})
			mux.HandleFunc("POST /tokenize", func(w http.ResponseWriter, r *http.Request) {
				json.NewDecoder(r.Body).Decode(&tokenized)
				json.NewEncoder(w).Encode(map[string]any{"tokens": []int32{1, 40, 41}})
			})
			srv := httptest.NewServer(mux)
			defer srv.Close()
			p := NewOpenAIPolicy(EndpointConfig{BaseURL: srv.URL + "/v1", Model: "m", EngineTokens: true})
			resp, err := p.Sample(context.Background(), Request{Messages: []Message{{Role: "user", Content: "hi"}}, Sampling: Sampling{Logprobs: true}})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(resp.ResponseIDs, []int32{9, 2}) {
				t.Errorf("response ids %v", resp.ResponseIDs)
			}
			if !slices.Equal(resp.PromptIDs, tc.want) || (resp.PromptIDs == nil) != (tc.want == nil) {
				t.Errorf("prompt ids %v, want %v", resp.PromptIDs, tc.want)
			}
			if tc.tmplStatus == 0 && (tokenized["content"] != "<s>hi" || tokenized["add_special"] != true || tokenized["parse_special"] != true) {
				t.Errorf("/tokenize got %v", tokenized)
			}
		})
	}
}
