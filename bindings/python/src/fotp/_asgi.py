"""An ASGI 3 application that receives push-mode callbacks (no framework needed)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, overload

from . import _runner
from ._async import AsyncClient, AsyncTracker, _run_plain, _settle_async
from ._client import CALLBACK_ACK, Client, parse_callback
from ._errors import FotpError
from ._tracker import SettleOutcome, Tracker
from ._types import Callback, Match
from ._wsgi import MAX_BODY, _error_body, _receiver_args

__all__ = ["asgi_callback"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_log = logging.getLogger("fotp.asgi")


class _BadRequest(Exception):
    pass


class _Disconnected(Exception):
    pass


async def _answer(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    """The request body; at most MAX_BODY + 1 bytes are kept (enough to see it is too large)."""
    for name, value in scope.get("headers") or ():
        if bytes(name).lower() == b"content-length":
            text = bytes(value).decode("latin-1").strip()
            if not text.isdigit():
                raise _BadRequest(f"invalid Content-Length {text[:32]!r}")
            if int(text) > MAX_BODY:
                raise _BadRequest(f"callback body over the {MAX_BODY}-byte limit")
    chunks: list[bytes] = []
    got = 0
    while True:
        message = await receive()
        kind = message.get("type")
        if kind == "http.disconnect":
            raise _Disconnected
        if kind != "http.request":
            continue
        chunk = bytes(message.get("body") or b"")
        if got + len(chunk) > MAX_BODY:
            raise _BadRequest(f"callback body over the {MAX_BODY}-byte limit")
        chunks.append(chunk)
        got += len(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _is_async(fn: object) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 (an object with an async __call__)
    )


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message.get("type") == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message.get("type") == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


@overload
def asgi_callback(
    handler: Callable[[Callback], object], tracker: None = None, client: None = None
) -> ASGIApp: ...


@overload
def asgi_callback(
    handler: Callable[[Callback, Match | None], object],
    tracker: Tracker | AsyncTracker,
    client: Client | AsyncClient,
) -> ASGIApp: ...


def asgi_callback(
    handler: Callable[..., object],
    tracker: Tracker | AsyncTracker | None = None,
    client: Client | AsyncClient | None = None,
) -> ASGIApp:
    """An ASGI 3 application for push mode, the twin of :func:`wsgi_callback`: the same
    answers and, given a tracker and a client, the same settle path and rules (see there).

    Mount it in any ASGI server or framework (uvicorn, Starlette/FastAPI ``app.mount``, ...).
    ``handler`` may be a coroutine function (awaited in the event loop) or a plain function
    (run on a daemon thread, so that it may block); it is called as ``handler(cb)`` without a
    tracker and ``handler(cb, match)`` with one. ``tracker`` is an :class:`AsyncTracker` or a
    :class:`Tracker`, ``client`` an :class:`AsyncClient` or a :class:`Client`; a tracker
    without a client is a ``TypeError``. Settling runs off the event loop and is cancelled
    with the request. Errors are logged on the ``fotp.asgi`` logger. Lifespan events are
    acknowledged; other scope types are refused.
    """
    t, c = _receiver_args(handler, tracker, client, async_ok=True)
    handler_is_async = _is_async(handler)

    async def call_handler(*args: object) -> None:
        if handler_is_async:
            result: object = await handler(*args)  # type: ignore[misc]
        else:
            result = await _run_plain(lambda: handler(*args), _runner.submit)
        if inspect.isawaitable(result):
            await result

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            raise RuntimeError(f"fotp.asgi_callback serves HTTP only, not {kind!r}")
        if scope.get("method") != "POST":
            await _answer(
                send, 405, _error_body(405, "callbacks are POSTed"), (b"allow", b"POST")
            )
            return
        try:
            cb = parse_callback(await _read_body(scope, receive))
        except _Disconnected:
            return
        except (_BadRequest, FotpError) as e:
            message = e.message if isinstance(e, FotpError) else str(e)
            await _answer(send, 400, _error_body(400, message))
            return
        if t is None or c is None:
            try:
                await call_handler(cb)
            except Exception:
                _log.exception("the callback handler raised; answering 500 so the platform retries")
                await _answer(send, 500, _error_body(500, "handler failed"))
                return
            await _answer(send, 200, CALLBACK_ACK)
            return
        try:
            outcome, match = await _settle_async(t, c, cb, None)
        except Exception:
            _log.exception("the callback could not be settled; answering 503 (nothing consumed)")
            await _answer(send, 503, _error_body(503, "could not settle the callback"))
            return
        if outcome is SettleOutcome.UNCONFIRMED:
            _log.warning("the platform does not confirm a callback (yet); answering 503")
            await _answer(send, 503, _error_body(503, "not confirmed by the platform yet"))
            return
        if outcome is SettleOutcome.DUPLICATE:
            await _answer(send, 200, CALLBACK_ACK)
            return
        try:
            await call_handler(cb, match)
        except Exception:
            _log.exception("the callback handler raised; answering 500 so the platform retries")
            if match is not None:
                try:
                    await _run_plain(lambda: t.unsettle(match), _runner.submit)
                except Exception:
                    _log.exception("could not undo a settlement after the handler failed")
            await _answer(send, 500, _error_body(500, "handler failed"))
            return
        except BaseException:
            # Cancelled (the server is stopping): the handler may not have finished, so the
            # next delivery must be offered again. Not awaited: this task is being cancelled.
            if match is not None:
                _runner.submit(lambda: _unsettle_quietly(t, match))
            raise
        await _answer(send, 200, CALLBACK_ACK)

    return app



def _unsettle_quietly(tracker: Tracker, match: Match) -> None:
    try:
        tracker.unsettle(match)
    except Exception:
        _log.exception("could not undo a settlement after the handler was cancelled")
