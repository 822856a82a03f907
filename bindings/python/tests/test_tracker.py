"""Trackers (push mode): memory and Redis stores against the sandbox and a real redis-server."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import pickle
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

import fotp
from _support import (
    DATA,
    Redis,
    Sandbox,
    closed_port_url,
    query_spy,
    redis_server,
    sandbox,
    start_sandbox,
    stop_sandbox,
    wsgi_server,
)
from conftest import require_redis

TRACKED_FT_ID = "8"
Delivery = tuple[fotp.Callback, fotp.Match | None]


class Receiver:
    """The module's callback receiver: fotp.wsgi_callback with the tracker a test chooses.

    Every handler call lands in `calls`, as (callback, match).
    """

    def __init__(self) -> None:
        self.calls: queue.Queue[Delivery] = queue.Queue()
        self._app: Callable[..., Iterable[bytes]] | None = None

    def use(self, tracker: fotp.Tracker, client: fotp.Client) -> None:
        while not self.calls.empty():
            self.calls.get_nowait()
        self._app = fotp.wsgi_callback(self._record, tracker=tracker, client=client)

    def _record(self, cb: fotp.Callback, m: fotp.Match | None) -> None:
        self.calls.put((cb, m))

    def __call__(self, environ: Any, start_response: Any) -> Iterable[bytes]:
        assert self._app is not None, "the test did not choose a tracker"
        return self._app(environ, start_response)

    def take(self, n: int) -> list[Delivery]:
        return [self.calls.get(timeout=15) for _ in range(n)]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    yield Receiver()


@pytest.fixture(scope="module")
def tsandbox(receiver: Receiver) -> Iterator[Sandbox]:
    """A sandbox whose template 8 pushes to `receiver`."""
    with wsgi_server(receiver) as base:
        sb = start_sandbox("--template", f"{TRACKED_FT_ID}={base}/cb")
        try:
            yield sb
        finally:
            stop_sandbox(sb)


@pytest.fixture
def tclient(tsandbox: Sandbox) -> Iterator[fotp.Client]:
    with fotp.Client(tsandbox.base_url, **tsandbox.client_kwargs()) as c:
        yield c


def _body(code: str, mobile: str = "8613800138000") -> bytes:
    seed = json.loads((DATA / "callback.json").read_bytes())
    seed.update(code=code, mobile=mobile)
    return json.dumps(seed).encode()


def _push_end_to_end(tracker: fotp.Tracker, receiver: Receiver, sb: Sandbox, mobile: str) -> None:
    """verify; wait in a thread; uplink delivered 3 times: the handler runs once, for the first
    delivery, and the settlement wakes the wait."""
    with (
        query_spy(sb.base_url) as (spy_url, queries),
        fotp.Client(spy_url, **sb.client_kwargs()) as client,
        fotp.Client(sb.base_url, **sb.client_kwargs()) as receiving,
        ThreadPoolExecutor(1) as pool,
    ):
        receiver.use(tracker, receiving)
        v = tracker.verify(client, TRACKED_FT_ID)
        assert len(v.code) == 4 and v.code.isdigit() and v.code[0] != "0"
        waited = pool.submit(tracker.wait, client, v.ft_token, 20.0)
        # The waiter has seen "processing": only a settled callback can now end its wait
        # before its next poll, 1 s later.
        assert queries.get(timeout=10) == "0"
        start = time.monotonic()
        sb.uplink(v.ft_token, f"code {v.code}", mobile=mobile, deliveries=3)
        r = waited.result(timeout=20)
        elapsed = time.monotonic() - start
        sb.wait_log(f"callback ftToken={v.ft_token} delivery 3 attempt 1: HTTP 200 accepted")
    assert r.status is fotp.Status.SUCCESS and (r.mobile, r.code) == (mobile, v.code)
    assert elapsed < 1.0, f"wait was not woken by the settlement ({elapsed:.2f} s)"
    (cb, m), = receiver.take(1)
    assert (cb.code, cb.mobile) == (v.code, mobile) and m == fotp.Match(v.ft_token, False)
    assert receiver.calls.empty()  # the two redeliveries were acknowledged without the handler


def test_memory_tracker_push_end_to_end(receiver: Receiver, tsandbox: Sandbox) -> None:
    with fotp.Tracker.memory() as t:
        _push_end_to_end(t, receiver, tsandbox, "8613900000001")


def test_redis_tracker_push_end_to_end(receiver: Receiver, tsandbox: Sandbox, redis: Redis) -> None:
    with fotp.Tracker.redis(redis.url, namespace="e2e") as t:
        _push_end_to_end(t, receiver, tsandbox, "8613900000002")


def test_two_trackers_share_one_redis_store(
    receiver: Receiver, tsandbox: Sandbox, redis: Redis
) -> None:
    # Two app instances: `front` verifies and waits in a thread, `back` receives the callbacks.
    with (
        fotp.Tracker.redis(redis.url, namespace="shared") as front,
        fotp.Tracker.redis(redis.url, namespace="shared") as back,
        fotp.Tracker.redis(redis.url, namespace="elsewhere") as other,
        query_spy(tsandbox.base_url) as (spy_url, queries),
        fotp.Client(spy_url, **tsandbox.client_kwargs()) as client,
        ThreadPoolExecutor(1) as pool,
    ):
        receiver.use(back, client)
        v = front.verify(client, TRACKED_FT_ID, code_length=6, validity_minutes=2)
        assert len(v.code) == 6 and v.code[0] != "0"
        waited = pool.submit(front.wait, client, v.ft_token, 20.0)
        assert queries.get(timeout=10) == "0"
        start = time.monotonic()
        tsandbox.uplink(v.ft_token, v.code, mobile="8613900000003", deliveries=2)
        r = waited.result(timeout=20)
        elapsed = time.monotonic() - start
        assert r.status is fotp.Status.SUCCESS and r.mobile == "8613900000003"
        assert elapsed < 1.0, f"the other instance's settle did not wake the wait ({elapsed:.2f} s)"
        tsandbox.wait_log(f"callback ftToken={v.ft_token} delivery 2 attempt 1: HTTP 200 accepted")
        ((cb1, m1),) = receiver.take(1)
        assert m1 == fotp.Match(v.ft_token, False) and receiver.calls.empty()
        # Same store, same namespace: the first tracker sees the settlement too.
        assert front.settle(client, cb1) == fotp.Match(v.ft_token, True)
        # Another namespace is another store.
        assert other.match(cb1) is None


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_exhaustion(store: str, request: pytest.FixtureRequest) -> None:
    if store == "redis":
        require_redis()
        r: Redis = request.getfixturevalue("redis")
        tracker = fotp.Tracker.redis(r.url, namespace=f"exhaust-{time.monotonic_ns()}")
    else:
        tracker = fotp.Tracker.memory()
    # A sandbox of its own: 4500 sessions would slow the others' session lists down.
    with (
        tracker,
        sandbox("--quiet", "--max-sessions", "100000") as sb,
        fotp.Client(sb.base_url, **sb.client_kwargs()) as c,
    ):
        codes = {tracker.verify(c, "2").code for _ in range(4499)}
        assert len(codes) == 4499  # all distinct
        assert all(len(x) == 4 and x.isdigit() and x[0] != "0" for x in codes)
        # A failed verify releases its reservation: the 4500th code is still free after it.
        for _ in range(3):
            with pytest.raises(fotp.ApiError) as api:
                tracker.verify(c, "404")
            assert api.value.code == "200002"
        codes.add(tracker.verify(c, "2").code)
        assert len(codes) == 4500  # half of the 9000 four-digit codes without a leading 0
        with pytest.raises(fotp.ExhaustedError) as e:
            tracker.verify(c, "2")
        assert e.value.kind is fotp.ErrorKind.EXHAUSTED and "longer codes" in e.value.message
        # Other lengths have their own space.
        assert len(tracker.verify(c, "2", code_length=5).code) == 5


def test_match_without_a_live_verification(tclient: fotp.Client, redis: Redis) -> None:
    with (
        fotp.Tracker.memory() as mem,
        fotp.Tracker.redis(redis.url, namespace="nomatch") as red,
    ):
        for t in (mem, red):
            v = t.verify(tclient, "2")
            other = str(int(v.code) % 9000 + 1000)  # another 4-digit code, no leading 0
            for code in (other, "0123", "12345", "abc"):
                assert t.match(fotp.parse_callback(_body(code))) is None
            # The mobile is not compared: the platform decides which phone sent the code.
            m = t.match(fotp.parse_callback(_body(v.code, mobile="8610000000000")))
            assert m == fotp.Match(v.ft_token, False)


def test_redis_down(
    tclient: fotp.Client, caplog: pytest.LogCaptureFixture
) -> None:
    require_redis()
    with pytest.raises(fotp.NetworkError):
        fotp.Tracker.redis(closed_port_url().replace("http", "redis", 1))
    with redis_server() as r, fotp.Tracker.redis(r.url) as t:
        v = t.verify(tclient, "2")
        cb = fotp.parse_callback(_body(v.code))
        r.stop()
        with pytest.raises(fotp.NetworkError):
            t.verify(tclient, "2")
        with pytest.raises(fotp.NetworkError):
            t.match(cb)
        # wait goes on by polling the platform, and says so when it runs out.
        with pytest.raises(fotp.Timeout, match="polled the platform only"):
            t.wait(tclient, v.ft_token, timeout=1)
        with pytest.raises(fotp.NetworkError):
            t.settle(tclient, cb)
        # The receiver answers 503 (nothing consumed) so the platform delivers again later.
        calls: list[Delivery] = []
        app = fotp.wsgi_callback(lambda cb, m: calls.append((cb, m)), tracker=t, client=tclient)
        with caplog.at_level(logging.ERROR, logger="fotp.wsgi"):
            status, _ = _call(app, _body(v.code))
        assert status.startswith("503") and calls == []
        assert any("settled" in rec.getMessage() for rec in caplog.records)


def test_redis_config_errors_hide_the_url(redis: Redis) -> None:
    with pytest.raises(fotp.ConfigError):
        fotp.Tracker.redis("not a url")
    # This server has no password: it refuses the credentials, which must not be shown.
    url = f"redis://:hunter2-secret@127.0.0.1:{redis.port}/"
    with pytest.raises(fotp.ConfigError, match="credentials") as e:
        fotp.Tracker.redis(url)
    assert "hunter2" not in str(e.value) and "hunter2" not in repr(e.value)
    for ns in ("", "has space", "x" * 65):
        with pytest.raises(fotp.InvalidArgument, match="ns|namespace"):
            fotp.Tracker.redis(redis.url, namespace=ns)
    t = fotp.Tracker.redis(redis.url, namespace="repr")
    assert repr(t) == "<fotp.Tracker redis namespace='repr' open>" and str(redis.port) not in repr(
        t
    )
    t.close()


def test_arguments(tclient: fotp.Client) -> None:
    with pytest.raises(TypeError, match="Tracker.memory"):
        fotp.Tracker()
    with fotp.Tracker.memory() as t:
        for length in (0, 3, 7):
            with pytest.raises(fotp.InvalidArgument, match="code_length"):
                t.verify(tclient, "2", code_length=length)
        for minutes in (0, 11, -1):
            with pytest.raises(fotp.InvalidArgument, match="validity_minutes"):
                t.verify(tclient, "2", validity_minutes=minutes)
        with pytest.raises(fotp.InvalidArgument, match="ftId"):
            t.verify(tclient, "")
        with pytest.raises(TypeError):
            t.verify(tclient, "2", code_length=True)
        with pytest.raises(TypeError):
            t.verify(tclient, "2", code_length="4")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="AsyncTracker"):
            t.verify(fotp.AsyncClient.__new__(fotp.AsyncClient), "2")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="Callback"):
            t.match(_body("1234"))  # type: ignore[arg-type]
        with pytest.raises(fotp.InvalidArgument, match="ftToken|ft_token"):
            t.wait(tclient, "")
        with pytest.raises(fotp.InvalidArgument, match="timeout"):
            t.wait(tclient, "a" * 32, timeout=0)
        with pytest.raises(fotp.InvalidArgument, match="cb"):
            t.match(fotp.Callback("", "1008611", "2025-01-01 00:00:00", "1234"))
        # Nothing above reached the platform or the store: a verify still gets a fresh code.
        assert len(t.verify(tclient, "2", timeout=5).code) == 4


def test_wait_times_out(tclient: fotp.Client) -> None:
    with fotp.Tracker.memory() as t:
        v = t.verify(tclient, "2")
        start = time.monotonic()
        with pytest.raises(fotp.Timeout):
            t.wait(tclient, v.ft_token, timeout=0.5)
        assert 0.4 < time.monotonic() - start < 3


def test_close(tclient: fotp.Client, tsandbox: Sandbox) -> None:
    t = fotp.Tracker.memory()
    assert not t.closed and repr(t) == "<fotp.Tracker memory open>"
    v = t.verify(tclient, "2")
    with (
        query_spy(tsandbox.base_url) as (spy_url, queries),
        fotp.Client(spy_url, **tsandbox.client_kwargs()) as client,
        ThreadPoolExecutor(1) as pool,
    ):
        waited: Future[fotp.QueryResult] = pool.submit(t.wait, client, v.ft_token, 20.0)
        assert queries.get(timeout=10) == "0"
        # Closing while a wait is in flight: new calls fail at once, the wait goes on.
        t.close()
        t.close()
        assert t.closed and repr(t) == "<fotp.Tracker memory closed>"
        for call in (
            lambda: t.verify(tclient, "2"),
            lambda: t.match(fotp.parse_callback(_body(v.code))),
            lambda: t.wait(tclient, v.ft_token),
        ):
            with pytest.raises(fotp.InvalidArgument, match="closed"):
                call()
        tsandbox.uplink(v.ft_token, v.code)
        assert waited.result(timeout=20).status is fotp.Status.SUCCESS
    with fotp.Tracker.memory() as t2:
        closed = fotp.Client(tsandbox.base_url, **tsandbox.client_kwargs())
        closed.close()
        with pytest.raises(fotp.InvalidArgument, match="Client is closed"):
            t2.verify(closed, "2")
    assert t2.closed


# --- wsgi_callback with a tracker ----------------------------------------------------------


def _call(app: Any, body: bytes) -> tuple[str, bytes]:
    seen: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen["status"] = status
        return lambda data: None

    env = {
        "REQUEST_METHOD": "POST",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    out = b"".join(app(env, start_response))
    return seen["status"], out


def test_settle_and_unsettle(tclient: fotp.Client, tsandbox: Sandbox, redis: Redis) -> None:
    with (
        fotp.Tracker.memory() as mem,
        fotp.Tracker.redis(redis.url, namespace=f"settle-{time.monotonic_ns()}") as red,
    ):
        for t in (mem, red):
            v = t.verify(tclient, "2")
            genuine = fotp.parse_callback(_body(v.code, mobile="8613900000077"))
            # Not confirmed by the platform (no SMS yet): nothing consumed, however often.
            assert t.settle(tclient, genuine) is None
            assert t.settle_outcome(tclient, genuine) == (fotp.SettleOutcome.UNCONFIRMED, None)
            other = fotp.parse_callback(_body(str(int(v.code) % 9000 + 1000)))
            assert t.settle_outcome(tclient, other) == (fotp.SettleOutcome.NO_MATCH, None)
            tsandbox.uplink(v.ft_token, v.code, mobile="8613900000077")
            forged = fotp.parse_callback(_body(v.code, mobile="8610000000000"))
            assert t.settle(tclient, forged) is None
            first = t.settle(tclient, genuine)
            assert first == fotp.Match(v.ft_token, False)
            assert t.settle_outcome(tclient, genuine) == (
                fotp.SettleOutcome.DUPLICATE,
                fotp.Match(v.ft_token, True),
            )
            # Acting on it failed: undone, the next delivery is the first again.
            assert first is not None
            t.unsettle(first)
            with pytest.raises(fotp.InvalidArgument, match="once"):
                t.unsettle(first)
            again = t.settle(tclient, genuine)
            assert again == fotp.Match(v.ft_token, False)
            dup = t.settle(tclient, genuine)
            assert dup == fotp.Match(v.ft_token, True)
            # Only a first-delivery match from settle, in this process, can be unsettled.
            assert again is not None and dup is not None
            for m in (dup, pickle.loads(pickle.dumps(again)), fotp.Match(v.ft_token, False)):
                with pytest.raises(fotp.InvalidArgument, match="settle"):
                    t.unsettle(m)
            assert pickle.loads(pickle.dumps(again)) == again
            with pytest.raises(TypeError, match="Match"):
                t.unsettle("x")  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="Callback"):
                t.settle(tclient, _body(v.code))  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="AsyncTracker"):
                t.settle(fotp.AsyncClient.wrap(tclient), genuine)  # type: ignore[arg-type]


# --- asyncio -------------------------------------------------------------------------------


def test_async_tracker(receiver: Receiver, tsandbox: Sandbox, redis: Redis) -> None:
    async def main() -> None:
        async with (
            fotp.AsyncClient(tsandbox.base_url, **tsandbox.client_kwargs()) as ac,
            await fotp.AsyncTracker.redis(redis.url, namespace="async") as at,
        ):
            assert (
                repr(at) == "<fotp.AsyncTracker wrapping fotp.Tracker redis namespace='async' open>"
            )
            receiver.use(at.tracker, ac.client)  # the WSGI receiver shares the tracker
            v = await at.verify(ac, TRACKED_FT_ID, code_length=5, validity_minutes=3)
            assert len(v.code) == 5
            waiting = asyncio.create_task(at.wait(ac, v.ft_token, timeout=20))
            await asyncio.to_thread(
                tsandbox.uplink, v.ft_token, v.code, mobile="8613700000009", deliveries=2
            )
            r = await waiting
            assert r.status is fotp.Status.SUCCESS and r.mobile == "8613700000009"
            ((cb, m1),) = await asyncio.to_thread(receiver.take, 1)
            assert m1 == fotp.Match(v.ft_token, False)
            assert await at.settle(ac, cb) == fotp.Match(v.ft_token, True)
            assert await at.settle_outcome(ac, cb) == (
                fotp.SettleOutcome.DUPLICATE,
                fotp.Match(v.ft_token, True),
            )
            with pytest.raises(fotp.InvalidArgument, match="code_length"):
                await at.verify(ac, TRACKED_FT_ID, code_length=9)
            with pytest.raises(TypeError, match="fotp.Tracker"):
                await at.verify(ac.client, "2")  # type: ignore[arg-type]
        assert at.closed and at.tracker.closed
        with pytest.raises(fotp.InvalidArgument, match="closed"):
            await at.match(cb)
        with pytest.raises(fotp.InvalidArgument, match="closed"):
            await at.wait(ac, v.ft_token)
        await at.aclose()  # idempotent

        # The memory store, wrapping a blocking tracker, match on a given executor.
        with ThreadPoolExecutor(2) as pool:
            async with (
                fotp.AsyncClient(tsandbox.base_url, **tsandbox.client_kwargs()) as ac2,
                fotp.AsyncTracker(fotp.Tracker.memory(), executor=pool) as at2,
            ):
                v2 = await at2.verify(ac2, "2", timeout=5)
                cb2 = fotp.parse_callback(_body(v2.code))
                assert await at2.match(cb2) == fotp.Match(v2.ft_token, False)
                assert await at2.match(cb2) == fotp.Match(v2.ft_token, True)
        with pytest.raises(TypeError):
            fotp.AsyncTracker(object())  # type: ignore[arg-type]

    asyncio.run(main())


def test_async_tracker_redis_down_is_a_network_error() -> None:
    require_redis()

    async def main() -> None:
        with pytest.raises(fotp.NetworkError):
            await fotp.AsyncTracker.redis(closed_port_url().replace("http", "redis", 1))

    asyncio.run(main())
