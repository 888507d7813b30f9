package tokenizer

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// matchPattern is an added token and the text it is matched by (its content, normalized for
// tokens with normalized=true).
type matchPattern struct {
	text string
	tok  *addedToken
}

// matcher finds added tokens in text with leftmost-longest semantics (the first position at
// which some token matches; there, the longest token), like the Aho-Corasick automaton with
// MatchKind::LeftmostLongest that tokenizers builds. It walks a byte trie from each candidate
// position.
type matcher struct {
	nodes []trieNode // nodes[0] is the root
	empty bool
	// only is the first byte of every pattern when they all share one (as "<" does for the
	// special tokens of the supported families), else -1: the scan then jumps with IndexByte.
	only int
}

type trieNode struct {
	edges []trieEdge // sorted by byte
	tok   *addedToken
}

type trieEdge struct {
	b     byte
	child int32
}

func (m *matcher) child(n int32, b byte) int32 {
	edges := m.nodes[n].edges
	k := sort.Search(len(edges), func(i int) bool { return edges[i].b >= b })
	if k < len(edges) && edges[k].b == b {
		return edges[k].child
	}
	return -1
}

func newMatcher(pats []matchPattern) *matcher {
	m := &matcher{nodes: []trieNode{{}}, empty: true, only: -1}
	for _, p := range pats {
		if p.text == "" {
			continue
		}
		n := int32(0)
		for i := 0; i < len(p.text); i++ {
			c := m.child(n, p.text[i])
			if c < 0 {
				c = int32(len(m.nodes))
				m.nodes = append(m.nodes, trieNode{})
				edges := append(m.nodes[n].edges, trieEdge{p.text[i], c})
				sort.Slice(edges, func(a, b int) bool { return edges[a].b < edges[b].b })
				m.nodes[n].edges = edges
			}
			n = c
		}
		if m.nodes[n].tok == nil { // the first of equal patterns wins
			m.nodes[n].tok = p.tok
		}
		m.empty = false
	}
	if root := m.nodes[0].edges; len(root) == 1 {
		m.only = int(root[0].b)
	}
	return m
}

// longestAt returns the longest pattern that matches s at i and its length.
func (m *matcher) longestAt(s string, i int) (*addedToken, int) {
	var best *addedToken
	bestLen := 0
	n := int32(0)
	for j := i; j < len(s); j++ {
		n = m.child(n, s[j])
		if n < 0 {
			break
		}
		if t := m.nodes[n].tok; t != nil {
			best, bestLen = t, j+1-i
		}
	}
	return best, bestLen
}

// piece is a part of a text: an added token (tok != nil) or text to pre-tokenize.
type piece struct {
	start, end int
	tok        *addedToken
}

// findMatches splits s into added tokens and the text between them, applying the tokens'
// single_word, lstrip and rstrip flags as tokenizers' AddedVocabulary::find_matches does.
func (m *matcher) findMatches(s string, out []piece) []piece {
	if m.empty || s == "" {
		if s != "" {
			out = append(out, piece{0, len(s), nil})
		}
		return out
	}
	startOffset := 0
	for i := 0; i < len(s); {
		if m.only >= 0 {
			k := strings.IndexByte(s[i:], byte(m.only))
			if k < 0 {
				break
			}
			i += k
		}
		a, n := m.longestAt(s, i)
		if a == nil {
			i++
			continue
		}
		start, stop := i, i+n
		i = stop // the automaton goes on after the match, even one that is discarded
		if a.SingleWord {
			startSpace := start == 0 || !endsWithWord(s[:start])
			stopSpace := stop == len(s) || !startsWithWord(s[stop:])
			if !startSpace || !stopSpace {
				continue
			}
		}
		if a.LStrip {
			start = max(len(trimRightWhite(s[:start])), startOffset)
		}
		if a.RStrip {
			stop = len(s) - len(trimLeftWhite(s[stop:]))
		}
		if startOffset < start {
			out = append(out, piece{startOffset, start, nil})
		}
		out = append(out, piece{start, stop, a})
		startOffset = stop
	}
	if startOffset < len(s) {
		out = append(out, piece{startOffset, len(s), nil})
	}
	return out
}

// isWordChar is \w of Rust's regex crate: Alphabetic, marks, decimal digits, connector
// punctuation and Join_Control.
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Other_Alphabetic, r) ||
		unicode.IsMark(r) || unicode.Is(unicode.Nd, r) || unicode.Is(unicode.Pc, r) ||
		r == 0x200C || r == 0x200D
}

func endsWithWord(s string) bool {
	r, w := utf8.DecodeLastRuneInString(s)
	return w > 0 && !(r == utf8.RuneError && w == 1) && isWordChar(r)
}

func startsWithWord(s string) bool {
	r, w := utf8.DecodeRuneInString(s)
	return w > 0 && !(r == utf8.RuneError && w == 1) && isWordChar(r)
}

// isWhite is \s of Rust's regex crate (the White_Space property).
func isWhite(r rune) bool { return unicode.Is(unicode.White_Space, r) }

func trimRightWhite(s string) string { return strings.TrimRightFunc(s, isWhite) }
func trimLeftWhite(s string) string  { return strings.TrimLeftFunc(s, isWhite) }
