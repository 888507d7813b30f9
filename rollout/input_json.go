package rollout

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// problemKind is what locateProblem found.
type problemKind int

const (
	problemUTF8Value problemKind = iota // invalid UTF-8 inside a string value
	problemUTF8Key                      // invalid UTF-8 inside an object key
	problemNonFinite                    // NaN, Infinity or -Infinity
)

// jsonProblem is the first thing in a record that encoding/json mangles or
// rejects without saying where: invalid UTF-8 in a string (replaced by U+FFFD
// when decoding) or the NaN, Infinity and -Infinity tokens that Python's json
// module writes for non-finite floats (a syntax error). Path names the field
// as the decoder does: key.sub[2].leaf.
type jsonProblem struct {
	kind  problemKind
	path  string
	token string // the non-finite token
}

// maxLocateDepth bounds nesting like encoding/json does, so a hostile line
// cannot exhaust the stack.
const maxLocateDepth = 10000

// locateProblem walks raw as JSON and returns its first problem in document
// order. It reports nothing (false) for a record without one, and also when
// it meets a syntax error first: the caller then reports malformed JSON. It
// runs only on records that failed to decode, so it favours clarity over
// speed.
func locateProblem(raw []byte) (jsonProblem, bool) {
	l := locator{b: raw}
	l.value("", 0)
	return l.prob, l.found
}

type locator struct {
	b     []byte
	i     int
	prob  jsonProblem
	found bool
	// numbers makes every number token a possible problem: one too large
	// for a float64 (see locateOverflow).
	numbers bool
}

// locateOverflow returns the first number in raw, a record that decoded,
// whose magnitude is too large for a float64 (1e999, -1e400): Go and
// Python read it as an infinity, so it is non-finite like NaN, and is
// reported the same way, with its field and as written. It reports nothing
// for a record without one. Numbers too small (1e-400) read as 0 and are
// left alone.
func locateOverflow(raw []byte) (jsonProblem, bool) {
	if !mayOverflow(raw) {
		return jsonProblem{}, false
	}
	l := locator{b: raw, numbers: true}
	l.value("", 0)
	return l.prob, l.found
}

// mayOverflow is a fast filter for locateOverflow, which walks the record:
// a number can only overflow with an exponent (a digit, then e or E) or with
// more than 308 digits. Text that merely looks so ("3e5" in a string) only
// costs the walk.
func mayOverflow(b []byte) bool {
	run := 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if run++; run > 308 {
				return true
			}
		case (c == 'e' || c == 'E') && run > 0:
			return true
		case c == '.':
		default:
			run = 0
		}
	}
	return false
}

// overflows reports whether the number token tok is too large for a
// float64.
func overflows(tok []byte) bool {
	v, err := strconv.ParseFloat(string(tok), 64)
	return err != nil && math.IsInf(v, 0)
}

func (l *locator) ws() {
	for l.i < len(l.b) {
		switch l.b[l.i] {
		case ' ', '\t', '\n', '\r':
			l.i++
		default:
			return
		}
	}
}

// value walks one value at path; false stops the walk (a problem or a
// syntax error).
func (l *locator) value(path string, depth int) bool {
	if depth > maxLocateDepth {
		return false
	}
	l.ws()
	if l.i >= len(l.b) {
		return false
	}
	rest := l.b[l.i:]
	switch c := rest[0]; {
	case c == '{':
		return l.object(path, depth)
	case c == '[':
		return l.array(path, depth)
	case c == '"':
		s, ok := l.str()
		if ok && !utf8.Valid(s) {
			l.prob, l.found = jsonProblem{kind: problemUTF8Value, path: path}, true
			return false
		}
		return ok
	case bytes.HasPrefix(rest, []byte("NaN")), bytes.HasPrefix(rest, []byte("Infinity")), bytes.HasPrefix(rest, []byte("-Infinity")):
		tok := "NaN"
		if c != 'N' {
			tok = string(rest[:bytes.IndexByte(rest, 'y')+1])
		}
		l.prob, l.found = jsonProblem{kind: problemNonFinite, path: path, token: tok}, true
		return false
	case c == '-' || (c >= '0' && c <= '9'):
		start := l.i
		l.i++
		for l.i < len(l.b) && strings.IndexByte("0123456789.eE+-", l.b[l.i]) >= 0 {
			l.i++
		}
		if l.numbers && overflows(l.b[start:l.i]) {
			l.prob, l.found = jsonProblem{kind: problemNonFinite, path: path, token: string(l.b[start:l.i])}, true
			return false
		}
		return true
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(rest, []byte(lit)) {
				l.i += len(lit)
				return true
			}
		}
		return false
	}
}

func (l *locator) object(path string, depth int) bool {
	l.i++ // {
	l.ws()
	if l.i < len(l.b) && l.b[l.i] == '}' {
		l.i++
		return true
	}
	for {
		l.ws()
		if l.i >= len(l.b) || l.b[l.i] != '"' {
			return false
		}
		quoted := l.i
		s, ok := l.str()
		if !ok {
			return false
		}
		var key string
		// Unquoting replaces invalid UTF-8, which is what a path should show.
		if json.Unmarshal(l.b[quoted:l.i], &key) != nil {
			key = string(s)
		}
		key = strings.ToValidUTF8(key, "\uFFFD")
		field := key
		if path != "" {
			field = path + "." + key
		}
		if !utf8.Valid(s) {
			l.prob, l.found = jsonProblem{kind: problemUTF8Key, path: field}, true
			return false
		}
		l.ws()
		if l.i >= len(l.b) || l.b[l.i] != ':' {
			return false
		}
		l.i++
		if !l.value(field, depth+1) {
			return false
		}
		l.ws()
		if l.i >= len(l.b) {
			return false
		}
		switch l.b[l.i] {
		case ',':
			l.i++
		case '}':
			l.i++
			return true
		default:
			return false
		}
	}
}

func (l *locator) array(path string, depth int) bool {
	l.i++ // [
	l.ws()
	if l.i < len(l.b) && l.b[l.i] == ']' {
		l.i++
		return true
	}
	for n := 0; ; n++ {
		if !l.value(path+"["+strconv.Itoa(n)+"]", depth+1) {
			return false
		}
		l.ws()
		if l.i >= len(l.b) {
			return false
		}
		switch l.b[l.i] {
		case ',':
			l.i++
		case ']':
			l.i++
			return true
		default:
			return false
		}
	}
}

// str consumes a string at l.i and returns its raw content between the
// quotes (escapes are ASCII, so raw content has invalid UTF-8 exactly when
// the string does).
func (l *locator) str() ([]byte, bool) {
	start := l.i + 1
	for j := start; j < len(l.b); j++ {
		switch l.b[j] {
		case '\\':
			j++
		case '"':
			l.i = j + 1
			return l.b[start:j], true
		}
	}
	return nil, false
}
