"""fotp: Flash OTP phone verification (Python binding of libfotp).

>>> import fotp
>>> with fotp.Client.from_env() as client:                    # doctest: +SKIP
...     v = client.verify("2")
...     print("open on the phone:", v.url)
...     result = client.wait(v.ft_token, timeout=120)
...     print(result.status)
"""

from __future__ import annotations

import ctypes
from importlib import metadata as _metadata
from typing import TYPE_CHECKING, Any

from . import _ffi
from ._client import CALLBACK_ACK, Client, parse_callback
from ._log import sync_log_level
from ._errors import (
    ApiError,
    ConfigError,
    DecodeError,
    ErrorKind,
    ExhaustedError,
    FotpError,
    HttpStatusError,
    InternalError,
    InvalidArgument,
    NetworkError,
    Timeout,
)
from ._tracker import SettleOutcome, Tracker
from ._types import Callback, Match, QueryResult, Status, Verification
from ._wsgi import wsgi_callback

if TYPE_CHECKING:
    from ._asgi import asgi_callback
    from ._async import AsyncClient, AsyncTracker

# The distribution's version, which setup.py reads from Cargo.toml (no second copy here).
# Imported from a source checkout (the benchmarks, PYTHONPATH) there is no distribution.
try:
    __version__ = _metadata.version("fotp")
except _metadata.PackageNotFoundError:
    __version__ = "0+unknown"

__all__ = [
    "CALLBACK_ACK",
    "ApiError",
    "AsyncClient",
    "AsyncTracker",
    "Callback",
    "Client",
    "ConfigError",
    "DecodeError",
    "ErrorKind",
    "ExhaustedError",
    "FotpError",
    "HttpStatusError",
    "InternalError",
    "InvalidArgument",
    "Match",
    "NetworkError",
    "QueryResult",
    "SettleOutcome",
    "Status",
    "Timeout",
    "Tracker",
    "Verification",
    "__version__",
    "asgi_callback",
    "library_path",
    "library_version",
    "parse_callback",
    "sync_log_level",
    "wsgi_callback",
]


def library_version() -> str:
    """The version of the loaded libfotp."""
    return ctypes.string_at(_ffi.lib.fotp_version()).decode("ascii")


def library_path() -> str:
    """The file libfotp was loaded from."""
    return str(_ffi.LIBRARY_PATH)


def __getattr__(name: str) -> Any:
    # The asyncio parts load on first use: importing asyncio is most of `import fotp`'s
    # time, and most users never need it.
    if name in ("AsyncClient", "AsyncTracker"):
        from . import _async

        value = getattr(_async, name)
        globals()[name] = value  # later lookups (and tools reading __dict__) find it directly
        return value
    if name == "asgi_callback":
        from . import _asgi

        globals()[name] = _asgi.asgi_callback
        return _asgi.asgi_callback
    raise AttributeError(f"module 'fotp' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The lazy names too, so that dir(fotp) and completion show them.
    return sorted(set(globals()) | set(__all__))
