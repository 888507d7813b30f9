#!/usr/bin/env python3
"""Check a redraft output directory the way a PyTorch trainer's data loader sees it.

Reads every rl shard with pyarrow and checks, independently of the Go code:
  * the manifest lists exactly the shards on disk, with matching sha256 and row counts;
  * every shard says its schema version in its metadata, is zstd-compressed, and
    has the column names, types and nullability of schemas/<dataset>.v<N>.json;
  * every group's advantages recompute from its rewards under the run's estimator
    (float64, eps from the manifest; all-equal and one-member groups get 0, null
    rewards are left out and get no advantage);
  * the arrays a trainer needs (rewards, advantages, loss weights) build as numpy arrays.

Usage: check_shards.py OUTPUT_DIR [--schemas DIR]
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
    """pyarrow type -> redraft's schema language (see export/describe.go)."""
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


def check_sft(path, table, fail):
    """Every message's segments tile its content, in code points, and loss_mask says whether any is trained."""
    for row in table.to_pylist():
        for mi, msg in enumerate(row["messages"]):
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
            if msg["loss_mask"] != (1 if trained else 0):
                fail("%s: row %s message %d: loss_mask %d, trained segments %s" % (path, row["id"], mi, msg["loss_mask"], trained))


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
            for r in table.select(["id", "chosen", "rejected", "transition"]).to_pylist():
                if r["chosen"] == r["rejected"] or r["transition"] not in ("i->c", "c->i"):
                    fail("%s: pair %s: chosen equals rejected or transition %r" % (path, r["id"], r["transition"]))
            continue
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

    return "rl: %d shard(s), %d rows, %d groups, schema %s: columns, checksums, counts and %d groups' %s advantages verified" % (
        len(ds["shards"]), rows, len(groups), version, checked, estimator)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--schemas", default=os.path.join(os.path.dirname(__file__), "..", "schemas"))
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
