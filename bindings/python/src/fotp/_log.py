"""libfotp's events as :mod:`logging` records.

The library's events go to ``logging.getLogger("fotp")``'s children by area: ``fotp.http`` (one
record per HTTP attempt: ``op``, ``method``, ``path``, ``attempt``, ``status`` or
``error_kind``, ``elapsed_ms``, ``retry_in_ms`` before a retry), ``fotp.tracker`` and
``fotp.callback``. Each record's ``fotp`` attribute holds the event's fields (numbers as
``int``). No record carries a secret, signature, OTP code or full mobile number.

No cost when disabled: the C library checks the level before formatting anything, and this
module keeps that level equal to the most verbose level enabled on the ``fotp`` loggers. It is
set at import and re-read at most once a second while calls are made (so ``setLevel`` takes
effect within a second); :func:`sync_log_level` applies a change at once.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import threading
import time
from ctypes import POINTER, c_char_p, c_int, c_size_t, c_void_p

from . import _ffi

__all__ = ["sync_log_level"]

LOGGER = logging.getLogger("fotp")
_AREAS = {
    b"fotp::http": logging.getLogger("fotp.http"),
    b"fotp::tracker": logging.getLogger("fotp.tracker"),
    b"fotp::callback": logging.getLogger("fotp.callback"),
}
# FOTP_LOG_* -> logging level (TRACE has no name in logging: 5).
_LEVELS = {1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG, 5: 5}
_NUMERIC = frozenset(
    {
        "client",
        "attempt",
        "status",
        "elapsed_ms",
        "retry_in_ms",
        "poll_in_ms",
        "code_length",
        "ttl_ms",
        "bytes",
    }
)
_RESYNC_EVERY = 1.0

_FieldsFn = ctypes.CFUNCTYPE(
    None, c_void_p, c_int, c_char_p, c_char_p, c_size_t, POINTER(c_char_p), POINTER(c_char_p)
)


def _on_event(
    _user: int | None,
    level: int,
    target: bytes | None,
    message: bytes | None,
    n: int,
    keys: ctypes._Pointer[c_char_p],
    values: ctypes._Pointer[c_char_p],
) -> None:
    # Runs on the calling thread (ctypes takes the GIL); an exception here would only be printed
    # by ctypes, so logging's own error handling is all there is.
    try:
        logger = _AREAS.get(target or b"", LOGGER)
        py_level = _LEVELS.get(level, logging.INFO)
        if not logger.isEnabledFor(py_level):
            return
        fields: dict[str, object] = {}
        for i in range(n):
            k = (keys[i] or b"").decode("utf-8", "replace")
            v = (values[i] or b"").decode("utf-8", "replace")
            fields[k] = int(v) if k in _NUMERIC and v.isdigit() else v
        text = (message or b"").decode("utf-8", "replace")
        logger.log(py_level, "%s", text, extra={"fotp": fields})
    except Exception:  # pragma: no cover - never raise into C
        pass


# Kept for the life of the process: the library may call it from any thread at any time.
_CALLBACK = _FieldsFn(_on_event)
_lock = threading.Lock()
_current = -1
_next_check = 0.0


def _c_level() -> int:
    """The FOTP_LOG_* level matching the most verbose level enabled under ``fotp``."""
    for c_level, py_level in ((5, 5), (4, logging.DEBUG), (3, logging.INFO), (2, logging.WARNING)):
        if any(lg.isEnabledFor(py_level) for lg in (LOGGER, *_AREAS.values())):
            return c_level
    if any(lg.isEnabledFor(logging.ERROR) for lg in (LOGGER, *_AREAS.values())):
        return 1
    return 0


def sync_log_level() -> None:
    """Applies the ``fotp`` loggers' levels to the library now (otherwise within a second)."""
    global _current, _next_check
    level = _c_level()
    with _lock:
        _next_check = time.monotonic() + _RESYNC_EVERY
        if level == _current:
            return
        if _current < 0:
            err = _ffi.lib.fotp_set_logger_fields(level, ctypes.cast(_CALLBACK, c_void_p), None)
        else:
            err = _ffi.lib.fotp_set_log_level(level)
        if err:
            _ffi.lib.fotp_error_free(err)
            return
        _current = level


def maybe_sync() -> None:
    """Called on every call into the library: re-reads the levels at most once a second."""
    if time.monotonic() >= _next_check:
        sync_log_level()


@atexit.register
def _remove() -> None:
    # No callback into an interpreter that is shutting down.
    err = _ffi.lib.fotp_set_logger(0, None, None)
    if err:
        _ffi.lib.fotp_error_free(err)


sync_log_level()
