"""Invalid input: a clear error naming the field, and nothing sent to the server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import fotp
from _support import Sandbox

Call = Callable[[fotp.Client], object]

INVALID: list[tuple[str, Call, str]] = [
    ("empty ft_id", lambda c: c.verify(""), "ftId"),
    ("long ft_id", lambda c: c.verify("x" * 65), "ftId"),
    ("control ft_id", lambda c: c.verify("a\nb"), "ftId"),
    ("nul ft_id", lambda c: c.verify("a\0b"), "ft_id"),
    ("surrogate ft_id", lambda c: c.verify("a\ud800"), "ft_id"),
    ("short code", lambda c: c.verify("2", code="123"), "code"),
    ("long code", lambda c: c.verify("2", code="1234567"), "code"),
    ("letters code", lambda c: c.verify("2", code="12a4"), "code"),
    ("empty code", lambda c: c.verify("2", code=""), "code"),
    ("fullwidth code", lambda c: c.verify("2", code="１２３４"), "code"),
    ("nul code", lambda c: c.verify("2", code="1234\0"), "code"),
    ("validity 0", lambda c: c.verify("2", validity_minutes=0), "validity"),
    ("validity 11", lambda c: c.verify("2", validity_minutes=11), "validity"),
    ("validity -1", lambda c: c.verify("2", validity_minutes=-1), "validity"),
    ("empty token", lambda c: c.query(""), "ftToken"),
    ("long token", lambda c: c.query("a" * 129), "ftToken"),
    ("space token", lambda c: c.query("a b"), "ftToken"),
    ("non-ascii token", lambda c: c.query("tök"), "ftToken"),
    ("nul token", lambda c: c.query("ab\0cd"), "ft_token"),
    ("wait empty token", lambda c: c.wait("", timeout=1), "ftToken"),
    ("wait zero timeout", lambda c: c.wait("a" * 32, timeout=0), "timeout"),
    ("wait negative timeout", lambda c: c.wait("a" * 32, timeout=-1), "timeout"),
    ("wait inf timeout", lambda c: c.wait("a" * 32, timeout=float("inf")), "timeout"),
    (
        "confirm bad token",
        lambda c: c.confirm(fotp.Callback("1", "2", "3", "1234"), "a b"),
        "ftToken",
    ),
]

WRONG_TYPES: list[tuple[str, Call]] = [
    ("int ft_id", lambda c: c.verify(2)),  # type: ignore[arg-type]
    ("bytes ft_id", lambda c: c.verify(b"2")),  # type: ignore[arg-type]
    ("int code", lambda c: c.verify("2", code=1234)),  # type: ignore[arg-type]
    ("str validity", lambda c: c.verify("2", validity_minutes="5")),  # type: ignore[arg-type]
    ("bool validity", lambda c: c.verify("2", validity_minutes=True)),
    ("None token", lambda c: c.query(None)),  # type: ignore[arg-type]
    ("str timeout", lambda c: c.wait("a" * 32, timeout="1")),  # type: ignore[arg-type]
]


@pytest.fixture
def nothing_sent(sandbox: Sandbox) -> Iterator[None]:
    before = [s["ftToken"] for s in sandbox.sessions()]
    yield
    assert [s["ftToken"] for s in sandbox.sessions()] == before, "a request reached the sandbox"


@pytest.mark.parametrize(("call", "field"), [i[1:] for i in INVALID], ids=[i[0] for i in INVALID])
def test_invalid_argument_names_the_field(
    client: fotp.Client, nothing_sent: None, call: Call, field: str
) -> None:
    with pytest.raises(fotp.InvalidArgument) as e:
        call(client)
    assert isinstance(e.value, ValueError)
    assert e.value.kind is fotp.ErrorKind.INVALID_ARGUMENT
    assert field in e.value.message, e.value.message


@pytest.mark.parametrize("call", [i[1] for i in WRONG_TYPES], ids=[i[0] for i in WRONG_TYPES])
def test_wrong_types(client: fotp.Client, nothing_sent: None, call: Call) -> None:
    with pytest.raises(TypeError):
        call(client)


def test_valid_edge_inputs_are_sent(client: fotp.Client, sandbox: Sandbox) -> None:
    before = len(sandbox.sessions())
    client.verify("2", code="0000", validity_minutes=1)
    client.verify("2", code="999999", validity_minutes=10)
    assert len(sandbox.sessions()) == before + 2
