#!/usr/bin/env bash
# Runs every fuzz target (libFuzzer + AddressSanitizer/LeakSanitizer) for a bounded time,
# starting from the committed seeds. Any crash, panic or leak fails the run.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${FOTP_FUZZ_SECONDS:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
# The sanitizer flags are unstable options; the stable toolchain accepts them this way.
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in $(cargo fuzz list); do
  mkdir -p "$work/$target"
  echo "--- fuzzing $target for ${seconds}s"
  if ! cargo fuzz run -O "$target" "$work/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -max_len=70000 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$work/$target.log" 2>&1; then
    tail -n 60 "$work/$target.log"
    echo "fuzz target $target FAILED"
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units)' "$work/$target.log"
done
