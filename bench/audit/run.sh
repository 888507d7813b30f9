#!/usr/bin/env bash
# Reward-histogram scan speed of `redraft audit` next to pyarrow.compute, on
# the quickstart shard written REPEAT times (default 200: 1,055,200 rows),
# 2 workers / 2 threads. One command: bench/audit/run.sh [REPEAT]
set -euo pipefail
cd "$(dirname "$0")/../.."
repeat=${1:-200}
threads=${BENCH_THREADS:-2}
[ -f out/quickstart/data/rl/train-00000.parquet ] || go run ./cmd/redraft run --config configs/quickstart.yaml --progress off --no-audit >/dev/null
py=$(scripts/python-env.sh)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/bench" ./bench/audit
results=$(GOMAXPROCS=$threads "$dir/bench" -dir "$dir/shards" -repeat "$repeat" -workers "$threads"; "$py" bench/audit/pyarrow_bench.py "$dir/shards" "$threads")
echo "$results" | "$py" -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
print("| tool | task | rows | seconds (best of 3) | rows/s |")
print("|---|---|---:|---:|---:|")
for r in rows:
    print("| %s | %s | {:,} | %.3f | %.1f M |".format(r["rows"]) % (r["tool"], r["task"], r["seconds"], r["rows"] / r["seconds"] / 1e6))
'
