package rollout_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// echoTail answers with the number of messages and the last message's role,
// so a test can see what the server was sent.
func echoTail(req *fakeserver.Request) fakeserver.Reply {
	last := req.Messages[len(req.Messages)-1]
	return fakeserver.Reply{Text: "Step 3: 4 + 4 = 8\n#### 8 (" + last.Role + ")"}
}

func TestContinuerModes(t *testing.T) {
	prompt := []rollout.Message{{Role: "user", Content: "What is 4 + 4?"}}
	const prefix = "Step 1: read.\nStep 2: 4 + 5 = 9\nWait, that is wrong.\n"
	const sent = prefix // as given, line break included
	for _, tc := range []struct {
		name      string
		mode      string
		noPrefill bool
		echo      bool
		// policy: "endpoints" (retrying fleet) or "single" (OpenAIPolicy).
		policy   string
		prefix   string
		wantMode string
		// wantRequests per call, over two calls.
		wantRequests [2]int
		wantErr      bool
		wantFallback bool
	}{
		{"prefill supported", rollout.ContinuePrefill, false, false, "endpoints", prefix, rollout.ContinuePrefill, [2]int{1, 1}, false, false},
		{"prefill echoed (llama-server)", rollout.ContinuePrefill, false, true, "endpoints", prefix, rollout.ContinuePrefill, [2]int{1, 1}, false, false},
		{"prefill refused", rollout.ContinuePrefill, true, false, "endpoints", prefix, "", [2]int{1, 1}, true, false},
		{"user turn", rollout.ContinueUserTurn, true, false, "endpoints", prefix, rollout.ContinueUserTurn, [2]int{1, 1}, false, false},
		{"user turn is never cut", rollout.ContinueUserTurn, false, true, "endpoints", prefix, rollout.ContinueUserTurn, [2]int{1, 1}, false, false},
		{"auto supported", rollout.ContinueAuto, false, false, "endpoints", prefix, rollout.ContinuePrefill, [2]int{1, 1}, false, false},
		{"auto falls back once", rollout.ContinueAuto, true, false, "endpoints", prefix, rollout.ContinueUserTurn, [2]int{2, 1}, false, true},
		{"auto falls back, single policy", rollout.ContinueAuto, true, false, "single", prefix, rollout.ContinueUserTurn, [2]int{2, 1}, false, true},
		{"default mode is auto", "", true, false, "single", prefix, rollout.ContinueUserTurn, [2]int{2, 1}, false, true},
		{"empty prefix is a fresh sample", rollout.ContinuePrefill, true, false, "endpoints", " \n", rollout.ContinueFresh, [2]int{1, 1}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeserver.New(echoTail)
			srv.NoPrefill, srv.EchoPrefill = tc.noPrefill, tc.echo
			defer srv.Close()
			var pol rollout.Policy
			if tc.policy == "single" {
				pol = rollout.NewOpenAIPolicy(rollout.EndpointConfig{BaseURL: srv.BaseURL(), Model: "m"})
			} else {
				e, err := rollout.NewEndpoints(rollout.EndpointConfig{BaseURL: srv.BaseURL(), Model: "m"})
				if err != nil {
					t.Fatal(err)
				}
				defer e.Close()
				pol = e
			}
			c := &rollout.Continuer{Policy: pol, Mode: tc.mode}
			for call := range 2 {
				before := len(srv.Requests())
				out, err := c.Continue(context.Background(), prompt, tc.prefix, rollout.Sampling{}, 7)
				reqs := srv.Requests()[before:]
				if len(reqs) != tc.wantRequests[call] {
					t.Fatalf("call %d: %d requests, want %d", call, len(reqs), tc.wantRequests[call])
				}
				if tc.wantErr {
					if err == nil || rollout.HTTPStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "not supported") {
						t.Fatalf("call %d: error %v (status %d), want a 400", call, err, rollout.HTTPStatus(err))
					}
					continue
				}
				if err != nil {
					t.Fatalf("call %d: %v", call, err)
				}
				if out.Mode != tc.wantMode || (out.Fallback != "") != tc.wantFallback {
					t.Fatalf("call %d: mode %q fallback %q", call, out.Mode, out.Fallback)
				}
				// The recorded messages are exactly those of the request
				// that produced the response.
				last := reqs[len(reqs)-1]
				if len(last.Messages) != len(out.Messages) {
					t.Fatalf("call %d: recorded %d messages, sent %d", call, len(out.Messages), len(last.Messages))
				}
				for i, m := range out.Messages {
					if last.Messages[i].Role != m.Role || last.Messages[i].Content != m.Content {
						t.Fatalf("call %d: message %d recorded %+v, sent %+v", call, i, m, last.Messages[i])
					}
				}
				cont := last.ContinueFinalMessage != nil && *last.ContinueFinalMessage
				if cont != (out.Mode == rollout.ContinuePrefill) || cont != out.ContinueFinal {
					t.Fatalf("call %d: continue_final_message %v in mode %s", call, cont, out.Mode)
				}
				switch out.Mode {
				case rollout.ContinuePrefill:
					if len(out.Messages) != 2 || out.Messages[1].Content != sent || last.AddGenerationPrompt == nil || *last.AddGenerationPrompt {
						t.Fatalf("prefill request: %+v", last)
					}
				case rollout.ContinueUserTurn:
					if len(out.Messages) != 3 || (out.Messages[1].Role != "assistant" || out.Messages[1].Content != sent) || out.Messages[2].Content != rollout.DefaultContinueInstruction {
						t.Fatalf("user-turn request: %+v", out.Messages)
					}
				case rollout.ContinueFresh:
					if len(out.Messages) != 1 || last.ContinueFinalMessage != nil {
						t.Fatalf("fresh request: %+v", last)
					}
				}
				// Line breaks of the reply survive the fake server; an
				// echoed prefix is cut from Text, and only in prefill mode.
				echoed := tc.echo && out.Mode == rollout.ContinuePrefill
				if !strings.HasPrefix(out.Text, "Step 3: 4 + 4 = 8\n#### 8") || out.EchoedPrefix != echoed || (out.Response.Text != out.Text) != echoed {
					t.Fatalf("text %q (echoed %v), response %q", out.Text, out.EchoedPrefix, out.Response.Text)
				}
			}
		})
	}
}

