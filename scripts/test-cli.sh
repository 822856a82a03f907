#!/usr/bin/env bash
# The command line and the sandbox: formatting and lints of the cli crate, its tests (end to end
# through the core client against the in-process sandbox, and every command of the binary),
# then a real browser (headless Chromium, /usr/bin/chromium or $CHROMIUM) drives the sandbox's
# phone page and tries the origin rules. Screenshots land in target/browser/. Then the OpenAPI
# document is validated and Schemathesis fuzzes a live sandbox with it. Runnable from any
# directory.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
cd "$ROOT"

# Read before the FOTP_* variables are cleared below.
WORKSPACE_CHECKED="${FOTP_WORKSPACE_CHECKED:-}"
# The suite sets what it needs; a developer's FOTP_* settings must not leak in.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^FOTP_' || true)

# scripts/test has already run these for the whole workspace.
if [ -z "$WORKSPACE_CHECKED" ]; then
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

echo "--> OpenAPI document (docs/openapi.yaml) and Schemathesis against a live sandbox"
# A virtualenv of their own: Schemathesis brings pytest and hypothesis versions that must not
# replace the ones the Python binding's tests use. Pinned: the signing hook uses its 4.x API.
VENV="$ROOT/target/openapi-venv"
if ! "$VENV/bin/python" -c 'import schemathesis, openapi_spec_validator' >/dev/null 2>&1 \
   || [ "$("$VENV/bin/python" -c 'import schemathesis; print(schemathesis.__version__)')" != "4.32.5" ]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet "schemathesis==4.32.5" "openapi-spec-validator==0.9.0"
fi
"$VENV/bin/python" cli/tests/openapi/check_openapi.py "$ROOT"
"$VENV/bin/python" cli/tests/openapi/fuzz_sandbox.py --fotp target/release/fotp \
  --schemathesis "$VENV/bin/schemathesis" --out target/schemathesis
