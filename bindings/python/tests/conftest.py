from __future__ import annotations

import os
import queue
from collections.abc import Iterator

import pytest

import fotp
from _support import (
    Redis,
    Sandbox,
    redis_missing,
    redis_server,
    start_sandbox,
    stop_sandbox,
    wsgi_server,
)

PUSH_FT_ID = "7"


@pytest.fixture(scope="session")
def received() -> queue.Queue[fotp.Callback]:
    """Callbacks received by the session's push receiver."""
    return queue.Queue()


@pytest.fixture(scope="session")
def receiver(received: queue.Queue[fotp.Callback]) -> Iterator[str]:
    """A wsgiref server running fotp.wsgi_callback; yields the callback URL."""
    app = fotp.wsgi_callback(received.put)
    with wsgi_server(app) as base:
        yield base + "/cb"


@pytest.fixture(scope="session")
def sandbox(receiver: str) -> Iterator[Sandbox]:
    """One sandbox for the session: template 2 (pull) and template 7 pushing to `receiver`."""
    sb = start_sandbox("--template", f"{PUSH_FT_ID}={receiver}")
    try:
        yield sb
    finally:
        stop_sandbox(sb)


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[fotp.Client]:
    with fotp.Client(sandbox.base_url, **sandbox.client_kwargs()) as c:
        yield c


def require_redis() -> None:
    """Skips the test when redis-server is missing, unless FOTP_REQUIRE_REDIS is set (then the
    test fails: CI must not silently skip the Redis tests)."""
    why = redis_missing()
    if why is None:
        return
    if os.environ.get("FOTP_REQUIRE_REDIS"):
        pytest.fail(f"FOTP_REQUIRE_REDIS is set but {why}")
    pytest.skip(f"{why}; set FOTP_REQUIRE_REDIS=1 to make this a failure")


@pytest.fixture(scope="session")
def redis() -> Iterator[Redis]:
    """A redis-server for the session (tests use their own namespaces in it)."""
    require_redis()
    with redis_server() as r:
        yield r
