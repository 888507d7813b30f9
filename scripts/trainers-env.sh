#!/usr/bin/env bash
# Makes (once) a virtual environment with the trainers in
# python/trainers-requirements.txt (verl, TRL, Math-Verify) and, without their
# dependencies, python/trainers-nodeps-requirements.txt (OpenRLHF, for its
# dataset classes) under the cache folder and prints its python's path;
# rebuilt when either file changes. It is large (torch with its CUDA
# libraries, ray, transformers: about 6.3 GB, 4.5-6 minutes to install the
# first time on 2 cores), so it is kept apart from scripts/python-env.sh's
# environment. Used by e2e's TestTrainerDatasets and bindings/cgrade's
# TestTrainers (REDRAFT_TRAINERS_PYTHON) and bench/pygrade.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${REDRAFT_CACHE:-$HOME/.cache/redraft}
venv=$cache/venv-trainers
req=$root/python/trainers-requirements.txt
nodeps=$root/python/trainers-nodeps-requirements.txt
stamp=$venv/.requirements.sha256
want=$(cat "$req" "$nodeps" | sha256sum | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$nodeps" >&2
  echo "$want" >"$stamp"
fi
echo "$venv/bin/python"
