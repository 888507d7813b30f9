package tokenizer

import (
	"os"
	"path/filepath"
	"testing"
)

// gsm8kTexts is the bundled GSM8K file's questions and model solutions (about 2.4 MB).
func gsm8kTexts(b *testing.B) ([]string, int64) {
	var texts []string
	var n int64
	readJSONL(b, filepath.Join("..", "testdata", "gsm8k", "example_model_solutions.jsonl"), func(rec map[string]any) {
		add := func(v any) {
			if s, ok := v.(string); ok {
				texts = append(texts, s)
				n += int64(len(s))
			}
		}
		add(rec["question"])
		add(rec["ground_truth"])
		for _, k := range []string{"6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"} {
			if m, ok := rec[k].(map[string]any); ok {
				add(m["solution"])
			}
		}
	})
	return texts, n
}

// BenchmarkEncode encodes the GSM8K texts one by one (MB/s is of input text), with the
// synthetic tokenizer and, when REDRAFT_TOKENIZERS is set, the real ones.
func BenchmarkEncode(b *testing.B) {
	texts, n := gsm8kTexts(b)
	toks := []struct {
		name string
		tk   *Tokenizer
	}{{"synthetic", synthetic(b)}}
	if dir := os.Getenv("REDRAFT_TOKENIZERS"); dir != "" {
		for _, name := range realTokenizers {
			tk := loadReal(b, dir, name)
			toks = append(toks, struct {
				name string
				tk   *Tokenizer
			}{name, tk})
		}
	}
	for _, c := range toks {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(n)
			for b.Loop() {
				for _, s := range texts {
					c.tk.Encode(s)
				}
			}
		})
		b.Run(c.name+"/offsets", func(b *testing.B) {
			b.SetBytes(n)
			for b.Loop() {
				for _, s := range texts {
					c.tk.EncodeWithOffsets(s)
				}
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.SetBytes(n)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					for _, s := range texts {
						c.tk.Encode(s)
					}
				}
			})
		})
	}
}
