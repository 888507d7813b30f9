package agents

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/rollout"
	"github.com/redraft/redraft/rollout/agent"
)

// ReflectorSystem is the reflector's system message (re-rest). Its start is
// envtest.ReflectorSystem, which the tests' fake reflector looks for.
const ReflectorSystem = "You repair an agent's failed attempts at tasks in a text-based world. You read the task, what the agent did and what the world answered, and write a corrected attempt."

// maxObservation bounds an observation quoted to the reflector, in bytes.
const maxObservation = 400

// ReflectorPrompt is what the reflector reads about a failed episode: the
// task as the agent saw it, each action with the world's answer, and the
// outcome the environment reported.
func ReflectorPrompt(ep *agent.Episode) string {
	var b strings.Builder
	first := ""
	for _, m := range ep.Messages[:ep.PromptLen()] {
		if m.Role == "user" {
			first = m.Content
		}
	}
	b.WriteString("The task, as the agent first saw it:\n")
	b.WriteString(first)
	b.WriteString("\n\nThe agent's failed attempt, one action per line with what the world answered:\n")
	for i, s := range ep.Steps {
		obs := strings.Join(strings.Fields(s.Observation), " ")
		if len(obs) > maxObservation {
			obs = obs[:maxObservation] + "..."
		}
		fmt.Fprintf(&b, "%d. %s -> %s\n", i+1, s.ActionText(), obs)
	}
	b.WriteString("\nOutcome: ")
	switch {
	case ep.End == agent.EndMaxSteps:
		fmt.Fprintf(&b, "the agent ran out of steps (%d)", len(ep.Steps))
	default:
		b.WriteString("the episode ended without solving the task")
	}
	if ep.Reward != nil {
		fmt.Fprintf(&b, "; reward %.3g", *ep.Reward)
	}
	b.WriteString(".\n\nWrite a corrected attempt: the whole sequence of actions from the start, one action per line, in the world's command language, and nothing else.")
	return b.String()
}

var numbered = regexp.MustCompile(`^\s*(\d+[.)]|[-*>])\s*`)

// ParseRepair reads the reflector's answer as actions: one per non-empty
// line, without list numbering or bullets (then as ParseAction reads a
// line), at most max.
func ParseRepair(answer string, max int) []string {
	var out []string
	for _, line := range strings.Split(answer, "\n") {
		line = numbered.ReplaceAllString(line, "")
		if a := agent.ParseAction(line); a != "" && !strings.HasPrefix(a, "```") {
			out = append(out, a)
		}
		if len(out) == max {
			break
		}
	}
	return out
}

// reflect makes an unsuccessful episode's Re-ReST trajectory: the
// reflector's repaired actions, played from the task's start in a fresh
// session, kept when the environment says they solve it.
func (j *job) reflect(ctx context.Context, rec agent.TaskRecord, ep *agent.Episode) (*pipeline.Trajectory, string) {
	e := j.cfg.Environment
	switch {
	case ep.Failed():
		return nil, "the episode failed: " + ep.Reason
	case succeeded(ep):
		return nil, "solved: nothing to repair"
	case len(ep.Steps) == 0:
		return nil, "no action taken"
	}
	req := rollout.Request{Messages: []rollout.Message{{Role: "system", Content: ReflectorSystem}, {Role: "user", Content: ReflectorPrompt(ep)}},
		Seed: rollout.DeriveSeed(j.cfg.Seed, rec.ID, ep.Index, 1<<20)}
	resp, err := j.reflector.Sample(ctx, req)
	if err != nil {
		return nil, "reflector: " + err.Error()
	}
	actions := ParseRepair(resp.Text, e.MaxSteps)
	if len(actions) == 0 {
		return nil, "the reflector wrote no action"
	}
	o := j.opts
	o.Script, o.Model = actions, e.Reflector.Model
	if resp.Model != "" {
		o.Model = resp.Model
	}
	repaired := agent.Run(ctx, j.env, nil, rec.Task, ep.Index, o)
	ok := succeeded(repaired)
	switch {
	case repaired.Failed():
		return nil, "the repaired attempt failed: " + repaired.Reason
	case !ok && e.Keep != "all":
		return nil, fmt.Sprintf("the repaired attempt (%d actions) did not solve the task (%s)", len(actions), repaired.End)
	}
	t := j.newTrajectory(rec, ep, RecipeNameReReST)
	b := builder{t}
	b.prompt(repaired)
	b.steps(repaired, 0, len(repaired.Steps), pipeline.SegAction, true)
	r := 0.0
	if ok {
		r = 1
	}
	t.Reward = &r
	var first *int
	if k, _ := agent.FirstBadStep(ep, e.BadStep); k >= 0 {
		first = &k
	}
	t.Metadata = mustJSON(map[string]any{"episode": ep.Info(e.BadStep), "revision": map[string]any{
		"recipe": RecipeNameReReST, "first_bad_step": first, "branch": "reflector", "branch_success": ok, "branch_steps": len(repaired.Steps),
		"branch_end": repaired.End, "branch_actions": repaired.Actions(), "reflector_model": o.Model, "reflection": resp.Text,
	}})
	return t, ""
}
