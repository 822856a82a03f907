"""Error kinds and the exception classes they map to."""

from __future__ import annotations

import ctypes
from enum import IntEnum
from typing import NoReturn

from . import _ffi

__all__ = [
    "ApiError",
    "ConfigError",
    "DecodeError",
    "ErrorKind",
    "ExhaustedError",
    "FotpError",
    "HttpStatusError",
    "InternalError",
    "InvalidArgument",
    "NetworkError",
    "Timeout",
]


class ErrorKind(IntEnum):
    """What went wrong; the values are the C ``FOTP_ERROR_*`` constants."""

    INVALID_ARGUMENT = 1
    CONFIG = 2
    NETWORK = 3
    TIMEOUT = 4
    HTTP_STATUS = 5
    API = 6
    DECODE = 7
    EXHAUSTED = 8
    INTERNAL = 99


class FotpError(Exception):
    """Base class of every error the library reports.

    ``kind`` is an :class:`ErrorKind`, ``message`` the human-readable description. Messages
    never contain the app secret or the token.
    """

    kind: ErrorKind = ErrorKind.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        # The class names the kind (``fotp.ConfigError: ...``), as Python's own exceptions do.
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.message,))


class InvalidArgument(FotpError, ValueError):
    """The caller's input broke a rule of the protocol; nothing was sent."""

    kind = ErrorKind.INVALID_ARGUMENT


class ConfigError(FotpError):
    """The client cannot be built (missing base URL or credentials, insecure URL)."""

    kind = ErrorKind.CONFIG


class NetworkError(FotpError, ConnectionError):
    """DNS, connect, TLS or I/O failure."""

    kind = ErrorKind.NETWORK


class Timeout(FotpError, TimeoutError):
    """A time limit ran out."""

    kind = ErrorKind.TIMEOUT


class HttpStatusError(FotpError):
    """A non-2xx answer that is not an API envelope; ``status`` is the HTTP status."""

    kind = ErrorKind.HTTP_STATUS

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.message, self.status))


class ApiError(FotpError):
    """The platform answered with an error envelope.

    ``code`` is the platform's code (e.g. ``"200002"``), ``message`` its message and ``status``
    the HTTP status of the answer.
    """

    kind = ErrorKind.API

    def __init__(self, message: str, code: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    def __str__(self) -> str:
        return f"{self.message} (code {self.code})" if self.code else self.message

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.message, self.code, self.status))


class DecodeError(FotpError):
    """A body that is not what the protocol says (bad JSON, missing field, too large)."""

    kind = ErrorKind.DECODE


class ExhaustedError(FotpError):
    """A tracker has no free code left; use longer codes."""

    kind = ErrorKind.EXHAUSTED


class InternalError(FotpError):
    """A bug in the library (a caught panic); never expected."""

    kind = ErrorKind.INTERNAL


_SIMPLE: dict[int, type[FotpError]] = {
    ErrorKind.INVALID_ARGUMENT: InvalidArgument,
    ErrorKind.CONFIG: ConfigError,
    ErrorKind.NETWORK: NetworkError,
    ErrorKind.TIMEOUT: Timeout,
    ErrorKind.DECODE: DecodeError,
    ErrorKind.EXHAUSTED: ExhaustedError,
    ErrorKind.INTERNAL: InternalError,
}

_lib = _ffi.lib
_kind = _lib.fotp_error_kind
_message = _lib.fotp_error_message
_api_code = _lib.fotp_error_api_code
_http_status = _lib.fotp_error_http_status
_free = _lib.fotp_error_free
_string_at = ctypes.string_at


def error_from_ptr(err: int) -> FotpError:
    """Turns a ``fotp_error *`` into an exception and frees it."""
    try:
        kind = _kind(err)
        msg_p = _message(err)
        message = _string_at(msg_p).decode("utf-8", "replace") if msg_p else ""
        code_p = _api_code(err)
        code = _string_at(code_p).decode("utf-8", "replace") if code_p else ""
        status = _http_status(err)
    finally:
        _free(err)
    if kind == ErrorKind.API:
        return ApiError(message, code, status)
    if kind == ErrorKind.HTTP_STATUS:
        return HttpStatusError(message, status)
    if kind == ErrorKind.CONFIG:
        # The core names its environment variable; Python code sets the keyword argument.
        message = message.replace(
            "(FOTP_ALLOW_INSECURE_HTTP=1)",
            "(allow_insecure_http=True, or FOTP_ALLOW_INSECURE_HTTP=1 for Client.from_env())",
        )
    cls = _SIMPLE.get(kind)
    if cls is None:
        return InternalError(f"unknown error kind {kind}: {message}")
    return cls(message)


def raise_error(err: int) -> NoReturn:
    """Raises the exception for a non-NULL ``fotp_error *`` (which is freed)."""
    raise error_from_ptr(err)
