"""The blocking client and callback parsing."""

from __future__ import annotations

import ctypes
import json
import math
import os
import sys
import sysconfig
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from ctypes import byref, c_bool, c_char_p, c_void_p
from types import TracebackType
from typing import Any, Literal, TypeVar

from . import _calls, _ffi, _log
from ._errors import (
    ConfigError,
    DecodeError,
    FotpError,
    InternalError,
    InvalidArgument,
    raise_error,
)
from ._types import (
    Callback,
    QueryResult,
    Status,
    Verification,
    make_callback,
    make_query_result,
    make_verification,
)

__all__ = ["CALLBACK_ACK", "Client", "parse_callback"]

_lib = _ffi.lib
# Function pointers cached once: attribute lookups on the CDLL cost more than a global read.
_config_new = _lib.fotp_config_new
_config_from_env = _lib.fotp_config_from_env
_config_set_base_url = _lib.fotp_config_set_base_url
_config_set_hmac_auth = _lib.fotp_config_set_hmac_auth
_config_set_token_auth = _lib.fotp_config_set_token_auth
_config_set_timeout_ms = _lib.fotp_config_set_timeout_ms
_config_set_connect_timeout_ms = _lib.fotp_config_set_connect_timeout_ms
_config_set_call_timeout_ms = _lib.fotp_config_set_call_timeout_ms
_config_set_ca_bundle = _lib.fotp_config_set_ca_bundle
_config_set_proxy = _lib.fotp_config_set_proxy
_config_set_retries = _lib.fotp_config_set_retries
_config_set_allow_insecure_http = _lib.fotp_config_set_allow_insecure_http
_config_set_user_agent_suffix = _lib.fotp_config_set_user_agent_suffix
_config_free = _lib.fotp_config_free
_client_new = _lib.fotp_client_new
_client_with_timeout = _lib.fotp_client_with_timeout
_client_free = _lib.fotp_client_free
_verify = _lib.fotp_verify
_verification_fields = _lib.fotp_verification_fields
_verification_free = _lib.fotp_verification_free
_query = _lib.fotp_query
_wait = _lib.fotp_wait
_query_result_status = _lib.fotp_query_result_status
_query_result_fields = _lib.fotp_query_result_fields
_query_result_free = _lib.fotp_query_result_free
_callback_parse = _lib.fotp_callback_parse
_callback_parse_into = _lib.fotp_callback_parse_into
_callback_free = _lib.fotp_callback_free
_confirm_callback = _lib.fotp_confirm_callback

_Fields4 = c_char_p * 4
_Fields6 = c_char_p * 6

CALLBACK_ACK: bytes = ctypes.string_at(_lib.fotp_callback_ack())
"""The exact answer to a callback that was accepted: ``b'{"code":"0"}'``."""

_UA_SUFFIX = f"python/{sys.version_info[0]}.{sys.version_info[1]}".encode("ascii")
_U32_MAX = 0xFFFF_FFFF

_C = TypeVar("_C", bound="Client")


def _check(err: int | None) -> None:
    if err:
        raise_error(err)


def _text(name: str, value: object, error: type[FotpError] = InvalidArgument) -> bytes:
    """A str argument as NUL-terminated UTF-8 for C (which cannot carry NUL or surrogates)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:
        raise error(f"{name} is not valid Unicode (it holds a lone surrogate)") from None
    if b"\0" in data:
        raise error(f"{name} must not contain NUL characters")
    return data


def _millis(name: str, seconds: object, error: type[FotpError]) -> int:
    """Seconds (int or float, > 0) as whole milliseconds for a uint32_t, rounded up."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(seconds).__name__}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise error(f"{name} must be a positive number of seconds, got {seconds!r}")
    # Compared before converting: 1e308 s in milliseconds is no longer finite.
    ms = math.ceil(seconds * 1000) if seconds <= _U32_MAX / 1000 else _U32_MAX + 1
    if ms > _U32_MAX:
        raise error(f"{name} must be at most {_U32_MAX // 1000} seconds, got {seconds!r}")
    return ms


def _optional_millis(name: str, seconds: object, error: type[FotpError]) -> int | None:
    return None if seconds is None else _millis(name, seconds, error)


