"""ctypes declarations of every function of ``fotp.h``, and finding ``libfotp``.

Everything that talks to C lives here, so the declarations cannot drift apart: the test suite
compares :data:`SIGNATURES` with the header.

Strings that the library owns are never declared as a ``c_char_p`` *return* type (ctypes would
copy the bytes and lose the pointer to free): functions returning ``const char *`` use
``c_void_p`` and are read with :func:`ctypes.string_at`. The ``*_fields`` functions fill an array
of ``c_char_p``; reading an element copies the bytes, which the caller does before freeing the
object the strings belong to.

Which calls release the GIL: ``ctypes.CDLL`` drops the GIL around every call and takes it back
after, and under many threads each take-back can wait a whole switch interval for the holder.
Only calls that can block need it dropped (network, Redis, files, waits). The short calls
listed in :data:`KEEPS_GIL` go through ``ctypes.PyDLL`` function pointers, which keep it.
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import (
    POINTER,
    c_bool,
    c_char_p,
    c_int,
    c_size_t,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any

__all__ = ["KEEPS_GIL", "LIBRARY_PATH", "SIGNATURES", "lib", "library_candidates"]

if sys.platform == "darwin":
    LIBRARY_FILENAME = "libfotp.dylib"
elif sys.platform == "win32":
    LIBRARY_FILENAME = "fotp.dll"
else:
    LIBRARY_FILENAME = "libfotp.so"

_OUT = POINTER(c_void_p)  # `T **out`
_STRS = POINTER(c_char_p)  # `const char **out` of the *_fields functions

# name -> (restype, argtypes). Opaque handles are c_void_p.
SIGNATURES: dict[str, tuple[Any, tuple[Any, ...]]] = {
    # errors
    "fotp_error_kind": (c_int, (c_void_p,)),
    "fotp_error_message": (c_void_p, (c_void_p,)),
    "fotp_error_api_code": (c_void_p, (c_void_p,)),
    "fotp_error_http_status": (c_uint16, (c_void_p,)),
    "fotp_error_free": (None, (c_void_p,)),
    # configuration
    "fotp_config_new": (c_void_p, ()),
    "fotp_config_from_env": (c_void_p, (_OUT,)),
    "fotp_config_set_base_url": (c_void_p, (c_void_p, c_char_p)),
    "fotp_config_set_hmac_auth": (c_void_p, (c_void_p, c_char_p, c_char_p)),
    "fotp_config_set_token_auth": (c_void_p, (c_void_p, c_char_p, c_char_p)),
    "fotp_config_set_timeout_ms": (None, (c_void_p, c_uint32)),
    "fotp_config_set_connect_timeout_ms": (None, (c_void_p, c_uint32)),
    "fotp_config_set_call_timeout_ms": (None, (c_void_p, c_uint32)),
    "fotp_config_set_ca_bundle": (c_void_p, (c_void_p, c_char_p)),
    "fotp_config_set_proxy": (c_void_p, (c_void_p, c_char_p)),
    "fotp_config_set_retries": (None, (c_void_p, c_uint32)),
    "fotp_config_set_allow_insecure_http": (None, (c_void_p, c_bool)),
    "fotp_config_set_user_agent_suffix": (c_void_p, (c_void_p, c_char_p)),
    "fotp_config_free": (None, (c_void_p,)),
    # client
    "fotp_client_new": (c_void_p, (c_void_p, _OUT)),
    "fotp_client_with_timeout": (c_void_p, (c_void_p, c_uint32, _OUT)),
    "fotp_client_with_cancel": (c_void_p, (c_void_p, c_void_p, _OUT)),
    # cancellation tokens
    "fotp_cancel_new": (c_void_p, ()),
    "fotp_cancel_trigger": (None, (c_void_p,)),
    "fotp_cancel_free": (None, (c_void_p,)),
    "fotp_client_free": (None, (c_void_p,)),
    # verify
    "fotp_verify": (c_void_p, (c_void_p, c_char_p, c_char_p, c_uint32, _OUT)),
    "fotp_verification_url": (c_void_p, (c_void_p,)),
    "fotp_verification_ft_token": (c_void_p, (c_void_p,)),
    "fotp_verification_message_id": (c_void_p, (c_void_p,)),
    "fotp_verification_code": (c_void_p, (c_void_p,)),
    "fotp_verification_fields": (c_size_t, (c_void_p, _STRS, c_size_t)),
    "fotp_verification_free": (None, (c_void_p,)),
    # query and wait
    "fotp_query": (c_void_p, (c_void_p, c_char_p, _OUT)),
    "fotp_wait": (c_void_p, (c_void_p, c_char_p, c_uint32, _OUT)),
    "fotp_query_result_status": (c_int, (c_void_p,)),
    "fotp_query_result_raw_status": (c_void_p, (c_void_p,)),
    "fotp_query_result_mobile": (c_void_p, (c_void_p,)),
    "fotp_query_result_sender": (c_void_p, (c_void_p,)),
    "fotp_query_result_send_time": (c_void_p, (c_void_p,)),
    "fotp_query_result_code": (c_void_p, (c_void_p,)),
    "fotp_query_result_deliver_time": (c_void_p, (c_void_p,)),
    "fotp_query_result_fields": (c_size_t, (c_void_p, _STRS, c_size_t)),
    "fotp_query_result_free": (None, (c_void_p,)),
    # callbacks
    "fotp_callback_parse": (c_void_p, (c_char_p, c_size_t, _OUT)),
    # buf, used and present are passed as addresses (ints): the cheapest conversion ctypes has
    "fotp_callback_parse_into": (
        c_void_p,
        (c_char_p, c_size_t, c_void_p, c_size_t, c_void_p, c_void_p),
    ),
    "fotp_callback_mobile": (c_void_p, (c_void_p,)),
    "fotp_callback_sender": (c_void_p, (c_void_p,)),
    "fotp_callback_send_time": (c_void_p, (c_void_p,)),
    "fotp_callback_code": (c_void_p, (c_void_p,)),
    "fotp_callback_content": (c_void_p, (c_void_p,)),
    "fotp_callback_deliver_time": (c_void_p, (c_void_p,)),
    "fotp_callback_err": (c_void_p, (c_void_p,)),
    "fotp_callback_fields": (c_size_t, (c_void_p, _STRS, c_size_t)),
    "fotp_callback_free": (None, (c_void_p,)),
    "fotp_callback_ack": (c_void_p, ()),
    "fotp_confirm_callback": (c_void_p, (c_void_p, c_void_p, c_char_p, POINTER(c_bool))),
    # calls run on the library's worker threads (src/ffi/offload.rs; the Go binding's)
    "fotp_offload_new": (c_void_p, (c_uint32, _OUT)),
    "fotp_offload_fd": (c_void_p, (c_void_p, c_void_p)),
    "fotp_offload_drain": (c_size_t, (c_void_p, c_void_p, c_size_t)),
    "fotp_offload_free": (None, (c_void_p,)),
    "fotp_verify_start": (
        c_void_p,
        (c_void_p, c_char_p, c_char_p, c_uint32, c_void_p, c_uint64, _OUT),
    ),
    "fotp_query_start": (c_void_p, (c_void_p, c_char_p, c_void_p, c_uint64, _OUT)),
    "fotp_confirm_callback_start": (
        c_void_p,
        (c_void_p, c_void_p, c_char_p, c_void_p, c_uint64, _OUT),
    ),
    "fotp_call_verification": (c_void_p, (c_void_p, _OUT)),
    "fotp_call_query_result": (c_void_p, (c_void_p, _OUT)),
    "fotp_call_confirmed": (c_void_p, (c_void_p, POINTER(c_bool))),
    "fotp_call_free": (None, (c_void_p,)),
    "fotp_version": (c_void_p, ()),
    # trackers (push mode, CONTRACT section 8)
    "fotp_tracker_new_memory": (c_void_p, ()),
    "fotp_tracker_new_redis": (c_void_p, (c_char_p, c_char_p, _OUT)),
    "fotp_tracker_free": (None, (c_void_p,)),
    "fotp_tracker_verify": (c_void_p, (c_void_p, c_void_p, c_char_p, c_uint32, c_uint32, _OUT)),
    "fotp_tracker_match": (c_void_p, (c_void_p, c_void_p, _OUT)),
    "fotp_match_ft_token": (c_void_p, (c_void_p,)),
    "fotp_match_is_duplicate": (c_bool, (c_void_p,)),
    "fotp_match_free": (None, (c_void_p,)),
    "fotp_tracker_wait": (c_void_p, (c_void_p, c_void_p, c_char_p, c_uint32, _OUT)),
    "fotp_tracker_settle": (c_void_p, (c_void_p, c_void_p, c_void_p, _OUT)),
    # the outcome is a `fotp_settle_outcome *` (a C enum: pass byref(c_int))
    "fotp_tracker_settle_outcome": (c_void_p, (c_void_p, c_void_p, c_void_p, c_void_p, _OUT)),
    "fotp_tracker_unsettle": (c_void_p, (c_void_p, c_void_p)),
    # logging (callbacks are passed as c_void_p: see _log.py)
    "fotp_set_logger": (c_void_p, (c_int, c_void_p, c_void_p)),
    "fotp_set_logger_fields": (c_void_p, (c_int, c_void_p, c_void_p)),
    "fotp_set_log_level": (c_void_p, (c_int,)),
    "fotp_client_log_id": (c_uint64, (c_void_p,)),
}

# The functions of SIGNATURES called with the GIL held (through ctypes.PyDLL): each returns
# quickly, does no I/O, and takes no lock that a thread without the GIL could hold while it waits
# for the GIL (the library runs the logger callback with no lock held, so a callback from one of
# these, e.g. fotp_callback_parse logging a refused body, just runs Python on this same thread).
# Every other function, a new one included until it is listed here, releases the GIL: network
# calls, Redis, the tracker (its lock), cancelling (a lock sleepers share), reading files (fotp_config_set_ca_bundle), building or
# dropping a client (TLS roots, a pool's sockets), the logger setters.
KEEPS_GIL: frozenset[str] = frozenset(
    {
        "fotp_error_kind",
        "fotp_error_message",
        "fotp_error_api_code",
        "fotp_error_http_status",
        "fotp_error_free",
        "fotp_config_new",
        "fotp_config_set_base_url",
        "fotp_config_set_hmac_auth",
        "fotp_config_set_token_auth",
        "fotp_config_set_timeout_ms",
        "fotp_config_set_connect_timeout_ms",
        "fotp_config_set_call_timeout_ms",
        "fotp_config_set_proxy",
        "fotp_config_set_retries",
        "fotp_config_set_allow_insecure_http",
        "fotp_config_set_user_agent_suffix",
        "fotp_config_free",
        "fotp_client_with_timeout",
        "fotp_client_with_cancel",
        "fotp_cancel_new",
        "fotp_cancel_free",
        "fotp_verification_url",
        "fotp_verification_ft_token",
        "fotp_verification_message_id",
        "fotp_verification_code",
        "fotp_verification_fields",
        "fotp_verification_free",
        "fotp_query_result_status",
        "fotp_query_result_raw_status",
        "fotp_query_result_mobile",
        "fotp_query_result_sender",
        "fotp_query_result_send_time",
        "fotp_query_result_code",
        "fotp_query_result_deliver_time",
        "fotp_query_result_fields",
        "fotp_query_result_free",
        "fotp_callback_parse",
        "fotp_callback_parse_into",
        "fotp_callback_mobile",
        "fotp_callback_sender",
        "fotp_callback_send_time",
        "fotp_callback_code",
        "fotp_callback_content",
        "fotp_callback_deliver_time",
        "fotp_callback_err",
        "fotp_callback_fields",
        "fotp_callback_free",
        "fotp_callback_ack",
        "fotp_version",
        "fotp_match_ft_token",
        "fotp_match_is_duplicate",
        "fotp_match_free",
        "fotp_client_log_id",
    }
)


def _package_dir() -> Path:
    return Path(__file__).resolve().parent


def library_candidates() -> list[Path]:
    """Where the library is looked for, in order.

    ``FOTP_LIBRARY`` wins alone (a wrong path must fail, not silently load another copy); then
    the copy inside the installed package; then, only when this file sits in a checkout of the
    repository (``bindings/python/src/fotp``), the repository's ``target/release`` and
    ``target/debug``.
    """
    explicit = os.environ.get("FOTP_LIBRARY")
    if explicit:
        return [Path(explicit)]
    here = _package_dir()
    found = [here / LIBRARY_FILENAME]
    parents = here.parents
    if len(parents) > 3 and parents[2].name == "bindings" and parents[1].name == "python":
        root = parents[3]
        if (root / "Cargo.toml").is_file():
            found += [
                root / "target" / "release" / LIBRARY_FILENAME,
                root / "target" / "debug" / LIBRARY_FILENAME,
            ]
    return found


def _load() -> tuple[ctypes.CDLL, Path]:
    candidates = library_candidates()
    for path in candidates:
        if path.is_file():
            try:
                return ctypes.CDLL(str(path)), path
            except OSError as e:
                raise ImportError(f"fotp: cannot load {path}: {e}") from e
    if os.environ.get("FOTP_LIBRARY"):
        raise ImportError(f"fotp: FOTP_LIBRARY names {candidates[0]}, which is not a file")
    tried = ", ".join(str(p) for p in candidates)
    raise ImportError(
        f"fotp: {LIBRARY_FILENAME} not found (looked at {tried}); "
        "build it with `cargo build --release` or set FOTP_LIBRARY to its path"
    )


def _declare(cdll: ctypes.CDLL) -> None:
    """Sets up every function of SIGNATURES as an attribute of ``cdll``: the ones of KEEPS_GIL
    come from a PyDLL view of the same loaded library (no second dlopen)."""
    missing = [name for name in SIGNATURES if not hasattr(cdll, name)]
    if missing:
        raise ImportError(
            f"fotp: the library at {LIBRARY_PATH} lacks {', '.join(missing)}; "
            "it is older than this binding"
        )
    pydll = ctypes.PyDLL(cdll._name, handle=cdll._handle)
    for name, (restype, argtypes) in SIGNATURES.items():
        fn = getattr(pydll if name in KEEPS_GIL else cdll, name)
        fn.restype = restype
        fn.argtypes = argtypes
        setattr(cdll, name, fn)  # what `lib.<name>` returns from now on


lib, LIBRARY_PATH = _load()
_declare(lib)
