"""A WSGI application that receives push-mode callbacks."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, overload

from ._client import CALLBACK_ACK, parse_callback
from ._errors import FotpError
from ._tracker import Tracker
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


@overload
def wsgi_callback(
    handler: Callable[[Callback], object], tracker: None = None
) -> WSGIApplication: ...


@overload
def wsgi_callback(
    handler: Callable[[Callback, Match | None], object], tracker: Tracker
) -> WSGIApplication: ...


def wsgi_callback(
    handler: Callable[..., object], tracker: Tracker | None = None
) -> WSGIApplication:
    """A WSGI application for push mode: the handler is called for every callback.

    Without a tracker, ``handler(cb)`` is called with the parsed :class:`Callback`.

    With a :class:`Tracker`, each callback is first matched (:meth:`Tracker.match`), which
    wakes :meth:`Tracker.wait` for its token, and ``handler(cb, match)`` is called: ``match`` is
    a :class:`Match` (``match.ft_token``; ``match.duplicate`` is True for a repeated delivery of
    an already matched callback, which the handler should ignore) or None when no live
    verification of the tracker holds the callback's code (expired, or not this tracker's).
    A duplicate is reported even when the handler raised on the first delivery: the platform's
    query (:meth:`Tracker.wait`, :meth:`Client.confirm`) stays the source of truth.

    Answers ``200`` with :data:`CALLBACK_ACK` (``application/json``) when the handler returns,
    ``400`` naming the problem for a body that does not parse (at most 64 KiB is read),
    ``500`` when the tracker fails (e.g. Redis is down) or the handler raises (so the platform
    delivers again; the exception is logged on the ``fotp.wsgi`` logger) and ``405`` for a
    method other than POST.

    A callback carries no signature: confirm it with :meth:`Client.confirm` before trusting it.
    The platform may deliver a callback more than once, so the handler should be idempotent.
    """
    if tracker is not None and not isinstance(tracker, Tracker):
        hint = (
            "; pass an AsyncTracker's .tracker" if type(tracker).__name__ == "AsyncTracker" else ""
        )
        raise TypeError(
            f"tracker must be a fotp.Tracker or None, not {type(tracker).__name__}{hint}"
        )
    if not callable(handler):
        raise TypeError("handler must be callable")

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
        if tracker is not None:
            try:
                match = tracker.match(cb)
            except Exception:
                _log.exception("the tracker could not match the callback; answering 500")
                return _answer(
                    start_response, "500 Internal Server Error", _error_body(500, "tracker failed")
                )
        try:
            if tracker is None:
                handler(cb)
            else:
                handler(cb, match)
        except Exception:
            _log.exception("the callback handler raised; answering 500 so the platform retries")
            return _answer(
                start_response, "500 Internal Server Error", _error_body(500, "handler failed")
            )
        return _answer(start_response, "200 OK", CALLBACK_ACK)

    return app
