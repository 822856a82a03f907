#!/usr/bin/env bash
# The Rust crate's public API (what rustdoc shows, default features) against the committed
# baseline docs/public-api.txt: a change to the surface is a visible diff in review.
# `--update` rewrites the baseline. Rustdoc's JSON output is unstable, so it is enabled on the
# stable toolchain with RUSTC_BOOTSTRAP=1 (only for this rustdoc run); scripts/public-api.py
# renders it (no cargo-public-api to install, no nightly).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}/public-api
RUSTC_BOOTSTRAP=1 RUSTDOCFLAGS="-Z unstable-options --output-format json" \
  cargo doc -p fotp --lib --no-deps --target-dir "$target" --quiet
python3 scripts/public-api.py "$target/doc/fotp.json" > "$target/public-api.txt"
if [ "${1:-}" = "--update" ]; then
  cp "$target/public-api.txt" docs/public-api.txt
  echo "docs/public-api.txt updated"
  exit 0
fi
if ! diff -u docs/public-api.txt "$target/public-api.txt"; then
  echo "The public Rust API changed (diff above). If that is intended, run" >&2
  echo "  scripts/public-api.sh --update  and commit docs/public-api.txt." >&2
  exit 1
fi
echo "public API matches docs/public-api.txt"
