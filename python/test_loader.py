#!/usr/bin/env python3
"""Check redraft_loader on real outputs, the way a training loop would use them.

    test_loader.py [--rl DIR]... [--sft DIR --tokenizer tokenizer.json [--template tokenizer_config.json]]... [--hf]

rl: every batch's advantages and masks equal the shard's column (nulls masked), the padding of a
byte-level encode is right, and the rows add up to the manifest's.
sft (sft/2): for every row, independently of the Go code, the chat template is rebuilt from the
messages' segments (chatml, the only format checked here), the tokens (Hugging Face `tokenizers`)
are mapped back to bytes, which must spell the rendered text, and a token has label != -100 exactly
when its bytes lie inside trainable text (or it is the end-of-turn token of an assistant message
that ends trained); labels equal input_ids where not -100; attention is 1 up to the padding.
--template (one per --sft, for a qwen3 output, with tool calls or without): every sft row's messages
(read back with pyarrow, and with `datasets` under --hf) are turned into plain OpenAI messages
(redraft_loader.openai_messages, row_tools) and rendered with the model's own chat template by
jinja2, set up as transformers sets it up; Hugging Face `tokenizers` must give exactly the row's
input_ids for that text, and a token is trained exactly when it lies inside an assistant turn's body
(after the header and an empty think block, through its <|im_end|>): tool results, user and system
turns and the template's tools preamble are masked. The rl rows that carry messages (rl/4) are
checked the same way: their input_ids are that rendering's tokens up to the last <|im_end|>.
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
IGNORE = -100


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


def chat_template(config_path):
    """The model's chat template from its tokenizer_config.json, in a jinja2 environment set up as
    transformers' apply_chat_template sets it up, and the special-token variables."""
    import json

    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    with open(config_path, encoding="utf-8") as f:
        cfg = json.load(f)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def raise_exception(message):
        raise ValueError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    special = {}
    for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
        value = cfg.get(key)
        special[key] = value.get("content") if isinstance(value, dict) else value
    return env.from_string(cfg["chat_template"]), special


def assistant_bodies(text):
    """Character spans of the assistant turns' bodies in a ChatML-style rendering: from after
    "<|im_start|>assistant\n" (and an empty think block the template adds) through "<|im_end|>"."""
    head, think, end = "<|im_start|>assistant\n", "<think>\n\n</think>\n\n", "<|im_end|>"
    spans = []
    i = text.find(head)
    while i >= 0:
        s = i + len(head)
        if text.startswith(think, s):
            s += len(think)
        e = text.index(end, s) + len(end)
        spans.append((s, e))
        i = text.find(head, e)
    return spans


