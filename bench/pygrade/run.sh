#!/usr/bin/env bash
# Benchmarks redraft_grade (the wheel of scripts/build-python.sh) inside
# Python against Math-Verify and verl's string graders on the same 10,000
# real responses (bench/pygrade/corpus.py: GSM8K model and reference
# solutions, MR-GSM8K, PRM800K, MATH-500, the public grader cases), with
# agreement on the asserted public cases and on the labelled responses, and
# redraft serve's throughput and latency under batch load. Prints Markdown
# tables (docs/python.md holds one run).
#
# Math-Verify 0.9.0 (with its antlr4-13-2 extra) runs in
# ${REDRAFT_CACHE:-$HOME/.cache/redraft}/venv-pygrade-bench, verl in the
# environment of scripts/trainers-env.sh; redraft_grade is the same unpacked
# wheel in both. BENCH_N changes the number of responses, BENCH_SECONDS the
# length of each server load.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${REDRAFT_CACHE:-$HOME/.cache/redraft}
n=${BENCH_N:-10000}
secs=${BENCH_SECONDS:-5}
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$root"

whl=$(scripts/build-python.sh "$tmp/dist" | tail -n1)
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$whl" "$tmp/site"
python3 bench/pygrade/corpus.py "$root" "$tmp/corpus.jsonl" "$n"

mvenv=$cache/venv-pygrade-bench
if [ ! -x "$mvenv/bin/python" ]; then
	mkdir -p "$cache"
	python3 -m venv "$mvenv"
fi
"$mvenv/bin/python" -m pip install --quiet --disable-pip-version-check 'math-verify[antlr4-13-2]==0.9.0' >&2
tpy=$(scripts/trainers-env.sh)

PYTHONPATH=$tmp/site "$mvenv/bin/python" bench/pygrade/bench.py redraft,mathverify "$tmp/corpus.jsonl" \
	rewards/mathgrade/testdata/public_cases.jsonl "$tmp/graders.jsonl"
PYTHONPATH=$tmp/site "$tpy" bench/pygrade/bench.py verl "$tmp/corpus.jsonl" \
	rewards/mathgrade/testdata/public_cases.jsonl "$tmp/graders.jsonl" 2>/dev/null

echo "timing redraft serve ..." >&2
go build -o "$tmp/redraft" ./cmd/redraft
go build -o "$tmp/serveload" ./bench/pygrade/serveload
"$tmp/redraft" serve --addr 127.0.0.1:0 >"$tmp/serve.out" 2>/dev/null &
pid=$!
for _ in $(seq 100); do
	grep -q http "$tmp/serve.out" 2>/dev/null && break
	sleep 0.1
done
url=$(grep -o 'http://[^ ]*' "$tmp/serve.out")get_reward
for load in "4 256" "16 64" "32 1"; do
	set -- $load
	"$tmp/serveload" -url "$url" -corpus "$tmp/corpus.jsonl" -clients "$1" -batch "$2" -duration "${secs}s" >>"$tmp/serve.jsonl"
done
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=

python3 bench/pygrade/report.py "$tmp/graders.jsonl" "$tmp/serve.jsonl" "$tmp/corpus.jsonl"
