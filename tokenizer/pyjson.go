package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// PyJSON writes the JSON value raw the way chat templates' tojson filter writes it under
// transformers (Python's json.dumps with ensure_ascii=False and no sort_keys): the keys of an
// object in their order (a repeated key keeps its first position and its last value, as
// json.loads builds the dict), ", " between items and ": " after keys, strings with only '"',
// '\\' and the control characters escaped (\n, \r, \t, \b, \f, other ones as \u00XX), every
// other character as itself, integers as written (without a sign on zero) and other numbers as
// Python's repr of the float they parse to (1.0, 1e+16, 1.5e-05).
func PyJSON(raw []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := readPy(dec)
	if err != nil {
		return "", err
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", errors.New("tokenizer: trailing data after the JSON value")
	}
	var b strings.Builder
	if err := v.write(&b); err != nil {
		return "", err
	}
	return b.String(), nil
}

// pyValue is a decoded JSON value that keeps its objects' key order.
type pyValue struct {
	kind byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	str  string
	b    bool
	keys []string
	vals []pyValue
}

func readPy(dec *json.Decoder) (pyValue, error) {
	tok, err := dec.Token()
	if err != nil {
		return pyValue{}, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			v := pyValue{kind: 'o'}
			index := map[string]int{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return v, err
				}
				k, _ := kt.(string)
				val, err := readPy(dec)
				if err != nil {
					return v, err
				}
				if i, ok := index[k]; ok {
					v.vals[i] = val
					continue
				}
				index[k] = len(v.keys)
				v.keys = append(v.keys, k)
				v.vals = append(v.vals, val)
			}
			_, err := dec.Token() // '}'
			return v, err
		case '[':
			v := pyValue{kind: 'a'}
			for dec.More() {
				val, err := readPy(dec)
				if err != nil {
					return v, err
				}
				v.vals = append(v.vals, val)
			}
			_, err := dec.Token() // ']'
			return v, err
		}
		return pyValue{}, fmt.Errorf("tokenizer: unexpected %v", t)
	case string:
		return pyValue{kind: 's', str: t}, nil
	case json.Number:
		return pyValue{kind: 'n', str: string(t)}, nil
	case bool:
		return pyValue{kind: 'b', b: t}, nil
	case nil:
		return pyValue{kind: 'z'}, nil
	}
	return pyValue{}, fmt.Errorf("tokenizer: unexpected JSON token %v", tok)
}

func (v *pyValue) write(b *strings.Builder) error {
	switch v.kind {
	case 'o':
		b.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writePyString(b, k)
			b.WriteString(": ")
			if err := v.vals[i].write(b); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case 'a':
		b.WriteByte('[')
		for i := range v.vals {
			if i > 0 {
				b.WriteString(", ")
			}
			if err := v.vals[i].write(b); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case 's':
		writePyString(b, v.str)
	case 'n':
		s, err := pyNumber(v.str)
		if err != nil {
			return err
		}
		b.WriteString(s)
	case 'b':
		if v.b {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	default:
		b.WriteString("null")
	}
	return nil
}

func writePyString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[r>>4])
			b.WriteByte(hex[r&0xf])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}

// pyNumber is how json.dumps writes the number json.loads reads from s: an int as its
// digits, a float as its repr.
func pyNumber(s string) (string, error) {
	if !strings.ContainsAny(s, ".eE") {
		if strings.Trim(strings.TrimPrefix(s, "-"), "0") == "" {
			return "0", nil
		}
		return s, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return "", fmt.Errorf("tokenizer: the number %s is not a finite double", s)
	}
	return pyFloatRepr(f), nil
}

// pyFloatRepr is Python's repr of a float: the shortest digits that read back as f, in
// positional notation when the decimal exponent is in [-4, 16), else as d.ddde+XX.
func pyFloatRepr(f float64) string {
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // "-1.2345e+06"
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mant, exps, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(exps)
	digits := strings.Replace(mant, ".", "", 1)
	// The value is 0.digits * 10^decpt.
	decpt := exp + 1
	switch {
	case -4 < decpt && decpt <= 16:
		switch {
		case decpt <= 0:
			return sign + "0." + strings.Repeat("0", -decpt) + digits
		case decpt >= len(digits):
			return sign + digits + strings.Repeat("0", decpt-len(digits)) + ".0"
		default:
			return sign + digits[:decpt] + "." + digits[decpt:]
		}
	default:
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		x := decpt - 1
		es := "+"
		if x < 0 {
			es, x = "-", -x
		}
		xs := strconv.Itoa(x)
		if len(xs) < 2 {
			xs = "0" + xs
		}
		return sign + m + "e" + es + xs
	}
}
