package mathgrade

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestExtractRulesAreDocumented: the rule names the schemas and dataset
// cards list for extract_rule are exactly those Extract returns, one input
// per rule (the schemas once listed answer_line and answer_phrase, which
// were never emitted).
func TestExtractRulesAreDocumented(t *testing.T) {
	inputs := map[string]string{
		"answer_tag":     "work <answer>4</answer>",
		"final_answer":   "So the final answer is 4.",
		"boxed":          `Thus \boxed{4}.`,
		"fbox":           `Thus \fbox{4}.`,
		"hash":           "2+2=4\n#### 4",
		"the_answer_is":  "I computed it. The answer is 4.",
		"answer_colon":   "We add.\nAnswer: 4",
		"answer_heading": "We add.\n\n# Answer\n\n4",
		"choice":         "the correct option is (B)",
		"bare":           "4",
	}
	var emitted []string
	for want, text := range inputs {
		_, rule, ok := Extract(text)
		if !ok || rule != want {
			t.Errorf("Extract(%q): rule %q (found %v), want %q", text, rule, ok, want)
		}
		emitted = append(emitted, want)
	}
	slices.Sort(emitted)
	listRe := regexp.MustCompile(`How the final answer was found \(([a-z_, ]+)\)`)
	for _, schema := range []string{"rl.v1.json", "rl.v2.json", "rl.v3.json", "rl.v4.json"} {
		b, err := os.ReadFile("../../schemas/" + schema)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Columns []struct {
				Name, Description string
			} `json:"columns"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, c := range doc.Columns {
			if c.Name != "extract_rule" {
				continue
			}
			found = true
			m := listRe.FindStringSubmatch(c.Description)
			if m == nil {
				t.Fatalf("%s: extract_rule's description does not list the rules: %q", schema, c.Description)
			}
			listed := strings.Split(m[1], ", ")
			slices.Sort(listed)
			if !slices.Equal(listed, emitted) {
				t.Errorf("%s lists %v; Extract emits %v", schema, listed, emitted)
			}
		}
		if !found {
			t.Errorf("%s has no extract_rule column", schema)
		}
	}
}
