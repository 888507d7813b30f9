#!/usr/bin/env python3
"""reasoning-gym tasks for redraft, and the verifier plug-in that scores them.

  reasoning-gym.py tasks --kinds a,b --per-kind N --seed S [--system NAME] > tasks.jsonl
  reasoning-gym.py serve             the redraft-verifier/1 plug-in (docs/plugins.md)
  reasoning-gym.py score < req.jsonl score_answer called directly on the same requests

Needs the reasoning-gym package (python/requirements.txt pins it; scripts/python-env.sh
builds a virtual environment with it and prints its python).
"""

import argparse
import collections
import importlib.metadata
import json
import math
import sys

import reasoning_gym
from reasoning_gym.factory import DATASETS
from reasoning_gym.utils import SYSTEM_PROMPTS, extract_answer

PROTOCOL = "redraft-verifier/1"
VERSION = importlib.metadata.version("reasoning-gym")

# Fast generators whose entries survive JSON (their scores are the same on the
# regenerated entry and on its JSON form).
DEFAULT_KINDS = (
    "basic_arithmetic,chain_sum,leg_counting,spell_backward,letter_counting,"
    "word_sorting,number_sorting,gcd,lcm,count_bits"
)

# The instruction after the question in a task's prompt: reasoning-gym's own
# answer format (its system prompts ask for <answer>...</answer>, and its
# extract_answer reads the last such pair).
INSTRUCTION = (
    "Give your final answer between <answer> and </answer> tags. Do not explain your "
    "reasoning inside the answer tags, provide only the final answer."
)


