package mathgrade

import (
	"strings"
	"testing"
)

func TestLastOccurrences(t *testing.T) {
	s := strings.Repeat("ab", 10) // a at 0,2,...,18
	got := lastOccurrences(s, "a", 3)
	if len(got) != 3 || got[0] != 18 || got[1] != 16 || got[2] != 14 {
		t.Errorf("got %v", got)
	}
	if got := lastOccurrences(s, "a", 50); len(got) != 10 || got[0] != 18 || got[9] != 0 {
		t.Errorf("got %v", got)
	}
	if got := lastOccurrences(s, "z", 3); len(got) != 0 {
		t.Errorf("got %v", got)
	}
	if lastIndex(s, "ba") != strings.LastIndex(s, "ba") || lastIndex(s, "x") != -1 {
		t.Error("lastIndex differs from strings.LastIndex")
	}
}
