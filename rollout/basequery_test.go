package rollout

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBaseURLQuery: a base URL with a query (Azure's ?api-version=..., a
// gateway's key) reaches the server as the request's query on the chat
// completions path, instead of being glued before the path
// (".../v1?api-version=x/chat/completions"), and the query never appears in
// an error.
func TestBaseURLQuery(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path+"?"+r.URL.RawQuery)
		if r.URL.Path != "/v1/chat/completions" || r.URL.Query().Get("api-version") != "2024-06-01" || r.URL.Query().Get("key") != "SECRETQ" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error": {"message": "no route %s"}}`, r.URL.String())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id": "x", "object": "chat.completion", "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "4"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}`)
	}))
	defer srv.Close()
	cfg := EndpointConfig{BaseURL: srv.URL + "/v1?api-version=2024-06-01&key=SECRETQ", Model: "m"}
	p := NewOpenAIPolicy(cfg)
	resp, err := p.Sample(context.Background(), Request{Messages: []Message{{Role: "user", Content: "2+2?"}}})
	if err != nil || resp.Text != "4" {
		t.Fatalf("sample: %q, %v (server saw %v)", resp.Text, err, got)
	}
	if len(got) != 1 || !strings.HasPrefix(got[0], "/v1/chat/completions?") {
		t.Fatalf("server saw %v", got)
	}
	// Through the fleet a run uses, a failing request's error does not
	// quote the query's key, even when the server echoes the URL.
	bad := EndpointConfig{BaseURL: srv.URL + "/v1?key=SECRETQ", Model: "m", Retries: 1}
	bad.ApplyDefaults(PolicyDefaults, nil)
	pol, closeFleet, err := bad.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer closeFleet()
	_, err = pol.Sample(context.Background(), Request{Messages: []Message{{Role: "user", Content: "2+2?"}}})
	if err == nil || strings.Contains(err.Error(), "SECRETQ") || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("error %v", err)
	}
}
