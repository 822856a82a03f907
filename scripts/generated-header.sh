#!/usr/bin/env bash
# Prints the path of the header generated from src/ffi by the last build (build.rs writes it into
# its OUT_DIR, never into the source tree); builds the C library first (a no-op when up to date).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
"${CARGO:-cargo}" build --release -p fotp-capi --message-format=json |
  python3 -c '
import json, sys
root = "path+file://" + sys.argv[1] + "#fotp@"
dirs = [m["out_dir"] for m in map(json.loads, sys.stdin)
        if m.get("reason") == "build-script-executed" and m["package_id"].startswith(root)]
if not dirs:
    sys.exit("generated-header: cargo ran no build script of the fotp crate")
print(dirs[-1] + "/fotp.h")
' "$PWD"
