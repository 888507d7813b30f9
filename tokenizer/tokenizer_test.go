package tokenizer

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

var (
	synthOnce sync.Once
	synthTok  *Tokenizer
	synthErr  error
)

// synthetic is testdata/synthetic.json (see testdata/make_synthetic.py): a 600-token
// byte-level BPE with NFC, the Llama 3 split pattern and added tokens with every flag.
func synthetic(t testing.TB) *Tokenizer {
	t.Helper()
	synthOnce.Do(func() { synthTok, synthErr = Load(filepath.Join("testdata", "synthetic.json")) })
	if synthErr != nil {
		t.Fatal(synthErr)
	}
	return synthTok
}

// syntheticVariant parses testdata/synthetic.json after edit changes its decoded JSON.
func syntheticVariant(t testing.TB, edit func(j map[string]any)) (*Tokenizer, error) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "synthetic.json"))
	if err != nil {
		t.Fatal(err)
	}
	var j map[string]any
	if err := json.Unmarshal(data, &j); err != nil {
		t.Fatal(err)
	}
	edit(j)
	data, err = json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(data)
}

func id(t testing.TB, tk *Tokenizer, s string) int {
	t.Helper()
	i, ok := tk.TokenID(s)
	if !ok {
		t.Fatalf("no token %q", s)
	}
	return i
}

func TestEncodeSynthetic(t *testing.T) {
	tk := synthetic(t)
	// Expected ids from Hugging Face tokenizers 0.23.3 on testdata/synthetic.json.
	cases := []struct {
		text string
		ids  []int
		offs [][2]int
	}{
		{"in the end", []int{262, 260, 286, 273}, [][2]int{{0, 2}, {2, 6}, {6, 8}, {8, 10}}},
		{"a <mask>b", []int{64, 607, 65}, [][2]int{{0, 1}, {1, 8}, {8, 9}}},                     // lstrip takes the space
		{"[R]  x", []int{610, 87}, [][2]int{{0, 5}, {5, 6}}},                                    // rstrip takes the spaces
		{"x [LR]  y", []int{87, 611, 88}, [][2]int{{0, 1}, {1, 8}, {8, 9}}},                     // both
		{"  [LR]  ", []int{611}, [][2]int{{0, 8}}},                                              // both, whole text
		{"foobar", []int{69, 78, 78, 65, 277}, nil},                                             // single_word: not a word
		{"a foo b", []int{64, 220, 612, 274}, nil},                                              // single_word: a word
		{"(foo)", []int{7, 612, 8}, nil},                                                        // punctuation is not \w
		{"_foo_", []int{62, 69, 78, 78, 62}, nil},                                               // '_' is \w
		{"éfoo", []int{127, 102, 69, 78, 78}, [][2]int{{0, 2}, {0, 2}, {2, 3}, {3, 4}, {4, 5}}}, // é split in two bytes
		{"cafe\u0301", []int{613}, [][2]int{{0, 6}}},                                            // normalized token, decomposed input
		{"caf\u00e9", []int{613}, [][2]int{{0, 5}}},                                             // and composed input
		{"ab#cd", []int{615}, nil},                                                              // leftmost-longest
		{"ab#c", []int{614, 66}, nil},
		{"<|im_start|>user\n", []int{601, 479, 265, 198}, nil},
	}
	for _, c := range cases {
		ids, offs := tk.EncodeWithOffsets(c.text)
		if !slices.Equal(ids, c.ids) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, ids, c.ids)
		}
		if !slices.Equal(tk.Encode(c.text), ids) {
			t.Errorf("Encode and EncodeWithOffsets differ on %q", c.text)
		}
		if c.offs != nil && !slices.Equal(offs, c.offs) {
			t.Errorf("offsets of %q = %v, want %v", c.text, offs, c.offs)
		}
	}
	if got := id(t, tk, "<|im_end|>"); got != 602 {
		t.Errorf("TokenID(<|im_end|>) = %d", got)
	}
	if got := id(t, tk, "Ġthe"); got != 260 {
		t.Errorf("TokenID(Ġthe) = %d", got)
	}
	if _, ok := tk.TokenID("not a token"); ok {
		t.Error("TokenID found a token that does not exist")
	}
	if !tk.IsSpecial(602) || tk.IsSpecial(608) || tk.IsSpecial(260) {
		t.Error("IsSpecial")
	}
}

