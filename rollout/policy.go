package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// Request is one chat completion to sample.
type Request struct {
	Messages []Message
	// Tools, when set, is sent as the request's tools (a JSON array of
	// OpenAI function schemas), exactly as given.
	Tools    json.RawMessage
	Sampling Sampling
	Seed     int64
	// ContinueFinal asks the server to continue the final (assistant)
	// message instead of starting a new turn: vLLM's continue_final_message
	// with add_generation_prompt false. Servers without it answer 400 (see
	// Continuer).
	ContinueFinal bool
}

// Response is what a Policy returned for one Request.
type Response struct {
	Text      string
	Reasoning string
	// ToolCalls are the functions the answer calls (the message's
	// tool_calls, put together from the deltas of a stream).
	ToolCalls    []ToolCall
	FinishReason string
	Model        string
	Usage        *Usage
	Logprobs     []TokenLogprob
	// PromptIDs and ResponseIDs are the token ids the engine read and
	// generated, as it reported them (nil when it reported none): vLLM's
	// prompt_token_ids and token_ids (return_token_ids), llama-server's
	// logprob ids and the prompt its /apply-template and /tokenize give
	// (endpoint.engine_tokens).
	PromptIDs, ResponseIDs []int32
	// Endpoint is the base URL (without credentials) that answered, and
	// Attempts the number of requests sent for this response; both are
	// zero values when the Policy does not report them.
	Endpoint string
	Attempts int
}

// Policy samples one response. Implementations must be safe for concurrent use
// and must return promptly when ctx is done.
type Policy interface {
	Sample(ctx context.Context, req Request) (Response, error)
}

// attemptConfig is what one OpenAIPolicy needs: one URL of an
// EndpointConfig, the key read from its variable, and the transport.
type attemptConfig struct {
	baseURL, model string
	// apiKey is sent as a bearer token. It is never logged or written:
	// errors never include it.
	apiKey  string
	timeout time.Duration
	// client is the transport, shared by a fleet's URLs.
	client *http.Client
	// maxBytes bounds a response body; a larger one fails the attempt
	// without being read further (0: DefaultMaxResponseBytes).
	maxBytes int64
	// stream asks for the answer as server-sent events, so that a request
	// that stops making progress is noticed within idle.
	stream bool
	// idle is the longest the server may stay silent while a response is
	// being received: between the response's headers and its first byte
	// and between two reads of its body, and when streaming also from
	// sending the request to the headers (0: DefaultIdleTimeout). A
	// non-streamed answer is written at once when it is complete, so the
	// wait for its headers is bounded by timeout only.
	idle time.Duration
	// engineTokens asks for the engine's token ids (see
	// EndpointConfig.EngineTokens).
	engineTokens bool
}

// DefaultIdleTimeout is EndpointConfig.IdleTimeout's default: longer than a
// loaded server's queueing and prefill before a streamed answer's first
// token, or a preempted sequence's wait to be resumed.
const DefaultIdleTimeout = 2 * time.Minute

// OpenAIPolicy samples one OpenAI-compatible endpoint (vLLM, SGLang,
// llama-server, OpenAI) through go-openai, one request per sample and one
// attempt per request. Endpoints adds retries, balancing over several URLs
// and circuit breakers on top of it.
type OpenAIPolicy struct {
	client *openai.Client
	model  string
	// url is the base URL without credentials, as recorded on samples;
	// rawURL the base URL as configured, without its query.
	url, rawURL string
	// apiKey is kept only to scrub it from error messages.
	apiKey string
	// timeout bounds one request; 0 means no bound beyond ctx.
	timeout time.Duration
	// maxBytes, stream and idle are attemptConfig's, defaults applied.
	maxBytes int64
	stream   bool
	idle     time.Duration
	// engineTokens and httpc: see attemptConfig; httpc also serves the
	// prompt-token requests of llama-server (promptIDs).
	engineTokens bool
	httpc        *http.Client
}

