"""Prints bench/pygrade's tables (Markdown) from bench.py's and serveload's
JSON lines.

  report.py GRADERS.jsonl SERVE.jsonl CORPUS.jsonl
"""
import json
import os
import platform
import sys


def load(path):
    return [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    rows, serve, corpus = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
    distinct = sum(not c["repeat"] for c in corpus)
    size = sum(len(c["response"]) for c in corpus) / len(corpus)
    mv = next((r for r in rows if r["grader"].startswith("Math-Verify")), None)
    print(f"{len(corpus):,} real responses ({distinct:,} distinct, the rest repeated from the start; "
          f"{size:.0f} bytes on average), {os.cpu_count()} cores ({cpu_model()}), "
          f"Python {platform.python_version()}, one run")
    print()
    print("| grader | responses/s | x Math-Verify | public cases agreed | labelled responses agreed |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        ratio = f"{r['per_sec'] / mv['per_sec']:,.0f}x" if mv else "-"
        print(f"| {r['grader']} ({r['version']}) | {r['per_sec']:,.0f} | {ratio} | "
              f"{r['public_agree']}/{r['public_total']} ({100 * r['public_agree'] / r['public_total']:.1f}%) | "
              f"{r['labels_agree']:,}/{r['labels_total']:,} ({100 * r['labels_agree'] / r['labels_total']:.1f}%) |")
    print()
    print("| redraft serve, POST /get_reward | responses/s | requests/s | p50 latency | p99 latency | failed |")
    print("|---|---:|---:|---:|---:|---:|")
    for s in serve:
        print(f"| {s['clients']} clients x {s['batch']} queries a request | {s['per_sec']:,.0f} | {s['req_per_sec']:,.0f} | "
              f"{s['p50_ms']:.1f} ms | {s['p99_ms']:.1f} ms | {s['failed']} |")


if __name__ == "__main__":
    main()
