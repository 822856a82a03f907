"""Ctrl-C during a blocking wait, and cancelled asyncio calls, in child processes (timing
against the process, as users see it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from _support import Sandbox, silent_socket

CHILD = Path(__file__).resolve().parent / "_child_interrupt.py"


def _env(base_url: str, sb: Sandbox) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOTP_")}
    env.update(FOTP_BASE_URL=base_url, FOTP_APP_ID=sb.app_id, FOTP_APP_SECRET=sb.app_secret)
    return env


def _run(mode: str, base_url: str, sb: Sandbox, sigint_after: float | None) -> dict[str, Any]:
    """Runs the child; returns its report plus `exit_after`: seconds from its report to its
    exit."""
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), mode],
        env=_env(base_url, sb),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=CHILD.parent,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == "waiting\n", line + proc.communicate(timeout=20)[1]
        if sigint_after is not None:
            time.sleep(sigint_after)
            proc.send_signal(signal.SIGINT)
        report = proc.stdout.readline()
        reported = time.monotonic()
        _, err = proc.communicate(timeout=20)
        exited = time.monotonic()
        assert proc.returncode == 0, err
        out: dict[str, Any] = json.loads(report)
        out["exit_after"] = exited - reported
        return out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("mode", ["client", "tracker"])
def test_sigint_interrupts_a_blocking_wait(mode: str, sandbox: Sandbox) -> None:
    # The wait polls every second; SIGINT at 0.5 s must be handled at once, not at 6 s.
    r = _run(mode, sandbox.base_url, sandbox, sigint_after=0.5)
    assert r["outcome"] == "KeyboardInterrupt", r
    assert 0.4 < r["after"] < 1.0, r
    # The library call was cancelled too, not left running.
    assert r["busy"] == 0, r


def test_sigint_interrupts_a_wait_inside_a_request(sandbox: Sandbox) -> None:
    # A server that never answers: the wait is inside a query attempt (30 s time-out).
    with silent_socket() as url:
        r = _run("client-stuck", url, sandbox, sigint_after=0.5)
    assert r["outcome"] == "KeyboardInterrupt" and 0.4 < r["after"] < 1.0, r
    assert r["busy"] == 0, r


@pytest.mark.parametrize("mode", ["async-wait", "async-tracker"])
def test_cancelled_async_wait_stops_and_the_process_exits_at_once(
    mode: str, sandbox: Sandbox
) -> None:
    r = _run(mode, sandbox.base_url, sandbox, sigint_after=None)
    assert r["outcome"] == "cancelled" and r["after"] < 1.0, r
    assert r["busy"] == 0, r
    assert r["exit_after"] < 1.0, r


def test_cancelled_async_request_stops_and_the_process_exits_at_once(sandbox: Sandbox) -> None:
    with silent_socket() as url:
        r = _run("async-stuck", url, sandbox, sigint_after=None)
    assert r["outcome"] == "cancelled" and r["after"] < 1.0, r
    assert r["busy"] == 0, r
    assert r["exit_after"] < 1.0, r
