// Package fakeserver is an in-process OpenAI-compatible chat completions
// server whose responses look like vLLM's. It exists for unit tests, fault
// injection and overhead benchmarks; end-to-end tests also run against a real
// model server.
//
// Responses are deterministic functions of the request (messages and seed),
// so a test can predict every row. Tokens are whitespace-separated words;
// line breaks in a reply's text are kept.
//
// Prefill: like vLLM, the server continues the final assistant message when
// the request sets continue_final_message (refusing it with a 400 together
// with add_generation_prompt true, or when the last message is not the
// assistant's). With NoPrefill it answers 400 to any request that sets it,
// as servers without the extension do.
//
// A Responder can make any single request misbehave (Reply.Status,
// Reply.RetryAfter, Reply.Delay, Reply.Fault): error statuses, 429 storms
// with Retry-After, hangs, stalls mid-body, connection resets, truncated or
// malformed bodies, empty choices, choices without a message, answers only
// in reasoning_content, slow replies.
//
// Streaming: a request with "stream": true is answered with server-sent
// events as vLLM sends them: a first chunk with the role, one chunk per
// word (with its logprob when asked), a chunk with the finish_reason, a
// usage chunk when stream_options.include_usage is set, then [DONE]. Every
// fault has its streamed form; Reply.TokenDelay spaces the chunks.
package fakeserver

