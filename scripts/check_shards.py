#!/usr/bin/env python3
"""Check a redraft output directory the way a PyTorch trainer's data loader sees it.

Reads every rl shard with pyarrow and checks, independently of the Go code:
  * the manifest lists exactly the shards on disk, with matching sha256 and row counts;
  * every shard says its schema version in its metadata, is zstd-compressed, and
    has the column names, types and nullability of schemas/<dataset>.v<N>.json;
  * every group's advantages recompute from its rewards under the run's estimator
    (float64, eps from the manifest; all-equal and one-member groups get 0, null
    rewards are left out and get no advantage);
  * the arrays a trainer needs (rewards, advantages, loss weights) build as numpy arrays;
  * sft messages: segments tile the content, loss_mask says whether any of the message is
    trained (an assistant message's tool calls are trained with it), tool calls only on
    assistant messages (type function, a name), tool_call_id only on tool results, tools parse;
  * rl/5's response_messages: the response as a message list (the messages after the prompt);
  * pairs/2's chosen and rejected: one assistant message each, holding chosen_text and rejected_text;
  * the token track (rl/3 on): null exactly when token_reason says why, input_ids = prompt_ids +
    response_ids, labels -100 over the prompt and the ids over the response (a recorded
    trajectory's response, rl/4's messages, may also hold -100 over its tool results), attention
    all 1;
    rl/6's provenance: token_source (engine or tokenizer) exactly on rows with a track,
    token_check (match or mismatch) only on engine tracks, and logprobs one per response_ids
    token when logprobs_reason is null (and on an engine track only then) (engine tracks are not re-tokenized here);
    and, when Hugging Face `tokenizers` is installed and the shard's tokenizer file
    (metadata redraft.tokenizer, or --tokenizer) can be read, for the chatml and qwen3
    formats every row's prompt is rendered here, independently of the Go code, and
    tokenizers must give the same prompt_ids, and the same response_ids when the rendered
    prompt + response + end-of-turn is tokenized in one piece (rows with a messages column, which
    involve tools, are compared by python/test_loader.py --template with the model's own template).

Usage: check_shards.py OUTPUT_DIR [--schemas DIR] [--tokenizer tokenizer.json]
Exit status 0 when every check passes; prints one line per failure otherwise.
"""
import argparse
import hashlib
import json
import math
import os
import sys
from collections import OrderedDict

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def describe(t: pa.DataType) -> str:
    """pyarrow type -> redraft's schema language (see validate/describe.go)."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_int32(t):
        return "int32"
    if pa.types.is_int64(t):
        return "int64"
    if pa.types.is_float64(t):
        return "double"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return "list<%s>" % describe(t.value_type)
    if pa.types.is_struct(t):
        parts = []
        for i in range(t.num_fields):
            f = t.field(i)
            parts.append("%s%s: %s" % (f.name, "?" if f.nullable else "", describe(f.type)))
        return "struct<%s>" % ", ".join(parts)
    return str(t)


def advantages(rewards, estimator, eps):
    """Reference implementation of the group advantages, written from the formulas."""
    present = [r for r in rewards if r is not None]
    n = len(present)
    out = [None] * len(rewards)
    if n == 0:
        return out
    zero = n < 2 or all(r == present[0] for r in present)
    mean = sum(present) / n
    std = 0.0 if zero else math.sqrt(sum((r - mean) ** 2 for r in present) / (n - 1))
    total = sum(present)
    best = second = None
    if estimator == "passk" and not zero:
        best = max((i for i, r in enumerate(rewards) if r is not None), key=lambda i: (rewards[i], -i))
        second = max(r for i, r in enumerate(rewards) if r is not None and i != best)
    for i, r in enumerate(rewards):
        if r is None:
            continue
        if zero:
            out[i] = 0.0
        elif estimator == "grpo":
            out[i] = (r - mean) / (std + eps)
        elif estimator in ("dr_grpo", "reinforce_pp_baseline"):
            out[i] = r - mean
        elif estimator == "rloo":
            out[i] = r - (total - r) / (n - 1)
        elif estimator == "passk":
            out[i] = r - second if i == best else 0.0
        else:
            raise ValueError("unknown estimator %r" % estimator)
    return out, zero


def whiten(values, weights, eps):
    """verl-style masked whitening with per-sample weights (tokens or 1)."""
    idx = [i for i, v in enumerate(values) if v is not None]
    w = sum(weights[i] for i in idx)
    if w == 0:
        return values
    if all(values[i] == values[idx[0]] for i in idx):
        return [0.0 if v is not None else None for v in values]
    mean = sum(weights[i] * values[i] for i in idx) / w
    var = sum(weights[i] * (values[i] - mean) ** 2 for i in idx) / w
    if w > 1:
        var *= w / (w - 1)
    return [None if v is None else (v - mean) / math.sqrt(var + eps) for v in values]


def check_tool_fields(where, mi, msg, fail):
    """Tool calls only on an assistant message, each of type function with a name; a
    tool_call_id only on a tool result."""
    calls = msg.get("tool_calls") or []
    if calls and msg["role"] != "assistant":
        fail("%s message %d: a %s message with tool calls" % (where, mi, msg["role"]))
    for k, c in enumerate(calls):
        if c["type"] != "function" or not c["function"]["name"] or not isinstance(c["function"]["arguments"], str):
            fail("%s message %d tool call %d: %r" % (where, mi, k, c))
    if msg.get("tool_call_id") is not None and msg["role"] != "tool":
        fail("%s message %d: a %s message with a tool_call_id" % (where, mi, msg["role"]))


def check_tools(where, row, fail):
    if row.get("tools") is None:
        return
    try:
        tools = json.loads(row["tools"])
        ok = isinstance(tools, list) and all(isinstance(t, dict) for t in tools)
    except ValueError:
        ok = False
    if not ok:
        fail("%s: tools is not a JSON array of objects" % where)


def check_sft(path, table, fail):
    """Every message's segments tile its content, in code points, and loss_mask says whether any is trained."""
    for row in table.to_pylist():
        check_tools("%s: row %s" % (path, row["id"]), row, fail)
        for mi, msg in enumerate(row["messages"]):
            check_tool_fields("%s: row %s" % (path, row["id"]), mi, msg, fail)
            content = msg["content"]
            pos = 0
            trained = False
            for seg in msg["segments"]:
                if seg["start"] != pos or seg["end"] < seg["start"]:
                    fail("%s: row %s message %d: segment %s starts at %d, expected %d" % (path, row["id"], mi, seg["role"], seg["start"], pos))
                pos = seg["end"]
                trained = trained or (seg["trainable"] and seg["end"] > seg["start"])
            if pos != len(content):
                fail("%s: row %s message %d: segments end at %d, content has %d code points" % (path, row["id"], mi, pos, len(content)))
            if msg["loss_mask"] != (1 if trained else 0) and not (msg["loss_mask"] == 1 and msg.get("tool_calls")):
                fail("%s: row %s message %d: loss_mask %d, trained segments %s" % (path, row["id"], mi, msg["loss_mask"], trained))


