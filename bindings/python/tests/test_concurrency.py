"""One client shared by 16 threads, calls overlapping in time."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler

import fotp
from _support import Sandbox, envelope, http_server

N = 16


def test_calls_overlap_and_release_the_gil() -> None:
    # The server answers only once all N requests are in flight at the same time: the calls
    # must overlap, and the GIL must be free while they wait (this server is Python too).
    barrier = threading.Barrier(N, timeout=15)

    def respond(_: BaseHTTPRequestHandler, __: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return 503, {}, b"not all requests arrived together"
        return 200, {}, envelope({"status": "2", "code": "1234"})

    with http_server(respond) as (url, seen):
        with fotp.Client(url, app_id="a", app_secret="s", timeout=20, retries=0) as c:
            with ThreadPoolExecutor(N) as pool:
                results = list(pool.map(lambda _: c.wait("a" * 32, timeout=20), range(N)))
    assert [r.status for r in results] == [fotp.Status.SUCCESS] * N
    assert len(seen) == N


def test_threads_share_one_client_against_the_sandbox(sandbox: Sandbox) -> None:
    errors: list[BaseException] = []

    with fotp.Client(sandbox.base_url, **sandbox.client_kwargs()) as c:
        start = threading.Barrier(N)

        def work(i: int) -> None:
            try:
                start.wait()
                for _ in range(10):
                    v = c.verify("2", code=f"{i:04d}")
                    assert v.code == f"{i:04d}"
                    assert c.query(v.ft_token).status is fotp.Status.PROCESSING
                    assert (
                        fotp.parse_callback(
                            f'{{"mobile":"1","sender":"2","sendTime":"3","code":"{v.code}"}}'
                        ).code
                        == v.code
                    )
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(N)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors, errors


def test_close_while_calls_are_in_flight_is_safe() -> None:
    # A server that holds every request until released; close() happens meanwhile.
    arrived = threading.Semaphore(0)
    release = threading.Event()

    def respond(_: BaseHTTPRequestHandler, __: bytes) -> tuple[int, dict[str, str], bytes]:
        arrived.release()
        release.wait(15)
        return 200, {}, envelope({"status": "0"})

    with http_server(respond) as (url, _):
        c = fotp.Client(url, app_id="a", app_secret="s", retries=0)
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(c.query, "a" * 32) for _ in range(4)]
            for _ in range(4):
                assert arrived.acquire(timeout=10)
            c.close()
            assert c.closed
            release.set()
            assert all(f.result(timeout=15).status is fotp.Status.PROCESSING for f in futures)


def test_close_racing_calls_frees_once_after_the_last_call() -> None:
    # Both ways of counting calls in flight (the GIL's lock-free one, and the locked one that
    # free-threaded builds use): a pointer handed out is never freed before its release, and
    # close() frees exactly once.
    import sys
    import time

    from fotp import _client

    for acquire, release in (
        (_client._Owned._acquire_gil, _client._Owned._release_gil),
        (_client._Owned._acquire_locked, _client._Owned._release_locked),
    ):
        for _ in range(20):
            frees: list[int] = []
            misuse: list[str] = []
            calls: list[None] = []
            owned = _client._Owned(1234, frees.append)
            start = threading.Barrier(5)

            def call() -> None:
                start.wait()
                while True:
                    try:
                        ptr = acquire(owned)
                    except fotp.InvalidArgument:
                        return
                    time.sleep(0)  # let close() run while this call is in flight
                    if frees:
                        misuse.append(f"pointer {ptr} used after free")
                    release(owned)
                    calls.append(None)

            interval = sys.getswitchinterval()
            sys.setswitchinterval(1e-6)
            try:
                threads = [threading.Thread(target=call) for _ in range(4)]
                for t in threads:
                    t.start()
                start.wait()
                # close() once the calls run (a thread that died ends the wait too)
                while len(calls) < 100 and all(t.is_alive() for t in threads):
                    time.sleep(0)
                owned.close()
                for t in threads:
                    t.join(30)
            finally:
                sys.setswitchinterval(interval)
            owned.close()
            assert frees == [1234] and not misuse, (acquire.__name__, frees, misuse[:3])
