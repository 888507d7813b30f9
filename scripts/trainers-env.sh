#!/usr/bin/env bash
# Makes (once) a virtual environment with the trainers in
# python/trainers-requirements.txt (verl, TRL, Math-Verify) under the cache
# folder and prints its python's path; rebuilt when the requirements change.
# It is large (torch with its CUDA libraries, ray, transformers: about 6.3 GB,
# 3.5-4 minutes to install the first time), so it is kept apart from
# scripts/python-env.sh's environment. Used by bindings/cgrade's TestTrainers
# (REDRAFT_TRAINERS_PYTHON) and bench/pygrade.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${REDRAFT_CACHE:-$HOME/.cache/redraft}
venv=$cache/venv-trainers
req=$root/python/trainers-requirements.txt
stamp=$venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
  echo "$want" >"$stamp"
fi
echo "$venv/bin/python"