def render_prompt(fmt, prompt):
    """The prompt rendered with the chat format and its generation prompt, as Hugging Face's
    chat templates write it (qwen3: Qwen3's template with enable_thinking=False); None for a
    prompt this check does not render (one that does not end with a user turn)."""
    if not prompt or prompt[-1]["role"] != "user":
        return None
    if fmt == "chatml":
        return "".join("<|im_start|>%s\n%s<|im_end|>\n" % (m["role"], m["content"]) for m in prompt) + "<|im_start|>assistant\n"
    if fmt == "qwen3":
        text = ""
        for i, m in enumerate(prompt):
            c = m["content"]
            if m["role"] == "assistant" and "</think>" in c:
                # Reasoning in an earlier turn is dropped by the template.
                c = c.split("</think>")[-1].lstrip("\n")
            elif m["role"] not in ("system", "user", "assistant"):
                return None
            text += "<|im_start|>%s\n%s<|im_end|>\n" % (m["role"], c)
        return text + "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    return None


class TokenCheck:
    """Hugging Face tokenizers' ids for rl rows (None when it cannot run: say why in .why)."""

    def __init__(self, args, meta):
        self.tok, self.why = None, None
        self.fmt = meta.get(b"redraft.chat_format", b"").decode()
        path = args.tokenizer or meta.get(b"redraft.tokenizer", b"").decode()
        try:
            from tokenizers import Tokenizer
        except ImportError:
            self.why = "Hugging Face tokenizers is not installed"
            return
        if self.fmt not in ("chatml", "qwen3"):
            self.why = "chat format %r is not rendered here" % self.fmt
            return
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            self.why = "tokenizer %r: %s" % (path, e)
            return
        sha = hashlib.sha256(data).hexdigest()
        if sha != meta.get(b"redraft.tokenizer_sha256", b"").decode():
            self.why = "tokenizer %s has sha256 %s, not the shard's" % (path, sha)
            return
        self.tok = Tokenizer.from_str(data.decode())

    def encode(self, text):
        return self.tok.encode(text, add_special_tokens=False).ids


