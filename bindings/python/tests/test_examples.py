"""The examples in examples/python, run against the sandbox."""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import fotp
from _support import REPO, Redis, Sandbox, closed_port_url, sandbox
from conftest import require_redis

EXAMPLES = REPO / "examples" / "python"


@contextmanager
def run(
    script: str, *args: str, env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str | None]]]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FOTP_")}
    full_env.update(env)
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / script), *args],
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO / "bindings",  # not a folder the package could be imported from by accident
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def read_until(lines: queue.Queue[str | None], pattern: str, seen: list[str]) -> re.Match[str]:
    while True:
        line = lines.get(timeout=20)
        if line is None:
            raise AssertionError(f"exited before printing {pattern!r}: {''.join(seen)}")
        seen.append(line)
        m = re.search(pattern, line)
        if m:
            return m


def rest(lines: queue.Queue[str | None], seen: list[str]) -> str:
    while (line := lines.get(timeout=20)) is not None:
        seen.append(line)
    return "".join(seen)


def env_for(sb: Sandbox) -> dict[str, str]:
    return {
        "FOTP_BASE_URL": sb.base_url,
        "FOTP_APP_ID": sb.app_id,
        "FOTP_APP_SECRET": sb.app_secret,
    }


def test_pull_example(sandbox: Sandbox) -> None:
    seen: list[str] = []
    with run("pull.py", "--ft-id", "2", "--timeout", "20", env=env_for(sandbox)) as (proc, lines):
        m = read_until(lines, r"carries code (\d+); token (\w+)", seen)
        sandbox.uplink(m[2], f"code {m[1]}", mobile="8613012345678")
        out = rest(lines, seen)
        assert proc.wait(20) == 0, out
    assert "verified: 8613012345678" in out


def test_pull_example_reports_bad_config() -> None:
    seen: list[str] = []
    with run(
        "pull.py",
        env={"FOTP_BASE_URL": "http://example.com", "FOTP_APP_ID": "a", "FOTP_APP_SECRET": "s"},
    ) as (proc, lines):
        out = rest(lines, seen)
        assert proc.wait(20) == 2, out
    assert "configuration" in out


def test_push_receiver_example() -> None:
    port = closed_port_url().rsplit(":", 1)[1]
    with sandbox("--template", f"9=http://127.0.0.1:{port}/cb") as sb:
        seen: list[str] = []
        args = ("--port", port, "--verify", "9", "--once")
        with run("push_receiver.py", *args, env=env_for(sb)) as (proc, lines):
            m = read_until(lines, r"redirect/(\w+) \(code (\d+)\)", seen)
            sb.uplink(m[1], m[2], mobile="8613087654321")
            out = rest(lines, seen)
            assert proc.wait(20) == 0, out
    assert f"callback for {m[1]}: 8613087654321 sent code {m[2]} (confirmed by the platform)" in out


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_push_tracker_example(store: str, request: pytest.FixtureRequest) -> None:
    extra: tuple[str, ...] = ()
    if store == "redis":
        require_redis()
        redis: Redis = request.getfixturevalue("redis")
        extra = ("--redis", redis.url)
    port = closed_port_url().rsplit(":", 1)[1]
    with sandbox("--template", f"9=http://127.0.0.1:{port}/cb") as sb:
        seen: list[str] = []
        args = ("--port", port, "--ft-id", "9", "--timeout", "20", *extra)
        with run("push_tracker.py", *args, env=env_for(sb)) as (proc, lines):
            m = read_until(lines, r"redirect/(\w+) \(code (\d+)\)", seen)
            sb.uplink(m[1], m[2], mobile="8613087650000", deliveries=2)
            out = rest(lines, seen)
            assert proc.wait(20) == 0, out
    assert f"callback for {m[1]}: 8613087650000 sent the code" in out
    assert out.index("sent the code") < out.index("verified: 8613087650000"), out


def test_push_tracker_example_reports_redis_down() -> None:
    require_redis()
    seen: list[str] = []
    env = {"FOTP_BASE_URL": "http://127.0.0.1:1", "FOTP_APP_ID": "a", "FOTP_APP_SECRET": "s"}
    url = closed_port_url().replace("http", "redis", 1)
    with run("push_tracker.py", "--redis", url, env=env) as (proc, lines):
        out = rest(lines, seen)
        assert proc.wait(20) == 2, out
    assert "configuration: network error" in out


def test_push_asgi_example_under_uvicorn(redis: Redis) -> None:
    port = closed_port_url().rsplit(":", 1)[1]
    ns = f"asgi-example-{time.monotonic_ns()}"
    with sandbox("--template", f"9=http://127.0.0.1:{port}/cb") as sb:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("FOTP_")}
        full_env.update(env_for(sb), FOTP_EXAMPLE_REDIS=redis.url, FOTP_EXAMPLE_NS=ns)
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(EXAMPLES), "push_asgi:app",
             "--host", "127.0.0.1", "--port", port, "--log-level", "warning"],
            env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, cwd=REPO / "bindings",
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
                    break
                except OSError:
                    assert proc.poll() is None and time.monotonic() < deadline, "no uvicorn"
                    time.sleep(0.1)
            with (
                fotp.Client(sb.base_url, **sb.client_kwargs()) as client,
                fotp.Tracker.redis(redis.url, namespace=ns) as tracker,
            ):
                v = tracker.verify(client, "9")
                sb.uplink(v.ft_token, v.code, mobile="8613087651111", deliveries=2)
                r = tracker.wait(client, v.ft_token, timeout=20)
                assert r.status is fotp.Status.SUCCESS
                sb.wait_log(f"callback ftToken={v.ft_token} delivery 2 attempt 1: HTTP 200")
        finally:
            proc.terminate()
            out, _ = proc.communicate(timeout=20)
    assert out.count(f"callback for {v.ft_token}: 8613087651111 sent the code") == 1, out
