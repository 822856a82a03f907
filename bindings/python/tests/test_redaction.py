"""OTP codes never show in the repr of a result; mobiles show their last 4 digits, as in the
library's log events (SECURITY.md section 3)."""

from __future__ import annotations

import pprint

import fotp
from _support import DATA

SEED = (DATA / "callback.json").read_bytes()  # code 5776, also inside its SMS text


def shown(obj: object) -> list[str]:
    return [repr(obj), str(obj), f"{obj}", f"{obj!r}", pprint.pformat(obj, width=20)]


def test_repr_of_a_callback_hides_the_code_and_the_sms_text() -> None:
    cb = fotp.parse_callback(SEED)
    assert cb.code == "5776" and "5776" in (cb.content or "")
    for s in shown(cb):
        assert "5776" not in s and "VIP" not in s and "8615711666132" not in s, s
        for visible in ("Callback(", "*********6132", "1008611", "2025-05-15 11:23:34", "11:24:24"):
            assert visible in s, (visible, s)
    # Equality still compares every field.
    same = fotp.Callback(
        cb.mobile, cb.sender, cb.send_time, cb.code, cb.content, cb.deliver_time, cb.err
    )
    assert same == cb and repr(same) == repr(cb)
    other = fotp.Callback(
        cb.mobile, cb.sender, cb.send_time, "5777", cb.content, cb.deliver_time, cb.err
    )
    assert other != cb and repr(other) == repr(cb)


def test_repr_of_a_query_result_hides_the_code_and_masks_the_mobile() -> None:
    r = fotp.QueryResult(
        status=fotp.Status.SUCCESS,
        raw_status="2",
        mobile="8615711666132",
        sender="1008611",
        send_time="2025-05-15 11:23:34",
        code="5776",
        deliver_time="2025-05-15 11:24:24",
    )
    for s in shown(r):
        assert "5776" not in s and "8615711666132" not in s, s
        for visible in ("QueryResult(", "SUCCESS", "*********6132", "1008611", "11:24:24"):
            assert visible in s, (visible, s)
    assert r != fotp.QueryResult(fotp.Status.SUCCESS, "2", "8615711666132", code="5777")
    # Absent fields show as None.
    assert "mobile=None" in repr(fotp.QueryResult(fotp.Status.PROCESSING, "0"))


def test_repr_of_a_verification_hides_the_code() -> None:
    v = fotp.Verification(url="https://x/r/t", ft_token="tok", message_id="m1", code="5776")
    for s in shown(v):
        assert "5776" not in s and "tok" in s and "m1" in s, s
