package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redraft/redraft/rollout"
)

type failingPolicy struct{ err error }

func (p failingPolicy) Sample(context.Context, rollout.Request) (rollout.Response, error) {
	return rollout.Response{Endpoint: "http://u:PASS@h/v1?key=QKEY"}, p.err
}

// ScrubPolicy removes credentials from the error message and the endpoint,
// and keeps what callers read from the error: the request failure's
// attempts and endpoint, a context error.
func TestScrubPolicy(t *testing.T) {
	rf := &rollout.RequestFailure{Attempts: 2, Endpoint: "http://h/v1", Last: `no response: Post "http://alice:***@h/v1/chat/completions?key=QKEY": refused; server said sk-ENVKEY-1 is invalid`, Cause: context.Canceled}
	p := ScrubPolicy(failingPolicy{rf}, append([]string{"sk-ENVKEY-1"}, "alice", "PASS", "QKEY")...)
	resp, err := p.Sample(context.Background(), rollout.Request{})
	for _, s := range []string{"alice", "PASS", "QKEY", "sk-ENVKEY-1"} {
		if strings.Contains(err.Error(), s) || strings.Contains(resp.Endpoint, s) {
			t.Errorf("%q kept: %v / %s", s, err, resp.Endpoint)
		}
	}
	var got *rollout.RequestFailure
	if !errors.As(err, &got) || got.Attempts != 2 || !errors.Is(err, context.Canceled) || rollout.HTTPStatus(err) != 0 {
		t.Errorf("the wrapped error lost its failure: %#v", err)
	}
	if _, err := ScrubPolicy(failingPolicy{nil}).Sample(context.Background(), rollout.Request{}); err != nil {
		t.Error(err)
	}
}

// The run's identity leaves base URLs out, credentials and all: adding,
// changing or redacting credentials never changes it, so a resume is never
// refused for them; the model, which decides the rows, is in.
func TestIdentityIgnoresCredentials(t *testing.T) {
	hash := func(url, model string) string {
		c, err := ParseConfig("c.yaml", strings.NewReader("source: {kind: tasks, path: t.jsonl}\noutput: {dir: o}\nendpoint: {base_url: \""+url+"\", model: "+model+"}\n"))
		if err != nil {
			t.Fatal(err)
		}
		_, h, err := c.Identity()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	plain := hash("http://h/v1", "m")
	if hash("http://u:p@h/v1?api-key=k", "m") != plain || hash("http://u:other@h/v1", "m") != plain {
		t.Error("credentials changed the run's identity")
	}
	if hash("http://u:p@h/v1", "m2") == plain {
		t.Error("the model did not change the run's identity")
	}
}
