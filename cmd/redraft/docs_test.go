package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/redraft/redraft/internal/doccheck"
	"github.com/redraft/redraft/internal/pycheck"
	"github.com/redraft/redraft/pipeline"
)

// The manual lives in docs/ and the README is its front door. These tests
// keep the parts that a test can check true: every configuration key is in
// the reference table, every relative link resolves, the README stays short,
// and the commands it lists are the CLI's.

const repoRoot = "../.."

// configKeys walks t's YAML keys as dotted paths. A struct is walked into;
// a type that decodes itself (a duration, a byte size), a map or a slice is
// one key.
func configKeys(prefix string, t reflect.Type, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	unmarshaler := reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if tag == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if strings.Contains(opts, "inline") || f.Anonymous && name == "" {
			configKeys(prefix, ft, out)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(unmarshaler) && !ft.Implements(unmarshaler) {
			configKeys(key, ft, out)
			continue
		}
		*out = append(*out, key)
	}
}

// referenceRows reads the configuration reference table: each row's keys
// (the first cell's backticked names; a short name after the first takes
// the first's prefix, as in "`sampling.temperature`, `top_p`") mapped to the
// row's text.
func referenceRows(t *testing.T, doc string) map[string]string {
	t.Helper()
	rows := map[string]string{}
	tick := regexp.MustCompile("`([a-z_][a-z0-9_.]*)`")
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 3 {
			continue
		}
		names := tick.FindAllStringSubmatch(cells[1], -1)
		if len(names) == 0 {
			continue
		}
		first := names[0][1]
		prefix := ""
		if i := strings.LastIndexByte(first, '.'); i >= 0 {
			prefix = first[:i+1]
		}
		for k, m := range names {
			key := m[1]
			if k > 0 && !strings.Contains(key, ".") {
				key = prefix + key
			}
			rows[key] = line
		}
	}
	return rows
}

// documented reports whether key has a row of its own, or an ancestor's row
// names its last part (an endpoint row that lists `{base_url, model, ...}`).
func documented(rows map[string]string, key string) bool {
	if _, ok := rows[key]; ok {
		return true
	}
	leaf := key[strings.LastIndexByte(key, '.')+1:]
	word := regexp.MustCompile(`(^|[^a-z_])` + regexp.QuoteMeta(leaf) + `([^a-z_]|$)`)
	for p := key; strings.Contains(p, "."); {
		p = p[:strings.LastIndexByte(p, '.')]
		if row, ok := rows[p]; ok && word.MatchString(row) {
			return true
		}
	}
	return false
}

