package tokenizer

import (
	"bufio"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// handWritten are strings that stress the pre-tokenizer, the normalizer and the added tokens:
// several scripts, combining marks, whitespace of every kind, numbers, emoji sequences, LaTeX,
// code, and special tokens glued to text.
var handWritten = []string{
	// multilingual
	"我想在apple工作1314151天～", "你好，世界！今天天气很好。", "日本語のテキストです。カタカナとひらがな。",
	"한국어 문장입니다. 숫자 123도 있어요.", "مرحبا بالعالم، كيف حالك؟ ١٢٣٤٥", "שלום עולם",
	"नमस्ते दुनिया, यह एक परीक्षण है। १२३", "Привет, мир! Ёжик в тумане.", "нещо на Български",
	"Ελληνικά γράμματα: αβγδε ΑΒΓΔΕ", "ไทย ภาษาไทย สวัสดี", "កាន់តែពិសេសអាចខលចេញ", "Tiếng Việt: Cửa Việt, người",
	"Äpfel, Öl, Übermut, Straße, façade, naïve, coöperate, résumé", "İstanbul ıi", "ǅemo ǈ ǋ ß ẞ",
	// combining marks (decomposed forms: NFC composes them)
	"cafe\u0301 re\u0301sume\u0301", "e\u0301\u0301 a\u0308o\u0308u\u0308", "\u1100\u1161\u11a8 한", "A\u030a Å Å",
	"\u0301leading combining", "x\u0327\u0301y", "\u0915\u094d\u0937", "Zalgo: Z\u0351\u0352a\u0353l\u0354g\u0355o",
	"ﬁ ﬂ ﬃ ㎏ ½ ¼ ① Ⅻ", "\u212b \u2126 \u00c5", "\uFB01nance",
	"\u0FA7 \u0958\u093c \u0344 \u0F73\u0F75 \u2ADC", // composition exclusions: NFC decomposes them
	// whitespace
	"", " ", "  ", "   ", "\t", "\n", "\n\n", "\n\n\n", "\t\n", "\r\n", "\r\n\r\n", "a\r\nb\rc\nd",
	"trailing spaces   ", "   leading spaces", "  \t  mixed \t\t tabs\t", "line one\n\n\n  line two  \n",
	"    Hello\n    Hello", " (", "\n =", "' era", "x\u00a0y\u00a0\u00a0z", "a\u3000b\u2003c\u2009d\u202fe",
	"\u0085next line\u2028line sep\u2029para", "\v\f vertical", "word\n \n\tword", "end with newline\n",
	"a \n b \r\n c", "  \n  x", "\t\tindented\n\t\t\tcode", " \u00a0 nbsp ", "\x1c\x1d\x1e\x1f separators",
	// numbers
	"3", "33", "333", "3333", "33333", "333333", "3333333", "33333333", "333333333",
	"1,000,000", "1.000.000,50", "3.14159265358979323846", "-42", "+7", "1e-10", "6.022e23", "0x1F 0b1010",
	"12345678901234567890", "$1,234.56", "50%", "1/2 + 3/4 = 5/4", "2024-06-30T12:34:56Z", "٣٤٥ ۴۵۶ ४५६",
	"ⅷ ⑦ ²³ ¹⁰", "v1.2.3-rc.4+build.5", "(555) 123-4567", "10^9+7", "1e9 1E9 1_000",
	// contractions
	"It's, I'm, you're, we've, they'll, he'd, can't", "IT'S I'M YOU'RE WE'VE THEY'LL HE'D", "'s 't 're 've 'm 'll 'd",
	"y'all'd've", "'S'T'RE'VE'M'LL'D", "rock 'n' roll", "o'clock", "''quoted''", "Hello, y'all! How are you 😁 ?",
	"\u017f 's 'ſ", "don’t use curly ’s", "'\u212a",
	// emoji
	"🦙.cpp", "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag", "🇺🇸🇬🇧🇯🇵", "👍🏽👍🏿", "😶‍🌫️", "❤️🔥", "🧑🏾‍💻 coder",
	"🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅ (only emoji that has its own token)", "✅✅✅", "a😀b😀c",
	"#️⃣ 1️⃣ ©️ ®️ ™️",
	// LaTeX and math
	"$\\frac{1}{2}$", "\\boxed{42}", "$$\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}$$", "\\(x^2 + y^2 = z^2\\)",
	"\\begin{align*} a &= b \\\\ c &= d \\end{align*}", "$\\sqrt[3]{27} = 3$", "\\left( \\dfrac{\\pi}{4} \\right)",
	"x_{i,j}^{(k)}", "∀x∈ℝ, ∃y: x≤y ∧ y≠0 ⇒ ∫₀¹ f(x)dx", "α+β=γ", "\\text{The answer is } \\boxed{\\frac{3}{4}}.",
	// code
	"func main() {\n\tfmt.Println(\"hi\")\n}\n", "def f(x):\n    return x**2  # square\n",
	"if (a && b || !c) { return a->b; }", "<div class=\"x\">&amp;</div>", "SELECT * FROM t WHERE id = 1;",
	"{\"key\": [1, 2, {\"n\": null}]}", "x = [i for i in range(10) if i % 2 == 0]", "#!/bin/bash\necho $HOME",
	"/* comment */ // another", "a==b!=c<=d>=e", "...!!!???", "!!!!!!", "-----", "=====", "\\\\\\", "~~~",
	"w048 7tuijk dsdfhu", "ied 4 ½ months", "Hello world", " Hello world", "Hello World!", " discards",
	// special and added tokens
	"<|im_start|>user\nhi<|im_end|>", "<|im_start|>assistant\n<think>\n\n</think>\n\nanswer<|im_end|>\n",
	"<|endoftext|>", "word<|endoftext|>word", "<|endoftext|><|endoftext|>", " <|endoftext|> ", "<|endoftext|",
	"<|im_end|>\n<|im_start|>", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
	"<|eot_id|>trailing", "<|reserved_special_token_0|>", "<think>reasoning</think>answer", "</think>",
	"<tool_call>\n{\"name\": \"f\"}\n</tool_call>", "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>",
	"<mask> masked", "a <mask>b", "a  \t<mask>", "[R]  x", "[R]", "x [LR]  y", "  [LR]  ", "foo", "foo bar",
	"foobar", "a foo b", "_foo_", "(foo)", "foo.", "éfoo", "cafe\u0301", "café", "ab#cd", "ab#c", "ab#ab#cd",
	"<|im_start|><|im_start|>", "<|im_start", "|>", "<||>", "<|unknown|>",
}

// buildCorpus is the parity corpus: pieces of the bundled GSM8K solutions and of a MATH-500
// sample, the hand-written strings, deterministic mixtures of them, and extra strings (such
// as llama.cpp's vocab test inputs). It is deterministic.
func buildCorpus(t testing.TB, extra []string) []string {
	t.Helper()
	rng := rand.New(rand.NewPCG(8, 2026))
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if !utf8.ValidString(s) || seen[s] {
			return
		}
		seen[s] = true
		out = append(out, s)
	}

	var texts []string
	readJSONL(t, filepath.Join("..", "testdata", "gsm8k", "example_model_solutions.jsonl"), func(rec map[string]any) {
		for _, k := range []string{"question", "ground_truth"} {
			if s, ok := rec[k].(string); ok {
				texts = append(texts, s)
			}
		}
		for _, k := range []string{"6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"} {
			if m, ok := rec[k].(map[string]any); ok {
				if s, ok := m["solution"].(string); ok {
					texts = append(texts, s)
				}
			}
		}
	})
	readJSONL(t, filepath.Join("testdata", "math500_sample.jsonl"), func(rec map[string]any) {
		for _, k := range []string{"problem", "solution"} {
			if s, ok := rec[k].(string); ok {
				texts = append(texts, s)
			}
		}
	})
	// Whole texts, their lines, and random rune-aligned slices of them.
	for i, s := range texts {
		if i%3 == 0 {
			add(s)
		}
		if i%2 == 0 {
			for _, line := range strings.SplitAfter(s, "\n") {
				add(line)
			}
		}
		if i%4 == 0 {
			add(randomSlice(rng, s))
		}
	}
	for _, s := range handWritten {
		add(s)
	}
	for _, s := range extra {
		add(s)
	}
	// Long runs: words far past the cache limit and the heap-merge threshold.
	for _, r := range []string{"a", "ab", "的", " ", "\n", "1234567890", "😀", "-=", "Supercalifragilistic", "é", " x", "\t\n"} {
		for _, n := range []int{60, 700} {
			add(strings.Repeat(r, n))
			add("word " + strings.Repeat(r, n) + " end")
		}
	}
	// Mixtures: two or three hand-written strings or text slices glued with separators.
	seps := []string{"", " ", "  ", "\n", "\n\n", "\t", "\r\n", " \n", "<|endoftext|>", "<|im_end|>\n", "<|eot_id|>", "\u0301", "'s"}
	pick := func() string {
		if rng.IntN(2) == 0 {
			return handWritten[rng.IntN(len(handWritten))]
		}
		return randomSlice(rng, texts[rng.IntN(len(texts))])
	}
	for range 3000 {
		s := pick() + seps[rng.IntN(len(seps))] + pick()
		if rng.IntN(3) == 0 {
			s += seps[rng.IntN(len(seps))] + pick()
		}
		add(s)
	}
	// Soup: random sequences of the characters the patterns and the normalizer treat specially.
	for range soupStrings {
		add(soup(rng, 1+rng.IntN(40)))
	}
	return out
}

