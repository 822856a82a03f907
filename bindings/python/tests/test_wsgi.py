"""wsgi_callback: called directly with a fake environ, and over wsgiref."""

from __future__ import annotations

import io
import json
import logging
import urllib.error
import urllib.request
from typing import Any

import pytest

import fotp
from _support import DATA, urlopen, wsgi_server

SEED = (DATA / "callback.json").read_bytes()


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[fotp.Callback] = []
        self.fail = fail

    def __call__(self, cb: fotp.Callback) -> None:
        self.calls.append(cb)
        if self.fail:
            raise RuntimeError("database is down")


def call(
    app: Any, method: str = "POST", body: bytes = SEED, **environ: Any
) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen["status"], seen["headers"] = status, dict(headers)
        return lambda data: None

    env = {
        "REQUEST_METHOD": method,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        **environ,
    }
    out = b"".join(app(env, start_response))
    assert seen["headers"]["Content-Length"] == str(len(out))
    return seen["status"], seen["headers"], out


def test_accepts_a_callback() -> None:
    rec = Recorder()
    status, headers, body = call(fotp.wsgi_callback(rec))
    assert status == "200 OK" and body == fotp.CALLBACK_ACK
    assert headers["Content-Type"] == "application/json"
    assert rec.calls == [fotp.parse_callback(SEED)]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "callback"),
        (b"{", "callback"),
        (b'{"mobile":"1"}', "sender"),
        (b'{"mobile":true}', "mobile"),
    ],
)
def test_bad_body_is_400_with_the_reason(body: bytes, reason: str) -> None:
    rec = Recorder()
    status, headers, out = call(fotp.wsgi_callback(rec), body=body)
    assert status.startswith("400") and headers["Content-Type"] == "application/json"
    assert reason in json.loads(out)["message"]
    assert rec.calls == []


def test_oversized_body_is_read_bounded() -> None:
    rec = Recorder()

    class Stream(io.RawIOBase):
        read_total = 0

        def read(self, n: int = -1) -> bytes:
            assert n is not None and 0 < n <= 64 * 1024 + 1
            Stream.read_total += n
            return b"x" * n

    extra: dict[str, Any] = {"CONTENT_LENGTH": str(1 << 30), "wsgi.input": Stream()}
    status, _, out = call(fotp.wsgi_callback(rec), body=b"", **extra)
    assert status.startswith("400") and "limit" in json.loads(out)["message"]
    assert Stream.read_total == 64 * 1024 + 1


@pytest.mark.parametrize("length", ["abc", "-1"])
def test_bad_content_length(length: str) -> None:
    status, _, out = call(fotp.wsgi_callback(Recorder()), CONTENT_LENGTH=length)
    assert status.startswith("400") and "Content-Length" in json.loads(out)["message"]


def test_no_content_length_reads_nothing_unless_terminated() -> None:
    status, _, _ = call(fotp.wsgi_callback(Recorder()), CONTENT_LENGTH="")
    assert status.startswith("400")
    extra: dict[str, Any] = {"CONTENT_LENGTH": "", "wsgi.input_terminated": True}
    status, _, body = call(fotp.wsgi_callback(Recorder()), **extra)
    assert status == "200 OK" and body == fotp.CALLBACK_ACK


def test_handler_raising_is_500(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder(fail=True)
    with caplog.at_level(logging.ERROR, logger="fotp.wsgi"):
        status, _, out = call(fotp.wsgi_callback(rec))
    assert status.startswith("500") and b"database" not in out
    assert len(rec.calls) == 1
    assert any("handler raised" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("method", ["GET", "PUT", "HEAD"])
def test_non_post_is_405(method: str) -> None:
    rec = Recorder()
    status, headers, _ = call(fotp.wsgi_callback(rec), method=method)
    assert status.startswith("405") and headers["Allow"] == "POST"
    assert rec.calls == []


def test_arguments() -> None:
    with pytest.raises(TypeError, match="tracker"):
        fotp.wsgi_callback(Recorder(), tracker=object())  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="callable"):
        fotp.wsgi_callback("not callable")  # type: ignore[call-overload]


def test_over_wsgiref() -> None:
    rec = Recorder()

    def post(url: str, body: bytes) -> tuple[int, bytes]:
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    with wsgi_server(fotp.wsgi_callback(rec)) as base:
        assert post(base + "/cb", SEED) == (200, fotp.CALLBACK_ACK)
        code, body = post(base + "/cb", b'{"mobile":1}')
        assert code == 400 and "sender" in json.loads(body)["message"]
        try:
            urlopen(base + "/cb", timeout=10)
            raise AssertionError("GET was accepted")
        except urllib.error.HTTPError as e:
            assert e.code == 405
    assert [c.code for c in rec.calls] == ["5776"]
