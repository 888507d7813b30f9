// Package redact removes credentials from what redraft writes: base URLs
// (user info and query strings), free text that quotes them (error messages
// from net/http name the request URL), and JSON documents such as the
// configuration recorded in a manifest.
//
// Every query parameter is treated as a credential: servers and proxies take
// keys as api-key, key, token, sig, code and more, and no list of names can
// be complete. A redacted URL keeps its scheme, host and path, which is what
// a reader needs to tell endpoints apart.
package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// Mask replaces a credential that is removed from free text.
const Mask = "[redacted]"

// MinSecretLen is the shortest credential that Scrubber replaces wherever it
// appears: a shorter one (a user name "ai") would mangle unrelated text, and
// is still removed from every URL.
const MinSecretLen = 4

// URL returns raw without the parts that carry credentials: user info, query
// and fragment. A string that does not parse as an absolute URL is cut by
// text instead (everything up to its last '@', and from its first '?' or
// '#'), so that a malformed URL holding a password is never echoed whole.
func URL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" && u.Host != "" {
		u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
		return u.String()
	}
	scheme, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		scheme, rest = raw[:i+3], raw[i+3:]
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = rest[at+1:]
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	return scheme + rest
}

// HasCredentials reports whether raw is an absolute URL that carries user
// info, a query or a fragment (what URL removes).
func HasCredentials(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return false
	}
	return u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != ""
}

// urlPattern finds URLs in free text. It stops at white space and at the
// quotes and brackets that messages put around URLs (net/http writes
// Post "http://...": ...).
var urlPattern = regexp.MustCompile("[A-Za-z][A-Za-z0-9+.-]*://[^\\s\"'<>`]+")

// Text returns s with every URL in it redacted (see URL).
func Text(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlPattern.ReplaceAllStringFunc(s, func(m string) string {
		// Punctuation that ends a sentence is not part of the URL.
		trail := len(m)
		for trail > 0 && strings.IndexByte(".,;:)]}", m[trail-1]) >= 0 {
			trail--
		}
		return URL(m[:trail]) + m[trail:]
	})
}

// Secrets returns the credentials raw carries, each as written and decoded:
// the user name and password, and every query value. Scrubber removes them
// from text that quotes them outside a URL (a server echoing a key).
func Secrets(raw string) []string {
	var out []string
	add := func(s string) {
		if s == "" {
			return
		}
		out = append(out, s)
		if d, err := url.QueryUnescape(s); err == nil && d != s {
			out = append(out, d)
		}
		if d, err := url.PathUnescape(s); err == nil && d != s {
			out = append(out, d)
		}
	}
	rest := raw
	if i := strings.Index(raw, "://"); i >= 0 {
		rest = raw[i+3:]
	}
	// By text, not url.Parse: the parts must be found in URLs that do not
	// parse, and as written (escaped) as well as decoded.
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		info := rest[:at]
		rest = rest[at+1:]
		add(info)
		if user, pass, ok := strings.Cut(info, ":"); ok {
			add(user)
			add(pass)
		}
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		for _, part := range strings.FieldsFunc(rest[i+1:], func(r rune) bool { return r == '&' || r == ';' || r == '#' }) {
			if _, v, ok := strings.Cut(part, "="); ok {
				add(v)
			} else {
				add(part)
			}
		}
	}
	return out
}

// Scrubber removes a known set of credentials from text, and every URL's
// credentials (see Text). The zero value only redacts URLs.
type Scrubber struct {
	secrets []string // longest first, so that a secret's prefix is not replaced before it
}

// NewScrubber returns a Scrubber for secrets; those shorter than
// MinSecretLen are only removed from URLs.
func NewScrubber(secrets ...string) *Scrubber {
	seen := map[string]bool{}
	s := &Scrubber{}
	for _, v := range secrets {
		if len(v) >= MinSecretLen && !seen[v] {
			seen[v] = true
			s.secrets = append(s.secrets, v)
		}
	}
	sort.Slice(s.secrets, func(i, j int) bool { return len(s.secrets[i]) > len(s.secrets[j]) })
	return s
}

