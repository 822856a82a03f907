"""Push mode end to end: sandbox -> callback to a wsgi_callback receiver -> confirm()."""

from __future__ import annotations

import queue

import fotp
from _support import Sandbox, eventually
from conftest import PUSH_FT_ID


def _drain(q: queue.Queue[fotp.Callback]) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


def test_push_callback_is_received_and_confirmed(
    client: fotp.Client, sandbox: Sandbox, received: queue.Queue[fotp.Callback]
) -> None:
    _drain(received)
    v = client.verify(PUSH_FT_ID)
    sandbox.uplink(v.ft_token, f"Your code {v.code}", mobile="8615500001111")
    cb = received.get(timeout=15)
    assert (cb.mobile, cb.code, cb.sender) == ("8615500001111", v.code, "1008611")
    assert cb.content == f"Your code {v.code}"
    assert client.confirm(cb, v.ft_token) is True
    # The sandbox took our receiver's answer as accepted (it logs, then records the attempt).
    line = sandbox.wait_log(f"ftToken={v.ft_token} delivery 1 attempt 1")
    assert "HTTP 200 accepted" in line, line

    def attempts() -> list[dict[str, object]]:
        [s] = [s for s in sandbox.sessions() if s["ftToken"] == v.ft_token]
        return list(s["callbacks"])

    assert eventually(attempts)[0]["httpStatus"] == 200


def test_duplicate_deliveries(
    client: fotp.Client, sandbox: Sandbox, received: queue.Queue[fotp.Callback]
) -> None:
    _drain(received)
    v = client.verify(PUSH_FT_ID)
    sandbox.uplink(v.ft_token, v.code, mobile="8615500002222", deliveries=2)
    first, second = received.get(timeout=15), received.get(timeout=15)
    assert first == second and first.code == v.code
    assert client.confirm(first, v.ft_token) is True


def test_forged_callback_is_not_confirmed(
    client: fotp.Client, sandbox: Sandbox, received: queue.Queue[fotp.Callback]
) -> None:
    _drain(received)
    v = client.verify(PUSH_FT_ID)
    sandbox.uplink(v.ft_token, "0000" if v.code != "0000" else "1111", mobile="8615500003333")
    cb = received.get(timeout=15)  # a failed verification is pushed too
    assert client.confirm(cb, v.ft_token) is False
    assert client.query(v.ft_token).status is fotp.Status.FAILED
