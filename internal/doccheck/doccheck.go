// Package doccheck ties the example outputs of the README and docs/ to the
// tests that produce them, so that they cannot drift from the program.
//
// A fenced block (or a table) that shows what a command prints or writes is
// preceded by a marker comment naming the tests that check it:
//
//	<!-- checked by TestName -->
//	<!-- recorded 2026-05-01, SETUP; checked by TestName -->
//
// The first form is for output a test generates on bundled data and compares
// with the block; the second for output of a real run that a test cannot
// repeat (a real model server), whose form the named test checks against
// the current code. A block that is not output (a configuration, a
// command to type) may say so with <!-- not output: WHY -->.
// cmd/redraft's TestDocsOutputBlocksAreChecked requires a marker on every
// output block and that the tests it names exist and read the page.
package doccheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Block is a fenced code block or a table of a Markdown page.
type Block struct {
	Page   string // the page, relative to the repository root, with slashes
	Line   int    // the line of the opening fence (or the table's header), from 1
	Lang   string // the fence's info string; "table" for a table
	Text   string // the content, without the fences, ending with a newline
	Marker string // the text of the marker comment right before it, "" if none
}

// Tests are the test names the marker gives after "checked by".
func (b Block) Tests() []string {
	_, after, ok := strings.Cut(b.Marker, "checked by ")
	if !ok {
		return nil
	}
	return regexp.MustCompile(`\bTest\w+`).FindAllString(after, -1)
}

// Recorded says whether the marker says the block was recorded from a real
// run.
func (b Block) Recorded() bool { return strings.HasPrefix(b.Marker, "recorded ") }

// NotOutput says whether the marker says the block is not output.
func (b Block) NotOutput() bool { return strings.HasPrefix(b.Marker, "not output") }

func (b Block) String() string { return fmt.Sprintf("%s:%d", b.Page, b.Line) }

// Pages are README.md and every Markdown page under docs/, relative to
// root, with slashes.
func Pages(root string) ([]string, error) {
	pages := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			pages = append(pages, filepath.ToSlash(rel))
		}
		return err
	})
	sort.Strings(pages[1:])
	return pages, err
}

var markerRE = regexp.MustCompile(`^<!--\s*(.*?)\s*-->$`)

// Parse finds the fenced blocks and tables of a page.
func Parse(page, text string) []Block {
	lines := strings.Split(text, "\n")
	var out []Block
	marker := func(i int) string {
		for j := i - 1; j >= 0; j-- {
			l := strings.TrimSpace(lines[j])
			if l == "" {
				continue
			}
			if m := markerRE.FindStringSubmatch(l); m != nil {
				return m[1]
			}
			return ""
		}
		return ""
	}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "```"):
			b := Block{Page: page, Line: i + 1, Lang: strings.TrimSpace(strings.TrimPrefix(l, "```")), Marker: marker(i)}
			var body strings.Builder
			for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
				body.WriteString(lines[i] + "\n")
			}
			b.Text = body.String()
			out = append(out, b)
		case strings.HasPrefix(l, "|") && (i == 0 || !strings.HasPrefix(lines[i-1], "|")):
			b := Block{Page: page, Line: i + 1, Lang: "table", Marker: marker(i)}
			var body strings.Builder
			for ; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
				body.WriteString(lines[i] + "\n")
			}
			b.Text = body.String()
			out = append(out, b)
		}
	}
	return out
}

// Checked returns the texts of the blocks of page (relative to root) whose
// marker names test, in page order; the test fails when there is none.
func Checked(t testing.TB, root, page, test string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(page)))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, blk := range Parse(page, string(b)) {
		for _, name := range blk.Tests() {
			if name == test {
				out = append(out, blk.Text)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no block marked <!-- checked by %s -->", page, test)
	}
	return out
}

// One is Checked for a page with exactly n blocks marked for test.
func One(t testing.TB, root, page, test string) string {
	t.Helper()
	blocks := Checked(t, root, page, test)
	if len(blocks) != 1 {
		t.Fatalf("%s has %d blocks marked for %s, want 1", page, len(blocks), test)
	}
	return blocks[0]
}

// Lines compares an output with a block line by line after norm (nil: none)
// has been applied to both, reporting the first difference.
func Lines(t testing.TB, where, got, want string, norm func(string) string) {
	t.Helper()
	if norm == nil {
		norm = func(s string) string { return s }
	}
	g := strings.Split(strings.TrimRight(norm(got), "\n"), "\n")
	w := strings.Split(strings.TrimRight(norm(want), "\n"), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Errorf("%s differs from the program at line %d:\n  doc:     %q\n  program: %q\nthe program prints:\n%s", where, i+1, wl, gl, got)
			return
		}
	}
}

