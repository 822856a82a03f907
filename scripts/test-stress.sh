#!/usr/bin/env bash
# C stress test of the ABI: 16 threads sharing one client, mixing callback parsing and
# verify/query against the sandbox. Three runs: AddressSanitizer + UndefinedBehaviorSanitizer at
# full size (16 x 10k calls), a plain build for RSS flat across 1M parses, then valgrind memcheck and helgrind at
# sizes valgrind's serialised threads can finish.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p fotp-capi   # the C library (capi/ turns on the C ABI of the fotp crate)
work=$(mktemp -d)
sandbox_pid=
cleanup() {
  [ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -p fotp-cli -p fotp-capi   # with capi: the same build of fotp as the workspace
# Plenty of live sessions: the stress run opens tens of thousands.
./target/release/fotp sandbox --addr 127.0.0.1:0 --max-sessions 1000000 -q >"$work/sandbox.out" &
sandbox_pid=$!
for _ in $(seq 100); do
  grep -q '^FOTP_APP_SECRET=' "$work/sandbox.out" 2>/dev/null && break
  sleep 0.1
done
set -a
# shellcheck disable=SC1091
. <(grep '^FOTP_' "$work/sandbox.out")
set +a
export FOTP_RETRIES=0

libs="target/release/libfotp.a -lpthread -ldl -lm"
cc_flags="-std=c99 -Wall -Wextra -Werror -pedantic -O1 -g -Iinclude"

echo "--- ASan + UBSan, 16 threads x 10000 calls"
# shellcheck disable=SC2086
gcc $cc_flags -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
  tests/stress/stress.c $libs -o "$work/stress-asan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 "$work/stress-asan" 16 10000 0

# shellcheck disable=SC2086
gcc $cc_flags tests/stress/stress.c $libs -o "$work/stress"
echo "--- RSS across 1M parse calls (no sanitizer: ASan's quarantine would hide the answer)"
"$work/stress" 1 0 1000000
echo "--- valgrind memcheck, 16 threads x 200 calls"
valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
  "$work/stress" 16 200 0
echo "--- valgrind helgrind, 8 threads x 40 calls"
valgrind -q --tool=helgrind --num-callers=50 --suppressions=tests/stress/helgrind.supp \
  --error-exitcode=1 "$work/stress" 8 40 0
echo "stress: all runs clean"