// NewOpenAIPolicy returns a Policy that sends one attempt per request to
// cfg's first URL, with the key read from cfg.APIKeyEnv, cfg's timeout,
// response bound, streaming and idle timeout (0: their defaults). Dial
// adds retries, balancing and circuit breakers.
func NewOpenAIPolicy(cfg EndpointConfig) *OpenAIPolicy {
	base := ""
	if u := cfg.URLs(); len(u) > 0 {
		base = u[0]
	}
	conns := cfg.MaxInFlightPerEndpoint
	if conns <= 0 {
		conns = cfg.MaxInFlight
	}
	return newOpenAIPolicy(attemptConfig{
		baseURL: base, model: cfg.Model, apiKey: os.Getenv(cfg.APIKeyEnv), timeout: time.Duration(cfg.Timeout),
		client: &http.Client{Transport: newTransport(conns)}, maxBytes: int64(cfg.MaxResponseBytes),
		stream: cfg.Stream, idle: time.Duration(cfg.IdleTimeout), engineTokens: cfg.EngineTokens,
	})
}

func newOpenAIPolicy(cfg attemptConfig) *OpenAIPolicy {
	oc := openai.DefaultConfig(cfg.apiKey)
	// go-openai appends the path to the base URL as text, so a base URL
	// with a query (Azure's ?api-version=..., a gateway's key) would become
	// ".../v1?api-version=x/chat/completions". The query is taken off the
	// base URL and put on every request instead.
	base, query := splitQuery(cfg.baseURL)
	oc.BaseURL = base
	oc.HTTPClient = &patchingDoer{next: cfg.client, query: query}
	p := &OpenAIPolicy{
		client: openai.NewClientWithConfig(oc), model: cfg.model, url: redactURL(cfg.baseURL), rawURL: base,
		apiKey: cfg.apiKey, timeout: cfg.timeout,
		maxBytes: cfg.maxBytes, stream: cfg.stream, idle: cfg.idle,
		engineTokens: cfg.engineTokens, httpc: cfg.client,
	}
	if p.maxBytes <= 0 {
		p.maxBytes = DefaultMaxResponseBytes
	}
	if p.idle <= 0 {
		p.idle = DefaultIdleTimeout
	}
	return p
}

// newTransport returns a pooled transport that keeps one idle connection per
// request in flight (conns <= 0: 64). Without this, Go keeps two per host and
// high concurrency churns sockets until the process runs out of file
// descriptors.
func newTransport(conns int) *http.Transport {
	if conns <= 0 {
		conns = 64
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = conns
	tr.MaxIdleConns = conns
	return tr
}

// URL is the endpoint's base URL without any credentials in it.
func (p *OpenAIPolicy) URL() string { return p.url }

// Sample sends one chat completion request. It does not retry; its error is
// one line with the HTTP status when there was one.
func (p *OpenAIPolicy) Sample(ctx context.Context, req Request) (Response, error) {
	resp, f := p.attempt(ctx, req)
	if f != nil {
		e := &attemptError{status: f.status, msg: fmt.Sprintf("endpoint %s: %s", p.url, f.msg)}
		if f.cancelled {
			e.msg += ": " + ctx.Err().Error()
			e.cause = ctx.Err()
		}
		return Response{}, e
	}
	resp.Endpoint, resp.Attempts = p.url, 1
	return resp, nil
}

// promptIDs asks a llama-server for the prompt of req as its chat
// completion tokenized it: the messages rendered by its /apply-template,
// then its /tokenize with the special tokens it adds and parses (as its
// chat endpoint does). The ids are kept only when their count is the
// prompt_tokens the answer reported (when it reported one); nil on any
// failure, so the row falls back to the configured tokenizer.
func (p *OpenAIPolicy) promptIDs(ctx context.Context, req Request, usage *Usage) []int32 {
	root := strings.TrimSuffix(strings.TrimSuffix(p.urlWithQuery(), "/"), "/v1")
	msgs := make([]map[string]any, len(req.Messages))
	for i, m := range req.Messages {
		mm := map[string]any{"role": m.Role, "content": m.Content}
		if len(m.ToolCalls) > 0 {
			mm["tool_calls"] = m.ToolCalls
		}
		if m.ToolCallID != "" {
			mm["tool_call_id"] = m.ToolCallID
		}
		if m.Name != "" {
			mm["name"] = m.Name
		}
		msgs[i] = mm
	}
	body := map[string]any{"messages": msgs}
	if len(req.Tools) > 0 {
		body["tools"] = req.Tools
	}
	var tmpl struct {
		Prompt *string `json:"prompt"`
	}
	if p.postJSON(ctx, root+"/apply-template", body, &tmpl) != nil || tmpl.Prompt == nil {
		return nil
	}
	var tok struct {
		Tokens []int32 `json:"tokens"`
	}
	if p.postJSON(ctx, root+"/tokenize", map[string]any{"content": *tmpl.Prompt, "add_special": true, "parse_special": true}, &tok) != nil || len(tok.Tokens) == 0 {
		return nil
	}
	if usage != nil && usage.PromptTokens != 0 && usage.PromptTokens != len(tok.Tokens) {
		return nil
	}
	return tok.Tokens
}

// urlWithQuery is the base URL the policy was made with, credentials
// included (p.url has them removed).
func (p *OpenAIPolicy) urlWithQuery() string { return p.rawURL }

// postJSON posts body as JSON to u and decodes a 200 answer of at most
// maxBytes into out.
func (p *OpenAIPolicy) postJSON(ctx context.Context, u string, body, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	if p.apiKey != "" {
		hr.Header.Set("Authorization", "Bearer "+p.apiKey)
	}
	res, err := p.httpc.Do(hr)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", res.StatusCode)
	}
	data, err := readBody(res.Body, res.ContentLength, p.maxBytes)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, out)
}

