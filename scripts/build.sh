#!/usr/bin/env bash
# Release-style builds of redraft: static binaries for the platforms people
# run it on, with the VCS revision stamped in (redraft version prints it) and
# no local paths (-trimpath), plus a SHA256SUMS file.
#
#   scripts/build.sh [OUTDIR]        # default dist/
#   PLATFORMS="linux/amd64" scripts/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
platforms=${PLATFORMS:-"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64"}
mkdir -p "$out"
for p in $platforms; do
	os=${p%/*} arch=${p#*/}
	bin="$out/redraft-$os-$arch"
	echo "building $bin" >&2
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -buildvcs=auto -o "$bin" ./cmd/redraft
done
(cd "$out" && sha256sum redraft-* > SHA256SUMS)
echo "wrote $(ls "$out" | wc -l) files to $out" >&2
