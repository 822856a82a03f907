#!/usr/bin/env python3
"""Schemathesis against a live `fotp sandbox`, driven by docs/openapi.yaml.

Every operation of the document, requests signed by schemathesis_hooks.py, a fixed example
budget and seed (bounded and repeatable). Checks: no 5xx, documented status codes, content
types, headers and response bodies. Left out, by the contract: negative_data_rejection and
ignored_auth (the platform answers invalid input and bad signatures with HTTP 200 and an
error code in the envelope, not a 4xx).

Usage: fuzz_sandbox.py --fotp target/release/fotp --schemathesis PATH [--out DIR]
"""

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
])
MAX_EXAMPLES = "100"
SEED = "14"
TIME_LIMIT = 300


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fotp", required=True)
    ap.add_argument("--schemathesis", required=True)
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "schemathesis"))
    args = ap.parse_args()
    args.out = os.path.abspath(args.out)
    args.fotp = os.path.abspath(args.fotp)
    if os.sep in args.schemathesis:
        args.schemathesis = os.path.abspath(args.schemathesis)
    os.makedirs(args.out, exist_ok=True)
    sandbox = subprocess.Popen(
        [args.fotp, "sandbox", "--addr", "127.0.0.1:0", "--quiet"],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOTP_")}
        for _ in range(3):
            key, _, value = sandbox.stdout.readline().strip().partition("=")
            env[key] = value
        base = env.get("FOTP_BASE_URL")
        if not base:
            print("fuzz: the sandbox printed no FOTP_BASE_URL", file=sys.stderr)
            return 1
        env["SCHEMATHESIS_HOOKS"] = os.path.join(HERE, "schemathesis_hooks.py")
        cmd = [
            args.schemathesis, "run", os.path.join(ROOT, "docs", "openapi.yaml"),
            "--url", base,
            "--checks", CHECKS,
            "--phases", "examples,coverage,fuzzing,stateful",
            "--max-examples", MAX_EXAMPLES,
            "--seed", SEED,
            "--generation-database", "none",
            "--workers", "1",
            "--request-timeout", "10",
            "--no-color",
            "--report", "junit",
            "--report-dir", args.out,
        ]
        print(f"  schemathesis against {base} (seed {SEED}, {MAX_EXAMPLES} examples per operation)")
        started = time.monotonic()
        # Its working directory gets Schemathesis's own cache folder: keep it under target/.
        run = subprocess.run(cmd, env=env, cwd=args.out, timeout=TIME_LIMIT)
        print(f"  schemathesis finished in {time.monotonic() - started:.0f} s, exit {run.returncode}")
        if sandbox.poll() is not None:
            print(f"fuzz: the sandbox died (status {sandbox.returncode})", file=sys.stderr)
            return 1
        # The signing hook worked: signed verifies made sessions, and some were completed.
        with urllib.request.urlopen(base + "/sandbox/sessions", timeout=10) as r:
            sessions = json.load(r)["sessions"]
        done = sum(1 for s in sessions if s["status"] != "0")
        print(f"  {len(sessions)} sessions made by signed verifies, {done} completed")
        if not sessions or not done:
            print("fuzz: no signed verify succeeded, or no uplink completed one", file=sys.stderr)
            return 1
        return run.returncode
    finally:
        sandbox.terminate()
        try:
            sandbox.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sandbox.kill()
            sandbox.wait()


if __name__ == "__main__":
    sys.exit(main())
