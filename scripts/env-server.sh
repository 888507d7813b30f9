#!/usr/bin/env bash
# Interactive environments for redraft, served over HTTP in the OpenEnv style
# (docs/environments.md): ScienceWorld, TextWorldExpress, and the example.
#
#   scripts/env-server.sh venv                    build (once) the environments' venv, print its python
#   scripts/env-server.sh start ENV [--port N] [SERVER ARGS]
#                                                 start in the background; last stdout line is the URL
#   scripts/env-server.sh stop ENV                stop it and its simulators (idempotent)
#   scripts/env-server.sh status ENV | url ENV | paths
#
# ENV is scienceworld, textworld-express or example. Without --port the
# server picks a free port and the URL says which. SERVER ARGS go to the
# server (--max-sessions N, --idle-timeout S, --acquire-timeout S).
#
# The venv lives in ${REDRAFT_CACHE:-$HOME/.cache/redraft}/venv-envs, made from
# python/requirements-envs.txt and rebuilt when that file changes; the example
# needs only python3. Runtime files (pid, port, log) go to
# ${REDRAFT_ENV_RUN_DIR:-<cache>/envs/run}. Diagnostics go to stderr; stdout
# carries only results, so `url=$(scripts/env-server.sh start scienceworld | tail -n1)`
# is safe.
#
# Tunables (env): REDRAFT_ENV_MAX_SESSIONS (4), REDRAFT_ENV_START_TIMEOUT
# seconds (60), REDRAFT_ENV_JAVA_OPTS (-Xmx512m -XX:+UseSerialGC: each session
# holds one simulator JVM, about 1.2 GB resident with Java's defaults and
# 0.3 GB with these).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
CACHE="${REDRAFT_CACHE:-$HOME/.cache/redraft}"
[[ "$CACHE" == /* ]] || CACHE="$PWD/$CACHE"
VENV="$CACHE/venv-envs"
REQ="$root/python/requirements-envs.txt"
RUN_DIR="${REDRAFT_ENV_RUN_DIR:-$CACHE/envs/run}"
MAX_SESSIONS="${REDRAFT_ENV_MAX_SESSIONS:-4}"
START_TIMEOUT="${REDRAFT_ENV_START_TIMEOUT:-60}"
JAVA_OPTS="${REDRAFT_ENV_JAVA_OPTS:--Xmx512m -XX:+UseSerialGC}"

log() { printf 'env-server.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

script_of() { # ENV -> the server's file name
  case "$1" in
    scienceworld) echo scienceworld_env.py ;;
    textworld-express) echo textworld_express_env.py ;;
    example) echo example_env.py ;;
    *) die "unknown environment '$1' (scienceworld, textworld-express, example)" ;;
  esac
}

# ---- venv ---------------------------------------------------------------------
cmd_venv() {
  command -v python3 >/dev/null || die "python3 is required"
  mkdir -p "$CACHE"
  # One builder at a time (parallel test packages); fd 9 must not leak into
  # a server, or it would hold the lock.
  if command -v flock >/dev/null; then
    exec 9>"$CACHE/.venv-envs.lock"
    flock 9
  fi
  local want stamp="$VENV/.requirements.sha256" start=$SECONDS
  want=$(sha256sum "$REQ" | cut -d' ' -f1)
  if [[ ! -x "$VENV/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    log "building $VENV from python/requirements-envs.txt"
    rm -rf "$VENV"
    python3 -m venv "$VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ" >&2
    echo "$want" >"$stamp" # last: a half-built venv never looks current
    log "built $VENV in $((SECONDS - start))s"
  fi
  if command -v flock >/dev/null; then exec 9>&-; fi
  printf '%s\n' "$VENV/bin/python"
}

# ---- server -------------------------------------------------------------------
pid_file() { printf '%s/%s.pid\n' "$RUN_DIR" "$1"; }
port_file() { printf '%s/%s.port\n' "$RUN_DIR" "$1"; }
log_file() { printf '%s/%s.log\n' "$RUN_DIR" "$1"; }

# A pid counts as ours while it is alive (not a zombie) and runs our server
# (pids get reused).
pid_alive() {
  local pid="$1" script="$2" state cmdline
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/stat" ]]; then
    state="$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null || true)"
    [[ "$state" != Z ]] || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    [[ -z "$cmdline" || "$cmdline" == *"$script"* ]] || return 1
  fi
}

running_pid() { # ENV -> the server's pid, if it runs
  local pid
  [[ -f "$(pid_file "$1")" ]] || return 1
  pid="$(cat "$(pid_file "$1")" 2>/dev/null || true)"
  pid_alive "$pid" "$(script_of "$1")" || return 1
  printf '%s\n' "$pid"
}

health_code() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/health" 2>/dev/null || true
}

cmd_start() {
  local env="${1:-}" script py port="0" pid deadline url code
  [[ -n "$env" ]] || die "start: which environment?"
  shift
  script="$(script_of "$env")"
  local args=()
  while (($#)); do
    case "$1" in
      --port) [[ $# -ge 2 ]] || die "--port needs a value"; port="$2"; shift 2 ;;
      --port=*) port="${1#--port=}"; shift ;;
      *) args+=("$1"); shift ;;
    esac
  done
  [[ "$port" =~ ^[0-9]+$ ]] || die "bad port '$port'"
  if pid="$(running_pid "$env")"; then
    local cur
    cur="$(cat "$(port_file "$env")")"
    [[ "$port" == 0 || "$port" == "$cur" ]] || die "$env already runs on port $cur (pid $pid); stop it first"
    log "$env already running (pid $pid)"
    printf 'http://127.0.0.1:%s\n' "$cur"
    return 0
  fi
  command -v curl >/dev/null || die "curl is required"
  if [[ "$env" == example ]]; then
    py="$(command -v python3)" || die "python3 is required"
  else
    command -v java >/dev/null || die "$env needs Java 17 on PATH (its simulator is a JAR)"
    py="$(cmd_venv)"
  fi
  mkdir -p "$RUN_DIR"
  local lf
  lf="$(log_file "$env")"
  # Its own session (process group): stop ends the server and its JVMs.
  JAVA_TOOL_OPTIONS="$JAVA_OPTS" setsid nohup "$py" "$root/scripts/envs/$script" \
    --port "$port" --max-sessions "$MAX_SESSIONS" ${args[@]+"${args[@]}"} \
    </dev/null >"$lf" 2>&1 9>&- &
  pid=$!
  printf '%s\n' "$pid" >"$(pid_file "$env")"
  deadline=$((SECONDS + START_TIMEOUT))
  url=""
  while ((SECONDS < deadline)); do
    if ! pid_alive "$pid" "$script"; then
      rm -f "$(pid_file "$env")"
      tail -n 30 "$lf" >&2 || true
      die "$env exited during startup (log: $lf)"
    fi
    url="$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$lf" | head -n1)"
    if [[ -n "$url" ]]; then
      port="${url##*:}"
      code="$(health_code "$port")"
      if [[ "$code" == 200 ]]; then
        printf '%s\n' "$port" >"$(port_file "$env")"
        log "$env pid $pid ready at $url (log: $lf)"
        printf '%s\n' "$url"
        return 0
      fi
    fi
    sleep 0.2
  done
  cmd_stop "$env" >/dev/null
  tail -n 30 "$lf" >&2 || true
  die "$env did not become healthy within ${START_TIMEOUT}s (log: $lf)"
}

cmd_stop() {
  local env="${1:-}" pid i
  [[ -n "$env" ]] || die "stop: which environment?"
  if pid="$(running_pid "$env")"; then
    # The server is its process group's leader: TERM the group.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do # up to 10s
      pid_alive "$pid" "$(script_of "$env")" || break
      sleep 0.1
    done
    if pid_alive "$pid" "$(script_of "$env")"; then
      log "pid $pid ignored TERM, killing"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $env (pid $pid)"
  else
    log "$env not running"
  fi
  rm -f "$(pid_file "$env")" "$(port_file "$env")"
}

cmd_status() {
  local env="${1:-}" pid port
  [[ -n "$env" ]] || die "status: which environment?"
  script_of "$env" >/dev/null
  if pid="$(running_pid "$env")"; then
    port="$(cat "$(port_file "$env")" 2>/dev/null || true)"
    printf 'running pid=%s url=http://127.0.0.1:%s health=%s\n' "$pid" "$port" "$(health_code "$port")"
  else
    printf 'stopped\n'
    return 3
  fi
}

cmd_url() {
  local env="${1:-}"
  [[ -n "$env" ]] || die "url: which environment?"
  script_of "$env" >/dev/null
  running_pid "$env" >/dev/null || die "$env not running"
  printf 'http://127.0.0.1:%s\n' "$(cat "$(port_file "$env")")"
}

cmd_paths() {
  printf 'cache=%s\nvenv=%s\nrequirements=%s\nrun_dir=%s\n' "$CACHE" "$VENV" "$REQ" "$RUN_DIR"
}

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    venv) cmd_venv ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    restart) cmd_stop "${1:-}"; cmd_start "$@" ;;
    status) cmd_status "$@" ;;
    url) cmd_url "$@" ;;
    paths) cmd_paths ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"; exit