def json_safe(x):
    """x with tuples as lists, set members sorted, keys as strings; fails on NaN."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (set, frozenset)):
        return sorted((json_safe(v) for v in x), key=repr)
    if isinstance(x, float) and not math.isfinite(x):
        raise ValueError(f"not a finite number: {x}")
    if x is None or isinstance(x, (str, bool, int, float)):
        return x
    return str(x)


def tasks(args):
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in DATASETS]
    if unknown:
        sys.exit(f"unknown reasoning-gym dataset(s): {', '.join(unknown)} "
                 f"(reasoning-gym {VERSION} has: {', '.join(sorted(DATASETS))})")
    if args.system != "none" and args.system not in SYSTEM_PROMPTS:
        sys.exit(f"--system: want none or one of {', '.join(SYSTEM_PROMPTS)}")
    out = sys.stdout
    for kind in kinds:
        ds = reasoning_gym.create_dataset(kind, size=args.per_kind, seed=args.seed)
        for i in range(args.per_kind):
            entry = ds[i]
            rec = {"id": f"{kind}-{i}"}
            if args.system == "none":
                rec["prompt"] = f"{entry['question']}\n\n{INSTRUCTION}"
            else:
                rec["messages"] = [
                    {"role": "system", "content": SYSTEM_PROMPTS[args.system]},
                    {"role": "user", "content": entry["question"]},
                ]
            answer = entry["answer"]
            rec["reference"] = answer if isinstance(answer, str) else json.dumps(json_safe(answer))
            rec["data_source"] = f"reasoning_gym/{kind}"
            rec["metadata"] = {"reasoning_gym": {
                "dataset": kind, "seed": args.seed, "size": args.per_kind, "index": i,
                "entry": json_safe(entry),
            }}
            out.write(json.dumps(rec, ensure_ascii=False, allow_nan=False) + "\n")


class Datasets:
    """The datasets requests name, re-created on demand (the last 64 kept)."""

    def __init__(self, keep=64):
        self.keep = keep
        self.cache = collections.OrderedDict()

    def get(self, name, seed, size):
        key = (name, seed, size)
        ds = self.cache.pop(key, None)
        if ds is None:
            ds = reasoning_gym.create_dataset(name, size=size, seed=seed)
        self.cache[key] = ds
        while len(self.cache) > self.keep:
            self.cache.popitem(last=False)
        return ds


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def rebuild(rg, datasets):
    """(dataset, entry, detail) for a task's reasoning_gym metadata, or a reason string.

    The entry is regenerated from dataset/seed/size/index (score_answer then sees
    exactly the entry reasoning-gym made) when those are there and the result is
    the stored entry; the stored entry is used when they are missing or when the
    regenerated entry differs from it (another reasoning-gym version): it is what
    the model was asked.
    """
    name = rg.get("dataset")
    if not isinstance(name, str) or name not in DATASETS:
        return f"unknown reasoning-gym dataset {name!r} (reasoning-gym {VERSION})"
    seed, size, index = rg.get("seed"), rg.get("size"), rg.get("index")
    stored = rg.get("entry")
    if stored is not None and not (isinstance(stored, dict) and "answer" in stored):
        return "metadata.reasoning_gym.entry is not an object with an answer"
    note = None
    if is_int(seed) and is_int(size) and is_int(index):
        if not 0 <= index < size:
            return f"metadata.reasoning_gym.index {index} is outside the dataset's size {size}"
        ds = datasets.get(name, seed, size)
        entry = ds[index]
        if stored is None or json_safe(entry) == stored:
            return ds, entry, {"dataset": name, "entry": "regenerated"}
        note = "the entry regenerated from seed/size/index differs from the stored one"
    elif stored is None:
        return "metadata.reasoning_gym has neither an entry nor integer seed, size and index"
    else:
        ds = reasoning_gym.create_dataset(name, size=size if is_int(size) and size > 0 else 1,
                                          seed=seed if is_int(seed) else 0)
    detail = {"dataset": name, "entry": "stored"}
    if note:
        detail["note"] = note
    return ds, stored, detail


def verify(req, datasets):
    """The answer (without its id) to one request."""
    meta = req.get("metadata")
    rg = meta.get("reasoning_gym") if isinstance(meta, dict) else None
    if not isinstance(rg, dict):
        return {"score": None, "reason": "the task's metadata has no reasoning_gym object"}
    got = rebuild(rg, datasets)
    if isinstance(got, str):
        return {"score": None, "reason": got}
    ds, entry, detail = got
    response = req.get("response")
    if not isinstance(response, str):
        return {"score": None, "reason": "the request's response is not a string"}
    answer = extract_answer(response)
    try:
        score = ds.score_answer(answer, entry)
    except Exception as e:  # a scorer that cannot read this answer
        return {"score": None, "reason": f"score_answer raised {type(e).__name__}: {e}", "detail": detail}
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        return {"score": None, "reason": f"score_answer returned {score!r}", "detail": detail}
    ans = {"score": float(score), "correct": score == 1, "detail": detail}
    if answer is None:
        ans["reason"] = "no <answer>...</answer> in the response"
    else:
        ans["answer"] = answer
    return ans


def serve(_args):
    out = sys.stdout
    sys.stdout = sys.stderr  # a stray print() must not corrupt the protocol
    out.write(json.dumps({"protocol": PROTOCOL, "name": "reasoning-gym", "version": VERSION}) + "\n")
    out.flush()
    datasets = Datasets()
    for line in iter(sys.stdin.readline, ""):
        if not line.strip():
            continue
        try:
            req = json.loads(line)
        except ValueError as e:
            print(f"reasoning-gym plug-in: a request line that is not JSON: {e}", file=sys.stderr)
            continue
        rid = req.get("id") if isinstance(req, dict) else None
        if not isinstance(rid, str):
            print("reasoning-gym plug-in: a request without a string id", file=sys.stderr)
            continue
        try:
            ans = verify(req, datasets)
        except Exception as e:  # never let one request end the plug-in
            ans = {"score": None, "reason": f"reasoning-gym plug-in error: {type(e).__name__}: {e}"}
        ans = {"id": rid, **ans}
        out.write(json.dumps(ans, ensure_ascii=False, allow_nan=False) + "\n")
        out.flush()


def score(_args):
    """score_answer(extract_answer(response), entry) for each request on stdin,
    the entry made by reasoning-gym from the metadata's dataset, seed, size and
    index: the reference the plug-in's scores are checked against."""
    for line in sys.stdin:
        req = json.loads(line)
        out = {"id": req.get("id"), "score": None}
        try:
            rg = req["metadata"]["reasoning_gym"]
            ds = reasoning_gym.create_dataset(rg["dataset"], size=rg["size"], seed=rg["seed"])
            out["score"] = ds.score_answer(extract_answer(req["response"]), ds[rg["index"]])
        except Exception as e:
            out["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tasks", help="write redraft task records (JSONL) to stdout")
    t.add_argument("--kinds", default=DEFAULT_KINDS, help="comma-separated reasoning-gym datasets")
    t.add_argument("--per-kind", type=int, default=100, help="tasks per dataset (its size)")
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--system", default="none",
                   help="none: a prompt with the answer instruction after the question; or a "
                        "reasoning-gym system prompt name (default, DeepSeekZero, ...): messages")
    t.set_defaults(run=tasks)
    sub.add_parser("serve", help="be a redraft-verifier/1 plug-in on stdin/stdout").set_defaults(run=serve)
    sub.add_parser("score", help="score requests (JSONL on stdin) with score_answer directly").set_defaults(run=score)
    args = p.parse_args()
    if getattr(args, "per_kind", 1) < 1:
        p.error("--per-kind must be at least 1")
    args.run(args)


if __name__ == "__main__":
    main()
