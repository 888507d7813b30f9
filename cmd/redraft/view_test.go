package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redraft/redraft/internal/doccheck"
)

// syncBuffer is a bytes.Buffer that a running command writes to while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestViewCommand runs "redraft view --open=false DIR" on the quickstart's
// output: it binds 127.0.0.1 on a free port, prints the URL as
// docs/view.md shows it (the directory and port aside), serves the first
// page, logs each request to stderr and stops with exit status 0 when
// interrupted (its context cancelled, as Ctrl+C does).
func TestViewCommand(t *testing.T) {
	out := t.TempDir()
	cfg := writeConfig(t, strings.ReplaceAll(mustRead(t, "../../configs/quickstart.yaml"), "testdata/", "../../testdata/"))
	if code, _, stderr := redraft(t, "run", "--config", cfg, "--out", out, "--progress", "off", "--no-audit"); code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"view", "--open=false", out}, strings.NewReader(""), &stdout, &stderr)
	}()
	urlRE := regexp.MustCompile(`at (http://127\.0\.0\.1:\d+/) \(Ctrl\+C stops\)`)
	var url string
	for deadline := time.Now().Add(30 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := urlRE.FindStringSubmatch(stdout.String()); m != nil {
			url = m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("view exited %d: %s %s", code, stdout.String(), stderr.String())
		default:
		}
	}
	if url == "" {
		t.Fatalf("no URL printed: %q", stdout.String())
	}
	block := strings.Split(strings.TrimSpace(doccheck.One(t, repoRoot, "docs/view.md", "TestViewCommand")), "\n")
	if len(block) != 2 || block[0] != "$ redraft view out/quickstart" {
		t.Fatalf("docs/view.md's example: %q", block)
	}
	got, _, _ := strings.Cut(stdout.String(), "\n")
	got = regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(strings.Replace(got, out, "out/quickstart", 1), "127.0.0.1:41877")
	if got != block[1] {
		t.Errorf("redraft view prints\n%s\ndocs/view.md shows\n%s", got, block[1])
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `data-total="5276"`) {
		t.Errorf("GET %s: %s %.500s", url, resp.Status, body)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("interrupted: exit %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("view did not stop when interrupted")
	}
	if !regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d GET / 200 `).MatchString(stderr.String()) {
		t.Errorf("stderr does not log the request: %q", stderr.String())
	}
	if code, _, stderr := redraft(t, "view", "--open=false"); code != 2 || !strings.Contains(stderr, "want one output directory") {
		t.Errorf("view without DIR: exit %d: %s", code, stderr)
	}
	if code, _, stderr := redraft(t, "view", "--open=false", t.TempDir()); code != 1 || !strings.Contains(stderr, "no shards") {
		t.Errorf("view of an empty directory: exit %d: %s", code, stderr)
	}
}