import (
	"bufio"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Request is the part of a chat completion request the server reads. Pointer
// fields are nil when the client did not send them.
type Request struct {
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`
	// Tools is the request's tools (OpenAI function schemas) as sent, nil
	// when it had none.
	Tools       json.RawMessage `json:"tools"`
	Temperature *float64        `json:"temperature"`
	TopP        *float64        `json:"top_p"`
	MaxTokens   *int            `json:"max_tokens"`
	// TopK, MinP, PresencePenalty, FrequencyPenalty: as sent (nil: not).
	TopK             *int     `json:"top_k"`
	MinP             *float64 `json:"min_p"`
	PresencePenalty  *float64 `json:"presence_penalty"`
	FrequencyPenalty *float64 `json:"frequency_penalty"`
	Seed             *int64   `json:"seed"`
	Stop             []string `json:"stop"`
	Logprobs         bool     `json:"logprobs"`
	TopLogprobs      int      `json:"top_logprobs"`
	// ContinueFinalMessage and AddGenerationPrompt are vLLM's prefill
	// switches (nil when not sent).
	ContinueFinalMessage *bool `json:"continue_final_message"`
	AddGenerationPrompt  *bool `json:"add_generation_prompt"`
	// Stream asks for server-sent events; StreamOptions.IncludeUsage for
	// a last chunk with the token counts.
	Stream bool `json:"stream"`
	// ReturnTokenIDs is vLLM's return_token_ids.
	ReturnTokenIDs bool `json:"return_token_ids"`
	StreamOptions  *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	// Authorization is the request's Authorization header (not JSON), so
	// that tests can check what credentials were sent.
	Authorization string `json:"-"`
}

// Message is one message of a request: its role and content, an assistant
// message's tool calls, a tool result's tool_call_id.
type Message struct {
	Role       string     `json:"role"`
	Content    string     `json:"content"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

// ToolCall is a function call in OpenAI's form, in a request's assistant
// message or in a reply (Reply.ToolCalls).
type ToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// Call is a ToolCall of function name with arguments (JSON text).
func Call(id, name, arguments string) ToolCall {
	c := ToolCall{ID: id, Type: "function"}
	c.Function.Name, c.Function.Arguments = name, arguments
	return c
}

// Fault is a transport- or encoding-level misbehaviour of one reply.
type Fault int

const (
	// NoFault answers normally.
	NoFault Fault = iota
	// Hang never answers: the handler returns only when the client gives up
	// or the server is closed.
	Hang
	// Reset closes the connection without writing a response.
	Reset
	// Truncated sends a 200 with the headers and the first half of a valid
	// body, then closes the connection.
	Truncated
	// Malformed sends a 200 whose body is not JSON.
	Malformed
	// EmptyChoices sends a well-formed 200 with "choices": [].
	EmptyChoices
	// Stall sends the headers (with the full Content-Length) and the first
	// half of the answer, then nothing, without closing: the handler
	// returns only when the client gives up or the server is closed.
	// Streamed: the first half of the chunks.
	Stall
	// NoMessage sends a 200 whose choice has no "message" key (streamed:
	// chunks whose choice has no "delta").
	NoMessage
	// NullMessage sends a 200 whose choice has "message": null (streamed:
	// "delta": null).
	NullMessage
	// EmptyGeneration sends a 200 with content "", finish_reason stop and
	// 0 completion tokens: a server that generated nothing, not even the
	// end-of-sequence token an empty answer ends with (which the server
	// otherwise counts, as vLLM does).
	EmptyGeneration
)

// Reply is what a Responder decides for one request.
type Reply struct {
	// Text is the full response before max_tokens truncation.
	Text string
	// Reasoning is sent as message.reasoning_content (null when empty).
	Reasoning string
	// ToolCalls are sent as message.tool_calls, with finish_reason
	// tool_calls when the text is not cut off; streamed, each call comes as
	// a delta with its id, type and name, then its arguments in two pieces.
	ToolCalls []ToolCall
	// Status, when not 0 or 200, makes the server answer with that HTTP
	// status and an OpenAI-style error body.
	Status int
	// Message replaces the error body's message ("injected failure").
	Message string
	// RetryAfter, when not empty, is sent as the Retry-After header (seconds
	// or an HTTP date), with any status.
	RetryAfter string
	// Delay is waited before replying, on top of Server.Latency.
	Delay time.Duration
	// TokenDelay is waited before each chunk of a streamed answer.
	TokenDelay time.Duration
	// Fault makes the reply misbehave; it takes precedence over Status.
	Fault Fault
}

// Responder computes the reply to a request. It must be safe for concurrent
// use.
type Responder func(req *Request) Reply

// Server is a running fake endpoint. Exported fields must be set before the
// first request.
type Server struct {
	*httptest.Server
	// Model is the model id the server reports.
	Model string
	// Latency is added before each reply.
	Latency time.Duration
	// NoLog stops the server from keeping every request for Requests
	// (benchmarks: the log grows with every request).
	NoLog bool
	// NoPrefill makes the server refuse continue_final_message with a 400.
	NoPrefill bool
	// EchoPrefill answers a request whose last message is the assistant's
	// with that message's content followed by the reply, as llama-server
	// does (it continues a final assistant message, whatever the flags).
	EchoPrefill bool
	// ContextTokens, when not 0, is the context of the slot a request
	// runs in, as llama-server's (--ctx-size divided by --parallel): a
	// request whose prompt takes that many tokens or more is refused with
	// a 400, and a generation that would fill it stops one token short,
	// with finish_reason length, exactly as a max_tokens cut is reported.
	ContextTokens int
	// TokenIDs, when set, makes the server answer return_token_ids as
	// vLLM does: prompt_token_ids at the top of the completion (of a
	// stream: its first event) and the choice's token_ids (streamed: one
	// id a word's delta when there are as many ids as words, else all on
	// the last delta), and usage counts them. It is given the request and
	// the content sent, and returns the ids. A request without
	// return_token_ids gets none.
	TokenIDs func(req *Request, content string) (prompt, response []int32)

	respond  Responder
	requests atomic.Int64
	mu       sync.Mutex
	log      []Request
	quit     chan struct{}
	quitOnce sync.Once
}

// New starts a server answering with respond (nil: AnswerBySeed(nil)).
func New(respond Responder) *Server {
	if respond == nil {
		respond = AnswerBySeed(nil)
	}
	s := &Server{Model: "fake/policy-1", respond: respond, quit: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": []any{map[string]any{"id": s.Model, "object": "model"}}})
	})
	s.Server = httptest.NewServer(mux)
	return s
}

// Close releases hanging and delayed handlers, then shuts the server down and
// waits for every handler to return. It is safe to call more than once.
func (s *Server) Close() {
	s.quitOnce.Do(func() { close(s.quit) })
	s.Server.Close()
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

// wait sleeps for d unless the client goes away or the server closes first;
// it reports whether the full delay elapsed.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.quit:
	}
	return false
}

