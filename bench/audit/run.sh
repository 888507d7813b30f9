#!/usr/bin/env bash
# The audit's speed next to the columnar engines, on the quickstart shard
# written REPEAT times (default 200: 1,055,200 rows), 2 workers / 2 threads:
# the reward histogram against pyarrow.compute and the full audit (every
# metric group) against the same metrics in DuckDB SQL
# (bench/audit/duckdb_audit.py, which e2e's TestAuditMatchesDuckDB checks
# against the audit). Every tool runs in its own process, ROUNDS times
# (default 3) in turn, 3 timed runs a process; the table gives the median of
# all runs, their range and the largest peak resident set. The full audit is
# also measured on REPEAT/10 copies, to show memory flat in the row count.
# One command: bench/audit/run.sh [REPEAT [ROUNDS]]
set -euo pipefail
cd "$(dirname "$0")/../.."
repeat=${1:-200}
rounds=${2:-3}
threads=${BENCH_THREADS:-2}
[ -f out/quickstart/data/rl/train-00000.parquet ] || go run ./cmd/redraft run --config configs/quickstart.yaml --progress off --no-audit >/dev/null
py=$(scripts/python-env.sh)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/bench" ./bench/audit
small=$((repeat / 10))
"$dir/bench" -dir "$dir/big" -repeat "$repeat" -task none
"$dir/bench" -dir "$dir/small" -repeat "$small" -task none
echo "nproc $(nproc); load at the start:$(uptime | sed 's/.*load average//')" >&2
for _ in $(seq "$rounds"); do
  GOMAXPROCS=$threads "$dir/bench" -dir "$dir/big" -task hist -runs 3 -workers "$threads"
  "$py" bench/audit/pyarrow_bench.py "$dir/big" "$threads"
  GOMAXPROCS=$threads "$dir/bench" -dir "$dir/big" -task full -runs 3 -workers "$threads"
  "$py" bench/audit/duckdb_audit.py "$dir/big" --bench --threads "$threads"
  GOMAXPROCS=$threads "$dir/bench" -dir "$dir/small" -task full -runs 3 -workers "$threads"
  "$py" bench/audit/duckdb_audit.py "$dir/small" --bench --threads "$threads"
done >"$dir/results.jsonl"
echo "load at the end:$(uptime | sed 's/.*load average//')" >&2
"$py" - "$dir/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
agg = {}
for r in rows:
    a = agg.setdefault((r["task"], r["rows"], r["tool"]), {"secs": [], "rss": 0})
    a["secs"] += r["seconds"]
    a["rss"] = max(a["rss"], r["peak_rss_mb"])
print("| task | rows | tool | seconds (median) | range | rows/s | peak RSS | redraft rows/s ÷ peer rows/s |")
print("|---|---:|---|---:|---:|---:|---:|---:|")
for (task, n, tool), a in sorted(agg.items(), key=lambda kv: (kv[0][0] != "reward histogram", -kv[0][1], not kv[0][2].startswith("redraft"))):
    med = statistics.median(a["secs"])
    ratio = ""
    if not tool.startswith("redraft"):
        ours = statistics.median(next(b["secs"] for (t2, n2, tool2), b in agg.items() if t2 == task and n2 == n and tool2.startswith("redraft")))
        ratio = "%.2fx" % (med / ours)
    print("| %s | {:,} | %s | %.3f | %.3f-%.3f | %.2f M | %.0f MB | %s |".format(n) % (
        task, tool, med, min(a["secs"]), max(a["secs"]), n / med / 1e6, a["rss"], ratio))
PY