def check_response_messages(path, table, fail):
    """rl/5's response_messages: the messages after the prompt in messages, else one assistant
    message holding the response (with the message struct's null tool fields)."""
    cols = ["group_id", "sample_index", "prompt", "response", "response_messages"]
    cols += ["messages"] if "messages" in table.column_names else []
    for r in table.select(cols).to_pylist():
        msgs = r.get("messages")
        if msgs is not None and len(msgs) > len(r["prompt"]):
            want = msgs[len(r["prompt"]):]
        else:
            want = [{"role": "assistant", "content": r["response"], "tool_calls": None, "tool_call_id": None, "name": None}]
        if r["response_messages"] != want:
            fail("%s: group %s sample %d: response_messages %r, the response is %r"
                 % (path, r["group_id"], r["sample_index"], r["response_messages"], want))


def check_rl_provenance(path, table, fail):
    """rl/6: token_source, token_check and logprobs_reason agree with the token track and logprobs."""
    cols = ["group_id", "sample_index", "token_reason", "token_source", "token_check", "response_ids",
            "logprobs", "logprobs_reason"]
    for r in table.select(cols).to_pylist():
        where = "%s: group %s sample %d" % (path, r["group_id"], r["sample_index"])
        src, check = r["token_source"], r["token_check"]
        if r["token_reason"] is None and src not in ("engine", "tokenizer"):
            fail("%s: token_source %r on a row with a token track" % (where, src))
        if r["token_reason"] is not None and src is not None:
            fail("%s: token_source %r on a row without a token track" % (where, src))
        if check is not None and (src != "engine" or check not in ("match", "mismatch")):
            fail("%s: token_check %r with token_source %r" % (where, check, src))
        n, ids = len(r["logprobs"] or []), r["response_ids"]
        aligned = n == 0 or (ids is not None and n == len(ids))
        # A tokenizer track may have as many ids as the server's logprobs and still other tokens.
        if (r["logprobs_reason"] is None and not aligned) or (r["logprobs_reason"] is not None and aligned and src != "tokenizer"):
            fail("%s: %d logprobs for %s response ids, logprobs_reason %r" % (where, n, None if ids is None else len(ids), r["logprobs_reason"]))