// A 400 that has nothing to do with prefill fails the user turn too, and must
// not switch the continuer to user turns.
func TestContinuerOther400(t *testing.T) {
	srv := fakeserver.New(func(*fakeserver.Request) fakeserver.Reply {
		return fakeserver.Reply{Status: 400, Message: "prompt is too long"}
	})
	defer srv.Close()
	c := &rollout.Continuer{Policy: rollout.NewOpenAIPolicy(rollout.EndpointConfig{BaseURL: srv.BaseURL(), Model: "m"}), Mode: rollout.ContinueAuto}
	_, err := c.Continue(context.Background(), []rollout.Message{{Role: "user", Content: "q"}}, "Step 1", rollout.Sampling{}, 1)
	if err == nil || !strings.Contains(err.Error(), "prompt is too long") || srv.Count() != 2 {
		t.Fatalf("err %v after %d requests", err, srv.Count())
	}
	if off, _ := c.PrefillDisabled(); off {
		t.Fatal("prefill disabled by an unrelated 400")
	}
}

// Concurrent continuations on a server without prefill all succeed, and the
// continuer ends up on user turns.
func TestContinuerConcurrentFallback(t *testing.T) {
	srv := fakeserver.New(echoTail)
	srv.NoPrefill = true
	defer srv.Close()
	c := &rollout.Continuer{Policy: rollout.NewOpenAIPolicy(rollout.EndpointConfig{BaseURL: srv.BaseURL(), Model: "m"})}
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Continue(context.Background(), []rollout.Message{{Role: "user", Content: "q"}}, "Step 1", rollout.Sampling{}, int64(i))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if off, why := c.PrefillDisabled(); !off || !strings.Contains(why, "HTTP 400") {
		t.Fatalf("prefill disabled %v (%q)", off, why)
	}
	// At most one refused prefill per call, at least one overall.
	if n := srv.Count(); n < 17 || n > 32 {
		t.Fatalf("%d requests", n)
	}
}

// policyFunc adapts a function to rollout.Policy.
type policyFunc func(rollout.Request) rollout.Response

func (f policyFunc) Sample(_ context.Context, r rollout.Request) (rollout.Response, error) {
	return f(r), nil
}

// A server whose template trims the final message echoes it without its
// trailing line break; the echo is still cut, and only in prefill mode.
func TestContinuerEchoWithoutTrailingSpace(t *testing.T) {
	const prefix = "Step 1: 2 + 2 = 5\nWait, that is wrong.\n"
	echo := policyFunc(func(r rollout.Request) rollout.Response {
		last := r.Messages[len(r.Messages)-1].Content
		return rollout.Response{Text: strings.TrimRight(last, "\n") + " Step 1: 2 + 2 = 4"}
	})
	for _, tc := range []struct {
		mode, want string
		echoed     bool
	}{
		{rollout.ContinuePrefill, " Step 1: 2 + 2 = 4", true},
		{rollout.ContinueUserTurn, rollout.DefaultContinueInstruction + " Step 1: 2 + 2 = 4", false},
	} {
		c := &rollout.Continuer{Policy: echo, Mode: tc.mode}
		out, err := c.Continue(context.Background(), []rollout.Message{{Role: "user", Content: "2 + 2?"}}, prefix, rollout.Sampling{}, 1)
		if err != nil || out.Text != tc.want || out.EchoedPrefix != tc.echoed {
			t.Errorf("%s: text %q echoed %v err %v", tc.mode, out.Text, out.EchoedPrefix, err)
		}
	}
}
