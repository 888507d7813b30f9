package env

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redraft/redraft/internal/doccheck"
)

const docPage = "docs/environments.md"

// docEpisodeID is the episode id of the page's exchange: the one a client
// whose random source gives the bytes 0, 1, ..., 11 makes.
const docEpisodeID = "redraft-000102030405060708090a0b"

// docTask is the task of the page's exchange.
var docTask = Task{Env: "example", Name: "count", Variation: 1, Seed: 7, Options: map[string]any{"tools": true}, Oracle: true}

// docActions are the page's three steps.
var docActions = []Action{
	{Text: "say 1"},
	{Tool: &ToolCall{ID: "call_1", Name: "fly", Arguments: "{}"}},
	{Tool: &ToolCall{ID: "call_2", Name: "act", Arguments: `{"command": "say 2"}`}},
}

// deterministicIDs makes the client's episode ids those of the page until
// the test ends.
func deterministicIDs(t *testing.T) {
	old := cryptoRead
	cryptoRead = func(b []byte) (int, error) {
		for i := range b {
			b[i] = byte(i)
		}
		return len(b), nil
	}
	t.Cleanup(func() { cryptoRead = old })
}

// TestEnvironmentsDocMessages checks docs/environments.md: the requests of
// its exchange are byte for byte what the client sends for the page's task
// and actions, its answers decode to what the page says they mean, its
// error lines are what the client reports for those faults, and its Python
// example is scripts/envs/example_env.py.
func TestEnvironmentsDocMessages(t *testing.T) {
	blocks := doccheck.Checked(t, "../..", docPage, "TestEnvironmentsDocMessages")
	if len(blocks) != 12 {
		t.Fatalf("%s has %d blocks for this test, want 12 (10 messages, errors, example)", docPage, len(blocks))
	}
	deterministicIDs(t)

	var mu sync.Mutex
	var got []string
	step := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		got = append(got, string(b))
		switch r.URL.Path {
		case "/reset":
			io.WriteString(w, blocks[1])
		case "/step":
			io.WriteString(w, blocks[3+2*step])
			step++
		case "/state":
			if r.URL.Query().Get("episode_id") != docEpisodeID {
				t.Errorf("state of %q", r.URL.RawQuery)
			}
			io.WriteString(w, blocks[8])
		case "/close":
			io.WriteString(w, blocks[9])
		}
	}))
	defer srv.Close()
	c := newClient(t, Config{URL: srv.URL, Env: "example"})
	ctx := context.Background()
	s, err := c.OpenHTTP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.EpisodeID() != docEpisodeID {
		t.Fatalf("episode id %s", s.EpisodeID())
	}
	obs, err := s.Reset(ctx, docTask)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(obs.Text, "Count from 1 to 2") || strings.Join(obs.Gold, "|") != "say 1|say 2" ||
		len(obs.Tools) != 1 || obs.Tools[0].Function.Name != "act" || string(obs.Info) != `{"goal": 2}` {
		t.Errorf("the reset decodes as %+v", obs)
	}
	var results []StepResult
	for _, a := range docActions {
		r, err := s.Step(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
	}
	if r := results[0]; r.Text != "Good." || *r.Reward != 0.5 || *r.Success || r.Done || r.Invalid {
		t.Errorf("step 1 decodes as %s", describe(r))
	}
	if r := results[1]; r.Text != "Error: no tool 'fly' here" || r.ToolError != "tool_not_found: no tool 'fly' here" || !r.Invalid || r.Success != nil || *r.Reward != 0 {
		t.Errorf("step 2 decodes as %s", describe(r))
	}
	if r := results[2]; r.Text != "Done!" || !*r.Success || !r.Done || *r.Reward != 0.5 {
		t.Errorf("step 3 decodes as %s", describe(r))
	}
	st, err := s.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := doccheck.Match(blocks[8], st); err != nil {
		t.Errorf("state: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{blocks[0], blocks[2], blocks[4], blocks[6], "", `{"episode_id":"` + docEpisodeID + `"}`}
	for i := range want {
		want[i] = strings.TrimSpace(want[i])
	}
	if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
		t.Errorf("the client sent\n%s\nthe page shows\n%s", g, w)
	}

	// The error lines.
	doccheck.Lines(t, docPage, faultLines(t), blocks[10], nil)

	// The example.
	src, err := os.ReadFile(filepath.Join(repoRoot, "scripts", "envs", "example_env.py"))
	if err != nil {
		t.Fatal(err)
	}
	if string(src) != blocks[11] {
		t.Errorf("%s's Python example differs from scripts/envs/example_env.py", docPage)
	}
}

// faultLines are the errors of one step against six faulty servers, with
// the servers' address written as the page's.
func faultLines(t *testing.T) string {
	const timeout = 300 * time.Millisecond
	hang := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
	faults := []func(w http.ResponseWriter, r *http.Request){
		func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			io.WriteString(w, `{"detail": "the simulator crashed"}`)
		},
		hang,
		func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"observation": {"te`)
			w.(http.Flusher).Flush()
			hang(w, r)
		},
		func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"observation": {"text": "a"`) },
		func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"observation": {"text": "a"}, "reward": 0, "done": "no"}`)
		},
		func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		},
	}
	var out bytes.Buffer
	for _, fault := range faults {
		f, srv := newFake(t)
		f.setFault(func(w http.ResponseWriter, r *http.Request, path string, _ []byte) bool {
			if path == "/step" {
				fault(w, r)
				return true
			}
			return false
		})
		c := newClient(t, Config{URL: srv.URL, StepTimeout: timeout})
		ctx := context.Background()
		s, _ := c.Open(ctx)
		if _, err := s.Reset(ctx, Task{Env: "counting"}); err != nil {
			t.Fatal(err)
		}
		_, err := s.Step(ctx, Action{Text: "say 1"})
		s.Close(ctx)
		if err == nil {
			t.Fatal("no error")
		}
		out.WriteString(strings.ReplaceAll(err.Error(), srv.URL, "http://127.0.0.1:8771") + "\n")
	}
	return out.String()
}

// TestExampleServerDocMessages sends the page's requests to the real
// example server (scripts/envs/example_env.py) and compares its answers with
// the page's.
func TestExampleServerDocMessages(t *testing.T) {
	blocks := doccheck.Checked(t, "../..", docPage, "TestExampleServerDocMessages")
	if len(blocks) != 10 {
		t.Fatalf("%s has %d blocks for this test, want 10", docPage, len(blocks))
	}
	url := envServer(t, "example")
	call := func(method, path, body string) json.RawMessage {
		t.Helper()
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return b
	}
	for i := 0; i < 8; i += 2 {
		path := "/step"
		if i == 0 {
			path = "/reset"
		}
		if err := doccheck.Match(blocks[i+1], call("POST", path, blocks[i])); err != nil {
			t.Errorf("%s with the page's request %d: %v", path, i/2+1, err)
		}
	}
	if err := doccheck.Match(blocks[8], call("GET", "/state?episode_id="+docEpisodeID, "")); err != nil {
		t.Errorf("/state: %v", err)
	}
	if err := doccheck.Match(blocks[9], call("POST", "/close", `{"episode_id":"`+docEpisodeID+`"}`)); err != nil {
		t.Errorf("/close: %v", err)
	}
}
