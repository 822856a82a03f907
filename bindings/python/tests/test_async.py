"""AsyncClient under asyncio."""

from __future__ import annotations

import asyncio
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import fotp
from fotp import _runner
from _support import Sandbox, silent_socket


def test_all_methods(sandbox: Sandbox) -> None:
    async def main() -> None:
        async with fotp.AsyncClient(sandbox.base_url, **sandbox.client_kwargs()) as ac:
            v = await ac.verify("2", code="4321", validity_minutes=2)
            assert v.code == "4321"
            r = await ac.query(v.ft_token)
            assert r.status is fotp.Status.PROCESSING
            waiting = asyncio.create_task(ac.wait(v.ft_token, timeout=10))
            await asyncio.to_thread(sandbox.uplink, v.ft_token, "4321", mobile="8613700000000")
            r = await waiting
            assert r.status is fotp.Status.SUCCESS and r.mobile == "8613700000000"
            cb = fotp.Callback("8613700000000", "1008611", "t", "4321")
            assert await ac.confirm(cb, v.ft_token) is True
            assert await ac.confirm(cb, v.ft_token, timeout=5) is True
            with pytest.raises(fotp.ApiError) as e:
                await ac.verify("nope")
            assert e.value.code == "200002"
            with pytest.raises(fotp.InvalidArgument):
                await ac.verify("2", validity_minutes=0)
        assert ac.closed
        with pytest.raises(fotp.InvalidArgument, match="closed"):
            await ac.query(v.ft_token)
        await ac.aclose()  # idempotent

    asyncio.run(main())


def test_calls_run_concurrently_without_blocking_the_loop(sandbox: Sandbox) -> None:
    async def main() -> None:
        async with fotp.AsyncClient(sandbox.base_url, **sandbox.client_kwargs()) as ac:
            vs = await asyncio.gather(*(ac.verify("2") for _ in range(16)))
            assert len({v.ft_token for v in vs}) == 16
            # 16 waits that all time out after 0.5 s: together ~0.5 s, not 8 s.
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            t = asyncio.create_task(ticker())
            start = time.monotonic()
            results = await asyncio.gather(
                *(ac.wait(v.ft_token, timeout=0.5) for v in vs), return_exceptions=True
            )
            took = time.monotonic() - start
            t.cancel()
            assert all(isinstance(r, fotp.Timeout) for r in results), results
            assert took < 3, took
            assert ticks > 10, "the event loop was blocked"

    asyncio.run(main())


def test_from_env_and_own_executor(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOTP_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("FOTP_APP_ID", sandbox.app_id)
    monkeypatch.setenv("FOTP_APP_SECRET", sandbox.app_secret)
    monkeypatch.delenv("FOTP_TIMEOUT_MS", raising=False)
    pool = ThreadPoolExecutor(2)

    async def main() -> None:
        async with fotp.AsyncClient.from_env(executor=pool) as ac:
            assert isinstance(ac.client, fotp.Client)
            v = await ac.verify("2")
            assert (await ac.query(v.ft_token)).status is fotp.Status.PROCESSING

    asyncio.run(main())
    # The caller's executor is not shut down by the client.
    assert pool.submit(lambda: 1).result() == 1
    pool.shutdown()


def test_per_call_timeout_and_cancellation() -> None:
    async def main() -> None:
        with silent_socket() as url:
            async with fotp.AsyncClient(url, app_id="a", app_secret="s", timeout=30) as ac:
                start = time.monotonic()
                with pytest.raises(fotp.Timeout):
                    await ac.query("a" * 32, timeout=0.3)
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(ac.verify("2", timeout=0.5), 0.1)
                assert time.monotonic() - start < 5

    asyncio.run(main())


def test_config_errors_are_raised_at_construction() -> None:
    with pytest.raises(fotp.ConfigError):
        fotp.AsyncClient("http://example.com", app_id="a", app_secret="s")


def test_waits_hold_no_thread_and_never_delay_other_calls(sandbox: Sandbox) -> None:
    # 1,000 waits in flight: a verify still answers at once, and between polls the waits hold
    # no thread (only queries in flight do).
    async def main() -> None:
        async with fotp.AsyncClient(sandbox.base_url, **sandbox.client_kwargs()) as ac:
            tokens = [(await ac.verify("2")).ft_token for _ in range(10)]
            waits = [
                asyncio.create_task(ac.wait(tokens[i % 10], timeout=60)) for i in range(1000)
            ]
            await asyncio.sleep(1.5)  # every wait has polled, and is polling on
            busy = []
            for _ in range(20):
                busy.append(_runner.busy())
                await asyncio.sleep(0.05)
            took = []
            for _ in range(3):
                start = time.monotonic()
                await ac.verify("2")
                took.append(time.monotonic() - start)
            assert not any(w.done() for w in waits)
            for w in waits:
                w.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
            assert max(took) < 0.5, took
            assert sorted(busy)[10] < 200, busy  # median: far fewer threads than waits

    asyncio.run(main())


def test_cancelled_call_stops_its_request() -> None:
    # A server that accepts and never answers: cancelling the awaiting task makes the library
    # drop the connection within 1 s (the work stops; it does not run to its time limit).
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    url = f"http://127.0.0.1:{srv.getsockname()[1]}"

    async def main() -> float:
        async with fotp.AsyncClient(url, app_id="a", app_secret="s", timeout=30) as ac:
            task = asyncio.create_task(ac.query("a" * 32))
            conn, _ = await asyncio.to_thread(srv.accept)
            conn.settimeout(5)
            await asyncio.to_thread(conn.recv, 65536)  # the request arrived
            task.cancel()
            start = time.monotonic()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The rest of the request, then the end: the client closed the connection.
            while await asyncio.to_thread(conn.recv, 65536):
                pass
            conn.close()
            return time.monotonic() - start

    try:
        took = asyncio.run(main())
    finally:
        srv.close()
    assert took < 1.0, took
    deadline = time.monotonic() + 1
    while _runner.busy() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _runner.busy() == 0
