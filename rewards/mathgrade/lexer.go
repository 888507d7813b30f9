package mathgrade

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokKind uint8

const (
	tEOF     tokKind = iota
	tNum             // s: digits with separators removed, e.g. "1000.5"
	tIdent           // s: one letter, a Greek name, "pi", "inf" or "\name"
	tWord            // s: a word of letters (units, connectors, text)
	tText            // s: the content of \text{...} without math in it
	tCmd             // s: a command that takes arguments or an argument
	tOp              // s: + - * / ^ _ ! ' = < > <= >= != ~= pm mp in cup ...
	tLParen          // (
	tRParen          // )
	tLBrack          // [
	tRBrack          // ]
	tLBrace          // {
	tRBrace          // }
	tLSet            // \{
	tRSet            // \}
	tBar             // |
	tComma           // s: "," or ",tight" (digits on both sides, no space)
	tSemi            // ;
	tColon           // :
	tAmp             // &
	tRowSep          // \\
	tPercent         // % \% percent
	tDeg             // \circ, °, \degree
	tBegin           // s: environment name
	tEnd             // s: environment name
)

type token struct {
	kind tokKind
	s    string
}

// Lexer limits.
const (
	maxTokens   = 4000
	maxLexDepth = 8 // nesting of \text{} / \mathrm{} contents lexed as math
)

type lexer struct {
	toks []token
	b    *budget
	bad  bool // an unrecoverable lexing problem (too many tokens)
}

// lex turns an answer string into tokens. It never fails; unknown
// characters become tOp tokens that the parser rejects.
func lex(s string, b *budget) ([]token, bool) {
	lx := &lexer{b: b}
	lx.run(s, 0)
	return lx.toks, !lx.bad
}

func (lx *lexer) emit(k tokKind, s string) {
	if len(lx.toks) >= maxTokens {
		lx.bad = true
		return
	}
	lx.toks = append(lx.toks, token{k, s})
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (lx *lexer) run(s string, depth int) {
	if depth > maxLexDepth {
		lx.bad = true
		return
	}
	lx.b.tick(len(s)/16 + 1)
	for i := 0; i < len(s) && !lx.bad; {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '~' || c == '$':
			i++
		case isDigit(c) || c == '.' && i+1 < len(s) && isDigit(s[i+1]):
			i = lx.number(s, i)
		case isASCIILetter(c):
			i = lx.letters(s, i)
		case c == '\\':
			i = lx.command(s, i, depth)
		case c >= 0x80:
			i = lx.unicode(s, i)
		default:
			i = lx.punct(s, i)
		}
	}
}

func (lx *lexer) punct(s string, i int) int {
	c := s[i]
	two := ""
	if i+1 < len(s) {
		two = s[i : i+2]
	}
	switch two {
	case "<=", "=<":
		lx.emit(tOp, "<=")
		return i + 2
	case ">=", "=>":
		lx.emit(tOp, ">=")
		return i + 2
	case "!=", "<>":
		lx.emit(tOp, "!=")
		return i + 2
	case "==":
		lx.emit(tOp, "=")
		return i + 2
	case "**":
		lx.emit(tOp, "^")
		return i + 2
	case "+-":
		lx.emit(tOp, "pm")
		return i + 2
	}
	if strings.HasPrefix(s[i:], "+/-") {
		lx.emit(tOp, "pm")
		return i + 3
	}
	switch c {
	case '(':
		lx.emit(tLParen, "(")
	case ')':
		lx.emit(tRParen, ")")
	case '[':
		lx.emit(tLBrack, "[")
	case ']':
		lx.emit(tRBrack, "]")
	case '{':
		// "{,}" is a thousands separator that number() did not absorb.
		if strings.HasPrefix(s[i:], "{,}") {
			lx.emit(tComma, ",")
			return i + 3
		}
		lx.emit(tLBrace, "{")
	case '}':
		lx.emit(tRBrace, "}")
	case '|':
		lx.emit(tBar, "|")
	case ',':
		tight := i > 0 && isDigit(s[i-1]) && i+1 < len(s) && isDigit(s[i+1])
		if tight {
			lx.emit(tComma, ",tight")
		} else {
			lx.emit(tComma, ",")
		}
	case ';':
		lx.emit(tSemi, ";")
	case ':':
		lx.emit(tColon, ":")
	case '&':
		lx.emit(tAmp, "&")
	case '%':
		lx.emit(tPercent, "%")
	case '+', '-', '*', '/', '^', '_', '!', '=', '<', '>':
		lx.emit(tOp, string(c))
	case '\'':
		lx.emit(tOp, "'")
	case '"', '`', '?':
		// quotes and stray marks carry no value
	default:
		lx.emit(tOp, string(c))
	}
	return i + 1
}

