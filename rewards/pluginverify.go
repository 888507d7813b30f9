package rewards

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redraft/redraft/rewards/plugin"
	"github.com/redraft/redraft/rollout"
)

// PluginVerifier decides every task's responses by asking an external
// verifier (package plugin): the response text goes to the verifier with
// the task's id, data_source, reference and metadata, and the verifier's
// score is the verifiable reward (Verdict.Value). A verifier that gives no
// score, crashes, times out or answers garbage leaves the response
// unverified (verifiable null with the reason), never 0. The verifier's
// answer (its score, verdict, extracted answer, reason and detail) is the
// Detail, under "verifier".
type PluginVerifier struct {
	Client *plugin.Client
}

// VerifierDetail is the key of a plug-in verdict's Detail on a row's
// response_metadata.
const VerifierDetail = "verifier"

// Verifies implements Verifier: every task.
func (PluginVerifier) Verifies(rollout.Task) bool { return true }

// Verify implements Verifier: one batch per group.
func (p PluginVerifier) Verify(ctx context.Context, task rollout.Task, samples []rollout.Sample) []Verdict {
	reqs := make([]plugin.Request, len(samples))
	for i, s := range samples {
		reqs[i] = plugin.Request{TaskID: task.ID, DataSource: task.DataSource, Reference: task.Reference,
			Metadata: task.Metadata, Response: s.Text}
	}
	res := p.Client.Verify(ctx, reqs)
	name := p.Client.Hello().Name
	out := make([]Verdict, len(samples))
	for i := range out {
		if i < len(res) {
			out[i] = pluginVerdict(res[i], name)
		} else {
			out[i] = Verdict{Unverified: true, Reason: "the verifier returned no result"}
		}
	}
	return out
}

// pluginDetail is what a row keeps of the verifier's answer.
type pluginDetail struct {
	Verifier string          `json:"name,omitempty"`
	Score    *float64        `json:"score"`
	Correct  *bool           `json:"correct,omitempty"`
	Answer   string          `json:"answer,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	Failed   bool            `json:"failed,omitempty"`
	Detail   json.RawMessage `json:"detail,omitempty"`
}

func pluginVerdict(r plugin.Result, name string) Verdict {
	v := Verdict{Found: r.Answer != "", Answer: r.Answer, Rule: "plugin", DetailKey: VerifierDetail,
		Detail: pluginDetail{Verifier: name, Score: r.Score, Correct: r.Correct, Answer: r.Answer, Reason: r.Reason, Failed: r.Failed, Detail: r.Detail}}
	if r.Answer != "" {
		v.ExtractRule = "plugin"
	}
	if r.Score == nil {
		v.Unverified = true
		v.Reason = r.Reason
		if v.Reason == "" {
			v.Reason = "the verifier gave no score"
		}
		return v
	}
	score := *r.Score
	v.Value = &score
	v.Correct = score >= 1
	if r.Correct != nil {
		v.Correct = *r.Correct
	}
	if !v.Correct {
		v.Reason = r.Reason
		if v.Reason == "" {
			v.Reason = fmt.Sprintf("the verifier scored it %g", score)
		}
	}
	return v
}
