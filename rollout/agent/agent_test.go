package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/internal/envtest"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/env"
)

// script is a policy that plays the counting game's gold path, with a
// chosen action at some steps.
type script struct {
	at   map[int]string // step -> action instead of the gold one
	fail map[int]error
}

func (s script) Sample(ctx context.Context, req rollout.Request) (rollout.Response, error) {
	k := 0
	for _, m := range req.Messages {
		if m.Role == "assistant" {
			k++
		}
	}
	if err := s.fail[k]; err != nil {
		return rollout.Response{}, err
	}
	// The game's gold action is one past the count so far.
	n := 0
	for _, m := range req.Messages {
		if m.Role == "user" && strings.HasSuffix(m.Content, ".") && len(m.Content) < 6 {
			fmt.Sscanf(m.Content, "%d.", &n)
		}
		if strings.HasPrefix(m.Content, "Back to ") {
			fmt.Sscanf(m.Content, "Back to %d.", &n)
		}
	}
	a := fmt.Sprintf("say %d", n+1)
	if v, ok := s.at[k]; ok {
		a = v
	}
	return rollout.Response{Text: "I will count.\nAction: " + a, FinishReason: "stop", Model: "script"}, nil
}

func newEnv(t *testing.T, timeouts time.Duration) (*envtest.Server, *env.Client) {
	t.Helper()
	srv := envtest.New(t.Cleanup)
	c, err := env.NewClient(env.Config{URL: srv.URL, Env: "counting", MaxSessions: 2, StepTimeout: timeouts, ResetTimeout: timeouts})
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func TestRun(t *testing.T) {
	srv, c := newEnv(t, 2*time.Second)
	count := func(v int, opts map[string]any) env.Task {
		return env.Task{Env: "counting", Name: "count", Variation: v, Options: opts}
	}
	tests := []struct {
		name     string
		task     env.Task
		policy   rollout.Policy
		opts     Options
		end      string
		reason   string // a substring of Reason
		steps    int
		success  string // "true", "false", "nil"
		reward   string
		badStep  int
		badSig   string
		messages int
	}{
		{name: "oracle solves", task: count(2, nil), opts: Options{Oracle: true}, end: EndDone, steps: 3, success: "true", reward: "1", badStep: -1, messages: 2 + 6},
		{name: "policy solves", task: count(2, nil), policy: script{}, end: EndDone, steps: 3, success: "true", reward: "1", badStep: -1, messages: 8},
		{name: "wrong move at step 1 is invalid and off gold", task: count(2, nil), policy: script{at: map[int]string{1: "say 7"}}, end: EndDone, steps: 4, success: "true", reward: "1", badStep: 1, badSig: SignalInvalid, messages: 10},
		{name: "unsay at step 2 drops the reward", task: count(3, nil), policy: script{at: map[int]string{2: "unsay"}}, opts: Options{Oracle: false}, end: EndDone, steps: 6, success: "true", reward: "1", badStep: 2, badSig: SignalRewardDrop, messages: 14},
		{name: "max steps", task: count(9, nil), policy: script{}, opts: Options{MaxSteps: 3}, end: EndMaxSteps, steps: 3, success: "false", reward: "0.3", badStep: -1, messages: 8},
		{name: "http 500 at step 1", task: count(3, map[string]any{"fault": "500", "fault_step": 1}), policy: script{}, end: EndEnvError, reason: "500", steps: 2, success: "false", reward: "0.25", badStep: -1, messages: 5},
		{name: "hang at step 0", task: count(3, map[string]any{"fault": "hang"}), policy: script{}, end: EndEnvError, reason: "no complete answer within 2s", steps: 1, success: "nil", reward: "nil", badStep: -1, messages: 3},
		{name: "garbage at step 2", task: count(3, map[string]any{"fault": "garbage", "fault_step": 2}), policy: script{}, end: EndEnvError, reason: "JSON", steps: 3, success: "false", reward: "0.5", badStep: -1, messages: 7},
		{name: "reset fails", task: count(3, map[string]any{"fault": "reset-500"}), policy: script{}, end: EndEnvError, reason: "reset", steps: 0, success: "nil", reward: "nil", badStep: -1, messages: 0},
		{name: "policy fails", task: count(3, nil), policy: script{fail: map[int]error{1: errors.New("endpoint refused: 400")}}, end: EndPolicyError, reason: "step 1: sample: endpoint refused", steps: 1, success: "false", reward: "0.25", badStep: -1, messages: 4},
		{name: "unknown task", task: env.Task{Env: "counting", Name: "boil"}, policy: script{}, end: EndEnvError, reason: "unknown task", badStep: -1, success: "nil", reward: "nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.ListActions = true
			ep := Run(context.Background(), c, tt.policy, tt.task, 0, tt.opts)
			if ep.End != tt.end || !strings.Contains(ep.Reason, tt.reason) {
				t.Fatalf("end %q reason %q, want %q with %q", ep.End, ep.Reason, tt.end, tt.reason)
			}
			if len(ep.Steps) != tt.steps {
				t.Errorf("%d steps %q, want %d", len(ep.Steps), ep.Actions(), tt.steps)
			}
			if got := fmtBool(ep.Success); got != tt.success {
				t.Errorf("success %s, want %s", got, tt.success)
			}
			if got := fmtFloat(ep.Reward); got != tt.reward {
				t.Errorf("reward %s, want %s", got, tt.reward)
			}
			k, sig := FirstBadStep(ep, nil)
			if k != tt.badStep || sig != tt.badSig {
				t.Errorf("first bad step %d (%s), want %d (%s)", k, sig, tt.badStep, tt.badSig)
			}
			if tt.messages > 0 && len(ep.Messages) != tt.messages {
				t.Errorf("%d messages, want %d", len(ep.Messages), tt.messages)
			}
			// Every step's message is the assistant's, its observation after.
			for i, s := range ep.Steps {
				if ep.Messages[s.Message].Role != "assistant" {
					t.Errorf("step %d: message %d is %s", i, s.Message, ep.Messages[s.Message].Role)
				}
			}
			if tt.opts.Oracle && ep.Model != "oracle" {
				t.Errorf("model %q", ep.Model)
			}
		})
	}
	// Sessions are closed on every path, the hung one included.
	deadline := time.Now().Add(5 * time.Second)
	for {
		opened, closed, open, _, _ := srv.Stats()
		if open == 0 && opened == closed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions: %d opened, %d closed, %d open", opened, closed, open)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := c.Stats(); st.Opened != st.Closed {
		t.Errorf("client: %+v", st)
	}
}

