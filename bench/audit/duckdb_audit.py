"""The full audit of an rl dataset in DuckDB SQL, independent of redraft's Go code.

    duckdb_audit.py PATH [--threads N]            print the report as JSON (the shape of
                                                  `redraft audit --json`)
    duckdb_audit.py PATH --bench [--threads N]    time it (3 runs) and print one JSON line

PATH is an output directory (the rl shards its manifest lists, else data/rl/*.parquet), a
directory of Parquet files or one shard. Every number comes from SQL over the shards (the
metric definitions are docs/audit.md's): e2e's TestAuditMatchesDuckDB compares this report with
redraft's on the quickstart and on a SCoRe run, and bench/audit/run.sh times both on the same
shards. Python only orders the slices and formats the JSON.
"""
import decimal
import glob
import json
import os
import resource
import sys
import time

import duckdb

HIST_BINS = 20
MAX_DISTINCT = 10
LENGTH_BINS = 14
DIMS = ["all", "data_source", "turn", "model"]


def shard_paths(path):
    if not os.path.isdir(path):
        return [path]
    try:
        with open(os.path.join(path, "manifest.json")) as f:
            m = json.load(f)
        return [os.path.join(path, s["path"]) for s in m["datasets"]["rl"]["shards"] or []]
    except (OSError, KeyError, ValueError):
        pass
    paths = sorted(glob.glob(os.path.join(path, "data", "rl", "*.parquet")))
    return paths or sorted(glob.glob(os.path.join(path, "*.parquet")))


def recipe_name(path):
    try:
        with open(os.path.join(path, "manifest.json")) as f:
            m = json.load(f)
        name = (m.get("config") or {}).get("name") or m.get("source")
        if name:
            return name
    except (OSError, ValueError):
        pass
    return os.path.basename(os.path.normpath(path))


def lit(v):
    """A float as an exact SQL literal."""
    return "CAST('%r' AS DOUBLE)" % float(v)


