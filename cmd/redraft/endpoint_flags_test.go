package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// A preset runs against another server without editing its YAML, as
// docs/endpoints.md shows for the local model: --endpoint replaces
// endpoint.base_url and --model endpoint.model. The URL is not part of the
// run's identity, the model is.
func TestRunEndpointFlags(t *testing.T) {
	preset, err := filepath.Abs("../../configs/presets/grpo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	quickstart := writeConfig(t, strings.ReplaceAll(mustRead(t, "../../configs/quickstart.yaml"), "testdata/", "../../testdata/"))
	dir := t.TempDir()
	_, answers := toyTasks(t, dir, 2) // dir/tasks.jsonl, the preset's source.path
	srv := fakeserver.New(fakeserver.AnswerBySeed(answers))
	defer srv.Close()
	other := fakeserver.New(nil)
	defer other.Close()
	t.Chdir(dir)

	out := filepath.Join(dir, "out")
	code, _, stderr := redraft(t, "run", "--config", preset, "--endpoint", srv.BaseURL(), "--model", "local/small", "--out", out, "--progress", "off", "--no-audit")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	reqs := srv.Requests()
	if len(reqs) != 2*8 {
		t.Fatalf("%d requests, want 16 (2 tasks, n 8)", len(reqs))
	}
	for _, r := range reqs {
		if r.Model != "local/small" {
			t.Fatalf("requested model %q, want local/small", r.Model)
		}
	}
	m, err := export.ReadManifest(out)
	if err != nil || m.Status != export.StatusComplete {
		t.Fatalf("manifest: %v %+v", err, m)
	}
	var cfg struct {
		Endpoint struct {
			Model string `json:"model"`
		} `json:"endpoint"`
	}
	if err := json.Unmarshal(m.Config, &cfg); err != nil || cfg.Endpoint.Model != "local/small" {
		t.Errorf("the manifest's configuration names model %q, want local/small (%v)", cfg.Endpoint.Model, err)
	}
	// Another URL serving the same model: the same run, complete.
	code, _, stderr = redraft(t, "run", "--config", preset, "--endpoint", other.BaseURL(), "--model", "local/small", "--out", out, "--progress", "off", "--no-audit")
	if code != 0 || !strings.Contains(stderr, "already holds a complete run") || other.Count() != 0 {
		t.Errorf("same model at another URL: exit %d, %d requests: %s", code, other.Count(), stderr)
	}

	// --max-in-flight bounds the requests outstanding: with 1, the server
	// never sees two at once; the run is the same run (not in its identity).
	var mu sync.Mutex
	busy, peak := 0, 0
	slow := fakeserver.New(func(req *fakeserver.Request) fakeserver.Reply {
		mu.Lock()
		busy++
		peak = max(peak, busy)
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		busy--
		mu.Unlock()
		return fakeserver.AnswerBySeed(answers)(req)
	})
	defer slow.Close()
	out1 := filepath.Join(dir, "out1")
	code, _, stderr = redraft(t, "run", "--config", preset, "--endpoint", slow.BaseURL(), "--model", "local/small", "--max-in-flight", "1", "--out", out1, "--progress", "off", "--no-audit")
	if code != 0 || slow.Count() != 16 || peak != 1 {
		t.Fatalf("--max-in-flight 1: exit %d, %d requests, %d at once: %s", code, slow.Count(), peak, stderr)
	}
	if m1, err := export.ReadManifest(out1); err != nil || m1.ConfigHash != m.ConfigHash {
		t.Errorf("--max-in-flight changed the run's identity: %v", err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", quickstart, "--endpoint", srv.BaseURL()}, "it has none"},
		{[]string{"--config", quickstart, "--max-in-flight", "4"}, "it has none"},
		{[]string{"--config", preset, "--max-in-flight", "-1"}, "--max-in-flight must be at least 1"},
		{[]string{"--config", preset, "--endpoint", "ftp://example.com/v1"}, "endpoint.base_url"},
	} {
		out := filepath.Join(t.TempDir(), "x")
		code, _, stderr := redraft(t, append([]string{"run", "--out", out, "--progress", "off", "--no-audit"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d: %s; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%v: a refused run left %s behind (%v)", tc.args, out, err)
		}
	}
}
