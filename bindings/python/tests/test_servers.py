"""The receivers under real servers: gunicorn pre-forking 4 workers (--preload, so the tracker
and the client are made before the fork) and uvicorn, with the sandbox pushing each callback
three times and forgeries posted first."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

import fotp
from _support import DATA, Redis, closed_port_url, sandbox, urlopen

HERE = Path(__file__).resolve().parent
SESSIONS = 12


def _wait_listening(proc: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"the server exited ({proc.returncode}): {err}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the server did not listen within 30 s")


def _post(url: str, body: bytes) -> int:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urlopen(req, timeout=20) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code


def _body(code: str, mobile: str) -> bytes:
    seed = json.loads((DATA / "callback.json").read_bytes())
    seed.update(code=code, mobile=mobile)
    return json.dumps(seed).encode()


@pytest.mark.parametrize("server", ["gunicorn", "uvicorn"])
def test_receiver_under_a_real_server(server: str, redis: Redis, tmp_path: Path) -> None:
    port = int(closed_port_url().rsplit(":", 1)[1])
    out = tmp_path / "handled.txt"
    ns = f"server-{server}-{time.monotonic_ns()}"
    if server == "gunicorn":
        cmd = [
            sys.executable, "-m", "gunicorn", "--preload", "-w", "4",
            "-b", f"127.0.0.1:{port}", "--log-level", "warning", "receiver_app:app",
        ]  # fmt: skip
    else:
        cmd = [
            sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "receiver_app:asgi_app",
        ]  # fmt: skip
    with sandbox("--template", f"9=http://127.0.0.1:{port}/cb") as sb:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOTP_")}
        env.update(
            FOTP_BASE_URL=sb.base_url,
            FOTP_APP_ID=sb.app_id,
            FOTP_APP_SECRET=sb.app_secret,
            FOTP_TEST_REDIS=redis.url,
            FOTP_TEST_NS=ns,
            FOTP_TEST_OUT=str(out),
        )
        proc = subprocess.Popen(
            cmd, env=env, cwd=HERE, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            _wait_listening(proc, port)
            with (
                fotp.Client(sb.base_url, **sb.client_kwargs()) as client,
                fotp.Tracker.redis(redis.url, namespace=ns) as tracker,
            ):
                vs = [tracker.verify(client, "9") for _ in range(SESSIONS)]
                url = f"http://127.0.0.1:{port}/cb"
                # Forgeries for every live code, before the SMS: refused, nothing consumed.
                for v in vs:
                    assert _post(url, _body(v.code, "8613000000000")) == 503
                mobiles = {v.ft_token: f"86139{i:08d}" for i, v in enumerate(vs)}
                for v in vs:
                    sb.uplink(v.ft_token, v.code, mobile=mobiles[v.ft_token], deliveries=3)
                # The result comes from the platform, woken by the receiver's settlement.
                r = tracker.wait(client, vs[-1].ft_token, timeout=20)
                assert r.status is fotp.Status.SUCCESS
                for v in vs:
                    line = sb.wait_log(f"callback ftToken={v.ft_token} delivery 3 attempt", 30)
                    assert "accepted" in line and "not accepted" not in line, line
        finally:
            proc.terminate()
            try:
                _, err = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
    # Each genuine delivery handled exactly once, by whichever worker got it.
    lines = out.read_text().splitlines()
    handled = Counter(line.split()[1] for line in lines)
    assert handled == Counter({v.ft_token: 1 for v in vs}), (lines, err)
    for line in lines:
        _, token, code = line.split()
        assert code == next(v.code for v in vs if v.ft_token == token)
    assert not re.search(r"Traceback|ERROR", err), err
