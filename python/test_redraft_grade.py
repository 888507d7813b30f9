#!/usr/bin/env python3
"""Tests of the installed redraft_grade package (bindings/cgrade's
TestPythonWheel runs them in a fresh venv with the built wheel installed).

    python -I test_redraft_grade.py

Environment:
  REDRAFT_GRADE_CASES     JSON lines {"gold", "prediction"}: the public grader cases
  REDRAFT_GRADE_EXPECTED  `redraft grade`'s output for them, line for line
  REDRAFT_GRADE_INSTALLED=1  the package must come from site-packages (not a source tree)
  REDRAFT_STRESS_SECONDS  the stress test's hard limit (default 120): past it every thread's
                          stack is printed and the process exits 1
Run with -I so that the script's folder (python/, which holds the source package) is not on
sys.path.
"""

import faulthandler
import inspect
import json
import os
import random
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import unittest

import redraft_grade as rg

FIELDS = ["correct", "answer", "found", "extract_rule", "rule", "pred", "gold", "reason"]


def load_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def expected_verdict(line):
    # redraft grade omits an empty reason; the package always has the key.
    return {k: line.get(k, "" if k == "reason" else None) for k in FIELDS}


def run_child(code, timeout=60):
    """Runs code in a fresh interpreter with this one's sys.path; returns
    (exit code, stdout+stderr)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


class Installed(unittest.TestCase):
    def test_from_site_packages(self):
        if os.environ.get("REDRAFT_GRADE_INSTALLED") != "1":
            self.skipTest("REDRAFT_GRADE_INSTALLED not set")
        site = os.path.realpath(sysconfig.get_paths()["purelib"])
        self.assertTrue(os.path.realpath(rg.__file__).startswith(site + os.sep), rg.__file__)
        self.assertTrue(os.path.exists(rg.library_path()), rg.library_path())


@unittest.skipUnless(os.environ.get("REDRAFT_GRADE_CASES"), "REDRAFT_GRADE_CASES not set")
class PublicCases(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cases = load_jsonl(os.environ["REDRAFT_GRADE_CASES"])
        cls.expected = [expected_verdict(l) for l in load_jsonl(os.environ["REDRAFT_GRADE_EXPECTED"])]
        assert len(cls.cases) == len(cls.expected), (len(cls.cases), len(cls.expected))

    def test_agree_with_redraft_grade(self):
        """Every case: grade() equals redraft grade's line, field for field;
        verify() is its verdict."""
        self.assertGreaterEqual(len(self.cases), 388)
        bad = []
        for i, (c, want) in enumerate(zip(self.cases, self.expected)):
            got = rg.grade(c["gold"], c["prediction"])
            if got != want or rg.verify(c["gold"], c["prediction"]) != want["correct"]:
                bad.append((i, c, want, got))
        self.assertEqual(bad, [], f"{len(bad)} of {len(self.cases)} cases disagree; first: {bad[:1]}")

    def test_batch_agrees(self):
        golds = [c["gold"] for c in self.cases]
        preds = [c["prediction"] for c in self.cases]
        self.assertEqual(rg.grade_batch(golds, preds), self.expected)
        self.assertEqual(rg.verify_batch(golds, preds), [e["correct"] for e in self.expected])
        self.assertEqual(rg.verify_batch(golds, preds, workers=1), [e["correct"] for e in self.expected])

    def test_eight_threads(self):
        """8 Python threads grade every case at once, in different orders,
        several rounds, and the batch API runs beside them: no verdict
        differs, and nothing hangs (faulthandler prints every thread's stack
        and exits 1 past the limit)."""
        limit = float(os.environ.get("REDRAFT_STRESS_SECONDS", "120"))
        faulthandler.dump_traceback_later(limit, exit=True)
        try:
            errors, done = [], []

            def worker(seed):
                order = list(range(len(self.cases)))
                random.Random(seed).shuffle(order)
                for _ in range(3):
                    for i in order:
                        c = self.cases[i]
                        if seed % 2:
                            got = rg.grade(c["gold"], c["prediction"])
                            if got != self.expected[i]:
                                errors.append((seed, i, got))
                        elif rg.verify(c["gold"], c["prediction"]) != self.expected[i]["correct"]:
                            errors.append((seed, i, "verify"))
                    if seed == 0:
                        golds = [c["gold"] for c in self.cases]
                        preds = [c["prediction"] for c in self.cases]
                        if rg.grade_batch(golds, preds) != self.expected:
                            errors.append((seed, "batch"))
                done.append(seed)

            threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in range(8)]
            start = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(max(1.0, limit - (time.monotonic() - start)))
            self.assertEqual(sorted(done), list(range(8)), "threads did not finish in time")
            self.assertEqual(errors, [])
        finally:
            faulthandler.cancel_dump_traceback_later()


class API(unittest.TestCase):
    def test_verify_and_grade(self):
        self.assertTrue(rg.verify("18", "She makes 9 * 2 = $18 a day.\n#### 18"))
        self.assertFalse(rg.verify("18", "#### 19"))
        v = rg.grade("\\frac{1}{2}", "The answer is $0.5$.")
        self.assertEqual(sorted(v), sorted(FIELDS))
        self.assertTrue(v["correct"])
        self.assertEqual((v["answer"], v["extract_rule"]), ("0.5", "the_answer_is"))
        v = rg.grade("5", "The answer is 6.")
        self.assertFalse(v["correct"])
        self.assertTrue(v["rule"].startswith("not_equal:"), v)
        self.assertNotEqual(v["reason"], "")

    def test_finish_reason(self):
        self.assertTrue(rg.verify("18", "18"))
        self.assertFalse(rg.verify("18", "18", finish_reason="length"))
        self.assertEqual(rg.grade("18", "so she makes 9 * 2 =", finish_reason="length")["rule"], "no_answer:cut_off")
        self.assertEqual(rg.verify_batch(["18", "18"], ["18", "18"], finish_reasons=["stop", "length"]), [True, False])

    def test_math_verify_style(self):
        gold, pred = rg.parse("$\\frac{1}{2}$"), rg.parse("So the answer is \\boxed{0.5}.")
        self.assertEqual(list(pred), ["0.5"])
        self.assertEqual(pred.rule, "boxed")
        self.assertTrue(rg.verify(gold, pred))
        self.assertTrue(rg.verify(gold, pred, float_rounding=6, strict=True, timeout_seconds=5))
        none = rg.parse("I am not sure.\nLet me think about it some more, step by step, before I answer")
        self.assertEqual(list(none), [])
        self.assertFalse(none)
        # A Math-Verify parse result ([expression, string]) is read by its string.
        self.assertTrue(rg.verify(["x", "\\frac{1}{2}"], "The answer is 0.5"))

    def test_odd_inputs(self):
        for gold, pred in [("", ""), ("1", ""), ("", "1"), ("1\x002", "1\x002"), ("\ud800", "\udfff 1"),
                           (None, None), (3, "3"), (b"4", "#### 4"), ("1", "\\boxed{" * 10000)]:
            v = rg.grade(gold, pred)
            self.assertEqual(sorted(v), sorted(FIELDS), (gold, pred))
            self.assertIsInstance(rg.verify(gold, pred), bool)
        self.assertTrue(rg.verify(3, "3"))
        self.assertEqual(rg.grade_batch([], []), [])
        self.assertEqual(rg.verify_batch([], []), [])
        with self.assertRaises(ValueError):
            rg.grade_batch(["1"], [])

    def test_bounded(self):
        """A tiny timeout still returns promptly, with a verdict."""
        big = "\\boxed{" + "+".join(f"\\frac{{{i}}}{{{i + 1}}}" for i in range(1, 3000)) + "}"
        start = time.monotonic()
        v = rg.grade(big, big, timeout=0.001)
        self.assertLess(time.monotonic() - start, 1.0)
        self.assertIn(v["rule"].split(":")[0], ("equal", "not_equal", "error"), v)
        huge = "x" * (2 << 20)
        self.assertEqual(rg.grade("1", huge)["rule"], "no_answer:too_long")

    def test_large_batch_chunks(self):
        n = rg._CHUNK + 17
        got = rg.verify_batch([str(i) for i in range(n)], [f"#### {i if i % 3 else i + 1}" for i in range(n)])
        self.assertEqual(got, [i % 3 != 0 for i in range(n)])
        self.assertGreaterEqual(rg.cpu_count(), 1)


class Verl(unittest.TestCase):
    """The calls verl makes (verl 0.9.1): NaiveRewardManager calls
    compute_score(data_source=..., solution_str=..., ground_truth=...,
    extra_info=...) with keywords, extra_info carrying num_turns and
    rollout_reward_scores; a dict result's "score" is the reward and every
    key is logged; BatchRewardManager calls compute_score(data_sources=...,
    solution_strs=..., ground_truths=..., extra_infos=..., **reward_kwargs)."""

    def test_signature(self):
        params = list(inspect.signature(rg.compute_score).parameters)
        self.assertEqual(params[:4], ["data_source", "solution_str", "ground_truth", "extra_info"])
        self.assertIsNone(inspect.signature(rg.compute_score).parameters["extra_info"].default)
        params = list(inspect.signature(rg.compute_score_batch).parameters)
        self.assertEqual(params[:4], ["data_sources", "solution_strs", "ground_truths", "extra_infos"])

    def test_calls(self):
        extra = {"index": 0, "num_turns": None, "rollout_reward_scores": {}}
        r = rg.compute_score(data_source="openai/gsm8k", solution_str="... so 9 * 2 = 18.\n#### 18",
                             ground_truth="18", extra_info=extra)
        self.assertEqual(r, {"score": 1.0, "acc": True, "pred": "18", "rule": "equal:string"})
        r = rg.compute_score("lighteval/MATH", "The answer is $\\boxed{\\frac{2}{4}}$", "\\frac12")
        self.assertEqual((r["score"], r["acc"]), (1.0, True))
        self.assertEqual(rg.compute_score("x", "\\boxed{7}", ["6", "7"])["score"], 1.0)
        self.assertEqual(rg.compute_score("x", "\\boxed{7}", ["6", "8"])["score"], 0.0)
        self.assertEqual(rg.compute_score("x", "\\boxed{7}", 7)["score"], 1.0)
        self.assertEqual(rg.compute_score("x", "7", "7", extra_info={"finish_reason": "length"})["score"], 0.0)
        got = rg.compute_score_batch(data_sources=["a", "b", "c"], solution_strs=["#### 1", "\\boxed{2}", "3"],
                                     ground_truths=["1", ["5", "2"], "4"], extra_infos=[{}, {}, {}], timeout=2)
        self.assertEqual([g["score"] for g in got], [1.0, 1.0, 0.0])
        self.assertEqual({tuple(sorted(g)) for g in got}, {("acc", "pred", "rule", "score")})


class TRL(unittest.TestCase):
    """The call GRPOTrainer makes (trl 1.16.0, GRPOTrainer._calculate_rewards):
    reward_func(prompts=..., completions=..., completion_ids=...,
    **columns, trainer_state=..., log_extra=..., log_metric=...), one list
    entry per completion; None results become NaN."""

    def call(self, fn, completions, **columns):
        logged = {}
        kwargs = dict(columns, trainer_state=object(), log_extra=lambda k, v: logged.__setitem__(k, v),
                      log_metric=lambda k, v: None)
        out = fn(prompts=[[{"role": "user", "content": "q"}]] * len(completions), completions=completions,
                 completion_ids=[[1, 2]] * len(completions), **kwargs)
        return out, logged

    def test_conversational(self):
        completions = [
            [{"role": "assistant", "content": "2 + 2 = 4, so \\boxed{4}"}],
            [{"role": "assistant", "content": "The answer is 5."}],
            [{"role": "assistant", "content": [{"type": "text", "text": "#### 4"}]}],
            [{"role": "assistant", "content": None, "tool_calls": [{"name": "calc"}]},
             {"role": "tool", "content": "4"}, {"role": "assistant", "content": "So the answer is 4."}],
            [{"role": "assistant", "content": "\\boxed{4}"}],
        ]
        out, logged = self.call(rg.accuracy_reward, completions, solution=["4", "4", "4", "4", ""], task=["a"] * 5)
        self.assertEqual(out, [1.0, 0.0, 1.0, 1.0, None])
        self.assertEqual(logged["redraft_answer"][:2], ["4", "5"])
        self.assertEqual(len(logged["redraft_rule"]), 5)

    def test_plain_and_columns(self):
        out, _ = self.call(rg.accuracy_reward, ["#### 3", "#### 4"], answer=["3", "3"])
        self.assertEqual(out, [1.0, 0.0])
        fn = rg.make_trl_reward("label", correct=1.0, incorrect=-1.0, name="math")
        self.assertEqual(fn.__name__, "math")
        out, _ = self.call(fn, ["#### 3", "#### 4"], label=["3", "3"], solution=["4", "4"])
        self.assertEqual(out, [1.0, -1.0])
        with self.assertRaises(KeyError):
            self.call(rg.accuracy_reward, ["1"], other=["1"])


class OpenRLHF(unittest.TestCase):
    """OpenRLHF loads reward_func(queries, prompts, labels) from a file given
    as --reward.remote_url and reads "rewards" (and "scores", "extra_logs")
    from its answer; each query is the decoded prompt and response."""

    def test_reward_func(self):
        prompt = "<|im_start|>user\nHow many? Example: #### 99<|im_end|>\n<|im_start|>assistant\n"
        out = rg.openrlhf_reward_func(
            [prompt + "9 * 2 = 18\n#### 18<|im_end|>", prompt + "#### 17", prompt + "Let me think about it first\nand then"],
            [prompt] * 3, ["18", "18", "99"])
        self.assertEqual(out["rewards"], [1.0, 0.0, 0.0])
        self.assertEqual(out["scores"], out["rewards"])
        self.assertEqual(out["extra_logs"]["answer_found"], [1.0, 1.0, 0.0])
        self.assertEqual(rg.response_of("P: q\nA: x", "P: q\n"), "A: x")


@unittest.skipUnless(os.environ.get("REDRAFT_SERVE_URL"), "REDRAFT_SERVE_URL not set")
class Remote(unittest.TestCase):
    """make_remote_compute_score against a running redraft serve agrees with
    the in-process compute_score."""

    def test_remote_compute_score(self):
        fn = rg.make_remote_compute_score(os.environ["REDRAFT_SERVE_URL"])
        cases = [("openai/gsm8k", "9 * 2 = 18\n#### 18", "18", {"index": 1}),
                 ("lighteval/MATH", "So $\\boxed{\\frac{2}{4}}$", ["0.4", "\\frac12"], None),
                 ("x", "7", "7", {"finish_reason": "length"}),
                 ("x", "The answer is 5.", 6, None)]
        for ds, sol, gt, extra in cases:
            self.assertEqual(fn(ds, sol, gt, extra), rg.compute_score(ds, sol, gt, extra), (ds, sol, gt))
        got = fn.batch([c[0] for c in cases], [c[1] for c in cases], [c[2] for c in cases], [c[3] for c in cases])
        self.assertEqual(got, rg.compute_score_batch([c[0] for c in cases], [c[1] for c in cases],
                                                     [c[2] for c in cases], [c[3] for c in cases]))
        with self.assertRaises(RuntimeError) as e:
            fn.batch(["x"], ["1", "2"], ["1"])
        self.assertIn("400", str(e.exception))


# Signals, fork: each in a fresh interpreter.


class Process(unittest.TestCase):
    def test_sigint_reaches_python(self):
        """The library installs no SIGINT handler: Ctrl+C (SIGINT) during
        grading from several threads raises KeyboardInterrupt in the main
        thread as soon as its current call returns, and grading works
        afterwards."""
        code = r"""
