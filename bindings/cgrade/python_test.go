package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redraft/redraft/internal/pycheck"
)

const repoRoot = "../.."

var (
	wheelOnce sync.Once
	wheelPath string
	wheelErr  error
)

// buildWheel runs scripts/build-python.sh once per test binary.
func buildWheel(t *testing.T) string {
	t.Helper()
	wheelOnce.Do(func() {
		dir, err := os.MkdirTemp("", "redraft-wheel-")
		if err != nil {
			wheelErr = err
			return
		}
		out, err := exec.Command(filepath.Join(repoRoot, "scripts", "build-python.sh"), dir).CombinedOutput()
		if err != nil {
			wheelErr = err
			t.Logf("%s", out)
			return
		}
		wheelPath = strings.TrimSpace(string(out[bytes.LastIndexByte(bytes.TrimSpace(out), '\n')+1:]))
	})
	if wheelErr != nil {
		t.Fatalf("scripts/build-python.sh: %v", wheelErr)
	}
	return wheelPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if wheelPath != "" {
		os.RemoveAll(filepath.Dir(wheelPath))
	}
	os.Exit(code)
}

func run(t *testing.T, ctx context.Context, dir string, env []string, stdin io.Reader, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Stdin = dir, stdin
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPythonWheel builds the wheel with scripts/build-python.sh, installs it
// with pip into a fresh virtual environment (no index, no network), grades
// the public grader cases with `redraft grade`, and runs
// python/test_redraft_grade.py there: every case graded through the Python
// API equals redraft grade's line; 8 Python threads grading at once agree
// and finish under a hard limit (faulthandler dumps every stack and exits 1
// past it); SIGINT, SIGTERM and SIGPIPE keep Python's behaviour; fork is
// refused loudly rather than hanging; verl's and TRL's call forms.
func TestPythonWheel(t *testing.T) {
	py := pycheck.Python(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	whl := buildWheel(t)
	if !regexp.MustCompile(`/redraft_grade-\d+\.\d+\.\d+-py3-none-(manylinux_\d+_\d+|linux)_(x86_64|aarch64)\.whl$`).MatchString(whl) {
		t.Fatalf("wheel name %q", whl)
	}
	tmp := t.TempDir()
	venv := filepath.Join(tmp, "venv")
	run(t, ctx, tmp, nil, nil, py, "-m", "venv", venv)
	vpy := filepath.Join(venv, "bin", "python")
	run(t, ctx, tmp, nil, nil, vpy, "-m", "pip", "install", "--no-index", "--no-deps", "--disable-pip-version-check", "--quiet", whl)

	// The public cases as redraft grade reads them, and its verdicts.
	src, err := os.ReadFile(filepath.Join(repoRoot, "rewards", "mathgrade", "testdata", "public_cases.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var cases bytes.Buffer
	for _, line := range bytes.Split(bytes.TrimSpace(src), []byte("\n")) {
		var c pair
		if err := json.Unmarshal(line, &c); err != nil {
			t.Fatal(err)
		}
		gold, pred := "", ""
		if c.Gold != nil {
			gold = *c.Gold
		}
		if c.Prediction != nil {
			pred = *c.Prediction
		}
		b, _ := json.Marshal(map[string]string{"gold": gold, "prediction": pred})
		cases.Write(append(b, '\n'))
	}
	casesPath := filepath.Join(tmp, "cases.jsonl")
	if err := os.WriteFile(casesPath, cases.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	redraft := filepath.Join(tmp, "redraft")
	run(t, ctx, repoRoot, nil, nil, "go", "build", "-o", redraft, "./cmd/redraft")
	expected := run(t, ctx, tmp, nil, bytes.NewReader(cases.Bytes()), redraft, "grade")
	if n := strings.Count(expected, "\n"); n != bytes.Count(cases.Bytes(), []byte("\n")) {
		t.Fatalf("redraft grade wrote %d lines", n)
	}
	expPath := filepath.Join(tmp, "expected.jsonl")
	if err := os.WriteFile(expPath, []byte(expected), 0o644); err != nil {
		t.Fatal(err)
	}
	// redraft serve, for the remote compute_score.
	srv := exec.CommandContext(ctx, redraft, "serve", "--addr", "127.0.0.1:0", "--workers", "2")
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "http://127.0.0.1:") {
		t.Fatalf("redraft serve said %q: %v", line, err)
	}
	url := strings.Fields(line[strings.Index(line, "http://"):])[0]
	test, err := filepath.Abs(filepath.Join(repoRoot, "python", "test_redraft_grade.py"))
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, ctx, tmp, []string{"REDRAFT_GRADE_CASES=" + casesPath, "REDRAFT_GRADE_EXPECTED=" + expPath,
		"REDRAFT_GRADE_INSTALLED=1", "REDRAFT_STRESS_SECONDS=120", "REDRAFT_GRADE_LIBRARY=", "REDRAFT_SERVE_URL=" + url},
		nil, vpy, "-I", test)
	t.Logf("%s", out)
	if !strings.Contains(out, "\nOK") || strings.Contains(out, "skipped") {
		t.Errorf("python/test_redraft_grade.py did not pass every test:\n%s", out)
	}
}

// TestTrainers runs python/test_redraft_grade_trainers.py with the real
// verl and TRL from PyPI (the environment of scripts/trainers-env.sh,
// REDRAFT_TRAINERS_PYTHON), the wheel's contents on PYTHONPATH: verl's
// reward managers load compute_score through custom_reward_function and
// score a DataProto; TRL's GRPOTrainer computes rewards with the package's
// reward function and trains one step on CPU with a tiny random model.
func TestTrainers(t *testing.T) {
	py := os.Getenv("REDRAFT_TRAINERS_PYTHON")
	if py == "" {
		if os.Getenv("REDRAFT_REQUIRE_TRAINERS") == "1" {
			t.Fatal("REDRAFT_REQUIRE_TRAINERS=1 but REDRAFT_TRAINERS_PYTHON is not set")
		}
		t.Skip("REDRAFT_TRAINERS_PYTHON is not set: REDRAFT_TRAINERS_PYTHON=$(scripts/trainers-env.sh) runs verl and TRL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	whl := buildWheel(t)
	site := t.TempDir()
	zr, err := zip.OpenReader(whl)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		p := filepath.Join(site, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	test, err := filepath.Abs(filepath.Join(repoRoot, "python", "test_redraft_grade_trainers.py"))
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, ctx, t.TempDir(), []string{"PYTHONPATH=" + site, "REDRAFT_GRADE_LIBRARY=",
		"CUDA_VISIBLE_DEVICES=", "WANDB_MODE=disabled", "TOKENIZERS_PARALLELISM=false", "HF_HUB_OFFLINE=1"},
		nil, py, test)
	t.Logf("%s", out)
	if !strings.Contains(out, "\nOK") || strings.Contains(out, "skipped") {
		t.Errorf("python/test_redraft_grade_trainers.py did not pass every test:\n%s", out)
	}
}
