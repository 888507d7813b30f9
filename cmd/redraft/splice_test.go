package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/pycheck"
	"github.com/redraft/redraft/rollout/fakeserver"
)

const mrInput = "../../testdata/mr_gsm8k/first_error_590.jsonl.gz"

// stepAnswer continues any solution with a corrected step and the answer 5.
func stepAnswer(*fakeserver.Request) fakeserver.Reply {
	return fakeserver.Reply{Text: "Step 9: Redo the last step.\n#### 5"}
}

func TestSpliceMRGSM8KCommand(t *testing.T) {
	srv := fakeserver.New(stepAnswer)
	srv.NoPrefill = true
	defer srv.Close()
	t.Setenv("REDRAFT_TEST_KEY", "sk-secret-value")
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		rows     int
		stderr   string
		tokens   bool
		manifest string
	}{
		{"missing endpoint", []string{"--model", "m"}, 2, 0, "--format mr-gsm8k needs --endpoint URL and --model NAME", false, ""},
		{"missing model", []string{"--endpoint", srv.BaseURL()}, 2, 0, "needs --endpoint URL and --model NAME", false, ""},
		{"bad continuation", []string{"--endpoint", srv.BaseURL(), "--model", "m", "--continuation", "magic"}, 2, 0, `splice.continuation: "magic" is not prefill, user-turn or auto`, false, ""},
		{"keep correct without grading", []string{"--endpoint", srv.BaseURL(), "--model", "m", "--keep", "correct", "--grade=false"}, 2, 0, "splice.keep: correct needs splice.grade", false, ""},
		{"auto falls back to a user turn", []string{"--endpoint", srv.BaseURL(), "--model", "m", "--api-key-env", "REDRAFT_TEST_KEY", "--seed", "7", "--keep", "all"}, 0, 590, "spliced 590 trajectories", false, `"mode":"user-turn"`},
		{"token track", []string{"--endpoint", srv.BaseURL(), "--model", "m", "--tokenizer", "../../tokenizer/testdata/synthetic.json", "--continuation", "user-turn", "--mask-prefix", "--keep", "all"}, 0, 590, "spliced 590 trajectories", true, `"train_prefix":false`},
		{"keep correct", []string{"--endpoint", srv.BaseURL(), "--model", "m", "--keep", "correct"}, 0, -1, "records skipped", false, ""},
		{"keep correct by default", []string{"--endpoint", srv.BaseURL(), "--model", "m"}, 0, -1, "spliced 20 trajectories", false, ""},
		{"prefill refused", []string{"--endpoint", srv.BaseURL(), "--model", "m", "--continuation", "prefill"}, 0, 0, "spliced 0 trajectories", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			args := append([]string{"splice", "--format", "mr-gsm8k", "--input", mrInput, "--out", out}, tc.args...)
			code, _, stderr := redraft(t, args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, stderr)
			}
			if code != 0 {
				return
			}
			m, err := export.ReadManifest(out)
			if err != nil {
				t.Fatal(err)
			}
			ds := m.Datasets["sft"]
			if m.Status != export.StatusComplete || int(ds.Rows)+len(m.Skipped) != 590 || (tc.rows >= 0 && int(ds.Rows) != tc.rows) {
				t.Fatalf("manifest: %d rows, %d skipped", ds.Rows, len(m.Skipped))
			}
			if tc.tokens != (ds.Schema == export.SFTTokensSchema) {
				t.Fatalf("schema %s", ds.Schema)
			}
			raw, _ := os.ReadFile(filepath.Join(out, export.ManifestName))
			if bytes.Contains(raw, []byte("sk-secret-value")) || m.Model != "m" || !strings.Contains(string(m.Config), `"api_key_env"`) {
				t.Fatalf("manifest model %q config %s", m.Model, m.Config)
			}
			switch tc.name {
			case "keep correct":
				// The fake answers 5: only records whose reference is 5
				// are kept; every other one is listed with its reason.
				if ds.Rows == 0 || len(m.Skipped) == 0 || !strings.HasPrefix(m.Skipped[0].Reason, "continuation graded incorrect (answer 5, reference ") {
					t.Fatalf("%d rows, skipped %+v", ds.Rows, m.Skipped[:1])
				}
			case "prefill refused":
				if !strings.Contains(m.Skipped[0].Reason, "HTTP 400: continue_final_message is not supported") {
					t.Fatalf("skipped %+v", m.Skipped[0])
				}
			}
			if tc.manifest != "" && ds.Rows > 0 {
				rows := readSFTRows(t, out)
				if !strings.Contains(*rows[0].Metadata, tc.manifest) {
					t.Fatalf("metadata %s lacks %s", *rows[0].Metadata, tc.manifest)
				}
			}
			var vout bytes.Buffer
			if err := cmdValidate(context.Background(), []string{out}, &vout); err != nil {
				t.Fatalf("validate: %v\n%s", err, vout.String())
			}
			if ds.Rows > 0 {
				pycheck.Check(t, "../..", out)
			}
		})
	}
}

