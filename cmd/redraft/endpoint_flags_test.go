package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", quickstart, "--endpoint", srv.BaseURL()}, "it has none"},
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