func TestConfigReferenceDocumentsEveryKey(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := referenceRows(t, string(doc))
	var keys []string
	configKeys("", reflect.TypeOf(pipeline.Config{}), &keys)
	if len(keys) < 50 {
		t.Fatalf("walked only %d configuration keys: %v", len(keys), keys)
	}
	var missing []string
	for _, k := range keys {
		if !documented(rows, k) {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("docs/configuration.md does not document %d key(s):\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
	// And the reverse: a documented key that the configuration lacks is a
	// stale row.
	known := map[string]bool{}
	for _, k := range keys {
		for p := k; ; p = p[:strings.LastIndexByte(p, '.')] {
			known[p] = true // a section or struct key, too
			if !strings.Contains(p, ".") {
				break
			}
		}
	}
	var stale []string
	for k := range rows {
		if !known[k] && !strings.Contains(k, "..") {
			stale = append(stale, k)
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		t.Errorf("docs/configuration.md documents key(s) the configuration does not have:\n  %s", strings.Join(stale, "\n  "))
	}
}

// TestDocumented checks the matching rule itself, so that the test above
// can fail.
func TestDocumented(t *testing.T) {
	rows := referenceRows(t, "| `a.b` | 1 | x |\n| `c.d`, `e` | 2 | y |\n| `f.g` | none | `{base_url, model}` |\n")
	for key, want := range map[string]bool{
		"a.b": true, "c.d": true, "c.e": true, "a.c": false, "f.g.base_url": true, "f.g.timeout": false, "f.g.model": true, "e": false,
	} {
		if got := documented(rows, key); got != want {
			t.Errorf("documented(%q) = %v, want %v", key, got, want)
		}
	}
}

// TestDocsLinksResolve checks every relative link of the README and docs/:
// the file exists and, with a #fragment into a Markdown page, the heading
// does too.
func TestDocsLinksResolve(t *testing.T) {
	pages := []string{filepath.Join(repoRoot, "README.md")}
	err := filepath.WalkDir(filepath.Join(repoRoot, "docs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			pages = append(pages, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 10 {
		t.Fatalf("found only %d pages", len(pages))
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(stripCode(string(b)), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), filepath.FromSlash(file))
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s: link %q: %v", page, target, err)
				continue
			}
			if frag != "" && strings.HasSuffix(path, ".md") {
				body, _ := os.ReadFile(path)
				if !slugs(string(body))[frag] {
					t.Errorf("%s: link %q: no heading with anchor #%s in %s", page, target, frag, path)
				}
			}
		}
	}
}

// stripCode drops fenced code blocks, whose brackets are not links.
func stripCode(s string) string {
	var out []string
	fence := false
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "```") {
			fence = !fence
			continue
		}
		if !fence {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// slugs are the anchors GitHub gives a page's headings.
func slugs(s string) map[string]bool {
	out := map[string]bool{}
	drop := regexp.MustCompile(`[^\p{L}\p{N}_\- ]`)
	for _, l := range strings.Split(stripCode(s), "\n") {
		if !strings.HasPrefix(l, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(l, "#"))
		out[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")] = true
	}
	return out
}

func TestReadmeIsAFrontDoor(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	if n := strings.Count(readme, "\n"); n > 250 {
		t.Errorf("README.md has %d lines; at most 250 (the manual belongs in docs/)", n)
	}
	for _, cmd := range []string{
		"go run ./cmd/redraft run --config configs/quickstart.yaml",
		"scripts/test.sh",
	} {
		if !strings.Contains(readme, cmd) {
			t.Errorf("README.md lacks the command %q", cmd)
		}
	}
}

// TestUsageListsCommands keeps the usage text, the README's command list
// and the dispatch in step: every command the CLI runs is in both lists.
func TestUsageListsCommands(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	dispatch := regexp.MustCompile(`case "([a-z]+)":\n\t\terr = cmd`).FindAllStringSubmatch(string(src), -1)
	if len(dispatch) < 8 {
		t.Fatalf("found %d commands in main.go's dispatch", len(dispatch))
	}
	for _, m := range dispatch {
		name := m[1]
		if !regexp.MustCompile(`(?m)^  ` + name + ` `).MatchString(usage) {
			t.Errorf("usage text does not list %q", name)
		}
		if !regexp.MustCompile(`redraft ` + name + `[ \n]`).Match(b) {
			t.Errorf("README.md's command list lacks %q", name)
		}
		if !strings.Contains(string(src), "//\tredraft "+name) {
			t.Errorf("main.go's package comment lacks %q", name)
		}
	}
}

// TestReadmeWorkedExample runs the README's worked example as written: the
// quickstart into out/quickstart, then its Python snippet, whose output must
// be the README's output block, line for line.
func TestReadmeWorkedExample(t *testing.T) {
	py := pycheck.Python(t)
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	_, after, ok := strings.Cut(readme, "```python\n")
	if !ok {
		t.Fatal("README.md has no python block")
	}
	code, after, _ := strings.Cut(after, "```\n")
	_, after, ok = strings.Cut(after, "```\n")
	if !ok {
		t.Fatal("README.md's python block has no output block after it")
	}
	want, _, _ := strings.Cut(after, "```")

	cfg, err := pipeline.LoadConfig(filepath.Join(repoRoot, "configs", "quickstart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg.Source.Path = filepath.Join(repoRoot, cfg.Source.Path)
	cfg.Output.Dir = filepath.Join(dir, "out", "quickstart")
	if _, err := pipeline.Execute(context.Background(), cfg, pipeline.JobOptions{}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", code)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's python block: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != strings.TrimSpace(want) {
		t.Errorf("the README's python block prints\n%s\nthe README says\n%s", got, want)
	}
}

// TestDocsOutputBlocksAreChecked keeps every example output of the README
// and docs/ tied to a test (issue 16 item 6): a fenced block that shows
// output (any block but a yaml, python or sh one without a "$ " prompt) and
// a table of real output need a marker comment before them, "<!-- checked
// by TestX -->" (or "<!-- recorded DATE, SETUP; checked by TestX -->" for
// the output of a real run that a test cannot repeat, whose form TestX
// checks), and every test a marker names must exist and read the page (its
// file names the page). "<!-- not output: WHY -->" marks a block that only
// looks like output; it is refused on json blocks and "$ " transcripts.
func TestDocsOutputBlocksAreChecked(t *testing.T) {
	pages, err := doccheck.Pages(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	// Every test function of the repository, with its file's text.
	testFiles := map[string]string{}
	err = filepath.WalkDir(repoRoot, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != repoRoot || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(p, "_test.go") {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range regexp.MustCompile(`(?m)^func (Test\w+)\(t \*testing\.T\)`).FindAllStringSubmatch(string(b), -1) {
				testFiles[m[1]] = string(b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	prompt := regexp.MustCompile(`(?m)^\$ `)
	checked := 0
	for _, page := range pages {
		b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(page)))
		if err != nil {
			t.Fatal(err)
		}
		for _, blk := range doccheck.Parse(page, string(b)) {
			transcript := prompt.MatchString(blk.Text) && strings.Count(blk.Text, "\n") > strings.Count(prompt.ReplaceAllString(blk.Text, "\x00"), "\x00")
			output := false
			switch blk.Lang {
			case "yaml", "python":
			case "sh":
				output = transcript
			case "table":
				header, _, _ := strings.Cut(blk.Text, "\n")
				output = strings.Contains(header, "output")
			default:
				output = true
			}
			switch {
			case blk.NotOutput():
				if blk.Lang == "json" || transcript {
					t.Errorf("%s: a %s block marked as not output", blk, map[bool]string{true: "transcript", false: blk.Lang}[transcript])
				}
				continue
			case len(blk.Tests()) == 0:
				if output {
					t.Errorf("%s: an output block without <!-- checked by TestX --> before it (a test must produce or check it)", blk)
				} else if blk.Marker != "" {
					t.Errorf("%s: marker %q names no test", blk, blk.Marker)
				}
				continue
			}
			if blk.Recorded() && !regexp.MustCompile(`^recorded \d{4}-\d{2}-\d{2}, [^;]+; checked by `).MatchString(blk.Marker) {
				t.Errorf("%s: %q: want <!-- recorded YYYY-MM-DD, SETUP; checked by TestX -->", blk, blk.Marker)
			}
			for _, name := range blk.Tests() {
				src, ok := testFiles[name]
				if !ok {
					t.Errorf("%s: the marker names %s, which is no test", blk, name)
				} else if !strings.Contains(src, `"`+page+`"`) && !strings.Contains(src, `"`+filepath.Base(page)+`"`) {
					t.Errorf("%s: %s's file does not name %s", blk, name, page)
				}
			}
			checked++
		}
	}
	if checked < 20 {
		t.Errorf("only %d blocks are checked", checked)
	}
}

// TestDevelopmentLayout: every directory docs/development.md's layout names
// exists, and every top-level directory with Go code is in it.
func TestDevelopmentLayout(t *testing.T) {
	layout := doccheck.One(t, repoRoot, "docs/development.md", "TestDevelopmentLayout")
	named := map[string]bool{}
	for _, l := range strings.Split(layout, "\n") {
		if l == "" || strings.HasPrefix(l, " ") {
			continue
		}
		dir := strings.TrimSuffix(strings.Fields(l)[0], "/")
		named[dir] = true
		if st, err := os.Stat(filepath.Join(repoRoot, dir)); err != nil || !st.IsDir() {
			t.Errorf("docs/development.md names %s/, which is not a directory", dir)
		}
	}
	entries, err := os.ReadDir(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		goFiles, _ := filepath.Glob(filepath.Join(repoRoot, e.Name(), "*", "*.go"))
		top, _ := filepath.Glob(filepath.Join(repoRoot, e.Name(), "*.go"))
		if len(goFiles)+len(top) > 0 && !named[e.Name()] && !named[e.Name()+"/redraft"] {
			t.Errorf("docs/development.md's layout lacks %s/", e.Name())
		}
	}
}