class Audit:
    def __init__(self, con, paths):
        self.con = con
        self.paths = [os.path.abspath(p) for p in paths]

    def q(self, sql):
        # Sums of integers come back as DECIMAL/HUGEINT: exact, then plain numbers.
        return [tuple(int(v) if isinstance(v, decimal.Decimal) and v == v.to_integral_value() else
                      float(v) if isinstance(v, decimal.Decimal) else v for v in r)
                for r in self.con.execute(sql).fetchall()]

    def run(self):
        con = self.con
        con.execute("CREATE OR REPLACE TEMP TABLE files AS SELECT * FROM (VALUES %s) t(fname, fi)" %
                    ", ".join("(%s, %d)" % (sqlstr(p), i) for i, p in enumerate(self.paths)))
        cols = {r[0] for r in self.q("DESCRIBE SELECT * FROM read_parquet(%s)" % sqlstr(self.paths[0]))}

        def col(name, typ):
            return name if name in cols else "CAST(NULL AS %s)" % typ

        length = "coalesce(CAST(%s AS BIGINT), length(response))" % col("completion_tokens", "INTEGER")
        logprobs = ("list_filter(list_transform(logprobs, lambda x: x.logprob), lambda x: x IS NOT NULL AND NOT isinf(x))"
                    if "logprobs" in cols else "CAST(NULL AS DOUBLE[])")
        judge_scores = ("list_filter(list_transform(judge_scores, lambda x: x.score), lambda x: x IS NOT NULL)"
                        if "judge_scores" in cols else "CAST(NULL AS DOUBLE[])")
        comps = ("reward_components" if "reward_components" in cols else
                 "CAST(NULL AS STRUCT(name VARCHAR, value DOUBLE, weight DOUBLE, reason VARCHAR)[])")
        # One row per rl row, in (shard, row) order, with what the metrics need.
        con.execute(f"""
        CREATE OR REPLACE TEMP TABLE b AS
        WITH raw AS (
          SELECT f.fi * 1099511627776 + p.file_row_number AS pos, p.*
          FROM read_parquet([{", ".join(sqlstr(x) for x in self.paths)}], filename = true, file_row_number = true) p
          JOIN files f ON f.fname = p.filename
        ), l AS (
          SELECT pos, coalesce(task_id, '') AS task_id, coalesce(group_id, '') AS group_id,
            coalesce(sample_index, 0) AS sample_index, coalesce(turn, 0) AS turn,
            coalesce(data_source, '') AS data_source, coalesce(model, '') AS model,
            {length} AS len, {col("completion_tokens", "INTEGER")} IS NOT NULL AS len_tok,
            nullif({col("finish_reason", "VARCHAR")}, '') AS finish,
            {col("extracted_answer", "VARCHAR")} AS ans,
            hash({col("extracted_answer", "VARCHAR")}) AS ah,
            {col("correct", "BOOLEAN")} AS correct,
            CASE WHEN {col("correct", "BOOLEAN")} THEN hash(response) END AS rh,
            {col("error", "VARCHAR")} IS NOT NULL AS failed,
            nullif({col("transition", "VARCHAR")}, '') AS transition,
            reward, coalesce({col("reward_reason", "VARCHAR")}, '') AS reward_reason,
            {comps} AS comps,
            {col("consensus_ratio", "DOUBLE")} AS cons_ratio,
            {col("consensus_label_correct", "BOOLEAN")} AS cons_ok,
            {col("judge_flagged", "BOOLEAN")} AS flagged,
            {col("advantage", "DOUBLE")} AS adv,
            {logprobs} AS lp,
            list_filter({comps}, lambda c: c.name = 'judge' AND c.value IS NOT NULL) AS jc,
            {judge_scores} AS js,
            coalesce(group_id, '') IS DISTINCT FROM lag(coalesce(group_id, '')) OVER (ORDER BY pos) AS first
          FROM raw
        )
        SELECT * EXCLUDE (lp, jc, js),
          sum(CAST(first AS INTEGER)) OVER (ORDER BY pos) AS grp,
          row_number() OVER (ORDER BY pos) AS idx,
          CASE WHEN len(lp) > 0 THEN -list_sum(lp) / len(lp) END AS ent,
          coalesce(len(lp), 0) AS ntok,
          CASE WHEN len(jc) > 0 THEN jc[-1].value
               WHEN len(js) > 0 THEN list_sum(js) / len(js) END AS judge,
          {" + ".join("CAST(len >= %d AS INTEGER)" % (1 << (i + 4)) for i in range(1, LENGTH_BINS))} AS lbin
        FROM l
        """)
        nrows = self.q("SELECT count(*) FROM b")[0][0]
        # Whole-group facts: zero reward variance, one key per dimension.
        con.execute("""
        CREATE OR REPLACE TEMP TABLE g AS
        SELECT grp, count(reward) < 2 OR min(reward) = max(reward) AS zero,
          count(DISTINCT data_source) = 1 AS w_data_source, count(DISTINCT turn) = 1 AS w_turn,
          count(DISTINCT model) = 1 AS w_model,
          max(CASE WHEN first THEN CAST(cons_ok AS INTEGER) END) AS g_cons_ok,
          max(CASE WHEN first THEN cons_ratio END) AS g_cons_ratio
        FROM b GROUP BY grp
        """)
        # Every row once per slice it belongs to (the columns the per-slice
        # metrics read; answers as hashes).
        scols = ("grp, idx, turn, len, len_tok, finish, ah, ans IS NOT NULL AS has_ans, correct, rh, failed, transition, "
                 "reward, reward_reason, flagged, adv, ent, ntok, judge, lbin")
        con.execute(f"""
        CREATE OR REPLACE TEMP TABLE s AS
        SELECT 'all' AS dim, 'all' AS key, TRUE AS whole, {scols} FROM b
        UNION ALL SELECT 'data_source', data_source, w_data_source, {scols} FROM b JOIN g USING (grp)
        UNION ALL SELECT 'turn', CAST(turn AS VARCHAR), w_turn, {scols} FROM b JOIN g USING (grp)
        UNION ALL SELECT 'model', model, w_model, {scols} FROM b JOIN g USING (grp)
        """)
        # Histogram ranges over the whole dataset (what the Parquet statistics give).
        rng = {}
        rng["reward"] = self.q("SELECT min(reward), max(reward) FROM b WHERE NOT isnan(reward)")[0]
        rng["adv"] = self.q("SELECT min(adv), max(adv) FROM b WHERE NOT isnan(adv)")[0]
        rng["comp"] = self.q("SELECT min(c.value), max(c.value) FROM (SELECT unnest(comps) AS c FROM b) WHERE NOT isnan(c.value)")[0]
        lpmin = None
        if "logprobs" in cols:
            lpmin = self.q("""SELECT min(x) FROM (SELECT unnest(list_transform(logprobs, lambda x: x.logprob)) AS x
                FROM read_parquet([%s])) WHERE NOT isnan(x)""" % ", ".join(sqlstr(x) for x in self.paths))[0][0]
        rng["ent"] = (0.0, max(0.0, -lpmin)) if lpmin is not None else (None, None)

        slices = {}
        for dim, key, rows, groups in self.q("""
            SELECT dim, key, count(*), count(DISTINCT grp) FROM s GROUP BY dim, key"""):
            slices[(dim, key)] = new_slice(dim, key, rows, groups)

        def put(rows, fn):
            for r in rows:
                fn(slices[(r[0], r[1])], *r[2:])

        # reward group
        def reward(sl, null, failed, graded, correct, zero):
            rw = sl["reward"]
            rw.update(null=null, null_rate=ratio(null, sl["rows"]), failed=failed, failed_rate=ratio(failed, sl["rows"]),
                      graded=graded, correct=correct, accuracy=ratio(correct, graded))
            sl["advantage"].update(zero_variance_groups=zero, frac_zero_variance=ratio(zero, sl["groups"]))
        put(self.q("""
            SELECT dim, key, count(*) FILTER (reward IS NULL), count(*) FILTER (failed), count(correct),
              count(*) FILTER (correct), count(DISTINCT grp) FILTER (zero)
            FROM s JOIN g USING (grp) GROUP BY dim, key"""), reward)
        put(self.q("SELECT dim, key, reward_reason, count(*) FROM s WHERE reward IS NULL GROUP BY ALL"),
            lambda sl, r, n: sl["reward"]["null_reasons"].__setitem__(r, n))
        for name, d in self.dists("s", "reward", rng["reward"]).items():
            slices[name]["reward"].update(d)
        for name, d in self.dists("s", "adv", rng["adv"]).items():
            slices[name]["advantage"].update(d)
        for name, d in self.dists("s", "ent", rng["ent"]).items():
            slices[name]["entropy"]["dist"] = d

        # reward components
        con.execute("""CREATE OR REPLACE TEMP TABLE c AS
            WITH u AS (
              SELECT data_source, CAST(turn AS VARCHAR) AS turn, model, c.name AS name, c.value AS value, c.weight AS weight,
                coalesce(c.reason, '') AS reason
              FROM (SELECT data_source, turn, model, unnest(comps) AS c FROM b)
            )
            SELECT 'all' AS dim, 'all' AS key, name, value, weight, reason FROM u
            UNION ALL SELECT 'data_source', data_source, name, value, weight, reason FROM u
            UNION ALL SELECT 'turn', turn, name, value, weight, reason FROM u
            UNION ALL SELECT 'model', model, name, value, weight, reason FROM u""")
        comps_by = {}
        for dim, key, name, weights, null in self.q("""
            SELECT dim, key, name, list_sort(list_distinct(list(weight))), count(*) FILTER (value IS NULL)
            FROM c GROUP BY ALL"""):
            comps_by[(dim, key, name)] = {"name": name, "weights": weights, "dist": empty_dist(), "null": null, "null_reasons": {}}
        for dim, key, name, reason, n in self.q("SELECT dim, key, name, reason, count(*) FROM c WHERE value IS NULL GROUP BY ALL"):
            comps_by[(dim, key, name)]["null_reasons"][reason] = n
        for k, d in self.dists("c", "value", rng["comp"], extra=["name"]).items():
            comps_by[k]["dist"] = d
        for k in sorted(comps_by):
            slices[k[:2]]["reward_components"].append(comps_by[k])

        # per slice-group: pass@k, maj@k, consensus, exploration
        # Votes: per slice-group and answer, its count, first row and that
        # row's verdict; the winner is the answer with the most votes stated
        # first (largest n * 2^40 - first row), a tie when the two largest
        # counts are equal.
        con.execute("""CREATE OR REPLACE TEMP TABLE votes AS
            WITH v AS (
              SELECT dim, key, grp, ah, count(*) AS n, arg_min(coalesce(correct, FALSE), idx) AS ok, min(idx) AS p,
                bool_or(coalesce(correct, FALSE)) AS any_ok
              FROM s WHERE has_ans GROUP BY ALL
            )
            SELECT dim, key, grp, arg_max(ok, n * 1099511627776 - p) AS ok, max(n, 2) AS top2,
              count(*) AS d_ans, count(*) FILTER (any_ok) AS d_corr_ans
            FROM v GROUP BY ALL""")
        con.execute("""CREATE OR REPLACE TEMP TABLE sg AS
            WITH r AS (SELECT dim, key, grp, count(DISTINCT rh) AS d_resp FROM s WHERE correct GROUP BY ALL)
            SELECT dim, key, grp, any_value(whole) AS whole, count(*) AS k, count(correct) AS graded,
              bool_or(coalesce(correct, FALSE)) AS any_correct,
              coalesce(any_value(r.d_resp), 0) AS d_resp,
              coalesce(any_value(v.d_corr_ans), 0) AS d_corr_ans, coalesce(any_value(v.d_ans), 0) AS d_ans
            FROM s LEFT JOIN r USING (dim, key, grp) LEFT JOIN votes v USING (dim, key, grp) GROUP BY dim, key, grp""")

        def passmaj(sl, groups, passed, maj, cons, ties, noans, d_resp, d_corr, d_ans):
            pm = sl["pass_maj"]
            pm.update(groups=groups, pass_at_k=ratio(passed, groups), maj_at_k=ratio(maj, groups),
                      maj_from_consensus_label=cons, maj_ties=ties, maj_no_answer=noans)
            ee = sl["explore_exploit"]
            ee["groups"] = groups
            if groups:
                ee.update(distinct_correct_responses_mean=d_resp / groups, distinct_correct_answers_mean=d_corr / groups,
                          distinct_answers_mean=d_ans / groups)
        put(self.q("""
            WITH x AS (
              SELECT sg.*, whole AND g.g_cons_ok IS NOT NULL AS by_cons, g.g_cons_ok, v.ok,
                len(v.top2) = 2 AND v.top2[1] = v.top2[2] AS tie
              FROM sg JOIN g USING (grp) LEFT JOIN votes v USING (dim, key, grp) WHERE graded > 0
            )
            SELECT dim, key, count(*), count(*) FILTER (any_correct),
              count(*) FILTER (CASE WHEN by_cons THEN g_cons_ok = 1 ELSE coalesce(ok, FALSE) END),
              count(*) FILTER (by_cons), count(*) FILTER (NOT by_cons AND coalesce(tie, FALSE)),
              count(*) FILTER (NOT by_cons AND ok IS NULL),
              sum(d_resp), sum(d_corr_ans), sum(d_ans)
            FROM x GROUP BY dim, key"""), passmaj)
        put(self.q("SELECT dim, key, k, count(*) FROM sg WHERE graded > 0 GROUP BY ALL"),
            lambda sl, k, n: sl["pass_maj"]["k_counts"].__setitem__(str(k), n))

        def consensus(sl, groups, ok, rsum, rn):
            sl["consensus"].update(groups=groups, label_correct=ok, label_accuracy=ratio(ok, groups),
                                   majority_ratio_mean=rsum / rn if rn else None)
        put(self.q("""
            SELECT dim, key, count(*) FILTER (whole AND g_cons_ok IS NOT NULL),
              count(*) FILTER (whole AND g_cons_ok = 1),
              sum(g_cons_ratio) FILTER (whole), count(g_cons_ratio) FILTER (whole)
            FROM sg JOIN g USING (grp) GROUP BY dim, key"""), consensus)

        def mixed(sl, groups, pairs, wins, gap):
            ee = sl["explore_exploit"]
            ee.update(mixed_groups=groups, pairs=pairs)
            if pairs:
                ee.update(reward_auroc=wins / pairs, reward_gap=gap / groups)
        put(self.q("""
            WITH r AS (SELECT dim, key, grp, correct, reward FROM s WHERE correct IS NOT NULL AND reward IS NOT NULL),
            m AS (
              SELECT dim, key, grp, avg(reward) FILTER (correct) - avg(reward) FILTER (NOT correct) AS gap,
                count(*) FILTER (correct) * count(*) FILTER (NOT correct) AS pairs
              FROM r GROUP BY ALL HAVING pairs > 0
            ),
            w AS (
              SELECT a.dim, a.key, a.grp,
                sum(CASE WHEN a.reward > c.reward THEN 1.0 WHEN a.reward = c.reward THEN 0.5 ELSE 0 END) AS wins
              FROM r a JOIN r c ON a.dim = c.dim AND a.key = c.key AND a.grp = c.grp AND a.correct AND NOT c.correct
              GROUP BY ALL
            )
            SELECT dim, key, count(*), sum(pairs), sum(wins), sum(gap) FROM m JOIN w USING (dim, key, grp) GROUP BY ALL"""), mixed)

        # transitions
        def trans(sl, t, n):
            sl["transitions"]["counts"][t] = n
        put(self.q("SELECT dim, key, transition, count(*) FROM s WHERE transition IS NOT NULL GROUP BY ALL"), trans)
        for sl in slices.values():
            tr = sl["transitions"]
            revs = sum(tr["counts"].values())
            tr.update(revisions=revs, delta_i_to_c=ratio(tr["counts"]["i->c"], revs), delta_c_to_i=ratio(tr["counts"]["c->i"], revs))
            if revs:
                tr["delta_t1_t2"] = tr["delta_i_to_c"] - tr["delta_c_to_i"]

        # answer change after a revision (multi-turn data)
        if (self.q("SELECT max(turn) FROM b")[0][0] or 0) > 0:
            put(self.q("""
                WITH last AS (
                  SELECT task_id, sample_index, turn, ans FROM (
                    SELECT task_id, sample_index, turn, ans,
                      row_number() OVER (PARTITION BY task_id, sample_index, turn ORDER BY pos DESC) AS rk FROM b)
                  WHERE rk = 1
                ), rv AS (
                  SELECT b.idx, (p.ans IS NULL) <> (b.ans IS NULL) OR p.ans <> b.ans AS changed
                  FROM b JOIN last p ON p.task_id = b.task_id AND p.sample_index = b.sample_index AND p.turn = b.turn - 1
                  WHERE b.turn >= 1
                )
                SELECT dim, key, count(*), count(*) FILTER (changed) FROM s JOIN rv USING (idx)
                GROUP BY dim, key"""),
                lambda sl, revs, changed: sl["answer_change"].update(revisions=revs, changed=changed, rate=ratio(changed, revs)))

        # judge agreement, flags, entropy counts, truncation, length
        def rowlevel(sl, pc, pi, fc, fi, known, flagged, erows, etoks, fknown, trunc, ltok, lchar, lmean, lmax):
            n = pc + pi + fc + fi
            sl["judge_agreement"].update(rows=n, judge_pass_correct=pc, judge_pass_incorrect=pi, judge_fail_correct=fc,
                                         judge_fail_incorrect=fi, agreement=ratio(pc + fi, n), judge_pass_rate=ratio(pc + pi, n),
                                         verifier_pass_rate=ratio(pc + fc, n))
            sl["judge_flagged"].update(known=known, flagged=flagged, rate=ratio(flagged, known))
            sl["entropy"].update(rows=erows, tokens=int(etoks or 0))
            ln = sl["length"]
            ln.update(rows_completion_tokens=ltok, rows_response_chars=lchar, mean=lmean, max=lmax,
                      finish_reason_known=fknown, truncated=trunc, truncation_rate=ratio(trunc, fknown),
                      unit="completion_tokens" if lchar == 0 else "response_chars" if ltok == 0 else "mixed")
        put(self.q("""
            SELECT dim, key,
              count(*) FILTER (judge IS NOT NULL AND correct AND judge >= 0.5),
              count(*) FILTER (judge IS NOT NULL AND NOT correct AND judge >= 0.5),
              count(*) FILTER (judge IS NOT NULL AND correct AND judge < 0.5),
              count(*) FILTER (judge IS NOT NULL AND NOT correct AND judge < 0.5),
              count(flagged), count(*) FILTER (flagged),
              count(ent), sum(ntok) FILTER (ent IS NOT NULL),
              count(finish), count(*) FILTER (finish = 'length'),
              count(*) FILTER (len_tok), count(*) FILTER (NOT len_tok),
              avg(len), CAST(max(len) AS DOUBLE)
            FROM s GROUP BY dim, key"""), rowlevel)

        def lencorr(sl, n, cov, vx, vy):
            if n and n >= 2 and vx and vy:
                sl["length"]["reward_correlation"] = cov / (vx * vy) ** 0.5
        put(self.q("""SELECT dim, key, count(*), covar_samp(len, reward), var_samp(len), var_samp(reward)
            FROM s WHERE reward IS NOT NULL GROUP BY dim, key"""), lencorr)

        def lbin(sl, b, n, rmean):
            lo = 0 if b == 0 else 1 << (b + 4)
            hi = 32 if b == 0 else (-1 if b == LENGTH_BINS - 1 else lo * 2)
            sl["length"]["bins"].append({"lo": lo, "hi": hi, "rows": n, "reward_mean": rmean})
        put(self.q("SELECT dim, key, lbin, count(*), avg(reward) FROM s GROUP BY ALL ORDER BY dim, key, lbin"), lbin)

        return self.report(slices, nrows)

    def dists(self, table, v, rng, extra=()):
        """n, mean, std, min, max and histogram of column v per (dim, key, *extra): each value its
        own bin for at most MAX_DISTINCT values, else HIST_BINS equal bins over rng."""
        by = ", ".join(["dim", "key", *extra])
        lo, hi = rng
        out = {}
        small = set()
        for r in self.q(f"""SELECT {by}, count({v}), avg({v}), stddev_samp({v}), min({v}), max({v}), count(DISTINCT {v})
                FROM {table} WHERE {v} IS NOT NULL AND NOT isnan({v}) GROUP BY {by}"""):
            k = tuple(r[:-6])
            n, mean, std, mn, mx, nd = r[-6:]
            out[k] = {"n": n, "mean": mean, "std": std if n > 1 else None, "min": mn, "max": mx, "histogram": []}
            if nd <= MAX_DISTINCT:
                small.add(k)
        if small:
            keys = ", ".join("(%s)" % ", ".join(sqlstr(x) for x in k) for k in sorted(small))
            for r in self.q(f"""SELECT {by}, {v}, count(*) FROM {table} WHERE {v} IS NOT NULL AND NOT isnan({v})
                    AND ({by}) IN ({keys}) GROUP BY ALL ORDER BY ALL"""):
                out[tuple(r[:-2])]["histogram"].append({"lo": r[-2], "hi": r[-2], "count": r[-1]})
        if lo is None:
            return out
        w = (hi - lo) / HIST_BINS
        idx = f"least(greatest(CAST(trunc(({v} - {lit(lo)}) / {lit(w)}) AS BIGINT), 0), {HIST_BINS - 1})" if w > 0 else "0"
        counts = {}
        for r in self.q(f"""SELECT {by}, {idx} AS i, count(*) FROM {table} WHERE {v} IS NOT NULL AND NOT isnan({v})
                GROUP BY ALL"""):
            counts.setdefault(tuple(r[:-2]), {})[r[-2]] = r[-1]
        for k, d in out.items():
            if k in small:
                continue
            c = counts.get(k, {})
            d["histogram"] = [{"lo": lo + i * w, "hi": lo + (i + 1) * w, "count": c.get(i, 0)} for i in range(HIST_BINS)]
            d["histogram"][-1]["hi"] = hi
        return out

    def report(self, slices, nrows):
        def order(k):
            dim, key = k
            return (DIMS.index(dim), int(key) if dim == "turn" else 0, key if dim != "turn" else "")
        keys = sorted(slices, key=order)
        out = {"slices": [slices[k] for k in keys]}
        legacy = {d: [] for d in DIMS}
        for k in keys:
            sl = slices[k]
            rw = sl["reward"]
            legacy[k[0]].append({"key": sl["key"], "rows": sl["rows"], "groups": sl["groups"], "null_rewards": rw["null"],
                                 "reward_mean": rw["mean"], "reward_std": rw["std"], "graded": rw["graded"],
                                 "accuracy": rw["accuracy"]})
        allk = ("all", "all")
        out["overall"] = legacy["all"][0]
        out["zero_std_groups"] = slices[allk]["advantage"]["zero_variance_groups"]
        out["frac_reward_zero_std"] = slices[allk]["advantage"]["frac_zero_variance"]
        out["reward_histogram"] = slices[allk]["reward"]["histogram"]
        out["by_data_source"] = legacy["data_source"] or None
        out["by_turn"] = legacy["turn"] or None
        out["by_model"] = legacy["model"] or None
        deltas = []
        for p, c in zip(legacy["turn"], legacy["turn"][1:]):
            d = {"from": p["key"], "to": c["key"], "accuracy_delta": None, "reward_mean_delta": None}
            if p["accuracy"] is not None and c["accuracy"] is not None:
                d["accuracy_delta"] = c["accuracy"] - p["accuracy"]
            if p["reward_mean"] is not None and c["reward_mean"] is not None:
                d["reward_mean_delta"] = c["reward_mean"] - p["reward_mean"]
            deltas.append(d)
        out["turn_deltas"] = deltas or None
        out["metric_groups"] = ["reward", "reward_components", "advantage", "pass_maj", "transitions", "answer_change",
                                "consensus", "judge_agreement", "length", "entropy", "judge_flagged", "explore_exploit"]
        out["rows_read"] = nrows
        return out


