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
from ._types import Callback, QueryResult, Verification

__all__ = ["AsyncClient"]

_T = TypeVar("_T")
_A = TypeVar("_A", bound="AsyncClient")

DEFAULT_MAX_WORKERS = 32


class AsyncClient:
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

    async def aclose(self) -> None:
        """Same as :meth:`close`, awaitable."""
        self.close()

    async def __aenter__(self: _A) -> _A:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
