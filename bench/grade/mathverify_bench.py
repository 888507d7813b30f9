"""Times Math-Verify on redraft's benchmark responses and scores it on the
public conformance cases. Called by bench/grade/run.sh; writes one JSON
object to the path given as the third argument.

Usage: mathverify_bench.py RESPONSES.jsonl PUBLIC_CASES.jsonl OUT.json
"""

import json
import sys
import time
from importlib.metadata import version

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify


def gold_text(gold):
    # Math-Verify's documented usage wraps a bare LaTeX gold answer in $...$
    # so that its LaTeX extraction finds it.
    if "$" in gold or "\\boxed" in gold or "\\(" in gold or "\\[" in gold or "\n" in gold:
        return gold
    return "$" + gold + "$"


def grade(response, gold, **kw):
    try:
        g = parse(gold_text(gold))
        p = parse(response)
        return bool(verify(g, p, **kw)), False
    except Exception:  # Math-Verify raises on some inputs; count as wrong
        return False, True


def public_agreement(path):
    """Each case as Math-Verify's own tests call it where the options are
    Math-Verify options (match_types, precision, strict,
    allow_set_relation_comp); default parse and verify otherwise."""
    agree = total = 0
    for line in open(path, encoding="utf-8"):
        if not line.strip():
            continue
        c = json.loads(line)
        total += 1
        gold, pred = c["gold"] or "", c["prediction"] or ""
        opts = c.get("options") or {}
        cfgs = []
        for m in opts.get("match_types", ["latex", "expr"]):
            cfgs.append(LatexExtractionConfig() if m == "latex" else ExprExtractionConfig())
        vkw = {}
        if "precision" in opts:
            vkw["float_rounding"] = opts["precision"]
        if "strict" in opts:
            vkw["strict"] = opts["strict"]
        if "allow_set_relation_comp" in opts:
            vkw["allow_set_relation_comp"] = opts["allow_set_relation_comp"]
        try:
            g = parse(gold, extraction_config=cfgs)
            p = parse(pred, extraction_config=cfgs)
            ok = bool(verify(g, p, **vkw))
        except Exception:
            ok = False
        agree += ok == c["expected"]
    return {"agree": agree, "total": total}


def main():
    resp_path, public_path, out_path = sys.argv[1:4]
    items = [json.loads(l) for l in open(resp_path, encoding="utf-8") if l.strip()]
    # Warm up (imports, grammar caches) outside the timed loop.
    for it in items[:20]:
        grade(it["response"], it["gold"])
    verdicts, errors = [], 0
    start = time.perf_counter()
    for it in items:
        ok, err = grade(it["response"], it["gold"])
        verdicts.append(ok)
        errors += err
    secs = time.perf_counter() - start
    out = {
        "procs": 1,
        "n": len(items),
        "avg_bytes": sum(len(it["response"]) for it in items) // max(len(items), 1),
        "seconds": secs,
        "per_sec": len(items) / secs,
        "correct": sum(verdicts),
        "verdicts": verdicts,
        "public": public_agreement(public_path),
        "version": version("math-verify"),
        "errors": errors,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