def sqlstr(s):
    return "'" + s.replace("'", "''") + "'"


def ratio(a, b):
    return a / b if b else None


def empty_dist():
    return {"n": 0, "mean": None, "std": None, "min": None, "max": None, "histogram": []}


def new_slice(dim, key, rows, groups):
    return {
        "dimension": dim, "key": key, "rows": rows, "groups": groups,
        "reward": dict(empty_dist(), null=0, null_rate=None, null_reasons={}, failed=0, failed_rate=None, graded=0,
                       correct=0, accuracy=None),
        "reward_components": [],
        "advantage": dict(empty_dist(), zero_variance_groups=0, frac_zero_variance=None),
        "pass_maj": {"groups": 0, "k": 0, "k_counts": {}, "pass_at_k": None, "maj_at_k": None,
                     "maj_from_consensus_label": 0, "maj_ties": 0, "maj_no_answer": 0},
        "transitions": {"revisions": 0, "counts": {"c->c": 0, "c->i": 0, "i->c": 0, "i->i": 0},
                        "delta_t1_t2": None, "delta_i_to_c": None, "delta_c_to_i": None},
        "answer_change": {"revisions": 0, "changed": 0, "rate": None},
        "consensus": {"groups": 0, "label_correct": 0, "label_accuracy": None, "majority_ratio_mean": None},
        "judge_agreement": {},
        "length": {"reward_correlation": None, "bins": []},
        "entropy": {"rows": 0, "tokens": 0, "dist": empty_dist()},
        "judge_flagged": {},
        "explore_exploit": {"groups": 0, "distinct_correct_responses_mean": None, "distinct_correct_answers_mean": None,
                            "distinct_answers_mean": None, "mixed_groups": 0, "pairs": 0, "reward_auroc": None,
                            "reward_gap": None},
    }


