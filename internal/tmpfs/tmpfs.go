// Package tmpfs gives tests a small real filesystem that fills up: a tmpfs
// of a chosen size, mounted on a temporary directory, which a test can grow
// to free space. Mounting needs root (CAP_SYS_ADMIN) on Linux; elsewhere the
// test is skipped with a message, or fails when REDRAFT_REQUIRE_TMPFS=1
// (scripts/test.sh sets it: CI runs as root).
package tmpfs

import (
	"os"
	"testing"
)

// Dir mounts a tmpfs of size bytes on a new temporary directory and returns
// it; it is unmounted when the test ends.
func Dir(t testing.TB, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := mount(dir, size); err != nil {
		if os.Getenv("REDRAFT_REQUIRE_TMPFS") == "1" {
			t.Fatalf("REDRAFT_REQUIRE_TMPFS=1 but no tmpfs: %v", err)
		}
		t.Skipf("needs a small real filesystem (run as root; REDRAFT_REQUIRE_TMPFS=1 makes this a failure): %v", err)
	}
	t.Cleanup(func() {
		if err := unmount(dir); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

// Resize changes the size of the tmpfs Dir mounted on dir, keeping its files
// (mount -o remount,size=N).
func Resize(t testing.TB, dir string, size int64) {
	t.Helper()
	if err := resize(dir, size); err != nil {
		t.Fatal(err)
	}
}
