"""The receivers' settle path (CONTRACT section 8), the same rules for wsgi_callback and
asgi_callback, called directly (a fake environ / ASGI scope) against the sandbox."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import fotp
from _support import DATA, Redis, Sandbox, redis_server
from conftest import require_redis
from test_wsgi import call

KINDS = ["wsgi", "asgi"]
MOBILE = "8613811112222"
Handler = Callable[..., Any]


def _body(code: str, mobile: str = MOBILE) -> bytes:
    seed = json.loads((DATA / "callback.json").read_bytes())
    seed.update(code=code, mobile=mobile)
    return json.dumps(seed).encode()


def make(kind: str, handler: Handler, tracker: Any = None, client: Any = None) -> Any:
    if kind == "wsgi":
        return fotp.wsgi_callback(handler, tracker=tracker, client=client)
    return fotp.asgi_callback(handler, tracker=tracker, client=client)


def post_wsgi(app: Any, body: bytes, method: str = "POST") -> tuple[int, dict[str, str], bytes]:
    status, headers, out = call(app, method, body)
    return int(status.split()[0]), {k.lower(): v for k, v in headers.items()}, out


async def asgi_request(
    app: Any,
    body: bytes,
    method: str = "POST",
    chunks: list[bytes] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> tuple[int, dict[str, str], bytes] | None:
    """One request; None when the app sent no answer."""
    parts = chunks if chunks is not None else [body]
    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(parts) - 1}
        for i, c in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await asyncio.sleep(3600)  # as a server does: nothing more until the client leaves
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": "/cb",
        "headers": headers
        if headers is not None
        else [(b"content-length", str(len(body)).encode())],
    }
    await app(scope, receive, send)
    if not sent:
        return None
    start, last = sent[0], sent[-1]
    assert start["type"] == "http.response.start" and last["type"] == "http.response.body"
    hdrs = {k.decode(): v.decode() for k, v in start["headers"]}
    out = b"".join(m.get("body", b"") for m in sent[1:])
    assert hdrs["content-length"] == str(len(out))
    return start["status"], hdrs, out


def post(kind: str, app: Any, body: bytes, method: str = "POST") -> tuple[int, dict[str, str], bytes]:
    if kind == "wsgi":
        return post_wsgi(app, body, method)
    answer = asyncio.run(asgi_request(app, body, method))
    assert answer is not None
    return answer


class Calls:
    """A handler recording (code, match); raises for the tokens in `fail`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, fotp.Match | None]] = []
        self.fail: set[str | None] = set()
        self.lock = threading.Lock()

    def __call__(self, cb: fotp.Callback, m: fotp.Match | None) -> None:
        with self.lock:
            self.calls.append((cb.code, m))
        if (m.ft_token if m else None) in self.fail:
            raise RuntimeError("database is down")


