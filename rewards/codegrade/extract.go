package codegrade

import "strings"

// Extract returns the program a response states and the rule that found it
// (see the package documentation); ok is false when it states none.
func Extract(response string) (code, rule string, ok bool) {
	text, ok := stripThink(response)
	if !ok {
		return "", "", false
	}
	blocks := fencedBlocks(text)
	var lastPy, lastBare, lastOther *block
	for i := range blocks {
		b := &blocks[i]
		switch {
		case isPython(b.lang):
			lastPy = b
		case b.lang == "":
			lastBare = b
		default:
			lastOther = b
		}
	}
	pick := func(b *block, r string) (string, string, bool) {
		if b.unclosed {
			r += "_unclosed"
		}
		if strings.TrimSpace(b.body) == "" {
			return "", "", false
		}
		return b.body, r, true
	}
	switch {
	case lastPy != nil:
		return pick(lastPy, "python_block")
	case lastBare != nil:
		return pick(lastBare, "bare_block")
	case lastOther != nil:
		return "", "", false
	}
	if strings.TrimSpace(text) == "" {
		return "", "", false
	}
	return text, "whole", true
}

// stripThink drops <think>...</think> sections; ok is false when one is
// never closed (the response was cut off while reasoning).
func stripThink(s string) (string, bool) {
	for {
		i := strings.Index(s, "<think>")
		if i < 0 {
			return s, true
		}
		j := strings.Index(s[i:], "</think>")
		if j < 0 {
			return "", false
		}
		s = s[:i] + s[i+j+len("</think>"):]
	}
}

func isPython(lang string) bool {
	switch strings.ToLower(lang) {
	case "python", "py", "python3", "py3":
		return true
	}
	return false
}

type block struct {
	lang, body string
	unclosed   bool
}

// fencedBlocks finds the fenced code blocks of a Markdown text: a line that
// starts, after at most three spaces, with three or more backticks or
// tildes opens a block; its info string's first word is the language; a
// line of at least as many of the same character (and nothing else but
// spaces) closes it. A backtick fence's info string may not hold a
// backtick.
func fencedBlocks(text string) []block {
	var out []block
	lines := strings.SplitAfter(text, "\n")
	for i := 0; i < len(lines); i++ {
		ch, n, info, ok := openFence(lines[i])
		if !ok {
			continue
		}
		var body strings.Builder
		closed := false
		j := i + 1
		for ; j < len(lines); j++ {
			if closesFence(lines[j], ch, n) {
				closed = true
				break
			}
			body.WriteString(lines[j])
		}
		lang := info
		if k := strings.IndexAny(lang, " \t{"); k >= 0 {
			lang = lang[:k]
		}
		out = append(out, block{lang: lang, body: body.String(), unclosed: !closed})
		i = j
	}
	return out
}

func indent(line string) (string, bool) {
	k := 0
	for k < len(line) && line[k] == ' ' {
		k++
	}
	if k > 3 {
		return "", false
	}
	return line[k:], true
}

func openFence(line string) (ch byte, n int, info string, ok bool) {
	s, ok := indent(line)
	if !ok || len(s) < 3 || (s[0] != '`' && s[0] != '~') {
		return 0, 0, "", false
	}
	ch = s[0]
	for n < len(s) && s[n] == ch {
		n++
	}
	if n < 3 {
		return 0, 0, "", false
	}
	info = strings.TrimSpace(s[n:])
	if ch == '`' && strings.ContainsRune(info, '`') {
		return 0, 0, "", false
	}
	return ch, n, info, true
}

func closesFence(line string, ch byte, n int) bool {
	s, ok := indent(line)
	if !ok {
		return false
	}
	k := 0
	for k < len(s) && s[k] == ch {
		k++
	}
	return k >= n && strings.TrimSpace(s[k:]) == ""
}
