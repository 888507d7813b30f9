#!/usr/bin/env bash
# A local model to generate with, on CPU, in one command: llama.cpp's
# llama-server serving SmolLM2-135M-Instruct on a fixed port.
#
#   scripts/local-model.sh start [--port N]  start it in the background (built and fetched on first use)
#   scripts/local-model.sh stop              stop it
#   scripts/local-model.sh status | url      whether it runs; its base URL
#
# start prints the base URL, the model name and the command that runs a
# preset against it; the last stdout line is the base URL. The first start
# builds llama-server from source (several minutes on 2 cores) and fetches
# the weights (about 100 MB); both are cached under
# ${REDRAFT_CACHE:-$HOME/.cache/redraft}/llama, so later starts take seconds.
#
# Port: 8000 (REDRAFT_LOCAL_PORT or --port), where the presets' endpoint
# points; `redraft run --endpoint URL --model NAME` points any configuration
# at it. Context: 4 slots (REDRAFT_LLAMA_PARALLEL) of 8192 tokens each
# (REDRAFT_LOCAL_SLOT_CTX; 8192 is the model's training context, which
# llama-server caps a slot at), about 0.9 GB of memory. A request's prompt
# and max_tokens share its slot; every preset's longest request fits (RISE's
# fourth turn, the task and three earlier answers of up to 1,024 tokens and
# its own: at most about 5,100; pipeline's TestPresetsFitLocalModel). When a
# slot does fill up, the response ends with finish_reason length as at
# max_tokens, and redraft records response_metadata.length_limit "context"
# instead of "max_tokens". Requests beyond the slots wait at the server.
# Prompt caching is off, so that a seed always reproduces its sample.
# Threads: half the cores (REDRAFT_LLAMA_THREADS).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${REDRAFT_CACHE:-$HOME/.cache/redraft}"
[[ "$cache" == /* ]] || cache="$PWD/$cache"

PORT="${REDRAFT_LOCAL_PORT:-8000}"
PARALLEL="${REDRAFT_LLAMA_PARALLEL:-4}"
SLOT_CTX="${REDRAFT_LOCAL_SLOT_CTX:-8192}"
MODEL_ID="SmolLM2-135M-Instruct" # the --alias scripts/llama-server.sh serves it under

cores() { nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2; }

# The server's settings; its own run directory, so it neither meets a server
# the tests start nor one started by hand with scripts/llama-server.sh.
export REDRAFT_LLAMA_RUN_DIR="${REDRAFT_LOCAL_RUN_DIR:-$cache/llama/local}"
export REDRAFT_LLAMA_PARALLEL="$PARALLEL"
export REDRAFT_LLAMA_CTX="$((PARALLEL * SLOT_CTX))"
# Half the cores (llama.cpp's own default is the physical cores): with a
# thread on every core, a machine that is also busy with anything else slows
# decoding many times over (measured on 2 cores busy with other work: 0.6
# tokens/s per slot with 2 threads, about 7 with 1).
n_cores="$(cores)"
export REDRAFT_LLAMA_THREADS="${REDRAFT_LLAMA_THREADS:-$((n_cores > 1 ? n_cores / 2 : 1))}"
export REDRAFT_LLAMA_EXTRA_ARGS="--no-cache-prompt ${REDRAFT_LLAMA_EXTRA_ARGS:-}"

die() { printf 'local-model.sh: error: %s\n' "$*" >&2; exit 1; }

cmd_start() {
  local port="$PORT" url
  while (($#)); do
    case "$1" in
      --port) [[ $# -ge 2 ]] || die "--port needs a value"; port="$2"; shift 2 ;;
      --port=*) port="${1#--port=}"; shift ;;
      *) die "start: unknown argument '$1'" ;;
    esac
  done
  [[ "$port" =~ ^[0-9]+$ ]] || die "bad port '$port'"
  if ! url="$("$here/llama-server.sh" start --port "$port" | tail -n1)" || [[ -z "$url" ]]; then
    die "could not start the local model on port $port (is another server using it? try --port N)"
  fi
  cat <<EOF
Local model ready: $MODEL_ID (llama.cpp llama-server, CPU, $PARALLEL slots of $SLOT_CTX tokens)
  endpoint  $url
  model     $MODEL_ID
Run a preset against it (the presets read their tasks from tasks.jsonl; at most
$PARALLEL requests at once, one per slot, so that none waits in the server's queue):
  redraft run --config configs/presets/grpo.yaml --endpoint $url --model $MODEL_ID --max-in-flight $PARALLEL
or put it in a configuration:
  endpoint: {base_url: $url, model: $MODEL_ID, max_in_flight: $PARALLEL}
Stop it with: scripts/local-model.sh stop
$url
EOF
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    start) cmd_start "$@" ;;
    stop) "$here/llama-server.sh" stop ;;
    status) "$here/llama-server.sh" status ;;
    url) "$here/llama-server.sh" url ;;
    -h | --help | help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
}

main "$@"; exit