def _count(name: str, value: object, error: type[FotpError]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= _U32_MAX:
        raise error(f"{name} must be between 0 and {_U32_MAX}, got {value}")
    return value


def _verify_args(
    ft_id: str, code: str | None, validity_minutes: int | None
) -> tuple[bytes, bytes | None, int]:
    if code is None and validity_minutes is None and type(ft_id) is str:
        # The usual call, checked inline (the same rules as _text, which explains any failure).
        try:
            fid = ft_id.encode()
        except UnicodeEncodeError:
            pass
        else:
            if b"\0" not in fid:
                return fid, None, 0
    fid = _text("ft_id", ft_id)
    c = None if code is None else _text("code", code)
    if validity_minutes is None:
        return fid, c, 0  # unset, in C
    if isinstance(validity_minutes, bool) or not isinstance(validity_minutes, int):
        raise TypeError(f"validity_minutes must be an int, not {type(validity_minutes).__name__}")
    if not 1 <= validity_minutes <= 10:
        raise InvalidArgument(
            f"validity_minutes (validityPeriod) must be 1-10 minutes, got {validity_minutes}"
        )
    return fid, c, validity_minutes


def _take_verification(p: int) -> Verification:
    f = _Fields4()
    try:
        if _verification_fields(p, f, 4) != 4:
            raise InternalError("libfotp returned an unexpected number of verification fields")
        # One slice copies all the strings (far cheaper than indexing one by one).
        # Required fields are never NULL (the library guarantees it).
        fields: list[Any] = f[:]
        url, token, message_id, code = fields
        return make_verification(url.decode(), token.decode(), message_id.decode(), code.decode())
    finally:
        _verification_free(p)


# Status(n) goes through EnumMeta.__call__; a dict lookup is several times cheaper.
_STATUS_OF: dict[int, Status] = {s.value: s for s in Status}
_UNKNOWN = Status.UNKNOWN


def _take_query_result(p: int) -> QueryResult:
    f = _Fields6()
    try:
        status = _query_result_status(p)
        if _query_result_fields(p, f, 6) != 6:
            raise InternalError("libfotp returned an unexpected number of query result fields")
        fields: list[Any] = f[:]  # raw_status is never NULL
        raw, mobile, sender, send_time, code, deliver_time = fields
        return make_query_result(
            _STATUS_OF.get(status, _UNKNOWN),
            raw.decode(),
            None if mobile is None else mobile.decode(),
            None if sender is None else sender.decode(),
            None if send_time is None else send_time.decode(),
            None if code is None else code.decode(),
            None if deliver_time is None else deliver_time.decode(),
        )
    finally:
        _query_result_free(p)


def _parse_callback_ptr(data: bytes) -> int:
    out = c_void_p()
    err = _callback_parse(data, len(data), byref(out))
    if err:
        raise_error(err)
    return out.value  # type: ignore[return-value]


# fotp_callback_parse_into() writes the fields into a buffer of ours: one C call per parse. The
# buffers are pooled (list pop/append are atomic under the GIL; another thread may run between
# the call and the read, so a buffer is never shared). Bodies over 64 KiB are refused by the
# parse before their fields would need more room.
_PARSE_CAP = 64 * 1024 + 7  # the largest accepted body + 7 (the C function's bound)
_ParseBuf = ctypes.c_char * _PARSE_CAP
_Size1 = ctypes.c_size_t * 1
_Mask1 = ctypes.c_uint32 * 1


class _ParseScratch:
    """A buffer and the two outputs of one parse, with their addresses: ctypes converts an int
    argument far faster than an array object."""

    __slots__ = ("buf", "buf_at", "present", "present_at", "used", "used_at")

    def __init__(self) -> None:
        self.buf: Any = _ParseBuf()  # a c_char array: slicing it gives bytes
        self.used = _Size1()
        self.present = _Mask1()
        self.buf_at = ctypes.addressof(self.buf)
        self.used_at = ctypes.addressof(self.used)
        self.present_at = ctypes.addressof(self.present)


_parse_scratch: list[_ParseScratch] = []
# The pool only grows while threads are preempted mid-parse; past this many, extras are dropped.
_SCRATCH_KEPT = 16


def parse_callback(body: bytes | bytearray | memoryview | str) -> Callback:
    """Parses a push-mode callback body (bytes, or str which is encoded as UTF-8).

    Raises :class:`DecodeError` naming the problem: not a JSON object, a required field
    (``mobile``, ``sender``, ``sendTime``, ``code``) missing or empty, a field of the wrong type,
    invalid UTF-8, or more than 64 KiB.
    """
    if type(body) is bytes:
        data = body
    elif isinstance(body, str):
        try:
            data = body.encode("utf-8")
        except UnicodeEncodeError:
            raise DecodeError("callback body is not valid Unicode (lone surrogate)") from None
    elif isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
    else:
        raise TypeError(f"body must be bytes or str, not {type(body).__name__}")
    try:
        s = _parse_scratch.pop()
    except IndexError:
        s = _ParseScratch()
    try:
        err = _callback_parse_into(data, len(data), s.buf_at, _PARSE_CAP, s.used_at, s.present_at)
        if err:
            raise_error(err)
        # Seven NUL-terminated fields (no NUL inside one): one decode and one split.
        fields: list[str] = s.buf[: s.used[0]].decode().split("\0")
        bits = s.present[0]
    finally:
        if len(_parse_scratch) < _SCRATCH_KEPT:
            _parse_scratch.append(s)
    mobile, sender, send_time, code, content, deliver_time, cb_err, _ = fields
    return make_callback(
        mobile,
        sender,
        send_time,
        code,
        content if bits & 0x10 else None,
        deliver_time if bits & 0x20 else None,
        cb_err if bits & 0x40 else None,
    )


def _callback_json(cb: Callback) -> bytes:
    return json.dumps(
        {
            "mobile": cb.mobile,
            "sender": cb.sender,
            "sendTime": cb.send_time,
            "code": cb.code,
            "content": cb.content,
            "deliverTime": cb.deliver_time,
            "err": cb.err,
        }
    ).encode("utf-8")


def _new_client(configure: Callable[[int], None] | None) -> int:
    """Builds a config (from the environment when ``configure`` is None), then a client."""
    if configure is None:
        out = c_void_p()
        _check(_config_from_env(byref(out)))
        cfg = out.value
    else:
        cfg = _config_new()
    if not cfg:
        raise InternalError("libfotp could not create a configuration")
    try:
        if configure is not None:
            configure(cfg)
        _check(_config_set_user_agent_suffix(cfg, _UA_SUFFIX))
        client = c_void_p()
        _check(_client_new(cfg, byref(client)))
    finally:
        _config_free(cfg)
    if not client.value:
        raise InternalError("libfotp returned no client")
    return client.value


# No GIL (a free-threaded build, e.g. 3.13t): nothing orders one thread's list append and
# flag read against another's flag write and list read, so _Owned counts calls under its lock.
_FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


class _Owned:
    """Owns one library object and frees it exactly once.

    ``close()`` is idempotent and safe while other threads are inside a call: the object is
    freed when the last call in flight returns, and new calls raise at once.

    Calls in flight are the entries of ``_users``, a list: ``append`` and ``pop`` are atomic
    under the GIL, so the hot path (every call) takes no lock that 16 threads would queue on.
    Why it is safe: a caller appends *before* it checks ``_closing``, and ``close()`` sets
    ``_closing`` *before* it looks at ``_users``; so either ``close()`` sees the caller's entry
    (and the last one out frees), or the caller sees ``_closing`` (and never reads the
    pointer). The pointer is read only while the caller's entry is in the list, and it is freed
    only when ``_closing`` is set and the list was seen empty, once (``_free_once``, locked).

    That argument needs the GIL (every step seen in one order by all threads). A free-threaded
    build (3.13t) has none: there each call takes ``_lock`` (``_acquire_locked``), as before.
    """

    _what = "object"

    def __init__(self, ptr: int, free: Callable[[int], None]) -> None:
        self._ptr: int | None = ptr
        self._free_fn = free
        self._lock = threading.Lock()
        self._users: list[None] = []
        self._closing = False

    def _acquire_gil(self) -> int:
        _log.maybe_sync()
        self._users.append(None)
        ptr = self._ptr
        if self._closing or ptr is None:
            self._release_gil()
            raise InvalidArgument(f"this {self._what} is closed")
        return ptr

    def _release_gil(self) -> None:
        users = self._users
        users.pop()
        if self._closing and not users:
            self._free_once()

    def _acquire_locked(self) -> int:
        _log.maybe_sync()
        with self._lock:
            ptr = self._ptr
            if self._closing or ptr is None:
                raise InvalidArgument(f"this {self._what} is closed")
            self._users.append(None)
            return ptr

    def _release_locked(self) -> None:
        with self._lock:
            self._users.pop()
            if not self._closing or self._users:
                return
            ptr, self._ptr = self._ptr, None
        if ptr is not None:
            self._free_fn(ptr)

    _acquire = _acquire_locked if _FREE_THREADED else _acquire_gil
    _release = _release_locked if _FREE_THREADED else _release_gil

    def _free_once(self) -> None:
        with self._lock:
            ptr, self._ptr = self._ptr, None
        if ptr is not None:
            self._free_fn(ptr)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closing

    def close(self) -> None:
        """Frees the library object; calling it again does nothing."""
        lock = getattr(self, "_lock", None)
        if lock is None:  # __init__ did not finish
            return
        with lock:  # (for _acquire_locked; the GIL's path needs no lock here)
            self._closing = True
            idle = not self._users
        if idle:  # else the last call in flight frees it
            self._free_once()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing useful left to do
            pass


class Client(_Owned):
    """A client of the Flash OTP platform; safe to share between threads.

    Time limits, in seconds: ``timeout`` bounds each attempt (connecting included; a query
    attempt that runs out of time is retried), ``connect_timeout`` each connection, and
    ``call_timeout`` (optional) a whole call, every attempt and pause included; without it a
    call never runs longer than ``(retries + 1) * timeout`` plus the pauses. A per-call
    ``timeout=`` on :meth:`verify`, :meth:`query` and :meth:`confirm` replaces ``call_timeout``
    for that call. Every limit is at most 4,294,967 s (about 49 days); a larger one, zero, a
    negative, NaN or infinity is a :class:`ConfigError` (:class:`InvalidArgument` per call).

    Give ``app_id`` and ``app_secret`` (the ``hmac-sha256`` scheme) or ``app_key`` and
    ``token`` (the ``token`` scheme). ``http://`` is refused unless the host is loopback or
    ``allow_insecure_http`` is true.

    TLS and proxy, for this client only (the ``FOTP_CA_BUNDLE``, ``HTTPS_PROXY``,
    ``HTTP_PROXY`` and ``NO_PROXY`` variables stay the defaults): ``ca_bundle`` is a PEM file of
    extra trusted roots, added to the built-in ones (read now: a missing or bad file is a
    :class:`ConfigError` naming the problem); ``proxy`` is a proxy URL for every request, or
    ``False`` for direct connections whatever the environment says, or ``None`` (default) for
    the environment's proxy settings. Nothing is sent until the first call.
    """

    _what = "fotp.Client"

    def __init__(
        self,
        base_url: str,
        *,
        app_id: str | None = None,
        app_secret: str | None = None,
        app_key: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        call_timeout: float | None = None,
        retries: int = 2,
        allow_insecure_http: bool = False,
        ca_bundle: str | os.PathLike[str] | None = None,
        proxy: str | Literal[False] | None = None,
    ) -> None:
        url = _text("base_url", base_url, ConfigError)
        hmac = app_id is not None or app_secret is not None
        tok = app_key is not None or token is not None
        if hmac and tok:
            raise ConfigError("give app_id/app_secret or app_key/token, not both")
        if hmac:
            if app_id is None or app_secret is None:
                missing = "app_id" if app_id is None else "app_secret"
                raise ConfigError(f"{missing} is required with the hmac-sha256 scheme")
            user, secret = (
                _text("app_id", app_id, ConfigError),
                _text("app_secret", app_secret, ConfigError),
            )
            set_auth = _config_set_hmac_auth
        elif tok:
            if app_key is None or token is None:
                missing = "app_key" if app_key is None else "token"
                raise ConfigError(f"{missing} is required with the token scheme")
            user, secret = (
                _text("app_key", app_key, ConfigError),
                _text("token", token, ConfigError),
            )
            set_auth = _config_set_token_auth
        else:
            raise ConfigError(
                "no credentials: give app_id and app_secret (or app_key and token), "
                "or use Client.from_env()"
            )
        timeout_ms = _millis("timeout", timeout, ConfigError)
        connect_ms = _millis("connect_timeout", connect_timeout, ConfigError)
        call_ms = _optional_millis("call_timeout", call_timeout, ConfigError)
        n_retries = _count("retries", retries, ConfigError)
        if not isinstance(allow_insecure_http, bool):
            raise TypeError("allow_insecure_http must be a bool")
        if ca_bundle is None:
            pem = None
        elif isinstance(ca_bundle, (str, os.PathLike)):
            pem = _text("ca_bundle", os.fspath(ca_bundle), ConfigError)
        else:
            raise TypeError(f"ca_bundle must be a path, not {type(ca_bundle).__name__}")
        if proxy is None or proxy is False:
            proxy_url = None
        elif isinstance(proxy, str):
            proxy_url = _text("proxy", proxy, ConfigError)
        else:
            raise TypeError(f"proxy must be a URL, False or None, not {type(proxy).__name__}")

        def configure(cfg: int) -> None:
            _check(_config_set_base_url(cfg, url))
            _check(set_auth(cfg, user, secret))
            _config_set_timeout_ms(cfg, timeout_ms)
            _config_set_connect_timeout_ms(cfg, connect_ms)
            if call_ms is not None:
                _config_set_call_timeout_ms(cfg, call_ms)
            _config_set_retries(cfg, n_retries)
            _config_set_allow_insecure_http(cfg, allow_insecure_http)
            if pem is not None:
                _check(_config_set_ca_bundle(cfg, pem))
            if proxy is False:
                _check(_config_set_proxy(cfg, None))  # NULL: no proxy at all
            elif proxy_url is not None:
                _check(_config_set_proxy(cfg, proxy_url))

        super().__init__(_new_client(configure), _client_free)
        self._base_url: str | None = base_url

    @classmethod
    def from_env(cls: type[_C]) -> _C:
        """A client configured by the ``FOTP_*`` environment variables (see the README)."""
        self = cls.__new__(cls)
        _Owned.__init__(self, _new_client(None), _client_free)
        self._base_url = None
        return self

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        where = f" {self._base_url!r}" if getattr(self, "_base_url", None) else ""
        return f"<fotp.{type(self).__name__}{where} {state}>"

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _borrow(self, timeout_ms: int | None = None) -> Iterator[int]:
        """The library client for one call, which cannot be freed meanwhile.

        With ``timeout_ms``, a temporary client sharing this one's pool, with that time limit.
        """
        ptr = self._acquire()
        try:
            if timeout_ms is None:
                yield ptr
                return
            tmp = c_void_p()
            _check(_client_with_timeout(ptr, timeout_ms, byref(tmp)))
            try:
                yield tmp.value  # type: ignore[misc]
            finally:
                _client_free(tmp.value)
        finally:
            self._release()

    def _call(self, fn: Any, args: tuple[Any, ...], timeout: float | None) -> int:
        """Runs ``fn(client, *args, &out)`` and returns ``out``; raises on error."""
        ms = None if timeout is None else _millis("timeout", timeout, InvalidArgument)
        out = c_void_p()
        ptr = self._acquire()
        try:
            if ms is None:
                err = fn(ptr, *args, byref(out))
            else:
                # A client sharing this one's pool, with the caller's time limit.
                tmp = c_void_p()
                err = _client_with_timeout(ptr, ms, byref(tmp))
                if not err:
                    try:
                        err = fn(tmp.value, *args, byref(out))
                    finally:
                        _client_free(tmp.value)
        finally:
            self._release()
        if err:
            raise_error(err)
        return out.value  # type: ignore[return-value]

    def verify(
        self,
        ft_id: str,
        code: str | None = None,
        validity_minutes: int | None = None,
        *,
        timeout: float | None = None,
    ) -> Verification:
        """Asks the platform for a redirect link and a code.

        ``code`` (4-6 digits) and ``validity_minutes`` (1-10) are left to the platform when
        None. ``timeout`` (seconds) bounds this whole call, every attempt and pause included
        (in place of the client's ``call_timeout``). Input is checked before anything is sent
        (:class:`InvalidArgument`). verify is retried only when the request surely never
        reached the server.
        """
        fid, c, minutes = _verify_args(ft_id, code, validity_minutes)
        if timeout is not None:
            return _take_verification(self._call(_verify, (fid, c, minutes), timeout))
        # The common case spelled out: no argument tuple, no temporary client.
        out = c_void_p()
        ptr = self._acquire()
        try:
            err = _verify(ptr, fid, c, minutes, out)  # ctypes passes `out` by reference
        finally:
            self._release()
        if err:
            raise_error(err)
        return _take_verification(out.value)  # type: ignore[arg-type]

    def query(self, ft_token: str, *, timeout: float | None = None) -> QueryResult:
        """Pulls the result of a verification once (retried on transient failures).

        ``timeout`` (seconds) bounds this whole call, retries included.
        """
        tok = _text("ft_token", ft_token)
        if timeout is not None:
            return _take_query_result(self._call(_query, (tok,), timeout))
        out = c_void_p()
        ptr = self._acquire()
        try:
            err = _query(ptr, tok, out)  # ctypes passes `out` by reference
        finally:
            self._release()
        if err:
            raise_error(err)
        return _take_query_result(out.value)  # type: ignore[arg-type]

    def wait(self, ft_token: str, timeout: float = 60.0) -> QueryResult:
        """Polls query until the status is final; :class:`Timeout` after ``timeout`` seconds.

        The time limit bounds the whole wait, a query in flight included. Transient failures
        (network errors, time-outs, HTTP 429 and 5xx) do not end the wait. Called from the main
        thread, the wait reacts to signals at once: Ctrl-C raises ``KeyboardInterrupt`` within
        0.1 s and stops the call in the library.
        """
        tok = _text("ft_token", ft_token)
        ms = _millis("timeout", timeout, InvalidArgument)

        def invoke(cp: int) -> tuple[int, int]:
            out = c_void_p()
            err = _wait(cp, tok, ms, byref(out))
            return err or 0, out.value or 0

        return _take_query_result(self._blocking(invoke, _query_result_free))

    def _blocking(
        self,
        invoke: _calls.Invoke,
        free_out: Callable[[int], None],
        release_also: Callable[[], None] | None = None,
    ) -> int:
        """Runs a long call (a wait): in the main thread, on a daemon thread that a signal can
        cancel (Python runs signal handlers only in the main thread, and only between calls into
        C); elsewhere directly. ``release_also`` runs when the call has ended."""
        try:
            ptr = self._acquire()
        except BaseException:
            if release_also is not None:
                release_also()
            raise

        def release() -> None:
            self._release()
            if release_also is not None:
                release_also()

        if threading.current_thread() is threading.main_thread():
            err, out = _calls.run_interruptible(ptr, None, invoke, free_out, release)
        else:
            try:
                err, out = invoke(ptr)
            finally:
                release()
        return _calls.checked(err, out, free_out)

    def confirm(self, cb: Callback, ft_token: str, *, timeout: float | None = None) -> bool:
        """Cross-checks a callback with the platform.

        Queries ``ft_token`` and compares the status (success), the code and the mobile number
        with ``cb``. Returns False when they differ; raises only when the query fails.
        """
        if not isinstance(cb, Callback):
            raise TypeError(f"cb must be a fotp.Callback, not {type(cb).__name__}")
        tok = _text("ft_token", ft_token)
        ms = None if timeout is None else _millis("timeout", timeout, InvalidArgument)
        try:
            cbp = _parse_callback_ptr(_callback_json(cb))
        except FotpError as e:
            raise InvalidArgument(f"cb is not a valid callback: {e.message}") from None
        try:
            ok = c_bool(False)
            ptr = self._acquire()
            try:
                if ms is None:
                    err = _confirm_callback(ptr, cbp, tok, byref(ok))
                else:
                    tmp = c_void_p()
                    err = _client_with_timeout(ptr, ms, byref(tmp))
                    if not err:
                        try:
                            err = _confirm_callback(tmp.value, cbp, tok, byref(ok))
                        finally:
                            _client_free(tmp.value)
            finally:
                self._release()
        finally:
            _callback_free(cbp)
        if err:
            raise_error(err)
        return bool(ok.value)
