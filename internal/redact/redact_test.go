package redact

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://localhost:8000/v1", "http://localhost:8000/v1"},
		{"http://user:pass@host:8000/v1", "http://host:8000/v1"},
		{"https://host/v1?api-key=SECRET&x=1", "https://host/v1"},
		{"https://host/v1#frag", "https://host/v1"},
		{"https://u@host/v1?", "https://host/v1"},
		// Does not parse (a '#' in the password): cut by text, never echoed.
		{"http://u:pa#ss@host/v1?k=v", "http://host/v1"},
		{"user:pass@host/v1", "host/v1"},
		{"not a url", "not a url"},
	}
	for _, tt := range tests {
		if got := URL(tt.in); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestText(t *testing.T) {
	// What net/http's *url.Error prints: the password starred, the user
	// name and the query as given.
	in := `no response: Post "http://alice:***@127.0.0.1:1/v1/chat/completions?api-key=QSECRET": dial tcp 127.0.0.1:1: connect: connection refused`
	got := Text(in)
	for _, s := range []string{"alice", "QSECRET", "api-key"} {
		if strings.Contains(got, s) {
			t.Errorf("Text kept %q: %s", s, got)
		}
	}
	if !strings.Contains(got, `Post "http://127.0.0.1:1/v1/chat/completions": dial tcp`) {
		t.Errorf("Text = %s", got)
	}
	if got := Text("see http://h/v1?k=SECRET."); got != "see http://h/v1." {
		t.Errorf("trailing punctuation: %q", got)
	}
	if got := Text("plain message"); got != "plain message" {
		t.Errorf("plain text changed: %q", got)
	}
}

func TestScrubber(t *testing.T) {
	var secrets []string
	for _, u := range []string{"http://alice:pa%40ss-word@h/v1?api-key=QS%2Fecret&sig=abc", "http://h2/v1"} {
		secrets = append(secrets, Secrets(u)...)
	}
	s := NewScrubber(append(secrets, "sk-envkey-123")...)
	in := "server said: bad key QS/ecret (also QS%2Fecret) for alice with pa@ss-word and sk-envkey-123; sig abc"
	got := s.Scrub(in)
	for _, bad := range []string{"QS/ecret", "QS%2Fecret", "pa@ss-word", "alice", "sk-envkey-123"} {
		if strings.Contains(got, bad) {
			t.Errorf("Scrub kept %q: %s", bad, got)
		}
	}
	// "abc" is shorter than MinSecretLen: left in prose, removed from URLs.
	if !strings.Contains(got, "sig abc") {
		t.Errorf("short secret replaced in prose: %s", got)
	}
	if got := s.Scrub("http://h/v1?sig=abc"); got != "http://h/v1" {
		t.Errorf("short secret kept in a URL: %s", got)
	}
	var zero *Scrubber
	if got := zero.Scrub("http://u:p@h/v1"); got != "http://h/v1" {
		t.Errorf("nil Scrubber: %s", got)
	}
}

func TestJSON(t *testing.T) {
	in := `{"name":"run","endpoint":{"base_url":"http://u:PW@h/v1?key=QK","base_urls":["http://a/v1","https://b/v1?sig=SG"],"api_key_env":"sk-PASTEDKEY","max_in_flight":8,"ratio":1e-06},` +
		`"reward":{"judges":[{"name":"j","base_url":"http://ju:JP@j/v1","api_key_env":"JUDGE_KEY"}]},"system_prompt":"see http://docs/?q=1 for help",` +
		`"extra":{"headers":{"Authorization":"Bearer HDR"},"api_key":"INLINE","nested":[{"password":"PWD"}],"n":null}}`
	out, err := JSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, bad := range []string{"PW", "QK", "SG", "PASTEDKEY", "JP", "HDR", "INLINE", "PWD"} {
		if strings.Contains(s, bad) {
			t.Errorf("JSON kept %q: %s", bad, s)
		}
	}
	for _, keep := range []string{`"base_url":"http://h/v1"`, `"https://b/v1"`, `"api_key_env":"JUDGE_KEY"`, `"ratio":1e-06`, `"max_in_flight":8`,
		`"system_prompt":"see http://docs/?q=1 for help"`, `"n":null`, `{"name":"run","endpoint"`} {
		if !strings.Contains(s, keep) {
			t.Errorf("JSON lost %s: %s", keep, s)
		}
	}
	if !json.Valid(out) {
		t.Fatalf("invalid JSON: %s", s)
	}
	clean := `{"a":[1,2,{"b":"http://h/v1"}],"c":"x"}`
	if out, err := JSON([]byte(clean)); err != nil || string(out) != clean {
		t.Errorf("clean document changed: %s, %v", out, err)
	}
	if _, err := JSON([]byte(`{"a":`)); err == nil {
		t.Error("truncated JSON accepted")
	}
}

func TestIsEnvName(t *testing.T) {
	for s, want := range map[string]bool{"OPENAI_API_KEY": true, "_X1": true, "x": true, "": false, "1A": false, "sk-abc": false, "A B": false, "key=v": false} {
		if IsEnvName(s) != want {
			t.Errorf("IsEnvName(%q) = %v", s, !want)
		}
	}
}
