package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/redraft/redraft/internal/doccheck"
)

const docPage = "docs/plugins.md"

// TestPluginsDocMessages checks the messages docs/plugins.md shows: the
// handshake and answers decode as the client decodes them, the request
// line is what the client writes for that request, and the HTTP request
// body is what a real client POSTs for those requests, answered by the
// page's response body, which gives the page's results.
func TestPluginsDocMessages(t *testing.T) {
	blocks := doccheck.Checked(t, "../..", docPage, "TestPluginsDocMessages")
	if len(blocks) != 5 {
		t.Fatalf("%s has %d blocks for the test, want 5 (handshake, request, answers, HTTP request, HTTP response)", docPage, len(blocks))
	}
	hello, request, answers, httpReq, httpResp := blocks[0], blocks[1], blocks[2], blocks[3], blocks[4]

	var h Hello
	dec := json.NewDecoder(strings.NewReader(hello))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil || h.Protocol != Protocol || h.Name == "" {
		t.Errorf("the handshake %q: %+v, %v", hello, h, err)
	}

	// The request line: decoded and written again, byte for byte.
	var r Request
	dec = json.NewDecoder(strings.NewReader(request))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("the request line: %v", err)
	}
	if line, err := encodeRequest(r); err != nil || string(line) != request {
		t.Errorf("the client writes\n%s(%v), the page shows\n%s", line, err, request)
	}

	// The answers: the first scores, the second is the verifier's null.
	lines := strings.Split(strings.TrimSpace(answers), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d answer lines, want 2", len(lines))
	}
	for i, l := range lines {
		id, hasID, res := decodeAnswer([]byte(l))
		wantID := fmt.Sprint(17 + i)
		if !hasID || id != wantID || res.Failed || (res.Score != nil) != (i == 0) || res.Score != nil && *res.Score != 1 {
			t.Errorf("answer %q: id %q, %+v", l, id, res)
		}
	}

	// HTTP: a client whose next ids are 17 and 18 sends the page's two
	// requests; the server must get the page's body and answers with the
	// page's response.
	var mu sync.Mutex
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var body struct{ Requests []Request }
		json.Unmarshal(b, &body)
		switch {
		case len(body.Requests) == 0:
			fmt.Fprint(w, `{"results": []}`)
		case body.Requests[0].ID == "17":
			mu.Lock()
			got = b
			mu.Unlock()
			fmt.Fprint(w, httpResp)
		default:
			results(w, body.Requests)
		}
	}))
	defer srv.Close()
	c := open(t, Config{URL: srv.URL})
	c.Verify(context.Background(), make([]Request, 16)) // ids 1 to 16
	var page struct{ Requests []Request }
	dec = json.NewDecoder(strings.NewReader(httpReq))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&page); err != nil || len(page.Requests) != 2 {
		t.Fatalf("the HTTP request body: %v (%d requests)", err, len(page.Requests))
	}
	res := c.Verify(context.Background(), page.Requests)
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Equal(got, []byte(strings.TrimSuffix(httpReq, "\n"))) {
		t.Errorf("the client POSTs\n%s\nthe page shows\n%s", got, httpReq)
	}
	check(t, "the page's first result", res[0], want{score: f(1)})
	check(t, "the page's second result", res[1], want{reason: []string{"unknown reasoning-gym dataset 'chain_summ'"}})
	if res[0].Answer != "230" || res[0].Correct == nil || !*res[0].Correct {
		t.Errorf("the page's first result: %+v", res[0])
	}
}

// TestPluginsDocAnswers feeds each line of docs/plugins.md's table of
// unusable answers to the client's parser: the request gets the table's
// reason, exactly.
func TestPluginsDocAnswers(t *testing.T) {
	table := doccheck.One(t, "../..", docPage, "TestPluginsDocAnswers")
	row := regexp.MustCompile("^\\| `(.+)` \\| `(.+)` \\|$")
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(table), "\n")[2:] {
		m := row.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("%s: row %q is not | `line` | `reason` |", docPage, l)
			continue
		}
		n++
		id, hasID, res := decodeAnswer([]byte(m[1]))
		if !hasID || id != "17" || !res.Failed || res.Reason != m[2] {
			t.Errorf("%s: %s gives id %q (%v), failed %v, reason\n  %s\nthe page says\n  %s", docPage, m[1], id, hasID, res.Failed, res.Reason, m[2])
		}
	}
	if n < 5 {
		t.Errorf("only %d rows", n)
	}
}