// number reads digits with thousands separators, a decimal part and an
// exponent.
func (lx *lexer) number(s string, i int) int {
	var sb strings.Builder
	j := i
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	sb.WriteString(s[i:j])
	first := j - i
	if first >= 1 && first <= 3 && s[i] != '0' {
		for {
			k, ok := thousandsSep(s, j)
			if !ok {
				break
			}
			sb.WriteString(s[k : k+3])
			j = k + 3
		}
	}
	if j+1 < len(s) && s[j] == '.' && isDigit(s[j+1]) {
		k := j + 1
		for k < len(s) && isDigit(s[k]) {
			k++
		}
		sb.WriteString(s[j:k])
		j = k
	} else if j == i && s[j] == '.' {
		// ".5"
		k := j + 1
		for k < len(s) && isDigit(s[k]) {
			k++
		}
		sb.WriteString("0")
		sb.WriteString(s[j:k])
		j = k
	}
	// A repeating decimal: 0.\overline{3}, 0.1\overline{6}, 0.\dot{3}.
	for _, cmd := range [...]string{`\overline{`, `\dot{`} {
		if j < len(s) && strings.HasPrefix(s[j:], cmd) && strings.Contains(sb.String(), ".") ||
			j+1 < len(s) && s[j] == '.' && strings.HasPrefix(s[j+1:], cmd) {
			k := j
			if s[k] == '.' {
				k++
				sb.WriteByte('.')
			}
			content, m := braceArg(s, k+len(cmd)-1)
			if m > k && content != "" && strings.Trim(content, "0123456789") == "" {
				sb.WriteString("(" + content + ")")
				lx.emit(tNum, sb.String())
				return m
			}
		}
	}
	// Scientific notation: 1.5e-3, 2E10 (not "2e" alone, which is 2 times e).
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		k := j + 1
		if k < len(s) && (s[k] == '-' || s[k] == '+') {
			k++
		}
		if k < len(s) && isDigit(s[k]) && (k+1 >= len(s) || !isASCIILetter(s[k+1]) || k > j+1) {
			m := k
			for m < len(s) && isDigit(s[m]) && m-k < 4 {
				m++
			}
			if m >= len(s) || !isDigit(s[m]) {
				sb.WriteString("e")
				sb.WriteString(s[j+1 : m])
				j = m
			}
		}
	}
	lx.emit(tNum, sb.String())
	return j
}

// thousandsSep reports whether s[j:] is a thousands separator followed by
// exactly three digits, and where those digits start.
func thousandsSep(s string, j int) (int, bool) {
	var k int
	switch {
	case strings.HasPrefix(s[j:], "{,}"):
		k = j + 3
	case strings.HasPrefix(s[j:], `,\!`):
		k = j + 3
		if k < len(s) && s[k] == ' ' {
			k++
		}
	case strings.HasPrefix(s[j:], `\,`), strings.HasPrefix(s[j:], `\ `), strings.HasPrefix(s[j:], `\;`), strings.HasPrefix(s[j:], `\!`):
		k = j + 2
	case strings.HasPrefix(s[j:], ","), strings.HasPrefix(s[j:], " "), strings.HasPrefix(s[j:], "~"):
		k = j + 1
	default:
		return 0, false
	}
	if k+3 > len(s) || !isDigit(s[k]) || !isDigit(s[k+1]) || !isDigit(s[k+2]) {
		return 0, false
	}
	if k+3 < len(s) && isDigit(s[k+3]) {
		return 0, false
	}
	// "1 000" is 1000 but "2 3.5" is not; a following decimal point is fine.
	return k, true
}

