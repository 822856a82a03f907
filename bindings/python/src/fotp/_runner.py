"""Daemon threads for blocking library calls, reused while they are idle.

Neither a fixed pool (waits would fill it and delay every other call) nor
``ThreadPoolExecutor`` (its threads are joined at exit, so a call still running would delay the
process's exit): a call takes an idle thread or starts a new daemon thread, and a thread idle for
:data:`IDLE_SECONDS` exits.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable

__all__ = ["IDLE_SECONDS", "busy", "submit"]

IDLE_SECONDS = 30.0

_Job = Callable[[], None]


class _Threads:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._idle = 0  # threads waiting for a job that nobody has handed them yet
        self._busy = 0

    def submit(self, job: _Job) -> None:
        with self._lock:
            self._busy += 1
            if self._idle:
                # Handing over under the lock: an idle thread timing out sees the job (see _work).
                self._idle -= 1
                self._jobs.put(job)
                return
        try:
            threading.Thread(target=self._work, args=(job,), name="fotp-call", daemon=True).start()
        except BaseException:
            with self._lock:
                self._busy -= 1
            raise

    def busy(self) -> int:
        with self._lock:
            return self._busy

    def _work(self, job: _Job) -> None:
        while True:
            try:
                job()
            except BaseException:  # jobs report their own outcome; a thread must not die on one
                pass
            with self._lock:
                self._busy -= 1
                self._idle += 1
            try:
                job = self._jobs.get(timeout=IDLE_SECONDS)
                continue
            except queue.Empty:
                pass
            with self._lock:
                try:
                    job = self._jobs.get_nowait()  # handed over just as the wait timed out
                except queue.Empty:
                    self._idle -= 1
                    return

    def _reset_after_fork(self) -> None:
        # The parent's threads do not exist in a forked child, and its lock may be held.
        self.__init__()  # type: ignore[misc]


_threads = _Threads()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_threads._reset_after_fork)


def submit(job: _Job) -> None:
    """Runs ``job()`` on a daemon thread (an idle one, else a new one)."""
    _threads.submit(job)


def busy() -> int:
    """The number of calls running or handed to a thread."""
    return _threads.busy()
