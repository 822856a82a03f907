"""Client against the sandbox and against small local servers: every method and error class."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any
from http.server import BaseHTTPRequestHandler

import pytest

import fotp
from _support import Sandbox, closed_port_url, envelope, http_server, silent_socket

UA = f"fotp/{fotp.__version__} python/{sys.version_info[0]}.{sys.version_info[1]}"
QUERY_OK = {
    "status": "2",
    "mobile": "8613800138000",
    "sender": "1008611",
    "sendTime": "2026-01-01 10:00:00",
    "code": "4321",
    "deliverTime": "2026-01-01 10:00:01",
}


def test_verify_query_wait_success(client: fotp.Client, sandbox: Sandbox) -> None:
    v = client.verify("2")
    assert isinstance(v, fotp.Verification)
    assert v.code.isdigit() and len(v.code) == 4
    assert v.ft_token in v.url and v.url.startswith(sandbox.base_url)
    assert v.message_id
    r = client.query(v.ft_token)
    assert r == fotp.QueryResult(fotp.Status.PROCESSING, "0")
    sandbox.uplink(v.ft_token, f"my code is {v.code}", mobile="8613911112222")
    r = client.wait(v.ft_token, timeout=10)
    assert r.status is fotp.Status.SUCCESS and r.raw_status == "2"
    assert (r.mobile, r.code, r.sender) == ("8613911112222", v.code, "1008611")
    assert r.send_time
    assert client.query(v.ft_token) == r


def test_verify_with_code_and_validity(client: fotp.Client, sandbox: Sandbox) -> None:
    v = client.verify("2", code="123456", validity_minutes=3)
    assert v.code == "123456"
    [s] = [s for s in sandbox.sessions() if s["ftToken"] == v.ft_token]
    assert s["code"] == "123456"


def test_wrong_code_fails(client: fotp.Client, sandbox: Sandbox) -> None:
    v = client.verify("2", code="1111")
    sandbox.uplink(v.ft_token, "code 2222")
    r = client.wait(v.ft_token, timeout=10)
    assert r.status is fotp.Status.FAILED and r.raw_status == "1"


def test_wait_times_out(client: fotp.Client) -> None:
    v = client.verify("2")
    t = time.monotonic()
    with pytest.raises(fotp.Timeout) as e:
        client.wait(v.ft_token, timeout=0.6)
    took = time.monotonic() - t
    assert 0.5 <= took < 3, took
    assert isinstance(e.value, TimeoutError) and e.value.kind is fotp.ErrorKind.TIMEOUT


def test_confirm(client: fotp.Client, sandbox: Sandbox) -> None:
    v = client.verify("2")
    cb = fotp.Callback(mobile="8613800138000", sender="1008611", send_time="t", code=v.code)
    assert client.confirm(cb, v.ft_token) is False  # still processing
    sandbox.uplink(v.ft_token, v.code, mobile="8613800138000")
    client.wait(v.ft_token, timeout=10)
    assert client.confirm(cb, v.ft_token) is True
    assert client.confirm(cb, v.ft_token, timeout=5) is True
    assert (
        client.confirm(fotp.Callback("8613800138000", "1008611", "t", "0000"), v.ft_token) is False
    )
    assert (
        client.confirm(fotp.Callback("8613800000001", "1008611", "t", v.code), v.ft_token) is False
    )
    with pytest.raises(fotp.InvalidArgument, match="cb"):
        client.confirm(fotp.Callback("", "1008611", "t", v.code), v.ft_token)
    with pytest.raises(TypeError):
        client.confirm({"mobile": "1"}, v.ft_token)  # type: ignore[arg-type]
    with pytest.raises(fotp.ApiError) as e:
        client.confirm(cb, "0" * 32)
    assert e.value.code == "300001"


def test_api_error_unknown_ft_id(client: fotp.Client) -> None:
    with pytest.raises(fotp.ApiError) as e:
        client.verify("no-such-template")
    err = e.value
    assert err.code == "200002" and err.status == 200 and err.kind is fotp.ErrorKind.API
    assert err.message and "200002" in str(err)


def test_api_error_unknown_token(client: fotp.Client) -> None:
    with pytest.raises(fotp.ApiError) as e:
        client.query("f" * 32)
    assert e.value.code == "300001"


def test_bad_credentials_never_leak_the_secret(sandbox: Sandbox) -> None:
    secret = "wrong-secret-d41d8cd98f00b204"
    with fotp.Client(sandbox.base_url, app_id=sandbox.app_id, app_secret=secret) as c:
        assert secret not in repr(c)
        with pytest.raises(fotp.ApiError) as e:
            c.verify("2")
    assert e.value.code == "100001"
    assert secret not in str(e.value) and secret not in repr(e.value)


def test_network_error_from_a_closed_port() -> None:
    with fotp.Client(closed_port_url(), app_id="a", app_secret="s", retries=1) as c:
        with pytest.raises(fotp.NetworkError) as e:
            c.verify("2")
        assert isinstance(e.value, ConnectionError) and e.value.kind is fotp.ErrorKind.NETWORK
        with pytest.raises(fotp.NetworkError):
            c.query("a" * 32)


def test_timeout_from_a_server_that_never_answers() -> None:
    with silent_socket() as url, fotp.Client(url, app_id="a", app_secret="s", timeout=0.5) as c:
        for call in (lambda: c.verify("2"), lambda: c.query("a" * 32)):
            t = time.monotonic()
            with pytest.raises(fotp.Timeout):
                call()
            assert time.monotonic() - t < 3


def test_per_call_timeout_shortens_the_limit() -> None:
    with silent_socket() as url, fotp.Client(url, app_id="a", app_secret="s", timeout=60) as c:
        t = time.monotonic()
        with pytest.raises(fotp.Timeout):
            c.verify("2", timeout=0.3)
        with pytest.raises(fotp.Timeout):
            c.query("a" * 32, timeout=0.3)
        with pytest.raises(fotp.Timeout):
            c.confirm(fotp.Callback("1", "2", "3", "1234"), "a" * 32, timeout=0.3)
        assert time.monotonic() - t < 5
    with fotp.Client("http://127.0.0.1:1", app_id="a", app_secret="s") as c2:
        with pytest.raises(fotp.InvalidArgument, match="timeout"):
            c2.verify("2", timeout=0)


def test_http_status_error() -> None:
    def respond(_: BaseHTTPRequestHandler, __: bytes) -> tuple[int, dict[str, str], bytes]:
        return 503, {"Content-Type": "text/plain"}, b"busy"

    with (
        http_server(respond) as (url, seen),
        fotp.Client(url, app_id="a", app_secret="s", retries=0) as c,
    ):
        with pytest.raises(fotp.HttpStatusError) as e:
            c.query("a" * 32)
        assert e.value.status == 503 and e.value.kind is fotp.ErrorKind.HTTP_STATUS
        assert len(seen) == 1


def test_non_2xx_envelope_is_an_api_error_with_status() -> None:
    def respond(_: BaseHTTPRequestHandler, __: bytes) -> tuple[int, dict[str, str], bytes]:
        return 400, {"Content-Type": "application/json"}, envelope(None, "123456", "nope")

    with http_server(respond) as (url, _), fotp.Client(url, app_id="a", app_secret="s") as c:
        with pytest.raises(fotp.ApiError) as e:
            c.verify("2")
        assert (e.value.code, e.value.message, e.value.status) == ("123456", "nope", 400)


@pytest.mark.parametrize(
    "body",
    [b"not json", envelope({"url": "u", "ftToken": "t", "code": "1234"}), b"[]"],
)
def test_decode_error(body: bytes) -> None:
    def respond(_: BaseHTTPRequestHandler, __: bytes) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/json"}, body

    with http_server(respond) as (url, _), fotp.Client(url, app_id="a", app_secret="s") as c:
        with pytest.raises(fotp.DecodeError):
            c.verify("2")


def test_unknown_and_integer_statuses() -> None:
    answers: Iterator[dict[str, Any]] = iter(
        [{"status": 7}, {"status": 2, "code": 4321}, {"status": "0"}]
    )

    def respond(_: BaseHTTPRequestHandler, __: bytes) -> tuple[int, dict[str, str], bytes]:
        return 200, {}, envelope(next(answers))

    with http_server(respond) as (url, _), fotp.Client(url, app_id="a", app_secret="s") as c:
        r = c.query("a" * 32)
        assert (r.status, r.raw_status) == (fotp.Status.UNKNOWN, "7")
        r = c.query("a" * 32)
        assert (r.status, r.raw_status, r.code, r.mobile) == (
            fotp.Status.SUCCESS,
            "2",
            "4321",
            None,
        )
        assert c.query("a" * 32).status is fotp.Status.PROCESSING


def test_headers_user_agent_and_token_scheme() -> None:
    def respond(_: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        return 200, {}, envelope(QUERY_OK)

    with http_server(respond) as (url, seen):
        with fotp.Client(url, app_key="key-1", token="tok-secret-123") as c:
            assert "tok-secret-123" not in repr(c)
            assert c.query("a" * 32).status is fotp.Status.SUCCESS
        with fotp.Client(url, app_id="app-1", app_secret="sec") as c:
            c.query("a" * 32)
    tok, hmac = seen
    assert tok["user-agent"] == UA and hmac["user-agent"] == UA
    assert tok["appkey"] == "key-1" and tok["authorization"] == "tok-secret-123"
    assert hmac["appid"] == "app-1" and len(hmac["sign"]) == 64 and len(hmac["nonce"]) == 32
    assert tok["content-type"].startswith("application/json")


def test_verify_body_leaves_unset_fields_out() -> None:
    bodies: list[dict[str, str]] = []

    def respond(_: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        bodies.append(json.loads(body))
        return 200, {}, envelope({"url": "u", "ftToken": "t", "messageId": "m", "code": "1234"})

    with http_server(respond) as (url, _), fotp.Client(url, app_id="a", app_secret="s") as c:
        assert c.verify("2") == fotp.Verification("u", "t", "m", "1234")
        c.verify("模版-2", code="0000", validity_minutes=10)
    assert bodies == [{"ftId": "2"}, {"ftId": "模版-2", "code": "0000", "validityPeriod": "10"}]


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://example.com/otp-api", "http://10.0.0.1", "ftp://127.0.0.1", "not a url", ""],
)
def test_config_error_for_bad_base_urls(url: str) -> None:
    with pytest.raises(fotp.ConfigError) as e:
        fotp.Client(url, app_id="a", app_secret="s")
    assert e.value.kind is fotp.ErrorKind.CONFIG


def test_insecure_http_only_when_allowed() -> None:
    fotp.Client("http://example.com", app_id="a", app_secret="s", allow_insecure_http=True).close()
    for ok in (
        "https://example.com/otp-api",
        "http://localhost:1",
        "http://127.0.0.2:9",
        "http://[::1]:9",
    ):
        fotp.Client(ok, app_id="a", app_secret="s").close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "no credentials"),
        ({"app_id": "a"}, "app_secret"),
        ({"app_secret": "s"}, "app_id"),
        ({"app_key": "k"}, "token"),
        ({"app_id": "a", "app_secret": "s", "token": "t"}, "not both"),
        ({"app_id": "a", "app_secret": ""}, "secret"),
        ({"app_id": "a b", "app_secret": "s"}, "app id"),
        ({"app_id": "a", "app_secret": "s\0x"}, "NUL"),
        ({"app_id": "a", "app_secret": "s", "timeout": 0}, "timeout"),
        ({"app_id": "a", "app_secret": "s", "timeout": float("nan")}, "timeout"),
        ({"app_id": "a", "app_secret": "s", "connect_timeout": -1}, "connect_timeout"),
        ({"app_id": "a", "app_secret": "s", "timeout": 5e6}, "timeout"),
        ({"app_id": "a", "app_secret": "s", "retries": -1}, "retries"),
    ],
)
def test_config_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(fotp.ConfigError, match=match) as e:
        fotp.Client("http://127.0.0.1:1", **kwargs)  # type: ignore[arg-type]
    assert "s\0x" not in str(e.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": "10"},
        {"retries": 1.5},
        {"retries": True},
        {"allow_insecure_http": 1},
        {"app_id": 5},
    ],
)
def test_wrong_types_are_type_errors(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"app_id": "a", "app_secret": "s", **kwargs}
    with pytest.raises(TypeError):
        fotp.Client("http://127.0.0.1:1", **args)  # type: ignore[arg-type]


def test_from_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("FOTP_AUTH", "FOTP_APP_KEY", "FOTP_TOKEN", "FOTP_TIMEOUT_MS", "FOTP_RETRIES"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("FOTP_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("FOTP_APP_ID", sandbox.app_id)
    monkeypatch.setenv("FOTP_APP_SECRET", sandbox.app_secret)
    with fotp.Client.from_env() as c:
        assert c.query(c.verify("2").ft_token).status is fotp.Status.PROCESSING
    monkeypatch.setenv("FOTP_TIMEOUT_MS", "soon")
    with pytest.raises(fotp.ConfigError, match="FOTP_TIMEOUT_MS"):
        fotp.Client.from_env()
    monkeypatch.delenv("FOTP_TIMEOUT_MS")
    monkeypatch.delenv("FOTP_BASE_URL")
    with pytest.raises(fotp.ConfigError, match="base URL"):
        fotp.Client.from_env()


def test_close_is_idempotent_and_use_after_close_raises(sandbox: Sandbox) -> None:
    c = fotp.Client(sandbox.base_url, **sandbox.client_kwargs())
    assert not c.closed and "open" in repr(c)
    c.close()
    c.close()
    assert c.closed and "closed" in repr(c)
    for call in (lambda: c.verify("2"), lambda: c.query("a" * 32), lambda: c.wait("a" * 32, 1)):
        with pytest.raises(fotp.InvalidArgument, match="closed"):
            call()
    with fotp.Client(sandbox.base_url, **sandbox.client_kwargs()) as c2:
        pass
    assert c2.closed