// Words that are units or fillers after a number, and letter pairs that
// are units rather than products of two variables.
var twoLetterWords = map[string]bool{
	"or": true, "cm": true, "mm": true, "km": true, "kg": true, "mg": true, "ml": true,
	"ft": true, "yd": true, "mi": true, "hr": true, "pm": true, "am": true, "oz": true, "lb": true,
	"mL": true, "cc": true, "sq": true, "pi": true, "ln": true, "tg": true,
}

var funcWords = map[string]bool{
	"sin": true, "cos": true, "tan": true, "sec": true, "csc": true, "cot": true,
	"arcsin": true, "arccos": true, "arctan": true, "sinh": true, "cosh": true, "tanh": true,
	"ln": true, "log": true, "exp": true, "sqrt": true, "lg": true,
}

func (lx *lexer) letters(s string, i int) int {
	j := i
	for j < len(s) && isASCIILetter(s[j]) {
		j++
	}
	w := s[i:j]
	switch {
	case w == "pi":
		lx.emit(tIdent, "pi")
	case w == "infty" || w == "infinity" || w == "inf":
		lx.emit(tIdent, "inf")
	case funcWords[w]:
		lx.emit(tCmd, w)
	case len(w) == 1:
		lx.emit(tIdent, w)
	case len(w) >= 3 || twoLetterWords[w]:
		lx.emit(tWord, w)
	default:
		// "xy", "AB": a product of one-letter names.
		for k := 0; k < len(w); k++ {
			lx.emit(tIdent, w[k:k+1])
		}
	}
	return j
}

func (lx *lexer) unicode(s string, i int) int {
	r, n := utf8.DecodeRuneInString(s[i:])
	switch r {
	case '−', '–', '—', '‐', '‒':
		lx.emit(tOp, "-")
	case '×', '·', '⋅', '∙':
		lx.emit(tOp, "*")
	case '÷', '∕':
		lx.emit(tOp, "/")
	case '≤', '⩽':
		lx.emit(tOp, "<=")
	case '≥', '⩾':
		lx.emit(tOp, ">=")
	case '≠':
		lx.emit(tOp, "!=")
	case '≈', '≃':
		lx.emit(tOp, "~=")
	case '±':
		lx.emit(tOp, "pm")
	case '∓':
		lx.emit(tOp, "mp")
	case '∞':
		lx.emit(tIdent, "inf")
	case 'π':
		lx.emit(tIdent, "pi")
	case '√':
		lx.emit(tCmd, "sqrt")
	case '°', 'º':
		lx.emit(tDeg, "°")
	case '∈':
		lx.emit(tOp, "in")
	case '∪':
		lx.emit(tOp, "cup")
	case '∩':
		lx.emit(tOp, "cap")
	case '²':
		lx.emit(tOp, "^")
		lx.emit(tNum, "2")
	case '³':
		lx.emit(tOp, "^")
		lx.emit(tNum, "3")
	case '′':
		lx.emit(tOp, "'")
	case '€', '£', '¥', '₹', '\u00a0', '\u2009', '\u202f', '“', '”', '’', '‘':
		// currency and typographic spaces/quotes carry no value
	default:
		if unicode.IsLetter(r) {
			j := i
			for j < len(s) {
				r2, n2 := utf8.DecodeRuneInString(s[j:])
				if !unicode.IsLetter(r2) {
					break
				}
				j += n2
			}
			lx.emit(tWord, s[i:j])
			return j
		}
		if unicode.IsSpace(r) {
			return i + n
		}
		lx.emit(tOp, string(r))
	}
	return i + n
}

