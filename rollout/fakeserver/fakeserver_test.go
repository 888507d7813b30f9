package fakeserver

import (
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	for _, tc := range []struct {
		text, want, finish string
		limit, words       int
	}{
		{"one  two\tthree", "one  two\tthree", "stop", -1, 3},
		{"  Step 1: a\nStep 2:  b \n\n", "Step 1: a\nStep 2:  b", "stop", -1, 6},
		{"def f():\n    return  1\n", "def f():\n    return  1", "stop", -1, 4},
		{"a b\n\nc d", "a b\n\nc d", "stop", 4, 4},
		{"a b\nc d\ne", "a b\nc", "length", 3, 3},
		{"a b\nc d", "a b", "length", 2, 2},
		{"a b", "", "length", 0, 0},
	} {
		got, words, finish := render(tc.text, tc.limit)
		if got != tc.want || finish != tc.finish || len(words) != tc.words || len(strings.Fields(got)) != len(words) {
			t.Errorf("render(%q, %d) = %q %v %s, want %q %d %s", tc.text, tc.limit, got, words, finish, tc.want, tc.words, tc.finish)
		}
	}
}

func TestCheckPrefill(t *testing.T) {
	yes, no := true, false
	asst := []Message{{Role: "user", Content: "q"}, {Role: "assistant", Content: "a"}}
	user := []Message{{Role: "user", Content: "q"}}
	for _, tc := range []struct {
		name      string
		noPrefill bool
		cont, gen *bool
		msgs      []Message
		want      string
	}{
		{"plain request", true, nil, nil, user, ""},
		{"prefill", false, &yes, &no, asst, ""},
		{"not supported", true, &yes, &no, asst, "not supported"},
		{"generation prompt left on", false, &yes, nil, asst, "cannot both"},
		{"final message is the user's", false, &yes, &no, user, "final assistant"},
		{"continue false", true, &no, nil, asst, ""},
	} {
		s := &Server{NoPrefill: tc.noPrefill}
		got := s.checkPrefill(&Request{ContinueFinalMessage: tc.cont, AddGenerationPrompt: tc.gen, Messages: tc.msgs})
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