func TestRunPrompt(t *testing.T) {
	_, c := newEnv(t, 2*time.Second)
	ep := Run(context.Background(), c, script{}, env.Task{Env: "counting", Name: "count", Variation: 0}, 0, Options{ListActions: true, Seed: 3})
	want := []string{
		"system: " + DefaultSystem,
		"user: Count from 1 to 1, one number per action.\n\nActions you can take:\n- say NUMBER\n- unsay",
		"assistant: I will count.\nAction: say 1",
		"user: 1.",
	}
	var got []string
	for _, m := range ep.Messages {
		got = append(got, m.Role+": "+m.Content)
	}
	if strings.Join(got, "\n|") != strings.Join(want, "\n|") {
		t.Fatalf("messages:\n%q\nwant\n%q", got, want)
	}
	if ep.Steps[0].Action != "say 1" || ep.Model != "script" || ep.Seed != rollout.DeriveSeed(3, ep.Task.ID(), 0, 0) {
		t.Fatalf("step %+v model %q seed %d", ep.Steps[0], ep.Model, ep.Seed)
	}
	in := ep.Info(nil)
	if in.Steps != 1 || in.Success == nil || !*in.Success || in.End != EndDone || in.FirstBadStep != nil || in.Actions[0] != "say 1" {
		t.Fatalf("info %+v", in)
	}
}

