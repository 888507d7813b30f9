package env

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redraft/redraft/internal/envtest"
)

// The tests in this file run the real environment servers that
// scripts/env-server.sh starts (a server per test, in a temporary run
// directory, stopped at the end), or those at REDRAFT_SCIENCEWORLD_URL and
// REDRAFT_TEXTWORLD_EXPRESS_URL when set. Without Java or the venv they
// are skipped with a loud message; with REDRAFT_REQUIRE_ENVS=1
// (scripts/test.sh) that is a failure, and the script builds the venv.

const repoRoot = "../.."

// envServer returns the base URL of a running server for name
// (scienceworld, textworld-express, example): envtest.Start.
func envServer(t *testing.T, name string) string {
	t.Helper()
	return envtest.Start(t, repoRoot, name)
}

// serverSessions is the server's GET /sessions: the sessions it holds.
func serverSessions(t *testing.T, url string) int {
	t.Helper()
	return envtest.Sessions(t, url)
}

// episode is the outcome of playing actions through a session.
type episode struct {
	obs     Observation
	scale   float64 // the score that solves a task (ScienceWorld 100, others 1)
	spare   int     // how many gold actions may follow the solving one
	steps   []StepResult
	total   float64
	invalid int
}

func (e episode) last() StepResult { return e.steps[len(e.steps)-1] }

// startInfo is the part of the bundled servers' reset info the tests read.
type startInfo struct {
	TaskDescription string  `json:"task_description"`
	Score           float64 `json:"score"`
}

func (e episode) info() startInfo {
	var i startInfo
	json.Unmarshal(e.obs.Info, &i)
	return i
}

// firstText checks a bundled server's first observation: the task
// description, a blank line, the room.
func firstText(ep episode) string {
	d := ep.info().TaskDescription
	if d == "" || !strings.HasPrefix(ep.obs.Text, d+"\n\n") || len(ep.obs.Text) < len(d)+20 || len(ep.obs.Actions) < 5 {
		return fmt.Sprintf("first observation %q, info %s, actions %q", ep.obs.Text, ep.obs.Info, ep.obs.Actions)
	}
	return ""
}

// play resets task in a fresh session, takes actions (nil: the gold ones)
// and closes the session.
func play(ctx context.Context, c *Client, task Task, actions []string) (ep episode, err error) {
	s, err := c.Open(ctx)
	if err != nil {
		return ep, err
	}
	defer func() {
		if cerr := s.Close(ctx); err == nil {
			err = cerr
		}
	}()
	if ep.obs, err = s.Reset(ctx, task); err != nil {
		return ep, err
	}
	ep.scale = 1
	if task.Env == "scienceworld" {
		// Its gold paths may go on after the task is solved (a "wait", a
		// last "look around"); the episode ends when it is.
		ep.scale, ep.spare = 100, 2
	}
	if actions == nil {
		actions = ep.obs.Gold
	}
	for _, a := range actions {
		r, err := s.Step(ctx, Action{Text: a})
		if err != nil {
			return ep, err
		}
		ep.steps = append(ep.steps, r)
		if r.Reward != nil {
			ep.total += *r.Reward
		}
		if r.Invalid {
			ep.invalid++
		}
		if r.Done {
			break
		}
	}
	return ep, nil
}

// solved says what is wrong with an episode that should have solved its
// task, "" when nothing.
func solved(ep episode) string {
	switch {
	case len(ep.obs.Gold) == 0:
		return "no gold actions"
	case len(ep.steps) < len(ep.obs.Gold)-ep.spare:
		return fmt.Sprintf("done after %d of %d gold actions", len(ep.steps), len(ep.obs.Gold))
	case !ep.last().Done || ep.last().Success == nil || !*ep.last().Success:
		return "last step: " + describe(ep.last())
	case math.Abs(ep.total-(1-ep.info().Score/ep.scale)) > 1e-9:
		// The score the reset state already has is nobody's reward.
		return fmt.Sprintf("rewards add up to %v, want 1 - %v (the reset's score)", ep.total, ep.info().Score/ep.scale)
	case ep.invalid > 0:
		return fmt.Sprintf("%d gold actions reported invalid", ep.invalid)
	}
	return ""
}

