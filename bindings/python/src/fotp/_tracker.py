"""Trackers (push mode): match callbacks to verifications, exactly once (CONTRACT section 8)."""

from __future__ import annotations

import ctypes
import threading
from ctypes import byref, c_int, c_void_p
from enum import IntEnum
from typing import TypeVar

from . import _ffi
from ._client import (
    Client,
    _callback_json,
    _millis,
    _optional_millis,
    _Owned,
    _parse_callback_ptr,
    _query_result_free,
    _take_query_result,
    _take_verification,
    _text,
)
from ._errors import FotpError, InternalError, InvalidArgument, raise_error
from ._types import Callback, Match, QueryResult, Verification

__all__ = ["SettleOutcome", "Tracker"]

_lib = _ffi.lib
_tracker_new_memory = _lib.fotp_tracker_new_memory
_tracker_new_redis = _lib.fotp_tracker_new_redis
_tracker_free = _lib.fotp_tracker_free
_tracker_verify = _lib.fotp_tracker_verify
_tracker_match = _lib.fotp_tracker_match
_match_ft_token = _lib.fotp_match_ft_token
_match_is_duplicate = _lib.fotp_match_is_duplicate
_match_free = _lib.fotp_match_free
_tracker_wait = _lib.fotp_tracker_wait
_tracker_settle_outcome = _lib.fotp_tracker_settle_outcome
_tracker_unsettle = _lib.fotp_tracker_unsettle
_callback_free = _lib.fotp_callback_free

_T = TypeVar("_T", bound="Tracker")


def _client_arg(client: object) -> Client:
    if isinstance(client, Client):
        return client
    hint = (
        "; with a fotp.AsyncClient use fotp.AsyncTracker"
        if type(client).__name__ == "AsyncClient"
        else ""
    )
    raise TypeError(f"client must be a fotp.Client, not {type(client).__name__}{hint}")


