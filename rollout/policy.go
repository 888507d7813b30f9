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
	"strconv"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// Request is one chat completion to sample.
type Request struct {
	Messages []Message
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
	Text         string
	Reasoning    string
	FinishReason string
	Model        string
	Usage        *Usage
	Logprobs     []TokenLogprob
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

// EndpointConfig describes one OpenAI-compatible chat completions endpoint.
type EndpointConfig struct {
	BaseURL string
	Model   string
	// APIKey is sent as a bearer token. It is never logged or written: callers
	// read it from the environment and errors never include it.
	APIKey  string
	Timeout time.Duration
	// HTTPClient overrides the transport (tests, custom TLS). Nil: a client
	// with a pooled transport sized for MaxConns.
	HTTPClient *http.Client
	MaxConns   int
}

// OpenAIPolicy samples one OpenAI-compatible endpoint (vLLM, SGLang,
// llama-server, OpenAI) through go-openai, one request per sample and one
// attempt per request. Endpoints adds retries, balancing over several URLs
// and circuit breakers on top of it.
type OpenAIPolicy struct {
	client *openai.Client
	model  string
	// url is the base URL without credentials, as recorded on samples.
	url string
	// apiKey is kept only to scrub it from error messages.
	apiKey string
	// timeout bounds one request; 0 means no bound beyond ctx.
	timeout time.Duration
}

// NewOpenAIPolicy returns a Policy for cfg.
func NewOpenAIPolicy(cfg EndpointConfig) *OpenAIPolicy {
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: newTransport(cfg.MaxConns)}
	}
	oc := openai.DefaultConfig(cfg.APIKey)
	oc.BaseURL = cfg.BaseURL
	oc.HTTPClient = &patchingDoer{next: hc}
	return &OpenAIPolicy{
		client: openai.NewClientWithConfig(oc), model: cfg.Model, url: redactURL(cfg.BaseURL),
		apiKey: cfg.APIKey, timeout: cfg.Timeout,
	}
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
	// timeout, reset, malformed body, no choices): worth another attempt,
	// and counted by the endpoint's circuit breaker.
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
	actx := ctx
	if p.timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	msgs := make([]openai.ChatCompletionMessage, len(req.Messages))
	for i, m := range req.Messages {
		msgs[i] = openai.ChatCompletionMessage{Role: m.Role, Content: m.Content}
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
	st := &attemptState{}
	if t := req.Sampling.Temperature; t != nil {
		st.patch = append(st.patch, patchField{"temperature", *t})
	}
	if t := req.Sampling.TopP; t != nil {
		st.patch = append(st.patch, patchField{"top_p", *t})
	}
	if m := req.Sampling.MaxTokens; m != nil {
		st.patch = append(st.patch, patchField{"max_tokens", *m})
	}
	if req.ContinueFinal {
		// vLLM refuses continue_final_message together with its default
		// add_generation_prompt true, so both are sent.
		st.patch = append(st.patch, patchField{"continue_final_message", true}, patchField{"add_generation_prompt", false})
	}
	resp, err := p.client.CreateChatCompletion(context.WithValue(actx, attemptKey{}, st), creq)
	if err != nil {
		return Response{}, p.classify(ctx, actx, st, err)
	}
	if len(resp.Choices) == 0 {
		return Response{}, &failure{status: st.status, retryable: true, msg: fmt.Sprintf("HTTP %d: response has no choices", st.status)}
	}
	ch := resp.Choices[0]
	out := Response{
		Text:         ch.Message.Content,
		Reasoning:    ch.Message.ReasoningContent,
		FinishReason: string(ch.FinishReason),
		Model:        resp.Model,
	}
	if u := resp.Usage; u.PromptTokens != 0 || u.CompletionTokens != 0 {
		out.Usage = &Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}
	}
	if ch.LogProbs != nil {
		out.Logprobs = make([]TokenLogprob, len(ch.LogProbs.Content))
		for i, lp := range ch.LogProbs.Content {
			out.Logprobs[i] = TokenLogprob{Token: lp.Token, Logprob: lp.LogProb}
		}
	}
	return out, nil
}

// classify turns a go-openai error into a failure. parent is the caller's
// context, actx the attempt's (with the per-attempt timeout).
func (p *OpenAIPolicy) classify(parent, actx context.Context, st *attemptState, err error) *failure {
	f := &failure{status: st.status, retryAfter: st.retryAfter}
	var apiErr *openai.APIError
	var reqErr *openai.RequestError
	switch {
	case parent.Err() != nil:
		f.cancelled = true
		f.msg = "cancelled"
		if st.status != 0 {
			f.msg = fmt.Sprintf("cancelled after HTTP %d", st.status)
		}
		return f
	case actx.Err() != nil:
		// The attempt's own deadline, not the caller's: a hung or slow
		// server.
		f.retryable = true
		f.msg = fmt.Sprintf("timeout after %s", p.timeout)
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
// fields to patch into the body on the way out, the status and Retry-After
// on the way back (go-openai's errors carry neither reliably).
type attemptState struct {
	patch      []patchField
	status     int
	retryAfter time.Duration
}

// patchingDoer sets top-level JSON fields of the request body from the
// attempt's patch, for fields go-openai cannot express (explicit zeros,
// server-specific extensions), and records the response status.
type patchingDoer struct{ next *http.Client }

func (d *patchingDoer) Do(req *http.Request) (*http.Response, error) {
	st, _ := req.Context().Value(attemptKey{}).(*attemptState)
	if st != nil && len(st.patch) > 0 && req.Body != nil {
		if err := patchBody(req, st.patch); err != nil {
			return nil, err
		}
	}
	resp, err := d.next.Do(req)
	if err == nil && st != nil {
		st.status = resp.StatusCode
		st.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return resp, err
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