func TestOffsetsCoverText(t *testing.T) {
	tk := synthetic(t)
	for _, s := range handWritten {
		ids, offs := tk.EncodeWithOffsets(s)
		if len(ids) != len(offs) {
			t.Fatalf("%q: %d ids, %d offsets", s, len(ids), len(offs))
		}
		end := 0
		for i, o := range offs {
			if o[0] < 0 || o[1] > len(s) || o[0] >= o[1] {
				t.Fatalf("%q: offset %d = %v out of range", s, i, o)
			}
			if o[0] > end {
				t.Fatalf("%q: bytes %d..%d belong to no token", s, end, o[0])
			}
			end = max(end, o[1])
		}
		if end != len(s) {
			t.Fatalf("%q: tokens end at %d of %d", s, end, len(s))
		}
	}
	// Where the text is already NFC and no token strips whitespace, each token's span
	// (whole tokens only: none splits a character here) holds exactly its bytes.
	s := "Janet’s ducks lay 16 eggs.\n  Ёжик 1,000,000 <|im_end|>"
	ids, offs := tk.EncodeWithOffsets(s)
	var b strings.Builder
	for i, o := range offs {
		dec := tk.Decode(ids[i : i+1])
		if i > 0 && offs[i-1] == o {
			continue
		}
		if s[o[0]:o[1]] != dec && !strings.HasPrefix(s[o[0]:o[1]], dec) {
			t.Errorf("token %d %q has span %q", i, dec, s[o[0]:o[1]])
		}
		b.WriteString(s[o[0]:o[1]])
	}
	if b.String() != s {
		t.Errorf("spans make %q", b.String())
	}
}

func TestDecode(t *testing.T) {
	tk := synthetic(t)
	for _, s := range []string{"Hello, world!", "日本語 🦙 ✅", "<|im_start|>user\nhi<|im_end|>\n", "  x\t\r\n"} {
		if got := tk.Decode(tk.Encode(s)); got != s {
			t.Errorf("Decode(Encode(%q)) = %q", s, got)
		}
	}
	// NFC: Decode gives the normalized text.
	if got := tk.Decode(tk.Encode("e\u0301")); got != "\u00e9" {
		t.Errorf("Decode(Encode(e + U+0301)) = %q", got)
	}
	if got := tk.Decode([]int{-1, 1 << 20}); got != "<unk:-1><unk:1048576>" {
		t.Errorf("Decode of unknown ids = %q", got)
	}
}

func TestSplitPatterns(t *testing.T) {
	cases := []struct {
		kind splitKind
		text string
		want []string
	}{
		{splitLlama3, "Hello, y'all! It's 12345 ok", []string{"Hello", ",", " y", "'all", "!", " It", "'s", " ", "123", "45", " ok"}},
		{splitLlama3, "  \n  x", []string{"  \n", " ", " x"}},
		{splitLlama3, "a  \t b\n\n", []string{"a", "  \t", " b", "\n\n"}},
		{splitLlama3, "x\u00a0y\t z   ", []string{"x", "\u00a0y", "\t", " z", "   "}},
		{splitLlama3, "(hello) ...\n\n!", []string{"(hello", ")", " ...\n\n", "!"}},
		{splitLlama3, "'S 'll 'LL 'ſ", []string{"'S", " '", "ll", " '", "LL", " '", "ſ"}},
		{splitLlama3, "'ſx", []string{"'ſ", "x"}},
		{splitLlama3, "\r\n\r\n x", []string{"\r\n\r\n", " x"}},
		{splitQwen, "12345 x", []string{"1", "2", "3", "4", "5", " x"}},
		{splitGPT2, "Hello, y'all! It's 12345  ok\n\n x", []string{"Hello", ",", " y", "'", "all", "!", " It", "'s", " 12345", " ", " ok", "\n\n", " x"}},
		{splitGPT2, "'S\tx  ", []string{"'", "S", "\t", "x", "  "}},
		{splitGPT2, "a\xffb", []string{"a", "\xff", "b"}},
	}
	for _, c := range cases {
		var got []string
		split(c.kind, c.text, func(s, e int) { got = append(got, c.text[s:e]) })
		if !slices.Equal(got, c.want) {
			t.Errorf("split(%d, %q) = %q, want %q", c.kind, c.text, got, c.want)
		}
	}
}

