#!/usr/bin/env bash
# Python binding: build libfotp and the sandbox if needed, install the package (a platform wheel
# carrying libfotp.so) into the current Python, type-check it, and run its tests against the
# INSTALLED package. Runnable from any directory. Needs redis-server (Debian package) for the
# tracker tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
cd "$ROOT"

# A no-op when nothing changed; --workspace so the sandbox binary (the cli crate) is built too.
cargo build --release --workspace

# Tools the suite needs, installed only when missing.
"$PY" -m pytest --version >/dev/null 2>&1 || "$PY" -m pip install --quiet pytest
"$PY" -m mypy --version >/dev/null 2>&1 || "$PY" -m pip install --quiet mypy
"$PY" -c "import pdoc" >/dev/null 2>&1 || "$PY" -m pip install --quiet pdoc
# Real servers for the receivers (gunicorn pre-forking, uvicorn for ASGI) and trustme (a
# throw-away CA for the per-client TLS roots test).
for mod in gunicorn uvicorn trustme; do
  "$PY" -c "import $mod" >/dev/null 2>&1 || "$PY" -m pip install --quiet "$mod"
done

# A fresh install: the tests must see exactly this build of the package and library.
"$PY" -m pip uninstall --quiet --yes fotp >/dev/null 2>&1 || true
FOTP_LIBRARY="$ROOT/target/release/libfotp.so" "$PY" -m pip install --quiet --force-reinstall --no-deps ./bindings/python
rm -rf bindings/python/build bindings/python/src/fotp.egg-info

echo "--> mypy --strict"
MYPY=("$PY" -m mypy --strict --cache-dir "${TMPDIR:-/tmp}/fotp-mypy-cache")
"${MYPY[@]}" bindings/python/src/fotp examples/python
# The tests too, against the installed package (as its users see it).
(cd bindings/python/tests && "${MYPY[@]}" .)

echo "--> API reference (pdoc, from the docstrings; a warning fails)"
"$PY" scripts/python-apidoc.py "${TMPDIR:-/tmp}/fotp-python-apidoc"

echo "--> pytest (installed package)"
# Run from the tests folder: the source tree (bindings/python/src) is not on sys.path there.
cd bindings/python/tests
# The suite sets what it needs; a developer's FOTP_* settings must not leak in.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^FOTP_' || true)
# The tracker tests start their own redis-server (Debian package redis-server): here a missing
# one is a failure, not a skip.
FOTP_REQUIRE_REDIS=1 "$PY" -m pytest -c ../pyproject.toml --rootdir .. -q "$@" .
