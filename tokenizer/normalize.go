package tokenizer

import (
	"sort"

	"golang.org/x/text/unicode/norm"
)

// normalize applies the tokenizer's normalizer to s.
func (t *Tokenizer) normalize(s string) string {
	if !t.nfc || norm.NFC.IsNormalString(s) {
		return s
	}
	return norm.NFC.String(s)
}

// alignment maps byte positions of a normalized string back to the original. It is a list of
// segments (normalized [nStart, nEnd) came from original [oStart, oEnd)); a position inside a
// segment maps to the whole segment. A nil alignment is the identity.
type alignment struct {
	segs []alignSeg
}

type alignSeg struct {
	nStart, nEnd, oStart, oEnd int
}

// normalizeAligned normalizes s and returns the alignment (nil when nothing changed).
func (t *Tokenizer) normalizeAligned(s string) (string, *alignment) {
	if !t.nfc || norm.NFC.IsNormalString(s) {
		return s, nil
	}
	var it norm.Iter
	it.InitString(norm.NFC, s)
	out := make([]byte, 0, len(s)+8)
	al := &alignment{}
	// A long decomposition can come out over several calls of Next before the input position
	// moves: such output joins the segment that ends where the position moves.
	o, n := 0, 0
	for !it.Done() {
		out = append(out, it.Next()...)
		if p := it.Pos(); p > o && len(out) > n {
			al.segs = append(al.segs, alignSeg{nStart: n, nEnd: len(out), oStart: o, oEnd: p})
			o, n = p, len(out)
		}
	}
	if len(out) > n || o < len(s) {
		if len(al.segs) > 0 && len(out) == n {
			al.segs[len(al.segs)-1].oEnd = len(s)
		} else {
			al.segs = append(al.segs, alignSeg{nStart: n, nEnd: len(out), oStart: o, oEnd: len(s)})
		}
	}
	return string(out), al
}

// span maps the normalized span [s, e) (e > s) to the original text.
func (a *alignment) span(s, e int) (int, int) {
	i := sort.Search(len(a.segs), func(k int) bool { return a.segs[k].nEnd > s })
	j := sort.Search(len(a.segs), func(k int) bool { return a.segs[k].nEnd >= e })
	if i >= len(a.segs) {
		i = len(a.segs) - 1
	}
	if j >= len(a.segs) {
		j = len(a.segs) - 1
	}
	return a.segs[i].oStart, a.segs[j].oEnd
}
