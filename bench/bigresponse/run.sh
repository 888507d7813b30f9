#!/usr/bin/env bash
# Peak memory of a redraft run whose responses are large: 20 responses of
# 50 MB at 4 in flight from a local server on 127.0.0.1, against the target
# of a peak under 4x the bytes in flight; prints a table. Extra arguments go
# to the Go program (go run ./bench/bigresponse -h lists them), e.g.
# bench/bigresponse/run.sh -stream -repeat 3
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/redraft" ./cmd/redraft
go build -o "$tmp/bigresponse" ./bench/bigresponse
echo "nproc: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$tmp/bigresponse" -redraft "$tmp/redraft" "$@"
