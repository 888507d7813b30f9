"""Builds testdata/synthetic.json, the small tokenizer the unit tests run on everywhere.

A byte-level BPE with 600 tokens trained by Hugging Face `tokenizers` on the GSM8K questions
bundled in testdata/, with the Qwen2/Llama 3 family's pipeline (NFC, the Llama 3 Split pattern,
ByteLevel) and added tokens that exercise every flag (special, lstrip, rstrip, single_word,
normalized). Run from the repository root with a python that has `tokenizers`:

    python tokenizer/testdata/make_synthetic.py
"""

import json

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

LLAMA3 = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

texts = []
with open("testdata/gsm8k/example_model_solutions.jsonl", encoding="utf-8") as f:
    for i, line in enumerate(f):
        if i >= 400:
            break
        texts.append(json.loads(line)["question"])

tok = Tokenizer(models.BPE())
tok.normalizer = normalizers.NFC()
tok.pre_tokenizer = pre_tokenizers.Sequence(
    [
        pre_tokenizers.Split(Regex(LLAMA3), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ]
)
tok.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(
    vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
)
tok.train_from_iterator(texts, trainer)

specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>",
            "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
tok.add_special_tokens([AddedToken("<mask>", special=True, lstrip=True, normalized=False)])
tok.add_tokens(
    [
        AddedToken("<think>", special=False, normalized=False),
        AddedToken("</think>", special=False, normalized=False),
        AddedToken("[R]", special=False, rstrip=True, normalized=False),
        AddedToken("[LR]", special=False, lstrip=True, rstrip=True, normalized=False),
        AddedToken("foo", special=False, single_word=True, normalized=True),
        AddedToken("cafe\u0301", special=False, normalized=True),  # matched as NFC "café"
        AddedToken("ab#", special=False, normalized=False),
        AddedToken("ab#cd", special=False, normalized=False),
    ]
)
tok.save("tokenizer/testdata/synthetic.json")