var greek = map[string]bool{
	"alpha": true, "beta": true, "gamma": true, "delta": true, "epsilon": true, "varepsilon": true,
	"zeta": true, "eta": true, "theta": true, "vartheta": true, "iota": true, "kappa": true,
	"lambda": true, "mu": true, "nu": true, "xi": true, "rho": true, "sigma": true, "tau": true,
	"upsilon": true, "phi": true, "varphi": true, "chi": true, "psi": true, "omega": true,
	"Gamma": true, "Delta": true, "Theta": true, "Lambda": true, "Xi": true, "Pi": true,
	"Sigma": true, "Phi": true, "Psi": true, "Omega": true, "ell": true,
}

var ignoredCommands = map[string]bool{
	"left": true, "right": true, "big": true, "Big": true, "bigg": true, "Bigg": true,
	"bigl": true, "bigr": true, "Bigl": true, "Bigr": true, "biggl": true, "biggr": true,
	"Biggl": true, "Biggr": true, "middle": true, "displaystyle": true, "textstyle": true,
	"scriptstyle": true, "limits": true, "nolimits": true, "quad": true, "qquad": true,
	"enspace": true, "thinspace": true, "medspace": true, "thickspace": true, "negthinspace": true,
	"space": true, "hfill": true, "mathstrut": true, "strut": true, "nonumber": true, "notag": true,
	"hline": true, "rm": true, "bf": true, "it": true, "cal": true, "tiny": true, "small": true,
	"large": true, "Large": true, "normalsize": true, "dollar": true, "euro": true, "pounds": true,
}

var opCommands = map[string]string{
	"cdot": "*", "times": "*", "ast": "*", "div": "/",
	"pm": "pm", "mp": "mp",
	"le": "<=", "leq": "<=", "leqslant": "<=", "ge": ">=", "geq": ">=", "geqslant": ">=",
	"lt": "<", "gt": ">", "ne": "!=", "neq": "!=",
	"approx": "~=", "simeq": "~=", "approxeq": "~=", "thickapprox": "~=",
	"equiv": "=", "in": "in", "cup": "cup", "cap": "cap", "setminus": "setminus",
	"to": "->", "rightarrow": "->", "Rightarrow": "->", "implies": "->", "iff": "<->",
	"Longrightarrow": "->", "longrightarrow": "->", "mid": "|", "vee": "or", "wedge": "and",
	"lor": "or", "land": "and", "colon": ":",
}

var cmdCommands = map[string]string{
	"frac": "frac", "dfrac": "frac", "tfrac": "frac", "cfrac": "frac",
	"binom": "binom", "dbinom": "binom", "tbinom": "binom", "choose": "choose",
	"sqrt": "sqrt", "sin": "sin", "cos": "cos", "tan": "tan", "sec": "sec", "csc": "csc",
	"cot": "cot", "arcsin": "arcsin", "arccos": "arccos", "arctan": "arctan",
	"sinh": "sinh", "cosh": "cosh", "tanh": "tanh", "ln": "ln", "log": "log", "lg": "lg", "exp": "exp",
	"lfloor": "lfloor", "rfloor": "rfloor", "lceil": "lceil", "rceil": "rceil",
	"sum": "sum", "prod": "prod", "gcd": "gcd", "lcm": "lcm", "max": "max", "min": "min",
	"det": "det",
}

// Commands whose one brace argument is math to lex in place.
var mathArgCommands = map[string]bool{
	"mathrm": true, "mathbf": true, "mathit": true, "mathsf": true, "mathcal": true, "mathbb": true,
	"mathnormal": true, "mathtt": true, "boldsymbol": true, "bm": true, "operatorname": true,
	"boxed": true, "fbox": true, "overline": true, "underline": true, "vec": true, "hat": true,
	"bar": true, "tilde": true, "widehat": true, "widetilde": true, "overrightarrow": true,
	"overleftrightarrow": true, "dot": true, "ddot": true, "mathring": true, "color": false,
}

