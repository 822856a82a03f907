#!/usr/bin/env bash
# The command line and the sandbox: formatting and lints of the cli crate, its tests (end to end
# through the core client against the in-process sandbox, and every command of the binary),
# then a real browser (headless Chromium, /usr/bin/chromium or $CHROMIUM) drives the sandbox's
# phone page. Screenshots land in target/browser/. Runnable from any directory.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
cd "$ROOT"

# The suite sets what it needs; a developer's FOTP_* settings must not leak in.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^FOTP_' || true)

# scripts/test has already run these for the whole workspace.
if [ -z "${FOTP_WORKSPACE_CHECKED:-}" ]; then
  echo "--> cargo fmt --check (cli)"
  cargo fmt -p fotp-cli --check

  echo "--> cargo clippy (cli)"
  cargo clippy -p fotp-cli --all-targets -- -D warnings

  echo "--> cargo test -p fotp-cli"
  cargo test -p fotp-cli
fi

echo "--> browser check"
# A no-op when nothing changed.
cargo build --release -p fotp-cli -p fotp-capi   # with capi: the same build of fotp as the workspace
"$PY" -c 'import websocket' >/dev/null 2>&1 || "$PY" -m pip install --quiet websocket-client
mkdir -p target/browser
"$PY" cli/tests/browser/browser_check.py --fotp target/release/fotp --out target/browser
