#!/usr/bin/env bash
# Benchmarks redraft's math grader against Math-Verify on the same 10,000
# responses (~1.5 KB each, real answers from the bundled MATH-500 and GSM8K
# data inside reasoning text) and prints one table: responses/s, the ratio,
# agreement on the public conformance cases, and redraft's throughput at
# 1.5, 8, 32 and 100 KB per response.
#
# Math-Verify is installed from PyPI (math-verify[antlr4_13_2], spelled
# antlr4-13-2 as its metadata normalises the extra) into
# ${REDRAFT_CACHE:-$HOME/.cache/redraft}/venv-bench.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${REDRAFT_CACHE:-$HOME/.cache/redraft}
venv=$cache/venv-bench
n=${BENCH_N:-10000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root"

go build -o "$tmp/grade" ./bench/grade
"$tmp/grade" build -n "$n" -size 1500 -out "$tmp/responses.jsonl"

if [ ! -x "$venv/bin/python" ]; then
	mkdir -p "$cache"
	python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'math-verify[antlr4-13-2]' >&2

echo "timing redraft ..." >&2
"$tmp/grade" time -in "$tmp/responses.jsonl" -procs 1 -out "$tmp/go.json"
"$tmp/grade" time -in "$tmp/responses.jsonl" -procs 0 -out "$tmp/gopar.json"
"$tmp/grade" public -in rewards/mathgrade/testdata/public_cases.jsonl -out "$tmp/gopub.json"
"$tmp/grade" sizes -out "$tmp/sizes.json"
echo "timing Math-Verify (this takes a while) ..." >&2
"$venv/bin/python" bench/grade/mathverify_bench.py "$tmp/responses.jsonl" \
	rewards/mathgrade/testdata/public_cases.jsonl "$tmp/mv.json"

"$tmp/grade" report -go "$tmp/go.json" -gopar "$tmp/gopar.json" -gopub "$tmp/gopub.json" \
	-mv "$tmp/mv.json" -sizes "$tmp/sizes.json"
