package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// Request is one chat completion to sample.
type Request struct {
	Messages []Message
	Sampling Sampling
	Seed     int64
}

// Response is what a Policy returned for one Request.
type Response struct {
	Text         string
	Reasoning    string
	FinishReason string
	Model        string
	Usage        *Usage
	Logprobs     []TokenLogprob
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

// OpenAIPolicy samples an OpenAI-compatible endpoint (vLLM, SGLang,
// llama-server, OpenAI) through go-openai, one request per sample.
type OpenAIPolicy struct {
	client *openai.Client
	model  string
	// timeout bounds one request; 0 means no bound beyond ctx.
	timeout time.Duration
}

// NewOpenAIPolicy returns a Policy for cfg.
func NewOpenAIPolicy(cfg EndpointConfig) *OpenAIPolicy {
	hc := cfg.HTTPClient
	if hc == nil {
		conns := cfg.MaxConns
		if conns <= 0 {
			conns = 64
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// One idle connection per request in flight: without this, Go keeps
		// two per host and high concurrency churns sockets until the process
		// runs out of file descriptors.
		tr.MaxIdleConnsPerHost = conns
		tr.MaxIdleConns = conns
		hc = &http.Client{Transport: tr}
	}
	oc := openai.DefaultConfig(cfg.APIKey)
	oc.BaseURL = cfg.BaseURL
	oc.HTTPClient = &patchingDoer{next: hc}
	return &OpenAIPolicy{client: openai.NewClientWithConfig(oc), model: cfg.Model, timeout: cfg.Timeout}
}

// Sample sends one chat completion request.
func (p *OpenAIPolicy) Sample(ctx context.Context, req Request) (Response, error) {
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
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
	patch := map[string]any{}
	if t := req.Sampling.Temperature; t != nil {
		patch["temperature"] = *t
	}
	if t := req.Sampling.TopP; t != nil {
		patch["top_p"] = *t
	}
	if m := req.Sampling.MaxTokens; m != nil {
		patch["max_tokens"] = *m
	}
	resp, err := p.client.CreateChatCompletion(withBodyPatch(ctx, patch), creq)
	if err != nil {
		return Response{}, describeError(err)
	}
	if len(resp.Choices) == 0 {
		return Response{}, errors.New("endpoint returned no choices")
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

// describeError turns a go-openai error into one line that keeps the status
// and the server's message. go-openai never puts the API key in its errors.
func describeError(err error) error {
	var apiErr *openai.APIError
	if errors.As(err, &apiErr) {
		return fmt.Errorf("endpoint: HTTP %d: %s", apiErr.HTTPStatusCode, apiErr.Message)
	}
	var reqErr *openai.RequestError
	if errors.As(err, &reqErr) {
		return fmt.Errorf("endpoint: HTTP %d: %w", reqErr.HTTPStatusCode, reqErr.Err)
	}
	return fmt.Errorf("endpoint: %w", err)
}

type bodyPatchKey struct{}

func withBodyPatch(ctx context.Context, patch map[string]any) context.Context {
	if len(patch) == 0 {
		return ctx
	}
	return context.WithValue(ctx, bodyPatchKey{}, patch)
}

// patchingDoer sets top-level JSON fields of the request body from the
// context's patch, for fields go-openai cannot express (explicit zeros,
// server-specific extensions).
type patchingDoer struct{ next *http.Client }

func (d *patchingDoer) Do(req *http.Request) (*http.Response, error) {
	patch, _ := req.Context().Value(bodyPatchKey{}).(map[string]any)
	if len(patch) == 0 || req.Body == nil {
		return d.next.Do(req)
	}
	raw, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("reading request body: %w", err)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("patching request body: %w", err)
	}
	for k, v := range patch {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("patching request field %q: %w", k, err)
		}
		body[k] = b
	}
	raw, err = json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("patching request body: %w", err)
	}
	req.Body = io.NopCloser(bytes.NewReader(raw))
	req.ContentLength = int64(len(raw))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
	return d.next.Do(req)
}
