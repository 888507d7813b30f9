// Package tokenizer is a pure-Go reader of Hugging Face tokenizer.json files for byte-level BPE
// models (GPT-2, Llama 3, Qwen2/2.5/3 and their relatives). It produces the ids that Hugging Face
// `tokenizers` produces for encode(text, add_special_tokens=False), maps every token to its byte
// span in the input, and renders the chat formats of those families with per-token loss masks
// (see Render).
//
// What is supported, and what Parse rejects with an error rather than tokenising differently:
//
//   - normalizer: none, or NFC (alone or as the only member of a Sequence);
//   - pre_tokenizer: ByteLevel (add_prefix_space false, with or without GPT-2's regex), optionally
//     preceded by a Split on the Llama 3 pattern, the Qwen2/Qwen3 pattern (single digits) or the
//     GPT-2 pattern, with Isolated behaviour (or Removed and inverted, which is the same for these
//     patterns because they match every character);
//   - model: BPE with merges as "a b" strings or [a, b] pairs, ignore_merges, byte_fallback,
//     unk_token and fuse_unk; no dropout, no continuing_subword_prefix or end_of_word_suffix;
//   - added tokens with their special, lstrip, rstrip, single_word and normalized flags, matched
//     the way tokenizers' AddedVocabulary does by default (leftmost-longest, non-normalized tokens
//     on the raw text first, then normalized tokens on each normalized piece);
//   - decoder: ByteLevel (or none).
//
// The post-processor is ignored: Encode corresponds to add_special_tokens=False.
package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Tokenizer is a loaded tokenizer.json. It is safe for concurrent use.
type Tokenizer struct {
	vocab    map[string]int   // token string as written in tokenizer.json -> id (model and added)
	rawVocab map[string]int32 // model token's bytes (byte-level decoded) -> id, for ignore_merges
	idBytes  []string         // id -> the bytes the token stands for (Decode)
	idValid  []bool

	added      []addedToken
	addedByID  map[int]*addedToken
	rawMatch   *matcher // added tokens with normalized=false, matched on the raw text
	normMatch  *matcher // added tokens with normalized=true, matched on normalized pieces
	nfc        bool
	splitter   splitKind // the regex split before byte-level mapping
	byteSplit  splitKind // ByteLevel's own regex (use_regex), applied after splitter
	byteIDs    [256]int32
	merges     map[uint64]merge
	ignoreMrg  bool
	byteFallbk bool
	unkID      int32
	fuseUnk    bool

	cache wordCache
}

type addedToken struct {
	ID         int
	Content    string
	Special    bool
	LStrip     bool
	RStrip     bool
	SingleWord bool
	Normalized bool
}

type merge struct {
	rank int32
	id   int32
}

func mergeKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// Load reads a tokenizer.json file.
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