func TestRunCanceled(t *testing.T) {
	srv, c := newEnv(t, 30*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	ep := Run(ctx, c, script{}, env.Task{Env: "counting", Name: "count", Variation: 3, Options: map[string]any{"fault": "hang"}}, 0, Options{})
	if ep.End != EndCanceled {
		t.Fatalf("end %q reason %q", ep.End, ep.Reason)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, open, _, _ := srv.Stats(); open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the canceled episode's session stayed open")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestParseAction(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"open door to kitchen", "open door to kitchen"},
		{"  look around  \n", "look around"},
		{"I should look first.\nAction: look around", "look around"},
		{"Thought: x\nACTION: `open door`\nbecause it is closed", "open door"},
		{"action: \"focus on thermometer\"", "focus on thermometer"},
		{"Let me think.\n\n> go to hallway", "go to hallway"},
		{"- pick up apple", "pick up apple"},
		{"", ""},
		{"**take key**", "take key"},
	} {
		if got := ParseAction(tt.in); got != tt.want {
			t.Errorf("ParseAction(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestReplay(t *testing.T) {
	_, c := newEnv(t, 2*time.Second)
	ctx := context.Background()
	s, err := c.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	task := env.Task{Env: "counting", Name: "count", Variation: 3}
	_, rs, err := Replay(ctx, s, task, []Step{{Action: "say 1"}, {Action: "say 2"}})
	if err != nil || len(rs) != 2 || rs[1].Text != "2." {
		t.Fatalf("replay: %v %+v", err, rs)
	}
	// A replay that ends the episode early fails.
	_, _, err = Replay(ctx, s, env.Task{Env: "counting", Name: "count", Variation: 0}, []Step{{Action: "say 1"}, {Action: "say 2"}})
	if err == nil || !strings.Contains(err.Error(), "ended before the last of 2 actions") {
		t.Fatalf("err %v", err)
	}
}

func fmtBool(b *bool) string {
	if b == nil {
		return "nil"
	}
	return fmt.Sprint(*b)
}

func fmtFloat(f *float64) string {
	if f == nil {
		return "nil"
	}
	return fmt.Sprintf("%.3g", *f)
}

func TestBranch(t *testing.T) {
	_, c := newEnv(t, 2*time.Second)
	ctx := context.Background()
	task := env.Task{Env: "counting", Name: "count", Variation: 3}
	base := Run(ctx, c, script{at: map[int]string{2: "say 9", 3: "say 9", 4: "say 9"}}, task, 0, Options{Oracle: false, MaxSteps: 5})
	k, sig := FirstBadStep(base, nil)
	if base.End != EndMaxSteps || k != 2 || sig != SignalInvalid {
		t.Fatalf("base: end %s, first bad %d %s, actions %q", base.End, k, sig, base.Actions())
	}
	base.Gold = envtest.Gold(3)
	for _, tt := range []struct {
		name   string
		oracle bool
		policy rollout.Policy
	}{
		{"oracle", true, nil},
		{"policy", false, script{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			br := Branch(ctx, c, tt.policy, base, k, 7, tt.oracle, Options{MaxSteps: 10})
			if br.End != EndDone || br.Success == nil || !*br.Success {
				t.Fatalf("branch: end %s (%s), actions %q", br.End, br.Reason, br.Actions())
			}
			if got := strings.Join(br.Actions(), ","); got != "say 1,say 2,say 3,say 4" {
				t.Fatalf("actions %s", got)
			}
			// The first two steps are base's, replayed; the messages up to
			// them are base's.
			for i := 0; i < 5; i++ {
				if br.Messages[i].Content != base.Messages[i].Content {
					t.Errorf("message %d: %q, base %q", i, br.Messages[i].Content, base.Messages[i].Content)
				}
			}
			if fmtFloat(br.Reward) != "1" || br.Index != 7 {
				t.Errorf("reward %s index %d", fmtFloat(br.Reward), br.Index)
			}
		})
	}
}

// A session a killed run left open is given back when a run opens it again
// by name: the server opens no new one, and it is closed at the end.
func TestRunReclaimsNamedSession(t *testing.T) {
	srv, c := newEnv(t, 2*time.Second)
	ctx := context.Background()
	task := env.Task{Env: "counting", Name: "count", Variation: 1}
	name := func(t env.Task, index int, what string) string {
		return fmt.Sprintf("run-x/%s/%d/%s", t.ID(), index, what)
	}
	// The killed run: reset, one step, never closed.
	s, err := c.OpenNamed(ctx, name(task, 0, "episode"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reset(ctx, task); err != nil {
		t.Fatal(err)
	}
	if opened, _, open, _, _ := srv.Stats(); opened != 1 || open != 1 {
		t.Fatalf("%d opened, %d open", opened, open)
	}
	ep := Run(ctx, c, script{}, task, 0, Options{SessionName: name})
	if ep.End != EndDone || fmtBool(ep.Success) != "true" {
		t.Fatalf("end %s %s", ep.End, ep.Reason)
	}
	if opened, closed, open, _, _ := srv.Stats(); opened != 1 || closed != 1 || open != 0 {
		t.Fatalf("server: %d opened, %d closed, %d open: the left session was not reused", opened, closed, open)
	}
	if _, err := c.OpenNamed(ctx, ""); err == nil {
		t.Error("an empty episode id was accepted")
	}
}
