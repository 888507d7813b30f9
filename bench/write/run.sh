#!/usr/bin/env bash
# redraft's Parquet writer next to pyarrow's on the same rl rows: the
# quickstart's rows (5,276, real GSM8K solutions) written COPIES times
# (default 190: 1,002,440 rows) and COPIES/10 times, with the token track off
# (the quickstart as configured) and on (the same run with output.tokenizer,
# Qwen3's tokenizer.json from scripts/fetch-tokenizers.sh, chat format
# qwen3). redraft: export.ShardWriter as a run uses it (bench/write/main.go);
# pyarrow: pq.write_table with the shard's own Arrow schema, zstd level 3,
# 4096-row row groups, files of 131,072 rows (bench/write/pyarrow_write.py).
# Every measurement is its own process, ROUNDS times (default 3) in turn;
# the table gives medians, the largest peak resident set and the output size.
# One command: bench/write/run.sh [COPIES [ROUNDS]]
#
# bench/write/run.sh --zstd [ROUNDS] prints the table of the compressors
# alone instead: the shard writer's zstd (klauspost/compress, SpeedDefault)
# and pyarrow's (libzstd, level 3) on the same bytes, the quickstart rows'
# text (response, prompt, task_metadata, grade_reason; 4.6 MB, written 5
# times) in 256 KiB pages.
set -euo pipefail
cd "$(dirname "$0")/../.."
py=$(scripts/python-env.sh)
if [ "${1:-}" = --zstd ]; then
  rounds=${2:-5}
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  [ -f out/quickstart/data/rl/train-00000.parquet ] || go run ./cmd/redraft run --config configs/quickstart.yaml --progress off --no-audit >/dev/null
  go build -o "$dir/bench" ./bench/write
  "$py" -c '
import sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1]).to_pylist()
text = b"".join((v or "").encode() for r in t
               for v in (r["response"], *(m["content"] for m in r["prompt"]), r["task_metadata"], r["grade_reason"]))
with open(sys.argv[2], "wb") as f:
    f.write(text * 5)
' out/quickstart/data/rl/train-00000.parquet "$dir/corpus"
  echo "nproc $(nproc); load at the start:$(uptime | sed 's/.*load average//')" >&2
  for _ in $(seq "$rounds"); do
    "$dir/bench" -zstd "$dir/corpus" -runs 3
    "$py" bench/write/pyarrow_write.py --zstd "$dir/corpus" 3
  done >"$dir/results.jsonl"
  echo "load at the end:$(uptime | sed 's/.*load average//')" >&2
  "$py" - "$dir/results.jsonl" <<'PY'
import json, statistics, sys
agg = {}
for r in (json.loads(l) for l in open(sys.argv[1]) if l.strip()):
    a = agg.setdefault(r["tool"], {"secs": [], "in": r["bytes_in"], "out": r["bytes_out"]})
    a["secs"] += r["seconds"]
print("| compressor | bytes in | bytes out | ratio | seconds (median) | MB/s |")
print("|---|---:|---:|---:|---:|---:|")
for tool, a in agg.items():
    med = statistics.median(a["secs"])
    print("| %s | {:,} | {:,} | %.2f | %.3f | %.0f |".format(a["in"], a["out"]) % (tool, a["in"] / a["out"], med, a["in"] / med / 1e6))
PY
  exit 0
fi
copies=${1:-190}
rounds=${2:-3}
tok=$(scripts/fetch-tokenizers.sh)/qwen3/tokenizer.json
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/redraft" ./cmd/redraft
go build -o "$dir/bench" ./bench/write
"$dir/redraft" run --config configs/quickstart.yaml --progress off --no-audit --out "$dir/off" >/dev/null
sed -e "s|^  dir: .*|  dir: $dir/on\n  tokenizer: $tok\n  chat_format: qwen3|" configs/quickstart.yaml >"$dir/on.yaml"
"$dir/redraft" run --config "$dir/on.yaml" --progress off --no-audit >/dev/null
small=$((copies / 10))
echo "nproc $(nproc); load at the start:$(uptime | sed 's/.*load average//')" >&2
for _ in $(seq "$rounds"); do
  for track in off on; do
    shard=$dir/$track/data/rl/train-00000.parquet
    for n in "$copies" "$small"; do
      "$dir/bench" -shard "$shard" -copies "$n" -dir "$dir/out" -label "$track"
      "$py" bench/write/pyarrow_write.py "$shard" "$n" "$dir/out" "$track"
    done
  done
done >"$dir/results.jsonl"
echo "load at the end:$(uptime | sed 's/.*load average//')" >&2
"$py" - "$dir/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
agg = {}
for r in rows:
    a = agg.setdefault((r["rows_kind"], r["rows"], r["tool"]), {"secs": [], "cpu": [], "rss": 0, "bytes": r["bytes"], "shards": r["shards"]})
    a["secs"] += r["seconds"]
    a["cpu"].append(r.get("cpu_seconds"))
    a["rss"] = max(a["rss"], r["peak_rss_mb"])
print("| token track | rows | tool | seconds (median) | range | rows/s | MB/s written | peak RSS | files written | redraft speed / pyarrow's |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
for (track, n, tool), a in sorted(agg.items(), key=lambda kv: (kv[0][0], -kv[0][1], not kv[0][2].startswith("redraft"))):
    med = statistics.median(a["secs"])
    ratio = ""
    if tool.startswith("redraft"):
        peer = next(b for (t2, n2, tool2), b in agg.items() if t2 == track and n2 == n and not tool2.startswith("redraft"))
        ratio = "%.2f" % (statistics.median(peer["secs"]) / med)
    print("| %s | {:,} | %s | %.2f | %.2f-%.2f | %.0f k | %.1f | %.0f MB | %.1f MB in %d files | %s |".format(n) % (
        track, tool, med, min(a["secs"]), max(a["secs"]), n / med / 1e3, a["bytes"] / med / 1e6, a["rss"], a["bytes"] / 1e6, a["shards"], ratio))
PY
