"""AsyncClient and AsyncTracker: the blocking calls, awaitable, for asyncio applications.

Each library call runs on a daemon thread of its own (:mod:`fotp._runner`: idle threads are
reused, there is no fixed number), so no number of waits can delay a verify or a query.
ctypes releases the GIL during every call into the library. Every call watches a cancel token:
cancelling the awaiting task stops the call in the library within ~100 ms, and never waits for
it; daemon threads never delay the process's exit. ``AsyncClient.wait`` polls with
``asyncio.sleep`` between queries, holding no thread between polls.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import os
from collections.abc import Callable
from concurrent.futures import Executor
from ctypes import byref, c_bool, c_int, c_void_p
from types import TracebackType
from typing import Any, Literal, TypeVar

from . import _calls, _runner
from ._client import (
    Client,
    _callback_free,
    _confirm_callback,
    _millis,
    _optional_millis,
    _query,
    _query_result_free,
    _take_query_result,
    _take_verification,
    _text,
    _verification_free,
    _verify,
    _verify_args,
)
from ._errors import (
    ApiError,
    FotpError,
    HttpStatusError,
    InvalidArgument,
    NetworkError,
    Timeout,
)
from ._tracker import (
    SettleOutcome,
    Tracker,
    _callback_ptr,
    _match_free,
    _settled,
    _tracker_settle_outcome,
    _tracker_verify,
    _tracker_wait,
)
from ._types import Callback, Match, QueryResult, Status, Verification

__all__ = ["AsyncClient", "AsyncTracker"]

_T = TypeVar("_T")
_A = TypeVar("_A", bound="AsyncClient")
_AT = TypeVar("_AT", bound="AsyncTracker")
_S = TypeVar("_S", bound="_AsyncClosing")

# AsyncClient.wait: the pause between polls starts here and doubles up to _POLL_MAX (the
# library's own wait does the same).
_POLL_FIRST = 0.25
_POLL_MAX = 1.0
# Below this much time left, no last query is started: it could not get an answer anyway.
_LAST_QUERY_MIN = 0.05

_Submit = Callable[[Callable[[], None]], object]


def _noop() -> None:
    pass


def _submitter(executor: Executor | None) -> _Submit:
    if executor is None:
        return _runner.submit
    return executor.submit


async def _run_call(
    client: Client,
    invoke: _calls.Invoke,
    free_out: Callable[[int], None],
    timeout_ms: int | None,
    submit: _Submit,
    release_also: Callable[[], None] = _noop,
) -> tuple[int, int]:
    """One cancellable library call with ``client`` (see :func:`fotp._calls.start`).

    The event loop awaits it; cancelling the awaiting task triggers the call's cancel token
    and returns at once. ``release_also`` runs when the call has ended.
    """
    try:
        ptr = client._acquire()
    except BaseException:
        release_also()
        raise

    def release() -> None:
        client._release()
        release_also()

    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not fut.done():
            fut.set_result(None)

    def on_done(call: _calls.Call) -> None:
        try:
            loop.call_soon_threadsafe(wake)
        except RuntimeError:  # the loop is closed: nobody will take the outcome
            call.abandon()

    call = _calls.start(ptr, timeout_ms, invoke, free_out, release, on_done, submit)
    try:
        await fut
    except BaseException:
        call.cancel()
        call.abandon()
        raise
    return call.take()


async def _run_plain(fn: Callable[[], _T], submit: _Submit) -> _T:
    """A short call without a client (store only) on a daemon thread or ``submit``."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[_T] = loop.create_future()
    ctx = contextvars.copy_context()

    def settle(value: Any, exc: BaseException | None) -> None:
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)

    def job() -> None:
        try:
            value, exc = ctx.run(fn), None
        except BaseException as e:
            value, exc = None, e
        try:
            loop.call_soon_threadsafe(settle, value, exc)
        except RuntimeError:  # the loop is closed
            pass

    submit(job)
    return await fut


