#!/usr/bin/env bash
# A smoke run of the benchmarks (few rounds, nothing written): every runner builds, every
# client gets the right answers. The real measurement is `scripts/bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bench --quick
