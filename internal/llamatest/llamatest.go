// Package llamatest finds the real llama-server the integration tests run
// against (scripts/test.sh starts one and exports REDRAFT_LLAMA_URL).
package llamatest

import (
	"os"
	"strings"
	"testing"
)

// Model is the model id scripts/llama-server.sh serves.
const Model = "SmolLM2-135M-Instruct"

// URL is the base URL of the real llama-server (REDRAFT_LLAMA_URL, without a
// trailing slash). Without it the test is skipped, or fails when
// REDRAFT_REQUIRE_LLAMA=1.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("REDRAFT_LLAMA_URL")
	if u == "" {
		const how = "start one with `export REDRAFT_LLAMA_URL=$(scripts/llama-server.sh start | tail -n1)`"
		if os.Getenv("REDRAFT_REQUIRE_LLAMA") == "1" {
			t.Fatal("REDRAFT_REQUIRE_LLAMA=1 but REDRAFT_LLAMA_URL is unset; " + how)
		}
		t.Skip("REDRAFT_LLAMA_URL is unset, so there is no real llama-server to test against; " + how)
	}
	return strings.TrimRight(u, "/")
}
