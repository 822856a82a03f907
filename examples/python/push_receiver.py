#!/usr/bin/env python3
"""Push mode: a callback receiver built on fotp.wsgi_callback with a tracker and a client.

A callback carries no signature and names no ftToken, only the phone number and the code. The
receiver settles each one: the tracker finds the verification that holds the code, and the
client confirms the callback with the platform (a query: success, same code, same mobile).
The handler runs once per verification, for the first genuine delivery; a forged callback is
answered 503 and consumes nothing, a redelivery is acknowledged without the handler, and a
handler that raises gets 500 so that the platform delivers again. Configuration comes from the
FOTP_* environment variables. With the sandbox:

    target/release/fotp sandbox --addr 127.0.0.1:8788 --template 7=http://127.0.0.1:8789/cb
    FOTP_BASE_URL=http://127.0.0.1:8788 FOTP_APP_ID=sandbox FOTP_APP_SECRET=sandbox-secret \\
        python3 examples/python/push_receiver.py --port 8789 --verify 7

With --verify FTID the receiver first starts a verification itself and prints its link, so the
whole round trip can be watched in one terminal. wsgiref is for trying things out: in
production mount the same app in gunicorn, uWSGI or any WSGI server (with --preload or
uWSGI's default, the tracker and client made before the fork are safe to use in every worker),
or use fotp.asgi_callback, its ASGI twin, in uvicorn or a FastAPI/Starlette app. With several
instances, give them one Redis tracker (fotp.Tracker.redis).
"""

from __future__ import annotations

import argparse
import sys
import threading
from wsgiref.simple_server import make_server

import fotp


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8789)
    ap.add_argument("--verify", metavar="FTID", help="start one verification with this template")
    ap.add_argument("--once", action="store_true", help="exit after the first verification")
    args = ap.parse_args()

    try:
        client = fotp.Client.from_env()
    except fotp.FotpError as e:
        print(f"configuration: {e.kind.name.lower()} error: {e}", file=sys.stderr)
        return 2
    tracker = fotp.Tracker.memory()
    done = threading.Event()

    def handle(cb: fotp.Callback, match: fotp.Match | None) -> None:
        if match is None:
            print(f"callback for code {cb.code}: no live verification holds it", flush=True)
            return
        # Confirmed by the platform already: record the result (idempotently, in a database).
        print(
            f"callback for {match.ft_token}: {cb.mobile} sent code {cb.code} "
            f"(confirmed by the platform)",
            flush=True,
        )
        done.set()

    app = fotp.wsgi_callback(handle, tracker=tracker, client=client)
    server = make_server(args.host, args.port, app)
    print(f"receiving callbacks on http://{args.host}:{server.server_port}/", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with client, tracker:
            if args.verify:
                v = tracker.verify(client, args.verify)
                print(f"open on the phone: {v.url} (code {v.code})", flush=True)
            if args.once:
                done.wait()
            else:
                threading.Event().wait()  # until Ctrl-C
    except KeyboardInterrupt:
        pass
    except fotp.FotpError as e:
        print(e, file=sys.stderr)
        return 1
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
