package export

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A failures record rolled back, or resumed, at a checkpoint holds exactly
// the lines up to it, with a matching checksum.
func TestFailureLogCheckpoints(t *testing.T) {
	dir := t.TempDir()
	row := func(id string) []RLRow {
		e := "boom"
		return []RLRow{{TaskID: id, Error: &e}, {TaskID: id}}
	}
	l := NewFailureLog(dir)
	for _, id := range []string{"a", "b"} {
		if err := l.Add(row(id)); err != nil {
			t.Fatal(err)
		}
	}
	count, size, err := l.Flush()
	if err != nil || count != 2 {
		t.Fatalf("flush: %d %v", count, err)
	}
	l.Commit()
	l.Add(row("c"))
	if err := l.Rollback(); err != nil {
		t.Fatal(err)
	}
	l.Add(row("d"))
	// Resume from the checkpoint: "d" (written after it) goes too.
	l.bw.Flush()
	r, err := ResumeFailureLog(dir, count, size)
	if err != nil {
		t.Fatal(err)
	}
	r.Add(row("e"))
	info, err := r.Close()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, FailuresName))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		ids = append(ids, line[strings.Index(line, `"task_id":"`)+11:][:1])
	}
	sum := sha256.Sum256(b)
	if strings.Join(ids, "") != "abe" || info.Count != 3 || info.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("record %q, info %+v", ids, info)
	}
	// A record shorter than its checkpoint is refused.
	os.Rename(filepath.Join(dir, FailuresName), filepath.Join(dir, "."+FailuresName+".tmp"))
	if _, err := ResumeFailureLog(dir, 3, info.Count*1000); err == nil {
		t.Error("resumed a record shorter than its checkpoint")
	}
}
