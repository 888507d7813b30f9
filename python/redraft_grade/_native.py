"""The Go grader as a shared library, loaded with ctypes.

The library (libredraftgrade.so, built from bindings/cgrade with
``go build -buildmode=c-shared``) is loaded on the first call, not at import,
so that a process that imports redraft_grade and then forks workers loads it
in each worker. ctypes releases the GIL for every call into it, so Python
threads grade in parallel.
"""

import ctypes
import json
import os
import threading

ABI_VERSION = 1
LIBRARY_NAME = "libredraftgrade.so"

_lock = threading.Lock()
_lib = None
_pid = None


class ForkError(RuntimeError):
    """The library was loaded before this process was forked.

    A Go runtime does not survive fork(): only the forking thread is copied,
    so the runtime's own threads (scheduler, garbage collector) are gone and
    a call could wait forever. Grade in the parent only after forking, or
    start workers with the "spawn" or "forkserver" method.
    """


def library_path():
    """The path of the shared library: $REDRAFT_GRADE_LIBRARY, else the one
    installed next to this module."""
    return os.environ.get("REDRAFT_GRADE_LIBRARY") or os.path.join(os.path.dirname(os.path.abspath(__file__)), LIBRARY_NAME)


def _load():
    path = library_path()
    if not os.path.exists(path):
        raise OSError(
            f"redraft_grade: {path} is missing: install the wheel built by scripts/build-python.sh "
            "(pip install dist/redraft_grade-*.whl), or set REDRAFT_GRADE_LIBRARY"
        )
    # CDLL, not PyDLL: ctypes releases the GIL around every call.
    lib = ctypes.CDLL(path)
    s, z, i64, i = ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int64, ctypes.c_int
    lib.redraft_abi_version.argtypes, lib.redraft_abi_version.restype = [], i
    lib.redraft_cpus.argtypes, lib.redraft_cpus.restype = [], i
    lib.redraft_grade.argtypes = [s, z, s, z, s, z, i64]
    lib.redraft_grade.restype = ctypes.c_void_p
    lib.redraft_verify.argtypes = [s, z, s, z, s, z, i64]
    lib.redraft_verify.restype = i
    pp, zp = ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t)
    lib.redraft_grade_batch.argtypes = [z, pp, zp, pp, zp, pp, zp, i64, i, ctypes.POINTER(ctypes.c_uint8), i]
    lib.redraft_grade_batch.restype = ctypes.c_void_p
    lib.redraft_extract.argtypes = [s, z]
    lib.redraft_extract.restype = ctypes.c_void_p
    lib.redraft_free.argtypes, lib.redraft_free.restype = [ctypes.c_void_p], None
    got = lib.redraft_abi_version()
    if got != ABI_VERSION:
        raise OSError(f"redraft_grade: {path} has C ABI version {got}, this module needs {ABI_VERSION}")
    return lib


def lib():
    """The loaded library (loading it on first use)."""
    global _lib, _pid
    l = _lib
    if l is not None:
        if _pid != os.getpid():
            raise ForkError(
                "redraft_grade: the grader library was loaded before this process was forked, and a Go "
                "runtime does not survive fork(); grade only after forking (the library loads on first "
                "use), or use the 'spawn' or 'forkserver' start method"
            )
        return l
    with _lock:
        if _lib is None:
            _lib = _load()
            _pid = os.getpid()
    return lib()


def encode(s):
    """UTF-8 bytes of s (str, bytes, None or anything str() takes); lone
    surrogates pass through rather than raising."""
    if s is None:
        return b""
    if isinstance(s, bytes):
        return s
    if not isinstance(s, str):
        s = str(s)
    return s.encode("utf-8", "surrogatepass")


def timeout_ms(timeout):
    """The C ABI's timeout: milliseconds, <= 0 for the default (2 s)."""
    if timeout is None:
        return 0
    ms = int(float(timeout) * 1000)
    return max(ms, 1)


def _take(ptr):
    """The JSON document at ptr, freed."""
    l = lib()
    try:
        return json.loads(ctypes.string_at(ptr).decode("utf-8", "replace"))
    finally:
        l.redraft_free(ptr)


def grade_one(gold, pred, finish, timeout):
    g, p = encode(gold), encode(pred)
    f = encode(finish) if finish else None
    return _take(lib().redraft_grade(g, len(g), p, len(p), f, len(f) if f else 0, timeout_ms(timeout)))


def verify_one(gold, pred, finish, timeout):
    g, p = encode(gold), encode(pred)
    f = encode(finish) if finish else None
    return lib().redraft_verify(g, len(g), p, len(p), f, len(f) if f else 0, timeout_ms(timeout)) == 1


def extract(text):
    t = encode(text)
    return _take(lib().redraft_extract(t, len(t)))


def cpus():
    """The number of goroutines a batch runs on by default (GOMAXPROCS)."""
    return lib().redraft_cpus()


def _strings(values):
    enc = [v.encode("utf-8", "surrogatepass") if type(v) is str else encode(v) for v in values]
    arr = (ctypes.c_char_p * len(enc))(*enc)
    lens = (ctypes.c_size_t * len(enc))(*map(len, enc))
    return arr, lens, enc


def grade_chunk(golds, preds, finishes, timeout, workers, want_json):
    """Grades one chunk in the library; returns (correct flags, verdicts or
    None)."""
    n = len(golds)
    l = lib()
    ga, gl, _gkeep = _strings(golds)
    pa, pl, _pkeep = _strings(preds)
    if finishes is not None:
        fa, fl, _fkeep = _strings(finishes)
    else:
        fa = fl = None
    correct = (ctypes.c_uint8 * n)()
    ptr = l.redraft_grade_batch(n, ga, gl, pa, pl, fa, fl, timeout_ms(timeout), int(workers or 0), correct, 1 if want_json else 0)
    verdicts = _take(ptr) if want_json else None
    return [c == 1 for c in correct], verdicts
