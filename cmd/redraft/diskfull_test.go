package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/tmpfs"
)

// redraft splice writes its shards through the same writers as a run, with
// no journal: on a disk that fills (at a shard's rows, at its footer, at the
// manifest) it fails, and what it leaves never claims a row it does not
// hold; with room, it writes every trajectory.
func TestSpliceDiskFull(t *testing.T) {
	const input = "../../testdata/prm800k/phase1_reconstructed.jsonl.gz"
	for _, size := range []int64{96 << 10, 400 << 10, 512 << 10} {
		mnt := tmpfs.Dir(t, size)
		out := filepath.Join(mnt, "out")
		code, _, stderr := redraft(t, "splice", "--format", "prm800k", "--input", input, "--out", out)
		if code == 0 || !strings.Contains(stderr, "no space left on device") {
			t.Fatalf("%d KiB: exit %d: %s", size>>10, code, stderr)
		}
		m, err := export.ReadManifest(out)
		switch {
		case errors.Is(err, os.ErrNotExist):
			t.Logf("%d KiB: no manifest (%s)", size>>10, strings.TrimSpace(stderr))
		case err != nil:
			t.Fatal(err)
		default:
			t.Logf("%d KiB: manifest %s, %d rows (%s)", size>>10, m.Status, m.Datasets["sft"].Rows, strings.TrimSpace(stderr))
			if m.Status == export.StatusComplete {
				t.Fatalf("%d KiB: a splice stopped by a full disk wrote a complete manifest", size>>10)
			}
			if code, stdout, _ := redraft(t, "validate", out); code != 0 {
				t.Fatalf("%d KiB: the failed splice's manifest claims what it does not hold:\n%s", size>>10, stdout)
			}
		}
		tmpfs.Resize(t, mnt, 64<<20)
		code, _, stderr = redraft(t, "splice", "--format", "prm800k", "--input", input, "--out", out, "--overwrite")
		if code != 0 || !strings.Contains(stderr, "spliced 781 trajectories") {
			t.Fatalf("%d KiB, with room: exit %d: %s", size>>10, code, stderr)
		}
		if code, stdout, _ := redraft(t, "validate", out); code != 0 {
			t.Fatalf("%d KiB, with room: validate:\n%s", size>>10, stdout)
		}
	}
}
