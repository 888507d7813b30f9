package tokenizer

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// Encode returns the ids of text, as tokenizers' Tokenizer.encode(text,
// add_special_tokens=False).ids: added tokens that occur in the text are matched (special ones
// included), the rest is normalized, pre-tokenized and run through BPE.
func (t *Tokenizer) Encode(text string) []int {
	e := getEncoder(t)
	e.ids = make([]int, 0, len(text)/4+4)
	e.run(text)
	ids := e.ids
	putEncoder(e)
	return ids
}

// EncodeWithOffsets is Encode with the byte span [start, end) in text of each token. A token
// that holds only some of the bytes of a character (byte-level BPE splits rare characters) is
// given the span of the whole character, and a token made from text that normalization changed
// is given the span of the original characters it came from, so neighbouring spans can overlap.
// An added token's span includes the whitespace its lstrip/rstrip flags absorbed.
func (t *Tokenizer) EncodeWithOffsets(text string) (ids []int, offsets [][2]int) {
	e := getEncoder(t)
	e.ids = make([]int, 0, len(text)/4+4)
	e.offs = make([][2]int, 0, len(text)/4+4)
	e.withOffsets = true
	e.run(text)
	ids, offsets = e.ids, e.offs
	putEncoder(e)
	return ids, offsets
}

// encoders keeps the scratch buffers of finished encodings for the next.
var encoders = sync.Pool{New: func() any { return new(encoder) }}

func getEncoder(t *Tokenizer) *encoder {
	e := encoders.Get().(*encoder)
	e.t = t
	return e
}

func putEncoder(e *encoder) {
	e.t, e.ids, e.offs, e.withOffsets = nil, nil, nil, false
	if cap(e.scratch.ids) > 1<<16 { // do not keep the buffers of a huge word
		e.scratch = bpeScratch{}
	}
	encoders.Put(e)
}

type encoder struct {
	t           *Tokenizer
	ids         []int
	offs        [][2]int
	withOffsets bool
	scratch     bpeScratch
	pieces      []piece
	sub         []piece
}

func (e *encoder) run(text string) {
	t := e.t
	e.pieces = t.rawMatch.findMatches(text, e.pieces[:0])
	for _, p := range e.pieces {
		if p.tok != nil {
			e.emit(p.tok.ID, p.start, p.end)
			continue
		}
		raw := text[p.start:p.end]
		normed, al := t.normalizeAligned(raw)
		e.sub = t.normMatch.findMatches(normed, e.sub[:0])
		for _, q := range e.sub {
			if q.tok != nil {
				s, en := q.start, q.end
				if al != nil {
					s, en = al.span(s, en)
				}
				e.emit(q.tok.ID, p.start+s, p.start+en)
				continue
			}
			e.words(normed, q.start, q.end, p.start, al)
		}
	}
}

func (e *encoder) emit(id, start, end int) {
	e.ids = append(e.ids, id)
	if e.withOffsets {
		e.offs = append(e.offs, [2]int{start, end})
	}
}

// words pre-tokenizes normed[from:to] and encodes each word. base is the offset of normed in
// the original text; al maps normed back to it.
func (e *encoder) words(normed string, from, to, base int, al *alignment) {
	t := e.t
	seg := normed[from:to]
	split(t.splitter, seg, func(s, en int) {
		if t.byteSplit == splitNone {
			e.word(normed, from+s, from+en, base, al)
			return
		}
		split(t.byteSplit, seg[s:en], func(s2, en2 int) {
			e.word(normed, from+s+s2, from+s+en2, base, al)
		})
	})
}

func (e *encoder) word(normed string, start, end, base int, al *alignment) {
	w := normed[start:end]
	toks := e.t.bpe(w, &e.scratch)
	pos := start
	for k, id := range toks.ids {
		n := int(toks.lens[k])
		if e.withOffsets {
			s, en := pos, pos+n
			if al != nil {
				s, en = al.span(s, en)
			} else {
				s, en = charSpan(normed, s, en)
			}
			e.offs = append(e.offs, [2]int{base + s, base + en})
		}
		e.ids = append(e.ids, int(id))
		pos += n
	}
}