def _transient(e: FotpError) -> bool:
    """CONTRACT section 1: network errors, time-outs, HTTP 429 and 5xx."""
    if isinstance(e, (NetworkError, Timeout)):
        return True
    if isinstance(e, (HttpStatusError, ApiError)):
        return e.status == 429 or 500 <= e.status <= 599
    return False


class _AsyncClosing:
    """``aclose()`` and ``async with`` for a class whose ``close()`` does the work."""

    def close(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Same as :meth:`close`, awaitable."""
        self.close()

    async def __aenter__(self: _S) -> _S:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_AsyncClosing):
    """The methods of :class:`Client` as coroutines, for asyncio applications.

    Takes the same arguments as :class:`Client`, plus ``executor``: run the library calls
    there instead of on fotp's own daemon threads (which are started as needed, reused while
    idle, and never delay the process's exit). Use ``async with`` or ``await aclose()``.

    Cancelling an awaiting task (``asyncio.wait_for``, ``task.cancel()``, a server dropping a
    request) stops the call in the library within ~100 ms; a verify whose request was not yet
    sent is never sent. :meth:`wait` sleeps in the event loop between polls.
    """

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
        executor: Executor | None = None,
    ) -> None:
        client = Client(
            base_url,
            app_id=app_id,
            app_secret=app_secret,
            app_key=app_key,
            token=token,
            timeout=timeout,
            connect_timeout=connect_timeout,
            call_timeout=call_timeout,
            retries=retries,
            allow_insecure_http=allow_insecure_http,
            ca_bundle=ca_bundle,
            proxy=proxy,
        )
        self._setup(client, executor)

    def _setup(self, client: Client, executor: Executor | None) -> None:
        self._client = client
        self._submit = _submitter(executor)

    @classmethod
    def from_env(cls: type[_A], *, executor: Executor | None = None) -> _A:
        """A client configured by the ``FOTP_*`` environment variables."""
        self = cls.__new__(cls)
        self._setup(Client.from_env(), executor)
        return self

    @classmethod
    def wrap(cls: type[_A], client: Client, *, executor: Executor | None = None) -> _A:
        """An AsyncClient sharing ``client`` (closing either closes both)."""
        if not isinstance(client, Client):
            raise TypeError(f"client must be a fotp.Client, not {type(client).__name__}")
        self = cls.__new__(cls)
        self._setup(client, executor)
        return self

    @property
    def client(self) -> Client:
        """The blocking client underneath (shares everything with this one)."""
        return self._client

    @property
    def closed(self) -> bool:
        return self._client.closed

    def __repr__(self) -> str:
        return f"<fotp.AsyncClient {'closed' if self.closed else 'open'}>"

    async def _call(
        self,
        invoke: _calls.Invoke,
        free_out: Callable[[int], None],
        timeout_ms: int | None,
        release_also: Callable[[], None] = _noop,
    ) -> int:
        err, out = await _run_call(
            self._client, invoke, free_out, timeout_ms, self._submit, release_also
        )
        return _calls.checked(err, out, free_out)

    async def verify(
        self,
        ft_id: str,
        code: str | None = None,
        validity_minutes: int | None = None,
        *,
        timeout: float | None = None,
    ) -> Verification:
        """See :meth:`Client.verify`."""
        fid, c, minutes = _verify_args(ft_id, code, validity_minutes)
        ms = _optional_millis("timeout", timeout, InvalidArgument)

        def invoke(cp: int) -> tuple[int, int]:
            out = c_void_p()
            err = _verify(cp, fid, c, minutes, byref(out))
            return err or 0, out.value or 0

        return _take_verification(await self._call(invoke, _verification_free, ms))

    async def query(self, ft_token: str, *, timeout: float | None = None) -> QueryResult:
        """See :meth:`Client.query`."""
        tok = _text("ft_token", ft_token)
        ms = _optional_millis("timeout", timeout, InvalidArgument)
        return await self._query(tok, ms)

    async def _query(self, tok: bytes, ms: int | None) -> QueryResult:
        def invoke(cp: int) -> tuple[int, int]:
            out = c_void_p()
            err = _query(cp, tok, byref(out))
            return err or 0, out.value or 0

        return _take_query_result(await self._call(invoke, _query_result_free, ms))

    async def wait(self, ft_token: str, timeout: float = 60.0) -> QueryResult:
        """Polls query until the status is final; :class:`Timeout` after ``timeout`` seconds.

        Same rules as :meth:`Client.wait` (the time limit bounds the whole wait, a query in
        flight included; transient failures do not end it; a last query is made when time
        allows), but between polls it sleeps in the event loop: a waiting task holds no thread
        then. The pause starts at 0.25 s and doubles up to 1 s.
        """
        tok = _text("ft_token", ft_token)
        ms = _millis("timeout", timeout, InvalidArgument)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ms / 1000
        pause = _POLL_FIRST
        while True:
            left = deadline - loop.time()
            if left > 0:
                try:
                    r = await self._query(tok, max(1, math.ceil(left * 1000)))
                    if r.status is not Status.PROCESSING:
                        return r
                except FotpError as e:
                    if not _transient(e):
                        raise
            left = deadline - loop.time()
            if left < _LAST_QUERY_MIN:
                if left > 0:
                    await asyncio.sleep(left)
                raise Timeout(f"no final status within {ms} ms")
            await asyncio.sleep(min(pause, left - _LAST_QUERY_MIN))
            pause = min(pause * 2, _POLL_MAX)

    async def confirm(self, cb: Callback, ft_token: str, *, timeout: float | None = None) -> bool:
        """See :meth:`Client.confirm`."""
        tok = _text("ft_token", ft_token)
        ms = _optional_millis("timeout", timeout, InvalidArgument)
        cbp = _callback_ptr(cb)
        ok = c_bool(False)

        def invoke(cp: int) -> tuple[int, int]:
            err = _confirm_callback(cp, cbp, tok, byref(ok))
            return err or 0, 1  # the answer is in `ok`; 1: "a result" (nothing to free)

        await self._call(invoke, lambda _: None, ms, lambda: _callback_free(cbp))
        return bool(ok.value)

    def close(self) -> None:
        """Closes the client; idempotent. Calls still running finish first, safely."""
        self._client.close()


def _async_client_arg(client: object) -> AsyncClient:
    if isinstance(client, AsyncClient):
        return client
    hint = "; with a fotp.Client use fotp.Tracker" if isinstance(client, Client) else ""
    raise TypeError(f"client must be a fotp.AsyncClient, not {type(client).__name__}{hint}")


class AsyncTracker(_AsyncClosing):
    """The methods of :class:`Tracker` as coroutines, for asyncio applications.

    Wraps a blocking :class:`Tracker` (``AsyncTracker(tracker)``, which it then owns), or make
    one with :meth:`memory` or ``await AsyncTracker.redis(url)``. The methods that take an
    :class:`AsyncClient` run like its calls (cancellable, on daemon threads); :meth:`match`
    and :meth:`unsettle` run in ``executor`` when given, else on fotp's daemon threads.
    :attr:`tracker` is the blocking tracker underneath. Use ``async with`` or
    ``await aclose()``.
    """

    def __init__(self, tracker: Tracker, *, executor: Executor | None = None) -> None:
        if not isinstance(tracker, Tracker):
            raise TypeError(f"tracker must be a fotp.Tracker, not {type(tracker).__name__}")
        self._tracker = tracker
        self._submit = _submitter(executor)

    @classmethod
    def memory(cls: type[_AT], *, executor: Executor | None = None) -> _AT:
        """See :meth:`Tracker.memory`."""
        return cls(Tracker.memory(), executor=executor)

    @classmethod
    async def redis(
        cls: type[_AT], url: str, namespace: str = "fotp", *, executor: Executor | None = None
    ) -> _AT:
        """See :meth:`Tracker.redis`; connecting happens off the event loop."""
        tracker = await _run_plain(lambda: Tracker.redis(url, namespace), _submitter(executor))
        return cls(tracker, executor=executor)

    @property
    def tracker(self) -> Tracker:
        """The blocking tracker underneath (shares everything with this one)."""
        return self._tracker

    @property
    def closed(self) -> bool:
        return self._tracker.closed

    def __repr__(self) -> str:
        return "<fotp.AsyncTracker wrapping " + repr(self._tracker)[1:]

    async def verify(
        self,
        client: AsyncClient,
        ft_id: str,
        code_length: int = 4,
        validity_minutes: int | None = None,
        *,
        timeout: float | None = None,
    ) -> Verification:
        """See :meth:`Tracker.verify`."""
        ac = _async_client_arg(client)
        fid, length, minutes = self._tracker._verify_args(ft_id, code_length, validity_minutes)
        ms = _optional_millis("timeout", timeout, InvalidArgument)
        t = self._tracker._acquire()

        def invoke(cp: int) -> tuple[int, int]:
            out = c_void_p()
            err = _tracker_verify(t, cp, fid, length, minutes, byref(out))
            return err or 0, out.value or 0

        out = await ac._call(invoke, _verification_free, ms, self._tracker._release)
        return _take_verification(out)

    async def match(self, cb: Callback) -> Match | None:
        """See :meth:`Tracker.match`."""
        if self._tracker.closed:  # fail at once, without a trip through a thread
            raise InvalidArgument("this fotp.Tracker is closed")
        return await _run_plain(lambda: self._tracker.match(cb), self._submit)

    async def settle(
        self, client: AsyncClient, cb: Callback, *, timeout: float | None = None
    ) -> Match | None:
        """See :meth:`Tracker.settle`."""
        _, m = await self.settle_outcome(client, cb, timeout=timeout)
        return m

    async def settle_outcome(
        self, client: AsyncClient, cb: Callback, *, timeout: float | None = None
    ) -> tuple[SettleOutcome, Match | None]:
        """See :meth:`Tracker.settle_outcome`."""
        ac = _async_client_arg(client)
        return await _settle_async(self._tracker, ac.client, cb, timeout, ac._submit)

    async def unsettle(self, match: Match) -> None:
        """See :meth:`Tracker.unsettle`."""
        await _run_plain(lambda: self._tracker.unsettle(match), self._submit)

    async def wait(self, client: AsyncClient, ft_token: str, timeout: float = 60.0) -> QueryResult:
        """See :meth:`Tracker.wait`. The wait holds a daemon thread (it listens for the
        store's wake-up); cancelling the task stops it within ~100 ms."""
        ac = _async_client_arg(client)
        tok = _text("ft_token", ft_token)
        ms = _millis("timeout", timeout, InvalidArgument)
        t = self._tracker._acquire()

        def invoke(cp: int) -> tuple[int, int]:
            out = c_void_p()
            err = _tracker_wait(t, cp, tok, ms, byref(out))
            return err or 0, out.value or 0

        out = await ac._call(invoke, _query_result_free, None, self._tracker._release)
        return _take_query_result(out)

    def close(self) -> None:
        """Closes the tracker; idempotent. Calls still running finish first, safely."""
        self._tracker.close()


async def _settle_async(
    tracker: Tracker,
    client: Client,
    cb: Callback,
    timeout: float | None,
    submit: _Submit = _runner.submit,
) -> tuple[SettleOutcome, Match | None]:
    """:meth:`Tracker.settle_outcome`, cancellable, off the event loop (the ASGI receiver's
    path too)."""
    ms = _optional_millis("timeout", timeout, InvalidArgument)
    cbp = _callback_ptr(cb)
    try:
        t = tracker._acquire()
    except BaseException:
        _callback_free(cbp)
        raise
    outcome = c_int(0)

    def invoke(cp: int) -> tuple[int, int]:
        out = c_void_p()
        err = _tracker_settle_outcome(t, cp, cbp, byref(outcome), byref(out))
        return err or 0, out.value or 0

    def release() -> None:
        tracker._release()
        _callback_free(cbp)

    err, out = await _run_call(client, invoke, _match_free, ms, submit, release)
    return _settled(err, outcome.value, out)