@pytest.mark.parametrize("kind", KINDS)
def test_settle_rules(
    kind: str, sandbox: Sandbox, client: fotp.Client, caplog: pytest.LogCaptureFixture
) -> None:
    h = Calls()
    ack = (200, fotp.CALLBACK_ACK)
    with fotp.Tracker.memory() as t:
        app = make(kind, h, t, client)
        v1, v2 = t.verify(client, "2"), t.verify(client, "2")
        genuine = _body(v1.code)
        # A forged callback for a live code, before the SMS: 503, nothing consumed.
        status, _, out = post(kind, app, genuine)
        assert status == 503 and h.calls == [], out
        sandbox.uplink(v1.ft_token, f"code {v1.code}", mobile=MOBILE)
        # The platform has the SMS now, from MOBILE: another mobile is still not confirmed.
        assert post(kind, app, _body(v1.code, mobile="8610000000000"))[0] == 503
        assert h.calls == []
        # The genuine delivery is the first, although forgeries came before it.
        status, headers, out = post(kind, app, genuine)
        assert (status, out) == ack and headers["content-type"] == "application/json"
        assert h.calls == [(v1.code, fotp.Match(v1.ft_token, False))]
        # Its redeliveries: the ack, without the handler.
        assert post(kind, app, genuine)[::2] == ack
        assert post(kind, app, genuine)[::2] == ack
        assert len(h.calls) == 1
        # A code no live verification holds: handler(cb, None), then the ack.
        other = next(c for c in ("9999", "9998", "9997") if c not in (v1.code, v2.code))
        assert post(kind, app, _body(other))[::2] == ack
        assert h.calls[-1] == (other, None)
        # handler(cb, None) raising: 500.
        h.fail.add(None)
        with caplog.at_level(logging.ERROR):
            assert post(kind, app, _body(other))[0] == 500
        h.fail.clear()
        # The handler fails on the first delivery: 500, settlement undone; the next delivery
        # is the first again, then duplicates.
        sandbox.uplink(v2.ft_token, f"code {v2.code}", mobile=MOBILE)
        h.calls.clear()
        h.fail.add(v2.ft_token)
        with caplog.at_level(logging.ERROR):
            assert post(kind, app, _body(v2.code))[0] == 500
        assert any("handler raised" in r.getMessage() for r in caplog.records)
        h.fail.clear()
        assert post(kind, app, _body(v2.code))[::2] == ack
        assert post(kind, app, _body(v2.code))[::2] == ack
        first = fotp.Match(v2.ft_token, False)
        assert h.calls == [(v2.code, first), (v2.code, first)]
        # A bad body and another method never reach the tracker.
        assert post(kind, app, b'{"mobile":"1"}')[0] == 400
        status, headers, _ = post(kind, app, b"", method="GET")
        assert status == 405 and headers["allow"] == "POST"
        assert len(h.calls) == 2
    # Settling fails (a closed tracker): 503, the handler not called, logged.
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert post(kind, app, genuine)[0] == 503
    assert len(h.calls) == 2
    assert any("could not be settled" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("kind", KINDS)
def test_store_down_is_503_and_consumes_nothing(
    kind: str, sandbox: Sandbox, client: fotp.Client
) -> None:
    require_redis()
    h = Calls()
    with redis_server() as r:
        t = fotp.Tracker.redis(r.url, namespace=f"down-{kind}")
        v = t.verify(client, "2")
        sandbox.uplink(v.ft_token, v.code, mobile=MOBILE)
        app = make(kind, h, t, client)
        r.stop()
        assert post(kind, app, _body(v.code))[0] == 503
    assert h.calls == []
    t.close()


@pytest.mark.parametrize("kind", KINDS)
def test_concurrent_deliveries_run_the_handler_once(
    kind: str, sandbox: Sandbox, client: fotp.Client, redis: Redis
) -> None:
    running = 0
    most = 0
    calls: list[fotp.Match | None] = []
    lock = threading.Lock()

    def slow(cb: fotp.Callback, m: fotp.Match | None) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            calls.append(m)
        time.sleep(0.3)
        with lock:
            running -= 1

    with fotp.Tracker.redis(redis.url, namespace=f"concurrent-{kind}") as t:
        v = t.verify(client, "2")
        sandbox.uplink(v.ft_token, v.code, mobile=MOBILE)
        app = make(kind, slow, t, client)
        body = _body(v.code)
        answers: list[Any]
        if kind == "wsgi":
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda _: post_wsgi(app, body)[::2], range(8)))
        else:

            async def many() -> list[tuple[int, dict[str, str], bytes] | None]:
                return await asyncio.gather(*(asgi_request(app, body) for _ in range(8)))

            answers = [a[::2] if a else None for a in asyncio.run(many())]
    assert answers == [(200, fotp.CALLBACK_ACK)] * 8
    assert calls == [fotp.Match(v.ft_token, False)] and most == 1


def test_receiver_arguments(client: fotp.Client) -> None:
    h = Calls()
    with fotp.Tracker.memory() as t:
        for receiver in (fotp.wsgi_callback, fotp.asgi_callback):
            with pytest.raises(TypeError, match="client="):
                receiver(h, tracker=t)  # type: ignore[call-overload]
            with pytest.raises(TypeError, match="tracker"):
                receiver(h, client=client)  # type: ignore[call-overload]
            with pytest.raises(TypeError, match="tracker"):
                receiver(h, tracker=object(), client=client)  # type: ignore[call-overload]
            with pytest.raises(TypeError, match="client"):
                receiver(h, tracker=t, client=object())  # type: ignore[call-overload]
            with pytest.raises(TypeError, match="callable"):
                receiver("nope", tracker=t, client=client)  # type: ignore[call-overload]
        at = fotp.AsyncTracker(fotp.Tracker.memory())
        ac = fotp.AsyncClient.wrap(client)
        # The ASGI receiver takes the asyncio wrappers, or a mix; WSGI points to .tracker.
        fotp.asgi_callback(h, tracker=at, client=ac)
        fotp.asgi_callback(h, tracker=t, client=ac)
        fotp.asgi_callback(h, tracker=at, client=client)
        with pytest.raises(TypeError, match=r"\.tracker"):
            fotp.wsgi_callback(h, tracker=at, client=client)  # type: ignore[call-overload]
        with pytest.raises(TypeError, match=r"\.client"):
            fotp.wsgi_callback(h, tracker=t, client=ac)  # type: ignore[call-overload]
        at.close()


# --- ASGI specifics ------------------------------------------------------------------------


