package tokenizer

import (
	"bufio"
	"encoding/json"

	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The parity tests compare Encode with Hugging Face `tokenizers` (the python that
// REDRAFT_PYTHON names, from scripts/python-env.sh) on the corpus of corpus_test.go, for the
// synthetic tokenizer in testdata and for the real ones that scripts/fetch-tokenizers.sh puts
// in REDRAFT_TOKENIZERS. Every string must give the same ids.

func pythonOrSkip(t *testing.T) string {
	t.Helper()
	py := os.Getenv("REDRAFT_PYTHON")
	if py == "" {
		if os.Getenv("REDRAFT_REQUIRE_PYTHON") == "1" {
			t.Fatal("REDRAFT_REQUIRE_PYTHON=1 but REDRAFT_PYTHON is not set")
		}
		t.Skip("REDRAFT_PYTHON is not set (scripts/test.sh sets it): skipping the comparison with Hugging Face tokenizers")
	}
	return py
}

func tokenizersDirOrSkip(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("REDRAFT_TOKENIZERS")
	if dir == "" {
		if os.Getenv("REDRAFT_REQUIRE_TOKENIZERS") == "1" {
			t.Fatal("REDRAFT_REQUIRE_TOKENIZERS=1 but REDRAFT_TOKENIZERS is not set")
		}
		t.Skip("REDRAFT_TOKENIZERS is not set: run REDRAFT_TOKENIZERS=$(scripts/fetch-tokenizers.sh) to test the real tokenizers")
	}
	return dir
}

// realTokenizers are the families fetched by scripts/fetch-tokenizers.sh.
var realTokenizers = []string{"qwen3", "llama3", "gpt2"}

var loadedReal sync.Map // path -> *Tokenizer

// loadReal loads REDRAFT_TOKENIZERS/family/tokenizer.json once per test binary.
func loadReal(t testing.TB, dir, family string) *Tokenizer {
	t.Helper()
	path := filepath.Join(dir, family, "tokenizer.json")
	if tk, ok := loadedReal.Load(path); ok {
		return tk.(*Tokenizer)
	}
	tk, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	loadedReal.Store(path, tk)
	return tk
}

// hfEncode runs testdata/hf_encode.py over texts.
func hfEncode(t *testing.T, py, tokPath string, texts []string) ([][]int, string) {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "corpus.jsonl")
	out := filepath.Join(dir, "ids.jsonl")
	var b strings.Builder
	for _, s := range texts {
		j, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, filepath.Join("testdata", "hf_encode.py"), tokPath, in, out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s testdata/hf_encode.py: %v\n%s", py, err, msg)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	var version string
	var ids [][]int
	for sc.Scan() {
		if version == "" {
			var v struct{ Tokenizers string }
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				t.Fatal(err)
			}
			version = v.Tokenizers
			continue
		}
		var row []int
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(texts) {
		t.Fatalf("hf_encode.py returned %d rows for %d strings", len(ids), len(texts))
	}
	return ids, version
}

func checkParity(t *testing.T, tk *Tokenizer, py, tokPath string, corpus []string) {
	t.Helper()
	want, version := hfEncode(t, py, tokPath, corpus)
	bad := 0
	for i, s := range corpus {
		got := tk.Encode(s)
		if slices.Equal(got, want[i]) && !(got == nil && len(want[i]) > 0) {
			continue
		}
		bad++
		if bad <= 10 {
			t.Errorf("%q:\n  go %v\n  hf %v", s, got, want[i])
		}
	}
	n := len(corpus)
	t.Logf("parity with tokenizers %s on %s: %d/%d strings identical (%.2f%%)",
		version, filepath.Base(filepath.Dir(tokPath))+"/"+filepath.Base(tokPath), n-bad, n, 100*float64(n-bad)/float64(n))
	if bad > 0 {
		t.Errorf("%d of %d strings differ", bad, n)
	}
}

func llamaVocabInputs(dir string) []string {
	var out []string
	for _, name := range []string{"gpt-2", "llama-bpe", "qwen2", "qwen35"} {
		inp, err := os.ReadFile(filepath.Join(dir, "llama-vocab", "ggml-vocab-"+name+".gguf.inp"))
		if err != nil {
			continue
		}
		out = append(out, splitVocabInp(string(inp))...)
	}
	return out
}

func TestParitySynthetic(t *testing.T) {
	py := pythonOrSkip(t)
	path := filepath.Join("testdata", "synthetic.json")
	tk, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	corpus := buildCorpus(t, nil)
	if len(corpus) < 10000 {
		t.Fatalf("corpus has %d strings, want at least 10,000", len(corpus))
	}
	checkParity(t, tk, py, path, corpus)
}

func TestParity(t *testing.T) {
	dir := tokenizersDirOrSkip(t)
	py := pythonOrSkip(t)
	corpus := buildCorpus(t, llamaVocabInputs(dir))
	if len(corpus) < 10000 {
		t.Fatalf("corpus has %d strings, want at least 10,000", len(corpus))
	}
	for _, name := range realTokenizers {
		t.Run(name, func(t *testing.T) {
			checkParity(t, loadReal(t, dir, name), py, filepath.Join(dir, name, "tokenizer.json"), corpus)
		})
	}
}

// llama.cpp's vocab tests: ggml-vocab-NAME.gguf.inp holds strings, .out the ids that the
// model's Hugging Face tokenizer gave (transformers' AutoTokenizer, add_special_tokens=False).
// They are checked against the tokenizer.json of the same family. The qwen35 files are not:
// Qwen3.5's tokenizer does not apply NFC (its .out encodes the decomposed "é" of the .inp as
// "e" and a combining accent, where Qwen3's composes it), so its inputs only join the parity
// corpus, where Hugging Face tokenizers with Qwen3's tokenizer.json is the reference.
var llamaVocabCases = []struct{ gguf, family string }{
	{"gpt-2", "gpt2"},       // openai-community/gpt2
	{"llama-bpe", "llama3"}, // meta-llama/Meta-Llama-3-8B
	{"qwen2", "qwen3"},      // Qwen/Qwen1.5-7B: the vocabulary Qwen2, 2.5 and 3 kept
}

func splitVocabInp(s string) []string {
	parts := strings.Split(s, "\n__ggml_vocab_test__\n")
	if len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return parts
}

func TestLlamaCppVocabCases(t *testing.T) {
	dir := tokenizersDirOrSkip(t)
	for _, c := range llamaVocabCases {
		t.Run(c.gguf, func(t *testing.T) {
			base := filepath.Join(dir, "llama-vocab", "ggml-vocab-"+c.gguf+".gguf")
			inp, err := os.ReadFile(base + ".inp")
			if err != nil {
				t.Fatal(err)
			}
			outData, err := os.ReadFile(base + ".out")
			if err != nil {
				t.Fatal(err)
			}
			texts := splitVocabInp(string(inp))
			lines := strings.Split(strings.TrimSuffix(string(outData), "\n"), "\n")
			if len(lines) != len(texts) {
				t.Fatalf("%d inputs, %d outputs", len(texts), len(lines))
			}
			tk := loadReal(t, dir, c.family)
			bad := 0
			for i, s := range texts {
				want := []int{}
				for _, f := range strings.Fields(lines[i]) {
					id, err := strconv.Atoi(f)
					if err != nil {
						t.Fatalf("%s.out line %d: %v", base, i+1, err)
					}
					want = append(want, id)
				}
				got := tk.Encode(s)
				if !slices.Equal(got, want) {
					bad++
					t.Errorf("%q:\n  go   %v\n  want %v", s, got, want)
				}
			}
			t.Logf("%s.out with %s/tokenizer.json: %d/%d cases identical", filepath.Base(base), c.family, len(texts)-bad, len(texts))
		})
	}
}