def _int_arg(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


class SettleOutcome(IntEnum):
    """What :meth:`Tracker.settle_outcome` found; the values are the C
    ``FOTP_SETTLE_*`` constants."""

    NO_MATCH = 0
    """No live verification holds the code: not this tracker's (or expired). Acknowledge it."""
    UNCONFIRMED = 1
    """A live verification holds the code but the platform does not confirm the callback (yet):
    nothing was consumed. Answer 503 so that the platform delivers again."""
    FIRST = 2
    """The first genuine delivery for the token: act on it (or :meth:`Tracker.unsettle`)."""
    DUPLICATE = 3
    """A genuine delivery for a token settled before: acknowledge it, do not act again."""


class _MatchHandle:
    """Owns a library ``fotp_match`` (for unsettle); freed once, when collected or used up."""

    __slots__ = ("__weakref__", "_lock", "_ptr")

    def __init__(self, ptr: int) -> None:
        self._ptr: int | None = ptr
        self._lock = threading.Lock()

    def take(self) -> int | None:
        with self._lock:
            ptr, self._ptr = self._ptr, None
            return ptr

    def __del__(self) -> None:
        ptr = self.take()
        if ptr:
            _match_free(ptr)


def _take_match(p: int, keep: bool = False) -> Match:
    """A Match from a library match, which is freed (or kept in the Match, for unsettle)."""
    try:
        token = _match_ft_token(p)
        if not token:
            raise InternalError("libfotp returned a match without a token")
        m = Match(
            ctypes.string_at(token).decode(),
            bool(_match_is_duplicate(p)),
            _MatchHandle(p) if keep else None,
        )
    except BaseException:
        _match_free(p)
        raise
    if not keep:
        _match_free(p)
    return m


def _callback_ptr(cb: object) -> int:
    if not isinstance(cb, Callback):
        raise TypeError(f"cb must be a fotp.Callback, not {type(cb).__name__}")
    try:
        return _parse_callback_ptr(_callback_json(cb))
    except FotpError as e:
        raise InvalidArgument(f"cb is not a valid callback: {e.message}") from None


def _settled(err: int, outcome: int, out: int) -> tuple[SettleOutcome, Match | None]:
    """The result of ``fotp_tracker_settle_outcome``; frees or keeps what it returned."""
    if err:
        if out:
            _match_free(out)
        raise_error(err)
    try:
        kind = SettleOutcome(outcome)
    except ValueError:
        if out:
            _match_free(out)
        raise InternalError(f"libfotp returned an unknown settle outcome {outcome}") from None
    if not out:
        if kind in (SettleOutcome.FIRST, SettleOutcome.DUPLICATE):
            raise InternalError("libfotp settled a callback without a match")
        return kind, None
    if kind not in (SettleOutcome.FIRST, SettleOutcome.DUPLICATE):
        _match_free(out)
        raise InternalError("libfotp returned a match without a settlement")
    return kind, _take_match(out, keep=kind is SettleOutcome.FIRST)


class Tracker(_Owned):
    """Gives each verification a code no other live verification of the tracker holds, so a
    callback (which names only the phone number and the code) finds its verification.

    Make one with :meth:`memory` (one process) or :meth:`redis` (many processes sharing a
    Redis server). Safe to share between threads. ``close()`` (or ``with``) frees it; closing
    while other threads are inside a call is safe (it is freed when the last call returns), and
    the codes it reserved stay reserved until they expire.
    """

    _what = "fotp.Tracker"
    _store: str

    def __init__(self) -> None:
        raise TypeError("use fotp.Tracker.memory() or fotp.Tracker.redis(url)")

    @classmethod
    def _wrap(cls: type[_T], ptr: int, store: str) -> _T:
        self = cls.__new__(cls)
        _Owned.__init__(self, ptr, _tracker_free)
        self._store = store
        return self

    @classmethod
    def memory(cls: type[_T]) -> _T:
        """A tracker keeping its codes in this process's memory."""
        ptr = _tracker_new_memory()
        if not ptr:
            raise InternalError("libfotp could not create a tracker")
        return cls._wrap(ptr, "memory")

    @classmethod
    def redis(cls: type[_T], url: str, namespace: str = "fotp") -> _T:
        """A tracker whose codes live in Redis (6.2 or later), shared by every process using the
        same deployment and ``namespace``.

        ``url`` names the deployment: ``redis://[user:password@]host[:port][/db]`` (one
        server), ``redis+cluster://[user:password@]host:port[,host:port]...`` (Redis Cluster
        seed nodes) or ``redis+sentinel://[user:password@]host:port[,host:port]...[/service]``
        (the primary the Sentinels name ``service``, default ``mymaster``). Every key starts
        with ``namespace`` (1-64 visible ASCII characters; ``{namespace}`` on a cluster, so no
        braces there) and a colon, and expires with its
        verification (plus a grace period). Connects once, at once: a URL that does not parse or
        credentials the server refuses raise :class:`ConfigError`, an unreachable server
        :class:`NetworkError`. The URL is never shown in messages.
        """
        u = _text("url", url)
        ns = _text("namespace", namespace)
        out = c_void_p()
        err = _tracker_new_redis(u, ns, byref(out))
        if err:
            raise_error(err)
        if not out.value:
            raise InternalError("libfotp returned no tracker")
        return cls._wrap(out.value, f"redis namespace={namespace!r}")

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<fotp.{type(self).__name__} {getattr(self, '_store', '?')} {state}>"

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _verify_args(
        ft_id: str, code_length: int, validity_minutes: int | None
    ) -> tuple[bytes, int, int]:
        fid = _text("ft_id", ft_id)
        length = _int_arg("code_length", code_length)
        if not 4 <= length <= 6:
            raise InvalidArgument(f"code_length must be 4-6 digits, got {length}")
        if validity_minutes is None:
            return fid, length, 0  # unset, in C
        minutes = _int_arg("validity_minutes", validity_minutes)
        if not 1 <= minutes <= 10:
            raise InvalidArgument(
                f"validity_minutes (validityPeriod) must be 1-10 minutes, got {minutes}"
            )
        return fid, length, minutes

    def verify(
        self,
        client: Client,
        ft_id: str,
        code_length: int = 4,
        validity_minutes: int | None = None,
        *,
        timeout: float | None = None,
    ) -> Verification:
        """Starts a verification through ``client`` with a code unique in this tracker.

        The code has ``code_length`` digits (4-6), never starts with 0, comes from a CSPRNG and
        is reserved before the request; the reservation is released early only when the request
        surely never reached the platform, otherwise it lives until it expires (so a late
        callback of a failed verify never matches another verification). ``validity_minutes``
        is 1-10, or None for the platform's default (5). ``timeout`` (seconds) bounds the whole
        call. Raises :class:`ExhaustedError` when half of the
        codes of that length are live (use longer codes), :class:`NetworkError` when the
        tracker's store fails, and whatever :meth:`Client.verify` raises.
        """
        c = _client_arg(client)
        fid, length, minutes = self._verify_args(ft_id, code_length, validity_minutes)
        ms = None if timeout is None else _millis("timeout", timeout, InvalidArgument)
        out = c_void_p()
        t = self._acquire()
        try:
            with c._borrow(ms) as cp:
                err = _tracker_verify(t, cp, fid, length, minutes, byref(out))
        finally:
            self._release()
        if err:
            raise_error(err)
        return _take_verification(out.value)  # type: ignore[arg-type]

    def match(self, cb: Callback) -> Match | None:
        """The verification ``cb`` belongs to, found by its code (the phone number is not
        compared), or None when no live verification of this tracker holds the code.

        The first delivery gives ``Match(ft_token, duplicate=False)`` and wakes :meth:`wait`
        for that token in every process sharing the store; later deliveries give
        ``duplicate=True``. This does not authenticate the callback (see
        :meth:`Client.confirm`). Raises :class:`NetworkError` when the store fails (never a
        wrong match).
        """
        cbp = _callback_ptr(cb)
        out = c_void_p()
        try:
            t = self._acquire()
            try:
                err = _tracker_match(t, cbp, byref(out))
            finally:
                self._release()
        finally:
            _callback_free(cbp)
        if err:
            raise_error(err)
        return None if not out.value else _take_match(out.value)

    def settle(
        self, client: Client, cb: Callback, *, timeout: float | None = None
    ) -> Match | None:
        """The safe way to act on a callback: matches its code, confirms it with the platform
        through ``client`` (one query: status success, same code, same mobile) and settles it.

        Returns None when no live verification holds the code, or when the platform does not
        confirm the callback (a forgery, or the platform is not there yet): nothing is consumed
        then, so a forged callback never hides the genuine one. Otherwise a :class:`Match`
        whose ``duplicate`` is True when this token was settled before, in any process sharing
        the store: exactly one genuine delivery per token is the first. When acting on the first
        delivery fails, :meth:`unsettle` it so that the next delivery is the first again.
        Raises when the query or the store fails (nothing is consumed then either): answer the
        platform 503 so that it delivers again. ``timeout`` (seconds) bounds the query.
        :meth:`settle_outcome` tells the two None cases apart.
        """
        outcome, m = self.settle_outcome(client, cb, timeout=timeout)
        return m

    def settle_outcome(
        self, client: Client, cb: Callback, *, timeout: float | None = None
    ) -> tuple[SettleOutcome, Match | None]:
        """:meth:`settle`, also telling what it found (what a receiver answers depends on it):
        ``(NO_MATCH, None)``, ``(UNCONFIRMED, None)``, ``(FIRST, match)`` or
        ``(DUPLICATE, match)``; see :class:`SettleOutcome`."""
        c = _client_arg(client)
        ms = _optional_millis("timeout", timeout, InvalidArgument)
        cbp = _callback_ptr(cb)
        outcome = c_int(0)
        out = c_void_p()
        try:
            t = self._acquire()
            try:
                with c._borrow(ms) as cp:
                    err = _tracker_settle_outcome(t, cp, cbp, byref(outcome), byref(out))
            finally:
                self._release()
        finally:
            _callback_free(cbp)
        return _settled(err or 0, outcome.value, out.value or 0)

    def unsettle(self, match: Match) -> None:
        """Undoes a first settlement whose handling failed, so that the next delivery of the
        callback is the first again (a result is never lost).

        ``match`` is the first-delivery :class:`Match` that :meth:`settle` returned in this
        process; it can be unsettled once. Raises :class:`InvalidArgument` for any other match
        (a duplicate, one from :meth:`match`, a copy, or one unsettled already) and
        :class:`NetworkError` when the store fails.
        """
        if not isinstance(match, Match):
            raise TypeError(f"match must be a fotp.Match, not {type(match).__name__}")
        handle = match._handle
        ptr = handle.take() if isinstance(handle, _MatchHandle) else None
        if not ptr:
            raise InvalidArgument(
                "only the first-delivery match that settle() returned in this process can be "
                "unsettled, once"
            )
        try:
            t = self._acquire()
            try:
                err = _tracker_unsettle(t, ptr)
            finally:
                self._release()
        finally:
            _match_free(ptr)
        if err:
            raise_error(err)

    def wait(self, client: Client, ft_token: str, timeout: float = 60.0) -> QueryResult:
        """The result of ``ft_token``, from the platform's query.

        Returns as soon as a callback for it was settled (or matched) by any process sharing
        the store and the query confirms a final status, or when a poll reports one; a forged
        callback cannot make this report success. Raises :class:`Timeout` after ``timeout``
        seconds (the whole wait, a query in flight included). Called from the main thread, it
        reacts to Ctrl-C at once (``KeyboardInterrupt``; the call stops in the library).
        """
        c = _client_arg(client)
        tok = _text("ft_token", ft_token)
        ms = _millis("timeout", timeout, InvalidArgument)
        t = self._acquire()

        def invoke(cp: int) -> tuple[int, int]:
            out = c_void_p()
            err = _tracker_wait(t, cp, tok, ms, byref(out))
            return err or 0, out.value or 0

        return _take_query_result(c._blocking(invoke, _query_result_free, self._release))
