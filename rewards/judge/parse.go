package judge

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// ErrNoScore is returned by ParseScore when neither field holds a score
// marker.
var ErrNoScore = errors.New("no score found in judge output")

// A number as judges write it: optional sign (ASCII or U+2212), digits,
// optional decimals. No exponents, so no "1e999".
const numPat = `[-+\x{2212}]?\d+(?:\.\d+)?`

// Verdict words, read on a 0/1 scale only (see marker.value). "incorrect"
// must precede "correct" in the alternation.
const wordPat = `incorrect|correct|wrong|right|failed|fail|passed|pass|false|true`

var (
	// Rating: [[7]] (MT-Bench style), [[7/10]], [[correct]].
	bracketRe = regexp.MustCompile(`(?i)\[\[\s*(` + numPat + `|` + wordPat + `)\s*(?:(?:/|out\s+of)\s*(` + numPat + `))?\s*\]\]`)
	// \boxed{7}, \boxed{7/10}, \fbox{7}, \boxed{\text{correct}}.
	boxedRe = regexp.MustCompile(`(?i)\\(?:boxed|fbox)\s*\{\s*(?:\\text(?:bf|rm)?\s*\{\s*)?(` + numPat + `|` + wordPat + `)\b\s*(?:/\s*(` + numPat + `)\s*)?\}`)
	// Score: 7, **Score:** 7/10, Final score = 7 out of 10, Rating: **8**,
	// Verdict: correct, Conclusion: incorrect. The value is on the same line
	// as the key.
	keyRe = regexp.MustCompile(`(?i)\b((?:final|overall|total)\s+)?(?:score|rating|grade|verdict|judgement|judgment|conclusion)\b[ \t]*(?:\*\*|__)?[ \t]*[:=][ \t*_\[($]{0,8}(` + numPat + `|(?:` + wordPat + `)\b)(?:[ \t]*(?:/|out[ \t]+of)[ \t]*(` + numPat + `))?`)
	// The whole field is just a score: "7", "**7/10**", "[8]", "correct.".
	bareRe = regexp.MustCompile(`(?i)^[\s*_\[($]*(` + numPat + `|` + wordPat + `)(?:\s*(?:/|out\s+of)\s*(` + numPat + `))?[\s*_\])$]*\.?\s*$`)
)

// marker is one explicit score statement found in judge output.
type marker struct {
	start, end int
	num        string // the value as written ("7", "correct")
	den        string // the denominator as written ("10"), or ""
	kind       string // "bracket", "boxed", "key" or "bare"
	qualified  bool   // a key marker labelled final, overall or total
}

// value resolves the marker on the scale: a verdict word is Max or Min (scan
// keeps verdict words only on 0/1 scales), a number is itself.
func (m marker) value(scale Scale) (float64, error) {
	switch strings.ToLower(m.num) {
	case "correct", "right", "pass", "passed", "true":
		return scale.Max, nil
	case "incorrect", "wrong", "fail", "failed", "false":
		return scale.Min, nil
	}
	return parseNum(m.num)
}

func parseNum(s string) (float64, error) {
	s = strings.Replace(s, "\u2212", "-", 1)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("score %s is not a finite number", s)
	}
	return v, nil
}

func isWord(s string) bool {
	c := s[0]
	return c != '-' && c != '+' && (c < '0' || c > '9') && !strings.HasPrefix(s, "\u2212")
}

// scan returns the markers in text, ordered by end then start position.
// Verdict words are dropped unless the scale is 0/1.
func scan(text string, scale Scale) []marker {
	var ms []marker
	for _, k := range []struct {
		kind string
		re   *regexp.Regexp
		g    int // index in loc of the value group's start
	}{{"bracket", bracketRe, 2}, {"boxed", boxedRe, 2}, {"key", keyRe, 4}} {
		for _, loc := range k.re.FindAllStringSubmatchIndex(text, -1) {
			m := marker{start: loc[0], end: loc[1], num: text[loc[k.g]:loc[k.g+1]], kind: k.kind}
			if loc[k.g+2] >= 0 {
				m.den = text[loc[k.g+2]:loc[k.g+3]]
			}
			m.qualified = k.kind == "key" && loc[2] >= 0
			if isWord(m.num) && (!scale.binary() || m.den != "") {
				continue
			}
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		if loc := bareRe.FindStringSubmatchIndex(text); loc != nil {
			m := marker{start: loc[2], end: loc[3], num: text[loc[2]:loc[3]], kind: "bare"}
			if loc[4] >= 0 {
				m.den = text[loc[4]:loc[5]]
				m.end = loc[5]
			}
			if !isWord(m.num) || (scale.binary() && m.den == "") {
				ms = append(ms, m)
			}
		}
	}
	sort.SliceStable(ms, func(i, j int) bool {
		if ms[i].end != ms[j].end {
			return ms[i].end < ms[j].end
		}
		return ms[i].start < ms[j].start
	})
	return ms
}

// hasAlnum reports whether s holds a letter or digit.
func hasAlnum(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) >= 0
}

