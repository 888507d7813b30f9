#!/usr/bin/env bash
# Opening a 1,000,000-row run in `redraft view`: time to the first view,
# the filtered, deep, group and text-search pages, resident memory, and
# pyarrow reading the same first page beside it; prints a table. Writes the
# quickstart first when out/quickstart is missing. Extra arguments go to the
# Go program (go run ./bench/view -h lists them), e.g.
# bench/view/run.sh -repeat 5 -dir /tmp/view-1m (keeps the run for reuse).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
[ -f out/quickstart/data/rl/train-00000.parquet ] || go run ./cmd/redraft run --config configs/quickstart.yaml --progress off --no-audit >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/redraft" ./cmd/redraft
go build -o "$tmp/view-bench" ./bench/view
py=$(scripts/python-env.sh 2>/dev/null || true)
echo "nproc: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$tmp/view-bench" -redraft "$tmp/redraft" -python "$py" "$@"
