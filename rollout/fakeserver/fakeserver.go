// Package fakeserver is an in-process OpenAI-compatible chat completions
// server whose responses look like vLLM's. It exists for unit tests, fault
// injection and overhead benchmarks; end-to-end tests also run against a real
// model server.
//
// Responses are deterministic functions of the request (messages and seed),
// so a test can predict every row. Tokens are whitespace-separated words.
package fakeserver

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Request is the part of a chat completion request the server reads. Pointer
// fields are nil when the client did not send them.
type Request struct {
	Model       string                           `json:"model"`
	Messages    []struct{ Role, Content string } `json:"messages"`
	Temperature *float64                         `json:"temperature"`
	TopP        *float64                         `json:"top_p"`
	MaxTokens   *int                             `json:"max_tokens"`
	Seed        *int64                           `json:"seed"`
	Stop        []string                         `json:"stop"`
	Logprobs    bool                             `json:"logprobs"`
	TopLogprobs int                              `json:"top_logprobs"`
}

// Reply is what a Responder decides for one request.
type Reply struct {
	// Text is the full response before max_tokens truncation.
	Text      string
	Reasoning string
	// Status, when not 0 or 200, makes the server answer with that HTTP
	// status and an OpenAI-style error body.
	Status int
}

// Responder computes the reply to a request. It must be safe for concurrent
// use.
type Responder func(req *Request) Reply

// Server is a running fake endpoint.
type Server struct {
	*httptest.Server
	// Model is the model id the server reports.
	Model string
	// Latency is added before each reply.
	Latency time.Duration

	respond  Responder
	requests atomic.Int64
	mu       sync.Mutex
	log      []Request
}

// New starts a server answering with respond (nil: AnswerBySeed(nil)).
func New(respond Responder) *Server {
	if respond == nil {
		respond = AnswerBySeed(nil)
	}
	s := &Server{Model: "fake/policy-1", respond: respond}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": []any{map[string]any{"id": s.Model, "object": "model"}}})
	})
	s.Server = httptest.NewServer(mux)
	return s
}

// BaseURL is the OpenAI base URL (ending in /v1).
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// Requests returns a copy of every request received, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// Count is the number of chat requests received.
func (s *Server) Count() int64 { return s.requests.Load() }

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	var req Request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return
	}
	s.mu.Lock()
	s.log = append(s.log, req)
	s.mu.Unlock()
	if s.Latency > 0 {
		select {
		case <-time.After(s.Latency):
		case <-r.Context().Done():
			return
		}
	}
	rep := s.respond(&req)
	if rep.Status != 0 && rep.Status != http.StatusOK {
		writeError(w, rep.Status, "injected failure")
		return
	}
	words := strings.Fields(rep.Text)
	finish := "stop"
	if req.MaxTokens != nil && len(words) > *req.MaxTokens {
		words, finish = words[:*req.MaxTokens], "length"
	}
	text := strings.Join(words, " ")
	prompt := 0
	for _, m := range req.Messages {
		prompt += len(strings.Fields(m.Content)) + 4 // role markers, as chat templates add
	}
	msg := map[string]any{"role": "assistant", "content": text, "tool_calls": []any{}}
	if rep.Reasoning != "" {
		msg["reasoning_content"] = rep.Reasoning
	} else {
		msg["reasoning_content"] = nil
	}
	choice := map[string]any{"index": 0, "message": msg, "logprobs": nil, "finish_reason": finish, "stop_reason": nil}
	if req.Logprobs {
		content := make([]any, len(words))
		for i, wd := range words {
			content[i] = map[string]any{"token": wd, "logprob": TokenLogprob(wd), "bytes": []byte(wd), "top_logprobs": []any{}}
		}
		choice["logprobs"] = map[string]any{"content": content}
	}
	json.NewEncoder(w).Encode(map[string]any{
		"id":      fmt.Sprintf("chatcmpl-%d", s.requests.Load()),
		"object":  "chat.completion",
		"created": 1700000000,
		"model":   s.Model,
		"choices": []any{choice},
		"usage": map[string]any{
			"prompt_tokens": prompt, "completion_tokens": len(words), "total_tokens": prompt + len(words),
			"prompt_tokens_details": nil,
		},
		"prompt_logprobs": nil,
	})
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"object": "error", "message": msg, "type": "BadRequestError", "code": status})
}

// TokenLogprob is the deterministic log-probability the server reports for a
// token.
func TokenLogprob(tok string) float64 {
	h := fnv.New32a()
	h.Write([]byte(tok))
	return -float64(h.Sum32()%1000) / 100
}

// AnswerBySeed answers "... The answer is N." where N is the reference answer
// from answers (keyed by the last user message) when the seed is even, and
// the reference plus one when it is odd, so a group of samples mixes correct
// and wrong answers predictably. Unknown prompts get the answer 0.
func AnswerBySeed(answers map[string]int) Responder {
	return func(req *Request) Reply {
		q := ""
		for _, m := range req.Messages {
			if m.Role == "user" {
				q = m.Content
			}
		}
		ans := answers[q]
		if req.Seed != nil && *req.Seed%2 == 1 {
			ans++
		}
		return Reply{Text: fmt.Sprintf("Let me work through this step by step. First I read the question carefully. The answer is %d.", ans)}
	}
}

// IsCorrectSeed says whether AnswerBySeed answers correctly for seed.
func IsCorrectSeed(seed int64) bool { return seed%2 == 0 }
