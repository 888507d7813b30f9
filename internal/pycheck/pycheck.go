// Package pycheck runs the Python consumer check (scripts/check_shards.py)
// on an output directory from tests: pyarrow reads every shard and verifies
// schema, checksums, counts, masks and advantages independently of the Go
// code.
package pycheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Python returns the interpreter from REDRAFT_PYTHON (set by scripts/test.sh).
// Without it the test is skipped with a message, unless
// REDRAFT_REQUIRE_PYTHON is set, when it fails.
func Python(t *testing.T) string {
	t.Helper()
	py := os.Getenv("REDRAFT_PYTHON")
	if py == "" {
		if os.Getenv("REDRAFT_REQUIRE_PYTHON") != "" {
			t.Fatal("REDRAFT_REQUIRE_PYTHON is set but REDRAFT_PYTHON is not")
		}
		t.Skip("REDRAFT_PYTHON is not set: run scripts/test.sh for the pyarrow check")
	}
	return py
}

// Check runs scripts/check_shards.py on dir; root is the repository root
// relative to the test's package directory.
func Check(t *testing.T, root, dir string) {
	t.Helper()
	py := Python(t)
	out, err := exec.Command(py, filepath.Join(root, "scripts", "check_shards.py"), dir, "--schemas", filepath.Join(root, "schemas")).CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("pyarrow check failed: %v", err)
	}
}

// Tokenizer returns REDRAFT_TOKENIZERS/<family>/tokenizer.json (fetched by
// scripts/fetch-tokenizers.sh). Without REDRAFT_TOKENIZERS the test is
// skipped with a message, unless REDRAFT_REQUIRE_TOKENIZERS=1, when it
// fails; a set directory without the file fails.
func Tokenizer(t *testing.T, family string) string {
	t.Helper()
	dir := os.Getenv("REDRAFT_TOKENIZERS")
	if dir == "" {
		if os.Getenv("REDRAFT_REQUIRE_TOKENIZERS") == "1" {
			t.Fatal("REDRAFT_REQUIRE_TOKENIZERS=1 but REDRAFT_TOKENIZERS is not set")
		}
		t.Skip("REDRAFT_TOKENIZERS is not set: run REDRAFT_TOKENIZERS=$(scripts/fetch-tokenizers.sh) to test the real tokenizers")
	}
	p := filepath.Join(dir, family, "tokenizer.json")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("REDRAFT_TOKENIZERS is set: %v", err)
	}
	return p
}