import os, signal, threading, time, redraft_grade as rg
assert rg.verify("1", "1")
assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
stop = False
def spin():
    while not stop:
        rg.verify_batch(["2"] * 64, ["#### 2"] * 64)
ts = [threading.Thread(target=spin) for _ in range(3)]
for t in ts: t.start()
threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
start = time.monotonic()
try:
    while time.monotonic() - start < 20:
        rg.grade("x^2+2x+1", "(x+1)^2")
    print("no KeyboardInterrupt")
except KeyboardInterrupt:
    print("interrupted after %.2fs" % (time.monotonic() - start))
stop = True
for t in ts: t.join()
assert rg.verify("3", "#### 3")
print("ok")
"""
        rc, out = run_child(code)
        self.assertEqual(rc, 0, out)
        self.assertIn("interrupted after", out)
        self.assertIn("ok", out)
        took = float(out.split("interrupted after ")[1].split("s")[0])
        self.assertLess(took, 5.0, out)

    def test_python_handlers_kept(self):
        """A Python SIGINT handler set before or after loading the library
        runs; SIGTERM's default stays (the process dies of it); SIGPIPE
        stays ignored (a write to a closed pipe raises BrokenPipeError)."""
        code = r"""
import os, signal, sys, redraft_grade as rg
hits = []
signal.signal(signal.SIGINT, lambda s, f: hits.append("before"))
assert rg.verify("1", "1")
os.kill(os.getpid(), signal.SIGINT)
signal.signal(signal.SIGINT, lambda s, f: hits.append("after"))
os.kill(os.getpid(), signal.SIGINT)
assert rg.verify("1", "1")
assert hits == ["before", "after"], hits
r, w = os.pipe()
os.close(r)
try:
    os.write(w, b"x")
    print("no error")
except BrokenPipeError:
    print("broken pipe")
assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
sys.stdout.flush()
os.kill(os.getpid(), signal.SIGTERM)
"""
        rc, out = run_child(code)
        self.assertIn("broken pipe", out)
        self.assertEqual(rc, -signal.SIGTERM, out)

    def test_fork(self):
        """Loaded before fork(): the child gets ForkError at once, not a
        hang. Loaded only after fork(): the child grades."""
        code = r"""
import os, redraft_grade as rg
pid = os.fork()
if pid == 0:
    os._exit(0 if rg.verify("2", "#### 2") else 3)
_, st = os.waitpid(pid, 0)
assert os.WEXITSTATUS(st) == 0, st
assert rg.verify("1", "1")
pid = os.fork()
if pid == 0:
    try:
        rg.verify("1", "1")
        os._exit(4)
    except rg.ForkError:
        os._exit(0)
_, st = os.waitpid(pid, 0)
assert os.WEXITSTATUS(st) == 0, st
print("ok")
"""
        rc, out = run_child(code)
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
