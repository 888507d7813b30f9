"""Read a redraft output directory into the arrays a PyTorch training loop takes.

Only pyarrow and numpy are needed; torch and Hugging Face `datasets` are used when installed.

    import redraft_loader as rl
    for batch in rl.sft_batches("out/splice", batch_size=8):      # sft/2 or sft/4 (token track)
        batch = rl.to_torch(batch)  # input_ids, labels (-100 masked), attention_mask: int64 tensors
    for batch in rl.rl_batches("out/quickstart", batch_size=64, encode=my_encode):
        ...                         # + advantages, advantage_mask, rewards (float32)

Shards are read in the order the manifest lists them, so batches follow the output order
(groups whole, samples of a group adjacent).
"""
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

IGNORE_INDEX = -100


def manifest(out):
    with open(os.path.join(out, "manifest.json"), encoding="utf-8") as f:
        return json.load(f)


def shard_paths(out, dataset):
    """The dataset's shard files, as the manifest lists them."""
    ds = manifest(out)["datasets"].get(dataset)
    if ds is None:
        raise KeyError("%s has no %s dataset" % (out, dataset))
    return [os.path.join(out, s["path"]) for s in ds["shards"]]


def read_table(out, dataset, columns=None):
    """All shards of a dataset as one pyarrow Table."""
    tables = [pq.read_table(p, columns=columns) for p in shard_paths(out, dataset)]
    if not tables:
        return None
    return pa.concat_tables(tables)


def shard_metadata(out, dataset):
    """The redraft.* key/value metadata of the dataset's first shard."""
    paths = shard_paths(out, dataset)
    if not paths:
        return {}
    meta = pq.ParquetFile(paths[0]).schema_arrow.metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if k.startswith(b"redraft.")}


def load_hf(out, dataset, split="train", cache_dir=None):
    """The dataset through Hugging Face `datasets`, using the configs of the directory's README.md."""
    import datasets  # optional dependency

    return datasets.load_dataset(out, dataset, split=split, cache_dir=cache_dir)


def pad(seqs, value, dtype=np.int64):
    """Right-pad sequences into a 2-D array."""
    width = max((len(s) for s in seqs), default=0)
    outa = np.full((len(seqs), width), value, dtype=dtype)
    for i, s in enumerate(seqs):
        outa[i, : len(s)] = s
    return outa


def _collate(ids, labels, pad_id):
    input_ids = pad(ids, pad_id)
    lab = pad(labels, IGNORE_INDEX)
    attn = pad([np.ones(len(s), dtype=np.int64) for s in ids], 0)
    return {"input_ids": input_ids, "labels": lab, "attention_mask": attn}


def _batches(out, dataset, columns, batch_size):
    for path in shard_paths(out, dataset):
        pf = pq.ParquetFile(path)
        for rb in pf.iter_batches(batch_size=batch_size, columns=columns):
            yield rb


def _rebatch(out, dataset, columns, batch_size):
    """Record batches of exactly batch_size rows (the last one shorter), across shards."""
    pending = []
    n = 0
    for rb in _batches(out, dataset, columns, batch_size):
        pending.append(rb)
        n += rb.num_rows
        while n >= batch_size:
            t = pa.Table.from_batches(pending)
            yield t.slice(0, batch_size)
            rest = t.slice(batch_size)
            pending, n = rest.to_batches(), rest.num_rows
    if n:
        yield pa.Table.from_batches(pending)


def openai_messages(messages):
    """A row's messages (sft, or rl/4's messages column) as plain OpenAI chat messages, for a chat
    template: role and content, an assistant message's tool_calls, a tool result's tool_call_id
    and name; the masks (loss_mask, segments) and the null fields that Parquet gives every
    message are left out (some templates test `'tool_calls' in message`)."""
    out = []
    for m in messages or []:
        msg = {"role": m["role"], "content": m["content"]}
        for key in ("tool_calls", "tool_call_id", "name"):
            if m.get(key) is not None:
                msg[key] = m[key]
        out.append(msg)
    return out


def row_tools(row):
    """A row's tools column (JSON text) as the list of tool schemas a chat template takes; None
    when the row declares none."""
    t = row.get("tools")
    return None if t is None else json.loads(t)


def sft_batches(out, batch_size, pad_id=0):
    """Padded batches of the sft token track (schemas sft/2 and sft/4): input_ids, labels,
    attention_mask (int64)."""
    schema = manifest(out)["datasets"]["sft"]["schema"]
    if schema not in ("sft/2", "sft/4"):
        raise ValueError("%s: sft schema %s has no token track; run with a tokenizer (sft/4)" % (out, schema))
    for t in _rebatch(out, "sft", ["id", "input_ids", "labels", "attention_mask"], batch_size):
        ids = [np.asarray(x, dtype=np.int64) for x in t.column("input_ids").to_pylist()]
        labels = [np.asarray(x, dtype=np.int64) for x in t.column("labels").to_pylist()]
        b = _collate(ids, labels, pad_id)
        b["id"] = t.column("id").to_pylist()
        yield b


def rl_batches(out, batch_size, encode=None, pad_id=0):
    """Batches of the rl dataset with advantages, rewards and their masks (float32).

    A null advantage (a failed sample) is 0 in `advantages` and 0 in `advantage_mask`. With
    `encode(prompt_messages, response) -> (ids, labels)` (your tokenizer and chat template), the
    batch also has input_ids, labels and attention_mask, padded. Without it, an rl/3-or-later output
    written with a tokenizer gives its stored token track (input_ids, labels; a row without one,
    see token_reason, is all padding and 0 in `token_mask`).
    """
    cols = ["group_id", "sample_index", "prompt", "response", "reward", "advantage"]
    stored = encode is None and manifest(out)["datasets"]["rl"]["schema"] not in ("rl/1", "rl/2")
    if stored:
        cols += ["input_ids", "labels"]
    for t in _rebatch(out, "rl", cols, batch_size):
        adv = t.column("advantage").to_numpy(zero_copy_only=False).astype(np.float64)
        rew = t.column("reward").to_numpy(zero_copy_only=False).astype(np.float64)
        b = {
            "group_id": t.column("group_id").to_pylist(),
            "sample_index": t.column("sample_index").to_numpy(),
            "advantages": np.nan_to_num(adv, nan=0.0).astype(np.float32),
            "advantage_mask": (~np.isnan(adv)).astype(np.float32),
            "rewards": np.nan_to_num(rew, nan=0.0).astype(np.float32),
            "reward_mask": (~np.isnan(rew)).astype(np.float32),
        }
        if encode is not None:
            ids, labels = [], []
            for prompt, response in zip(t.column("prompt").to_pylist(), t.column("response").to_pylist()):
                i, l = encode(prompt, response)
                ids.append(np.asarray(i, dtype=np.int64))
                labels.append(np.asarray(l, dtype=np.int64))
            b.update(_collate(ids, labels, pad_id))
        elif stored:
            ids = t.column("input_ids").to_pylist()
            if any(x is not None for x in ids):
                labels = t.column("labels").to_pylist()
                b["token_mask"] = np.array([x is not None for x in ids], dtype=np.float32)
                b.update(_collate([np.asarray(x or [], dtype=np.int64) for x in ids],
                                  [np.asarray(x or [], dtype=np.int64) for x in labels], pad_id))
        yield b


def to_torch(batch):
    """The batch's arrays as torch tensors (unchanged when torch is not installed)."""
    try:
        import torch
    except ImportError:
        return batch
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in batch.items()}
