package mathgrade

import (
	"strings"
)

// refine turns the text after a marker into the answer it states. depth
// bounds the recursion through "... is X" prose.
func refine(s string, depth int, b *budget) (string, bool) {
	if len(s) > maxAnswerScan {
		s = s[:maxAnswerScan]
	}
	b.tick(len(s)/64 + 1)
	s = strings.TrimLeft(s, " \t:*")
	s = strings.TrimSpace(s)
	if s == "" {
		return "", false
	}
	spans := mathSpans(s, b)
	s = s[:lineEnd(s, spans)]
	if i := strings.Index(asciiLower(s), "i hope it is correct"); i >= 0 {
		s = s[:i]
	}
	if strings.Contains(s, `\boxed`) || strings.Contains(s, `\fbox`) {
		if a, _, why, _ := pickBoxes(s, lastBoxes(s, b)); why == "" {
			return a, true
		}
	}
	spans = mathSpans(s, b)
	if i := sentenceEnd(s, spans); i >= 0 {
		s = s[:i]
	}
	// A "!" ending prose is an exclamation; a factorial would be in math.
	s = strings.TrimRight(trimTrailingPunct(s), "!")
	s = trimTrailingPunct(unwrap(trimTrailingPunct(s)))
	if s == "" {
		return "", false
	}
	if depth < 3 && isProse(s) {
		if a, ok := fromProse(s, depth, b); ok {
			return a, true
		}
	}
	return s, true
}

// trimTrailingPunct drops sentence punctuation after an answer. It keeps
// "!", which after a number is a factorial.
func trimTrailingPunct(s string) string {
	for {
		s = strings.TrimSpace(s)
		if s == "" {
			return s
		}
		c := s[len(s)-1]
		if c == '.' || c == ',' || c == ';' || c == '?' || c == ':' {
			// Keep a backslash command such as "\," or "\!" intact.
			if len(s) >= 2 && s[len(s)-2] == '\\' {
				return s
			}
			s = s[:len(s)-1]
			continue
		}
		return s
	}
}

// unwrap strips markdown bold, quotes and one math span enclosing the
// whole text.
func unwrap(s string) string {
	for n := 0; n < 4; n++ {
		s = strings.TrimSpace(s)
		before := s
		if strings.HasPrefix(s, "**") && strings.HasSuffix(s, "**") && len(s) >= 4 {
			s = s[2 : len(s)-2]
		}
		for _, q := range [...][2]string{{`"`, `"`}, {"“", "”"}, {"`", "`"}} {
			if len(s) >= len(q[0])+len(q[1]) && strings.HasPrefix(s, q[0]) && strings.HasSuffix(s, q[1]) {
				s = s[len(q[0]) : len(s)-len(q[1])]
			}
		}
		s = strings.TrimSpace(s)
		if sp := mathSpans(s, nil); len(sp) == 1 && sp[0].start == 0 && sp[0].end == len(s) {
			s = s[sp[0].cs:sp[0].ce]
		}
		s = trimTrailingPunct(s)
		if s == before {
			return s
		}
	}
	return s
}

// isProse reports whether s reads as a sentence rather than an answer: it
// has at least three words outside math and \text{}.
func isProse(s string) bool {
	return countWords(outsideMathText(s)) >= 3
}

// outsideMathText returns s without math spans, \text{..} groups and
// backslash commands, for counting words.
func outsideMathText(s string) string {
	var sb strings.Builder
	spans := mathSpans(s, nil)
	pos := 0
	for _, sp := range spans {
		sb.WriteString(s[pos:sp.start])
		sb.WriteByte(' ')
		pos = sp.end
	}
	sb.WriteString(s[pos:])
	r := sb.String()
	var out strings.Builder
	for i := 0; i < len(r); i++ {
		if r[i] == '\\' {
			j := i + 1
			for j < len(r) && isASCIILetter(r[j]) {
				j++
			}
			name := r[i+1 : j]
			if isTextCommand(name) && j < len(r) && r[j] == '{' {
				if k := matchBrace(r, j); k > 0 {
					j = k + 1
				}
			}
			out.WriteByte(' ')
			i = j - 1
			continue
		}
		out.WriteByte(r[i])
	}
	return out.String()
}

func countWords(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if !isASCIILetter(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isASCIILetter(s[j]) {
			j++
		}
		w := strings.ToLower(s[i:j])
		if j-i >= 2 && w != "and" && w != "or" {
			n++
		}
		i = j
	}
	return n
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// fromProse picks the answer out of a sentence such as "The volume of the
// box is $120$": the part after the last " is ", else its only math span,
// else its only number.
func fromProse(s string, depth int, b *budget) (string, bool) {
	lower := asciiLower(s)
	spans := mathSpans(s, nil)
	best := -1
	for _, w := range [...]string{" is ", " are ", " was ", " equals ", " be ", " = "} {
		end := len(lower)
		for {
			i := strings.LastIndex(lower[:end], w)
			if i < 0 {
				break
			}
			if !insideSpan(spans, i) {
				if i+len(w) > best {
					best = i + len(w)
				}
				break
			}
			end = i
		}
	}
	if best > 0 && strings.TrimSpace(s[best:]) != "" {
		return refine(s[best:], depth+1, b)
	}
	if len(spans) == 1 {
		a := strings.TrimSpace(s[spans[0].cs:spans[0].ce])
		return a, a != ""
	}
	if len(spans) == 0 {
		if num, ok := onlyNumber(s); ok {
			return num, true
		}
	}
	return "", false
}

// onlyNumber returns the single number written in s, if there is exactly
// one.
func onlyNumber(s string) (string, bool) {
	var got string
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if !(c >= '0' && c <= '9') {
			i++
			continue
		}
		j := i
		for j < len(s) && (s[j] >= '0' && s[j] <= '9' || (s[j] == '.' || s[j] == ',') && j+1 < len(s) && s[j+1] >= '0' && s[j+1] <= '9') {
			j++
		}
		start := i
		if start > 0 && (s[start-1] == '-' || s[start-1] == '+') {
			start--
		}
		if i > 0 && isASCIILetter(s[i-1]) {
			// part of a name such as "x2"
			i = j
			continue
		}
		got = s[start:j]
		n++
		i = j
	}
	return got, n == 1
}

func isTextCommand(name string) bool {
	switch name {
	case "text", "textbf", "textit", "textrm", "textnormal", "textsf", "texttt", "mbox", "hbox", "emph":
		return true
	}
	return false
}