def check_template(out, tok_path, config_path, hf):
    """Every sft row (and rl row with messages) is exactly the model's own template rendering of its
    messages, tokenized by Hugging Face tokenizers, with only assistant bodies trained."""
    from tokenizers import Tokenizer

    template, special = chat_template(config_path)
    tok = Tokenizer.from_file(tok_path)
    meta = rl.shard_metadata(out, "sft")
    if meta.get("redraft.chat_format") != "qwen3":
        fail("%s: chat format %s, --template checks qwen3 outputs" % (out, meta.get("redraft.chat_format")))
        return None
    stats = {"rows": 0, "tool_calls": 0, "tool_results": 0, "trained": 0, "masked_tool": 0}

    def check_row(where, messages, tools, ids, labels, rl_row=False):
        msgs = rl.openai_messages(messages)
        text = template.render(messages=msgs, tools=tools, add_generation_prompt=False, **special)
        enc = tok.encode(text, add_special_tokens=False)
        want_ids, offsets = enc.ids, enc.offsets
        if rl_row:
            # The rl track ends with the last turn's <|im_end|>, before the template's newline.
            if want_ids[len(ids):] != tok.encode("\n", add_special_tokens=False).ids:
                fail("%s: the rendering does not end with the rl track then a newline" % where)
                return
            want_ids, offsets = want_ids[: len(ids)], offsets[: len(ids)]
        if list(ids) != want_ids:
            k = next((i for i, (a, b) in enumerate(zip(ids, want_ids)) if a != b), min(len(ids), len(want_ids)))
            fail("%s: input_ids differ from tokenizers' tokens of the template's text at token %d of %d/%d" % (where, k, len(ids), len(want_ids)))
            return
        spans = assistant_bodies(text)
        tool_spans = []
        i = text.find("<tool_response>")
        while i >= 0:
            e = text.index("</tool_response>", i) + len("</tool_response>")
            tool_spans.append((i, e))
            i = text.find("<tool_response>", e)
        for k, (s, e) in enumerate(offsets):
            want = inside(spans, s, e)
            if (labels[k] != IGNORE) != want or (labels[k] != IGNORE and labels[k] != ids[k]):
                fail("%s: token %d %r [%d, %d): label %d, the template's assistant turns say %s" % (where, k, text[s:e], s, e, labels[k], want))
                return
            stats["trained"] += want
            if any(a <= s < b for a, b in tool_spans):
                stats["masked_tool"] += 1
        stats["rows"] += 1
        stats["tool_calls"] += sum(len(m.get("tool_calls") or []) for m in msgs)
        stats["tool_results"] += sum(m["role"] == "tool" for m in msgs)

    table = rl.read_table(out, "sft")
    for row in table.to_pylist():
        check_row("%s: sft row %s (pyarrow)" % (out, row["id"]), row["messages"], rl.row_tools(row), row["input_ids"], row["labels"])
    if "rl" in rl.manifest(out)["datasets"]:
        t = rl.read_table(out, "rl")
        for row in (t.to_pylist() if t is not None else []):
            if row.get("messages") is not None and row["input_ids"] is not None:
                check_row("%s: rl row %s sample %d" % (out, row["group_id"], row["sample_index"]), row["messages"], rl.row_tools(row),
                          row["input_ids"], row["labels"], rl_row=True)
                if row["input_ids"][: len(row["prompt_ids"])] != row["prompt_ids"] or any(l != IGNORE for l in row["labels"][: len(row["prompt_ids"])]):
                    fail("%s: rl row %s: prompt_ids are not the untrained start of input_ids" % (out, row["group_id"]))
    if hf:
        import datasets

        datasets.disable_progress_bars()
        with tempfile.TemporaryDirectory() as cache:
            d = rl.load_hf(out, "sft", cache_dir=cache)
            for row in d:
                for m in row["messages"]:
                    for c in m["tool_calls"] or []:
                        if not (isinstance(c["function"]["name"], str) and isinstance(c["function"]["arguments"], str) and c["type"] == "function" and c["id"]):
                            fail("%s: datasets reads a tool call as %r" % (out, c))
                    if m["role"] == "tool" and not isinstance(m["tool_call_id"], str):
                        fail("%s: datasets reads a tool result without its tool_call_id: %r" % (out, m))
                check_row("%s: sft row %s (datasets)" % (out, row["id"]), row["messages"], rl.row_tools(row), row["input_ids"], row["labels"])
    return stats


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
    ap.add_argument("--template", action="append", default=[], help="tokenizer_config.json with the chat template: none, or one per --sft")
    ap.add_argument("--hf", action="store_true")
    args = ap.parse_args()
    if len(args.tokenizer) != len(args.sft):
        ap.error("give one --tokenizer per --sft")
    if args.template and len(args.template) != len(args.sft):
        ap.error("give one --template per --sft, or none")
    for out in args.rl:
        print("rl %s: %d rows in batches" % (out, check_rl(out)))
    for i, (out, tok) in enumerate(zip(args.sft, args.tokenizer)):
        if args.template:
            st = check_template(out, tok, args.template[i], args.hf)
            if st:
                print("sft %s: %d renderings (pyarrow%s) with %d tool calls and %d tool results equal the chat template's tokens; %d trained tokens, %d tool-response tokens all masked"
                      % (out, st["rows"], ", datasets" if args.hf else "", st["tool_calls"], st["tool_results"], st["trained"], st["masked_tool"]))
            continue
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
