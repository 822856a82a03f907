"""The app that test_servers.py serves with gunicorn (WSGI) and uvicorn (ASGI).

Made at import, before the server forks its workers (gunicorn --preload), as apps are: a Redis
tracker and a client, both used once already. Every handler call appends one line
"pid ft_token code" to the file FOTP_TEST_OUT (O_APPEND: lines from several processes do not
interleave).
"""

from __future__ import annotations

import os

import fotp

tracker = fotp.Tracker.redis(os.environ["FOTP_TEST_REDIS"], namespace=os.environ["FOTP_TEST_NS"])
client = fotp.Client.from_env()
_OUT = os.environ["FOTP_TEST_OUT"]

# Used before the fork: the store's and the HTTP client's pools hold open connections.
assert tracker.match(fotp.Callback("8613000000000", "1008611", "t", "1234")) is None
try:
    client.query("never-issued")
except fotp.ApiError:
    pass


def _record(cb: fotp.Callback, m: fotp.Match | None) -> None:
    line = f"{os.getpid()} {m.ft_token if m else '-'} {cb.code}\n".encode()
    fd = os.open(_OUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


async def _arecord(cb: fotp.Callback, m: fotp.Match | None) -> None:
    _record(cb, m)


app = fotp.wsgi_callback(_record, tracker=tracker, client=client)
asgi_app = fotp.asgi_callback(
    _arecord, tracker=fotp.AsyncTracker(tracker), client=fotp.AsyncClient.wrap(client)
)
