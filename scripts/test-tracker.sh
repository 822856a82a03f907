#!/usr/bin/env bash
# The push-mode tracker: core unit tests, the memory and Redis stores against a fake platform,
# two real processes sharing Redis behind the sandbox, forked workers, the tracker's C ABI from
# Rust, and from C under valgrind; signals during 10,000 calls from C. The tests start their own redis-server (Debian package `redis-server`) on
# an ephemeral loopback port; FOTP_REQUIRE_REDIS=1 makes a missing binary a failure, not a skip.
# Needs: cargo, gcc, valgrind, redis-server.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RELEASE="$ROOT/target/release"
WORK=$(mktemp -d)
SANDBOX_PID=
REDIS_PID=
step() { echo "--- test-tracker: $*"; }

cleanup() {
  # Only the processes this script started.
  for pid in "$SANDBOX_PID" "$REDIS_PID"; do
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in cargo gcc valgrind redis-server; do
  command -v "$tool" >/dev/null || { echo "test-tracker: $tool is required" >&2; exit 1; }
done
export FOTP_REQUIRE_REDIS=1 FOTP_REQUIRE_SANDBOX=1

step "build (library, and the fotp command for the sandbox)"
cargo build --release -p fotp-capi -p fotp-cli

# scripts/test has already run the whole Rust suite (with the variables above set).
if [ -z "${FOTP_WORKSPACE_CHECKED:-}" ]; then
  step "Rust: core unit tests, stores, two processes, C ABI"
  cargo test -p fotp --lib tracker::
  cargo test -p fotp --features capi,internals --test tracker --test tracker_redis \
    --test tracker_sandbox --test tracker_ffi \
    --test tracker_fork
fi

step "C: the tracker API against the sandbox and a redis-server, under valgrind"
mkfifo "$WORK/sandbox.out" "$WORK/redis.out"
"$RELEASE/fotp" sandbox --addr 127.0.0.1:0 >"$WORK/sandbox.out" 2>"$WORK/sandbox.err" &
SANDBOX_PID=$!
exec {SB}<"$WORK/sandbox.out"
IFS= read -r -t 30 -u "$SB" line || { cat "$WORK/sandbox.err" >&2; exit 1; }
[[ $line =~ ^FOTP_BASE_URL=(http://127\.0\.0\.1:[0-9]+)$ ]] ||
  { echo "test-tracker: unexpected sandbox line: $line" >&2; exit 1; }
BASE_URL=${BASH_REMATCH[1]}
cat <&"$SB" >"$WORK/sandbox.log" &
exec {SB}<&-

# An ephemeral port: free now; if redis cannot bind it, it exits and the read below fails.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  >"$WORK/redis.out" &
REDIS_PID=$!
exec {RD}<"$WORK/redis.out"
ready=
while IFS= read -r -t 30 -u "$RD" line; do
  if [[ $line == *"Ready to accept connections"* ]]; then ready=1; break; fi
done
[ -n "$ready" ] || { echo "test-tracker: redis-server did not start" >&2; exit 1; }
cat <&"$RD" >/dev/null &
exec {RD}<&-

gcc -std=c99 -Wall -Wextra -Werror -pedantic -I"$ROOT/include" \
  tests/tracker_support/tracker_c.c -o "$WORK/tracker_c" \
  -L"$RELEASE" -lfotp -lpthread -Wl,-rpath,"$RELEASE"
valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite "$WORK/tracker_c" "$BASE_URL" "redis://127.0.0.1:$PORT/"

step "C: 10,000 tracker and client calls while every calling thread gets SIGUSR1 each 100 us"
gcc -std=c99 -Wall -Wextra -Werror -pedantic -I"$ROOT/include" tests/c/signals.c \
  -o "$WORK/signals" -L"$RELEASE" -lfotp -lpthread -Wl,-rpath,"$RELEASE"
"$WORK/signals" "$BASE_URL" "redis://127.0.0.1:$PORT/"

step "C example: two processes share the tracker through Redis"
gcc -std=c99 -Wall -Wextra -Werror -pedantic -I"$ROOT/include" examples/c/push_tracker.c \
  -o "$WORK/push_tracker" -L"$RELEASE" -lfotp -lpthread -Wl,-rpath,"$RELEASE"
export FOTP_REDIS_URL="redis://127.0.0.1:$PORT/"
mkfifo "$WORK/verify.out"
FOTP_BASE_URL=$BASE_URL FOTP_APP_ID=sandbox FOTP_APP_SECRET=sandbox-secret \
  "$WORK/push_tracker" verify >"$WORK/verify.out" &
VERIFY_PID=$!
exec {VO}<"$WORK/verify.out"
token= code=
while IFS= read -r -t 30 -u "$VO" line; do
  case $line in
    token\ *) token=${line#token } ;;
    code\ *) code=${line#code }; break ;;
  esac
done
[ -n "$token" ] && [ -n "$code" ] || { echo "test-tracker: verify printed no token/code" >&2; exit 1; }
# The user's SMS reaches the platform; the callback body is what it would push.
curl -fsS -H 'Content-Type: application/json' "$BASE_URL/sandbox/uplink" \
  -d "{\"ftToken\":\"$token\",\"mobile\":\"8613800000000\",\"content\":\"code $code\"}" |
  grep -q '"000000"'
body="{\"mobile\":\"8613800000000\",\"sender\":\"1008611\",\"sendTime\":\"2025-05-15 11:23:34\",\"code\":\"$code\"}"
forged="{\"mobile\":\"8613999999999\",\"sender\":\"1008611\",\"sendTime\":\"2025-05-15 11:23:34\",\"code\":\"$code\"}"
export FOTP_BASE_URL=$BASE_URL FOTP_APP_ID=sandbox FOTP_APP_SECRET=sandbox-secret
# A forged callback (another phone) first: not confirmed, nothing consumed.
[ "$(printf '%s' "$forged" | "$WORK/push_tracker" settle - | tr '\n' ' ')" = "unconfirmed answer 503 " ]
[ "$(printf '%s' "$body" | "$WORK/push_tracker" settle - | head -n 1)" = "first $token" ]
[ "$(printf '%s' "$body" | "$WORK/push_tracker" settle - | head -n 1)" = "duplicate $token" ]
IFS= read -r -t 30 -u "$VO" line || { echo "test-tracker: the waiting process never woke" >&2; exit 1; }
[ "$line" = "status 2" ] || { echo "test-tracker: waiting process said: $line" >&2; exit 1; }
wait "$VERIFY_PID"
exec {VO}<&-

echo "test-tracker: all tracker checks passed"