// attemptError is OpenAIPolicy.Sample's error: one line, and the HTTP status
// for callers that branch on it (see HTTPStatus).
type attemptError struct {
	status int
	msg    string
	cause  error
}

func (e *attemptError) Error() string { return e.msg }
func (e *attemptError) Unwrap() error { return e.cause }

// HTTPStatus is the HTTP status of the response that failed a request, from
// an error of OpenAIPolicy or Endpoints; 0 when no response arrived or err
// is something else.
func HTTPStatus(err error) int {
	var rf *RequestFailure
	if errors.As(err, &rf) {
		return rf.Status
	}
	var ae *attemptError
	if errors.As(err, &ae) {
		return ae.status
	}
	return 0
}

// failure classifies one failed attempt.
type failure struct {
	// status is the HTTP status, 0 when no response arrived.
	status int
	// retryable marks a fault of the server or the network (429, 408, 5xx,
	// timeout, stall, reset, malformed body, no answer in the body): worth
	// another attempt, and counted by the endpoint's circuit breaker.
	retryable bool
	// cancelled: the caller's context ended; neither retried nor counted.
	cancelled bool
	// retryAfter is the server's Retry-After, 0 when absent.
	retryAfter time.Duration
	// msg is one line, scrubbed of the API key, e.g. "HTTP 503: overloaded".
	msg string
}