type logprobEntry struct {
	Token       string   `json:"token"`
	Logprob     float64  `json:"logprob"`
	Bytes       []int    `json:"bytes"`
	TopLogprobs []string `json:"top_logprobs"`
}

type message struct {
	Role             string     `json:"role"`
	Content          string     `json:"content"`
	ReasoningContent *string    `json:"reasoning_content"`
	ToolCalls        []ToolCall `json:"tool_calls"`
}

type logprobs struct {
	Content []logprobEntry `json:"content"`
}

type choice struct {
	Index        int       `json:"index"`
	Message      *message  `json:"message,omitempty"`
	Logprobs     *logprobs `json:"logprobs"`
	FinishReason string    `json:"finish_reason"`
	StopReason   *string   `json:"stop_reason"`
	TokenIDs     []int32   `json:"token_ids,omitempty"`
}

// delta is a streamed chunk's message part; nil fields are left out.
type delta struct {
	Role             string          `json:"role,omitempty"`
	Content          *string         `json:"content,omitempty"`
	ReasoningContent *string         `json:"reasoning_content,omitempty"`
	ToolCalls        []deltaToolCall `json:"tool_calls,omitempty"`
}

// deltaToolCall is a piece of a tool call in a streamed chunk.
type deltaToolCall struct {
	Index    int    `json:"index"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type chunkChoice struct {
	Index        int       `json:"index"`
	Delta        *delta    `json:"delta"`
	Logprobs     *logprobs `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
	TokenIDs     []int32   `json:"token_ids,omitempty"`
}

type chunk struct {
	ID             string        `json:"id"`
	Object         string        `json:"object"`
	Created        int64         `json:"created"`
	Model          string        `json:"model"`
	Choices        []chunkChoice `json:"choices"`
	Usage          *usage        `json:"usage,omitempty"`
	PromptTokenIDs []int32       `json:"prompt_token_ids,omitempty"`
}

type usage struct {
	PromptTokens        int             `json:"prompt_tokens"`
	CompletionTokens    int             `json:"completion_tokens"`
	TotalTokens         int             `json:"total_tokens"`
	PromptTokensDetails json.RawMessage `json:"prompt_tokens_details"`
}

type completion struct {
	ID             string          `json:"id"`
	Object         string          `json:"object"`
	Created        int64           `json:"created"`
	Model          string          `json:"model"`
	Choices        []choice        `json:"choices"`
	Usage          usage           `json:"usage"`
	PromptLogprobs json.RawMessage `json:"prompt_logprobs"`
	PromptTokenIDs []int32         `json:"prompt_token_ids,omitempty"`
}

