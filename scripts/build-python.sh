#!/usr/bin/env bash
# Builds the redraft_grade wheel: the Go math grader as a C shared library
# (bindings/cgrade, go build -buildmode=c-shared, cgo) with the ctypes
# package python/redraft_grade, into
#
#   OUTDIR/redraft_grade-<version>-py3-none-<platform>.whl
#
#   scripts/build-python.sh [OUTDIR]          # default dist/
#   REDRAFT_WHEEL_PLATFORM=linux_x86_64 scripts/build-python.sh
#
# The wheel holds no Python extension module (ctypes loads the library), so
# it is py3-none: any CPython 3.8+ on the platform. The platform tag is
# manylinux_X_Y_<arch> (PEP 600), where glibc X.Y is the highest GLIBC_
# symbol version the library actually requires (read with objdump; cgo
# brings binutils), which is at most the build machine's glibc and usually
# lower; the tag falls back to linux_<arch> when the library needs a shared
# library outside the manylinux set (it needs libc.so.6 only). Needs Go, a C
# compiler, objdump and python3; no network, no pip packages.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
python=${PYTHON:-python3}
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
pkg=$build/redraft_grade
mkdir -p "$pkg" "$out"
cp python/redraft_grade/*.py "$pkg/"
CGO_ENABLED=1 go build -buildmode=c-shared -trimpath -buildvcs=false -ldflags="-s -w" \
	-o "$pkg/libredraftgrade.so" ./bindings/cgrade
rm -f "$pkg/libredraftgrade.h"

so=$pkg/libredraftgrade.so
case $(go env GOARCH) in
amd64) arch=x86_64 ;;
arm64) arch=aarch64 ;;
*) arch=$(uname -m) ;;
esac
glibc=$(objdump -T "$so" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)
needed=$(objdump -p "$so" | awk '/NEEDED/ {print $2}')
platform=manylinux_${glibc//./_}_$arch
for lib in $needed; do
	case $lib in
	libc.so.6 | libpthread.so.0 | libm.so.6 | libdl.so.2 | librt.so.1 | ld-linux*) ;;
	*)
		echo "build-python.sh: the library needs $lib (not in the manylinux set): tagging linux_$arch" >&2
		platform=linux_$arch
		;;
	esac
done
[ -n "$glibc" ] || platform=linux_$arch
platform=${REDRAFT_WHEEL_PLATFORM:-$platform}

"$python" - "$build" "$out" "$platform" <<'EOF'
import base64, hashlib, os, re, sys, zipfile

build, out, platform = sys.argv[1:4]
src = os.path.join(build, "redraft_grade")
version = re.search(r'^__version__ = "([^"]+)"', open(os.path.join(src, "__init__.py")).read(), re.M).group(1)
name = f"redraft_grade-{version}-py3-none-{platform}.whl"
info = f"redraft_grade-{version}.dist-info"
files = {f"redraft_grade/{f}": open(os.path.join(src, f), "rb").read() for f in sorted(os.listdir(src))}
files[f"{info}/METADATA"] = f"""Metadata-Version: 2.1
Name: redraft-grade
Version: {version}
Summary: redraft's math answer grader (Go, via ctypes): verify/grade, verl compute_score, TRL reward, batch grading
Requires-Python: >=3.8

redraft's math grader as a Python package; see docs/python.md in the redraft repository.
""".encode()
files[f"{info}/WHEEL"] = f"""Wheel-Version: 1.0
Generator: redraft scripts/build-python.sh
Root-Is-Purelib: false
Tag: py3-none-{platform}
""".encode()
files[f"{info}/top_level.txt"] = b"redraft_grade\n"
record = []
for path, data in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append(f"{path},sha256={digest},{len(data)}")
record.append(f"{info}/RECORD,,")
files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
path = os.path.join(out, name)
with zipfile.ZipFile(path + ".tmp", "w", zipfile.ZIP_DEFLATED) as z:
    for p, data in files.items():
        zi = zipfile.ZipInfo(p, date_time=(1980, 1, 1, 0, 0, 0))
        zi.compress_type = zipfile.ZIP_DEFLATED
        zi.external_attr = (0o755 if p.endswith(".so") else 0o644) << 16
        z.writestr(zi, data)
os.replace(path + ".tmp", path)
print(path)
EOF