// attempt sends one request and classifies its outcome. A successful
// response (any finish_reason, including length) is never a failure.
func (p *OpenAIPolicy) attempt(ctx context.Context, req Request) (Response, *failure) {
	tctx := ctx
	if p.timeout > 0 {
		var cancel context.CancelFunc
		tctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	// The idle timer cancels the attempt with errStalled as its cause.
	actx, stall := context.WithCancelCause(tctx)
	defer stall(nil)
	msgs := make([]openai.ChatCompletionMessage, len(req.Messages))
	for i, m := range req.Messages {
		msgs[i] = openai.ChatCompletionMessage{Role: m.Role, Content: m.Content, ToolCallID: m.ToolCallID, Name: m.Name}
		for _, tc := range m.ToolCalls {
			msgs[i].ToolCalls = append(msgs[i].ToolCalls, openai.ToolCall{ID: tc.ID, Type: openai.ToolType(tc.Type),
				Function: openai.FunctionCall{Name: tc.Function.Name, Arguments: tc.Function.Arguments}})
		}
	}
	seed := int(req.Seed)
	creq := openai.ChatCompletionRequest{
		Model:       p.model,
		Messages:    msgs,
		Seed:        &seed,
		Stop:        req.Sampling.Stop,
		LogProbs:    req.Sampling.Logprobs,
		TopLogProbs: req.Sampling.TopLogprobs,
	}
	// go-openai drops zero values (omitempty), so temperature 0 would silently
	// become the server's default of 1. Explicit values go through the body
	// patch instead, which writes exactly what was configured.
	st := &attemptState{maxBytes: p.maxBytes, idle: p.idle, stream: p.stream, stall: stall}
	if t := req.Sampling.Temperature; t != nil {
		st.patch = append(st.patch, patchField{"temperature", *t})
	}
	if t := req.Sampling.TopP; t != nil {
		st.patch = append(st.patch, patchField{"top_p", *t})
	}
	if m := req.Sampling.MaxTokens; m != nil {
		st.patch = append(st.patch, patchField{"max_tokens", *m})
	}
	if k := req.Sampling.TopK; k != nil {
		st.patch = append(st.patch, patchField{"top_k", *k})
	}
	if m := req.Sampling.MinP; m != nil {
		st.patch = append(st.patch, patchField{"min_p", *m})
	}
	if v := req.Sampling.PresencePenalty; v != nil {
		st.patch = append(st.patch, patchField{"presence_penalty", *v})
	}
	if v := req.Sampling.FrequencyPenalty; v != nil {
		st.patch = append(st.patch, patchField{"frequency_penalty", *v})
	}
	if len(req.Tools) > 0 {
		// The task's schemas as written: go-openai's Tool type would drop
		// keys it does not know.
		st.patch = append(st.patch, patchField{"tools", req.Tools})
	}
	if req.ContinueFinal {
		// vLLM refuses continue_final_message together with its default
		// add_generation_prompt true, so both are sent.
		st.patch = append(st.patch, patchField{"continue_final_message", true}, patchField{"add_generation_prompt", false})
	}
	if p.engineTokens {
		// vLLM answers with prompt_token_ids and the choice's token_ids;
		// llama-server ignores the key (its ids come with logprobs).
		st.patch = append(st.patch, patchField{"return_token_ids", true})
	}
	if p.stream {
		st.patch = append(st.patch, patchField{"stream", true}, patchField{"stream_options", map[string]bool{"include_usage": true}})
	}
	// patchingDoer reads the body into st.answer (go-openai decodes an
	// empty object in its place); see response.go.
	if _, err := p.client.CreateChatCompletion(context.WithValue(actx, attemptKey{}, st), creq); err != nil {
		return Response{}, p.classify(ctx, actx, st, err)
	}
	if st.answer == nil {
		return Response{}, &failure{status: st.status, retryable: true, msg: fmt.Sprintf("HTTP %d: response body was not read", st.status)}
	}
	out, why := st.answer.response()
	if why != "" {
		return Response{}, &failure{status: st.status, retryable: true, msg: fmt.Sprintf("HTTP %d: %s", st.status, why)}
	}
	if p.engineTokens && out.ResponseIDs != nil && out.PromptIDs == nil && !req.ContinueFinal {
		out.PromptIDs = p.promptIDs(ctx, req, out.Usage)
	}
	return out, nil
}

// errStalled is the cause of an attempt cancelled by its idle timer.
var errStalled = errors.New("stalled")

// classify turns a go-openai error into a failure. parent is the caller's
// context, actx the attempt's (with the per-attempt timeout and the idle
// timer).
func (p *OpenAIPolicy) classify(parent, actx context.Context, st *attemptState, err error) *failure {
	f := &failure{status: st.status, retryAfter: st.retryAfter}
	var apiErr *openai.APIError
	var reqErr *openai.RequestError
	var tooLarge *errTooLarge
	var srvErr *serverError
	switch {
	case parent.Err() != nil:
		f.cancelled = true
		f.msg = "cancelled"
		if st.status != 0 {
			f.msg = fmt.Sprintf("cancelled after HTTP %d", st.status)
		}
		return f
	case errors.Is(context.Cause(actx), errStalled):
		// The idle timer: the server stopped sending.
		f.retryable = true
		f.msg = fmt.Sprintf("stalled: no data for %s (endpoint.idle_timeout)", p.idle)
		if st.status != 0 {
			f.msg = fmt.Sprintf("HTTP %d: %s", st.status, f.msg)
		}
		return f
	case actx.Err() != nil:
		// The attempt's own deadline, not the caller's: a hung or slow
		// server.
		f.retryable = true
		f.msg = fmt.Sprintf("timeout after %s", p.timeout)
		return f
	case errors.As(err, &tooLarge):
		// Not the endpoint's fault, and the same seed would bring the same
		// answer again: neither retried nor counted by the breaker.
		f.msg = fmt.Sprintf("HTTP %d: %v", st.status, err)
		return f
	case errors.As(err, &srvErr):
		f.retryable = true
		f.msg = fmt.Sprintf("HTTP %d: %v", st.status, err)
		f.msg = oneLine(f.msg, p.apiKey)
		return f
	case errors.As(err, &apiErr):
		f.status = apiErr.HTTPStatusCode
		f.msg = fmt.Sprintf("HTTP %d: %s", apiErr.HTTPStatusCode, apiErr.Message)
	case errors.As(err, &reqErr):
		f.status = reqErr.HTTPStatusCode
		f.msg = fmt.Sprintf("HTTP %d: %s", reqErr.HTTPStatusCode, errorBodyMessage(reqErr.Body, reqErr.HTTPStatusCode))
	case st.status != 0:
		// A status arrived but the body did not decode: truncated or not
		// JSON.
		f.msg = fmt.Sprintf("HTTP %d: malformed response body: %v", st.status, err)
	default:
		// No response at all: refused, reset, DNS, TLS.
		f.msg = fmt.Sprintf("no response: %v", err)
	}
	switch s := f.status; {
	case s == 0, s == http.StatusOK, s == http.StatusTooManyRequests, s == http.StatusRequestTimeout, s >= 500:
		f.retryable = true
	}
	f.msg = oneLine(f.msg, p.apiKey)
	return f
}

// errorBodyMessage finds the message in an error body that go-openai could
// not read: vLLM's {"object": "error", "message": ...}, FastAPI's
// {"detail": ...}, or plain text (a proxy's HTML page).
func errorBodyMessage(body []byte, status int) string {
	var v struct {
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
		Error   json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &v) == nil {
		var s string
		switch {
		case v.Message != "":
			return v.Message
		case json.Unmarshal(v.Error, &s) == nil && s != "":
			return s
		case json.Unmarshal(v.Detail, &s) == nil && s != "":
			return s
		case len(v.Detail) > 0:
			return string(v.Detail)
		}
	}
	if t := strings.TrimSpace(string(body)); t != "" {
		return t
	}
	return http.StatusText(status)
}

// oneLine makes an error message safe to store: a single line of bounded
// length with the API key scrubbed (servers sometimes echo it back).
func oneLine(s, key string) string {
	if key != "" {
		s = strings.ReplaceAll(s, key, "[api key]")
	}
	s = strings.Join(strings.Fields(s), " ")
	const limit = 300
	if len(s) > limit {
		s = strings.ToValidUTF8(s[:limit], "") + "..."
	}
	return s
}

// redactURL drops credentials and the query from a base URL for recording.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

type attemptKey struct{}

type patchField struct {
	key   string
	value any
}

// attemptState travels with one request through go-openai to patchingDoer:
// fields to patch into the body and how to read the response on the way
// out; the status, Retry-After and the answer on the way back (go-openai's
// errors carry neither status nor Retry-After reliably).
type attemptState struct {
	patch []patchField
	// maxBytes, idle and stream: see OpenAIPolicy.
	maxBytes int64
	idle     time.Duration
	stream   bool
	// stall cancels the attempt when the idle timer fires.
	stall context.CancelCauseFunc

	status     int
	retryAfter time.Duration
	// answer is what the body said, when it was read whole.
	answer *answer
}

// patchingDoer sets top-level JSON fields of the request body from the
// attempt's patch, for fields go-openai cannot express (explicit zeros,
// server-specific extensions, stream), records the response status, and
// reads the response body itself:
//
//   - A success (2xx, 3xx) body is read here, at most maxBytes of it, and
//     decoded into st.answer (response.go; a stream, sse.go); go-openai gets
//     an empty JSON object in its place. A failure to read or decode it is
//     Do's error, which go-openai returns as is.
//   - An error body is left to go-openai, cut to maxErrorBody bytes.
//   - An idle timer cancels the attempt (cause errStalled) when the server
//     sends nothing for st.idle: from the request on when streaming, from
//     the response headers on otherwise.
type patchingDoer struct {
	next *http.Client
	// query is the base URL's query, added to every request's.
	query url.Values
}

// splitQuery takes the query off a base URL; a URL that does not parse is
// returned as it is (its requests then fail with the parse error).
func splitQuery(raw string) (string, url.Values) {
	u, err := url.Parse(raw)
	if err != nil || u.RawQuery == "" {
		return raw, nil
	}
	q := u.Query()
	u.RawQuery, u.ForceQuery = "", false
	return u.String(), q
}

func (d *patchingDoer) Do(req *http.Request) (*http.Response, error) {
	if len(d.query) > 0 {
		q := req.URL.Query()
		for k, vs := range d.query {
			if !q.Has(k) {
				q[k] = vs
			}
		}
		req.URL.RawQuery = q.Encode()
	}
	st, _ := req.Context().Value(attemptKey{}).(*attemptState)
	if st == nil {
		return d.next.Do(req)
	}
	if len(st.patch) > 0 && req.Body != nil {
		if err := patchBody(req, st.patch); err != nil {
			return nil, err
		}
	}
	timed := st.idle > 0 && st.stall != nil
	var idle *time.Timer
	stop := func() {
		if idle != nil {
			idle.Stop()
		}
	}
	if st.stream {
		req.Header.Set("Accept", "text/event-stream")
		if timed {
			idle = time.AfterFunc(st.idle, func() { st.stall(errStalled) })
		}
	}
	resp, err := d.next.Do(req)
	if err != nil {
		stop()
		return nil, err
	}
	st.status = resp.StatusCode
	st.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	var body io.Reader = resp.Body
	if timed {
		if idle == nil {
			idle = time.AfterFunc(st.idle, func() { st.stall(errStalled) })
		} else {
			idle.Reset(st.idle)
		}
		body = &idleReader{r: resp.Body, t: idle, d: st.idle}
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		// go-openai reads the error body and closes it.
		resp.Body = &errorBody{Reader: io.LimitReader(body, maxErrorBody), body: resp.Body, stop: stop}
		return resp, nil
	}
	defer stop()
	defer resp.Body.Close()
	// By what the server sent, not what was asked: a server may ignore
	// "stream": true and answer in one piece.
	if isEventStream(resp.Header.Get("Content-Type")) {
		st.answer, err = readStream(&limitedReader{r: body, limit: st.maxBytes})
	} else {
		var raw []byte
		if raw, err = readBody(body, resp.ContentLength, st.maxBytes); err == nil {
			st.answer, err = decodeCompletion(raw)
		}
	}
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(strings.NewReader("{}"))
	resp.ContentLength = 2
	return resp, nil
}

func isEventStream(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "text/event-stream")
}

