"""Library calls that a signal (Ctrl-C) or an asyncio cancellation can stop.

The call runs on a daemon thread (:mod:`fotp._runner`) through a client made by
``fotp_client_with_cancel``; the caller waits for it in a way that can be interrupted, and on
interruption triggers the cancel token (the library stops the call within ~100 ms) and leaves.
Whoever ends up owning the outcome frees it: the caller through :meth:`Call.take`, or the
thread itself when the caller has left (:meth:`Call.abandon`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from ctypes import byref, c_void_p

from . import _ffi, _runner
from ._errors import InternalError, raise_error

__all__ = ["Call", "Invoke", "checked", "run_interruptible", "start"]

_lib = _ffi.lib
_cancel_new = _lib.fotp_cancel_new
_cancel_trigger = _lib.fotp_cancel_trigger
_cancel_free = _lib.fotp_cancel_free
_client_with_cancel = _lib.fotp_client_with_cancel
_client_with_timeout = _lib.fotp_client_with_timeout
_client_free = _lib.fotp_client_free
_error_free = _lib.fotp_error_free

Invoke = Callable[[int], tuple[int, int]]
"""Makes the call with the client pointer it is given; returns ``(error, out)`` pointers."""

# How often a waiting main thread wakes up. Signals interrupt the wait anyway (CPython retries a
# lock wait after running the handlers); the slice is a bound in case one slips through.
_SLICE = 0.1


class Call:
    """One library call on a daemon thread, watching its own cancel token."""

    __slots__ = (
        "_abandoned",
        "_cancel",
        "_error",
        "_free_out",
        "_lock",
        "_outcome",
        "_taken",
        "done",
    )

    def __init__(self, cancel: int, free_out: Callable[[int], None]) -> None:
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._cancel: int | None = cancel
        self._free_out = free_out
        self._outcome: tuple[int, int] = (0, 0)
        self._abandoned = False
        self._taken = False
        self._error: BaseException | None = None

    def cancel(self) -> None:
        """Asks the library to stop the call (idempotent; a finished call is left alone)."""
        with self._lock:
            if self._cancel is not None and not self.done.is_set():
                _cancel_trigger(self._cancel)

    def take(self) -> tuple[int, int]:
        """The finished call's ``(error, out)``; the caller now owns (and frees) them."""
        with self._lock:
            if not self.done.is_set() or self._taken or self._abandoned:
                raise InternalError("fotp: a call's outcome was taken twice or too early")
            self._taken = True
            self._drop_cancel()
            if self._error is not None:
                raise self._error
            return self._outcome

    def abandon(self) -> None:
        """The caller leaves: the outcome is freed now, or by the thread when it ends."""
        with self._lock:
            if self._taken or self._abandoned:
                return
            self._abandoned = True
            if self.done.is_set():
                self._drop_outcome()

    def _finish(self, err: int, out: int) -> None:
        with self._lock:
            self._outcome = (err, out)
            self.done.set()
            if self._abandoned:
                self._drop_outcome()

    def _drop_outcome(self) -> None:
        err, out = self._outcome
        self._outcome = (0, 0)
        if err:
            _error_free(err)
        if out:
            self._free_out(out)
        self._drop_cancel()

    def _drop_cancel(self) -> None:
        cancel, self._cancel = self._cancel, None
        if cancel is not None:
            _cancel_free(cancel)


def start(
    client: int,
    timeout_ms: int | None,
    invoke: Invoke,
    free_out: Callable[[int], None],
    release: Callable[[], None],
    on_done: Callable[[Call], None] | None = None,
    submit: Callable[[Callable[[], None]], object] = _runner.submit,
) -> Call:
    """Starts ``invoke`` on a daemon thread with a cancellable client derived from ``client``
    (whole-call bound ``timeout_ms`` when given). ``release`` runs when the call has ended
    (it gives back what the caller acquired for it), also when starting fails."""
    temps: list[int] = []
    cancel = 0
    try:
        cancel = _cancel_new() or 0
        if not cancel:
            raise InternalError("libfotp could not create a cancel token")
        base = client
        if timeout_ms is not None:
            tmp = c_void_p()
            err = _client_with_timeout(base, timeout_ms, byref(tmp))
            if err:
                raise_error(err)
            base = tmp.value or 0
            temps.append(base)
        tmp = c_void_p()
        err = _client_with_cancel(base, cancel, byref(tmp))
        if err:
            raise_error(err)
        cp = tmp.value or 0
        temps.append(cp)
    except BaseException:
        for t in temps:
            _client_free(t)
        if cancel:
            _cancel_free(cancel)
        release()
        raise
    call = Call(cancel, free_out)

    def job() -> None:
        err = out = 0
        try:
            err, out = invoke(cp)
        except BaseException as e:  # not expected from ctypes; handed to the caller
            call._error = e
        finally:
            for t in reversed(temps):
                _client_free(t)
            release()
            call._finish(err, out)
        if on_done is not None:
            on_done(call)

    try:
        submit(job)
    except BaseException:
        for t in reversed(temps):
            _client_free(t)
        release()
        call._finish(0, 0)
        call.abandon()
        raise
    return call


def checked(err: int, out: int, free_out: Callable[[int], None]) -> int:
    """``out`` of a finished call, or its error raised (what was returned is freed)."""
    if err:
        if out:
            free_out(out)
        raise_error(err)
    if not out:
        raise InternalError("libfotp returned neither a result nor an error")
    return out


def run_interruptible(
    client: int,
    timeout_ms: int | None,
    invoke: Invoke,
    free_out: Callable[[int], None],
    release: Callable[[], None],
) -> tuple[int, int]:
    """Runs the call so that the calling (main) thread keeps handling signals: an exception
    raised by a signal handler (``KeyboardInterrupt``) cancels the call and propagates."""
    call = start(client, timeout_ms, invoke, free_out, release)
    try:
        while not call.done.wait(_SLICE):
            pass
    except BaseException:
        call.cancel()
        call.abandon()
        raise
    return call.take()