var null = json.RawMessage("null")

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	n := s.requests.Add(1)
	var req Request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return
	}
	req.Authorization = r.Header.Get("Authorization")
	if !s.NoLog {
		s.mu.Lock()
		s.log = append(s.log, req)
		s.mu.Unlock()
	}
	if !s.wait(r, s.Latency) {
		return
	}
	if msg := s.checkPrefill(&req); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	rep := s.respond(&req)
	if !s.wait(r, rep.Delay) {
		return
	}
	switch rep.Fault {
	case Hang:
		s.hang(r)
		return
	case Reset:
		hijackAndClose(w, nil)
		return
	}
	if rep.Fault == Malformed && !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id": "chatcmpl-x", "choices": [{"index": 0, "message": <html>bad gateway</html>`))
		return
	}
	if rep.RetryAfter != "" {
		w.Header().Set("Retry-After", rep.RetryAfter)
	}
	if rep.Status != 0 && rep.Status != http.StatusOK {
		msg := rep.Message
		if msg == "" {
			msg = "injected failure"
		}
		writeError(w, rep.Status, msg)
		return
	}
	prompt, limit, msg := s.budget(&req)
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	if req.Stream {
		s.stream(w, r, &req, rep, n)
		return
	}
	content, words, finish := render(rep.Text, limit)
	generated := completionTokens(content, rep, words, finish)
	if n := len(req.Messages); s.EchoPrefill && n > 0 && req.Messages[n-1].Role == "assistant" {
		content = req.Messages[n-1].Content + content
	}
	calls := []ToolCall{}
	if len(rep.ToolCalls) > 0 {
		calls = rep.ToolCalls
		if finish == "stop" {
			finish = "tool_calls"
		}
	}
	ch := choice{
		Message:      &message{Role: "assistant", Content: content, ToolCalls: calls},
		FinishReason: finish,
	}
	if rep.Reasoning != "" {
		ch.Message.ReasoningContent = &rep.Reasoning
	}
	if req.Logprobs {
		ch.Logprobs = &logprobs{make([]logprobEntry, len(words))}
		for i, wd := range words {
			ch.Logprobs.Content[i] = logprobOf(wd)
		}
	}
	body := completion{
		ID: "chatcmpl-" + strconv.FormatInt(n, 10), Object: "chat.completion", Created: 1700000000, Model: s.Model,
		Choices: []choice{ch},
		Usage: usage{PromptTokens: prompt, CompletionTokens: generated, TotalTokens: prompt + generated,
			PromptTokensDetails: null},
		PromptLogprobs: null,
	}
	if s.TokenIDs != nil && req.ReturnTokenIDs {
		body.PromptTokenIDs, body.Choices[0].TokenIDs = s.TokenIDs(&req, content)
		// vLLM counts the tokens it reports.
		p, g := len(body.PromptTokenIDs), len(body.Choices[0].TokenIDs)
		body.Usage.PromptTokens, body.Usage.CompletionTokens, body.Usage.TotalTokens = p, g, p+g
	}
	switch rep.Fault {
	case EmptyChoices:
		body.Choices = []choice{}
	case NoMessage, NullMessage:
		body.Choices[0].Message = nil
	}
	raw, err := json.Marshal(body)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if rep.Fault == NullMessage {
		raw = []byte(strings.Replace(string(raw), `"index":0,`, `"index":0,"message":null,`, 1))
	}
	switch rep.Fault {
	case Truncated:
		hijackAndClose(w, raw[:len(raw)/2])
		return
	case Stall:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
		w.Write(raw[:len(raw)/2])
		w.(http.Flusher).Flush()
		s.hang(r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	w.Write(raw)
}

// budget is a request's prompt tokens and the most tokens it may generate
// (-1: no bound), or why it is refused: the prompt does not fit the slot's
// context (ContextTokens; llama-server's message).
func (s *Server) budget(req *Request) (prompt, limit int, refused string) {
	for _, m := range req.Messages {
		prompt += len(strings.Fields(m.Content)) + 4 // role markers, as chat templates add
	}
	limit = -1
	if req.MaxTokens != nil {
		limit = *req.MaxTokens
	}
	if c := s.ContextTokens; c > 0 {
		if prompt >= c {
			return prompt, 0, fmt.Sprintf("request (%d tokens) exceeds the available context size (%d tokens), try increasing it", prompt, c)
		}
		// llama-server stops once the prompt and the generated tokens
		// reach the context less one.
		if room := c - 1 - prompt; limit < 0 || room < limit {
			limit = room
		}
	}
	return prompt, limit, ""
}

// completionTokens is the usage a reply reports: one per word, and for an
// empty answer the end-of-sequence token it stopped on (none with
// EmptyGeneration).
func completionTokens(content string, rep Reply, words []string, finish string) int {
	if content == "" && rep.Reasoning == "" && finish == "stop" && rep.Fault != EmptyGeneration {
		return 1
	}
	return len(words)
}

// hang returns when the client goes away or the server closes.
func (s *Server) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.quit:
	}
}

func logprobOf(word string) logprobEntry {
	b := make([]int, len(word))
	for j := range len(word) {
		b[j] = int(word[j])
	}
	return logprobEntry{Token: word, Logprob: TokenLogprob(word), Bytes: b, TopLogprobs: []string{}}
}

