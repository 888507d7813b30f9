package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallAndVersion installs the binary as the docs say (go install
// ./cmd/redraft from a clone) and checks that "redraft version" names the
// commit it was built from, as manifests' code_version does.
func TestInstallAndVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary (about 20 s); -short skips it")
	}
	rev, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("not in a git clone: %v", err)
	}
	bin := t.TempDir()
	cmd := exec.Command("go", "install", "./cmd/redraft")
	cmd.Dir = "../.."
	// -buildvcs=true: this machine sets GOFLAGS=-buildvcs=false, which would
	// leave the revision out; a plain go install in a clone stamps it.
	cmd.Env = append(cmd.Environ(), "GOBIN="+bin, "GOFLAGS=-buildvcs=true")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(bin, "redraft"), "version").CombinedOutput()
	if err != nil {
		t.Fatalf("redraft version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "redraft ") || !strings.Contains(string(out), strings.TrimSpace(string(rev))) || !strings.Contains(string(out), "go1.") {
		t.Fatalf("redraft version printed %q; want the commit %s and the Go version", out, rev)
	}
	if code, _, stderr := redraft(t, "version", "extra"); code != 2 || !strings.Contains(stderr, "no arguments") {
		t.Errorf("version with an argument: exit %d: %s", code, stderr)
	}
}
