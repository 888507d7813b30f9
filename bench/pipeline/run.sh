#!/usr/bin/env bash
# Runs redraft's pipeline benchmarks and prints one table: overhead against a
# zero-latency in-process server, latency hiding against a server with fixed
# latency, and completion tokens/s against a real llama-server (SmolLM2-135M,
# built and started by scripts/llama-server.sh, stopped on exit) through
# redraft and through a minimal client with the same requests.
#
# Extra arguments go to the Go program (go run ./bench/pipeline -h lists them),
# e.g. bench/pipeline/run.sh -cpuprofile /tmp/cpu.prof
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

tmp=$(mktemp -d)
export REDRAFT_LLAMA_RUN_DIR="$tmp/llama-run"
trap 'scripts/llama-server.sh stop >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
scripts/llama-server.sh build
url=$(scripts/llama-server.sh start | tail -n1)

go build -o "$tmp/bench" ./bench/pipeline
echo "nproc: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$tmp/bench" -llama "$url" "$@"
