package pipeline

import (
	"fmt"
	"strings"
	"testing"

	"github.com/redraft/redraft/rollout"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "source: {kind: rollouts, path: x}\noutput: {dir: o}\nsampling: {temprature: 0.5}\n", "line 3: sampling.temprature: unknown key (did you mean temperature?)"},
		{"unknown top-level key", "source: {kind: rollouts, path: x}\noutput: {dir: o}\nrewards: {}\n", "line 3: rewards: unknown key (did you mean reward?)"},
		{"missing kind", "source: {path: x}\noutput: {dir: o}\n", "source.kind: missing"},
		{"tasks need endpoint", "source: {kind: tasks, path: x}\noutput: {dir: o}\n", "needs an endpoint"},
		{"missing model", "source: {kind: tasks, path: x}\nendpoint: {base_url: http://h}\noutput: {dir: o}\n", "endpoint.model: missing"},
		{"bad estimator", "source: {kind: rollouts, path: x}\noutput: {dir: o}\nadvantage: {estimator: ppo}\n", "unknown advantage estimator"},
		{"bad top_p", "source: {kind: rollouts, path: x}\noutput: {dir: o}\nsampling: {top_p: 0}\n", "sampling.top_p"},
		{"bad duration", "source: {kind: tasks, path: x}\nendpoint: {base_url: u, model: m, timeout: soon}\noutput: {dir: o}\n", "not a duration"},
		{"bad size", "source: {kind: rollouts, path: x}\noutput: {dir: o, shard_bytes: lots}\n", "not a size"},
		{"missing output", "source: {kind: rollouts, path: x}\n", "output.dir: missing"},
		{"empty", "", "empty configuration"},
		{"bad on_error", "source: {kind: rollouts, path: x, on_error: ignore}\noutput: {dir: o}\n", `source.on_error: "ignore" is neither fail nor skip`},
		{"bad extra_fields", "source: {kind: rollouts, path: x, extra_fields: skip}\noutput: {dir: o}\n", `source.extra_fields: "skip" is neither ignore nor error`},
		{"negative shard_rows", "source: {kind: rollouts, path: x}\noutput: {dir: o, shard_rows: -5}\n", "c.yaml:2: output.shard_rows: must be at least 1, got -5"},
		{"negative max_line_bytes", "source: {kind: rollouts, path: x, max_line_bytes: -1}\noutput: {dir: o}\n", "c.yaml:1: source.max_line_bytes: must be at least 1, got -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("c.yaml", strings.NewReader(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "c.yaml:") {
				t.Fatalf("got %v, want an error naming c.yaml and containing %q", err, tt.want)
			}
		})
	}
}

func TestConfigIdentity(t *testing.T) {
	id := func(dir string, maxTok, workers int) string {
		c, err := ParseConfig("c.yaml", strings.NewReader(fmt.Sprintf(
			"source: {kind: tasks, path: t.jsonl}\nendpoint: {base_url: http://h/v1, model: m}\noutput: {dir: %s}\nsampling: {n: 4, max_tokens: %d}\npipeline: {workers: %d}\n",
			dir, maxTok, workers)))
		if err != nil {
			t.Fatal(err)
		}
		_, h, err := c.Identity()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	if id("a", 100, 1) != id("b", 100, 4) {
		t.Error("output dir or workers changed the run identity")
	}
	parse := func(y string) string {
		c, err := ParseConfig("c.yaml", strings.NewReader(y))
		if err != nil {
			t.Fatal(err)
		}
		_, h, _ := c.Identity()
		return h
	}
	a := parse("source: {kind: tasks, path: t.jsonl}\nendpoint: {base_url: http://a/v1, model: m}\noutput: {dir: o}\n")
	b := parse("source: {kind: tasks, path: t.jsonl}\nendpoint: {base_urls: [http://b/v1, http://c/v1], model: m, retries: 2, max_in_flight: 8}\noutput: {dir: o}\n")
	c := parse("source: {kind: tasks, path: t.jsonl}\nendpoint: {base_url: http://a/v1, model: other}\noutput: {dir: o}\n")
	if a != b {
		t.Error("servers, concurrency or retries changed the run identity")
	}
	if a == c {
		t.Error("the model did not change the run identity")
	}
	if id("a", 100, 1) == id("a", 200, 1) {
		t.Error("max_tokens did not change the run identity")
	}
	// The bad-input policies: the defaults spelled out are the defaults;
	// anything else changes which tasks run.
	source := func(extra string) string {
		return parse("source: {kind: tasks, path: t.jsonl" + extra + "}\nendpoint: {base_url: http://a/v1, model: m}\noutput: {dir: o}\n")
	}
	if source(", on_error: fail, extra_fields: ignore") != a {
		t.Error("on_error: fail or extra_fields: ignore changed the run identity")
	}
	if source(", on_error: skip") == a || source(", extra_fields: error") == a || source(", on_error: skip") == source(", extra_fields: error") {
		t.Error("on_error: skip or extra_fields: error did not change the run identity")
	}
}

func TestSourceInputOptions(t *testing.T) {
	c, err := ParseConfig("c.yaml", strings.NewReader("source: {kind: rollouts, path: d/, format: jsonl, on_error: skip, extra_fields: error, max_line_bytes: 100, generate_ids: true}\noutput: {dir: o}\n"))
	if err != nil {
		t.Fatal(err)
	}
	o := c.Source.InputOptions()
	if o.Path != "d/" || o.Format != "jsonl" || o.OnError != rollout.OnErrorSkip || o.ExtraFields != rollout.ExtraFieldsError ||
		o.MaxLineBytes != 100 || !o.GenerateIDs || o.Layout != rollout.LayoutRedraft || o.Shard != (rollout.Shard{}) || o.SkipTasks != 0 {
		t.Errorf("options = %+v", o)
	}
}
