"""A WSGI application that receives push-mode callbacks."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, overload

from ._client import CALLBACK_ACK, Client, parse_callback
from ._errors import FotpError
from ._tracker import SettleOutcome, Tracker
from ._types import Callback, Match

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment
else:
    StartResponse = Callable[..., Any]
    WSGIEnvironment = dict
    WSGIApplication = Callable[..., Any]

__all__ = ["wsgi_callback"]

MAX_BODY = 64 * 1024
_log = logging.getLogger("fotp.wsgi")
_callback_log = logging.getLogger("fotp.callback")


def _refused(reason: str) -> None:
    """A refusal before the library saw the body, like the library's ``refused`` events."""
    _callback_log.info(
        "callback refused: %s", reason, extra={"fotp": {"event": "refused", "reason": reason}}
    )


_JSON = ("Content-Type", "application/json")


def _answer(
    start_response: StartResponse, status: str, body: bytes, *extra: tuple[str, str]
) -> list[bytes]:
    start_response(status, [_JSON, ("Content-Length", str(len(body))), *extra])
    return [body]


def _error_body(code: int, message: str) -> bytes:
    return json.dumps({"code": str(code), "message": message}).encode("utf-8")


class _BadRequest(Exception):
    pass


def _read_body(environ: WSGIEnvironment) -> bytes:
    """Reads at most MAX_BODY + 1 bytes: enough for the parser to see a body is too large."""
    raw_len = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    if raw_len.strip():
        try:
            length = int(raw_len)
        except ValueError:
            raise _BadRequest(f"invalid Content-Length {raw_len[:32]!r}") from None
        if length < 0:
            raise _BadRequest("invalid Content-Length")
        want = min(length, MAX_BODY + 1)
    elif environ.get("wsgi.input_terminated"):
        want = MAX_BODY + 1  # the server ends the stream (chunked body)
    else:
        want = 0  # PEP 3333: without a length the stream may never end
    chunks: list[bytes] = []
    got = 0
    while got < want:
        chunk = stream.read(want - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _receiver_args(
    handler: object, tracker: object, client: object, async_ok: bool
) -> tuple[Tracker | None, Client | None]:
    """Checks a receiver's arguments; returns the blocking tracker and client underneath."""
    if not callable(handler):
        raise TypeError("handler must be callable")
    if tracker is None:
        if client is not None:
            raise TypeError("client is used to settle callbacks: give a tracker too")
        return None, None
    if client is None:
        raise TypeError(
            "a tracker needs client=: the receiver settles each callback with the platform "
            "(a callback carries no signature)"
        )
    async_tracker = type(tracker).__name__ == "AsyncTracker"
    async_client = type(client).__name__ == "AsyncClient"
    if async_ok and async_tracker:
        # By name, not isinstance: importing the asyncio wrappers would import asyncio.
        tracker = getattr(tracker, "tracker")
    if async_ok and async_client:
        client = getattr(client, "client")
    if not isinstance(tracker, Tracker):
        hint = "; pass an AsyncTracker's .tracker" if async_tracker else ""
        raise TypeError(
            f"tracker must be a fotp.Tracker or None, not {type(tracker).__name__}{hint}"
        )
    if not isinstance(client, Client):
        hint = "; pass an AsyncClient's .client" if async_client else ""
        raise TypeError(f"client must be a fotp.Client, not {type(client).__name__}{hint}")
    return tracker, client


@overload
def wsgi_callback(
    handler: Callable[[Callback], object], tracker: None = None, client: None = None
) -> WSGIApplication: ...


@overload
def wsgi_callback(
    handler: Callable[[Callback, Match | None], object], tracker: Tracker, client: Client
) -> WSGIApplication: ...


def wsgi_callback(
    handler: Callable[..., object], tracker: Tracker | None = None, client: Client | None = None
) -> WSGIApplication:
    """A WSGI application for push mode: the handler is called for every callback.

    Without a tracker, ``handler(cb)`` is called with the parsed :class:`Callback`. A callback
    carries no signature: confirm it (:meth:`Client.confirm`) before trusting it, and make the
    handler idempotent (the platform may deliver a callback more than once).

    With a :class:`Tracker` and the :class:`Client` to confirm callbacks with, each callback is
    settled (:meth:`Tracker.settle_outcome`: matched by its code and confirmed by the platform),
    which also wakes :meth:`Tracker.wait` for its token, and answered by these rules:

    - the first genuine delivery for a token: ``handler(cb, match)``, then the ack. The handler
      is never called for an unconfirmed callback, nor twice at the same time for one token;
    - a delivery of a token settled before: the ack, without calling the handler;
    - a code that no live verification holds: ``handler(cb, None)``, then the ack;
    - a code that a live verification holds but that the platform does not confirm (yet), or
      a settle that fails (store or platform down): ``503``, nothing consumed, the handler not
      called; the platform delivers again, and the genuine delivery is still the first;
    - the handler raises: the settlement is undone (:meth:`Tracker.unsettle`) and the answer
      is ``500``, so the next delivery is offered to the handler again. A result is never lost.

    Answers ``200`` with :data:`CALLBACK_ACK` (``application/json``), ``400`` naming the
    problem for a body that does not parse (at most 64 KiB is read), ``405`` (with
    ``Allow: POST``) for a method other than POST. Errors are logged on the ``fotp.wsgi``
    logger. A tracker without a client is a ``TypeError``.
    """
    t, c = _receiver_args(handler, tracker, client, async_ok=False)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") != "POST":
            _refused("method " + str(environ.get("REQUEST_METHOD")) + ": callbacks are POSTed")
            return _answer(
                start_response,
                "405 Method Not Allowed",
                _error_body(405, "callbacks are POSTed"),
                ("Allow", "POST"),
            )
        try:
            cb = parse_callback(_read_body(environ))
        except (_BadRequest, FotpError) as e:
            message = e.message if isinstance(e, FotpError) else str(e)
            if not isinstance(e, FotpError):  # the library logs the bodies it refuses
                _refused(message)
            return _answer(start_response, "400 Bad Request", _error_body(400, message))
        except OSError as e:  # the client went away mid-body
            _refused(f"read error: {e}")
            return _answer(start_response, "400 Bad Request", _error_body(400, f"read error: {e}"))
        if t is None or c is None:
            try:
                handler(cb)
            except Exception:
                _log.exception("the callback handler raised; answering 500 so the platform retries")
                return _answer(start_response, *_HANDLER_FAILED)
            return _answer(start_response, "200 OK", CALLBACK_ACK)
        try:
            outcome, match = t.settle_outcome(c, cb)
        except Exception:
            _log.exception("the callback could not be settled; answering 503 (nothing consumed)")
            return _answer(start_response, *_SETTLE_FAILED)
        if outcome is SettleOutcome.UNCONFIRMED:
            _log.warning("the platform does not confirm a callback (yet); answering 503")
            return _answer(start_response, *_UNCONFIRMED)
        if outcome is SettleOutcome.DUPLICATE:
            return _answer(start_response, "200 OK", CALLBACK_ACK)
        try:
            handler(cb, match)
        except Exception:
            _log.exception("the callback handler raised; answering 500 so the platform retries")
            if match is not None:
                _unsettle(t, match, _log)
            return _answer(start_response, *_HANDLER_FAILED)
        except BaseException:  # e.g. the worker is being stopped: offer the next delivery again
            if match is not None:
                _unsettle(t, match, _log)
            raise
        return _answer(start_response, "200 OK", CALLBACK_ACK)

    return app


def _unsettle(tracker: Tracker, match: Match, log: logging.Logger) -> None:
    try:
        tracker.unsettle(match)
    except Exception:
        # The settlement stays: later deliveries are duplicates. Logged loudly, since the
        # handler's work for this token is then lost unless the app recovers it (wait/query).
        log.exception("could not undo a settlement after the handler failed")


_HANDLER_FAILED = ("500 Internal Server Error", _error_body(500, "handler failed"))
_SETTLE_FAILED = ("503 Service Unavailable", _error_body(503, "could not settle the callback"))
_UNCONFIRMED = ("503 Service Unavailable", _error_body(503, "not confirmed by the platform yet"))
