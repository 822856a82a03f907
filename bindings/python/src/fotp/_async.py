"""AsyncClient: the blocking client's calls run in a thread pool.

ctypes releases the GIL for the duration of every call into the library, so the pool's
threads wait on the network in parallel while the event loop keeps running.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from concurrent.futures import Executor, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Callable, TypeVar

from ._client import Client
from ._errors import InvalidArgument
from ._tracker import Tracker
from ._types import Callback, Match, QueryResult, Verification

__all__ = ["AsyncClient", "AsyncTracker"]

_T = TypeVar("_T")
_A = TypeVar("_A", bound="AsyncClient")
_AT = TypeVar("_AT", bound="AsyncTracker")
_S = TypeVar("_S", bound="_AsyncClosing")

DEFAULT_MAX_WORKERS = 32


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

    Takes the same arguments as :class:`Client`, plus ``executor`` (run the calls there instead
    of in a pool of ``max_workers`` threads owned by this client). Use ``async with`` or
    ``await aclose()``. Cancelling an awaiting task does not stop the call already running in
    its thread: it ends within the call's time limit (pass ``timeout=`` to bound it).
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
        retries: int = 2,
        allow_insecure_http: bool = False,
        executor: Executor | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
    ) -> None:
        client = Client(
            base_url,
            app_id=app_id,
            app_secret=app_secret,
            app_key=app_key,
            token=token,
            timeout=timeout,
            connect_timeout=connect_timeout,
            retries=retries,
            allow_insecure_http=allow_insecure_http,
        )
        self._setup(client, executor, max_workers)

    def _setup(self, client: Client, executor: Executor | None, max_workers: int) -> None:
        self._client = client
        self._own_executor = executor is None
        self._executor: Executor = executor or ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="fotp"
        )
        self._closed = False

    @classmethod
    def from_env(
        cls: type[_A],
        *,
        executor: Executor | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
    ) -> _A:
        """A client configured by the ``FOTP_*`` environment variables."""
        self = cls.__new__(cls)
        self._setup(Client.from_env(), executor, max_workers)
        return self

    @property
    def client(self) -> Client:
        """The blocking client underneath (shares everything with this one)."""
        return self._client

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"<fotp.AsyncClient {'closed' if self._closed else 'open'}>"

    async def _run(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        if self._closed:
            raise InvalidArgument("this fotp.AsyncClient is closed")
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, fn, *args, **kwargs)
        try:
            future = loop.run_in_executor(self._executor, call)
        except RuntimeError:  # closed by another task just now: the executor refuses work
            if self._closed:
                raise InvalidArgument("this fotp.AsyncClient is closed") from None
            raise
        return await future

    async def verify(
        self,
        ft_id: str,
        code: str | None = None,
        validity_minutes: int | None = None,
        *,
        timeout: float | None = None,
    ) -> Verification:
        """See :meth:`Client.verify`."""
        return await self._run(self._client.verify, ft_id, code, validity_minutes, timeout=timeout)

    async def query(self, ft_token: str, *, timeout: float | None = None) -> QueryResult:
        """See :meth:`Client.query`."""
        return await self._run(self._client.query, ft_token, timeout=timeout)

    async def wait(self, ft_token: str, timeout: float = 60.0) -> QueryResult:
        """See :meth:`Client.wait`."""
        return await self._run(self._client.wait, ft_token, timeout)

    async def confirm(self, cb: Callback, ft_token: str, *, timeout: float | None = None) -> bool:
        """See :meth:`Client.confirm`."""
        return await self._run(self._client.confirm, cb, ft_token, timeout=timeout)

    def close(self) -> None:
        """Closes the client; idempotent. Calls still running finish first, safely."""
        if self._closed:
            return
        self._closed = True
        self._client.close()
        if self._own_executor:
            # Queued calls still run (and fail as closed); idle threads exit.
            self._executor.shutdown(wait=False)



def _async_client_arg(client: object) -> AsyncClient:
    if isinstance(client, AsyncClient):
        return client
    hint = "; with a fotp.Client use fotp.Tracker" if isinstance(client, Client) else ""
    raise TypeError(f"client must be a fotp.AsyncClient, not {type(client).__name__}{hint}")


class AsyncTracker(_AsyncClosing):
    """The methods of :class:`Tracker` as coroutines, for asyncio applications.

    Wraps a blocking :class:`Tracker` (``AsyncTracker(tracker)``, which it then owns), or make
    one with :meth:`memory` or ``await AsyncTracker.redis(url)``. :meth:`verify` and
    :meth:`wait` take an :class:`AsyncClient` and run in its thread pool; :meth:`match` runs in
    ``executor``, by default the event loop's. :attr:`tracker` is the blocking tracker
    underneath, e.g. for a :func:`wsgi_callback` in the same process. Use ``async with`` or
    ``await aclose()``.
    """

    def __init__(self, tracker: Tracker, *, executor: Executor | None = None) -> None:
        if not isinstance(tracker, Tracker):
            raise TypeError(f"tracker must be a fotp.Tracker, not {type(tracker).__name__}")
        self._tracker = tracker
        self._executor = executor

    @classmethod
    def memory(cls: type[_AT], *, executor: Executor | None = None) -> _AT:
        """See :meth:`Tracker.memory`."""
        return cls(Tracker.memory(), executor=executor)

    @classmethod
    async def redis(
        cls: type[_AT], url: str, namespace: str = "fotp", *, executor: Executor | None = None
    ) -> _AT:
        """See :meth:`Tracker.redis`; connecting happens in ``executor``, off the event loop."""
        loop = asyncio.get_running_loop()
        tracker = await loop.run_in_executor(executor, Tracker.redis, url, namespace)
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
        return await ac._run(
            self._tracker.verify, ac.client, ft_id, code_length, validity_minutes, timeout=timeout
        )

    async def match(self, cb: Callback) -> Match | None:
        """See :meth:`Tracker.match`."""
        if self._tracker.closed:  # fail at once, without a trip through the executor
            raise InvalidArgument("this fotp.Tracker is closed")
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(
            self._executor, functools.partial(ctx.run, self._tracker.match, cb)
        )

    async def wait(self, client: AsyncClient, ft_token: str, timeout: float = 60.0) -> QueryResult:
        """See :meth:`Tracker.wait`."""
        ac = _async_client_arg(client)
        return await ac._run(self._tracker.wait, ac.client, ft_token, timeout)

    def close(self) -> None:
        """Closes the tracker; idempotent. Calls still running finish first, safely."""
        self._tracker.close()