func readSFTRows(t *testing.T, dir string) []export.SFTRow {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "data", "sft", "*.parquet"))
	var out []export.SFTRow
	for _, f := range files {
		rows, err := export.ReadRows[export.SFTRow](context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rows...)
	}
	return out
}

// redraft run --config configs/presets/agent-r.yaml writes sft rows.
func TestRunAgentRPreset(t *testing.T) {
	pol := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		if len(req.Messages) == 1 {
			return fakeserver.Reply{Text: "Step 1: 2 apples and 3 pears.\nStep 2: 2 + 3 = 6.\n#### 6"}
		}
		return fakeserver.Reply{Text: "Step 2: 2 + 3 = 5.\n#### 5"}
	})
	defer pol.Close()
	stepRe := regexp.MustCompile(`whether step (\d+),`)
	js := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		if stepRe.FindStringSubmatch(req.Messages[0].Content)[1] == "2" {
			return fakeserver.Reply{Text: "Verdict: Bad"}
		}
		return fakeserver.Reply{Text: "Verdict: Good"}
	})
	defer js.Close()
	dir := t.TempDir()
	tasks := filepath.Join(dir, "tasks.jsonl")
	os.WriteFile(tasks, []byte(`{"id": "a", "prompt": "2 apples and 3 pears: how many fruits?", "reference": 5}`+"\n"), 0o644)
	preset, err := os.ReadFile("../../configs/presets/agent-r.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("tasks.jsonl", tasks, "http://127.0.0.1:8000/v1", pol.BaseURL(), "http://127.0.0.1:8001/v1", js.BaseURL(), "out/agent-r", filepath.Join(dir, "out")).Replace(string(preset))
	code, stdout, stderr := redraft(t, "run", "--config", writeConfig(t, cfg), "--progress", "off")
	if code != 0 || !strings.Contains(stderr, "wrote 4 sft rows (1 groups)") || stdout != "" {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	// Its manifest's counts (rewards.rows and groups: the sft rows written)
	// agree with its shards.
	if code, stdout, _ := redraft(t, "validate", filepath.Join(dir, "out")); code != 0 {
		t.Fatalf("validate: %s", stdout)
	}
	rows := readSFTRows(t, filepath.Join(dir, "out"))
	want := "Step 1: 2 apples and 3 pears.\nStep 2: 2 + 3 = 6.\n"
	if len(rows) != 4 || !strings.HasPrefix(rows[0].Messages[1].Content, want) || !strings.HasSuffix(rows[0].Messages[1].Content, "\nStep 2: 2 + 3 = 5.\n#### 5") {
		t.Fatalf("rows %+v", rows)
	}
	seg := rows[0].Messages[1].Segments
	if seg[0].Trainable || seg[2].Trainable || seg[2].Role != "erroneous_step" || !seg[len(seg)-1].Trainable {
		t.Fatalf("segments %+v", seg)
	}
	if code, _, stderr := redraft(t, "run", "--config", writeConfig(t, cfg)); code != 0 || !strings.Contains(stderr, "nothing to do") {
		t.Fatalf("rerun: exit %d: %s", code, stderr)
	}
	pycheck.Check(t, "../..", filepath.Join(dir, "out"))
}