// TestExampleServer runs scripts/envs/example_env.py (docs/environments.md's
// example, standard library only) through the Go client: the gold actions
// solve it, a wrong command is invalid, a wrong number ends it unsolved,
// the act tool works, an unknown task is the server's 400, and every
// session ends closed on the server.
func TestExampleServer(t *testing.T) {
	url := envServer(t, "example")
	c := newClient(t, Config{URL: url, Env: "example", StepTimeout: 10 * time.Second})
	ctx := context.Background()
	for v := range 3 {
		ep, err := play(ctx, c, Task{Env: "example", Name: "count", Variation: v, Seed: 1, Oracle: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if why := solved(ep); why != "" {
			t.Errorf("variation %d: %s", v, why)
		}
	}
	ep, err := play(ctx, c, Task{Env: "example", Variation: 2}, []string{"say 1", "shout 2", "say 3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ep.steps) != 3 || !ep.steps[1].Invalid || ep.steps[1].Done || !ep.last().Done || *ep.last().Success || ep.obs.Gold != nil {
		t.Errorf("a wrong command, then a wrong number: %+v", ep)
	}

	s, _ := c.Open(ctx)
	obs, err := s.Reset(ctx, Task{Env: "example", Options: map[string]any{"tools": true}})
	if err != nil || len(obs.Tools) != 1 || obs.Tools[0].Function.Name != "act" {
		t.Fatalf("tools: %+v, %v", obs.Tools, err)
	}
	r, err := s.Step(ctx, Action{Tool: &ToolCall{ID: "call_1", Name: "act", Arguments: `{"command": "say 1"}`}})
	if err != nil || !r.Done || !*r.Success {
		t.Errorf("act tool: %s, %v", describe(r), err)
	}
	if _, err := s.Reset(ctx, Task{Env: "example", Variation: 1, Options: map[string]any{"tools": true}}); err != nil {
		t.Fatal(err)
	}
	r, err = s.Step(ctx, Action{Tool: &ToolCall{ID: "call_2", Name: "fly", Arguments: `{}`}})
	if err != nil || !r.Invalid || r.ToolError != "tool_not_found: no tool 'fly' here" || r.Text != "Error: no tool 'fly' here" {
		t.Errorf("an unknown tool: %s, %v", describe(r), err)
	}
	s.Close(ctx)

	_, err = play(ctx, c, Task{Env: "example", Name: "juggle"}, nil)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindStatus || e.Status != 400 || !strings.Contains(err.Error(), `HTTP 400: "unknown task 'juggle'`) {
		t.Errorf("an unknown task: %v", err)
	}
	allClosed(t, c, nil)
	if n := serverSessions(t, url); n != 0 {
		t.Errorf("the server holds %d sessions", n)
	}
}

// TestScienceWorld plays real ScienceWorld tasks through the Go client:
// the gold actions (the oracle) solve each (success, rewards adding up to
// 1); an unknown command is reported invalid and changes nothing; focusing
// on the wrong thing ends the episode unsolved with a negative reward; two
// sessions played at once stay independent; the act tool takes commands;
// and no session is left open on the server.
func TestScienceWorld(t *testing.T) {
	url := envServer(t, "scienceworld")
	c := newClient(t, Config{URL: url, Env: "scienceworld", MaxSessions: 2})
	ctx := context.Background()
	tasks := []Task{
		{Env: "scienceworld", Name: "lifespan-longest-lived", Variation: 0, Seed: 1, Oracle: true},
		{Env: "scienceworld", Name: "find-living-thing", Variation: 2, Seed: 2, Oracle: true},
		{Env: "scienceworld", Name: "power-component", Variation: 1, Seed: 3, Oracle: true},
	}
	for _, task := range tasks {
		start := time.Now()
		ep, err := play(ctx, c, task, nil)
		if err != nil {
			t.Fatalf("%s: %v", task.ID(), err)
		}
		if why := solved(ep); why != "" {
			t.Errorf("%s: %s", task.ID(), why)
		}
		if why := firstText(ep); why != "" {
			t.Errorf("%s: %s", task.ID(), why)
		}
		t.Logf("%s: %d gold actions, solved in %v", task.ID(), len(ep.obs.Gold), time.Since(start).Round(time.Millisecond))
	}

	// Wrong moves: a command it does not know, then focusing on the air
	// (not the task's substance), which fails the task.
	ep, err := play(ctx, c, Task{Env: "scienceworld", Name: "boil", Variation: 0}, []string{"fly to the moon", "focus on air"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ep.steps) != 2 || !ep.steps[0].Invalid || ep.steps[0].Done || *ep.steps[0].Reward != 0 || ep.obs.Gold != nil {
		t.Errorf("an unknown command: %+v", ep.steps)
	}
	if last := ep.last(); last.Invalid || !last.Done || *last.Success || *last.Reward >= 0 {
		t.Errorf("focusing on the air: %s", describe(last))
	}

	// Two sessions at once on the same task: one stumbles, the other
	// solves it; then the first solves it too.
	task := tasks[1]
	independent(t, ctx, c, task, "look at the moon")

	// The act tool.
	s, _ := c.Open(ctx)
	if _, err := s.Reset(ctx, Task{Env: "scienceworld", Name: "boil", Options: map[string]any{"tools": true}}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Step(ctx, Action{Tool: &ToolCall{ID: "c1", Name: "act", Arguments: `{"command": "open door to kitchen"}`}})
	if err != nil || r.Invalid || !strings.Contains(r.Text, "door") {
		t.Errorf("act: %s, %v", describe(r), err)
	}
	s.Close(ctx)

	// An unknown task and a variation out of range: the server's 400.
	for _, bad := range []Task{{Env: "scienceworld", Name: "juggle"}, {Env: "scienceworld", Name: "boil", Variation: 100000}} {
		if _, err := play(ctx, c, bad, nil); !isKind(err, KindStatus) || !strings.Contains(err.Error(), "HTTP 400") {
			t.Errorf("%s: %v", bad.ID(), err)
		}
	}
	allClosed(t, c, nil)
	if n := serverSessions(t, url); n != 0 {
		t.Errorf("the server holds %d sessions", n)
	}
}

// TestTextWorldExpress: the same for TextWorldExpress's games.
func TestTextWorldExpress(t *testing.T) {
	url := envServer(t, "textworld-express")
	c := newClient(t, Config{URL: url, Env: "textworld-express", MaxSessions: 2})
	ctx := context.Background()
	tasks := []Task{
		{Env: "textworld-express", Name: "coin", Variation: 1, Seed: 1, Oracle: true, Options: map[string]any{"params": "numLocations=4,includeDoors=1"}},
		{Env: "textworld-express", Name: "cookingworld", Variation: 3, Seed: 2, Oracle: true},
		{Env: "textworld-express", Name: "mapreader", Variation: 5, Seed: 3, Oracle: true},
	}
	for _, task := range tasks {
		ep, err := play(ctx, c, task, nil)
		if err != nil {
			t.Fatalf("%s: %v", task.ID(), err)
		}
		if why := solved(ep); why != "" {
			t.Errorf("%s: %s", task.ID(), why)
		}
		if why := firstText(ep); why != "" {
			t.Errorf("%s: %s", task.ID(), why)
		}
		t.Logf("%s: %d gold actions", task.ID(), len(ep.obs.Gold))
	}
	ep, err := play(ctx, c, tasks[0], []string{"fly to the moon", "inventory"})
	if err != nil {
		t.Fatal(err)
	}
	if !ep.steps[0].Invalid || ep.steps[0].Done || *ep.steps[0].Reward != 0 || ep.steps[1].Invalid {
		t.Errorf("an unknown command, then a known one: %+v", ep.steps)
	}
	independent(t, ctx, c, tasks[1], "eat the moon")
	if _, err := play(ctx, c, Task{Env: "textworld-express", Name: "chess"}, nil); !isKind(err, KindStatus) || !strings.Contains(err.Error(), "unknown TextWorldExpress game") {
		t.Errorf("an unknown game: %v", err)
	}
	allClosed(t, c, nil)
	if n := serverSessions(t, url); n != 0 {
		t.Errorf("the server holds %d sessions", n)
	}
}

// independent plays task in two sessions at once: A takes the gold actions
// while B makes the wrong move each time; A ends solved, B's score has not
// moved, and B then solves it from where it stands.
func independent(t *testing.T, ctx context.Context, c *Client, task Task, wrong string) {
	t.Helper()
	a, err := c.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	b, err := c.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	var obsA, obsB Observation
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() { obsA, errA = a.Reset(ctx, task) })
	wg.Go(func() { obsB, errB = b.Reset(ctx, task) })
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if obsA.Text != obsB.Text {
		t.Errorf("the same task starts differently:\n%q\n%q", obsA.Text, obsB.Text)
	}
	var lastA StepResult
	var bReward float64
	for i, act := range obsA.Gold {
		var rb StepResult
		wg.Go(func() { lastA, errA = a.Step(ctx, Action{Text: act}) })
		wg.Go(func() { rb, errB = b.Step(ctx, Action{Text: wrong}) })
		wg.Wait()
		if errA != nil || errB != nil {
			t.Fatalf("step %d: %v, %v", i, errA, errB)
		}
		if rb.Reward != nil {
			bReward += *rb.Reward
		}
		if rb.Done || !rb.Invalid && *rb.Reward != 0 {
			t.Fatalf("B's wrong move %d: %s", i, describe(rb))
		}
	}
	if !lastA.Done || !*lastA.Success {
		t.Errorf("A: %s", describe(lastA))
	}
	if bReward != 0 {
		t.Errorf("B got %v for its wrong moves", bReward)
	}
	var lastB StepResult
	for _, act := range obsB.Gold {
		if lastB, errB = b.Step(ctx, Action{Text: act}); errB != nil {
			t.Fatal(errB)
		}
	}
	if !lastB.Done || !*lastB.Success {
		t.Errorf("B after its wrong moves, playing the gold actions: %s", describe(lastB))
	}
}