// The quadratic merge loop for short words and the heap for long ones apply merges in the same
// order.
func TestMergeStrategiesAgree(t *testing.T) {
	tk := synthetic(t)
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "theanisorl dgu"
	var sc1, sc2 bpeScratch
	for range 3000 {
		n := 2 + rng.IntN(120)
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		ids := make([]int32, n)
		lens := make([]int32, n)
		for i := range b {
			ids[i], lens[i] = tk.byteIDs[b[i]], 1
		}
		ids2, lens2 := slices.Clone(ids), slices.Clone(lens)
		a, al := tk.mergeSmall(ids, lens, &sc1)
		h, hl := tk.mergeHeap(ids2, lens2, &sc2)
		if !slices.Equal(a, h) || !slices.Equal(al, hl) {
			t.Fatalf("%q: scan %v, heap %v", b, a, h)
		}
	}
}

func TestMergeFormatsAndIgnoreMerges(t *testing.T) {
	base := synthetic(t)
	text := "The answer is 6. In the end, the xyz is here."
	// Merges written as "a b" strings (GPT-2, Llama 3) instead of [a, b] pairs.
	strs, err := syntheticVariant(t, func(j map[string]any) {
		m := j["model"].(map[string]any)
		var out []string
		for _, p := range m["merges"].([]any) {
			pp := p.([]any)
			out = append(out, pp[0].(string)+" "+pp[1].(string))
		}
		m["merges"] = out
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(strs.Encode(text), base.Encode(text)) {
		t.Error("string merges give other ids than pair merges")
	}
	// ignore_merges: a word that is in the vocab is one token even when no merge makes it.
	addXYZ := func(ignore bool) *Tokenizer {
		tk, err := syntheticVariant(t, func(j map[string]any) {
			m := j["model"].(map[string]any)
			m["vocab"].(map[string]any)["Ġxyz"] = 700
			m["ignore_merges"] = ignore
		})
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	with, without := addXYZ(true), addXYZ(false)
	if got := with.Encode(" xyz"); !slices.Equal(got, []int{700}) {
		t.Errorf("ignore_merges: Encode(\" xyz\") = %v, want [700]", got)
	}
	if got := without.Encode(" xyz"); slices.Contains(got, 700) {
		t.Errorf("without ignore_merges: Encode(\" xyz\") = %v uses the unreachable token", got)
	}
}

func TestParseRejectsUnsupported(t *testing.T) {
	cases := map[string]func(j map[string]any){
		"normalizer": func(j map[string]any) { j["normalizer"] = map[string]any{"type": "Lowercase"} },
		"pattern": func(j map[string]any) {
			j["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{
				map[string]any{"type": "Split", "pattern": map[string]any{"Regex": `\w+`}, "behavior": "Isolated", "invert": false},
				map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false},
			}}
		},
		"no byte level": func(j map[string]any) { j["pre_tokenizer"] = map[string]any{"type": "Whitespace"} },
		"model":         func(j map[string]any) { j["model"].(map[string]any)["type"] = "WordPiece" },
		"dropout":       func(j map[string]any) { j["model"].(map[string]any)["dropout"] = 0.1 },
		"prefix space": func(j map[string]any) {
			j["pre_tokenizer"] = map[string]any{"type": "ByteLevel", "add_prefix_space": true}
		},
		"merge": func(j map[string]any) { j["model"].(map[string]any)["merges"] = []any{"Ġ nonexistent"} },
	}
	for name, edit := range cases {
		if _, err := syntheticVariant(t, edit); err == nil {
			t.Errorf("%s: Parse accepted an unsupported tokenizer", name)
		}
	}
	// GPT-2's layout (ByteLevel with its own regex, no Split) is supported.
	tk, err := syntheticVariant(t, func(j map[string]any) {
		j["pre_tokenizer"] = map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}
		j["normalizer"] = nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tk.Decode(tk.Encode("It's 12345 ok")), "It's 12345 ok"; got != want {
		t.Errorf("GPT-2 layout round trip: %q", got)
	}
	if _, err := Parse([]byte("{")); err == nil {
		t.Error("Parse accepted broken JSON")
	}
	if _, err := Load(filepath.Join("testdata", "missing.json")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

func TestConcurrentEncode(t *testing.T) {
	tk := synthetic(t)
	texts := handWritten
	want := make([][]int, len(texts))
	for i, s := range texts {
		want[i] = tk.Encode(s)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 3 * len(texts) {
				i := (k*7 + g) % len(texts)
				if got := tk.Encode(texts[i]); !slices.Equal(got, want[i]) {
					t.Errorf("concurrent Encode(%q) = %v, want %v", texts[i], got, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
}