def check_rl_tokens(args, path, meta, table, fail):
    """rl/3 on: token columns; returns (rows with a track, rows compared with HF tokenizers, note)."""
    cols = ["group_id", "sample_index", "prompt", "response", "token_reason", "prompt_ids",
            "response_ids", "input_ids", "labels", "attention_mask"]
    messages = table.column("messages").to_pylist() if "messages" in table.column_names else [None] * table.num_rows
    source = table.column("token_source").to_pylist() if "token_source" in table.column_names else [None] * table.num_rows
    hf = None
    tracked = compared = templated = engine = 0
    for k, (r, msgs) in enumerate(zip(table.select(cols).to_pylist(), messages)):
        where = "%s: group %s sample %d" % (path, r["group_id"], r["sample_index"])
        if msgs is not None:
            for mi, m in enumerate(msgs):
                check_tool_fields(where, mi, m, fail)
            if [(m["role"], m["content"]) for m in msgs[: len(r["prompt"])]] != [(m["role"], m["content"]) for m in r["prompt"]]:
                fail("%s: messages do not start with the prompt" % where)
        track = [r[c] for c in cols[5:]]
        if r["token_reason"] is not None:
            if any(c is not None for c in track):
                fail("%s: token_reason %r with token columns" % (where, r["token_reason"]))
            continue
        tracked += 1
        p, resp, ids, labels, attn = track
        if None in track or not p or not resp:
            fail("%s: token track without token_reason has null or empty columns" % where)
            continue
        # A recorded trajectory's response (several messages) masks its tool results.
        multi = msgs is not None and len(msgs) - len(r["prompt"]) > 1
        resp_ok = labels[len(p):] == resp or (multi and all(l in (-100, i) for l, i in zip(labels[len(p):], resp)) and labels[len(p)] != -100 and labels[-1] != -100)
        if ids != p + resp or labels[: len(p)] != [-100] * len(p) or not resp_ok or attn != [1] * len(ids):
            fail("%s: input_ids/labels/attention_mask are not prompt_ids + response_ids, -100 over the prompt, all ones" % where)
            continue
        if msgs is not None:
            templated += 1
            continue
        if source[k] == "engine":
            engine += 1  # the server's own ids: token_check compares them with the tokenizer
            continue
        if hf is None:
            hf = TokenCheck(args, meta)
        if hf.tok is None:
            continue
        text = render_prompt(hf.fmt, r["prompt"])
        if text is None:
            continue
        compared += 1
        want_p = hf.encode(text)
        response = r["response"].lstrip("\n") if hf.fmt == "qwen3" else r["response"]
        full = hf.encode(text + response + "<|im_end|>")
        if p != want_p:
            fail("%s: prompt_ids differ from tokenizers' (first difference at %d)" % (where, next((i for i, (a, b) in enumerate(zip(p, want_p)) if a != b), min(len(p), len(want_p)))))
        elif full[: len(p)] != p or resp != full[len(p):]:
            fail("%s: response_ids differ from tokenizers' tokens of the prompt and response after the prompt" % where)
    note = ""
    if tracked > templated + engine and (hf is None or hf.tok is None):
        note = "token ids checked for shape only (%s)" % (hf.why if hf else "no tokenizer")
    elif templated:
        note = "%d with tool messages left to python/test_loader.py --template" % templated
    if engine:
        note = "; ".join(x for x in (note, "%d the engine's ids (token_check compares them with the tokenizer)" % engine) if x)
    return tracked, compared, note