// Scrub returns text without credentials.
func (s *Scrubber) Scrub(text string) string {
	text = Text(text)
	if s == nil {
		return text
	}
	for _, v := range s.secrets {
		text = strings.ReplaceAll(text, v, Mask)
	}
	return text
}

// sensitiveKeys are JSON keys whose string values are credentials whatever
// they hold. redraft's configuration has none (keys come from the
// environment), but a manifest must not depend on that staying true.
var sensitiveKeys = map[string]bool{
	"api_key": true, "apikey": true, "api-key": true, "access_token": true, "auth_token": true,
	"password": true, "secret": true, "authorization": true, "headers": true,
}

// IsEnvName reports whether s can name an environment variable (letters,
// digits and underscores, not starting with a digit). A value that cannot is
// likely a key pasted where its variable's name belongs.
func IsEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// JSON returns doc with credentials removed from its string values: a value
// that is a whole URL with credentials is redacted (see URL), the value of a
// key named like a credential (api_key, token, password, authorization,
// headers, ...) becomes Mask whatever it is, and an api_key_env value that
// cannot name a variable (a pasted key) becomes Mask. Prose that merely
// contains a URL is left as it is. Key order and numbers are kept; doc is
// returned unchanged when nothing needed redacting.
func JSON(doc []byte) ([]byte, error) {
	if len(bytes.TrimSpace(doc)) == 0 {
		return doc, nil
	}
	if !json.Valid(doc) {
		// The token reader stops quietly at a truncated document.
		return nil, errors.New("redact: not a valid JSON document")
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var out bytes.Buffer
	changed := false
	// Each open container: whether it is an object, how many items it has
	// so far, and (objects) whether the next string is a key.
	type frame struct {
		object bool
		n      int
		key    bool
		name   string // the current key
	}
	var stack []frame
	// masked > 0 while inside the value of a sensitive key: every string
	// and number there is replaced.
	masked := 0
	sep := func() {
		if len(stack) == 0 {
			return
		}
		f := &stack[len(stack)-1]
		if f.object && !f.key {
			out.WriteByte(':')
			return
		}
		if f.n > 0 {
			out.WriteByte(',')
		}
		f.n++
	}
	// afterValue flips an object frame back to expecting a key.
	afterValue := func() {
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].key = true
		}
	}
	currentKey := func() string {
		if len(stack) > 0 && stack[len(stack)-1].object {
			return stack[len(stack)-1].name
		}
		return ""
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				sep()
				if masked > 0 || sensitiveKeys[strings.ToLower(currentKey())] {
					masked++
				}
				out.WriteByte(byte(v))
				stack = append(stack, frame{object: v == '{', key: true})
			case '}', ']':
				out.WriteByte(byte(v))
				stack = stack[:len(stack)-1]
				if masked > 0 {
					masked--
				}
				afterValue()
			}
		case string:
			if len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].key {
				// A key.
				sep()
				f := &stack[len(stack)-1]
				f.key, f.name = false, v
				b, _ := json.Marshal(v)
				out.Write(b)
				continue
			}
			sep()
			key := strings.ToLower(currentKey())
			switch {
			case masked > 0 || sensitiveKeys[key]:
				if v != Mask {
					v, changed = Mask, true
				}
			case key == "api_key_env" && v != "" && !IsEnvName(v):
				v, changed = Mask, true
			case HasCredentials(v):
				v, changed = URL(v), true
			}
			b, _ := json.Marshal(v)
			out.Write(b)
			afterValue()
		default:
			sep()
			var b []byte
			switch {
			case v == nil:
				b = []byte("null")
			case masked > 0 || sensitiveKeys[strings.ToLower(currentKey())]:
				b, _ = json.Marshal(Mask)
				changed = true
			default:
				b, _ = json.Marshal(v) // json.Number or bool: written as read
			}
			out.Write(b)
			afterValue()
		}
	}
	if !changed {
		return doc, nil
	}
	return out.Bytes(), nil
}
