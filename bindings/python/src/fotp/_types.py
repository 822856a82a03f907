"""Result types: plain frozen dataclasses, detached from the library's memory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

__all__ = ["Callback", "Match", "QueryResult", "Status", "Verification"]


class Status(IntEnum):
    """The status of a verification; the values are the C ``FOTP_STATUS_*`` constants."""

    PROCESSING = 0
    FAILED = 1
    SUCCESS = 2
    UNKNOWN = 255

    @property
    def is_final(self) -> bool:
        """True for FAILED and SUCCESS: the result will not change."""
        return self is Status.FAILED or self is Status.SUCCESS


@dataclass(frozen=True, slots=True)
class Verification:
    """The platform's answer to verify. Its ``repr`` leaves out ``code`` (logs must not hold
    OTP codes)."""

    url: str
    """The redirect link to open on the phone."""
    ft_token: str
    """The token to query the result with."""
    message_id: str
    """The platform's message id."""
    code: str = field(repr=False)
    """The code the user's SMS must carry."""


def _mask_mobile(mobile: str | None) -> str | None:
    """All but the last 4 characters replaced by ``*``, as in the library's log events."""
    return None if mobile is None else "*" * (len(mobile) - 4) + mobile[-4:]


@dataclass(frozen=True, slots=True)
class QueryResult:
    """The platform's answer to query (and wait). Its ``repr`` leaves out ``code`` and shows the
    mobile's last 4 digits only, as the library's log events do."""

    status: Status
    """The decoded status; UNKNOWN for a value other than 0, 1 or 2."""
    raw_status: str
    """The status as the platform sent it."""
    mobile: str | None = None
    sender: str | None = None
    send_time: str | None = None
    code: str | None = None
    deliver_time: str | None = None

    def __repr__(self) -> str:
        # Explicit, so that dataclass keeps it (and pprint uses it): no code, masked mobile.
        return (
            f"QueryResult(status={self.status!r}, raw_status={self.raw_status!r}, "
            f"mobile={_mask_mobile(self.mobile)!r}, sender={self.sender!r}, "
            f"send_time={self.send_time!r}, deliver_time={self.deliver_time!r})"
        )


@dataclass(frozen=True, slots=True)
class Callback:
    """A result pushed by the platform to the template's callback address.

    A callback carries no signature: before trusting it, check it with ``Client.confirm``.

    Its ``repr`` leaves out ``code`` and ``content`` (the SMS text carries the code) and shows
    the mobile's last 4 digits only, as the library's log events do.
    """

    mobile: str
    sender: str
    send_time: str
    code: str
    content: str | None = None
    deliver_time: str | None = None
    err: str | None = None

    def __repr__(self) -> str:
        return (
            f"Callback(mobile={_mask_mobile(self.mobile)!r}, sender={self.sender!r}, "
            f"send_time={self.send_time!r}, deliver_time={self.deliver_time!r}, err={self.err!r})"
        )


@dataclass(frozen=True, slots=True)
class Match:
    """The verification a callback belongs to, found by ``Tracker.settle`` (or ``match``)."""

    ft_token: str
    """The token of the verification whose code the callback carries."""
    duplicate: bool
    """True when this token was settled (or matched) before: a repeated delivery, not to act
    on again. From ``settle`` this is only ever True for a delivery the platform confirmed."""
    _handle: object = field(default=None, compare=False, repr=False, hash=False)
    """The library's match, for ``Tracker.unsettle`` (set by ``settle`` only)."""

    def __reduce__(self) -> tuple[type[Match], tuple[str, bool]]:
        # The library handle belongs to this process: a copy cannot be unsettled.
        return (Match, (self.ft_token, self.duplicate))


# Building results for the library's answers, without the frozen dataclass's __init__: it sets
# each field through object.__setattr__ (about twice the cost of the whole C parse of a
# callback). The slots' own descriptors store the values directly; the objects are the same
# (eq, hash, repr, frozen afterwards). A test checks these list every field, in order.
_new = object.__new__
_Set = Callable[[object, object], None]


def _setters(cls: type, *names: str) -> tuple[_Set, ...]:
    return tuple(cls.__dict__[n].__set__ for n in names)


_VERIFICATION_FIELDS = ("url", "ft_token", "message_id", "code")
_V_URL, _V_TOKEN, _V_MESSAGE_ID, _V_CODE = _setters(Verification, *_VERIFICATION_FIELDS)
_QUERY_RESULT_FIELDS = (
    "status",
    "raw_status",
    "mobile",
    "sender",
    "send_time",
    "code",
    "deliver_time",
)
_Q_STATUS, _Q_RAW, _Q_MOBILE, _Q_SENDER, _Q_SEND_TIME, _Q_CODE, _Q_DELIVER_TIME = _setters(
    QueryResult, *_QUERY_RESULT_FIELDS
)
_CALLBACK_FIELDS = ("mobile", "sender", "send_time", "code", "content", "deliver_time", "err")
_C_MOBILE, _C_SENDER, _C_SEND_TIME, _C_CODE, _C_CONTENT, _C_DELIVER_TIME, _C_ERR = _setters(
    Callback, *_CALLBACK_FIELDS
)


def make_verification(url: str, ft_token: str, message_id: str, code: str) -> Verification:
    """``Verification(url, ft_token, message_id, code)``, built faster."""
    v: Any = _new(Verification)
    _V_URL(v, url)
    _V_TOKEN(v, ft_token)
    _V_MESSAGE_ID(v, message_id)
    _V_CODE(v, code)
    return v  # type: ignore[no-any-return]


def make_query_result(
    status: Status,
    raw_status: str,
    mobile: str | None,
    sender: str | None,
    send_time: str | None,
    code: str | None,
    deliver_time: str | None,
) -> QueryResult:
    """``QueryResult(...)`` with every field given, built faster."""
    r: Any = _new(QueryResult)
    _Q_STATUS(r, status)
    _Q_RAW(r, raw_status)
    _Q_MOBILE(r, mobile)
    _Q_SENDER(r, sender)
    _Q_SEND_TIME(r, send_time)
    _Q_CODE(r, code)
    _Q_DELIVER_TIME(r, deliver_time)
    return r  # type: ignore[no-any-return]


def make_callback(
    mobile: str,
    sender: str,
    send_time: str,
    code: str,
    content: str | None,
    deliver_time: str | None,
    err: str | None,
) -> Callback:
    """``Callback(...)`` with every field given, built faster."""
    cb: Any = _new(Callback)
    _C_MOBILE(cb, mobile)
    _C_SENDER(cb, sender)
    _C_SEND_TIME(cb, send_time)
    _C_CODE(cb, code)
    _C_CONTENT(cb, content)
    _C_DELIVER_TIME(cb, deliver_time)
    _C_ERR(cb, err)
    return cb  # type: ignore[no-any-return]
