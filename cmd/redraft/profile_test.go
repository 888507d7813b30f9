package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --cpuprofile and --memprofile write pprof profiles (gzipped protobufs
// whose string tables name their sample types); a profile that cannot be
// written is reported.
func TestRunProfiles(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, strings.ReplaceAll(mustRead(t, "../../configs/quickstart.yaml"), "testdata/", "../../testdata/"))
	cpu, heap := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "heap.pprof")
	code, _, stderr := redraft(t, "run", "--config", cfg, "--out", filepath.Join(dir, "out"), "--no-audit", "--progress", "off",
		"--cpuprofile", cpu, "--memprofile", heap)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for path, want := range map[string]string{cpu: "cpu", heap: "inuse_space"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil || !bytes.Contains(raw, []byte(want)) {
			t.Errorf("%s: %v; %d bytes without %q", path, err, len(raw), want)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".memprofile-*")); len(left) != 0 {
		t.Errorf("temporary profiles left: %v", left)
	}
	code, _, stderr = redraft(t, "run", "--config", cfg, "--out", filepath.Join(dir, "out2"), "--no-audit", "--progress", "off",
		"--memprofile", filepath.Join(dir, "missing", "heap.pprof"))
	if code != 0 || !strings.Contains(stderr, "--memprofile:") {
		t.Errorf("unwritable heap profile: exit %d: %s", code, stderr)
	}
}