// stream answers a request for a stream with server-sent events, as vLLM
// does, misbehaving as rep.Fault says.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, req *Request, rep Reply, n int64) {
	prompt, limit, _ := s.budget(req)
	content, words, finish := render(rep.Text, limit)
	base := chunk{ID: "chatcmpl-" + strconv.FormatInt(n, 10), Object: "chat.completion.chunk", Created: 1700000000, Model: s.Model}
	var events []chunk
	add := func(d *delta, lp *logprobs, finish *string) {
		c := base
		ch := chunkChoice{Delta: d, Logprobs: lp, FinishReason: finish}
		switch rep.Fault {
		case EmptyChoices:
			c.Choices = []chunkChoice{}
			events = append(events, c)
			return
		case NoMessage, NullMessage:
			ch.Delta = nil
		}
		c.Choices = []chunkChoice{ch}
		events = append(events, c)
	}
	str := func(s string) *string { return &s }
	var promptIDs, responseIDs []int32
	if s.TokenIDs != nil && req.ReturnTokenIDs {
		promptIDs, responseIDs = s.TokenIDs(req, content)
	}
	perWord := len(responseIDs) == len(words)
	add(&delta{Role: "assistant", Content: str("")}, nil, nil)
	if promptIDs != nil && len(events) > 0 {
		events[0].PromptTokenIDs = promptIDs
	}
	for _, piece := range pieces(rep.Reasoning) {
		add(&delta{ReasoningContent: str(piece)}, nil, nil)
	}
	if k := len(req.Messages); s.EchoPrefill && k > 0 && req.Messages[k-1].Role == "assistant" {
		add(&delta{Content: str(req.Messages[k-1].Content)}, nil, nil)
	}
	for i, piece := range pieces(content) {
		var lp *logprobs
		if req.Logprobs && i < len(words) {
			lp = &logprobs{[]logprobEntry{logprobOf(words[i])}}
		}
		add(&delta{Content: str(piece)}, lp, nil)
		if perWord && i < len(words) && len(events[len(events)-1].Choices) > 0 {
			events[len(events)-1].Choices[0].TokenIDs = responseIDs[i : i+1]
		}
	}
	for i, c := range rep.ToolCalls {
		head := deltaToolCall{Index: i, ID: c.ID, Type: c.Type}
		head.Function.Name = c.Function.Name
		add(&delta{ToolCalls: []deltaToolCall{head}}, nil, nil)
		a := c.Function.Arguments
		for _, part := range []string{a[:len(a)/2], a[len(a)/2:]} {
			piece := deltaToolCall{Index: i}
			piece.Function.Arguments = part
			add(&delta{ToolCalls: []deltaToolCall{piece}}, nil, nil)
		}
	}
	if len(rep.ToolCalls) > 0 && finish == "stop" {
		finish = "tool_calls"
	}
	add(&delta{}, nil, &finish)
	if !perWord && len(responseIDs) > 0 && len(events[len(events)-1].Choices) > 0 {
		events[len(events)-1].Choices[0].TokenIDs = responseIDs
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		c := base
		c.Choices = []chunkChoice{}
		generated := completionTokens(content, rep, words, finish)
		if promptIDs != nil {
			prompt, generated = len(promptIDs), len(responseIDs)
		}
		c.Usage = &usage{PromptTokens: prompt, CompletionTokens: generated, TotalTokens: prompt + generated, PromptTokensDetails: null}
		events = append(events, c)
	}
	send := len(events)
	if rep.Fault == Truncated || rep.Fault == Stall {
		send = len(events) / 2
	}
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	fl.Flush()
	for i, ev := range events[:send] {
		if !s.wait(r, rep.TokenDelay) {
			return
		}
		raw, err := json.Marshal(ev)
		if err != nil {
			panic(err)
		}
		if rep.Fault == NoMessage {
			raw = []byte(strings.ReplaceAll(string(raw), `"delta":null,`, ""))
		}
		if rep.Fault == Malformed && i > 0 {
			raw = []byte("<html>bad gateway</html>")
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", raw); err != nil {
			return
		}
		fl.Flush()
	}
	switch rep.Fault {
	case Truncated:
		// The connection drops mid-stream.
		panic(http.ErrAbortHandler)
	case Stall:
		s.hang(r)
		return
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	fl.Flush()
}

// pieces splits text into the deltas a server streams: each word with the
// whitespace before it, so that they add up to text.
func pieces(text string) []string {
	var out []string
	for text != "" {
		i := 0
		for i < len(text) && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t') {
			i++
		}
		for i < len(text) && text[i] != ' ' && text[i] != '\n' && text[i] != '\t' {
			i++
		}
		out = append(out, text[:i])
		text = text[i:]
	}
	return out
}

