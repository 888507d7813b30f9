package mathgrade

import (
	"strings"
)

func newlineOutside(t string, spans []span) bool {
	pos := 0
	for _, sp := range spans {
		if strings.ContainsAny(t[pos:sp.start], "\n\r") {
			return true
		}
		pos = sp.end
	}
	return strings.ContainsAny(t[pos:], "\n\r")
}

// innerSentenceEnd reports a sentence end followed by more text.
func innerSentenceEnd(t string, spans []span) bool {
	i := sentenceEnd(t, spans)
	return i >= 0 && strings.TrimSpace(t[i:]) != ""
}

// sentenceEnd returns the index just after the first '.', '!' or '?' that
// ends a sentence (followed by white space, outside math, not a decimal
// point), or -1.
func sentenceEnd(t string, spans []span) int {
	si := 0
	for i := 0; i < len(t); i++ {
		for si < len(spans) && spans[si].end <= i {
			si++
		}
		if si < len(spans) && spans[si].start <= i {
			i = spans[si].end - 1
			continue
		}
		c := t[i]
		if c == '\\' {
			i++ // "\!" is a LaTeX space, not an exclamation mark
			continue
		}
		if c != '.' && c != '!' && c != '?' {
			continue
		}
		if i+1 < len(t) && (t[i+1] == ' ' || t[i+1] == '\n' || t[i+1] == '\t' || t[i+1] == '\r') {
			if c == '.' && i > 0 && t[i-1] == '.' {
				continue // an ellipsis inside a sentence
			}
			return i + 1
		}
	}
	return -1
}

// lineEnd returns the end of the first line of s, extended over math spans
// that start on it.
func lineEnd(s string, spans []span) int {
	pos := 0
	si := 0
	for {
		nl := strings.IndexByte(s[pos:], '\n')
		if nl < 0 {
			return len(s)
		}
		nl += pos
		for si < len(spans) && spans[si].end <= nl {
			si++
		}
		if si < len(spans) && spans[si].start < nl && spans[si].end > nl {
			pos = spans[si].end
			continue
		}
		return nl
	}
}

func insideSpan(spans []span, i int) bool {
	for _, sp := range spans {
		if sp.start <= i && i < sp.end {
			return true
		}
	}
	return false
}

// span is a math span: the whole [start,end) and its content [cs,ce).
type span struct{ start, end, cs, ce int }

// mathSpans finds $$..$$, $..$, \[..\] and \(..\) spans in s, in order.
// Unclosed delimiters are skipped. It is linear in len(s): a failed search
// for a closing delimiter is remembered.
func mathSpans(s string, b *budget) []span {
	var out []span
	var noDD, noD, noBr, noPa bool
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case '[', '(':
				closer := `\]`
				no := &noBr
				if s[i+1] == '(' {
					closer, no = `\)`, &noPa
				}
				if !*no {
					if j := strings.Index(s[i+2:], closer); j >= 0 {
						out = append(out, span{i, i + 2 + j + 2, i + 2, i + 2 + j})
						i = i + 2 + j + 1
						continue
					}
					*no = true
				}
			}
			i++ // skip the escaped character, e.g. "\$"
			continue
		}
		if c != '$' {
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			if !noDD {
				if j := strings.Index(s[i+2:], "$$"); j >= 0 {
					out = append(out, span{i, i + 2 + j + 2, i + 2, i + 2 + j})
					i = i + 2 + j + 1
					continue
				}
				noDD = true
			}
			i++
			continue
		}
		if noD {
			continue
		}
		j := closingDollar(s, i+1)
		if j < 0 {
			noD = true
			continue
		}
		out = append(out, span{i, j + 1, i + 1, j})
		i = j
	}
	if b != nil {
		b.tick(len(s)/256 + 1)
	}
	return out
}

// closingDollar finds the next unescaped single '$' at or after i.
func closingDollar(s string, i int) int {
	for i < len(s) {
		j := strings.IndexByte(s[i:], '$')
		if j < 0 {
			return -1
		}
		j += i
		if j > 0 && s[j-1] == '\\' {
			i = j + 1
			continue
		}
		return j
	}
	return -1
}

// matchBrace returns the index of the '}' matching the '{' at s[i], or -1.
// Escaped braces \{ \} do not count.
func matchBrace(s string, i int) int {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}
