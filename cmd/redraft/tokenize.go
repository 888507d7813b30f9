package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/redraft/redraft/tokenizer"
)

// cmdTokenize prints, for each text line on stdin, the JSON array of token
// ids the tokenizer gives it (no special tokens added), to check a tokenizer
// before a long run.
func cmdTokenize(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlagSet("tokenize", "--tokenizer FILE < lines.txt", tokenizeAbout, stdout)
	path := fs.String("tokenizer", "", "Hugging Face tokenizer.json `file` (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return usageError{"--tokenizer is required"}
	}
	tok, err := tokenizer.Load(*path)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		ids := tok.Encode(sc.Text())
		if ids == nil {
			ids = []int{}
		}
		b, err := json.Marshal(ids)
		if err != nil {
			return err
		}
		out.Write(b)
		out.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	return nil
}
