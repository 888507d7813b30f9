package pipeline

import (
	"strings"
	"testing"
	"time"
)

// An explicit setting is used as it is or refused with its key and line; it
// is never replaced by the default (issue 14 item 10: n: 0 ran as 1, n: 2.5
// as 2, eps: 0 as 1e-6, max_in_flight: 0 as 64). Lines 1 to 3 are the base
// sections; extra lines start at 4.
func TestConfigExplicitValuesRefused(t *testing.T) {
	const base = "source:\n  kind: tasks\n  path: t.jsonl\nendpoint:\n  base_url: http://h/v1\n  model: m\noutput:\n  dir: o\n"
	// Lines: source 1-3, endpoint 4-6, output 7-8, extra from 9.
	const ep = "source: {kind: tasks, path: t.jsonl}\noutput: {dir: o}\nendpoint:\n  base_url: http://h/v1\n  model: m\n"
	// Lines: endpoint 3-5, extra endpoint keys from 6.
	const out = "source: {kind: tasks, path: t.jsonl}\nendpoint: {base_url: http://h/v1, model: m}\noutput:\n  dir: o\n"
	// Lines: output 3-4, extra output keys from 5.
	const agentR = "source: {kind: tasks, path: t.jsonl}\nendpoint: {base_url: http://h/v1, model: m}\noutput: {dir: o}\nagent_r:\n  step_judge: {base_url: http://j/v1, model: jm}\n"
	// Lines: agent_r 4, step_judge 5, extra from 6.
	tests := []struct{ name, yaml, want string }{
		{"n 0", base + "sampling:\n  n: 0\n", "c.yaml:10: sampling.n: must be at least 1, got 0"},
		{"n fraction", base + "sampling:\n  n: 2.5\n", "c.yaml:10: sampling.n: want an integer, got 2.5"},
		{"n float exponent", base + "sampling:\n  n: 1e3\n", "c.yaml:10: sampling.n: want an integer, got 1e3"},
		{"n negative", base + "sampling:\n  n: -3\n", "c.yaml:10: sampling.n: must be at least 1, got -3"},
		{"n without value", base + "sampling:\n  n:\n", "c.yaml:10: sampling.n: no value"},
		{"temperature nan", base + "sampling:\n  temperature: .nan\n", "c.yaml:10: sampling.temperature: not a finite number: .nan"},
		{"temperature inf", base + "sampling:\n  temperature: -.inf\n", "c.yaml:10: sampling.temperature: not a finite number: -.inf"},
		{"top_p nan", base + "sampling:\n  top_p: .NaN\n", "c.yaml:10: sampling.top_p: not a finite number: .NaN"},
		{"temperature negative", base + "sampling:\n  temperature: -1\n", "c.yaml:10: sampling.temperature: must be a finite number >= 0, got -1"},
		{"eps inf", base + "advantage:\n  eps: .inf\n", "c.yaml:10: advantage.eps: not a finite number: .inf"},
		{"eps negative", base + "advantage:\n  eps: -1\n", "c.yaml:10: advantage.eps: must be a finite number >= 0, got -1"},
		{"estimator empty", base + "advantage:\n  estimator: \"\"\n", `c.yaml:10: advantage.estimator: unknown advantage estimator ""`},
		{"batch_groups 0", base + "advantage:\n  estimator: reinforce_pp_baseline\n  batch_groups: 0\n", "c.yaml:11: advantage.batch_groups: must be at least 1, got 0"},
		{"whiten empty", base + "advantage:\n  estimator: reinforce_pp_baseline\n  whiten: \"\"\n", `c.yaml:11: advantage.whiten: "" is neither token nor sequence`},
		{"weight nan", base + "reward:\n  weights: {verifiable: .nan}\n", "c.yaml:10: reward.weights.verifiable: not a finite number: .nan"},
		{"grader empty", base + "reward:\n  grader: \"\"\n", `c.yaml:10: reward.grader: unknown grader ""`},
		{"max_in_flight 0", ep + "  max_in_flight: 0\n", "c.yaml:6: endpoint.max_in_flight: must be at least 1, got 0"},
		// Values that do not decode are named by key too, not only by line.
		{"max_response_bytes 0", ep + "  max_response_bytes: 0\n", "line 6: endpoint.max_response_bytes: \"0\" is not a size"},
		{"timeout not a duration", ep + "  timeout: soon\n", "line 6: endpoint.timeout: \"soon\" is not a duration"},
		{"shard_bytes negative", out + "  shard_bytes: -5\n", "line 5: output.shard_bytes: \"-5\" is not a size"},
		{"n a string", base + "sampling:\n  n: many\n", "line 10: sampling.n: cannot unmarshal"},
		{"judge timeout", base + "reward:\n  judges:\n    - model: j\n      base_url: http://j/v1\n      timeout: later\n", "line 13: reward.judges[0].timeout: \"later\" is not a duration"},
		// Several values on the line: their section is named, not a guess.
		{"flow mapping", base + "reward:\n  judges:\n    - {model: j, base_url: http://j/v1, timeout: later}\n", "line 11: reward.judges[0]: \"later\" is not a duration"},
		{"max_in_flight -1 names its own key", ep + "  max_in_flight: -1\n", "c.yaml:6: endpoint.max_in_flight: must be at least 1, got -1"},
		{"max_in_flight_per_endpoint -1", ep + "  max_in_flight_per_endpoint: -1\n", "c.yaml:6: endpoint.max_in_flight_per_endpoint: must be >= 0"},
		{"retries 0", ep + "  retries: 0\n", "c.yaml:6: endpoint.retries: must be at least 1 (the first attempt), got 0"},
		{"backoff_initial 0", ep + "  backoff_initial: 0s\n", "c.yaml:6: endpoint.backoff_initial: must be > 0, got 0s"},
		{"backoff_max 0", ep + "  backoff_max: 0s\n", "c.yaml:6: endpoint.backoff_max: need backoff_initial <= backoff_max, got 500ms > 0s"},
		{"breaker_failures 0", ep + "  breaker_failures: 0\n", "c.yaml:6: endpoint.breaker_failures: must be at least 1, got 0"},
		{"breaker_cooldown 0", ep + "  breaker_cooldown: 0s\n", "c.yaml:6: endpoint.breaker_cooldown: must be > 0, got 0s"},
		{"timeout without value", ep + "  timeout:\n", "c.yaml:6: endpoint.timeout: no value"},
		{"timeout negative", ep + "  timeout: -1s\n", "c.yaml:6: endpoint.timeout: must be >= 0"},
		{"api_key_env empty", ep + "  api_key_env: \"\"\n", "c.yaml:6: endpoint.api_key_env: not an environment variable name"},
		{"url line in a list", "source: {kind: tasks, path: t.jsonl}\noutput: {dir: o}\nendpoint:\n  model: m\n  base_urls:\n    - http://a/v1\n    - ftp://b\n", `c.yaml:7: endpoint.base_urls: "ftp://b" is not an http(s) URL`},
		{"turns 0", base + "episode:\n  turns: 0\n", "c.yaml:10: episode.turns: must be at least 1, got 0"},
		{"instruction empty", base + "episode:\n  turns: 2\n  feedback: fixed\n  instruction: \"\"\n", "c.yaml:12: episode.instruction: empty"},
		{"shard_rows 0", out + "  shard_rows: 0\n", "c.yaml:5: output.shard_rows: must be at least 1, got 0"},
		{"row_group_rows 0", out + "  row_group_rows: 0\n", "c.yaml:5: output.row_group_rows: must be at least 1, got 0"},
		{"max_line_bytes 0", "source:\n  kind: rollouts\n  path: x\n  max_line_bytes: 0\noutput: {dir: o}\n", "c.yaml:4: source.max_line_bytes: must be at least 1, got 0"},
		{"layout empty", "source:\n  kind: rollouts\n  path: x\n  layout: \"\"\noutput: {dir: o}\n", `c.yaml:4: source.layout: unknown layout ""`},
		{"workers 0", base + "pipeline:\n  workers: 0\n", "c.yaml:10: pipeline.workers: must be at least 1, got 0"},
		{"groups_in_flight 0", base + "pipeline:\n  groups_in_flight: 0\n", "c.yaml:10: pipeline.groups_in_flight: must be at least 1, got 0"},
		{"name empty", base + "name: \"\"\n", "c.yaml:9: name: empty"},
		{"on_error empty", "source:\n  kind: rollouts\n  path: x\n  on_error: \"\"\noutput: {dir: o}\n", "c.yaml:4: source.on_error: empty (leave the key out for the default, fail)"},
		{"format empty", "source:\n  kind: rollouts\n  path: x\n  format: \"\"\noutput: {dir: o}\n", "c.yaml:4: source.format: empty"},
		{"judge_aggregate empty", base + "reward:\n  judge_aggregate: \"\"\n", "c.yaml:10: reward.judge_aggregate: empty (leave the key out for the default, mean)"},
		{"group_by empty", base + "advantage:\n  group_by: \"\"\n", "c.yaml:10: advantage.group_by: empty (leave the key out for the default, turn)"},
		{"missing model at its section", "source: {kind: tasks, path: t.jsonl}\noutput: {dir: o}\nendpoint:\n  base_url: http://h/v1\n", "c.yaml:3: endpoint.model: missing"},
		{"judge timeout negative", base + "reward:\n  weights: {judge: 1}\n  judges:\n    - {base_url: http://j/v1, model: jm, template: correctness, timeout: -1s}\n", "c.yaml:12: reward.judges[0].timeout: must be >= 0"},
		{"judge api_key_env pasted key", base + "reward:\n  weights: {judge: 1}\n  judges:\n    - base_url: http://j/v1\n      model: jm\n      api_key_env: sk-live-123\n", "c.yaml:14: reward.judges[0].api_key_env: not an environment variable name"},
		{"agent_r max_steps 0", agentR + "  max_steps: 0\n", "c.yaml:6: agent_r.max_steps: must be at least 1, got 0"},
		{"agent_r branches 0", agentR + "  branches: 0\n", "c.yaml:6: agent_r.branches: must be at least 1, got 0"},
		{"agent_r judge_max_tokens 0", agentR + "  judge_max_tokens: 0\n", "c.yaml:6: agent_r.judge_max_tokens: must be at least 1, got 0"},
		{"agent_r steps empty", agentR + "  steps: \"\"\n", `c.yaml:6: agent_r.steps: "" is neither lines nor paragraphs`},
		{"agent_r keep empty", agentR + "  keep: \"\"\n", `c.yaml:6: agent_r.keep: "" is neither correct nor all`},
		{"agent_r continuation empty", agentR + "  continuation: \"\"\n", `c.yaml:6: agent_r.continuation: "" is not prefill, user-turn or auto`},
		{"agent_r empty template", agentR + "  judge_template: {system: \"\", user: \"\"}\n", "c.yaml:6: agent_r.judge_template: empty"},
		{"splice reflection empty", "output: {dir: o}\nendpoint: {base_url: http://h/v1, model: m}\nsplice:\n  format: mr-gsm8k\n  input: x.jsonl\n  reflection: \"\"\n", `c.yaml:6: splice.reflection: "" is neither pool nor label-reason`},
		{"splice keep empty", "output: {dir: o}\nendpoint: {base_url: http://h/v1, model: m}\nsplice:\n  format: mr-gsm8k\n  input: x.jsonl\n  keep: \"\"\n", `c.yaml:6: splice.keep: "" is neither all nor correct`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("c.yaml", strings.NewReader(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v\nwant an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "sk-live-123") {
				t.Errorf("the error quotes a pasted key: %v", err)
			}
		})
	}
}