def test_asgi_async_tracker_and_coroutine_handler(sandbox: Sandbox) -> None:
    seen: list[tuple[str, fotp.Match | None, bool]] = []

    async def handler(cb: fotp.Callback, m: fotp.Match | None) -> None:
        await asyncio.sleep(0)
        seen.append((cb.code, m, asyncio.current_task() is not None))

    async def main() -> None:
        async with (
            fotp.AsyncClient(sandbox.base_url, **sandbox.client_kwargs()) as ac,
            fotp.AsyncTracker.memory() as at,
        ):
            app = fotp.asgi_callback(handler, tracker=at, client=ac)
            v = await at.verify(ac, "2")
            assert (await asgi_request(app, _body(v.code)) or (0,))[0] == 503
            await asyncio.to_thread(sandbox.uplink, v.ft_token, v.code, mobile=MOBILE)
            waiting = asyncio.create_task(at.wait(ac, v.ft_token, timeout=20))
            answer = await asgi_request(app, _body(v.code))
            assert answer is not None and answer[::2] == (200, fotp.CALLBACK_ACK)
            assert (await waiting).status is fotp.Status.SUCCESS
            assert (await asgi_request(app, _body(v.code)) or (0,))[0] == 200
            # AsyncTracker's settle and unsettle, directly.
            v2 = await at.verify(ac, "2")
            cb2 = fotp.parse_callback(_body(v2.code))
            assert await at.settle(ac, cb2) is None
            await asyncio.to_thread(sandbox.uplink, v2.ft_token, v2.code, mobile=MOBILE)
            first = await at.settle(ac, cb2)
            assert first == fotp.Match(v2.ft_token, False)
            assert first is not None
            await at.unsettle(first)
            assert await at.settle_outcome(ac, cb2) == (
                fotp.SettleOutcome.FIRST,
                fotp.Match(v2.ft_token, False),
            )
            assert await at.settle(ac, cb2) == fotp.Match(v2.ft_token, True)
            with pytest.raises(fotp.InvalidArgument, match="settle"):
                await at.unsettle(first)
        assert seen == [(v.code, fotp.Match(v.ft_token, False), True)]

    asyncio.run(main())


def test_asgi_plain_handler_runs_off_the_event_loop() -> None:
    threads: list[int] = []

    def handler(cb: fotp.Callback) -> None:
        threads.append(threading.get_ident())

    async def main() -> None:
        app = fotp.asgi_callback(handler)
        answer = await asgi_request(app, (DATA / "callback.json").read_bytes())
        assert answer is not None and answer[::2] == (200, fotp.CALLBACK_ACK)
        assert threads and threads[0] != threading.get_ident()

    asyncio.run(main())


def test_asgi_without_tracker_and_errors(caplog: pytest.LogCaptureFixture) -> None:
    got: list[fotp.Callback] = []

    async def fail(cb: fotp.Callback) -> None:
        raise RuntimeError("database is down")

    async def main() -> None:
        seed = (DATA / "callback.json").read_bytes()
        app = fotp.asgi_callback(got.append)
        # The body in several chunks.
        answer = await asgi_request(app, b"", chunks=[seed[:10], seed[10:20], seed[20:]])
        assert answer is not None and answer[::2] == (200, fotp.CALLBACK_ACK)
        assert got == [fotp.parse_callback(seed)]
        # Bad bodies: 400 naming the problem.
        for body, reason in ((b"{", "callback"), (b'{"mobile":"1"}', "sender")):
            answer = await asgi_request(app, body)
            assert answer is not None and answer[0] == 400
            assert reason in json.loads(answer[2])["message"]
        # Over the limit: refused from the Content-Length, before reading anything...
        big = [(b"content-length", str(1 << 30).encode())]
        answer = await asgi_request(app, b"", chunks=[], headers=big)
        assert answer is not None and answer[0] == 400 and "limit" in answer[2].decode()
        # ...and when streamed without one.
        chunk = b"x" * 40_000
        answer = await asgi_request(app, b"", chunks=[chunk, chunk, chunk], headers=[])
        assert answer is not None and answer[0] == 400 and "limit" in answer[2].decode()
        answer = await asgi_request(app, seed, headers=[(b"content-length", b"x1")])
        assert answer is not None and answer[0] == 400 and "Content-Length" in answer[2].decode()
        # The client leaves before the body is complete: no answer, no handler.
        sent: list[Any] = []

        async def gone() -> dict[str, Any]:
            return {"type": "http.disconnect"}

        async def send(m: Any) -> None:
            sent.append(m)

        await app({"type": "http", "method": "POST", "headers": []}, gone, send)
        assert sent == [] and len(got) == 1
        for method in ("GET", "PUT", "HEAD"):
            answer = await asgi_request(app, seed, method=method)
            assert answer is not None and answer[0] == 405 and answer[1]["allow"] == "POST"
        with caplog.at_level(logging.ERROR, logger="fotp.asgi"):
            answer = await asgi_request(fotp.asgi_callback(fail), seed)
        assert answer is not None and answer[0] == 500 and b"database" not in answer[2]
        # Lifespan events are acknowledged; websockets are not served.
        events = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        replies: list[Any] = []

        async def lrecv() -> Any:
            return events.pop(0)

        async def lsend(m: Any) -> None:
            replies.append(m)

        await app({"type": "lifespan"}, lrecv, lsend)
        assert [m["type"] for m in replies] == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]
        with pytest.raises(RuntimeError, match="HTTP only"):
            await app({"type": "websocket"}, lrecv, lsend)

    asyncio.run(main())
