#!/usr/bin/env bash
# The project's test command (the README's second command, and what CI runs).
# Installs what it needs itself: Go modules, and a Python virtual environment
# with pyarrow under ${REDRAFT_CACHE:-$HOME/.cache/redraft}.
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

step "go test -race"
go test -race -count=1 ./...

step "fuzz (short, bounded)"
for target in "./rollout FuzzDecodeRecord"; do
  set -- $target
  go test -run '^$' -fuzz "^$2\$" -fuzztime "${REDRAFT_FUZZTIME:-10s}" "$1"
done

step "quickstart on bundled data, read back by pyarrow"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go run ./cmd/redraft run --config configs/quickstart.yaml --out "$out/quickstart" --progress off
"$REDRAFT_PYTHON" scripts/check_shards.py "$out/quickstart"

echo
echo "all checks passed"
