package validate

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/redraft/redraft/export"
)

// checkCounts cross-checks the counts a manifest states with each other and
// with the rows read (t; complete is false when some listed rows could not be
// read, and the counts from rows are then not compared):
//
//   - rewards.rows equals datasets.rl.rows, and rewards.groups, less the
//     zero-variance groups dropped from the output, datasets.rl.groups (for
//     an Agent-R run, which writes no rl rows: the sft dataset's);
//   - rewards.failed, null_rewards, graded and finish_reasons equal the rl
//     rows with an error, a null reward, a correct flag and each finish
//     reason;
//   - each part of a merged run lists as many rows as its rl shards hold;
//   - the failures record (each part's for a merged run) has count lines,
//     each a failure, and its sha256; together they list rewards.failed
//     samples, unless the run is still running (its record is not written
//     yet); no failures record is on disk that the manifest does not list;
//   - skipped_total counts at least the skipped records listed.
//
// The per-dataset counts (rows and groups against the shards' entries, the
// shards' footers and their rows) are checked by each dataset's validator.
func checkCounts(rep *Report, dir string, m *export.Manifest, t *rlTally, complete bool) {
	fail := func(format string, args ...any) {
		rep.add(Violation{Dataset: "manifest", Row: -1, Msg: fmt.Sprintf(format, args...)})
	}
	rw := m.Rewards
	rl, hasRL := m.Datasets["rl"]
	switch {
	case hasRL:
		if rw.Rows != rl.Rows {
			fail("rewards.rows is %d, datasets.rl.rows is %d", rw.Rows, rl.Rows)
		}
		if rw.Groups-rw.DroppedZeroStd != rl.Groups {
			fail("rewards.groups is %d (%d of them dropped for zero variance), datasets.rl.groups is %d", rw.Groups, rw.DroppedZeroStd, rl.Groups)
		}
		if complete {
			for _, c := range []struct {
				name        string
				stated, got int64
				what        string
			}{
				{"failed", rw.Failed, t.failed, "with an error"},
				{"null_rewards", rw.NullRewards, t.nullRewards, "with a null reward"},
				{"graded", rw.Graded, t.graded, "graded (correct is set)"},
			} {
				if c.stated != c.got {
					fail("rewards.%s is %d, the rl shards hold %d rows %s", c.name, c.stated, c.got, c.what)
				}
			}
			reasons := map[string]bool{}
			for k := range rw.FinishReason {
				reasons[k] = true
			}
			for k := range t.finish {
				reasons[k] = true
			}
			for _, k := range sortedKeys(reasons) {
				if rw.FinishReason[k] != t.finish[k] {
					fail("rewards.finish_reasons[%q] is %d, the rl shards hold %d rows with that finish_reason", k, rw.FinishReason[k], t.finish[k])
				}
			}
		}
	case strings.HasPrefix(m.Source, "agent-r:"):
		sft := m.Datasets["sft"]
		if rw.Rows != sft.Rows {
			fail("rewards.rows is %d, datasets.sft.rows is %d", rw.Rows, sft.Rows)
		}
		if rw.Groups != sft.Groups {
			fail("rewards.groups is %d, datasets.sft.groups is %d", rw.Groups, sft.Groups)
		}
	}
	for i, p := range m.Parts {
		var rows int64
		for _, s := range rl.Shards {
			if strings.HasPrefix(s.Path, p.Dir+"/") {
				rows += s.Rows
			}
		}
		if p.Rows != rows {
			fail("parts[%d] (%s) rows is %d, its rl shards in datasets.rl hold %d", i, p.Dir, p.Rows, rows)
		}
	}

	// The failures record.
	var listed int64
	var records int
	check := func(label string, f *export.FailuresInfo) {
		records++
		n, err := checkFailuresFile(dir, f)
		if err != nil {
			fail("%s: %v", label, err)
			return
		}
		if n != f.Count {
			fail("%s.count is %d, %s has %d lines", label, f.Count, f.Path, n)
		}
		listed += n
	}
	if len(m.Parts) > 0 {
		for i, p := range m.Parts {
			if p.Failures != nil {
				check(fmt.Sprintf("parts[%d].failures", i), p.Failures)
			}
		}
	} else if m.Failures != nil {
		check("failures", m.Failures)
	} else if _, err := os.Stat(filepath.Join(dir, export.FailuresName)); err == nil {
		fail("%s is on disk but not in the manifest", export.FailuresName)
	}
	if hasRL && m.Status != export.StatusRunning && listed != rw.Failed {
		if records == 0 {
			fail("rewards.failed is %d, but the manifest lists no failures record", rw.Failed)
		} else {
			fail("rewards.failed is %d, the failures record lists %d", rw.Failed, listed)
		}
	}
	if m.SkippedTotal < int64(len(m.Skipped)) {
		fail("skipped_total is %d, but %d skipped records are listed", m.SkippedTotal, len(m.Skipped))
	}
}

// checkFailuresFile checks a failures record against its sha256 and returns
// its lines; each must be a failure with a task id and an error.
func checkFailuresFile(dir string, f *export.FailuresInfo) (int64, error) {
	if filepath.IsAbs(f.Path) || strings.Contains(f.Path, "..") {
		return 0, fmt.Errorf("path %s is not under the output directory", f.Path)
	}
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
	if err != nil {
		return 0, err
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != f.SHA256 {
		return 0, fmt.Errorf("%s: sha256 %s, manifest says %s", f.Path, hex.EncodeToString(sum[:]), f.SHA256)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		return 0, fmt.Errorf("%s: the last line is not ended", f.Path)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, len(b)+1)
	var n int64
	for sc.Scan() {
		n++
		var fl export.Failure
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&fl); err != nil {
			return n, fmt.Errorf("%s: line %d: %w", f.Path, n, err)
		}
		if fl.TaskID == "" || fl.Error == "" {
			return n, fmt.Errorf("%s: line %d: %w", f.Path, n, errors.New("a failure needs a task_id and an error"))
		}
	}
	return n, sc.Err()
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