// charSpan widens [s, e) to whole UTF-8 characters of str.
func charSpan(str string, s, e int) (int, int) {
	if s < len(str) && !utf8.RuneStart(str[s]) {
		for k := 1; k <= 3 && s-k >= 0; k++ {
			if utf8.RuneStart(str[s-k]) {
				if _, w := utf8.DecodeRuneInString(str[s-k:]); w > k {
					s -= k
				}
				break
			}
		}
	}
	if e > 0 && e < len(str) && !utf8.RuneStart(str[e]) {
		for k := 1; k <= 4 && e-k >= 0; k++ {
			if utf8.RuneStart(str[e-k]) {
				if _, w := utf8.DecodeRuneInString(str[e-k:]); w > k {
					e = e - k + w
				}
				break
			}
		}
	}
	return s, e
}

// ---- BPE --------------------------------------------------------------------

// wordTokens is the BPE result for one word: ids and the byte length of each token.
type wordTokens struct {
	ids  []int32
	lens []int32
}

type bpeScratch struct {
	ids   []int32
	lens  []int32
	ranks []int32
	next  []int32
	prev  []int32
	heap  mergeHeap
}

const noRank = int32(1<<31 - 1)

// bpe encodes one pre-tokenized word (raw bytes; the byte-level alphabet is implied). The result
// may alias scratch or the cache: use it before the next call with the same scratch.
func (t *Tokenizer) bpe(w string, sc *bpeScratch) wordTokens {
	if len(w) <= maxCachedWord {
		if r, ok := t.cache.get(w); ok {
			return r
		}
	}
	r := t.bpeUncached(w, sc)
	if len(w) <= maxCachedWord {
		c := wordTokens{ids: append([]int32(nil), r.ids...), lens: append([]int32(nil), r.lens...)}
		t.cache.put(w, c)
		return c
	}
	return r
}

func (t *Tokenizer) bpeUncached(w string, sc *bpeScratch) wordTokens {
	if t.ignoreMrg {
		if id, ok := t.rawVocab[w]; ok {
			sc.ids = append(sc.ids[:0], id)
			sc.lens = append(sc.lens[:0], int32(len(w)))
			return wordTokens{sc.ids, sc.lens}
		}
	}
	ids, lens := sc.ids[:0], sc.lens[:0]
	for i := 0; i < len(w); i++ {
		id := t.byteIDs[w[i]]
		if id >= 0 {
			ids = append(ids, id)
			lens = append(lens, 1)
			continue
		}
		// A byte whose character is not in the vocab (never so in the byte-level vocabularies
		// of the supported families): byte fallback, else unk, else dropped, as tokenizers does.
		if t.byteFallbk {
			if fb, ok := t.vocab[byteFallbackName(w[i])]; ok {
				ids = append(ids, int32(fb))
				lens = append(lens, 1)
				continue
			}
		}
		if t.unkID >= 0 {
			if t.fuseUnk && len(ids) > 0 && ids[len(ids)-1] == t.unkID {
				lens[len(lens)-1]++
			} else {
				ids = append(ids, t.unkID)
				lens = append(lens, 1)
			}
		}
	}
	if len(ids) < heapThreshold {
		ids, lens = t.mergeSmall(ids, lens, sc)
	} else {
		ids, lens = t.mergeHeap(ids, lens, sc)
	}
	sc.ids, sc.lens = ids, lens
	return wordTokens{ids, lens}
}

func byteFallbackName(b byte) string {
	const hex = "0123456789ABCDEF"
	return "<0x" + string([]byte{hex[b>>4], hex[b&15]}) + ">"
}

func (t *Tokenizer) rank(a, b int32) merge {
	if m, ok := t.merges[mergeKey(a, b)]; ok {
		return m
	}
	return merge{rank: noRank, id: -1}
}

// heapThreshold: words with fewer symbols are merged by scanning the pair ranks (quadratic, but
// fast for the short words that make up almost all text); longer ones use a heap.
const heapThreshold = 48

