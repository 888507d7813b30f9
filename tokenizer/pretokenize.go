package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// splitKind names a pre-tokenization pattern. Go's regexp has no lookahead, and the patterns
// need `\s+(?!\S)`, so each pattern is a hand-written scanner that returns the same matches as
// the backtracking engine (Oniguruma) that tokenizers uses: at each position the alternatives are
// tried in order, and the first that matches wins.
type splitKind int

const (
	splitNone splitKind = iota
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
	splitLlama3
	// the same with \p{N} (one digit per piece): Qwen2, Qwen2.5, Qwen3
	splitQwen
	// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
	splitGPT2
)

var knownPatterns = map[string]splitKind{
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`: splitLlama3,
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`:      splitQwen,
	`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`:                                          splitGPT2,
}

// character classes used by the patterns
const (
	clsOther = iota // [^\s\p{L}\p{N}], and bytes that are not valid UTF-8
	clsLetter
	clsNumber
	clsSpace
)

var asciiClass [128]uint8

func init() {
	for c := range 128 {
		asciiClass[c] = slowClass(rune(c))
	}
}

func slowClass(r rune) uint8 {
	switch {
	case unicode.IsLetter(r):
		return clsLetter
	case unicode.IsNumber(r):
		return clsNumber
	case unicode.IsSpace(r):
		return clsSpace
	}
	return clsOther
}

// at decodes the character at s[i]: its class, the rune and its width. Invalid UTF-8 is one
// byte wide and of class other.
func at(s string, i int) (uint8, rune, int) {
	c := s[i]
	if c < utf8.RuneSelf {
		return asciiClass[c], rune(c), 1
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && w == 1 {
		return clsOther, r, 1
	}
	return slowClass(r), r, w
}

// run returns the end of the run of characters of class cls starting at i.
func run(s string, i int, cls uint8) int {
	for i < len(s) {
		c, _, w := at(s, i)
		if c != cls {
			break
		}
		i += w
	}
	return i
}

// foldIs reports whether r matches the ASCII lower-case letter c case-insensitively, as
// Oniguruma's (?i) does (which also folds U+017F LATIN SMALL LETTER LONG S to s and U+212A
// KELVIN SIGN to k).
func foldIs(r rune, c byte) bool {
	if r == rune(c) || r == rune(c-32) {
		return true
	}
	return (c == 's' && r == 0x17F) || (c == 'k' && r == 0x212A)
}

// contraction matches 's|'t|'re|'ve|'m|'ll|'d at i (s[i] == '\”), case-insensitively if fold.
// It returns the end, or -1.
func contraction(s string, i int, fold bool) int {
	j := i + 1
	if j >= len(s) {
		return -1
	}
	eq := func(r rune, c byte) bool {
		if fold {
			return foldIs(r, c)
		}
		return r == rune(c)
	}
	_, r1, w1 := at(s, j)
	switch {
	case eq(r1, 's'), eq(r1, 't'), eq(r1, 'm'), eq(r1, 'd'):
		return j + w1
	}
	if j+w1 >= len(s) {
		return -1
	}
	_, r2, w2 := at(s, j+w1)
	switch {
	case eq(r1, 'r') && eq(r2, 'e'), eq(r1, 'v') && eq(r2, 'e'), eq(r1, 'l') && eq(r2, 'l'):
		return j + w1 + w2
	}
	return -1
}

// spaceRunEnd is the end of the run of whitespace at i; lastW the width of its last character.
func spaceRunEnd(s string, i int) (end, lastW int) {
	for i < len(s) {
		c, _, w := at(s, i)
		if c != clsSpace {
			break
		}
		i += w
		lastW = w
	}
	return i, lastW
}

// nextLlama returns the end of the match of the Llama 3 / Qwen pattern at i (< len(s)).
func nextLlama(s string, i int, maxDigits int) int {
	c0, r0, w0 := at(s, i)
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if r0 == '\'' {
		if e := contraction(s, i, true); e > 0 {
			return e
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c0 == clsLetter {
		return run(s, i+w0, clsLetter)
	}
	if c0 != clsNumber && r0 != '\r' && r0 != '\n' && i+w0 < len(s) {
		if c1, _, w1 := at(s, i+w0); c1 == clsLetter {
			return run(s, i+w0+w1, clsLetter)
		}
	}
	// \p{N}{1,maxDigits}
	if c0 == clsNumber {
		j := i + w0
		for n := 1; n < maxDigits && j < len(s); n++ {
			c, _, w := at(s, j)
			if c != clsNumber {
				break
			}
			j += w
		}
		return j
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	start := -1
	if c0 == clsOther {
		start = i
	} else if r0 == ' ' && i+1 < len(s) {
		if c1, _, _ := at(s, i+1); c1 == clsOther {
			start = i + 1
		}
	}
	if start >= 0 {
		j := run(s, start, clsOther)
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j
	}
	// Here s[i] is whitespace.
	end, lastW := spaceRunEnd(s, i)
	// \s*[\r\n]+ : up to and including the last \r or \n of the whitespace run
	for k := end - 1; k >= i; k-- {
		if s[k] == '\r' || s[k] == '\n' {
			return k + 1
		}
	}
	return spaceTail(s, i, end, lastW)
}

// spaceTail is \s+(?!\S)|\s+ for the whitespace run [i, end).
func spaceTail(s string, i, end, lastW int) int {
	if end == len(s) || end-lastW == i {
		return end
	}
	return end - lastW
}

// nextGPT2 returns the end of the match of GPT-2's pattern at i (< len(s)).
func nextGPT2(s string, i int) int {
	c0, r0, w0 := at(s, i)
	if r0 == '\'' {
		if e := contraction(s, i, false); e > 0 {
			return e
		}
	}
	if c0 != clsSpace {
		// \p{L}+, \p{N}+ or [^\s\p{L}\p{N}]+ without the optional space
		return run(s, i+w0, c0)
	}
	if r0 == ' ' && i+1 < len(s) {
		// ' ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+' with the space
		if c1, _, w1 := at(s, i+1); c1 != clsSpace {
			return run(s, i+1+w1, c1)
		}
	}
	end, lastW := spaceRunEnd(s, i)
	return spaceTail(s, i, end, lastW)
}

// split calls f with the [start, end) of each piece of s under the pattern k.
func split(k splitKind, s string, f func(start, end int)) {
	switch k {
	case splitNone:
		if len(s) > 0 {
			f(0, len(s))
		}
	case splitLlama3, splitQwen:
		maxDigits := 3
		if k == splitQwen {
			maxDigits = 1
		}
		for i := 0; i < len(s); {
			e := nextLlama(s, i, maxDigits)
			f(i, e)
			i = e
		}
	case splitGPT2:
		for i := 0; i < len(s); {
			e := nextGPT2(s, i)
			f(i, e)
			i = e
		}
	}
}
