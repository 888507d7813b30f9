package pipeline

import (
	"strings"
	"testing"
)

func TestAgentRConfig(t *testing.T) {
	const base = "source: {kind: tasks, path: t.jsonl}\nendpoint: {base_url: http://h/v1, model: m}\noutput: {dir: o}\n"
	const judge = "step_judge: {base_url: http://j/v1, model: jm}"
	for _, tt := range []struct{ name, yaml, want string }{
		{"no judge", base + "agent_r: {steps: lines}\n", "agent_r.step_judge: base_url and model are required"},
		{"judge without model", base + "agent_r: {step_judge: {base_url: http://j/v1}}\n", "agent_r.step_judge"},
		{"bad steps", base + "agent_r: {" + judge + ", steps: words}\n", `agent_r.steps: "words"`},
		{"bad continuation", base + "agent_r: {" + judge + ", continuation: magic}\n", `agent_r.continuation: "magic"`},
		{"bad keep", base + "agent_r: {" + judge + ", keep: best}\n", `agent_r.keep: "best"`},
		{"bad branches", base + "agent_r: {" + judge + ", branches: -1}\n", "agent_r.branches"},
		{"empty revision", base + "agent_r: {" + judge + ", revisions: [ok, ' ']}\n", "agent_r.revisions[1]: empty"},
		{"template without steps", base + "agent_r: {" + judge + ", judge_template: {user: 'judge {question}'}}\n", "{steps}"},
		{"with critique", base + "critique: {mode: verdict}\nsampling: {n: 2}\nagent_r: {" + judge + "}\n", "critique: an agent_r job does not read this section"},
		// What the job would not read is refused, not ignored.
		{"output.tokenizer", strings.Replace(base, "output: {dir: o}", "output: {dir: o, tokenizer: t.json}", 1) + "agent_r: {" + judge + "}\n", "output.tokenizer: an agent_r job does not read this key"},
		{"advantage", base + "advantage: {eps: 0.1}\nagent_r: {" + judge + "}\n", "advantage: an agent_r job does not read this section"},
		{"reward.weights", base + "reward: {weights: {verifiable: 1}}\nagent_r: {" + judge + "}\n", "reward.weights: an agent_r job does not read this key"},
		{"pipeline", base + "agent_r: {" + judge + "}\npipeline: {workers: 2}\n", "pipeline: an agent_r job does not read this section"},
		{"episode", base + "episode: {pairs: true}\nagent_r: {" + judge + "}\n", "episode: an agent_r job does not read this section"},
		{"rollouts without endpoint", "source: {kind: rollouts, path: r.jsonl}\noutput: {dir: o}\nagent_r: {" + judge + "}\n", "agent_r needs an endpoint"},
		{"unknown key", base + "agent_r: {" + judge + ", keeep: all}\n", "agent_r.keeep: unknown key (did you mean keep?)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("c.yaml", strings.NewReader(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	c, err := ParseConfig("c.yaml", strings.NewReader(base+"agent_r: {"+judge+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a := c.AgentR; a.Steps != "lines" || a.MaxSteps != 40 || a.Continuation != "auto" || a.Branches != 1 || a.Keep != "correct" {
		t.Fatalf("defaults %+v", a)
	}
	// The judge's URL is not part of the run's identity; its model and the
	// recipe's settings are.
	hash := func(y string) string {
		c, err := ParseConfig("c.yaml", strings.NewReader(y))
		if err != nil {
			t.Fatal(err)
		}
		_, h, err := c.Identity()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	a := hash(base + "agent_r: {" + judge + "}\n")
	if a != hash(base+"agent_r: {step_judge: {base_url: http://other/v1, model: jm}}\n") {
		t.Error("the judge's URL changed the identity")
	}
	for _, y := range []string{
		base + "agent_r: {step_judge: {base_url: http://j/v1, model: other}}\n",
		base + "agent_r: {" + judge + ", keep: all}\n",
		base + "agent_r: {" + judge + ", continuation: prefill}\n",
		base,
	} {
		if hash(y) == a {
			t.Errorf("identity unchanged by %q", y)
		}
	}
}
