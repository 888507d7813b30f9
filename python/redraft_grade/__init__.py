"""redraft's math grader for Python: the Go engine (rewards/mathgrade) as a
shared library, with drop-ins for verl, TRL and Math-Verify-style code.

    >>> import redraft_grade
    >>> redraft_grade.verify("18", "She makes 9 * 2 = $18 a day.\\n#### 18")
    True
    >>> redraft_grade.grade("\\\\frac{1}{2}", "The answer is $0.5$.")["rule"]
    'equal:numeric'

Every call is thread-safe, releases the GIL while grading, uses no signals,
and is bounded: the grader stops itself at ``timeout`` seconds (default 2)
and the call returns at most 1.5 x timeout + 0.1 s later whatever happens,
with rule "error:deadline". See docs/python.md for the rules, the
integrations and the differences from Math-Verify.
"""

from . import _native
from ._native import ForkError, library_path

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TIMEOUT",
    "ForkError",
    "Parsed",
    "accuracy_reward",
    "compute_score",
    "compute_score_batch",
    "cpu_count",
    "grade",
    "grade_batch",
    "library_path",
    "make_remote_compute_score",
    "make_trl_reward",
    "openrlhf_reward_func",
    "parse",
    "verify",
    "verify_batch",
]

#: Seconds one grading may take (the Go grader's default).
DEFAULT_TIMEOUT = 2.0

# A batch is handed to the library in chunks of this many pairs, so that a
# KeyboardInterrupt (which Python raises only between foreign calls) waits
# for one chunk, not the whole batch.
_CHUNK = 4096


class Parsed(list):
    """What :func:`parse` returns: a list holding the extracted final answer
    (empty when the text states none, so it is falsy like Math-Verify's
    empty parse), with the text it came from in ``.text`` and the
    extraction rule in ``.rule``. :func:`verify` grades ``.text``."""

    def __init__(self, text, answer, rule):
        super().__init__([answer] if rule else [])
        self.text = text
        self.rule = rule

    def __repr__(self):
        return f"Parsed({list.__repr__(self)}, rule={self.rule!r})"


def _text(x):
    """The text to grade for a gold or prediction argument: a str as is, a
    Parsed's source text, the last string of another list (Math-Verify's
    parse returns [expression, string]), anything else through str()."""
    if isinstance(x, Parsed):
        return x.text
    if isinstance(x, (list, tuple)):
        for v in reversed(x):
            if isinstance(v, str):
                return v
        return str(x[-1]) if x else ""
    if x is None:
        return ""
    if isinstance(x, (str, bytes)):
        return x
    return str(x)


def parse(text, *args, **kwargs):
    """Extracts the final answer that ``text`` states, as redraft does (the
    last \\boxed{}, "#### X", "The answer is X", a bare short answer; no
    last-number fallback). Math-Verify's parse options (extraction_config,
    fallback_mode, extraction_mode, parsing_timeout, raise_on_error) are
    accepted and ignored. Never raises on any text."""
    text = _text(text)
    r = _native.extract(text)
    if r.get("error"):
        return Parsed(text, "", "")
    return Parsed(text, r["answer"], r["rule"] if r["found"] else "")


def verify(gold, prediction, *args, finish_reason=None, timeout=DEFAULT_TIMEOUT, timeout_seconds=None, **kwargs):
    """True when ``prediction`` (a whole response, or a bare answer) states
    the answer ``gold`` (a bare answer or a whole reference solution).

    Either argument may be a str or a :func:`parse` result, so both
    ``verify(gold, response)`` and Math-Verify's
    ``verify(parse(gold), parse(response))`` work. Math-Verify's options
    (float_rounding, numeric_precision, strict, allow_set_relation_comp,
    raise_on_error) are accepted and ignored; ``timeout_seconds`` is
    ``timeout``. ``finish_reason`` is the server's ("length" marks a
    cut-off response: a bare answer then does not count)."""
    if timeout_seconds is not None:
        timeout = timeout_seconds
    return _native.verify_one(_text(gold), _text(prediction), finish_reason, timeout)


