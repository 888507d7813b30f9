#!/usr/bin/env bash
# Peak memory of redraft runs of 10,000 and 1,000,000 rollouts (fake server,
# 4 samples per task); prints a table. Extra arguments go to the Go program,
# e.g. bench/memory/run.sh -rollouts 10000,100000,1000000
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/redraft" ./cmd/redraft
echo "nproc: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
go run ./bench/memory -redraft "$tmp/redraft" "$@"
