#!/usr/bin/env python3
"""Push mode: a callback receiver built on fotp.wsgi_callback, served by wsgiref.

It accepts the platform's callbacks on any path, answers {"code":"0"}, and, when it knows the
verification's token, confirms the callback with the platform (a callback carries no
signature). Configuration comes from the FOTP_* environment variables. With the sandbox:

    python3 examples/python/push_receiver.py --port 8789 &
    target/release/fotp sandbox --addr 127.0.0.1:8788 --template 7=http://127.0.0.1:8789/cb
    FOTP_BASE_URL=http://127.0.0.1:8788 FOTP_APP_ID=sandbox FOTP_APP_SECRET=sandbox-secret \\
        python3 examples/python/push_receiver.py --port 8789 --verify 7

With --verify FTID the receiver first starts a verification itself and prints its link, so the
whole round trip can be watched in one terminal. wsgiref is for trying things out: in
production mount the same app in gunicorn, uWSGI or any WSGI server.
"""

from __future__ import annotations

import argparse
import sys
import threading
from wsgiref.simple_server import make_server

import fotp

# code -> ft_token of the verifications this process started (a real app keeps this in its
# database, or uses a tracker, so that any instance can match a callback).
pending: dict[str, str] = {}
lock = threading.Lock()


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8789)
    ap.add_argument("--verify", metavar="FTID", help="start one verification with this template")
    ap.add_argument("--once", action="store_true", help="exit after the first callback")
    args = ap.parse_args()

    client = fotp.Client.from_env() if args.verify or args.once else None
    done = threading.Event()

    def handle(cb: fotp.Callback) -> None:
        print(
            f"callback: {cb.mobile} sent code {cb.code} at {cb.send_time} err={cb.err}", flush=True
        )
        with lock:
            token = pending.pop(cb.code, None)
        if client is not None and token is not None:
            ok = client.confirm(cb, token)  # raises on failure: the platform will deliver again
            print(f"  confirmed with the platform: {ok}", flush=True)
        done.set()

    server = make_server(args.host, args.port, fotp.wsgi_callback(handle))
    print(f"receiving callbacks on http://{args.host}:{server.server_port}/", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        if args.verify and client is not None:
            v = client.verify(args.verify)
            with lock:
                pending[v.code] = v.ft_token
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
        if client is not None:
            client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
