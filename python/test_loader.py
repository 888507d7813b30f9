#!/usr/bin/env python3
"""Check redraft_loader on real outputs, the way a training loop would use them.

    test_loader.py [--rl DIR]... [--sft DIR --tokenizer tokenizer.json]... [--hf]

rl: every batch's advantages and masks equal the shard's column (nulls masked), the padding of a
byte-level encode is right, and the rows add up to the manifest's.
sft (sft/2): for every row, independently of the Go code, the chat template is rebuilt from the
messages' segments (chatml, the only format checked here), the tokens (Hugging Face `tokenizers`)
are mapped back to bytes, which must spell the rendered text, and a token has label != -100 exactly
when its bytes lie inside trainable text (or it is the end-of-turn token of an assistant message
that ends trained); labels equal input_ids where not -100; attention is 1 up to the padding.
--hf: each dataset also loads through Hugging Face `datasets` with the card's configs.
Exit status 0 when every check passes.
"""
import argparse
import hashlib
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import redraft_loader as rl  # noqa: E402

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def bytes_to_unicode():
    """GPT-2's byte <-> printable character table of byte-level BPE."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def chatml(messages):
    """The chatml rendering of the messages and the merged byte spans of trained text."""
    text = b""
    spans = []
    for m in messages:
        text += ("<|im_start|>%s\n" % m["role"]).encode()
        last = False
        for seg in m["segments"]:
            piece = m["content"][seg["start"]:seg["end"]].encode()
            if not piece:
                continue
            if seg["trainable"]:
                spans.append((len(text), len(text) + len(piece)))
            text += piece
            last = seg["trainable"]
        if m["role"] == "assistant" and last:
            spans.append((len(text), len(text) + len(b"<|im_end|>")))
        text += b"<|im_end|>\n"
    merged = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return text, merged


def inside(spans, s, e):
    return s < e and any(a <= s and e <= b for a, b in spans)


def check_sft(out, tok_path):
    from tokenizers import Tokenizer

    meta = rl.shard_metadata(out, "sft")
    with open(tok_path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    if meta.get("redraft.tokenizer_sha256") != sha:
        fail("%s: shard tokenizer sha256 %s, %s is %s" % (out, meta.get("redraft.tokenizer_sha256"), tok_path, sha))
        return 0
    fmt = meta.get("redraft.chat_format")
    if fmt != "chatml":
        fail("%s: chat format %s is not checked here" % (out, fmt))
        return 0
    tok = Tokenizer.from_file(tok_path)
    added = {i: t.content for i, t in tok.get_added_tokens_decoder().items()}
    dec = bytes_to_unicode()
    cache = {}

    def token_bytes(i):
        if i not in cache:
            cache[i] = added[i].encode() if i in added else bytes(dec[c] for c in tok.id_to_token(i))
        return cache[i]

    table = rl.read_table(out, "sft", ["id", "messages"])
    messages = {r["id"]: r["messages"] for r in table.to_pylist()}
    rows = trained_total = 0
    for batch in rl.sft_batches(out, batch_size=16, pad_id=0):
        ids, labels, attn = batch["input_ids"], batch["labels"], batch["attention_mask"]
        if not (ids.dtype == labels.dtype == attn.dtype == np.int64 and ids.shape == labels.shape == attn.shape):
            fail("%s: batch arrays %s %s %s" % (out, ids.shape, labels.shape, attn.shape))
        for k, rid in enumerate(batch["id"]):
            rows += 1
            n = int(attn[k].sum())
            if not (attn[k, :n] == 1).all() or (attn[k, n:] != 0).any() or (labels[k, n:] != -100).any():
                fail("%s: row %s: padding" % (out, rid))
            text, spans = chatml(messages[rid])
            pos = 0
            row_ok = True
            for j in range(n):
                tb = token_bytes(int(ids[k, j]))
                s, e = pos, pos + len(tb)
                pos = e
                want = inside(spans, s, e)
                lab = int(labels[k, j])
                if (lab != -100) != want or (lab != -100 and lab != ids[k, j]):
                    fail("%s: row %s token %d %r bytes [%d, %d): label %d, trainable text says %s" % (out, rid, j, tb, s, e, lab, want))
                    row_ok = False
                    break
                trained_total += lab != -100
            if row_ok and text != b"".join(token_bytes(int(i)) for i in ids[k, :n]):
                fail("%s: row %s: the tokens do not spell the chatml rendering of the messages" % (out, rid))
    want_rows = rl.manifest(out)["datasets"]["sft"]["rows"]
    if rows != want_rows:
        fail("%s: %d sft rows in batches, manifest says %d" % (out, rows, want_rows))
    return rows, trained_total


def check_rl(out):
    table = rl.read_table(out, "rl", ["advantage", "reward"])
    adv_col = table.column("advantage").to_pylist()

    def encode(prompt, response):
        p = "".join(m["content"] for m in prompt).encode()
        r = response.encode()
        ids = list(p) + list(r)
        return ids, [-100] * len(p) + list(r)

    if rl.manifest(out)["datasets"]["rl"]["schema"] not in ("rl/1", "rl/2"):
        # The stored token track (rl/3), batched as the rows hold it.
        stored = rl.read_table(out, "rl", ["input_ids", "labels"]).to_pylist()
        k = 0
        for b in rl.rl_batches(out, batch_size=7):
            if "input_ids" not in b:
                break
            for j in range(len(b["advantages"])):
                r = stored[k + j]
                n = len(r["input_ids"] or [])
                if list(b["input_ids"][j, :n]) != (r["input_ids"] or []) or list(b["labels"][j, :n]) != (r["labels"] or []) or b["attention_mask"][j].sum() != n or b["token_mask"][j] != (r["input_ids"] is not None):
                    fail("%s: row %d: batched token track differs from the shard's" % (out, k + j))
            k += len(b["advantages"])
    rows = 0
    for b in rl.rl_batches(out, batch_size=100, encode=encode):
        n = len(b["advantages"])
        for k in range(n):
            a = adv_col[rows + k]
            if (a is None) != (b["advantage_mask"][k] == 0) or (a is not None and abs(np.float32(a) - b["advantages"][k]) > 1e-6 * max(1, abs(a))):
                fail("%s: row %d: advantage %r, batch %r mask %r" % (out, rows + k, a, b["advantages"][k], b["advantage_mask"][k]))
        lengths = b["attention_mask"].sum(axis=1)
        if b["input_ids"].shape != b["labels"].shape or (b["labels"][b["attention_mask"] == 0] != -100).any() or lengths.max(initial=0) != b["input_ids"].shape[1]:
            fail("%s: rl batch padding" % out)
        rows += n
    want = rl.manifest(out)["datasets"]["rl"]["rows"]
    if rows != want:
        fail("%s: %d rl rows in batches, manifest says %d" % (out, rows, want))
    return rows


def check_hf(out):
    import datasets

    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as cache:
        for name, ds in sorted(rl.manifest(out)["datasets"].items()):
            d = rl.load_hf(out, name, cache_dir=cache)
            if d.num_rows != ds["rows"]:
                fail("%s: datasets loads %d %s rows, manifest says %d" % (out, d.num_rows, name, ds["rows"]))
            if name == "sft" and "input_ids" in d.column_names:
                first = d[0]
                if not isinstance(first["input_ids"], list) or len(first["input_ids"]) != len(first["labels"]):
                    fail("%s: datasets sft row: %r" % (out, {k: type(v) for k, v in first.items()}))
    return datasets.__version__


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rl", action="append", default=[])
    ap.add_argument("--sft", action="append", default=[])
    ap.add_argument("--tokenizer", action="append", default=[], help="one per --sft, in order")
    ap.add_argument("--hf", action="store_true")
    args = ap.parse_args()
    if len(args.tokenizer) != len(args.sft):
        ap.error("give one --tokenizer per --sft")
    for out in args.rl:
        print("rl %s: %d rows in batches" % (out, check_rl(out)))
    for out, tok in zip(args.sft, args.tokenizer):
        res = check_sft(out, tok)
        if res:
            print("sft %s: %d rows, %d trained tokens, every mask matches its text spans" % (out, res[0], res[1]))
    if args.hf:
        for out in args.rl + args.sft:
            print("datasets %s loads %s" % (check_hf(out), out))
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
