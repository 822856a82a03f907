"""parse_callback: the seed vector, field rules, limits, speed."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

import fotp
from _support import DATA

SEED = (DATA / "callback.json").read_bytes()


def test_seed_vector() -> None:
    cb = fotp.parse_callback(SEED)
    assert cb == fotp.Callback(
        mobile="8615711666132",
        sender="1008611",
        send_time="2025-05-15 11:23:34",
        code="5776",
        content=json.loads(SEED)["content"],
        deliver_time="2025-05-15 11:24:24",
        err=None,
    )
    assert cb.content is not None and cb.content.startswith("🔐 Exclusive Access Unlocked!\n")


@pytest.mark.parametrize("kind", [bytes, str, bytearray, memoryview])
def test_accepts_bytes_like_and_str(kind: type) -> None:
    body = SEED.decode() if kind is str else kind(SEED)
    assert fotp.parse_callback(body).code == "5776"


def test_is_frozen_with_slots() -> None:
    cb = fotp.parse_callback(SEED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cb.code = "1"  # type: ignore[misc]
    assert not hasattr(cb, "__dict__")


def test_integers_become_strings_null_is_absent() -> None:
    cb = fotp.parse_callback(
        b'{"mobile":8615711666132,"sender":1008611,"sendTime":"t","code":5776,'
        b'"content":null,"deliverTime":null,"err":42,"extra":{"ignored":[1]}}'
    )
    assert (cb.mobile, cb.sender, cb.code, cb.err) == ("8615711666132", "1008611", "5776", "42")
    assert cb.content is None and cb.deliver_time is None


@pytest.mark.parametrize("field", ["mobile", "sender", "sendTime", "code"])
def test_required_fields(field: str) -> None:
    obj = json.loads(SEED)
    del obj[field]
    with pytest.raises(fotp.DecodeError, match=field) as e:
        fotp.parse_callback(json.dumps(obj))
    assert e.value.kind is fotp.ErrorKind.DECODE
    obj[field] = ""
    with pytest.raises(fotp.DecodeError, match=field):
        fotp.parse_callback(json.dumps(obj))


@pytest.mark.parametrize("field", ["mobile", "content", "err"])
@pytest.mark.parametrize("bad", [True, 1.5, [1], {"a": 1}])
def test_wrong_types_name_the_field(field: str, bad: object) -> None:
    obj = json.loads(SEED)
    obj[field] = bad
    with pytest.raises(fotp.DecodeError, match=field):
        fotp.parse_callback(json.dumps(obj))


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[]", b"null", b"42", b'{"mobile":"\xff\xfe"}', b"\xef\xbb\xbf{}", "{\ud800}"],
)
def test_garbage_is_a_decode_error(body: bytes | str) -> None:
    with pytest.raises(fotp.DecodeError):
        fotp.parse_callback(body)


def test_embedded_nul_in_a_field_is_refused() -> None:
    obj = json.loads(SEED)
    obj["content"] = "a\u0000b"
    with pytest.raises(fotp.DecodeError):
        fotp.parse_callback(json.dumps(obj))


def test_size_limit() -> None:
    def padded(total: int) -> bytes:
        head = SEED.rstrip().rstrip(b"}") + b',"pad":"'
        return head + b"x" * (total - len(head) - 2) + b'"}'

    assert fotp.parse_callback(padded(64 * 1024)).code == "5776"
    with pytest.raises(fotp.DecodeError, match="limit"):
        fotp.parse_callback(padded(64 * 1024 + 1))
    with pytest.raises(fotp.DecodeError):
        fotp.parse_callback(b" " * (8 << 20))


@pytest.mark.parametrize("bad", [None, 42, ["{}"], object()])
def test_wrong_argument_type(bad: object) -> None:
    with pytest.raises(TypeError, match="bytes or str"):
        fotp.parse_callback(bad)  # type: ignore[arg-type]


def test_speed_is_close_to_json_loads_plus_dataclass() -> None:
    body = SEED
    n = 20_000

    def baseline(b: bytes) -> fotp.Callback:
        o = json.loads(b)
        return fotp.Callback(
            o["mobile"],
            o["sender"],
            o["sendTime"],
            o["code"],
            o.get("content"),
            o.get("deliverTime"),
            o.get("err"),
        )

    def best(fn: object) -> float:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(n):
                fn(body)  # type: ignore[operator]
            times.append((time.perf_counter() - t) / n)
        return min(times)

    ours, base = best(fotp.parse_callback), best(baseline)
    print(f"parse_callback {ours * 1e6:.2f} us, json.loads+dataclass {base * 1e6:.2f} us")
    # Generous bound (shared CI machine); typically within 2x of the baseline.
    assert ours < max(4 * base, 20e-6)


def test_empty_optional_fields_stay_empty_strings() -> None:
    cb = fotp.parse_callback(
        b'{"mobile":"1","sender":"2","sendTime":"3","code":"1234","content":"","err":""}'
    )
    assert cb.content == "" and cb.err == "" and cb.deliver_time is None


def test_parses_from_many_threads_at_once() -> None:
    # parse_callback writes into pooled buffers: two threads must never share one.
    import threading

    errors: list[str] = []

    def work(i: int) -> None:
        body = json.dumps(
            {"mobile": f"86{i:011d}", "sender": str(i), "sendTime": "t", "code": i + 1000,
             "content": "é" * (i % 50) + "🔐" * (i % 3), "err": None if i % 2 else str(i)}
        ).encode()
        for _ in range(300):
            cb = fotp.parse_callback(body)
            if (cb.mobile, cb.sender, cb.code) != (f"86{i:011d}", str(i), str(i + 1000)) or (
                cb.content != "é" * (i % 50) + "🔐" * (i % 3)
                or cb.err != (None if i % 2 else str(i))
            ):
                errors.append(f"thread {i}: {cb!r}")
                return

    import sys

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, mid-parse included
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors[:3]