// decide picks the score from one field's markers (see ParseScore).
func decide(text string, ms []marker, scale Scale) (float64, error) {
	// The final statement: the last marker and the markers just before it
	// that share its line or are separated from the next one only by spaces,
	// punctuation or markup.
	last := ms[len(ms)-1]
	final := []marker{last}
	head := last
	lineStart := strings.LastIndexByte(text[:last.start], '\n') // -1 on the first line
	for i := len(ms) - 2; i >= 0; i-- {
		m := ms[i]
		sameLine := m.start > lineStart
		if !(m.end > head.start || sameLine || !hasAlnum(text[m.end:head.start])) {
			break
		}
		final = append(final, m)
		if m.start < head.start {
			head = m
		}
	}
	// A "Final/Overall/Total score:" outranks plain key markers in the same
	// statement ("Clarity score: 6\nOverall score: 5" is 5), but not [[N]]
	// or \boxed{N}.
	qualified := false
	for _, m := range final {
		qualified = qualified || m.qualified
	}
	decisive := -1
	var val float64
	for i, m := range final { // final[0] is the last marker
		if qualified && m.kind == "key" && !m.qualified {
			continue
		}
		v, err := m.value(scale)
		if err != nil {
			return 0, err
		}
		if decisive < 0 {
			decisive, val = i, v
		} else if v != val {
			return 0, fmt.Errorf("ambiguous judge output: final score markers disagree (%q and %q)", text[m.start:m.end], text[final[decisive].start:final[decisive].end])
		}
	}
	d := final[decisive]
	if d.den != "" {
		den, err := parseNum(d.den)
		if err != nil || den != scale.Max {
			return 0, fmt.Errorf("score %s/%s is not on the %v scale", d.num, d.den, scale)
		}
	}
	if val < scale.Min || val > scale.Max {
		return 0, fmt.Errorf("score %s outside %v", d.num, scale)
	}
	return val, nil
}

// splitThink separates a <think>...</think> block that a server without a
// reasoning parser left in content: answer is the text after the last
// "</think>" (or before an unclosed "<think>"), think the text inside.
func splitThink(content string) (answer, think string) {
	lower := asciiLower(content)
	if i := strings.LastIndex(lower, "</think>"); i >= 0 {
		think = content[:i]
		if j := strings.Index(asciiLower(think), "<think>"); j >= 0 {
			think = think[j+len("<think>"):]
		}
		return content[i+len("</think>"):], think
	}
	if j := strings.Index(lower, "<think>"); j >= 0 {
		return content[:j], content[j+len("<think>"):]
	}
	return content, ""
}

// ParseScore finds the judge's score in its output and returns it as written
// on scale (raw, not normalised) with where it was found: "content" or
// "reasoning".
//
// Accepted markers (letter case ignored):
//
//	Score: 7   Rating: 7   Grade: 7   Verdict: 1   Final/Overall/Total score: 7
//	  with ":" or "=", markdown around key or value ("**Score:** 7",
//	  "Score: **7**", "Score: [7]", "Score: $7$"), and an optional
//	  denominator "7/10" or "7 out of 10"; the value must be on the key's line
//	[[7]]  [[7/10]]              (MT-Bench style)
//	\boxed{7}  \boxed{7/10}  \fbox{7}  \boxed{\text{correct}}
//	a field that is nothing but a score: "7", "**7/10**", "8."
//
// Values are decimal numbers with an optional sign ("7", "7.5", "-1").
// On a 0/1 scale only, the verdict words correct/right/pass/passed/true (=1)
// and incorrect/wrong/fail/failed/false (=0) count as values ("Verdict:
// correct", "Conclusion: incorrect", "[[correct]]"); on other scales they
// are ignored.
//
// Precedence: content first. A <think>...</think> block inside content is
// treated as reasoning, not content. Reasoning (the separate field, then any
// <think> text) is searched only when content has no marker at all; content
// with a marker that fails (off the scale, ambiguous) is an error, not a
// reason to look at the reasoning. Within a field the LAST marker decides,
// so a judge that revises its score ("Score: 6 ... on reflection, Score: 8")
// gets the later one. The last marker, the markers on its line, and the
// markers immediately before it with only spaces, punctuation or markup in
// between form the final statement. In it, a key labelled Final, Overall or
// Total outranks unlabelled keys, so per-criterion lines before an overall
// one are fine ("Clarity score: 6\nOverall score: 5" is 5); otherwise its
// markers must agree, and if they do not ("Score: 7\n[[8]]") the output is
// ambiguous and refused.
//
// Errors: ErrNoScore when no field has a marker; otherwise a refusal naming
// the value: a denominator other than scale.Max ("7/5" on 0-10), a value
// outside [Min, Max], a value that does not parse as a finite number, or
// disagreeing final markers. ParseScore never panics and runs in time linear
// in the input (regular expressions without backtracking).
func ParseScore(content, reasoning string, scale Scale) (raw float64, source string, err error) {
	if !scale.Valid() {
		return 0, "", fmt.Errorf("invalid scale %v-%v", scale.Min, scale.Max)
	}
	answer, think := splitThink(content)
	if think != "" {
		if reasoning != "" {
			reasoning += "\n"
		}
		reasoning += think
	}
	for _, f := range []struct{ name, text string }{{"content", answer}, {"reasoning", reasoning}} {
		ms := scan(f.text, scale)
		if len(ms) == 0 {
			continue
		}
		v, err := decide(f.text, ms, scale)
		if err != nil {
			return 0, f.name, err
		}
		return v, f.name, nil
	}
	return 0, "", ErrNoScore
}
