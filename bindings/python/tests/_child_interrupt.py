"""Child process of test_signals.py: starts a blocking or asyncio call, then reports how it
ended. Usage: _child_interrupt.py MODE (the FOTP_* variables name the server).

Prints "waiting" when the call has started, then one JSON line with what happened.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import fotp
from fotp import _runner


def settle_busy() -> int:
    """The number of library calls still running after at most 1 s."""
    deadline = time.monotonic() + 1.0
    while _runner.busy() and time.monotonic() < deadline:
        time.sleep(0.005)
    return _runner.busy()


def client() -> fotp.Client:
    return fotp.Client(
        os.environ["FOTP_BASE_URL"],
        app_id=os.environ["FOTP_APP_ID"],
        app_secret=os.environ["FOTP_APP_SECRET"],
        timeout=30,
    )


def blocking(mode: str) -> dict[str, object]:
    c = client()
    tracker = fotp.Tracker.memory()
    if mode == "client-stuck":  # the server never answers: the wait is inside a query
        token = "a" * 32
    elif mode == "tracker":
        token = tracker.verify(c, "2").ft_token
    else:
        token = c.verify("2").ft_token
    print("waiting", flush=True)
    start = time.monotonic()
    try:
        if mode == "tracker":
            tracker.wait(c, token, timeout=6)
        else:
            c.wait(token, timeout=6)
        return {"outcome": "returned", "after": time.monotonic() - start}
    except KeyboardInterrupt:
        after = time.monotonic() - start
        return {"outcome": "KeyboardInterrupt", "after": after, "busy": settle_busy()}


async def cancelled(mode: str) -> dict[str, object]:
    async with fotp.AsyncClient(
        os.environ["FOTP_BASE_URL"],
        app_id=os.environ["FOTP_APP_ID"],
        app_secret=os.environ["FOTP_APP_SECRET"],
        timeout=30,
    ) as ac:
        if mode == "async-stuck":
            call = ac.query("a" * 32)
        elif mode == "async-tracker":
            at = fotp.AsyncTracker.memory()
            call = at.wait(ac, (await at.verify(ac, "2")).ft_token, timeout=30)
        else:
            call = ac.wait((await ac.verify("2")).ft_token, timeout=30)
        print("waiting", flush=True)
        start = time.monotonic()
        try:
            await asyncio.wait_for(call, 0.5)
            return {"outcome": "returned"}
        except asyncio.TimeoutError:
            after = time.monotonic() - start
        return {"outcome": "cancelled", "after": after, "busy": settle_busy()}


def main() -> None:
    mode = sys.argv[1]
    if mode.startswith("async"):
        result = asyncio.run(cancelled(mode))
    else:
        result = blocking(mode)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
