"""Reference ids from Hugging Face `tokenizers` for the Go parity test.

usage: hf_encode.py TOKENIZER_JSON INPUT_JSONL OUTPUT_JSONL

INPUT_JSONL holds one JSON string per line. OUTPUT_JSONL gets, per input line, the JSON list
of ids of Tokenizer.from_file(TOKENIZER_JSON).encode(s, add_special_tokens=False).ids.
The first line of OUTPUT_JSONL is {"tokenizers": VERSION}.
"""

import json
import sys

import tokenizers


def main() -> None:
    tok_path, inp, out = sys.argv[1:4]
    tok = tokenizers.Tokenizer.from_file(tok_path)
    with open(inp, encoding="utf-8") as f:
        texts = [json.loads(line) for line in f]
    encs = tok.encode_batch(texts, add_special_tokens=False)
    with open(out, "w", encoding="utf-8") as f:
        f.write(json.dumps({"tokenizers": tokenizers.__version__}) + "\n")
        for e in encs:
            f.write(json.dumps(e.ids) + "\n")


if __name__ == "__main__":
    main()
