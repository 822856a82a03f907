"""libfotp's events as logging records: a query retried after a 503 with Retry-After: 1, a
refused callback; no secret, signature, code or full mobile number in any record."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from _support import http_server
from test_wsgi import call

import fotp

TOKEN = "44cadc6071214b968b3b3bb1cb5a6c24"
SECRET = "py-logging-secret-7d1"
MOBILE = "6285273203675"
CODE = "5777"
QUERY_OK = json.dumps(
    {
        "code": "000000",
        "success": True,
        "message": "ok",
        "data": {"status": "2", "mobile": MOBILE, "code": CODE, "sender": "1008611"},
    }
).encode()


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(
            f"{r.levelname} {r.name} {r.getMessage()} {getattr(r, 'fotp', {})}" for r in self.records
        )


@pytest.fixture
def capture() -> Iterator[Capture]:
    logger = logging.getLogger("fotp")
    handler = Capture()
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    fotp.sync_log_level()
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
        fotp.sync_log_level()


def test_a_retried_query_is_logged_attempt_by_attempt(capture: Capture) -> None:
    calls = []

    def respond(_: BaseHTTPRequestHandler, __: bytes) -> tuple[int, dict[str, str], bytes]:
        calls.append(1)
        if len(calls) == 1:
            return 503, {"Retry-After": "1"}, b"busy"
        return 200, {"Content-Type": "application/json"}, QUERY_OK

    with (
        http_server(respond) as (url, seen),
        fotp.Client(url, app_id="py-app", app_secret=SECRET) as c,
    ):
        r = c.query(TOKEN)
    assert r.code == CODE
    http = [rec for rec in capture.records if rec.name == "fotp.http"]
    assert len(http) == 2, capture.text()
    first, second = (getattr(rec, "fotp") for rec in http)
    assert all(rec.levelno == logging.INFO for rec in http)
    assert first["op"] == "query" and first["method"] == "POST"
    assert first["path"] == "/flash/opt/query"
    assert (first["attempt"], first["status"], first["retry_in_ms"]) == (1, 503, 1000)
    assert (second["attempt"], second["status"]) == (2, 200)
    assert "retry_in_ms" not in second and isinstance(second["elapsed_ms"], int)
    assert "retrying in 1000 ms" in http[0].getMessage()
    # Nothing secret: the app secret, every signing header value, the code, the mobile number.
    text = capture.text()
    forbidden = [SECRET, CODE, MOBILE]
    for headers in seen:
        forbidden += [
            v
            for k, v in headers.items()
            if k not in ("content-type", "accept", "host", "user-agent", "content-length")
        ]
    assert len(forbidden) > 5
    for f in forbidden:
        assert f not in text, f"{f!r} in the records:\n{text}"


def test_a_refused_callback_is_logged_without_its_body(capture: Capture) -> None:
    with pytest.raises(fotp.DecodeError):
        fotp.parse_callback(b'{"mobile":"8615711666132","code":["5776"]}')
    refused = [rec for rec in capture.records if rec.name == "fotp.callback"]
    assert len(refused) == 1 and getattr(refused[0], "fotp")["event"] == "refused"
    assert "8615711666132" not in capture.text() and "5776" not in capture.text()


def test_a_disabled_level_reaches_neither_python_nor_the_formatting(capture: Capture) -> None:
    logging.getLogger("fotp").setLevel(logging.WARNING)
    fotp.sync_log_level()
    with pytest.raises(fotp.DecodeError):
        fotp.parse_callback(b"{")
    assert capture.records == []
    # A child logger more verbose than its parent turns the library's level up again.
    logging.getLogger("fotp.callback").setLevel(logging.DEBUG)
    try:
        fotp.sync_log_level()
        with pytest.raises(fotp.DecodeError):
            fotp.parse_callback(b"{")
        assert [r.name for r in capture.records] == ["fotp.callback"]
    finally:
        logging.getLogger("fotp.callback").setLevel(logging.NOTSET)


def test_level_changes_are_picked_up_by_calls_within_a_second(capture: Capture) -> None:
    logging.getLogger("fotp").setLevel(logging.ERROR)
    fotp.sync_log_level()

    def respond(_: BaseHTTPRequestHandler, __: bytes) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/json"}, QUERY_OK

    with http_server(respond) as (url, _), fotp.Client(url, app_id="a", app_secret="s") as c:
        c.query(TOKEN)
        assert capture.records == []
        logging.getLogger("fotp").setLevel(logging.INFO)
        time.sleep(1.1)
        c.query(TOKEN)
    assert [r.name for r in capture.records] == ["fotp.http"], capture.text()


def test_the_wsgi_receiver_logs_what_it_refuses(capture: Capture) -> None:
    app = fotp.wsgi_callback(lambda cb: None)
    assert call(app, method="GET")[0] == "405 Method Not Allowed"
    assert call(app, body=b'{"mobile":"8615711666132","code":["5776"]}')[0] == "400 Bad Request"
    refused = [getattr(r, "fotp") for r in capture.records if r.name == "fotp.callback"]
    assert [f["event"] for f in refused] == ["refused", "refused"], capture.text()
    assert "method GET" in refused[0]["reason"]
    assert "8615711666132" not in capture.text() and "5776" not in capture.text()


def test_calls_on_many_threads_each_log_their_attempt(capture: Capture) -> None:
    import threading

    def respond(_: BaseHTTPRequestHandler, __: bytes) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/json"}, QUERY_OK

    with http_server(respond) as (url, _), fotp.Client(url, app_id="a", app_secret="s") as c:

        def work() -> None:
            for _ in range(10):
                c.query(TOKEN)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    http = [r for r in capture.records if r.name == "fotp.http"]
    assert len(http) == 80
    assert {getattr(r, "fotp")["status"] for r in http} == {200}
