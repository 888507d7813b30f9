package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// A flag given on the command line is used or refused, never taken for
// "left out" because it equals the sentinel its default is kept as (issue
// 14 item 10: --eps -1 ran with 1e-6, --temperature -0.5 with the server's
// default).
func TestExplicitFlagsRefused(t *testing.T) {
	cfg := writeConfig(t, strings.ReplaceAll(mustRead(t, "../../configs/quickstart.yaml"), "testdata/", "../../testdata/"))
	// The splice input does not exist: a flag that is not refused fails the
	// command right after, with exit 1.
	none := filepath.Join(t.TempDir(), "none.jsonl")
	for _, tc := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"advantages", "--eps", "-1"}, "{\"rewards\": [1, 0]}\n", "eps must be a finite number >= 0, got -1"},
		{[]string{"advantages", "--estimator", "reinforce_pp_baseline", "--batch-groups", "0"}, "{\"rewards\": [1, 0]}\n", "batch_groups: must be at least 1, got 0"},
		{[]string{"run", "--config", cfg, "--out", t.TempDir(), "--workers", "-3"}, "", "--workers -3: want 0 (one per core) or more"},
		{[]string{"splice", "--format", "mr-gsm8k", "--input", none, "--out", t.TempDir(), "--endpoint", "http://127.0.0.1:1/v1", "--model", "m", "--temperature", "-0.5"}, "", "--temperature -0.5: want a finite number >= 0"},
		{[]string{"splice", "--format", "mr-gsm8k", "--input", none, "--out", t.TempDir(), "--endpoint", "http://127.0.0.1:1/v1", "--model", "m", "--max-tokens", "0"}, "", "--max-tokens 0: want at least 1"},
	} {
		code, _, stderr := redraftIn(t, tc.stdin, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d: %s; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}
