"""Times Python graders on bench/pygrade's corpus and scores them against its
labels. Called by bench/pygrade/run.sh, once per environment; appends one
JSON object per measured grader to OUT.

  bench.py GRADERS CORPUS.jsonl PUBLIC_CASES.jsonl OUT.jsonl
  GRADERS: comma-separated from redraft, mathverify, verl

Every grader sees the same responses in the same order, one process, one
thread (the batch row says how many), after a warm-up of 20; each is timed
BENCH_REPEAT (3) times and its fastest pass counts. Agreement:
  public  the 388 asserted public cases, each grader called the way its own
          project calls it (Math-Verify with each case's options, as in
          bench/grade; verl's string grader on the \\boxed content or the bare text)
  labels  the distinct labelled responses of the corpus (GSM8K is_correct,
          MR-GSM8K answer correctness, reference solutions), excluding the
          public cases and the repeats
"""
import json
import os
import sys
import time


def load(path):
    return [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]


REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))


def timed(fn, items, warm=20):
    """fn over every item, REPEAT times: the verdicts and the fastest pass's
    seconds (the machine is shared: the fastest pass is the least
    disturbed; every grader is measured the same way)."""
    for it in items[:warm]:
        fn(it)
    best = None
    for _ in range(REPEAT):
        start = time.perf_counter()
        out = [fn(it) for it in items]
        secs = time.perf_counter() - start
        best = secs if best is None else min(best, secs)
    return out, best


def row(name, version, items, verdicts, secs, public, procs=1):
    lab = [(v, it["label"]) for v, it in zip(verdicts, items)
           if it["label"] is not None and not it["repeat"] and it["source"] != "public"]
    return {"grader": name, "version": version, "procs": procs, "n": len(items), "seconds": secs,
            "per_sec": len(items) / secs, "correct": sum(bool(v) for v in verdicts),
            "labels_agree": sum(bool(v) == l for v, l in lab), "labels_total": len(lab),
            "public_agree": public[0], "public_total": public[1]}


def bench_redraft(items, cases):
    import redraft_grade as rg

    golds = [it["gold"] for it in items]
    preds = [it["response"] for it in items]
    pub = sum(rg.verify(c["gold"] or "", c["prediction"] or "") == c["expected"] for c in cases), len(cases)
    v = "redraft_grade " + rg.__version__
    rows = []
    out, secs = timed(lambda it: rg.verify(it["gold"], it["response"]), items)
    rows.append(row("redraft_grade.verify, 1 thread", v, items, out, secs, pub))
    out, secs = timed(lambda it: rg.grade(it["gold"], it["response"])["correct"], items)
    rows.append(row("redraft_grade.grade (dict), 1 thread", v, items, out, secs, pub))
    out, secs = timed(lambda it: rg.compute_score(it["data_source"], it["response"], it["gold"])["score"] == 1.0, items)
    rows.append(row("redraft_grade.compute_score (verl form), 1 thread", v, items, out, secs, pub))
    out, secs = timed(lambda _: rg.verify_batch(golds, preds), [None], warm=1)
    out = out[0]
    rows.append(row(f"redraft_grade.verify_batch, {rg.cpu_count()} threads", v, items, out, secs, pub, procs=rg.cpu_count()))
    return rows


def bench_mathverify(items, cases, root):
    from importlib.metadata import version

    sys.path.insert(0, os.path.join(root, "bench", "grade"))
    import mathverify_bench as mvb  # bench/grade's Math-Verify calls: gold wrapping, per-case options

    pub = mvb.public_agreement(os.path.join(root, "rewards", "mathgrade", "testdata", "public_cases.jsonl"))
    out, secs = timed(lambda it: mvb.grade(it["response"], it["gold"])[0], items)
    return [row("Math-Verify parse+verify, 1 process", "math-verify " + version("math-verify"), items, out, secs,
                (pub["agree"], pub["total"]))]


def bench_verl(items, cases):
    from importlib.metadata import version

    from verl.utils.reward_score import default_compute_score, math_reward

    def boxed_or_bare(s):
        b = math_reward.last_boxed_only_string(s)
        if b is not None:
            try:
                return math_reward.remove_boxed(b)
            except Exception:
                return s
        return s.strip().strip("$")

    def string_grader(gold, pred):
        try:
            return bool(math_reward.is_equiv(boxed_or_bare(pred), boxed_or_bare(gold)))
        except Exception:
            return False

    pub = sum(string_grader(c["gold"] or "", c["prediction"] or "") == c["expected"] for c in cases), len(cases)
    v = "verl " + version("verl")
    rows = []
    out, secs = timed(lambda it: math_reward.compute_score(it["response"], it["gold"]) == 1.0, items)
    rows.append(row("verl math_reward.compute_score, 1 process", v, items, out, secs, pub))
    out, secs = timed(lambda it: float(default_compute_score(it["data_source"], it["response"], it["gold"])) == 1.0, items)
    rows.append(row("verl default_compute_score (by data source), 1 process", v, items, out, secs, pub))
    return rows


def main():
    graders, corpus, public, out_path = sys.argv[1].split(","), sys.argv[2], sys.argv[3], sys.argv[4]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    items, cases = load(corpus), load(public)
    rows = []
    for g in graders:
        print(f"timing {g} on {len(items)} responses ...", file=sys.stderr)
        if g == "redraft":
            rows += bench_redraft(items, cases)
        elif g == "mathverify":
            rows += bench_mathverify(items, cases, root)
        elif g == "verl":
            rows += bench_verl(items, cases)
        else:
            sys.exit(f"unknown grader {g}")
    with open(out_path, "a", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
