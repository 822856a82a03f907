#!/usr/bin/env python3
"""Pull mode: verify, show the link, wait for the result.

Configuration comes from FOTP_BASE_URL, FOTP_APP_ID and FOTP_APP_SECRET (or the token scheme,
see the binding's README). With the sandbox:

    target/release/fotp sandbox --addr 127.0.0.1:8788      # prints the FOTP_* values
    FOTP_BASE_URL=http://127.0.0.1:8788 FOTP_APP_ID=sandbox FOTP_APP_SECRET=sandbox-secret \\
        python3 examples/python/pull.py --ft-id 2

then open the printed link in a browser and press "Send".
"""

from __future__ import annotations

import argparse
import sys

import fotp


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--ft-id", default="2", help="template id (default 2)")
    ap.add_argument("--code", help="4-6 digits (default: the platform picks)")
    ap.add_argument("--validity", type=int, help="minutes, 1-10 (default: platform default)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds to wait (default 300)")
    args = ap.parse_args()

    try:
        with fotp.Client.from_env() as client:
            v = client.verify(args.ft_id, code=args.code, validity_minutes=args.validity)
            print(f"Open this link on the phone and send the SMS:\n  {v.url}")
            print(f"(the SMS carries code {v.code}; token {v.ft_token})", flush=True)
            r = client.wait(v.ft_token, timeout=args.timeout)
    except fotp.InvalidArgument as e:
        print(f"invalid input: {e.message}", file=sys.stderr)
        return 2
    except fotp.ConfigError as e:
        print(f"configuration: {e.message}", file=sys.stderr)
        return 2
    except (fotp.NetworkError, fotp.Timeout) as e:
        print(e, file=sys.stderr)
        return 3
    except fotp.FotpError as e:
        print(e, file=sys.stderr)
        return 1
    if r.status is fotp.Status.SUCCESS:
        print(f"verified: {r.mobile} sent {r.code} at {r.send_time}")
        return 0
    print(f"not verified (status {r.raw_status})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
