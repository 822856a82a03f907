#!/usr/bin/env bash
# The Rust examples (examples/rust) against the sandbox: pull mode, and push mode through a
# tracker with a repeated delivery.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
WORK=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
while read -r var; do unset "$var"; done < <(compgen -e | grep '^FOTP_' || true)

cargo build --release -p fotp -p fotp-cli --features fotp/capi --example pull --example push_tracker
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
CB_PORT=$(free_port)

mkfifo "$WORK/sandbox.out"
target/release/fotp sandbox --addr 127.0.0.1:0 --template "2=http://127.0.0.1:$CB_PORT/fotp/callback" \
  >"$WORK/sandbox.out" &
pids+=($!)
exec {SB}<"$WORK/sandbox.out"
for _ in 1 2 3; do
  IFS= read -r -t 30 -u "$SB" line || { echo "the sandbox did not start" >&2; exit 1; }
  export "${line?}"
done
cat <&"$SB" >/dev/null &
exec {SB}<&-

# Runs an example in the background, reads its token, sends the user's SMS ($2 deliveries),
# then reads its output until every pattern in the rest of the arguments has been seen.
run_example() {
  local name=$1 deliveries=$2 out="$WORK/$1.out"
  shift 2
  mkfifo "$out.fifo"
  "target/release/examples/$name" "${EXAMPLE_ARGS[@]}" >"$out.fifo" &
  local pid=$!
  pids+=("$pid")
  exec {EX}<"$out.fifo"
  local token= code= line
  while IFS= read -r -t 30 -u "$EX" line; do
    echo "$line" >>"$out"
    case $line in token\ *) token=${line#token }; break ;; esac
  done
  [ -n "$token" ] || { echo "$name printed no token" >&2; cat "$out" >&2; exit 1; }
  code=$(curl -fsS "$FOTP_BASE_URL/sandbox/sessions" | python3 -c '
import json, sys
print(next(s["code"] for s in json.load(sys.stdin)["sessions"] if s["ftToken"] == sys.argv[1]))' "$token")
  curl -fsS -H 'Content-Type: application/json' "$FOTP_BASE_URL/sandbox/uplink" \
    -d "{\"ftToken\":\"$token\",\"mobile\":\"8613800000000\",\"content\":\"code $code\",\"deliveries\":$deliveries}" |
    grep -q '"000000"'
  local pattern
  for pattern in "$@"; do
    until grep -q -- "$pattern" "$out"; do
      IFS= read -r -t 30 -u "$EX" line || { echo "$name: never printed $pattern" >&2; cat "$out" >&2; exit 1; }
      echo "$line" >>"$out"
    done
  done
  exec {EX}<&-
}

EXAMPLE_ARGS=()
run_example pull 1 '^status Success'
echo "pull example: ok"
EXAMPLE_ARGS=("127.0.0.1:$CB_PORT")
run_example push_tracker 2 '^status Success' '^callback: repeated delivery'
[ "$(grep -c '^callback: code .* is ' "$WORK/push_tracker.out")" = 1 ] ||
  { echo "push_tracker: expected exactly one match" >&2; cat "$WORK/push_tracker.out" >&2; exit 1; }
echo "push_tracker example: ok"