def check_dataset(args, manifest, dataset, ds, fail):
    config = manifest["config"]
    version = ds["schema"]
    name, n = version.split("/")
    with open(os.path.join(args.schemas, "%s.v%s.json" % (name, n))) as f:
        desc = json.load(f)
    want = [(c["name"], c["type"], c["nullable"]) for c in desc["columns"]]

    on_disk = sorted(
        os.path.join("data", dataset, p)
        for p in os.listdir(os.path.join(args.out, "data", dataset))
        if p.endswith(".parquet") and not p.startswith(".")
    )
    listed = [s["path"] for s in ds["shards"]]
    if on_disk != listed:
        fail("manifest lists %s, disk has %s" % (listed, on_disk))

    rows = 0
    groups = OrderedDict()
    tokens = [0, 0, ""]
    for shard in ds["shards"]:
        path = os.path.join(args.out, shard["path"])
        with open(path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        if sha != shard["sha256"]:
            fail("%s: sha256 %s, manifest says %s" % (path, sha, shard["sha256"]))
        pf = pq.ParquetFile(path)
        meta = pf.schema_arrow.metadata or {}
        if meta.get(b"redraft.schema", b"").decode() != version:
            fail("%s: metadata redraft.schema = %r" % (path, meta.get(b"redraft.schema")))
        for rg in range(pf.metadata.num_row_groups):
            for c in range(pf.metadata.num_columns):
                codec = pf.metadata.row_group(rg).column(c).compression
                if codec != "ZSTD":
                    fail("%s: row group %d column %d compressed with %s" % (path, rg, c, codec))
                    break
        table = pf.read()
        got = [(f.name, describe(f.type), f.nullable) for f in table.schema]
        if got != want:
            for g, w in zip(got, want):
                if g != w:
                    fail("%s: column %s, schema %s says %s" % (path, g, version, w))
            if len(got) != len(want):
                fail("%s: %d columns, schema says %d" % (path, len(got), len(want)))
        if table.num_rows != shard["rows"]:
            fail("%s: %d rows, manifest says %d" % (path, table.num_rows, shard["rows"]))
        rows += table.num_rows
        if dataset == "sft":
            check_sft(path, table, fail)
            continue
        if dataset == "verl":
            continue
        if dataset == "pairs":
            for r in table.to_pylist():
                if r["chosen"] == r["rejected"] or r["transition"] not in ("i->c", "c->i"):
                    fail("%s: pair %s: chosen equals rejected or transition %r" % (path, r["id"], r["transition"]))
                if "chosen_text" in r:  # pairs/2: one assistant message each, holding the text
                    for side in ("chosen", "rejected"):
                        if r[side] != [{"role": "assistant", "content": r[side + "_text"]}]:
                            fail("%s: pair %s: %s is not one assistant message holding %s_text" % (path, r["id"], side, side))
            continue
        if "response_messages" in table.column_names:
            check_response_messages(path, table, fail)
        if "token_source" in table.column_names:
            check_rl_provenance(path, table, fail)
        if "token_reason" in table.column_names:
            t, c, note = check_rl_tokens(args, path, meta, table, fail)
            tokens = [tokens[0] + t, tokens[1] + c, note or tokens[2]]
        # The tensors a trainer builds: rewards and advantages as float64,
        # with a mask for rows that carry none.
        adv = table.column("advantage").to_numpy(zero_copy_only=False)
        rew = table.column("reward").to_numpy(zero_copy_only=False)
        assert adv.dtype == np.float64 and rew.dtype == np.float64
        if np.isnan(adv).sum() != table.column("advantage").null_count:
            fail("%s: NaN advantages that are not nulls" % path)
        cols = table.select(["group_id", "sample_index", "turn", "reward", "advantage", "group_size",
                             "completion_tokens", "advantage_batch"]).to_pylist()
        for r in cols:
            groups.setdefault(r["group_id"], []).append(r)

    if rows != ds["rows"]:
        fail("%d rows in shards, manifest says %d" % (rows, ds["rows"]))
    if dataset == "verl":
        return "verl: %d shard(s), %d rows, schema %s: columns, checksums, counts verified" % (len(ds["shards"]), rows, version)
    if dataset == "pairs":
        return "pairs: %d shard(s), %d rows, schema %s: columns, checksums, counts verified" % (len(ds["shards"]), rows, version)
    if dataset == "sft":
        return "sft: %d shard(s), %d rows, schema %s: columns, checksums, counts and every segment span verified" % (len(ds["shards"]), rows, version)
    # The manifest counts the (task, turn) groups written; with trajectory
    # grouping, several of them share one advantage group_id.
    written = len({(gid, m["turn"]) for gid, members in groups.items() for m in members})
    if written != ds["groups"]:
        fail("%d (task, turn) groups in shards, manifest says %d" % (written, ds["groups"]))
    estimator = config["advantage"]["estimator"]
    eps = config["advantage"]["eps"]
    checked = 0
    expected = {}
    sizes = {}
    batches = OrderedDict()
    trajectory = config["advantage"].get("group_by") == "trajectory"
    for gid, members in groups.items():
        keys = [(m["turn"], m["sample_index"]) for m in members]
        if keys != sorted(set(keys)):
            fail("group %s: (turn, sample_index) not unique and ordered: %s" % (gid, keys))
        if trajectory:
            # An episode's return is the sum of its turn rewards (null if any
            # is null); every turn row of the episode gets its advantage.
            returns = OrderedDict()
            for m in members:
                k = m["sample_index"]
                if k not in returns:
                    returns[k] = m["reward"]
                elif returns[k] is None or m["reward"] is None:
                    returns[k] = None
                else:
                    returns[k] += m["reward"]
            per, zero = advantages(list(returns.values()), estimator, eps)
            by_index = dict(zip(returns.keys(), per))
            ref = [by_index[m["sample_index"]] for m in members]
            group_n = sum(r is not None for r in returns.values())
        else:
            rewards = [m["reward"] for m in members]
            ref, zero = advantages(rewards, estimator, eps)
            group_n = sum(r is not None for r in rewards)
        if zero and config["advantage"].get("drop_zero_variance"):
            fail("group %s has zero variance but drop_zero_variance is on" % gid)
        expected[gid] = ref
        sizes[gid] = group_n
        if estimator == "reinforce_pp_baseline":
            for pos, (m, a) in enumerate(zip(members, ref)):
                if a is not None:
                    batches.setdefault(m["advantage_batch"], []).append((gid, pos, m, a))
    if estimator == "reinforce_pp_baseline":
        token = config["advantage"].get("whiten") == "token"
        for b, items in batches.items():
            if b is None:
                fail("a row with an advantage has no advantage_batch")
                continue
            vals = whiten([a for _, _, _, a in items], [m["completion_tokens"] if token else 1 for _, _, m, _ in items], eps)
            for (gid, pos, _, _), v in zip(items, vals):
                expected[gid][pos] = v
    for gid, members in groups.items():
        ref = expected[gid]
        for m, a in zip(members, ref):
            got = m["advantage"]
            if (a is None) != (got is None) or (a is not None and abs(a - got) > 1e-9 * max(1.0, abs(a))):
                fail("group %s sample %d: advantage %r, reference %r" % (gid, m["sample_index"], got, a))
            if m["group_size"] != sizes[gid]:
                fail("group %s: group_size %d, want %d" % (gid, m["group_size"], sizes[gid]))
        checked += 1

    tok = ""
    if tokens[0]:
        tok = "; %d token tracks, %d compared with Hugging Face tokenizers%s" % (tokens[0], tokens[1], ", " + tokens[2] if tokens[2] else "")
    return "rl: %d shard(s), %d rows, %d groups, schema %s: columns, checksums, counts and %d groups' %s advantages verified%s" % (
        len(ds["shards"]), rows, len(groups), version, checked, estimator, tok)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--schemas", default=os.path.join(os.path.dirname(__file__), "..", "schemas"))
    ap.add_argument("--tokenizer", help="tokenizer.json of the rl token track (default: the shard's redraft.tokenizer)")
    args = ap.parse_args()
    failures = []

    def fail(msg):
        failures.append(msg)
        print("FAIL:", msg)

    with open(os.path.join(args.out, "manifest.json")) as f:
        manifest = json.load(f)
    summaries = []
    for dataset, ds in sorted(manifest["datasets"].items()):
        summaries.append(check_dataset(args, manifest, dataset, ds, fail))
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("pyarrow %s: %s" % (pa.__version__, "; ".join(summaries)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
