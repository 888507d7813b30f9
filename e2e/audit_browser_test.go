package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"image"
	"image/color/palette"
	"image/draw"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/audit"
)

// chromium finds a headless-capable Chromium: $REDRAFT_CHROMIUM, else on
// PATH. scripts/browser-test.sh installs Debian's chromium when missing.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("REDRAFT_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("REDRAFT_REQUIRE_BROWSER") == "1" {
		t.Fatal("no chromium found and REDRAFT_REQUIRE_BROWSER=1 (scripts/browser-test.sh installs it)")
	}
	t.Skip("no chromium on PATH: run scripts/browser-test.sh (installs it) or set REDRAFT_CHROMIUM")
	return ""
}

func runChromium(t *testing.T, bin string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0"}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, errb.String())
	}
	return out.String(), errb.String()
}

var metricRE = regexp.MustCompile(`<span data-metric="([^"]+)" data-value="([^"]+)"(?: data-format="([^"]+)")?>([^<]*)</span>`)

// TestAuditReportInBrowser opens the quickstart report in headless Chromium:
// no page error, a screenshot, and every number tied to the JSON equal to it.
func TestAuditReportInBrowser(t *testing.T) {
	bin := chromium(t)
	dir := quickstartRun(t)
	a, err := audit.Path(context.Background(), dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a.Dir = "out/quickstart"
	out := t.TempDir()
	page := filepath.Join(out, "audit.html")
	var hb bytes.Buffer
	if err := a.WriteHTML(&hb); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(page, hb.Bytes(), 0o644)
	jb, _ := json.Marshal(a)
	var doc any
	json.Unmarshal(jb, &doc)

	dom, stderr := runChromium(t, bin, "--dump-dom", "file://"+page)
	if !strings.Contains(dom, `id="overview"`) {
		t.Fatalf("dumped DOM lacks the report:\n%.2000s\n%s", dom, stderr)
	}
	if strings.Contains(dom, "page-error") && strings.Contains(dom, `class="page-error"`) {
		t.Errorf("page errors: %s", regexp.MustCompile(`<div class="page-error">[^<]*</div>`).FindAllString(dom, -1))
	}
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, ":CONSOLE") {
			t.Errorf("console message: %s", line)
		}
	}
	matches := metricRE.FindAllStringSubmatch(dom, -1)
	if len(matches) < 50 {
		t.Fatalf("%d data-metric elements in the page", len(matches))
	}
	for _, m := range matches {
		ptr, val, format, text := html.UnescapeString(m[1]), m[2], m[3], html.UnescapeString(m[4])
		want, ok := pointer(doc, ptr)
		if !ok {
			t.Errorf("%s: not in the JSON", ptr)
			continue
		}
		if want == nil {
			if val != "null" || text != "-" {
				t.Errorf("%s: page shows %q (%s), JSON null", ptr, text, val)
			}
			continue
		}
		f, ok := want.(float64)
		got, err := strconv.ParseFloat(val, 64)
		if !ok || err != nil || got != f {
			t.Errorf("%s: page value %s, JSON %v", ptr, val, want)
			continue
		}
		if text != audit.FormatMetric(f, format) {
			t.Errorf("%s: page shows %q, JSON %v formats as %q", ptr, text, f, audit.FormatMetric(f, format))
		}
	}
	// The headline numbers are on the page.
	for _, want := range []string{"37.9%", "56.3%", "67.2%", "5276"} {
		if !strings.Contains(dom, ">"+want+"<") {
			t.Errorf("page lacks %s", want)
		}
	}

	shot := filepath.Join(out, "audit.png")
	runChromium(t, bin, "--screenshot="+shot, "--window-size=1280,4000", "--hide-scrollbars", "file://"+page)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil || img.Bounds().Dx() != 1280 {
		t.Fatalf("screenshot: %v %v", err, img.Bounds())
	}
	if dst := os.Getenv("REDRAFT_AUDIT_SCREENSHOT"); dst != "" {
		if err := writeDocPNG(dst, img, 2300); err != nil {
			t.Fatal(err)
		}
	}
}

// writeDocPNG keeps the top height pixels, quantised to a palette (without
// dithering, for crisp text), at best compression: small enough to commit.
func writeDocPNG(dst string, img image.Image, height int) error {
	r := img.Bounds()
	r.Max.Y = min(r.Max.Y, r.Min.Y+height)
	p := image.NewPaletted(image.Rect(0, 0, r.Dx(), r.Dy()), palette.Plan9)
	draw.Draw(p, p.Bounds(), img, r.Min, draw.Src)
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, p); err != nil {
		return err
	}
	return os.WriteFile(dst, buf.Bytes(), 0o644)
}

// pointer resolves a JSON pointer (RFC 6901) in a decoded document.
func pointer(doc any, ptr string) (any, bool) {
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}