// soupStrings is how many random character sequences the corpus gets.
var soupStrings = 4000

var soupPieces = []string{
	" ", " ", "  ", "\t", "\n", "\r", "\r\n", "\v", "\f", "\u00a0", "\u3000", "\u2009", "\u0085", "\u2028", "\x1c",
	"'", "'s", "'S", "'t", "'re", "'RE", "'ve", "'m", "'ll", "'Ll", "'d", "\u017f", "'\u017f", "’",
	"a", "b", "Z", "é", "e\u0301", "\u0301", "\u0308", "ß", "ǅ", "я", "中", "文", "あ", "ア", "한", "ع", "ह", "\u094d", "ก", "\u0e31",
	"0", "1", "9", "12", "345", "٣", "४", "½", "²", "Ⅻ", "①",
	".", ",", "!", "?", "-", "_", "(", ")", "$", "\\", "{", "}", "<", ">", "|", "#", "@", "~", "`", "\"", "…", "—", "→",
	"😀", "👍", "🏽", "\u200d", "\ufe0f", "🇺", "🇸", "✅", "\U0001F9D1",
	"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|eot_id|>", "<|begin_of_text|>", "<think>", "</think>", "<|", "|>",
	"<mask>", "[R]", "[LR]", "foo", "ab#", "ab#cd", "cafe", "\ufb01", "\u212b", "\u0fa7",
}

func soup(rng *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteString(soupPieces[rng.IntN(len(soupPieces))])
	}
	return b.String()
}

// randomSlice is a rune-aligned piece of s of up to 80 bytes.
func randomSlice(rng *rand.Rand, s string) string {
	if len(s) == 0 {
		return s
	}
	a := rng.IntN(len(s))
	b := min(len(s), a+1+rng.IntN(80))
	for a > 0 && !utf8.RuneStart(s[a]) {
		a--
	}
	for b < len(s) && !utf8.RuneStart(s[b]) {
		b++
	}
	return s[a:b]
}

func readJSONL(t testing.TB, path string, f func(map[string]any)) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		f(rec)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}