// mergeSmall applies merges lowest rank first, leftmost first among equal ranks: the order of
// tokenizers' queue of (rank, position) merges.
func (t *Tokenizer) mergeSmall(ids, lens []int32, sc *bpeScratch) ([]int32, []int32) {
	if len(ids) < 2 {
		return ids, lens
	}
	ranks := sc.ranks[:0]
	newIDs := sc.next[:0]
	for k := 0; k+1 < len(ids); k++ {
		m := t.rank(ids[k], ids[k+1])
		ranks = append(ranks, m.rank)
		newIDs = append(newIDs, m.id)
	}
	for {
		best := -1
		bestRank := noRank
		for k, r := range ranks {
			if r < bestRank {
				best, bestRank = k, r
			}
		}
		if best < 0 {
			break
		}
		ids[best] = newIDs[best]
		lens[best] += lens[best+1]
		ids = append(ids[:best+1], ids[best+2:]...)
		lens = append(lens[:best+1], lens[best+2:]...)
		ranks = append(ranks[:best], ranks[best+1:]...)
		newIDs = append(newIDs[:best], newIDs[best+1:]...)
		if best > 0 {
			m := t.rank(ids[best-1], ids[best])
			ranks[best-1], newIDs[best-1] = m.rank, m.id
		}
		if best < len(ranks) {
			m := t.rank(ids[best], ids[best+1])
			ranks[best], newIDs[best] = m.rank, m.id
		}
	}
	sc.ranks, sc.next = ranks, newIDs
	return ids, lens
}

type heapEntry struct {
	rank, pos, id int32
}

type mergeHeap []heapEntry

func (h mergeHeap) less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}

func (h *mergeHeap) push(e heapEntry) {
	*h = append(*h, e)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *mergeHeap) pop() heapEntry {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && s.less(r, l) {
			m = r
		}
		if !s.less(m, i) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// mergeHeap is the same merge order with a priority queue of (rank, position), for long words.
func (t *Tokenizer) mergeHeap(ids, lens []int32, sc *bpeScratch) ([]int32, []int32) {
	n := len(ids)
	next := append(sc.next[:0], make([]int32, n)...)
	prev := append(sc.prev[:0], make([]int32, n)...)
	for k := range n {
		next[k] = int32(k + 1)
		prev[k] = int32(k - 1)
	}
	next[n-1] = -1
	h := sc.heap[:0]
	for k := 0; k+1 < n; k++ {
		if m := t.rank(ids[k], ids[k+1]); m.id >= 0 {
			h.push(heapEntry{m.rank, int32(k), m.id})
		}
	}
	for len(h) > 0 {
		top := h.pop()
		p := top.pos
		if lens[p] == 0 || next[p] < 0 {
			continue
		}
		q := next[p]
		if m := t.rank(ids[p], ids[q]); m.id != top.id {
			continue // stale entry
		}
		ids[p] = top.id
		lens[p] += lens[q]
		lens[q] = 0
		next[p] = next[q]
		if next[q] >= 0 {
			prev[next[q]] = p
		}
		if pp := prev[p]; pp >= 0 {
			if m := t.rank(ids[pp], ids[p]); m.id >= 0 {
				h.push(heapEntry{m.rank, pp, m.id})
			}
		}
		if nn := next[p]; nn >= 0 {
			if m := t.rank(ids[p], ids[nn]); m.id >= 0 {
				h.push(heapEntry{m.rank, p, m.id})
			}
		}
	}
	sc.heap, sc.next, sc.prev = h, next, prev
	out, outLens := ids[:0], lens[:0]
	for k := range n {
		if lens[k] != 0 {
			out = append(out, ids[k])
			outLens = append(outLens, lens[k])
		}
	}
	return out, outLens
}

// ---- word cache ---------------------------------------------------------------

// maxCachedWord bounds the words kept in the cache (bytes).
const maxCachedWord = 128

// cacheSlots is the size of the word cache (a power of two).
const cacheSlots = 1 << 17

// wordCache maps words to their BPE result. It is direct-mapped: a word has one slot, chosen by
// its hash, holding an immutable entry behind an atomic pointer, so lookups take no lock and a
// new word simply replaces the one in its slot. Memory is bounded by the slot count.
type wordCache struct {
	seed  maphash.Seed
	slots []atomic.Pointer[cacheEntry]
}

type cacheEntry struct {
	word string
	toks wordTokens
}

func (c *wordCache) init() {
	c.seed = maphash.MakeSeed()
	c.slots = make([]atomic.Pointer[cacheEntry], cacheSlots)
}

func (c *wordCache) get(w string) (wordTokens, bool) {
	e := c.slots[maphash.String(c.seed, w)&(cacheSlots-1)].Load()
	if e != nil && e.word == w {
		return e.toks, true
	}
	return wordTokens{}, false
}

func (c *wordCache) put(w string, r wordTokens) {
	c.slots[maphash.String(c.seed, w)&(cacheSlots-1)].Store(&cacheEntry{word: strings.Clone(w), toks: r})
}
