"""Time limits (per attempt, per call, huge values), per-client TLS roots and proxy."""

from __future__ import annotations

import asyncio
import http.server
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme

import fotp
from _support import Sandbox, envelope, http_server, silent_socket

HUGE = [1e12, 2.0**64, 1e308, float("inf"), float("nan"), 4_294_968.0]


# --- time limits ---------------------------------------------------------------------------


def test_per_call_timeout_bounds_the_whole_call() -> None:
    # Each attempt may take 5 s and there are 3: the per-call limit bounds them all.
    with (
        silent_socket() as url,
        fotp.Client(url, app_id="a", app_secret="s", timeout=5, retries=2) as c,
    ):
        for call in (
            lambda: c.query("a" * 32, timeout=0.4),
            lambda: c.verify("2", timeout=0.4),
            lambda: c.wait("a" * 32, timeout=0.4),
        ):
            start = time.monotonic()
            with pytest.raises(fotp.Timeout):
                call()
            assert 0.3 < time.monotonic() - start < 1.5


def test_call_timeout_setting_bounds_every_call() -> None:
    with (
        silent_socket() as url,
        fotp.Client(url, app_id="a", app_secret="s", timeout=5, call_timeout=0.4) as c,
    ):
        start = time.monotonic()
        with pytest.raises(fotp.Timeout):
            c.query("a" * 32)
        assert 0.3 < time.monotonic() - start < 1.5


def test_stalled_attempt_is_retried_within_the_call() -> None:
    # The first query attempt gets no answer; the per-attempt limit ends it, the retry succeeds.
    attempts: list[float] = []
    stall = threading.Event()

    def respond(req: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            stall.wait(10)
        return 200, {}, envelope({"status": "0"})

    try:
        with (
            http_server(respond) as (url, _),
            fotp.Client(url, app_id="a", app_secret="s", timeout=0.5, retries=2) as c,
        ):
            start = time.monotonic()
            r = c.query("a" * 32, timeout=5)
            took = time.monotonic() - start
            stall.set()
    finally:
        stall.set()
    assert r.status is fotp.Status.PROCESSING and len(attempts) == 2
    assert 0.4 < took < 3, took


@pytest.mark.parametrize("value", HUGE)
def test_huge_durations_are_clear_errors(value: float, sandbox: Sandbox) -> None:
    kw = sandbox.client_kwargs()
    for name in ("timeout", "connect_timeout", "call_timeout"):
        bad: dict[str, Any] = {**kw, name: value}
        with pytest.raises(fotp.ConfigError, match=name):
            fotp.Client(sandbox.base_url, **bad)
        with pytest.raises(fotp.ConfigError, match=name):
            fotp.AsyncClient(sandbox.base_url, **bad)
    with fotp.Client(sandbox.base_url, **kw) as c, fotp.Tracker.memory() as t:
        v = c.verify("2")
        for call in (
            lambda: c.verify("2", timeout=value),
            lambda: c.query(v.ft_token, timeout=value),
            lambda: c.wait(v.ft_token, timeout=value),
            lambda: c.confirm(fotp.Callback("1", "2", "3", "1234"), v.ft_token, timeout=value),
            lambda: t.verify(c, "2", timeout=value),
            lambda: t.wait(c, v.ft_token, timeout=value),
            lambda: t.settle(c, fotp.Callback("1", "2", "3", "1234"), timeout=value),
        ):
            with pytest.raises(fotp.InvalidArgument, match="timeout"):
                call()

    async def main() -> None:
        async with fotp.AsyncClient(sandbox.base_url, **kw) as ac:
            with pytest.raises(fotp.InvalidArgument, match="timeout"):
                await ac.query(v.ft_token, timeout=value)
            with pytest.raises(fotp.InvalidArgument, match="timeout"):
                await ac.wait(v.ft_token, timeout=value)

    asyncio.run(main())


def test_largest_duration_is_accepted(sandbox: Sandbox) -> None:
    most = 4_294_967.0  # the largest number of whole milliseconds a uint32_t holds, in s
    with fotp.Client(
        sandbox.base_url, **sandbox.client_kwargs(), timeout=most, call_timeout=most
    ) as c:
        v = c.verify("2", timeout=most)
        assert c.query(v.ft_token, timeout=most).status is fotp.Status.PROCESSING


# --- TLS roots ----------------------------------------------------------------------------


@contextmanager
def tls_server(cert: Any) -> Iterator[str]:
    """An HTTPS server for `localhost` answering every POST with a "processing" envelope."""

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            out = envelope({"status": "0"})
            self.send_response(200)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    server.daemon_threads = True
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"https://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_ca_bundle_per_client(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    with tls_server(cert) as url:
        # Two clients in one process: only the one given the bundle trusts the server.
        with (
            fotp.Client(url, app_id="a", app_secret="s", ca_bundle=pem) as trusting,
            fotp.Client(url, app_id="a", app_secret="s") as plain,
        ):
            assert trusting.query("a" * 32).status is fotp.Status.PROCESSING
            with pytest.raises(fotp.NetworkError):
                plain.query("a" * 32)
            assert trusting.query("a" * 32).status is fotp.Status.PROCESSING
    with pytest.raises(fotp.ConfigError, match="ca"):
        fotp.Client(url, app_id="a", app_secret="s", ca_bundle=tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(fotp.ConfigError):
        fotp.Client(url, app_id="a", app_secret="s", ca_bundle=str(tmp_path / "junk.pem"))
    with pytest.raises(TypeError, match="ca_bundle"):
        fotp.Client(url, app_id="a", app_secret="s", ca_bundle=1)  # type: ignore[arg-type]


# --- proxy ---------------------------------------------------------------------------------


@contextmanager
def connect_proxy() -> Iterator[tuple[str, list[str]]]:
    """An HTTP CONNECT proxy on loopback; yields its URL and the targets it tunnelled to."""
    targets: list[str] = []
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve(conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                conn.close()
                return
            head += chunk
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            conn.close()
            return
        targets.append(target)
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)), timeout=10)
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()
        pipe(conn, upstream)

    def accept() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}", targets
    finally:
        srv.close()


def test_proxy_per_client(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    kw = sandbox.client_kwargs()
    port = sandbox.base_url.rsplit(":", 1)[1].split("/")[0]
    with connect_proxy() as (proxy_url, targets):
        # An explicit proxy is used for every request (a loopback base URL included).
        with fotp.Client(sandbox.base_url, **kw, proxy=proxy_url) as c:
            assert c.verify("2").code
        assert targets and all(t.endswith(f":{port}") for t in targets)
        # proxy=False: direct, whatever the environment names.
        targets.clear()
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
        monkeypatch.setenv("NO_PROXY", "")
        with fotp.Client(sandbox.base_url, **kw, proxy=False) as direct:
            assert direct.verify("2").code
        assert targets == []
    with pytest.raises(fotp.ConfigError, match="proxy"):
        fotp.Client(sandbox.base_url, **kw, proxy="ftp://proxy.example")
    with pytest.raises(TypeError, match="proxy"):
        fotp.Client(sandbox.base_url, **kw, proxy=True)  # type: ignore[arg-type]
