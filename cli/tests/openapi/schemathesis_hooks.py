"""Schemathesis hooks: sign the platform requests as docs/CONTRACT.md section 1 says.

`hmac-sha256`: headers appId, timestamp (Unix ms), nonce (32 lowercase hex, fresh) and
sign = hex HMAC-SHA256(secret, appId + "\\n" + timestamp + "\\n" + nonce + "\\n" + body).
The signature covers the exact body bytes, which exist only once `requests` has prepared
the request, so the hook hands `requests` an auth object: `requests` runs it after the body
is final (PreparedRequest.prepare_auth comes last). Written for schemathesis 4.x, whose
`before_call(context, case, kwargs)` passes `kwargs` on to `requests`.

Credentials: FOTP_APP_ID / FOTP_APP_SECRET (the sandbox prints them at start).
"""

import hashlib
import hmac
import os
import secrets
import time

import requests
import schemathesis

APP_ID = os.environ.get("FOTP_APP_ID", "sandbox")
SECRET = os.environ.get("FOTP_APP_SECRET", "sandbox-secret").encode()


class FotpHmacAuth(requests.auth.AuthBase):
    def __call__(self, r):
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode()
        timestamp = str(time.time_ns() // 1_000_000)
        nonce = secrets.token_hex(16)
        message = f"{APP_ID}\n{timestamp}\n{nonce}\n".encode() + body
        r.headers["appId"] = APP_ID
        r.headers["timestamp"] = timestamp
        r.headers["nonce"] = nonce
        r.headers["sign"] = hmac.new(SECRET, message, hashlib.sha256).hexdigest()
        return r


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path.startswith("/flash/opt/") and case.method.upper() == "POST":
        kwargs["auth"] = FotpHmacAuth()
