#!/usr/bin/env bash
# End-to-end check of scripts/llama-server.sh: start a private server, exercise
# /v1/models and /v1/chat/completions (logprobs, usage, finish_reason, seeded
# reproducibility), stop it and make sure the process is gone.
# Builds and fetches weights first if the cache lacks them (minutes).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
srv="$here/llama-server.sh"

# A private run dir keeps this from touching a server someone else started.
REDRAFT_LLAMA_RUN_DIR="$(mktemp -d)"
export REDRAFT_LLAMA_RUN_DIR
finish() {
  "$srv" stop >/dev/null 2>&1 || true
  rm -rf "$REDRAFT_LLAMA_RUN_DIR"
}
trap finish EXIT

url="$("$srv" start | tail -n 1)"
pid="$(cat "$REDRAFT_LLAMA_RUN_DIR/llama-server.pid")"
echo "server: $url (pid $pid)"

chat() {
  curl -sS --fail --max-time 60 "$url/chat/completions" -H 'Content-Type: application/json' -d '{
    "messages": [{"role": "user", "content": "Write one sentence about the sea."}],
    "seed": 1234, "temperature": 1.0, "max_tokens": 16,
    "logprobs": true, "top_logprobs": 2}'
}

models="$(curl -sS --fail --max-time 10 "$url/models")"
first="$(chat)"
second="$(chat)"

python3 - "$models" "$first" "$second" <<'PY'
import json, sys

models, a, b = (json.loads(x) for x in sys.argv[1:])
ids = [m["id"] for m in models["data"]]
assert ids == ["SmolLM2-135M-Instruct"], ids

c = a["choices"][0]
assert isinstance(c["message"]["content"], str) and c["message"]["content"], c
assert c["finish_reason"] == "length", c["finish_reason"]
assert a["usage"]["completion_tokens"] == 16 and a["usage"]["prompt_tokens"] > 0, a["usage"]
lp = c["logprobs"]["content"]
assert len(lp) == 16, len(lp)
for t in lp:
    assert isinstance(t["token"], str) and t["logprob"] <= 0, t
    assert len(t["top_logprobs"]) == 2, t
    assert t["top_logprobs"][0]["logprob"] >= t["top_logprobs"][1]["logprob"], t
assert "".join(t["token"] for t in lp) == c["message"]["content"]

cb = b["choices"][0]
assert cb["message"]["content"] == c["message"]["content"], "same seed, different text"
assert [t["logprob"] for t in cb["logprobs"]["content"]] == [t["logprob"] for t in lp]
print("model:", a["model"], "| text:", repr(c["message"]["content"]))
PY

"$srv" stop
if kill -0 "$pid" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
  echo "FAIL: pid $pid still running after stop" >&2
  exit 1
fi
"$srv" stop # idempotent
echo "llama-server smoke: OK"