// A zero that is a meaningful setting is used, and a key left out gets its
// default.
func TestConfigExplicitValuesUsed(t *testing.T) {
	const base = "source: {kind: tasks, path: t.jsonl}\noutput: {dir: o}\n"
	c, err := ParseConfig("c.yaml", strings.NewReader(base+
		"endpoint: {base_url: http://h/v1, model: m, max_in_flight_per_endpoint: 0, timeout: 0s}\n"+
		"advantage: {eps: 0}\n"+
		"reward: {weights: {verifiable: 1, score_bonus: 1, srpo: 1}, score_bonus: {alpha: 0}, srpo: {flip_bonus: 0}}\n"+
		"sampling: {temperature: 0, top_logprobs: 0}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ep := c.Endpoint
	switch {
	case c.Advantage.Eps != 0:
		t.Errorf("advantage.eps: 0 became %v", c.Advantage.Eps)
	case ep.MaxInFlightPerEndpoint != 0:
		t.Errorf("max_in_flight_per_endpoint: 0 became %d", ep.MaxInFlightPerEndpoint)
	case ep.Timeout != 0:
		t.Errorf("timeout: 0s became %s", time.Duration(ep.Timeout))
	case c.Reward.ScoreBonus.Alpha != 0 || c.Reward.SRPO.FlipBonus != 0:
		t.Errorf("alpha 0 / flip_bonus 0 became %v / %v", c.Reward.ScoreBonus.Alpha, c.Reward.SRPO.FlipBonus)
	case c.Sampling.Temperature == nil || *c.Sampling.Temperature != 0:
		t.Errorf("temperature: 0 became %v", c.Sampling.Temperature)
	}
	// Left out: the documented defaults.
	d, err := ParseConfig("c.yaml", strings.NewReader(base+"endpoint: {base_url: http://h/v1, model: m}\nreward: {weights: {score_bonus: 1, srpo: 1}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ep = d.Endpoint
	if d.Name != "redraft" || d.Sampling.N != 1 || d.Advantage.Eps != 1e-6 || ep.MaxInFlight != 64 || ep.MaxInFlightPerEndpoint != 64 ||
		ep.Timeout != Duration(10*time.Minute) || ep.Retries != 6 || ep.APIKeyEnv != "OPENAI_API_KEY" || d.Episode.Turns != 1 ||
		d.Reward.ScoreBonus.Alpha != 10 || d.Reward.SRPO.FlipBonus != 0.5 || d.Output.ShardRows != 32*4096 || d.Output.RowGroupRows != 4096 ||
		d.Output.ShardBytes != 256<<20 || d.Sampling.Temperature != nil {
		t.Errorf("defaults: %+v %+v", d, *ep)
	}
	// An empty section or a null setting is as if left out.
	e, err := ParseConfig("c.yaml", strings.NewReader(base+"endpoint: {base_url: http://h/v1, model: m}\nsampling: {temperature: null}\ncritique:\nreward:\n  weights:\n"))
	if err != nil {
		t.Fatal(err)
	}
	if e.Sampling.Temperature != nil || e.Critique != nil || e.Reward.Weights["verifiable"] != 1 {
		t.Errorf("null settings: %+v", e)
	}
}

// TestSpliceRefusesUnreadKeys: a splicing job reads splice.*, seed,
// output.dir and three endpoint keys; anything else would load and then do
// nothing, so it is refused, named by its section or key and its line.
func TestSpliceRefusesUnreadKeys(t *testing.T) {
	const base = "name: s\nseed: 1\nsplice:\n  format: prm800k\n  input: in.jsonl.gz\noutput:\n  dir: o\n"
	mr := func(s string) string { return strings.Replace(s, "prm800k", "mr-gsm8k", 1) }
	const ep = "endpoint:\n  base_url: http://h/v1\n  model: m\n"
	// Lines: splice 3-5, output 6-7, extra from 8.
	for _, tt := range []struct{ name, yaml, want string }{
		// A prm800k splice (the step-splice preset) calls no model.
		{"sampling", base + "sampling:\n  temperature: 0.7\n", "c.yaml:8: sampling: a prm800k splice job does not read this section"},
		{"reward", base + "reward:\n  weights: {verifiable: 1}\n", "c.yaml:8: reward: a prm800k splice job does not read this section"},
		{"advantage", base + "advantage: {eps: 0.1}\n", "c.yaml:8: advantage: a prm800k splice job does not read this section"},
		{"pipeline", base + "pipeline: {workers: 2}\n", "c.yaml:8: pipeline: a prm800k splice job does not read this section"},
		{"source", base + "source: {kind: tasks, path: t.jsonl}\n", "c.yaml:8: source: a prm800k splice job does not read this section"},
		{"output.tokenizer", base + "  tokenizer: t.json\n", "c.yaml:8: output.tokenizer: a prm800k splice job does not read this key"},
		{"endpoint", base + ep + "  timeout: 5m\n", "c.yaml:8: endpoint: a prm800k splice job does not read this section"},
		{"splice.grade", strings.Replace(base, "  input:", "  grade: true\n  input:", 1), "c.yaml:5: splice.grade: only an mr-gsm8k splice reads it"},
		{"first in the file", base + "reward: {grader: math}\nsampling: {n: 2}\n", "c.yaml:8: reward:"},
		// An mr-gsm8k splice reads the endpoint and what it sends.
		{"mr sampling.n", mr(base) + ep + "sampling: {n: 2}\n", "c.yaml:11: sampling.n: an mr-gsm8k splice job does not read this key"},
		{"mr sampling.logprobs", mr(base) + ep + "sampling: {logprobs: true}\n", "c.yaml:11: sampling.logprobs: an mr-gsm8k splice job does not read this key"},
		{"mr reward", mr(base) + ep + "reward: {grader: math}\n", "c.yaml:11: reward: an mr-gsm8k splice job does not read this section"},
		{"mr bad temperature", mr(base) + ep + "sampling: {temperature: -1}\n", "c.yaml:11: sampling.temperature: must be a finite number >= 0"},
		{"mr bad retries", mr(base) + ep + "  retries: 0\n", "endpoint.retries"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("c.yaml", strings.NewReader(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v\nwant an error containing %q", err, tt.want)
			}
		})
	}
	// What it reads loads, and is what the job runs on.
	for _, ok := range []string{
		base + "  shard_rows: 10\n",
		mr(base) + ep + "  api_key_env: MY_KEY\n  timeout: 5m\n  retries: 2\n  max_in_flight: 3\nsampling: {temperature: 0.7, max_tokens: 512}\n",
	} {
		c, err := ParseConfig("c.yaml", strings.NewReader(ok))
		if err != nil {
			t.Fatalf("a splice configuration with what it reads: %v\n%s", err, ok)
		}
		if e := c.Endpoint; e != nil && (time.Duration(e.Timeout) != 5*time.Minute || e.Retries != 2 || e.MaxInFlight != 3 || *c.Sampling.Temperature != 0.7 || *c.Sampling.MaxTokens != 512) {
			t.Errorf("mr-gsm8k settings lost: %+v %+v", e, c.Sampling)
		}
		if c.Endpoint == nil && c.Output.ShardRows != 10 {
			t.Errorf("output.shard_rows %d", c.Output.ShardRows)
		}
	}
}

// An unknown key is named by its path with the keys its section has and the
// likeliest one meant, not by the Go type it was decoded into (issue 16
// item 7).
func TestUnknownKeySuggests(t *testing.T) {
	const base = "source: {kind: rollouts, path: x}\noutput: {dir: o}\n"
	for _, tt := range []struct{ name, yaml, want string }{
		{"typo", base + "advantage:\n  estimater: grpo\n", "c.yaml: yaml: unmarshal errors:\n  line 4: advantage.estimater: unknown key (did you mean estimator?); advantage has estimator, eps, whiten, batch_groups, drop_zero_variance, group_by"},
		{"swapped letters at the top", "nmae: x\n" + base, "line 1: nmae: unknown key (did you mean name?); the top level has name, seed, source,"},
		{"in a list item", base + "reward:\n  judges:\n    - {name: a, modle: m, base_url: http://x/v1}\n", "reward.judges[0].modle: unknown key (did you mean model?); reward.judges[0] has name, base_url, base_urls, model, api_key_env,"},
		{"no near key", base + "output2: {}\n", "line 3: output2: unknown key (did you mean output?)"},
		{"far from every key", base + "colour: red\n", "line 3: colour: unknown key; the top level has name,"},
		{"inline fields", base + "sampling: {temprature: 1}\n", "sampling.temprature: unknown key (did you mean temperature?); sampling has n, temperature, top_p, max_tokens,"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("c.yaml", strings.NewReader(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "not found in type") {
				t.Fatalf("got %v\nwant an error containing %q", err, tt.want)
			}
		})
	}
}