type jsonTokenizer struct {
	AddedTokens []struct {
		ID         int    `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		Normalized *bool  `json:"normalized"`
		Special    bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer   json.RawMessage `json:"normalizer"`
	PreTokenizer json.RawMessage `json:"pre_tokenizer"`
	Decoder      json.RawMessage `json:"decoder"`
	Model        struct {
		Type                    string          `json:"type"`
		Dropout                 *float64        `json:"dropout"`
		UnkToken                *string         `json:"unk_token"`
		ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
		FuseUnk                 bool            `json:"fuse_unk"`
		ByteFallback            bool            `json:"byte_fallback"`
		IgnoreMerges            bool            `json:"ignore_merges"`
		Vocab                   map[string]int  `json:"vocab"`
		Merges                  json.RawMessage `json:"merges"`
	} `json:"model"`
}

type jsonComponent struct {
	Type           string          `json:"type"`
	Normalizers    []jsonComponent `json:"normalizers"`
	PreTokenizers  []jsonComponent `json:"pretokenizers"`
	Decoders       []jsonComponent `json:"decoders"`
	AddPrefixSpace bool            `json:"add_prefix_space"`
	UseRegex       *bool           `json:"use_regex"`
	Behavior       string          `json:"behavior"`
	Invert         bool            `json:"invert"`
	Pattern        struct {
		Regex  *string `json:"Regex"`
		String *string `json:"String"`
	} `json:"pattern"`
}

func isNull(m json.RawMessage) bool {
	m = bytes.TrimSpace(m)
	return len(m) == 0 || string(m) == "null"
}

// Parse reads the contents of a tokenizer.json file.
func Parse(data []byte) (*Tokenizer, error) {
	var j jsonTokenizer
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	t := &Tokenizer{unkID: -1}
	if err := t.parseNormalizer(j.Normalizer); err != nil {
		return nil, err
	}
	if err := t.parsePreTokenizer(j.PreTokenizer); err != nil {
		return nil, err
	}
	if err := parseDecoder(j.Decoder); err != nil {
		return nil, err
	}

	m := &j.Model
	if m.Type != "" && m.Type != "BPE" {
		return nil, fmt.Errorf("tokenizer.json: model type %q is not supported (only BPE)", m.Type)
	}
	if m.Vocab == nil {
		return nil, errors.New("tokenizer.json: model has no vocab")
	}
	if m.Dropout != nil && *m.Dropout != 0 {
		return nil, errors.New("tokenizer.json: BPE dropout is not supported")
	}
	if m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "" {
		return nil, errors.New("tokenizer.json: continuing_subword_prefix is not supported")
	}
	if m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "" {
		return nil, errors.New("tokenizer.json: end_of_word_suffix is not supported")
	}
	t.ignoreMrg = m.IgnoreMerges
	t.byteFallbk = m.ByteFallback
	t.fuseUnk = m.FuseUnk

	maxID := -1
	for tok, id := range m.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("tokenizer.json: negative id %d for %q", id, tok)
		}
		maxID = max(maxID, id)
	}
	for _, a := range j.AddedTokens {
		maxID = max(maxID, a.ID)
	}
	if maxID >= 1<<31-1 {
		return nil, errors.New("tokenizer.json: ids too large")
	}
	t.vocab = make(map[string]int, len(m.Vocab)+len(j.AddedTokens))
	t.rawVocab = make(map[string]int32, len(m.Vocab))
	t.idBytes = make([]string, maxID+1)
	t.idValid = make([]bool, maxID+1)
	for tok, id := range m.Vocab {
		t.vocab[tok] = id
		raw, ok := byteLevelDecode(tok)
		if ok {
			t.rawVocab[raw] = int32(id)
		}
		t.idBytes[id] = raw
		t.idValid[id] = true
	}
	for b := range 256 {
		id, ok := m.Vocab[string(byteToRune[b])]
		if !ok {
			id = -1
		}
		t.byteIDs[b] = int32(id)
	}
	if m.UnkToken != nil {
		id, ok := m.Vocab[*m.UnkToken]
		if !ok {
			return nil, fmt.Errorf("tokenizer.json: unk_token %q is not in the vocab", *m.UnkToken)
		}
		t.unkID = int32(id)
	}
	if err := t.parseMerges(m.Merges); err != nil {
		return nil, err
	}

	// Added tokens: tokenizers keeps special tokens first, then the others, each in file order,
	// and ignores a repeated content.
	t.addedByID = make(map[int]*addedToken, len(j.AddedTokens))
	seen := map[string]bool{}
	var special, plain []addedToken
	for _, a := range j.AddedTokens {
		if a.Content == "" {
			continue
		}
		normalized := !a.Special
		if a.Normalized != nil {
			normalized = *a.Normalized
		}
		at := addedToken{ID: a.ID, Content: a.Content, Special: a.Special, LStrip: a.LStrip,
			RStrip: a.RStrip, SingleWord: a.SingleWord, Normalized: normalized}
		if id, ok := t.vocab[a.Content]; ok && id != a.ID {
			if _, isModel := m.Vocab[a.Content]; !isModel {
				return nil, fmt.Errorf("tokenizer.json: added token %q has two ids (%d, %d)", a.Content, id, a.ID)
			}
		}
		t.vocab[a.Content] = a.ID
		t.idBytes[a.ID] = a.Content
		t.idValid[a.ID] = true
		if seen[a.Content] {
			continue
		}
		seen[a.Content] = true
		if a.Special {
			special = append(special, at)
		} else {
			plain = append(plain, at)
		}
	}
	t.added = append(special, plain...)
	var rawPats, normPats []matchPattern
	for i := range t.added {
		a := &t.added[i]
		t.addedByID[a.ID] = a
		if a.Normalized {
			normPats = append(normPats, matchPattern{text: t.normalize(a.Content), tok: a})
		} else {
			rawPats = append(rawPats, matchPattern{text: a.Content, tok: a})
		}
	}
	t.rawMatch = newMatcher(rawPats)
	t.normMatch = newMatcher(normPats)
	t.cache.init()
	return t, nil
}

func (t *Tokenizer) parseMerges(raw json.RawMessage) error {
	if isNull(raw) {
		t.merges = map[uint64]merge{}
		return nil
	}
	var pairs [][2]string
	var asStrings []string
	if err := json.Unmarshal(raw, &asStrings); err == nil {
		pairs = make([][2]string, len(asStrings))
		for i, s := range asStrings {
			a, b, ok := strings.Cut(s, " ")
			if !ok {
				return fmt.Errorf("tokenizer.json: merge %d (%q) is not \"a b\"", i, s)
			}
			pairs[i] = [2]string{a, b}
		}
	} else if err := json.Unmarshal(raw, &pairs); err != nil {
		return fmt.Errorf("tokenizer.json: merges: %w", err)
	}
	t.merges = make(map[uint64]merge, len(pairs))
	for rank, p := range pairs {
		a, okA := t.vocab[p[0]]
		b, okB := t.vocab[p[1]]
		c, okC := t.vocab[p[0]+p[1]]
		if !okA || !okB || !okC {
			return fmt.Errorf("tokenizer.json: merge %d (%q, %q) uses a token that is not in the vocab", rank, p[0], p[1])
		}
		k := mergeKey(int32(a), int32(b))
		if _, dup := t.merges[k]; dup {
			continue // the first (lowest) rank wins, as in tokenizers
		}
		t.merges[k] = merge{rank: int32(rank), id: int32(c)}
	}
	return nil
}

func (t *Tokenizer) parseNormalizer(raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	var c jsonComponent
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("tokenizer.json: normalizer: %w", err)
	}
	var walk func(c jsonComponent) error
	walk = func(c jsonComponent) error {
		switch c.Type {
		case "NFC":
			t.nfc = true
			return nil
		case "Sequence":
			for _, n := range c.Normalizers {
				if err := walk(n); err != nil {
					return err
				}
			}
			return nil
		}
		return fmt.Errorf("tokenizer.json: normalizer %q is not supported (only NFC)", c.Type)
	}
	return walk(c)
}

func (t *Tokenizer) parsePreTokenizer(raw json.RawMessage) error {
	if isNull(raw) {
		return errors.New("tokenizer.json: no pre_tokenizer: only byte-level BPE is supported")
	}
	var c jsonComponent
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("tokenizer.json: pre_tokenizer: %w", err)
	}
	steps := []jsonComponent{c}
	if c.Type == "Sequence" {
		steps = c.PreTokenizers
	}
	byteLevel := false
	for _, s := range steps {
		if byteLevel {
			return fmt.Errorf("tokenizer.json: pre_tokenizer %q after ByteLevel is not supported", s.Type)
		}
		switch s.Type {
		case "Split":
			if t.splitter != splitNone {
				return errors.New("tokenizer.json: more than one Split pre_tokenizer is not supported")
			}
			if s.Pattern.Regex == nil {
				return errors.New("tokenizer.json: Split on a plain string is not supported")
			}
			k, ok := knownPatterns[*s.Pattern.Regex]
			if !ok {
				return fmt.Errorf("tokenizer.json: Split pattern %q is not supported", *s.Pattern.Regex)
			}
			// These patterns match every character, so keeping the matches (Isolated) and
			// removing the gaps of the inverted pattern (Removed, invert) split alike.
			if !((s.Behavior == "Isolated" && !s.Invert) || (s.Behavior == "Removed" && s.Invert)) {
				return fmt.Errorf("tokenizer.json: Split behavior %q (invert %v) is not supported", s.Behavior, s.Invert)
			}
			t.splitter = k
		case "ByteLevel":
			if s.AddPrefixSpace {
				return errors.New("tokenizer.json: ByteLevel add_prefix_space is not supported")
			}
			if s.UseRegex == nil || *s.UseRegex {
				t.byteSplit = splitGPT2
			}
			byteLevel = true
		default:
			return fmt.Errorf("tokenizer.json: pre_tokenizer %q is not supported", s.Type)
		}
	}
	if !byteLevel {
		return errors.New("tokenizer.json: pre_tokenizer has no ByteLevel step: only byte-level BPE is supported")
	}
	return nil
}

func parseDecoder(raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	var c jsonComponent
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("tokenizer.json: decoder: %w", err)
	}
	if c.Type == "ByteLevel" {
		return nil
	}
	if c.Type == "Sequence" && len(c.Decoders) == 1 && c.Decoders[0].Type == "ByteLevel" {
		return nil
	}
	return fmt.Errorf("tokenizer.json: decoder %q is not supported (only ByteLevel)", c.Type)
}

// TokenID returns the id of a token as it is written in tokenizer.json (a model token in its
// byte-level form, such as "Ġthe", or an added token such as "<|im_end|>").
func (t *Tokenizer) TokenID(s string) (int, bool) {
	id, ok := t.vocab[s]
	return id, ok
}

// VocabSize is one more than the largest id.
func (t *Tokenizer) VocabSize() int { return len(t.idBytes) }

// IsSpecial reports whether id is an added token marked special.
func (t *Tokenizer) IsSpecial(id int) bool {
	a, ok := t.addedByID[id]
	return ok && a.Special
}

// Decode returns the text the ids stand for. Every token is rendered, special tokens included
// (tokenizers' decode with skip_special_tokens=False). Unlike tokenizers, which replaces bytes
// that do not form valid UTF-8 with U+FFFD, Decode returns the bytes as they are, so that the
// tokens of a character split across tokens can be decoded one by one and concatenated. Unknown
// ids render as "<unk:ID>".
func (t *Tokenizer) Decode(ids []int) string {
	n := 0
	for _, id := range ids {
		if id >= 0 && id < len(t.idBytes) {
			n += len(t.idBytes[id])
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, id := range ids {
		if id >= 0 && id < len(t.idBytes) && t.idValid[id] {
			b.WriteString(t.idBytes[id])
			continue
		}
		b.WriteString("<unk:" + strconv.Itoa(id) + ">")
	}
	return b.String()
}

// byte-level alphabet (GPT-2's bytes_to_unicode): printable bytes stand for themselves, the
// others for code points from 256 up, in byte order.
var (
	byteToRune [256]rune
	runeToByte map[rune]byte
)

func init() {
	runeToByte = make(map[rune]byte, 256)
	next := rune(256)
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = next
			next++
		}
		runeToByte[byteToRune[b]] = byte(b)
	}
}

// byteLevelDecode maps a token's byte-level characters back to bytes. ok is false when the
// token has a character outside the alphabet; the result then keeps such characters as UTF-8.
func byteLevelDecode(tok string) (string, bool) {
	ok := true
	buf := make([]byte, 0, len(tok))
	for _, r := range tok {
		if b, in := runeToByte[r]; in {
			buf = append(buf, b)
		} else {
			ok = false
			buf = utf8.AppendRune(buf, r)
		}
	}
	return string(buf), ok
}
