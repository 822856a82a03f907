#!/usr/bin/env bash
# Tests of the Go binding (bindings/go) and its examples (examples/go).
# Needs Go >= 1.22, gcc, the Rust toolchain and redis-server (Debian package, for the tracker
# tests); runnable from any directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

command -v go >/dev/null || { echo "test-go: go is not installed" >&2; exit 1; }
export CGO_ENABLED=1
gover="$(go env GOVERSION)"   # e.g. go1.22.5
IFS=. read -r major minor _ <<<"${gover#go}"
if (( major < 1 || (major == 1 && ${minor%%[!0-9]*} < 22) )); then
    echo "test-go: Go 1.22 or later is required, found $gover" >&2
    exit 1
fi

# The tracker tests start their own redis-server; here a missing one fails them instead of
# skipping them.
command -v redis-server >/dev/null || { echo "test-go: redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }
export FOTP_REQUIRE_REDIS=1

# The binding links target/release/libfotp.a; the tests start target/release/fotp sandbox.
# cargo does nothing when they are up to date.
cargo build --release --workspace
for f in target/release/libfotp.a target/release/libfotp.so target/release/fotp include/fotp.h; do
    [[ -e $f ]] || { echo "test-go: $f is missing after the build" >&2; exit 1; }
done

step() { printf '\n== %s\n' "$*"; }

cd "$root/bindings/go"
step "gofmt"
unformatted="$(gofmt -l . "$root/examples/go")"
[[ -z $unformatted ]] || { echo "test-go: not gofmt-ed: $unformatted" >&2; exit 1; }

step "go vet (static and fotp_dynamic)"
go vet ./...
go vet -tags fotp_dynamic ./...

step "go test -race"
go test -race -count=1 -timeout 10m ./...

# Strict cgo pointer checks: GOEXPERIMENT=cgocheck2 (Go >= 1.21) also checks every pointer
# written to C memory; GODEBUG=cgocheck=1 is only the default. GOGC=1 makes lifetime bugs
# surface sooner.
# FOTP_GO_TEST_OFFLOAD: each of the two passes below takes one path of offload.go for every
# call (the -race pass above uses the default rule; offload_test.go forces the pool).
step "go test with GOEXPERIMENT=cgocheck2 GOGC=1 (every call blocking in the library)"
FOTP_GO_TEST_OFFLOAD=never GOEXPERIMENT=cgocheck2 GOGC=1 go test -count=1 -timeout 15m ./...

step "go test -tags fotp_dynamic (libfotp.so; every call on the library's worker pool)"
FOTP_GO_TEST_OFFLOAD=always go test -tags fotp_dynamic -count=1 -timeout 10m ./...

step "benchmarks"
go test -run '^$' -bench . -benchtime=100x -count=1 ./...

step "examples"
cd "$root/examples/go"
go vet ./...
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
go build -o "$out/" ./...
# End-to-end: each example against the sandbox (simulated uplink SMS).
go test -count=1 -timeout 5m ./...
# Static by default: the examples must not need libfotp.so at run time.
for ex in pull push push-tracker; do
    if ldd "$out/$ex" | grep -q libfotp; then
        echo "test-go: examples/go/$ex is linked to libfotp.so, expected static linking" >&2
        exit 1
    fi
done
# Captured first: with `| grep -q`, pull could die of SIGPIPE once grep has exited.
help="$("$out/pull" -h 2>&1 || true)"
grep -q -- '-ft-id' <<<"$help" || { echo "test-go: pull -h does not show its flags" >&2; exit 1; }

echo
echo "test-go: all Go tests passed"