def grade(gold, prediction, *, finish_reason=None, timeout=DEFAULT_TIMEOUT):
    """The verdict for one pair, as a dict with the fields of ``redraft
    grade``'s output lines: correct, answer (as stated), found, extract_rule,
    rule (the rule that decided), pred and gold (the normalised forms
    compared) and reason ("" when correct)."""
    return _native.grade_one(_text(gold), _text(prediction), finish_reason, timeout)


def _batch(golds, predictions, finish_reasons, timeout, workers, want_json):
    golds = [g if type(g) is str else _text(g) for g in golds]
    predictions = [p if type(p) is str else _text(p) for p in predictions]
    if len(golds) != len(predictions):
        raise ValueError(f"{len(golds)} golds but {len(predictions)} predictions")
    if finish_reasons is not None:
        finish_reasons = [f or "" for f in finish_reasons]
        if len(finish_reasons) != len(golds):
            raise ValueError(f"{len(golds)} golds but {len(finish_reasons)} finish reasons")
    flags, verdicts = [], []
    for i in range(0, len(golds), _CHUNK):
        j = i + _CHUNK
        f = finish_reasons[i:j] if finish_reasons is not None else None
        c, v = _native.grade_chunk(golds[i:j], predictions[i:j], f, timeout, workers, want_json)
        flags.extend(c)
        if want_json:
            verdicts.extend(v)
    return flags, verdicts


def grade_batch(golds, predictions, *, finish_reasons=None, timeout=DEFAULT_TIMEOUT, workers=0):
    """:func:`grade` for many pairs at once, on ``workers`` threads of the
    library (0: every core), in order."""
    return _batch(golds, predictions, finish_reasons, timeout, workers, True)[1]


def verify_batch(golds, predictions, *, finish_reasons=None, timeout=DEFAULT_TIMEOUT, workers=0):
    """:func:`verify` for many pairs at once, on every core: a list of bools."""
    return _batch(golds, predictions, finish_reasons, timeout, workers, False)[0]


def cpu_count():
    """How many pairs a batch grades at once by default (Go's GOMAXPROCS:
    the CPUs this process may use)."""
    return _native.cpus()


# --- verl -------------------------------------------------------------------


def _ground_truths(ground_truth):
    """verl's ground_truth as a list of acceptable answers: a str or number
    is one; a list, tuple or numpy array lists several."""
    if isinstance(ground_truth, (str, bytes)) or ground_truth is None:
        return [ground_truth]
    if hasattr(ground_truth, "tolist"):
        ground_truth = ground_truth.tolist()
    if isinstance(ground_truth, (list, tuple)):
        return list(ground_truth) or [""]
    return [ground_truth]


def _finish_of(extra_info):
    if isinstance(extra_info, dict):
        f = extra_info.get("finish_reason")
        if isinstance(f, str):
            return f
    return None


def _score_dict(v):
    return {"score": 1.0 if v["correct"] else 0.0, "acc": bool(v["correct"]), "pred": v["answer"], "rule": v["rule"]}


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    """verl's ``compute_score`` for ``custom_reward_function`` (path
    ``pkg://redraft_grade``, name ``compute_score``): grades ``solution_str``
    against ``ground_truth`` (a list of acceptable answers counts when any
    matches), whatever the ``data_source``, and returns
    ``{"score": 1.0 or 0.0, "acc": bool, "pred": the stated answer, "rule":
    the deciding rule}``; verl takes "score" as the reward and logs the other
    keys. ``extra_info["finish_reason"]``, when present, is used. Keyword
    arguments verl adds (reward_kwargs, reward_router_address, ...) are
    ignored, except ``timeout``."""
    timeout = kwargs.get("timeout", DEFAULT_TIMEOUT)
    finish = _finish_of(extra_info)
    first = None
    for gt in _ground_truths(ground_truth):
        v = _native.grade_one(_text(gt), _text(solution_str), finish, timeout)
        if v["correct"]:
            return _score_dict(v)
        if first is None:
            first = v
    return _score_dict(first)


def compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos=None, **kwargs):
    """verl's batched form (``reward_manager=batch``: called with
    data_sources, solution_strs, ground_truths, extra_infos): one
    :func:`compute_score` dict per response, graded on every core."""
    n = len(solution_strs)
    if extra_infos is None:
        extra_infos = [None] * n
    timeout = kwargs.get("timeout", DEFAULT_TIMEOUT)
    golds, preds, finishes, owner = [], [], [], []
    for i in range(n):
        for gt in _ground_truths(ground_truths[i]):
            golds.append(_text(gt))
            preds.append(_text(solution_strs[i]))
            finishes.append(_finish_of(extra_infos[i]) or "")
            owner.append(i)
    verdicts = grade_batch(golds, preds, finish_reasons=finishes, timeout=timeout)
    out = [None] * n
    for i, v in zip(owner, verdicts):
        if out[i] is None or (v["correct"] and not out[i]["acc"]):
            out[i] = _score_dict(v)
    return out


def make_remote_compute_score(url, *, timeout=60.0):
    """verl's ``compute_score`` (single and batched, as ``.batch``) backed by
    a ``redraft serve`` at ``url`` (e.g. "http://127.0.0.1:5050"): it posts
    the keyword arguments to ``/verl/compute_score`` and returns the
    server's dict, so verl's workers need no shared library. Raises
    RuntimeError with the server's message on a 4xx/5xx answer."""
    import json as _json
    import urllib.error
    import urllib.request

    endpoint = url.rstrip("/") + "/verl/compute_score"

    def _post(body):
        req = urllib.request.Request(endpoint, data=_json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return _json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"redraft serve: {e.code}: {e.read().decode('utf-8', 'replace').strip()}") from None

    def _jsonable(x):
        if hasattr(x, "tolist"):
            return x.tolist()
        if isinstance(x, dict):
            return {str(k): _jsonable(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [_jsonable(v) for v in x]
        if x is None or isinstance(x, (str, int, float, bool)):
            return x
        return str(x)

    def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
        return _post({"data_source": _jsonable(data_source), "solution_str": _text(solution_str),
                      "ground_truth": _jsonable(ground_truth), "extra_info": _jsonable(extra_info)})

    def batch(data_sources, solution_strs, ground_truths, extra_infos=None, **kwargs):
        return _post({"data_sources": _jsonable(list(data_sources)), "solution_strs": [_text(s) for s in solution_strs],
                      "ground_truths": _jsonable(list(ground_truths)),
                      "extra_infos": _jsonable(list(extra_infos)) if extra_infos is not None else None})

    compute_score.batch = batch
    return compute_score


# --- OpenRLHF ----------------------------------------------------------------


def response_of(query, prompt):
    """The response part of an OpenRLHF query (the decoded prompt and
    response together): the text after the prompt, found exactly or without
    its surrounding white space, else the whole query. ``redraft serve``
    does the same."""
    if not prompt:
        return query
    if query.startswith(prompt):
        return query[len(prompt):]
    i = query.find(prompt)
    if i >= 0:
        return query[i + len(prompt):]
    p = prompt.strip()
    if p:
        i = query.find(p)
        if i >= 0:
            return query[i + len(p):]
    return query


def openrlhf_reward_func(queries, prompts, labels, **kwargs):
    """OpenRLHF's ``reward_func(queries, prompts, labels)`` for
    ``--reward.remote_url /path/to/reward.py`` (a file holding ``from
    redraft_grade import openrlhf_reward_func as reward_func``): the same
    answer as ``redraft serve``'s /get_reward, graded in this process on
    every core: ``{"rewards": [...], "scores": [...], "extra_logs":
    {"answer_found": [...]}}``."""
    prompts = list(prompts) if prompts is not None else [""] * len(queries)
    responses = [response_of(_text(q), _text(p)) for q, p in zip(queries, prompts)]
    verdicts = grade_batch([_text(l) for l in labels], responses)
    rewards = [1.0 if v["correct"] else 0.0 for v in verdicts]
    return {"rewards": rewards, "scores": list(rewards),
            "extra_logs": {"answer_found": [1.0 if v["found"] else 0.0 for v in verdicts]}}


# --- TRL --------------------------------------------------------------------

#: The dataset columns a TRL reward function looks for the reference in, in
#: this order (TRL's own accuracy_reward reads "solution").
REFERENCE_COLUMNS = ("solution", "answer", "ground_truth", "reference", "gold")

# Keyword arguments GRPOTrainer passes that are not dataset columns.
_TRL_SPECIAL = {"prompts", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}


def completion_text(completion):
    """The text of one TRL completion: a str as is; for a conversational
    completion (a list of messages) the content of the last assistant
    message (the final answer of a multi-turn or tool-calling completion),
    a content given as parts joined from its text parts."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    msgs = list(completion or [])
    pick = None
    for m in reversed(msgs):
        if isinstance(m, dict) and m.get("role", "assistant") == "assistant":
            pick = m
            break
    if pick is None:
        pick = msgs[-1] if msgs else {}
    content = pick.get("content") if isinstance(pick, dict) else pick
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts = []
        for p in content:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, dict) and p.get("type", "text") == "text":
                parts.append(str(p.get("text", "")))
        return "".join(parts)
    return str(content)


def make_trl_reward(column=None, *, correct=1.0, incorrect=0.0, timeout=DEFAULT_TIMEOUT, name="redraft_accuracy"):
    """A reward function for TRL's GRPOTrainer (``reward_funcs=[...]``).

    TRL calls it with ``prompts``, ``completions``, ``completion_ids``,
    ``trainer_state``, ``log_extra``, ``log_metric`` and every other dataset
    column as lists. It grades each completion (plain or conversational)
    against the reference in ``column`` (default: the first of
    :data:`REFERENCE_COLUMNS` present) on every core, and returns
    ``correct`` or ``incorrect`` per completion, or None (TRL: NaN, skipped)
    where the reference is missing or empty. When TRL passes ``log_extra``,
    the stated answer and deciding rule are logged as the columns
    "redraft_answer" and "redraft_rule"."""

    def reward(completions, **kwargs):
        col = column
        if col is None:
            col = next((c for c in REFERENCE_COLUMNS if c in kwargs), None)
        if col is None or col not in kwargs:
            cols = sorted(k for k in kwargs if k not in _TRL_SPECIAL)
            want = col or " or ".join(REFERENCE_COLUMNS)
            raise KeyError(f"redraft_grade: no reference column {want!r} among the dataset's columns {cols}")
        refs = list(kwargs[col])
        if len(refs) != len(completions):
            raise ValueError(f"redraft_grade: {len(completions)} completions but {len(refs)} references in {col!r}")
        texts = [completion_text(c) for c in completions]
        has_ref = [r is not None and _text(r).strip() != "" for r in refs]
        verdicts = grade_batch([_text(r) for r in refs], texts, timeout=timeout)
        out = [(correct if v["correct"] else incorrect) if ok else None for v, ok in zip(verdicts, has_ref)]
        log_extra = kwargs.get("log_extra")
        if callable(log_extra):
            log_extra("redraft_answer", [v["answer"] for v in verdicts])
            log_extra("redraft_rule", [v["rule"] for v in verdicts])
        return out

    reward.__name__ = reward.__qualname__ = name
    return reward


#: The ready TRL reward function: ``GRPOTrainer(reward_funcs=[accuracy_reward])``
#: with the reference in a "solution" (or "answer", "ground_truth", ...)
#: column; 1.0 correct, 0.0 not, None without a reference.
accuracy_reward = make_trl_reward(name="accuracy_reward")

