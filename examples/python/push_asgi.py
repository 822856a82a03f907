"""Push mode under an ASGI server: fotp.asgi_callback with a tracker and a client.

An ASGI app (no framework needed; with FastAPI or Starlette, `app.mount("/cb", app)`). Every
instance settles each callback: the tracker finds the verification holding the code, the
client confirms the callback with the platform, and the handler runs once per verification,
for the first genuine delivery (forgeries get 503 and consume nothing; redeliveries are
acknowledged; a handler that raises gets 500 and is offered the next delivery). Configuration
comes from the FOTP_* environment variables; FOTP_EXAMPLE_REDIS (a redis:// URL) shares the
codes with the instances that verify and wait (namespace FOTP_EXAMPLE_NS, default "fotp").
With the sandbox and a local Redis:

    target/release/fotp sandbox --addr 127.0.0.1:8788 --template 7=http://127.0.0.1:8789/cb
    FOTP_BASE_URL=http://127.0.0.1:8788 FOTP_APP_ID=sandbox FOTP_APP_SECRET=sandbox-secret \\
    FOTP_EXAMPLE_REDIS=redis://127.0.0.1:6379/ \\
        python3 -m uvicorn --app-dir examples/python push_asgi:app --port 8789
"""

from __future__ import annotations

import os

import fotp

_redis = os.environ.get("FOTP_EXAMPLE_REDIS")
tracker = fotp.AsyncTracker(
    fotp.Tracker.redis(_redis, namespace=os.environ.get("FOTP_EXAMPLE_NS", "fotp"))
    if _redis
    else fotp.Tracker.memory()
)
client = fotp.AsyncClient.from_env()


async def handle(cb: fotp.Callback, match: fotp.Match | None) -> None:
    if match is None:
        print(f"callback for code {cb.code}: no live verification holds it", flush=True)
        return
    # Confirmed by the platform already: record the result (idempotently, in a database).
    print(f"callback for {match.ft_token}: {cb.mobile} sent the code", flush=True)


app = fotp.asgi_callback(handle, tracker=tracker, client=client)
