"""Child process of test_fork.py (forking inside pytest, which runs threads, could deadlock).

Usage: _child_fork.py client | tracker REDIS_URL NAMESPACE ITERATIONS
The FOTP_* variables name the sandbox. Prints one JSON line: what each forked child saw.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import traceback
import urllib.request
from typing import Any

import fotp

MOBILE = "8613566667777"
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({})).open


def client() -> fotp.Client:
    return fotp.Client(
        os.environ["FOTP_BASE_URL"],
        app_id=os.environ["FOTP_APP_ID"],
        app_secret=os.environ["FOTP_APP_SECRET"],
    )


def uplink(token: str, code: str) -> None:
    body = json.dumps({"ftToken": token, "mobile": MOBILE, "content": code}).encode()
    req = urllib.request.Request(
        os.environ["FOTP_BASE_URL"] + "/sandbox/uplink",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with _direct(req, timeout=10) as r:
        assert json.loads(r.read())["code"] == "000000"


def callback(code: str) -> fotp.Callback:
    return fotp.Callback(MOBILE, "1008611", "2025-01-01 00:00:00", code)


def in_children(n: int, work: Any) -> list[dict[str, Any]]:
    """Forks n children running work(i) -> dict; collects their reports through pipes."""
    children = []
    for i in range(n):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                report = work(i)
            except BaseException:
                report = {"crash": traceback.format_exc()}
            os.write(w, json.dumps(report).encode())
            os.close(w)
            os._exit(0)
        os.close(w)
        children.append((pid, r))
    reports = []
    for pid, r in children:
        chunks = []
        while chunk := os.read(r, 65536):
            chunks.append(chunk)
        os.close(r)
        _, status = os.waitpid(pid, 0)
        report = json.loads(b"".join(chunks) or b"{}")
        report["exit"] = os.waitstatus_to_exitcode(status)
        reports.append(report)
    return reports


def client_after_fork() -> list[dict[str, Any]]:
    c = client()
    ac = fotp.AsyncClient.wrap(c)
    # The parent uses the client first: its pool holds open connections (and the asyncio
    # path's threads exist) when it forks.
    v = c.verify("2")
    asyncio.run(ac.query(v.ft_token))

    def work(i: int) -> dict[str, Any]:
        ok = errors = 0
        for _ in range(20):
            try:
                assert c.query(v.ft_token).status is fotp.Status.PROCESSING
                assert c.verify("2").code
                ok += 1
            except Exception as e:
                errors += 1
                print(f"child {i}: {e!r}", file=sys.stderr)
        r = asyncio.run(ac.query(v.ft_token))
        return {"ok": ok, "errors": errors, "async": r.status is fotp.Status.PROCESSING}

    reports = in_children(2, work)
    # And the parent's client still works.
    reports.append({"parent": c.query(v.ft_token).status is fotp.Status.PROCESSING})
    return reports


def tracker_after_fork(url: str, ns: str, iterations: int) -> list[dict[str, Any]]:
    c = client()
    t = fotp.Tracker.redis(url, namespace=ns)
    # Used before the fork: the store's pool holds open connections.
    v = t.verify(c, "2", code_length=6)
    assert t.match(callback(v.code)) == fotp.Match(v.ft_token, False)

    def work(i: int) -> dict[str, Any]:
        wrong = errors = settled = 0
        for n in range(iterations):
            try:
                v = t.verify(c, "2", code_length=6)
                if n % 20 == 0:
                    # The settle path: the platform confirms, the first settle is the first.
                    uplink(v.ft_token, v.code)
                    first = t.settle(c, callback(v.code))
                    again = t.settle(c, callback(v.code))
                    if first != fotp.Match(v.ft_token, False) or again != fotp.Match(
                        v.ft_token, True
                    ):
                        wrong += 1
                    settled += 1
                else:
                    m = t.match(callback(v.code))
                    if m != fotp.Match(v.ft_token, False):
                        wrong += 1
            except Exception as e:
                errors += 1
                if errors < 5:
                    print(f"child {i}: {e!r}", file=sys.stderr)
        return {"wrong": wrong, "errors": errors, "settled": settled}

    return in_children(2, work)


def main() -> None:
    if sys.argv[1] == "client":
        out = client_after_fork()
    else:
        out = tracker_after_fork(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
