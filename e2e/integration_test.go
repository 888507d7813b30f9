// Package e2e holds the end-to-end tests (test files only): they run the
// pipeline and the splice jobs on bundled data and then read the outputs back
// through validate, audit, pyarrow and the Python loader, and open the audit
// report in a browser. They sit above every package they use, so that the
// tests of a lower package (export, audit, validate) never import pipeline.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/pycheck"
	"github.com/redraft/redraft/pipeline"
	"github.com/redraft/redraft/pipeline/splice"
	"github.com/redraft/redraft/rollout/fakeserver"
	"github.com/redraft/redraft/tokenizer"
	"github.com/redraft/redraft/validate"
)

// The outputs the project's tests produce, each with the verl prompt set
// added from its rl groups and a dataset card, as the run writes them.
type output struct {
	name, dir string
	// tokenizer the sft token track was made with (sft outputs)
	tok string
}

func runOutput(t *testing.T, name, yaml string) output {
	t.Helper()
	cfg, err := pipeline.ParseConfig(name+".yaml", strings.NewReader(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Execute(context.Background(), cfg, pipeline.JobOptions{}); err != nil {
		t.Fatal(err)
	}
	return output{name: name, dir: cfg.Output.Dir}
}

func spliceOutput(t *testing.T, tokPath string) output {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	track, err := export.LoadTokenTrack(tokPath, tokenizer.FormatChatML)
	if err != nil {
		t.Fatal(err)
	}
	w, err := export.NewSFTWriter(export.ShardOptions{Dir: dir, MaxBytes: 1 << 20, RowGroupRows: 256}, track)
	if err != nil {
		t.Fatal(err)
	}
	input := "../testdata/prm800k/phase1_reconstructed.jsonl.gz"
	if err := splice.PRM800K(ctx, input, splice.Cursor{}, splice.DefaultOptions(), func(r splice.Record) error {
		if r.Trajectory == nil {
			return nil
		}
		return w.WriteGroup(ctx, []export.SFTRow{r.Trajectory.SFTRow()})
	}); err != nil {
		t.Fatal(err)
	}
	shards, err := w.Flush()
	if err != nil {
		t.Fatal(err)
	}
	ds := export.DatasetInfo{Schema: w.Schema(), Shards: shards}
	for _, s := range shards {
		ds.Rows += s.Rows
		ds.Groups += s.Groups
	}
	m := &export.Manifest{Status: export.StatusComplete, Source: "splice:prm800k", Datasets: map[string]export.DatasetInfo{"sft": ds},
		Config: []byte(fmt.Sprintf(`{"splice":{"format":"prm800k","input":%q}}`, input))}
	if err := export.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	if err := export.WriteCard(dir, m); err != nil {
		t.Fatal(err)
	}
	if ds.Rows != 781 || ds.Schema != export.SFTTokensSchema {
		t.Fatalf("splice: %d rows, schema %s", ds.Rows, ds.Schema)
	}
	return output{name: "splice " + filepath.Base(filepath.Dir(tokPath)), dir: dir, tok: tokPath}
}

func testOutputs(t *testing.T) []output {
	t.Helper()
	var outs []output
	outs = append(outs, runOutput(t, "quickstart", fmt.Sprintf(`
name: quickstart-gsm8k
source: {kind: rollouts, path: ../testdata/gsm8k/example_model_solutions.jsonl, layout: gsm8k-example-solutions, data_source: openai/gsm8k}
reward: {grader: math, weights: {verifiable: 1.0}}
advantage: {estimator: grpo, eps: 1.0e-6}
output: {dir: %s, shard_bytes: 262144, row_group_rows: 512}
`, t.TempDir())))

	// Generation against the in-process server, with failed requests and
	// every estimator's statistics.
	var b strings.Builder
	answers := map[string]int{}
	for i := range 30 {
		q := fmt.Sprintf("What is %d+%d?", i, i)
		answers[q] = 2 * i
		fmt.Fprintf(&b, `{"id": "toy-%d", "prompt": %q, "reference": %d, "data_source": "toy"}`+"\n", i, q, 2*i)
	}
	tasks := filepath.Join(t.TempDir(), "tasks.jsonl")
	if err := os.WriteFile(tasks, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	inner := fakeserver.AnswerBySeed(answers)
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		if *req.Seed%5 == 0 {
			return fakeserver.Reply{Status: 503}
		}
		rep := inner(req)
		rep.Text = strings.Repeat("so ", int(*req.Seed%7)) + rep.Text
		return rep
	})
	t.Cleanup(srv.Close)
	for _, adv := range []string{
		"{estimator: grpo, eps: 1.0e-4}",
		"{estimator: rloo, drop_zero_variance: true}",
		"{estimator: passk}",
		"{estimator: reinforce_pp_baseline, whiten: token, batch_groups: 7}",
	} {
		outs = append(outs, runOutput(t, "generation "+adv, fmt.Sprintf(`
name: gen-validate
seed: 42
source: {kind: tasks, path: %s}
endpoint: {base_url: %s, model: policy, max_in_flight: 8, retries: 2, backoff_initial: 1ms, backoff_max: 2ms}
sampling: {n: 4, temperature: 0, max_tokens: 64}
reward: {weights: {verifiable: 1, consensus: 0.5, format: 0.1}}
advantage: %s
# A fifth of the requests fail on purpose: their rows must validate too.
pipeline: {max_failure_rate: 1}
output: {dir: %s}
`, tasks, srv.BaseURL(), adv, t.TempDir())))
	}
	srv2 := fakeserver.New(fakeserver.AnswerBySeed(answers))
	t.Cleanup(srv2.Close)
	outs = append(outs, runOutput(t, "score episodes with pairs", fmt.Sprintf(`
name: score-validate
seed: 7
source: {kind: tasks, path: %s}
endpoint: {base_url: %s, model: policy, max_in_flight: 8, retries: 2, backoff_initial: 1ms, backoff_max: 2ms}
sampling: {n: 4, temperature: 1.0, max_tokens: 64}
episode: {turns: 2, feedback: fixed, pairs: true}
reward: {weights: {verifiable: 1, score_bonus: 1}}
output: {dir: %s}
`, tasks, srv2.BaseURL(), t.TempDir())))

	outs = append(outs, spliceOutput(t, "../tokenizer/testdata/synthetic.json"))
	if dir := os.Getenv("REDRAFT_TOKENIZERS"); dir != "" {
		outs = append(outs, spliceOutput(t, filepath.Join(dir, "qwen3", "tokenizer.json")))
	}
	return outs
}

// Every output the tests produce validates, token tracks re-rendered; the
// verl prompt set has one prompt per task.
func TestValidateTestOutputs(t *testing.T) {
	for _, o := range testOutputs(t) {
		t.Run(o.name, func(t *testing.T) {
			opts := validate.Options{}
			if o.tok != "" {
				tt, err := export.LoadTokenTrack(o.tok, "")
				if err != nil {
					t.Fatal(err)
				}
				opts.Tokens = tt
			}
			rep, err := validate.Dir(context.Background(), o.dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			var sb strings.Builder
			rep.WriteText(&sb)
			if !rep.OK() || len(rep.Notes) > 0 {
				t.Fatalf("%s", sb.String())
			}
			t.Log(strings.TrimSpace(sb.String()))
			m, _ := export.ReadManifest(o.dir)
			if rl, ok := m.Datasets["rl"]; ok {
				tasks := map[string]bool{}
				for _, s := range rl.Shards {
					rows, _ := export.ReadRL(context.Background(), filepath.Join(o.dir, s.Path))
					for _, r := range rows {
						tasks[r.TaskID] = true
					}
				}
				// Every task is in the prompt set once, also the tasks whose
				// groups were all dropped for zero variance.
				verl := map[string]bool{}
				for _, s := range m.Datasets[export.VerlDataset].Shards {
					rows, err := export.ReadRows[export.VerlRow](context.Background(), filepath.Join(o.dir, s.Path))
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range rows {
						if verl[r.ExtraInfo.TaskID] {
							t.Errorf("task %s twice in the verl prompt set", r.ExtraInfo.TaskID)
						}
						verl[r.ExtraInfo.TaskID] = true
					}
				}
				for id := range tasks {
					if !verl[id] {
						t.Errorf("task %s has rl rows but no verl prompt", id)
					}
				}
				if extra := int64(len(verl) - len(tasks)); extra < 0 || extra > m.Rewards.DroppedZeroStd {
					t.Errorf("verl prompts %d, tasks with rows %d, dropped groups %d", len(verl), len(tasks), m.Rewards.DroppedZeroStd)
				}
			}
		})
	}
}

// python/test_loader.py reads the same outputs with pyarrow (and Hugging
// Face datasets when installed), batches them for a training loop and checks
// every sft mask against the text spans with Hugging Face tokenizers.
func TestPythonLoader(t *testing.T) {
	py := pycheck.Python(t)
	args := []string{"../python/test_loader.py"}
	if exec.Command(py, "-c", "import datasets").Run() == nil {
		args = append(args, "--hf")
	} else {
		t.Log("Hugging Face datasets is not installed: pyarrow only")
	}
	for _, o := range testOutputs(t) {
		if o.tok != "" {
			args = append(args, "--sft", o.dir, "--tokenizer", o.tok)
		} else {
			args = append(args, "--rl", o.dir)
		}
	}
	cmd := exec.Command(py, args...)
	cmd.Env = append(os.Environ(), "HF_DATASETS_OFFLINE=1", "HF_HUB_OFFLINE=1", "HF_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("python loader check failed: %v", err)
	}
}
