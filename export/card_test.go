package export

import (
	"testing"

	"github.com/redraft/redraft/schemas"
)

// Every column type of every released schema parses and prints back as
// written.
func TestParseTypeRoundTrip(t *testing.T) {
	for _, v := range []string{"rl/1", "rl/2", "rl/3", "rl/4", "rl/5", "rl/6", "sft/1", "sft/2", "sft/3", "sft/4", "pairs/1", "pairs/2", "verl/1"} {
		d, err := schemas.Load(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range d.Columns {
			ct, err := parseType(c.Type)
			if err != nil {
				t.Fatalf("%s %s: %v", v, c.Name, err)
			}
			if ct.String() != c.Type {
				t.Errorf("%s %s: %q printed back as %q", v, c.Name, c.Type, ct.String())
			}
		}
	}
	for _, bad := range []string{"list<string", "struct<a string>", "float32", "struct<a: int32,b: bool>", "list<int32>>"} {
		if _, err := parseType(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
