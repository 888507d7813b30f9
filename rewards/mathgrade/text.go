package mathgrade

import (
	"strconv"
	"strings"
)

// normText normalises a text answer: lower case, \text{} and other
// commands dropped (their arguments kept), punctuation and the articles
// "a", "an", "the" removed, white space collapsed.
func normText(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			j := i + 1
			for j < len(s) && isASCIILetter(s[j]) {
				j++
			}
			if j == i+1 && j < len(s) {
				j++ // "\{", "\%", ...
			}
			sb.WriteByte(' ')
			i = j - 1
		case isASCIILetter(c) || isDigit(c):
			if 'A' <= c && c <= 'Z' {
				c += 32
			}
			sb.WriteByte(c)
		case c >= 0x80:
			sb.WriteByte(c) // keep non-ASCII letters byte for byte
		default:
			sb.WriteByte(' ')
		}
	}
	words := strings.Fields(sb.String())
	out := words[:0]
	for _, w := range words {
		if w == "a" || w == "an" || w == "the" {
			continue
		}
		out = append(out, w)
	}
	return strings.Join(out, " ")
}

// squash removes what never changes a LaTeX answer's meaning, for a quick
// identity test.
func squash(s string) string { return squasher.Replace(s) }

// A strings.Replacer is safe for concurrent use.
var squasher = strings.NewReplacer(" ", "", "\t", "", "\n", "", "\r", "", "$", "",
	`\left`, "", `\right`, "", `\!`, "", `\,`, "", `\;`, "", `\:`, "", `\ `, "",
	`\dfrac`, `\frac`, `\tfrac`, `\frac`, `\displaystyle`, "")

// choiceLetter recognises a multiple-choice answer: "C", "(C)", "\text{(C)}",
// "\textbf{C}", "Option C", "(c)".
func choiceLetter(s string) (byte, bool) {
	t := strings.TrimSpace(s)
	for n := 0; n < 4; n++ {
		before := t
		for _, w := range [...]string{`\text`, `\textbf`, `\mathrm`, `\mathbf`, `\textrm`, `\mbox`} {
			if strings.HasPrefix(t, w+"{") && strings.HasSuffix(t, "}") {
				t = strings.TrimSpace(t[len(w)+1 : len(t)-1])
			}
		}
		t = strings.TrimSpace(strings.Trim(t, "*$ "))
		lt := strings.ToLower(t)
		for _, p := range [...]string{"option", "choice"} {
			if strings.HasPrefix(lt, p+" ") {
				t = strings.TrimSpace(t[len(p):])
			}
		}
		if t == before {
			break
		}
	}
	paren := false
	if len(t) == 3 && t[0] == '(' && t[2] == ')' {
		t, paren = t[1:2], true
	} else if len(t) == 2 && (t[1] == ')' || t[1] == '.') {
		t, paren = t[:1], true
	}
	if len(t) != 1 {
		return 0, false
	}
	c := t[0]
	switch {
	case 'A' <= c && c <= 'J':
		return c, true
	case paren && 'a' <= c && c <= 'j':
		return c - 32, true
	}
	return 0, false
}

// leadingChoice reads the letter of a prediction such as "(B) 12".
func leadingChoice(s string) (byte, bool) {
	t := strings.TrimSpace(s)
	if len(t) >= 3 && t[0] == '(' && t[2] == ')' && (len(t) == 3 || t[3] == ' ') {
		return choiceLetter(t[:3])
	}
	return 0, false
}

var smallNumbers = map[string]int64{
	"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
	"eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
	"fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
	"nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
	"seventy": 70, "eighty": 80, "ninety": 90,
}

var numberScales = map[string]int64{"hundred": 100, "thousand": 1000, "million": 1000000, "billion": 1000000000}

// numberWords reads an answer written in English number words ("twenty-one",
// "three hundred and five", "minus four"); ok is false for anything else.
func numberWords(s string) (string, bool) {
	t := strings.ToLower(strings.TrimSpace(strings.TrimRight(strings.TrimSpace(s), ".")))
	t = strings.ReplaceAll(t, "-", " ")
	words := strings.Fields(t)
	if len(words) == 0 || len(words) > 12 {
		return "", false
	}
	neg := false
	if words[0] == "minus" || words[0] == "negative" {
		neg = true
		words = words[1:]
		if len(words) == 0 {
			return "", false
		}
	}
	var total, cur int64
	seen := false
	for _, w := range words {
		if w == "and" {
			continue
		}
		if v, ok := smallNumbers[w]; ok {
			cur += v
			seen = true
			continue
		}
		if m, ok := numberScales[w]; ok && seen {
			if cur == 0 {
				cur = 1
			}
			if m == 100 {
				cur *= 100
			} else {
				total += cur * m
				cur = 0
			}
			continue
		}
		return "", false
	}
	if !seen {
		return "", false
	}
	v := total + cur
	if neg {
		v = -v
	}
	return strconv.FormatInt(v, 10), true
}
