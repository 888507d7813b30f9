package export

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/redraft/redraft/internal/doccheck"
)

// TestTokenTrackDocColumns keeps docs/token-track.md's trainer mapping
// true to the rl schema: every column its tables name for an rl row is a
// column of RLRow, and the mapping uses the columns a trainer needs for a
// token-exact sample.
func TestTokenTrackDocColumns(t *testing.T) {
	cols := map[string]bool{}
	rt := reflect.TypeOf(RLRow{})
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		cols[name] = true
	}
	tables := doccheck.Checked(t, "..", "docs/token-track.md", "TestTokenTrackDocColumns")
	if len(tables) != 2 {
		t.Fatalf("%d tables, want verl's and slime's", len(tables))
	}
	code, word := regexp.MustCompile("`([^`]+)`"), regexp.MustCompile(`[a-z_]+`)
	for _, tbl := range tables {
		used := map[string]bool{}
		lines := strings.Split(strings.TrimSpace(tbl), "\n")
		for _, line := range lines[2:] {
			cells := strings.Split(strings.Trim(line, "|"), "|")
			if len(cells) != 2 {
				t.Fatalf("row %q: want two cells", line)
			}
			for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
				for _, w := range word.FindAllString(m[1], -1) {
					if w == "logprob" || w == "len" {
						continue // a logprobs entry's field; Python's len
					}
					if !cols[w] {
						t.Errorf("%q names %q, which is not an rl column", line, w)
					}
					used[w] = true
				}
			}
		}
		for _, need := range []string{"input_ids", "labels", "logprobs", "logprobs_reason"} {
			if !used[need] {
				t.Errorf("a mapping table does not use %s:\n%s", need, tbl)
			}
		}
	}
}
