"""Test helpers: the sandbox process, small local HTTP servers, RSS."""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

REPO = Path(__file__).resolve().parents[3]
FOTP_BIN = Path(os.environ.get("FOTP_BIN") or REPO / "target" / "release" / "fotp")
HEADER = REPO / "include" / "fotp.h"
DATA = REPO / "tests" / "data"


# Loopback only: never through a proxy that HTTP_PROXY may name on a developer's machine.
urlopen = urllib.request.build_opener(urllib.request.ProxyHandler({})).open


@dataclass
class Sandbox:
    proc: subprocess.Popen[str]
    base_url: str
    app_id: str
    app_secret: str
    log: deque[str] = field(default_factory=deque)
    logged: threading.Condition = field(default_factory=threading.Condition)

    def client_kwargs(self) -> dict[str, Any]:
        return {"app_id": self.app_id, "app_secret": self.app_secret}

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urlopen(req, timeout=10) as r:
            out: dict[str, Any] = json.loads(r.read())
            return out

    def uplink(
        self, ft_token: str, content: str, mobile: str = "8613800138000", **extra: Any
    ) -> None:
        answer = self.post(
            "/sandbox/uplink", {"ftToken": ft_token, "mobile": mobile, "content": content, **extra}
        )
        assert answer.get("code") == "000000", answer

    def wait_log(self, needle: str, timeout: float = 15) -> str:
        """Waits until the sandbox logged a line containing `needle`; returns that line."""
        found: list[str] = []

        def seen() -> bool:
            found[:] = [line for line in list(self.log) if needle in line]
            return bool(found)

        with self.logged:
            if not self.logged.wait_for(seen, timeout):
                raise AssertionError(f"the sandbox did not log {needle!r}: {''.join(self.log)}")
        return found[0]

    def sessions(self) -> list[dict[str, Any]]:
        with urlopen(self.base_url + "/sandbox/sessions", timeout=10) as r:
            out: list[dict[str, Any]] = json.loads(r.read())["sessions"]
            return out


