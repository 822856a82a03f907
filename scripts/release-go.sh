#!/usr/bin/env bash
# Release step of the Go binding: writes the self-contained Go module that `go get` fetches.
#
#   scripts/release-go.sh OUT
#
# OUT/module  the module tree (commit it to the release repository, directory fotp/, tag
#             fotp/vVERSION): the Go sources of bindings/go, include/fotp.h, a prebuilt
#             libfotp.a per platform in lib/GOOS_GOARCH/, cgo directives that only use ${SRCDIR},
#             the build tag fotp_system (link the system's libfotp through pkg-config instead),
#             README.md and the licence texts.
# OUT/proxy   the same module as a GOPROXY file tree (GOPROXY=file://OUT/proxy), to test or to
#             upload to a module proxy.
#
# Platforms: linux/amd64 (this machine's Rust target) and linux/arm64 (rustup target
# aarch64-unknown-linux-gnu and Debian's gcc-aarch64-linux-gnu: both are installed when missing
# and this runs as root, as in CI). The version is Cargo.toml's.
# CARGO_TARGET_DIR is honoured: the amd64 library is the one every other suite builds.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
[ $# -eq 1 ] || { echo "usage: $0 OUT" >&2; exit 2; }
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MODULE=$(sed -n 's/^module //p' bindings/go/go.mod)
GOVERSION=$(sed -n 's/^go //p' bindings/go/go.mod)
[[ $MODULE == */fotp ]] || { echo "release-go: module path $MODULE does not end in /fotp" >&2; exit 1; }
step() { echo "--- release-go: $*"; }

ARM_TRIPLE=aarch64-unknown-linux-gnu
if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
  [ "$(id -u)" -eq 0 ] || { echo "release-go: install gcc-aarch64-linux-gnu" >&2; exit 1; }
  step "install Debian's gcc-aarch64-linux-gnu"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross
fi
if ! rustup target list --installed | grep -qx "$ARM_TRIPLE"; then
  step "rustup target add $ARM_TRIPLE"
  rustup target add "$ARM_TRIPLE"
fi

step "build libfotp.a for linux/amd64 and linux/arm64"
cargo build --release -p fotp-capi
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
  cargo build --release -p fotp-capi --target "$ARM_TRIPLE"

step "write the module $MODULE v$VERSION"
M="$OUT/module"
rm -rf "$M" "$OUT/proxy"
mkdir -p "$M/include" "$M/lib/linux_amd64" "$M/lib/linux_arm64"
# The sources of the binding, except the files whose cgo directives point into this checkout.
for f in bindings/go/*.go; do
  case $(basename "$f") in
    *_test.go | cgo.go | link_static.go | link_dynamic.go) ;;
    *) cp "$f" "$M/" ;;
  esac
done
cp bindings/go/README.md LICENSE-MIT LICENSE-APACHE "$M/"
cp include/fotp.h "$M/include/"
# Stripped as `make install` does (see the Makefile): debug info, local symbols, LLVM bitcode.
STRIP_ARCHIVE=(--strip-unneeded -R .llvmbc -R .llvmcmd -R .comment)
strip "${STRIP_ARCHIVE[@]}" -o "$M/lib/linux_amd64/libfotp.a" "$TARGET_DIR/release/libfotp.a"
aarch64-linux-gnu-strip "${STRIP_ARCHIVE[@]}" -o "$M/lib/linux_arm64/libfotp.a" \
  "$TARGET_DIR/$ARM_TRIPLE/release/libfotp.a"
IFS=. read -r MAJOR MINOR _ <<<"$VERSION"

printf 'module %s\n\ngo %s\n' "$MODULE" "$GOVERSION" >"$M/go.mod"

cat >"$M/cgo.go" <<'EOF'
package fotp

// Linking (one of, by build tag):
//   default            the prebuilt static libfotp.a of this module, lib/GOOS_GOARCH (link_prebuilt.go)
//   -tags fotp_system  the system's libfotp found by pkg-config (link_system.go)
// Without cgo the build stops with the reason (cgo_required.go).

import "C"
EOF

cat >"$M/link_prebuilt.go" <<'EOF'
//go:build cgo && !fotp_system

package fotp

// The library and header shipped inside this module: programs are one self-contained binary.

/*
#cgo CFLAGS: -I${SRCDIR}/include
#cgo linux,amd64 LDFLAGS: ${SRCDIR}/lib/linux_amd64/libfotp.a -lm -ldl -lpthread
#cgo linux,arm64 LDFLAGS: ${SRCDIR}/lib/linux_arm64/libfotp.a -lm -ldl -lpthread
*/
import "C"
EOF

cat >"$M/link_unsupported.go" <<'EOF'
//go:build cgo && !fotp_system && !(linux && (amd64 || arm64))

package fotp

// This module ships libfotp.a for linux/amd64 and linux/arm64 only. Elsewhere install libfotp
// (make install in the fotp repository) and build with -tags fotp_system; this undefined name
// stops the build with that reason instead of a linker error.
var _ = fotp_has_no_prebuilt_library_for_this_GOOS_GOARCH__install_libfotp_and_build_with_tags_fotp_system
EOF

cat >"$M/link_system.go" <<EOF
//go:build cgo && fotp_system

package fotp

// -tags fotp_system: the libfotp installed on the system (\`make install\`), found by pkg-config.
// Its version must be this module's $MAJOR.$MINOR (the C ABI may change between 0.x releases).

/*
#cgo pkg-config: fotp
#include <fotp.h>
#if FOTP_VERSION_MAJOR != $MAJOR || FOTP_VERSION_MINOR != $MINOR
#error "fotp: the system libfotp (pkg-config fotp) is not version $MAJOR.$MINOR.x, which this Go module needs"
#endif
*/
import "C"
EOF
gofmt -l "$M" | { ! grep .; } || { echo "release-go: generated files are not gofmt-ed" >&2; exit 1; }

step "pack the module for GOPROXY=file://$OUT/proxy"
python3 - "$M" "$OUT/proxy" "$MODULE" "v$VERSION" <<'EOF'
# The layout of the GOPROXY protocol: $module/@v/{list,$v.info,$v.mod,$v.zip}; the zip holds
# every file under "$module@$v/". Fixed timestamps make the zip (and its go.sum hash) reproducible.
import json, os, sys, zipfile
src, proxy, module, version = sys.argv[1:]
d = os.path.join(proxy, module, "@v")
os.makedirs(d)
with open(os.path.join(d, "list"), "w") as f:
    f.write(version + "\n")
with open(os.path.join(d, version + ".info"), "w") as f:
    json.dump({"Version": version, "Time": "2026-01-01T00:00:00Z"}, f)
with open(os.path.join(src, "go.mod"), "rb") as s, open(os.path.join(d, version + ".mod"), "wb") as f:
    f.write(s.read())
with zipfile.ZipFile(os.path.join(d, version + ".zip"), "w", zipfile.ZIP_DEFLATED) as z:
    for dirpath, _, files in sorted(os.walk(src)):
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            info = zipfile.ZipInfo(f"{module}@{version}/{os.path.relpath(path, src)}",
                                   (2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as f:
                z.writestr(info, f.read())
EOF
echo "release-go: module $MODULE@v$VERSION in $M, proxy tree in $OUT/proxy"
