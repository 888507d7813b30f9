# redraft's test harness, run inside the sandbox: python3 harness.py ENTRY_POINT
# The first line of stdin is a nonce; every report line (on fd 3) starts with
# it. Reports: plan, syntax_error, program_error, tests_error, test, done.
import ast
import json
import os
import sys
import traceback


def _main():
    nonce = sys.stdin.readline().strip()
    entry = sys.argv[1] if len(sys.argv) > 1 else ""
    rep = os.fdopen(3, "w", buffering=1)
    write = rep.write
    dumps = json.dumps

    def emit(**k):
        write(nonce + " " + dumps(k) + "\n")
        rep.flush()

    def err(e):
        s = "".join(traceback.format_exception_only(type(e), e)).strip()
        return s[-2000:]

    with open("solution.py") as f:
        src = f.read()
    with open("tests.py") as f:
        tests = f.read()
    try:
        tree = ast.parse(tests, "tests.py")
    except SyntaxError as e:
        emit(kind="tests_error", error=err(e))
        return
    check = None
    if entry:
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "check":
                check = node
    has_assert = lambda n: any(isinstance(x, ast.Assert) for x in ast.walk(n))
    if check is not None:
        setup, units = [n for n in tree.body if not isinstance(n, ast.Assert)], check.body
    else:
        setup, units = [], tree.body
    names = []
    for n in units:
        seg = ast.get_source_segment(tests, n) or ""
        if has_assert(n):
            names.append(seg[:300])
    emit(kind="plan", total=len(names), names=names, style="check" if check is not None else "asserts")

    try:
        code = compile(src, "solution.py", "exec")
    except (SyntaxError, ValueError) as e:
        emit(kind="syntax_error", error=err(e))
        return
    g = {"__name__": "solution", "__builtins__": __builtins__}
    try:
        exec(code, g)
    except BaseException as e:  # SystemExit too: exiting is not passing
        emit(kind="program_error", error=err(e))
        return
    try:
        exec(compile(ast.Module(body=setup, type_ignores=[]), "tests.py", "exec"), g)
        if check is not None:
            if entry not in g:
                emit(kind="program_error", error="NameError: entry point %r is not defined" % entry)
                return
            g["candidate"] = g[entry]
    except BaseException as e:
        emit(kind="tests_error", error=err(e))
        return
    i = 0
    for n in units:
        c = compile(ast.Module(body=[n], type_ignores=[]), "tests.py", "exec")
        if not has_assert(n):
            try:
                exec(c, g)
            except BaseException as e:
                # A statement between tests failed (it usually calls the
                # candidate): the tests after it do not run.
                emit(kind="stopped", error=err(e))
                return
            continue
        try:
            exec(c, g)
            emit(kind="test", i=i, passed=True)
        except BaseException as e:
            emit(kind="test", i=i, passed=False, error=err(e))
        i += 1
    emit(kind="done")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


_main()