def start_sandbox(*args: str) -> Sandbox:
    """Starts `fotp sandbox` on a free loopback port and reads its first stdout lines."""
    if not FOTP_BIN.is_file():
        raise RuntimeError(f"{FOTP_BIN} is missing: run `cargo build --release` first")
    # The sandbox reads FOTP_APP_ID etc. too: start it with its defaults whatever the caller set.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOTP_")}
    proc = subprocess.Popen(
        [str(FOTP_BIN), "sandbox", "--addr", "127.0.0.1:0", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    log: deque[str] = deque(maxlen=500)  # the last lines, for failure messages
    logged = threading.Condition()

    # Drains stdout for the whole run so the sandbox never blocks on a full pipe.
    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with logged:
                log.append(line)
                logged.notify_all()
            if not started.is_set():
                lines.put(line)
        lines.put(None)

    started = threading.Event()
    threading.Thread(target=drain, daemon=True).start()
    found: dict[str, str] = {}
    while len(found) < 3:
        try:
            line = lines.get(timeout=15)
        except queue.Empty:
            proc.kill()
            raise RuntimeError(
                f"the sandbox printed no configuration in 15 s: {list(log)}"
            ) from None
        if line is None:
            raise RuntimeError(f"the sandbox exited early ({proc.wait()}): {''.join(log)}")
        key, sep, value = line.strip().partition("=")
        if sep and key.startswith("FOTP_"):
            found[key] = value
    started.set()  # later lines are only kept in `log`
    return Sandbox(
        proc, found["FOTP_BASE_URL"], found["FOTP_APP_ID"], found["FOTP_APP_SECRET"], log, logged
    )


def stop_sandbox(sb: Sandbox) -> None:
    sb.proc.terminate()
    try:
        sb.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        sb.proc.kill()
        sb.proc.wait()


@contextmanager
def sandbox(*args: str) -> Iterator[Sandbox]:
    sb = start_sandbox(*args)
    try:
        yield sb
    finally:
        stop_sandbox(sb)


class _QuietWSGIHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWSGIServer(WSGIServer):
    # One thread per request so a slow handler never blocks the sandbox's retries.
    request_queue_size = 64
    daemon_threads = True

    def process_request(self, request: Any, client_address: Any) -> None:
        threading.Thread(
            target=self._serve_one, args=(request, client_address), daemon=True
        ).start()

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


@contextmanager
def wsgi_server(app: Any) -> Iterator[str]:
    """Serves a WSGI app with wsgiref on a free loopback port; yields its base URL."""
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietWSGIHandler
    )
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        t.join(10)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connect at once in the concurrency tests


Handler = Callable[[BaseHTTPRequestHandler, bytes], tuple[int, dict[str, str], bytes]]


@contextmanager
def http_server(respond: Handler) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A local HTTP server answering every POST with respond(request, body).

    Yields its base URL and the list of request headers seen (lower-case names).
    """
    seen: list[dict[str, str]] = []

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n)
            seen.append({k.lower(): v for k, v in self.headers.items()})
            status, headers, out = respond(self, body)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), H)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        t.join(10)


def envelope(
    data: dict[str, Any] | None = None, code: str = "000000", message: str = "ok"
) -> bytes:
    return json.dumps(
        {"code": code, "success": code == "000000", "message": message, "data": data}
    ).encode()


@contextmanager
def silent_socket() -> Iterator[str]:
    """A listening socket that never answers; yields its URL.

    The kernel completes the TCP handshake for queued connections, so a client connects, sends
    its request and then waits for an answer that never comes.
    """
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(128)
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        srv.close()


def closed_port_url() -> str:
    """The URL of a loopback port that nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


T = TypeVar("T")


def eventually(probe: Callable[[], T], timeout: float = 10) -> T:
    """Re-checks observable state until probe() is truthy (for state with no event to await)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            assert value, f"{probe.__name__} stayed falsy for {timeout} s"
            return value
        time.sleep(0.01)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# --- Redis -----------------------------------------------------------------------------------


@dataclass
class Redis:
    proc: subprocess.Popen[str]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def redis_missing() -> str | None:
    """Why Redis tests cannot run (redis-server is not installed), or None."""
    if shutil.which("redis-server"):
        return None
    return "redis-server is not installed (Debian package redis-server)"


def start_redis() -> Redis:
    """A private redis-server on an ephemeral loopback port, nothing saved to disk."""
    for _ in range(5):
        port = int(closed_port_url().rsplit(":", 1)[1])
        proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--loglevel",
                "notice",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        seen: list[str] = []
        # Ready when it says so; EOF means it exited (e.g. another process took the port).
        for line in proc.stdout:
            seen.append(line)
            if "Ready to accept connections" in line:
                # Keep reading its log so it never blocks on a full pipe.
                threading.Thread(target=proc.stdout.read, daemon=True).start()
                return Redis(proc, port)
        proc.wait(10)
    raise RuntimeError(f"redis-server did not start on any of 5 ports: {''.join(seen)}")


@contextmanager
def redis_server() -> Iterator[Redis]:
    r = start_redis()
    try:
        yield r
    finally:
        r.stop()


# --- a proxy that shows the queries --------------------------------------------------------


@contextmanager
def query_spy(target: str) -> Iterator[tuple[str, queue.Queue[str]]]:
    """A loopback HTTP proxy to `target` (the sandbox); yields its URL and a queue receiving
    the status of every query answer that passes through ("0", "1", "2", or "error").

    The sign covers appId, timestamp, nonce and body only, so forwarding keeps it valid.
    """
    statuses: queue.Queue[str] = queue.Queue()

    def respond(req: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        headers = {k: v for k, v in req.headers.items() if k.lower() not in ("host", "connection")}
        fwd = urllib.request.Request(target + req.path, data=body, headers=headers, method="POST")
        try:
            with urlopen(fwd, timeout=10) as r:
                status, out = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, out = e.code, e.read()
        if req.path.endswith("/flash/opt/query"):
            try:
                statuses.put(str(json.loads(out)["data"]["status"]))
            except (ValueError, KeyError, TypeError):
                statuses.put("error")
        return status, {"Content-Type": "application/json"}, out

    with http_server(respond) as (url, _):
        yield url, statuses
