package envtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Start returns the base URL of a real environment server for name
// (scienceworld, textworld-express, example), started by
// scripts/env-server.sh under repoRoot in a run directory of the test's own
// and stopped when the test ends, or the one at REDRAFT_<NAME>_URL when set.
// Without Java or the environments venv the test is skipped with a loud
// message; with REDRAFT_REQUIRE_ENVS=1 (scripts/test.sh) that is a failure.
func Start(t *testing.T, repoRoot, name string) string {
	t.Helper()
	required := os.Getenv("REDRAFT_REQUIRE_ENVS") == "1"
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if required {
			t.Fatalf("REDRAFT_REQUIRE_ENVS=1, but %s", msg)
		}
		t.Skipf("SKIPPING: %s (REDRAFT_REQUIRE_ENVS=1 makes this a failure)", msg)
	}
	if name != "example" {
		if u := os.Getenv("REDRAFT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_URL"); u != "" {
			return u
		}
		if _, err := exec.LookPath("java"); err != nil {
			unavailable("%s needs Java 17 on PATH", name)
		}
		if !required {
			out, _ := exec.Command(filepath.Join(repoRoot, "scripts", "env-server.sh"), "paths").Output()
			venv := ""
			for _, l := range strings.Split(string(out), "\n") {
				if v, ok := strings.CutPrefix(l, "venv="); ok {
					venv = v
				}
			}
			if _, err := os.Stat(filepath.Join(venv, "bin", "python")); venv == "" || err != nil {
				unavailable("no environments venv at %q: run scripts/env-server.sh venv (it installs python/requirements-envs.txt from PyPI)", venv)
			}
		}
	}
	for _, tool := range []string{"python3", "curl", "setsid"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable("scripts/env-server.sh needs %s", tool)
		}
	}
	runDir := t.TempDir()
	script := filepath.Join(repoRoot, "scripts", "env-server.sh")
	cmd := exec.Command(script, "start", name)
	cmd.Env = append(os.Environ(), "REDRAFT_ENV_RUN_DIR="+runDir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/env-server.sh start %s: %v\n%s", name, err, stderr.String())
	}
	t.Cleanup(func() {
		stop := exec.Command(script, "stop", name)
		stop.Env = cmd.Env
		if out, err := stop.CombinedOutput(); err != nil {
			t.Errorf("scripts/env-server.sh stop %s: %v\n%s", name, err, out)
		}
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(runDir, name+".log")); err == nil {
				t.Logf("%s's log:\n%s", name, b)
			}
		}
	})
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	url := lines[len(lines)-1]
	t.Logf("%s at %s (started in %v)", name, url, time.Since(start).Round(time.Millisecond))
	return url
}

// Sessions is a real server's GET /sessions: the sessions it holds open.
func Sessions(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url + "/sessions")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct {
		Active int `json:"active_sessions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c.Active
}