// checkPrefill returns why a request's prefill switches are refused, "" when
// they are fine.
func (s *Server) checkPrefill(req *Request) string {
	cont := req.ContinueFinalMessage != nil && *req.ContinueFinalMessage
	switch {
	case cont && s.NoPrefill:
		return "continue_final_message is not supported by this server"
	case !cont:
		return ""
	case req.AddGenerationPrompt == nil || *req.AddGenerationPrompt:
		// vLLM's default for add_generation_prompt is true.
		return "continue_final_message and add_generation_prompt cannot both be true"
	case len(req.Messages) == 0 || req.Messages[len(req.Messages)-1].Role != "assistant":
		return "continue_final_message needs a final assistant message"
	}
	return ""
}

// render cuts text to at most limit words (limit < 0: none), keeping its line
// breaks and every whole line as written (code stays code); the line cut at
// the limit has its words joined with single spaces. It returns the content,
// its words and the finish reason.
func render(text string, limit int) (string, []string, string) {
	var words []string
	var b strings.Builder
	finish := "stop"
	for i, line := range strings.Split(strings.TrimSpace(text), "\n") {
		lw := strings.Fields(line)
		if limit >= 0 && len(words)+len(lw) > limit {
			lw, finish = lw[:limit-len(words)], "length"
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		if finish == "length" {
			b.WriteString(strings.Join(lw, " "))
		} else {
			b.WriteString(strings.TrimRight(line, " \t\r"))
		}
		words = append(words, lw...)
		if finish == "length" {
			break
		}
	}
	return strings.TrimRight(b.String(), "\n"), words, finish
}

// hijackAndClose takes over the connection and closes it. With a partial
// body it first writes a 200 whose Content-Length promises the whole body,
// so the client sees the connection drop mid-body.
func hijackAndClose(w http.ResponseWriter, partial []byte) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("fakeserver: connection cannot be hijacked")
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	if partial != nil {
		writeTruncated(buf, partial)
	}
}

func writeTruncated(buf *bufio.ReadWriter, partial []byte) {
	fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 2*len(partial)+1)
	buf.Write(partial)
	buf.Flush()
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
// from answers (keyed by the first user message) when the seed is even, and
// the reference plus one when it is odd, so a group of samples mixes correct
// and wrong answers predictably. Unknown prompts get the answer 0.
func AnswerBySeed(answers map[string]int) Responder {
	return func(req *Request) Reply {
		// The question is the first user message: later ones are feedback
		// in a correction episode.
		q := ""
		for _, m := range req.Messages {
			if m.Role == "user" {
				q = m.Content
				break
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

// lastUser is a request's last user message.
func lastUser(req *Request) string {
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == "user" {
			return req.Messages[i].Content
		}
	}
	return ""
}

// Verdicts answers self-verification requests, those whose last user
// message contains marker, with a short check ending in \boxed{correct}
// when the seed is even and \boxed{incorrect} when it is odd (see
// IsCorrectSeed); every other request goes to next.
func Verdicts(marker string, next Responder) Responder {
	return func(req *Request) Reply {
		if !strings.Contains(lastUser(req), marker) {
			return next(req)
		}
		verdict := "incorrect"
		if req.Seed != nil && IsCorrectSeed(*req.Seed) {
			verdict = "correct"
		}
		return Reply{Text: "I checked each step of the proposed solution. \\boxed{" + verdict + "}"}
	}
}

// Thoughts puts a thought before each of next's answers: inline as
// "<think>...</think>" at the start of the text, or, with reasoning set, in
// reasoning_content as servers with a reasoning parser return it.
func Thoughts(next Responder, reasoning bool) Responder {
	return func(req *Request) Reply {
		rep := next(req)
		thought := fmt.Sprintf("Round %d: let me look for a mistake before answering.", len(req.Messages)/2)
		if reasoning {
			rep.Reasoning = thought
		} else {
			rep.Text = "<think>" + thought + "</think>\n" + rep.Text
		}
		return rep
	}
}
