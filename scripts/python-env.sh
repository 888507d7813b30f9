#!/usr/bin/env bash
# Makes (once) a virtual environment with the packages in python/requirements.txt
# under the cache folder, and prints its python's path. The environment is
# rebuilt when the requirements change.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${REDRAFT_CACHE:-$HOME/.cache/redraft}
venv=$cache/venv
req=$root/python/requirements.txt
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
