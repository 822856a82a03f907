#!/usr/bin/env bash
# C ABI tests: the generated header is committed and compiles as C99 and C++11; tests/c/test_abi.c
# calls every function against the sandbox under valgrind (and AddressSanitizer); the quickstart
# runs against the sandbox; `make install` + pkg-config build it, shared and static.
# Needs: cargo, gcc, g++, make, valgrind, pkg-config, curl.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RELEASE="$ROOT/target/release"
CFLAGS=(-std=c99 -Wall -Wextra -Werror -pedantic)
WORK=$(mktemp -d)
SANDBOX_PID=
step() { echo "--- test-c: $*"; }

cleanup() {
  # Only the sandbox this script started.
  if [ -n "$SANDBOX_PID" ]; then
    kill "$SANDBOX_PID" 2>/dev/null || true
    wait "$SANDBOX_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in cargo gcc g++ make valgrind pkg-config curl git; do
  command -v "$tool" >/dev/null || { echo "test-c: $tool is required" >&2; exit 1; }
done

step "build (library and the fotp command for the sandbox)"
cargo build --release -p fotp-capi -p fotp-cli

step "header: committed copy equals the generated one, compiles as C99 and C++11"
make --no-print-directory header-check

step "header: every function returning fotp_error * warns when its result is ignored"
python3 - include/fotp.h <<'PY'
import re, sys
text = re.sub(r"/\*.*?\*/", "", open(sys.argv[1]).read(), flags=re.S)
text = re.sub(r"^\s*(#|//).*$", "", text, flags=re.M)
decls = [" ".join(d.split()) for d in re.findall(r"[^;{}#]*\bfotp_error \*fotp_\w+\([^;]*\);", text)]
missing = [d for d in decls if not d.startswith("FOTP_MUST_USE ")]
if not decls or missing:
    sys.exit("not FOTP_MUST_USE: " + "; ".join(missing or ["no declaration found"]))
print(f"{len(decls)} functions carry FOTP_MUST_USE")
PY
printf '#include "fotp.h"\nint main(void) { fotp_config *c = fotp_config_new(); fotp_config_set_base_url(c, "https://x"); fotp_config_free(c); return 0; }\n' >"$WORK/ignored.c"
for cc in gcc g++; do
  if "$cc" -Werror=unused-result -Iinclude -x "$( [ "$cc" = gcc ] && echo c || echo c++ )" -c "$WORK/ignored.c" -o /dev/null 2>/dev/null; then
    echo "test-c: $cc accepted an ignored fotp_error * without a warning" >&2; exit 1
  fi
done

step "start the sandbox"
# Its first three stdout lines are FOTP_BASE_URL/APP_ID/APP_SECRET; read them as they come.
mkfifo "$WORK/sandbox.out"
"$RELEASE/fotp" sandbox --addr 127.0.0.1:0 >"$WORK/sandbox.out" 2>"$WORK/sandbox.err" &
SANDBOX_PID=$!
exec {SB}<"$WORK/sandbox.out"
for _ in 1 2 3; do
  if ! IFS= read -r -t 30 -u "$SB" line; then
    echo "test-c: the sandbox did not announce itself" >&2
    cat "$WORK/sandbox.err" >&2
    exit 1
  fi
  [[ $line =~ ^FOTP_(BASE_URL|APP_ID|APP_SECRET)=[^[:space:]]+$ ]] ||
    { echo "test-c: unexpected sandbox line: $line" >&2; exit 1; }
  export "${line?}"
done
# Keep draining its log so that it never blocks on a full pipe.
cat <&"$SB" >"$WORK/sandbox.log" &
exec {SB}<&-
echo "sandbox at $FOTP_BASE_URL (pid $SANDBOX_PID)"

SEED="$ROOT/tests/data/callback.json"

step "test_abi (shared libfotp.so) under valgrind"
gcc "${CFLAGS[@]}" -I"$ROOT/include" tests/c/test_abi.c -o "$WORK/test_abi" \
  -L"$RELEASE" -lfotp -lpthread -Wl,-rpath,"$RELEASE"
valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite "$WORK/test_abi" "$SEED"

step "test_abi (static libfotp.a) with AddressSanitizer and UBSan"
gcc "${CFLAGS[@]}" -g -fsanitize=address,undefined -fno-omit-frame-pointer -I"$ROOT/include" \
  tests/c/test_abi.c -o "$WORK/test_abi_asan" \
  "$RELEASE/libfotp.a" -lgcc_s -lutil -lrt -lpthread -lm -ldl
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 "$WORK/test_abi_asan" "$SEED"

step "logger (tests/c/logging.c): retry events, no secrets, re-entrant callback, threads; ASan"
gcc "${CFLAGS[@]}" -g -fsanitize=address,undefined -fno-omit-frame-pointer -I"$ROOT/include" \
  tests/c/logging.c -o "$WORK/logging_asan" \
  "$RELEASE/libfotp.a" -lgcc_s -lutil -lrt -lpthread -lm -ldl
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 "$WORK/logging_asan" 8 40

step "logger under helgrind (shared libfotp.so)"
# The SONAME is libfotp.so.0; the build tree only has libfotp.so.
ln -sf "$RELEASE/libfotp.so" "$WORK/libfotp.so.0"
gcc "${CFLAGS[@]}" -I"$ROOT/include" tests/c/logging.c -o "$WORK/logging" \
  -L"$RELEASE" -lfotp -lpthread
LD_LIBRARY_PATH="$WORK" valgrind -q --tool=helgrind --num-callers=50 \
  --suppressions=tests/stress/helgrind.supp --suppressions=tests/c/logging-helgrind.supp \
  --error-exitcode=1 "$WORK/logging" 3 8

step "make install + pkg-config"
PREFIX="$WORK/prefix"
make --no-print-directory install PREFIX="$PREFIX" >/dev/null
for f in lib/libfotp.so lib/libfotp.a include/fotp.h lib/pkgconfig/fotp.pc; do
  [ -f "$PREFIX/$f" ] || { echo "test-c: make install did not install $f" >&2; exit 1; }
done
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
[ "$(pkg-config --modversion fotp)" = "$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)" ]
# shellcheck disable=SC2046 # word splitting of pkg-config output is intended
gcc "${CFLAGS[@]}" examples/c/quickstart.c $(pkg-config --cflags --libs fotp) \
  -Wl,-rpath,"$PREFIX/lib" -o "$WORK/quickstart"
grep -q "$PREFIX/lib/libfotp.so" <<<"$(ldd "$WORK/quickstart")" ||
  { echo "test-c: quickstart is not linked to the installed libfotp.so" >&2; exit 1; }
# Static: the archive plus the pkg-config private libraries.
# shellcheck disable=SC2046
gcc "${CFLAGS[@]}" examples/c/quickstart.c $(pkg-config --cflags fotp) \
  "$(pkg-config --variable=libdir fotp)/libfotp.a" \
  $(pkg-config --static --libs-only-l fotp | sed 's/-lfotp//') -o "$WORK/quickstart_static"
if grep -q libfotp <<<"$(ldd "$WORK/quickstart_static")"; then
  echo "test-c: quickstart_static depends on libfotp.so" >&2
  exit 1
fi

# Runs a quickstart binary: reads its output as it comes, sends the SMS through the sandbox once
# the token is printed, then expects "status: success" and exit status 0.
run_quickstart() {
  local bin=$1 out="$WORK/qs.$RANDOM" token= code= line pid status
  mkfifo "$out"
  "$bin" 2 30 >"$out" &
  pid=$!
  exec {QS}<"$out"
  while IFS= read -r -t 30 -u "$QS" line; do
    echo "  | $line"
    case $line in
      "code: "*) code=${line#code: } ;;
      "ft_token: "*) token=${line#ft_token: }; break ;;
    esac
  done
  [[ $token =~ ^[0-9a-f]{32}$ && $code =~ ^[0-9]{4,6}$ ]] ||
    { echo "test-c: $bin printed no token/code" >&2; kill "$pid" 2>/dev/null; exit 1; }
  local answer
  answer=$(curl -sS -X POST -H 'Content-Type: application/json' \
    --data "{\"ftToken\":\"$token\",\"mobile\":\"8613800000000\",\"content\":\"my code is $code\"}" \
    "$FOTP_BASE_URL/sandbox/uplink")
  grep -q '"code":"000000"' <<<"$answer" ||
    { echo "test-c: the uplink was refused: $answer" >&2; kill "$pid" 2>/dev/null; exit 1; }
  local rest
  rest=$(cat <&"$QS")
  exec {QS}<&-
  echo "$rest" | sed 's/^/  | /'
  status=0
  wait "$pid" || status=$?
  [ "$status" -eq 0 ] || { echo "test-c: $bin exited with $status" >&2; exit 1; }
  grep -q "^status: success (mobile 8613800000000, code $code" <<<"$rest" ||
    { echo "test-c: $bin did not report success" >&2; exit 1; }
}

step "quickstart (pkg-config, shared) against the sandbox"
run_quickstart "$WORK/quickstart"
step "quickstart (static) against the sandbox"
run_quickstart "$WORK/quickstart_static"

step "quickstart error path: no configuration"
status=0
env -u FOTP_BASE_URL "$WORK/quickstart" >/dev/null 2>"$WORK/qs.err" || status=$?
[ "$status" -eq 2 ] && grep -q "base URL" "$WORK/qs.err" ||
  { echo "test-c: expected exit 2 naming the base URL, got $status" >&2; cat "$WORK/qs.err" >&2; exit 1; }

echo "test-c: all C ABI checks passed"