// Match compares a JSON example of the docs (want) with a real value (got,
// anything that marshals to JSON) under the docs' abbreviations:
//
//   - an object shows some of the value's keys (null columns and others are
//     left out), each of which must match; a key "..." stands for the rest;
//   - a string matches when the text around each "..." or "…" in it (and
//     the spaces next to it) appears in the value in order, starting at its
//     start and ending at its end unless the string starts or ends with one
//     ("Let me work…" is a prefix); an object or array stands for a string holding that JSON (a
//     metadata column shown parsed);
//   - a number written with k decimals matches the value rounded to k
//     decimals; an integer matches exactly;
//   - an array matches element by element; a last element "..." stands for
//     the rest.
//
// structural names paths (as "metadata.grade.reason", "messages[1].content")
// whose value came from a model in a recorded run: for those only the
// presence of the key (and the keys under it) is checked, not the value.
func Match(want string, got any, structural ...string) error {
	var w any
	dec := json.NewDecoder(strings.NewReader(want))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("the doc's JSON: %w", err)
	}
	b, err := json.Marshal(got)
	if err != nil {
		return err
	}
	var g any
	dec = json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&g); err != nil {
		return err
	}
	skip := map[string]bool{}
	for _, p := range structural {
		skip[p] = true
	}
	var errs []string
	match("", w, g, skip, false, &errs)
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// Elided is the docs' mark of text left out.
func Elided(s string) bool { return strings.Contains(s, "...") || strings.Contains(s, "…") }

func match(path string, want, got any, skip map[string]bool, keysOnly bool, errs *[]string) {
	fail := func(format string, a ...any) {
		*errs = append(*errs, fmt.Sprintf("%s: ", strings.TrimPrefix(path, "."))+fmt.Sprintf(format, a...))
	}
	keysOnly = keysOnly || skip[strings.TrimPrefix(path, ".")]
	// A JSON column shown parsed.
	if s, ok := got.(string); ok {
		switch want.(type) {
		case map[string]any, []any:
			dec := json.NewDecoder(strings.NewReader(s))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil {
				fail("shown as JSON, but the value is the string %q", s)
				return
			}
			got = v
		}
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			fail("an object in the doc, %s in the program", kind(got))
			return
		}
		for _, k := range sortedKeys(w) {
			if k == "..." {
				continue
			}
			gv, ok := g[k]
			if !ok {
				fail("key %q is not in the program's output (its keys: %s)", k, strings.Join(sortedKeys(g), ", "))
				continue
			}
			match(path+"."+k, w[k], gv, skip, keysOnly, errs)
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			if !keysOnly || got != nil {
				fail("an array in the doc, %s in the program", kind(got))
			}
			return
		}
		n := len(w)
		if n > 0 && w[n-1] == "..." {
			n--
			if len(g) < n {
				fail("%d elements, the doc shows %d", len(g), n)
				return
			}
		} else if len(g) != n && !keysOnly {
			fail("%d elements, the doc shows %d", len(g), n)
			return
		}
		for i := 0; i < n && i < len(g); i++ {
			match(fmt.Sprintf("%s[%d]", path, i), w[i], g[i], skip, keysOnly, errs)
		}
		if keysOnly && len(g) > 0 {
			// Structure only: every element shown has the keys of the
			// program's first.
			for i := len(g); i < n; i++ {
				match(fmt.Sprintf("%s[%d]", path, i), w[i], g[0], skip, keysOnly, errs)
			}
		}
	default:
		if keysOnly {
			return
		}
		switch w := want.(type) {
		case string:
			g, ok := got.(string)
			if !ok {
				fail("the doc's %q is %s in the program", w, kind(got))
			} else if !matchText(w, g) {
				fail("the doc shows %q, the program wrote %q", w, g)
			}
		case json.Number:
			g, ok := got.(json.Number)
			if !ok {
				fail("the doc's %s is %s in the program", w, kind(got))
				return
			}
			if !matchNumber(string(w), string(g)) {
				fail("the doc shows %s, the program wrote %s", w, g)
			}
		default: // bool, null
			if want != got {
				fail("the doc shows %v, the program wrote %v", want, got)
			}
		}
	}
}

// elision is a mark of text left out, with the spaces around it: "a ... b"
// stands for "a" and "b" with anything between them, spaces or none.
var elision = regexp.MustCompile(`[ \t]*(\.\.\.|…)[ \t]*`)

// matchText matches a doc string with "..." or "…" elisions.
func matchText(want, got string) bool {
	if !Elided(want) {
		return want == got
	}
	parts := elision.Split(want, -1)
	if !strings.HasPrefix(got, parts[0]) {
		return false
	}
	rest := got[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(rest, p)
		}
		k := strings.Index(rest, p)
		if k < 0 {
			return false
		}
		rest = rest[k+len(p):]
	}
	return true
}

func matchNumber(want, got string) bool {
	if !strings.ContainsAny(want, ".eE") {
		return want == got || want+".0" == got
	}
	w, err1 := strconv.ParseFloat(want, 64)
	g, err2 := strconv.ParseFloat(got, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	_, frac, _ := strings.Cut(want, ".")
	scale := math.Pow(10, float64(len(frac)))
	return math.Round(g*scale) == math.Round(w*scale)
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
