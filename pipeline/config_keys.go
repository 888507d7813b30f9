package pipeline

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// keyError is a configuration error about one key, by its dotted path
// (endpoint.max_in_flight, reward.judges[1].base_url). ParseConfig adds the
// line the key is on.
type keyError struct {
	key string
	err error
	// bare: the message names its keys itself and is shown as it is; the
	// key only finds the line.
	bare bool
}

func (e *keyError) Error() string {
	if e.bare {
		return e.err.Error()
	}
	return e.key + ": " + e.err.Error()
}

func (e *keyError) Unwrap() error { return e.err }

// keyErr returns an error about key: "key: message".
func keyErr(key, format string, args ...any) error {
	return &keyError{key: key, err: fmt.Errorf(format, args...)}
}

// atKey attaches key to an error whose message already names it, for its
// line.
func atKey(key string, err error) error {
	return &keyError{key: key, err: err, bare: true}
}

// keyLines records the keys a configuration file sets, by dotted path, with
// the line of each. It is how defaults tell a key left out (the default
// applies) from one set to a zero value (used as it is, or refused), and
// how errors name their line.
type keyLines map[string]int

// has reports whether the file sets key.
func (k keyLines) has(key string) bool {
	_, ok := k[key]
	return ok
}

// line is the line of key, or of its nearest enclosing key the file sets
// (a missing endpoint.model is reported at endpoint); 0 when none is set.
func (k keyLines) line(key string) int {
	for key != "" {
		if l, ok := k[key]; ok {
			return l
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// locate puts file and line before a configuration error: "c.yaml:12:
// sampling.n: must be at least 1". Errors without a key, or whose key is
// not in the file, get the file alone.
func (k keyLines) locate(name string, err error) error {
	var ke *keyError
	if errors.As(err, &ke) {
		if l := k.line(ke.key); l > 0 {
			return fmt.Errorf("%s:%d: %w", name, l, err)
		}
	}
	return fmt.Errorf("%s: %w", name, err)
}

var yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

// scanKeys walks a decoded YAML document along the type it was decoded into
// and records every key it sets in lines. It also refuses what yaml.v3
// accepts silently: a fraction for an integer (n: 2.5 decodes as 2), a
// non-finite float (temperature: .nan) and a key without a value (n: with
// nothing after it decodes as 0), each with its key. It runs after the
// typed decode succeeded, so keys are known and aliases are bounded.
func scanKeys(n *yaml.Node, t reflect.Type, path string, lines keyLines) error {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		return scanKeys(n.Content[0], t, path, lines)
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return scanKeys(n.Alias, t, path, lines)
	}
	null := n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
	if t.Kind() == reflect.Pointer {
		if null {
			// A section or setting left empty: as if absent.
			return nil
		}
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(yamlUnmarshaler) {
		// Durations and sizes check their own text, but yaml.v3 does not
		// call them for null: it leaves a zero.
		if null {
			return noValue(path)
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fieldByKey(t, k.Value)
			if !ok {
				continue // KnownFields refused unknown keys already
			}
			key := join(path, k.Value)
			if err := record(v, ft, key, k.Line, lines); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if err := record(v, t.Elem(), join(path, k.Value), k.Line, lines); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, v := range n.Content {
			if err := record(v, t.Elem(), path+"["+strconv.Itoa(i)+"]", v.Line, lines); err != nil {
				return err
			}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		switch {
		case null:
			return noValue(path)
		case n.Kind == yaml.ScalarNode && n.ShortTag() != "!!int":
			return keyErr(path, "want an integer, got %s", n.Value)
		}
	case reflect.Float32, reflect.Float64:
		if null {
			return noValue(path)
		}
		var f float64
		if n.Kind == yaml.ScalarNode && n.Decode(&f) == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return keyErr(path, "not a finite number: %s", n.Value)
		}
	case reflect.String, reflect.Bool:
		if null {
			return noValue(path)
		}
	}
	return nil
}

// record scans the value v of key (of type t, on line) and records the key
// as set, unless v is null where null means absent: an empty section, list
// or map, or a pointer setting (temperature: null is "not sent").
func record(v *yaml.Node, t reflect.Type, key string, line int, lines keyLines) error {
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
		switch t.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Struct, reflect.Interface:
			return nil
		}
	}
	lines[key] = line
	return scanKeys(v, t, key, lines)
}

func noValue(key string) error {
	return keyErr(key, "no value (leave the key out for its default)")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldByKey finds the field of struct t that YAML key name decodes into,
// looking into inline fields as yaml.v3 does.
func fieldByKey(t reflect.Type, name string) (reflect.Type, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if got, ok := fieldByKey(ft, name); ok {
					return got, true
				}
			}
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		if tag == name {
			return f.Type, true
		}
	}
	return nil, false
}

var lineRef = regexp.MustCompile(`line (\d+): `)

// nameKeys adds to each "line N: " of a decoding error the dotted key that
// the document sets on line N (sampling.n, reward.judges[0].timeout), when
// there is one.
func nameKeys(src []byte, msg string) string {
	var doc yaml.Node
	if yaml.Unmarshal(src, &doc) != nil {
		return msg
	}
	byLine := map[int]string{}
	scalar := map[int]bool{} // lines holding a scalar value
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				switch prev, ok := byLine[v.Line]; {
				case !ok, v.Kind == yaml.ScalarNode && !scalar[v.Line]:
					byLine[v.Line] = p
				case v.Kind == yaml.ScalarNode:
					// Several values on one line ({a: 1, b: x}): the
					// error's line cannot tell which, so name their
					// section.
					byLine[v.Line] = commonPrefix(prev, p)
				}
				if v.Kind == yaml.ScalarNode {
					scalar[v.Line] = true
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(&doc, "")
	msg = lineRef.ReplaceAllStringFunc(msg, func(m string) string {
		l, err := strconv.Atoi(lineRef.FindStringSubmatch(m)[1])
		if key, ok := byLine[l]; ok && err == nil {
			return m + key + ": "
		}
		return m
	})
	// yaml.v3 names an unknown key by the Go type it was decoded into
	// ("field estimater not found in type rewards.AdvantageConfig"); the
	// user wants the keys that section has, and the likeliest one meant.
	return unknownField.ReplaceAllStringFunc(msg, func(m string) string {
		sub := unknownField.FindStringSubmatch(m)
		section, name := sub[1], sub[2]
		section = strings.TrimSuffix(strings.TrimSuffix(section, name), ".")
		known := keysAt(reflect.TypeFor[Config](), section)
		if len(known) == 0 {
			return m
		}
		out := join(section, name) + ": unknown key"
		if guess := closest(name, known); guess != "" {
			out += fmt.Sprintf(" (did you mean %s?)", guess)
		}
		where := section
		if section == "" {
			where = "the top level"
		}
		return out + fmt.Sprintf("; %s has %s", where, strings.Join(known, ", "))
	})
}

// unknownField matches yaml.v3's unknown-key error after nameKeys has put
// the key's dotted path before it.
var unknownField = regexp.MustCompile(`([A-Za-z0-9_.\[\]]*): field (\S+) not found in type \S+`)

// keysAt lists the YAML keys of the section at path (dotted, with [i] for
// list items) of t, in declaration order; nil when path is not a section.
func keysAt(t reflect.Type, path string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if path != "" {
		head, rest, _ := strings.Cut(path, ".")
		name, _, indexed := strings.Cut(head, "[")
		ft, ok := fieldByKey(t, name)
		if !ok {
			return nil
		}
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if indexed && (ft.Kind() == reflect.Slice || ft.Kind() == reflect.Array) {
			ft = ft.Elem()
		}
		return keysAt(ft, rest)
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case tag == "-" || !f.IsExported():
		case strings.Contains(opts, "inline"):
			keys = append(keys, keysAt(f.Type, "")...)
		case tag == "":
			keys = append(keys, strings.ToLower(f.Name))
		default:
			keys = append(keys, tag)
		}
	}
	return keys
}

// closest is the key in known nearest to name by edit distance, when it is
// near enough to be a typo (at most a third of the longer word); "" if none.
func closest(name string, known []string) string {
	best, bestD := "", 0
	for _, k := range known {
		d := editDistance(strings.ToLower(name), k)
		if best == "" || d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" || bestD*3 > max(len(name), len(best)) {
		return ""
	}
	return best
}

// editDistance is the optimal-string-alignment distance between a and b
// (bytes): insertions, deletions, substitutions and swaps of two adjacent
// letters ("nmae" for "name") each count 1.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// commonPrefix is the longest dotted prefix two keys share.
func commonPrefix(a, b string) string {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	n := 0
	for n < len(pa) && n < len(pb) && pa[n] == pb[n] {
		n++
	}
	return strings.Join(pa[:n], ".")
}

// Complete fills in and checks a configuration built in code (from a
// command's flags) as ParseConfig does a file's: set lists the keys given,
// by dotted path (splice.format, endpoint.timeout); every other setting gets
// its default, and a key the job would not read is refused. So a setting
// reaches a job one way, through Config, whichever way it was given.
func (c *Config) Complete(set ...string) error {
	keys := keyLines{}
	for _, k := range set {
		keys[k] = 0
		// A section is set when one of its keys is.
		for i := strings.LastIndexByte(k, '.'); i > 0; i = strings.LastIndexByte(k[:i], '.') {
			keys[k[:i]] = 0
		}
	}
	c.applyDefaults(keys)
	return c.validate(keys)
}
