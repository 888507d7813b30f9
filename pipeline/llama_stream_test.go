package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redraft/redraft/rollout"
)

// Against a real llama-server: a streamed answer (endpoint.stream) is the
// answer the same request gets without streaming: the same text, finish
// reason and token counts for the same seed, and a logprob for each token
// the stream carried text for. llama-server sends no chunk for a token that
// adds no text (a stop string it holds back, part of a character), so a
// stream may carry a few fewer logprobs than the whole answer; those it
// carries are the whole answer's, in order.
func TestLlamaServerStreamed(t *testing.T) {
	url := llamaURL(t)
	temp, mt := 1.0, 48
	sampling := rollout.Sampling{Temperature: &temp, MaxTokens: &mt, Logprobs: true}
	var got [2][]rollout.Response
	for i, stream := range []bool{false, true} {
		e, err := rollout.NewEndpoints(rollout.EndpointConfig{
			BaseURL: url, Model: llamaModel, Timeout: rollout.Duration(2 * time.Minute), Retries: 2,
			Stream: stream, IdleTimeout: rollout.Duration(time.Minute),
		})
		if err != nil {
			t.Fatal(err)
		}
		for k, task := range gsm8kTasks(t, 4) {
			resp, err := e.Sample(context.Background(), rollout.Request{
				Messages: []rollout.Message{{Role: "user", Content: task.Prompt}}, Sampling: sampling, Seed: int64(1000 + k),
			})
			if err != nil {
				t.Fatalf("stream=%v task %s: %v", stream, task.ID, err)
			}
			got[i] = append(got[i], resp)
		}
		e.Close()
	}
	for k := range got[0] {
		w, s := got[0][k], got[1][k]
		name := fmt.Sprintf("task %d", k)
		if s.Text != w.Text || s.FinishReason != w.FinishReason || s.Model != w.Model {
			t.Errorf("%s: streamed %q (%s, %s), whole %q (%s, %s)", name, s.Text, s.FinishReason, s.Model, w.Text, w.FinishReason, w.Model)
		}
		if s.Usage == nil || w.Usage == nil || *s.Usage != *w.Usage {
			t.Errorf("%s: usage streamed %+v, whole %+v", name, s.Usage, w.Usage)
		}
		if len(w.Logprobs) == 0 || len(s.Logprobs) == 0 || len(s.Logprobs) > len(w.Logprobs) || len(w.Logprobs)-len(s.Logprobs) > 4 {
			t.Errorf("%s: %d logprobs streamed, %d whole", name, len(s.Logprobs), len(w.Logprobs))
			continue
		}
		// Those the stream carries appear in the whole answer's list, in
		// order.
		j := 0
		for _, lp := range s.Logprobs {
			for j < len(w.Logprobs) && w.Logprobs[j] != lp {
				j++
			}
			if j == len(w.Logprobs) {
				t.Errorf("%s: streamed logprob %+v is not among the whole answer's, in order", name, lp)
				break
			}
			j++
		}
		t.Logf("%s: %d completion tokens, %d logprobs streamed, %d whole, finish %s", name, w.Usage.CompletionTokens, len(s.Logprobs), len(w.Logprobs), w.FinishReason)
	}
}