func (lx *lexer) command(s string, i, depth int) int {
	if i+1 >= len(s) {
		return i + 1 // a trailing backslash, as in "185\"
	}
	c := s[i+1]
	if !isASCIILetter(c) {
		switch c {
		case '\\':
			// "\\frac" in a doubly escaped string means "\frac"; a real row
			// break is followed by a space, digit or another command.
			j := i + 2
			k := j
			for k < len(s) && isASCIILetter(s[k]) {
				k++
			}
			if k > j+1 && knownCommand(s[j:k]) {
				return i + 1
			}
			lx.emit(tRowSep, `\\`)
		case '{':
			lx.emit(tLSet, `\{`)
		case '}':
			lx.emit(tRSet, `\}`)
		case '%':
			lx.emit(tPercent, "%")
		case '|':
			lx.emit(tBar, "|")
		case ',', ';', ':', '!', ' ', '$', '(', ')', '[', ']', '>', '\n', '\t':
			// spacing, currency and math delimiters
		case '#', '&', '_':
			if c == '_' {
				lx.emit(tOp, "_")
			}
		default:
			lx.emit(tOp, s[i:i+2])
		}
		return i + 2
	}
	j := i + 1
	for j < len(s) && isASCIILetter(s[j]) {
		j++
	}
	name := s[i+1 : j]
	switch {
	case ignoredCommands[name]:
		return j
	case name == "circ" || name == "degree" || name == "degrees":
		lx.emit(tDeg, "°")
		return j
	case name == "infty" || name == "infin":
		lx.emit(tIdent, "inf")
		return j
	case name == "pi":
		lx.emit(tIdent, "pi")
		return j
	case name == "percent":
		lx.emit(tPercent, "%")
		return j
	case name == "imath" || name == "jmath":
		lx.emit(tIdent, "i")
		return j
	case greek[name]:
		lx.emit(tIdent, name)
		return j
	case opCommands[name] != "":
		lx.emit(tOp, opCommands[name])
		return j
	case cmdCommands[name] != "":
		lx.emit(tCmd, cmdCommands[name])
		return j
	case name == "begin" || name == "end":
		env, k := braceArg(s, j)
		if name == "begin" {
			lx.emit(tBegin, env)
			if env == "array" || env == "tabular" {
				if _, k2 := braceArg(s, k); k2 > k {
					k = k2
				}
			}
		} else {
			lx.emit(tEnd, env)
		}
		return k
	case isTextCommand(name):
		content, k := braceArg(s, j)
		if k == j {
			return j
		}
		t := strings.TrimSpace(content)
		switch {
		case t == "":
		case strings.ContainsAny(t, `0123456789\^_=+`):
			lx.run(t, depth+1)
		default:
			lx.emit(tText, t)
		}
		return k
	case mathArgCommands[name]:
		content, k := braceArg(s, j)
		if k == j {
			return j
		}
		if name == "operatorname" {
			t := strings.TrimSpace(content)
			if cmdCommands[t] != "" {
				lx.emit(tCmd, cmdCommands[t])
			} else {
				lx.emit(tIdent, t)
			}
			return k
		}
		lx.run(content, depth+1)
		return k
	case name == "phantom" || name == "hphantom" || name == "vphantom" || name == "textcolor" || name == "color" || name == "label" || name == "tag":
		_, k := braceArg(s, j)
		if name == "textcolor" {
			content, k2 := braceArg(s, k)
			lx.run(content, depth+1)
			return k2
		}
		return k
	case name == "dots" || name == "ldots" || name == "cdots" || name == "vdots" || name == "ddots":
		lx.emit(tWord, "...")
		return j
	}
	lx.emit(tIdent, `\`+name)
	return j
}

// braceArg reads a {...} argument after optional spaces starting at j; it
// returns the content and the index after it, or ("", j) when none.
func braceArg(s string, j int) (string, int) {
	k := j
	for k < len(s) && s[k] == ' ' {
		k++
	}
	if k >= len(s) || s[k] != '{' {
		return "", j
	}
	m := matchBrace(s, k)
	if m < 0 {
		return "", j
	}
	return s[k+1 : m], m + 1
}

func knownCommand(name string) bool {
	return ignoredCommands[name] || opCommands[name] != "" || cmdCommands[name] != "" ||
		greek[name] || isTextCommand(name) || mathArgCommands[name] ||
		name == "begin" || name == "end" || name == "infty" || name == "pi" || name == "circ"
}
