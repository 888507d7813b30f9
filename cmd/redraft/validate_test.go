package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// redraft validate passes a spliced output and fails, naming the shard, when
// one of its bytes is flipped.
func TestValidateCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "splice")
	var stderr bytes.Buffer
	if err := cmdSplice(context.Background(), []string{"--format", "prm800k", "--input", "../../testdata/prm800k/phase1_reconstructed.jsonl.gz", "--out", dir}, &stderr, &stderr); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := runValidate(t, &out, dir); code != nil {
		t.Fatalf("valid output rejected: %v\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "valid; sft (sft/3): 1 shard(s), 781 rows") {
		t.Errorf("report: %s", out.String())
	}
	shard := filepath.Join(dir, "data", "sft", "train-00000.parquet")
	b, err := os.ReadFile(shard)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(shard, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runValidate(t, &out, dir); err == nil || !strings.Contains(out.String(), "data/sft/train-00000.parquet: sha256") {
		t.Errorf("flipped byte: err %v\n%s", err, out.String())
	}
	if err := cmdValidate(context.Background(), nil, &out); err == nil {
		t.Error("no directory: want a usage error")
	}
}

func runValidate(t *testing.T, out *bytes.Buffer, dir string) error {
	t.Helper()
	return cmdValidate(context.Background(), []string{dir}, out)
}

// redraft validate --tokenizer re-renders the rl token track of a run made
// with output.tokenizer, and fails on a row whose labels are shifted by one
// token (the first response token masked, the last one off the end).
func TestValidateCommandRLTokens(t *testing.T) {
	dir := t.TempDir()
	tok, err := filepath.Abs("../../tokenizer/testdata/synthetic.json")
	if err != nil {
		t.Fatal(err)
	}
	var tasks strings.Builder
	answers := map[string]int{}
	for i := range 3 {
		q := fmt.Sprintf("What is %d+%d?", i, i)
		answers[q] = 2 * i
		fmt.Fprintf(&tasks, `{"id": "t-%d", "prompt": %q, "reference": %d, "data_source": "toy"}`+"\n", i, q, 2*i)
	}
	taskPath := filepath.Join(dir, "tasks.jsonl")
	if err := os.WriteFile(taskPath, []byte(tasks.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	inner := fakeserver.AnswerBySeed(answers)
	srv := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		// Some samples fail for good: their rows say why they have no track.
		if *req.Seed%3 == 0 {
			return fakeserver.Reply{Status: 500}
		}
		return inner(req)
	})
	defer srv.Close()
	out := filepath.Join(dir, "out")
	cfg := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
name: rl-tokens
seed: 5
source: {kind: tasks, path: %q}
endpoint: {base_url: %q, model: policy, retries: 1, backoff_initial: 1ms, backoff_max: 2ms}
sampling: {n: 4, temperature: 1.0, max_tokens: 64}
pipeline: {max_failure_rate: 1}
output: {dir: %q, tokenizer: %q}
`, taskPath, srv.BaseURL(), out, tok)), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"run", "--config", cfg, "--no-audit", "--progress", "off"}, nil, &bytes.Buffer{}, &stderr); code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr.String())
	}
	var rep bytes.Buffer
	if err := cmdValidate(context.Background(), []string{"--tokenizer", tok, out}, &rep); err != nil || !strings.Contains(rep.String(), "rl (rl/6)") {
		t.Fatalf("valid output rejected: %v\n%s", err, rep.String())
	}

	// Shift one row's labels and rewrite its shard, manifest included, so
	// that only the track is wrong.
	m, err := export.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	ds := m.Datasets["rl"]
	rows, err := export.ReadRL(context.Background(), filepath.Join(out, ds.Shards[0].Path))
	if err != nil {
		t.Fatal(err)
	}
	failed, shifted := 0, -1
	for i := range rows {
		switch {
		case rows[i].TokenReason != nil:
			failed++
		case shifted < 0:
			shifted = i
			l := rows[i].Labels
			rows[i].Labels = append([]int32{-100}, l[:len(l)-1]...)
		}
	}
	if failed == 0 || shifted < 0 {
		t.Fatalf("%d rows without a track, shifted row %d: want both kinds", failed, shifted)
	}
	track, err := export.LoadTokenTrack(tok, "chatml")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	w, err := export.NewShardWriter[export.RLRow](export.ShardOptions{Dir: tmp, Dataset: "rl", Schema: export.RLSchema, Metadata: track.Metadata()})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteGroup(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	shards, err := w.Flush()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(tmp, shards[0].Path))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, ds.Shards[0].Path), b, 0o644); err != nil {
		t.Fatal(err)
	}
	ds.Shards[0].SHA256, ds.Shards[0].Bytes = shards[0].SHA256, shards[0].Bytes
	m.Datasets["rl"] = ds
	if err := export.WriteManifest(out, m); err != nil {
		t.Fatal(err)
	}
	rep.Reset()
	want := fmt.Sprintf("row %d (group %s sample %d): token", shifted, rows[shifted].GroupID, rows[shifted].SampleIndex)
	if err := cmdValidate(context.Background(), []string{"--tokenizer", tok, out}, &rep); err == nil || !strings.Contains(rep.String(), want) {
		t.Fatalf("shifted labels: err %v, want a violation %q:\n%s", err, want, rep.String())
	}
}
