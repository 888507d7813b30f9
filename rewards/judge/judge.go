package judge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/redraft/redraft/rollout"
)

// Judge is one judge model behind a rollout.Policy.
type Judge struct {
	Name   string // label for rows, e.g. the model name
	Policy rollout.Policy
	// Model names the model Policy calls. It is only used in the cache key,
	// so it must change whenever the model behind Policy does.
	Model    string
	Template Template
	// Sampling is sent with every call and is part of the cache key. A nil
	// Temperature means 0 (greedy): the setting is sent explicitly.
	Sampling rollout.Sampling
	Seed     int64
	Cache    *Cache // nil: no caching
}

// Verdict is one judge's decision on one response.
type Verdict struct {
	Judge  string   // the judge's Name
	Score  *float64 // normalised to [0, 1]; nil on failure
	Raw    *float64 // the score as written on the template's scale; nil on failure
	Reason string   // why Score is nil; "" when it is not
	Source string   // "content" or "reasoning": where the score was found
	// Cached is true when this verdict made no judge call of its own: it was
	// answered from the cache, or by an identical call in flight at the same
	// time.
	Cached bool
}

// sampling returns the settings actually sent: Temperature defaults to 0.
func (j *Judge) sampling() rollout.Sampling {
	s := j.Sampling
	if s.Temperature == nil {
		zero := 0.0
		s.Temperature = &zero
	}
	s.Stop = append([]string(nil), s.Stop...)
	return s
}

// cacheKeyVersion changes when the key's canonical form does.
const cacheKeyVersion = 1

// RequestKey is the cache key of one judge call: the hex sha256 of the
// canonical JSON of {v, model, messages, sampling, seed}. Canonical means
// Go's encoding of fixed structs: fields in a fixed order, nil settings
// omitted, floats in shortest round-trip form.
func RequestKey(model string, req rollout.Request) string {
	type canonical struct {
		V        int               `json:"v"`
		Model    string            `json:"model"`
		Messages []rollout.Message `json:"messages"`
		Sampling rollout.Sampling  `json:"sampling"`
		Seed     int64             `json:"seed"`
	}
	b, err := json.Marshal(canonical{cacheKeyVersion, model, req.Messages, req.Sampling, req.Seed})
	if err != nil {
		// Only non-finite floats can fail; key them by their printed form
		// so that the call still happens and is never confused with another.
		b = fmt.Appendf(nil, "%d\x00%q\x00%#v\x00%#v\x00%d", cacheKeyVersion, model, req.Messages, req.Sampling, req.Seed)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Evaluate asks the judge to grade response and parses its score. It never
// fails: a verdict without a score carries the reason ("judge call failed:
// ...", "no score found in judge output", "score 12 outside 0-10", ...).
// Calls that succeed are cached (the raw output, whether or not it parses);
// failed calls are not, so a rerun retries them.
func (j *Judge) Evaluate(ctx context.Context, question, response, reference string) Verdict {
	v := Verdict{Judge: j.Name}
	if j.Policy == nil {
		v.Reason = "judge has no policy"
		return v
	}
	if j.Template.RequireReference && strings.TrimSpace(reference) == "" {
		v.Reason = fmt.Sprintf("template %s needs a reference answer and the task has none", j.Template.Name)
		return v
	}
	msgs, err := j.Template.Render(question, response, reference)
	if err != nil {
		v.Reason = err.Error()
		return v
	}
	req := rollout.Request{Messages: msgs, Sampling: j.sampling(), Seed: j.Seed}
	e, cached, err := ask(ctx, j.Policy, j.Cache, j.Model, req)
	v.Cached = cached
	if err != nil {
		v.Reason = "judge call failed: " + err.Error()
		return v
	}
	raw, src, err := ParseScore(e.Content, e.Reasoning, j.Template.Scale)
	v.Source = src
	if err != nil {
		v.Reason = err.Error()
		if errors.Is(err, ErrNoScore) && e.FinishReason == "length" {
			v.Reason += " (finish_reason=length: the judge output was cut off)"
		}
		return v
	}
	score := j.Template.Scale.Normalise(raw)
	v.Raw, v.Score = &raw, &score
	return v
}

// ask sends a judge request, through the cache when there is one.
func ask(ctx context.Context, p rollout.Policy, cache *Cache, model string, req rollout.Request) (entry, bool, error) {
	call := func() (entry, error) {
		resp, err := p.Sample(ctx, req)
		if err != nil {
			return entry{}, err
		}
		return entry{Content: resp.Text, Reasoning: resp.Reasoning, FinishReason: resp.FinishReason, Model: resp.Model}, nil
	}
	if cache != nil {
		return cache.do(ctx, RequestKey(model, req), call)
	}
	e, err := call()
	return e, false, err
}
