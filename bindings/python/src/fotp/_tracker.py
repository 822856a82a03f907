"""Trackers (push mode): match callbacks to verifications, exactly once (CONTRACT section 8)."""

from __future__ import annotations

import ctypes
from ctypes import byref, c_void_p
from typing import TypeVar

from . import _ffi
from ._client import (
    Client,
    _callback_json,
    _millis,
    _Owned,
    _parse_callback_ptr,
    _take_query_result,
    _take_verification,
    _text,
)
from ._errors import FotpError, InternalError, InvalidArgument, raise_error
from ._types import Callback, Match, QueryResult, Verification

__all__ = ["Tracker"]

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


def _take_match(p: int) -> Match:
    try:
        token = _match_ft_token(p)
        if not token:
            raise InternalError("libfotp returned a match without a token")
        return Match(ctypes.string_at(token).decode(), bool(_match_is_duplicate(p)))
    finally:
        _match_free(p)


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
        is reserved before the request (released again if verify fails). ``validity_minutes``
        is 1-10, or None for the platform's default (5). ``timeout`` (seconds) replaces the
        client's time limit for this call. Raises :class:`ExhaustedError` when half of the
        codes of that length are live (use longer codes), :class:`NetworkError` when the
        tracker's store fails, and whatever :meth:`Client.verify` raises.
        """
        c = _client_arg(client)
        fid = _text("ft_id", ft_id)
        length = _int_arg("code_length", code_length)
        if not 4 <= length <= 6:
            raise InvalidArgument(f"code_length must be 4-6 digits, got {length}")
        if validity_minutes is None:
            minutes = 0  # unset, in C
        else:
            minutes = _int_arg("validity_minutes", validity_minutes)
            if not 1 <= minutes <= 10:
                raise InvalidArgument(
                    f"validity_minutes (validityPeriod) must be 1-10 minutes, got {minutes}"
                )
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
        if not isinstance(cb, Callback):
            raise TypeError(f"cb must be a fotp.Callback, not {type(cb).__name__}")
        try:
            cbp = _parse_callback_ptr(_callback_json(cb))
        except FotpError as e:
            raise InvalidArgument(f"cb is not a valid callback: {e.message}") from None
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

    def wait(self, client: Client, ft_token: str, timeout: float = 60.0) -> QueryResult:
        """The result of ``ft_token``, from the platform's query.

        Returns as soon as a callback for it was matched (by any process sharing the store)
        and the query confirms a final status, or when a query made every 2 s reports one; a
        forged callback cannot make this report success. Raises :class:`Timeout` after
        ``timeout`` seconds (the whole wait, a query in flight included) and
        :class:`NetworkError` when the store fails.
        """
        c = _client_arg(client)
        tok = _text("ft_token", ft_token)
        ms = _millis("timeout", timeout, InvalidArgument)
        out = c_void_p()
        t = self._acquire()
        try:
            with c._borrow() as cp:
                err = _tracker_wait(t, cp, tok, ms, byref(out))
        finally:
            self._release()
        if err:
            raise_error(err)
        return _take_query_result(out.value)  # type: ignore[arg-type]
