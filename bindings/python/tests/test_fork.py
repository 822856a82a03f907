"""os.fork after the library was used: children never use their parent's connections."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _support import Redis, Sandbox, sandbox

CHILD = Path(__file__).resolve().parent / "_child_fork.py"


def _run(sb: Sandbox, *args: str, timeout: float = 120) -> list[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOTP_")}
    env.update(FOTP_BASE_URL=sb.base_url, FOTP_APP_ID=sb.app_id, FOTP_APP_SECRET=sb.app_secret)
    r = subprocess.run(
        [sys.executable, str(CHILD), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=CHILD.parent,
    )
    assert r.returncode == 0, r.stderr
    out: list[dict[str, Any]] = json.loads(r.stdout.strip().splitlines()[-1])
    assert not r.stderr.strip(), r.stderr
    return out


def test_client_works_in_forked_children(sandbox: Sandbox) -> None:
    reports = _run(sandbox, "client")
    assert reports == [
        {"ok": 20, "errors": 0, "async": True, "exit": 0},
        {"ok": 20, "errors": 0, "async": True, "exit": 0},
        {"parent": True},
    ]


def test_redis_tracker_made_before_fork(redis: Redis) -> None:
    # Two forked children verifying and matching (or settling) 4,000 times each with the
    # parent's tracker: zero wrong tokens, zero errors, five runs in a row.
    with sandbox("--quiet", "--max-sessions", "1000000") as sb:
        for run in range(5):
            start = time.monotonic()
            reports = _run(sb, "tracker", redis.url, f"fork-{run}-{time.monotonic_ns()}", "4000")
            took = time.monotonic() - start
            assert reports == [
                {"wrong": 0, "errors": 0, "settled": 200, "exit": 0},
                {"wrong": 0, "errors": 0, "settled": 200, "exit": 0},
            ], f"run {run} ({took:.1f} s): {reports}"
