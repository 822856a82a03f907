"""Result types: plain frozen dataclasses, detached from the library's memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

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


@dataclass(frozen=True, slots=True)
class QueryResult:
    """The platform's answer to query (and wait)."""

    status: Status
    """The decoded status; UNKNOWN for a value other than 0, 1 or 2."""
    raw_status: str
    """The status as the platform sent it."""
    mobile: str | None = None
    sender: str | None = None
    send_time: str | None = None
    code: str | None = None
    deliver_time: str | None = None


@dataclass(frozen=True, slots=True)
class Callback:
    """A result pushed by the platform to the template's callback address.

    A callback carries no signature: before trusting it, check it with ``Client.confirm``.
    """

    mobile: str
    sender: str
    send_time: str
    code: str
    content: str | None = None
    deliver_time: str | None = None
    err: str | None = None


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
