#!/usr/bin/env python3
"""Push mode with a tracker: verify, receive the callback, wait for the result.

A callback names no ftToken, only the phone number and the code. A tracker gives every
verification a code no other live one holds, so the receiver (fotp.wsgi_callback with
tracker= and client=) finds the verification of each callback, confirms it with the platform
(callbacks carry no signature: a forged one is answered 503 and consumes nothing), calls the
handler once for the first genuine delivery, and wakes the waiter at once. With
--redis the codes live in Redis, so many app instances can share them (one verifies and
waits, another receives the callback). Configuration comes from the FOTP_* environment
variables. With the sandbox:

    target/release/fotp sandbox --addr 127.0.0.1:8788 --template 7=http://127.0.0.1:8789/cb
    FOTP_BASE_URL=http://127.0.0.1:8788 FOTP_APP_ID=sandbox FOTP_APP_SECRET=sandbox-secret \\
        python3 examples/python/push_tracker.py --port 8789 --ft-id 7

then open the printed link in a browser and press "Send". wsgiref is for trying things out: in
production mount the same app in gunicorn, uWSGI or any WSGI server.
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
    ap.add_argument("--port", type=int, default=8789, help="where callbacks arrive")
    ap.add_argument("--ft-id", default="7", help="template whose callbacks come here")
    ap.add_argument("--code-length", type=int, default=4, help="4-6 digits (default 4)")
    ap.add_argument("--redis", metavar="URL", help="keep the codes in Redis (redis://host:port/)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds to wait (default 300)")
    args = ap.parse_args()

    try:
        client = fotp.Client.from_env()
        tracker = fotp.Tracker.redis(args.redis) if args.redis else fotp.Tracker.memory()
    except fotp.FotpError as e:
        print(f"configuration: {e.kind.name.lower()} error: {e}", file=sys.stderr)
        return 2
    first_delivery = threading.Event()

    # Called once per verification, for its first genuine delivery (redeliveries are
    # acknowledged without calling it), or with None for a code no live verification holds.
    # If it raises, the receiver answers 500 and the next delivery is offered again.
    def handle(cb: fotp.Callback, match: fotp.Match | None) -> None:
        if match is None:
            print(f"callback for code {cb.code}: no live verification holds it", flush=True)
        else:
            print(f"callback for {match.ft_token}: {cb.mobile} sent the code", flush=True)
            first_delivery.set()

    app = fotp.wsgi_callback(handle, tracker=tracker, client=client)
    server = make_server(args.host, args.port, app)
    print(f"receiving callbacks on http://{args.host}:{server.server_port}/", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with client, tracker:
            v = tracker.verify(client, args.ft_id, code_length=args.code_length)
            print(f"open on the phone: {v.url} (code {v.code})", flush=True)
            # Returns as soon as the callback is settled; the result comes from the platform's
            # query, so a forged callback cannot fake a success. Ctrl-C interrupts it at once.
            r = tracker.wait(client, v.ft_token, timeout=args.timeout)
            # So the handler's line is printed before the result (the settlement woke us first).
            first_delivery.wait(5)
    except KeyboardInterrupt:
        return 130
    except fotp.FotpError as e:
        print(e, file=sys.stderr)
        return 3 if isinstance(e, (fotp.NetworkError, fotp.Timeout)) else 1
    finally:
        server.shutdown()
    if r.status is fotp.Status.SUCCESS:
        print(f"verified: {r.mobile}", flush=True)
        return 0
    print(f"not verified: status {r.raw_status}", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