def audit(path, threads):
    paths = shard_paths(path)
    if not paths:
        raise SystemExit("%s: no rl shards" % path)
    con = duckdb.connect()
    if threads:
        con.execute("SET threads = %d" % threads)
    rep = Audit(con, paths).run()
    for sl in rep["slices"]:
        pm = sl["pass_maj"]
        if len(pm["k_counts"]) == 1:
            pm["k"] = int(next(iter(pm["k_counts"])))
    schema = con.execute("SELECT CAST(value AS VARCHAR) FROM parquet_kv_metadata(%s) WHERE CAST(key AS VARCHAR) = 'redraft.schema'"
                         % sqlstr(os.path.abspath(paths[0]))).fetchall()
    rep.update(dir=path, shards=len(paths), schema=schema[0][0] if schema else "", recipe=recipe_name(path))
    return rep


def main():
    args = sys.argv[1:]
    threads = 0
    if "--threads" in args:
        i = args.index("--threads")
        threads = int(args[i + 1])
        del args[i:i + 2]
    bench = "--bench" in args
    if bench:
        args.remove("--bench")
    path = args[0]
    if not bench:
        rep = audit(path, threads)
        del rep["rows_read"]
        json.dump(rep, sys.stdout, indent=1, allow_nan=False)
        print()
        return
    secs = []
    for _ in range(3):
        t0 = time.perf_counter()
        rep = audit(path, threads)
        secs.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"tool": "DuckDB %s (C++, %d threads)" % (duckdb.__version__, threads or os.cpu_count()),
                      "task": "full audit (every metric group)", "rows": rep["rows_read"], "seconds": secs,
                      "peak_rss_mb": rss}))


if __name__ == "__main__":
    main()