// idleReader restarts the idle timer t (of duration d) after each read
// that brought data.
type idleReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.t.Reset(r.d)
	}
	return n, err
}

// errorBody is an error response's body, cut to a bound, whose Close also
// stops the idle timer.
type errorBody struct {
	io.Reader
	body io.Closer
	stop func()
}

func (b *errorBody) Close() error {
	b.stop()
	return b.body.Close()
}

func patchBody(req *http.Request, patch []patchField) error {
	raw, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return fmt.Errorf("reading request body: %w", err)
	}
	if raw, err = patchJSON(raw, patch); err != nil {
		return err
	}
	req.Body = io.NopCloser(bytes.NewReader(raw))
	req.ContentLength = int64(len(raw))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
	return nil
}

// patchJSON sets top-level fields of the JSON object raw. When none of the
// keys occurs in raw (the usual case: go-openai omits the fields we patch),
// it appends them before the closing brace, which costs a copy instead of a
// decode and re-encode of the whole request (a hot spot at high request
// rates); otherwise it decodes, replaces and re-encodes.
func patchJSON(raw []byte, patch []patchField) ([]byte, error) {
	end := bytes.LastIndexByte(raw, '}')
	fast := end > 0 && bytes.IndexByte(raw, '{') == 0
	for _, f := range patch {
		if bytes.Contains(raw, []byte(`"`+f.key+`"`)) {
			fast = false
		}
	}
	if fast {
		out := make([]byte, 0, len(raw)+24*len(patch))
		out = append(out, raw[:end]...)
		empty := len(bytes.TrimSpace(raw[1:end])) == 0
		for _, f := range patch {
			v, err := json.Marshal(f.value)
			if err != nil {
				return nil, fmt.Errorf("patching request field %q: %w", f.key, err)
			}
			if !empty {
				out = append(out, ',')
			}
			empty = false
			out = append(out, '"')
			out = append(out, f.key...)
			out = append(out, '"', ':')
			out = append(out, v...)
		}
		return append(out, raw[end:]...), nil
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("patching request body: %w", err)
	}
	for _, f := range patch {
		b, err := json.Marshal(f.value)
		if err != nil {
			return nil, fmt.Errorf("patching request field %q: %w", f.key, err)
		}
		body[f.key] = b
	}
	out, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("patching request body: %w", err)
	}
	return out, nil
}

// maxRetryAfter caps how long a Retry-After can hold an endpoint back, so a
// misconfigured server cannot stall a run for hours.
const maxRetryAfter = 5 * time.Minute

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
// It returns 0 when the header is absent, unparsable or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
