"""The Python side of the benchmarks (driven by bench/driver.py).

    python runner.py cases BASE_URL CALLBACK_JSON   reads `CASE N` lines, answers `ok <ns>`
    python runner.py coldstart BASE_URL             prints `ok <ns>`: import fotp + a Client

Cases: py-verify, py-query (the binding); requests-verify/-query (requests.Session) and
httpclient-verify/-query (http.client) with the signing written in Python, as users without
fotp would; py-parse (fotp.parse_callback) against json-parse (json.loads + the same
validation + a dataclass); py-tp-T: T threads (started once, reused by every batch) sharing one fotp.Client.
"""

from __future__ import annotations

import sys
import time

if len(sys.argv) >= 2 and sys.argv[1] == "coldstart":
    # Measured before anything else is imported.
    t0 = time.perf_counter_ns()
    import fotp

    with fotp.Client(sys.argv[2], app_id="sandbox", app_secret="sandbox-secret") as _c:
        dt = time.perf_counter_ns() - t0
    print(f"ok {dt}")
    sys.exit(0)

import hashlib
import hmac
import http.client
import json
import secrets
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable

import fotp
import requests

APP_ID = "sandbox"
SECRET = b"sandbox-secret"
TOKEN = "44cadc6071214b968b3b3bb1cb5a6c24"
UA = "fotp-bench-python"


def sign_headers(body: bytes) -> dict[str, str]:
    """The hmac-sha256 scheme of the contract, in plain Python."""
    ts = str(time.time_ns() // 1_000_000)
    nonce = secrets.token_hex(16)
    msg = b"\n".join((APP_ID.encode(), ts.encode(), nonce.encode(), body))
    return {
        "Content-Type": "application/json;charset=utf-8",
        "Accept": "application/json",
        "User-Agent": UA,
        "appId": APP_ID,
        "timestamp": ts,
        "nonce": nonce,
        "sign": hmac.new(SECRET, msg, hashlib.sha256).hexdigest(),
    }


@dataclass(frozen=True, slots=True)
class PlainVerification:
    url: str
    ft_token: str
    message_id: str
    code: str


@dataclass(frozen=True, slots=True)
class PlainQuery:
    status: str
    mobile: str | None
    code: str | None


def envelope(raw: bytes) -> dict[str, Any]:
    doc = json.loads(raw)
    if not isinstance(doc, dict) or doc.get("code") != "000000":
        raise RuntimeError(f"API error: {raw[:200]!r}")
    data = doc.get("data")
    if not isinstance(data, dict):
        raise RuntimeError("no data")
    return data


def plain_verification(raw: bytes) -> PlainVerification:
    d = envelope(raw)
    return PlainVerification(d["url"], d["ftToken"], d["messageId"], d["code"])


def plain_query(raw: bytes) -> PlainQuery:
    d = envelope(raw)
    return PlainQuery(str(d["status"]), d.get("mobile"), d.get("code"))


VERIFY_BODY = json.dumps({"ftId": "2"}, separators=(",", ":")).encode()
QUERY_BODY = json.dumps({"ftToken": TOKEN}, separators=(",", ":")).encode()


class Requests:
    def __init__(self, base: str) -> None:
        self.s = requests.Session()
        self.verify_url = base + "/flash/opt/verify"
        self.query_url = base + "/flash/opt/query"

    def post(self, url: str, body: bytes) -> bytes:
        r = self.s.post(url, data=body, headers=sign_headers(body), timeout=10)
        r.raise_for_status()
        return r.content


class HttpClient:
    def __init__(self, base: str) -> None:
        u = urllib.parse.urlsplit(base)
        if u.hostname is None:
            raise ValueError(f"no host in {base!r}")
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        self.prefix = u.path

    def post(self, path: str, body: bytes) -> bytes:
        self.conn.request("POST", self.prefix + path, body, sign_headers(body))
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}")
        return data


@dataclass(frozen=True, slots=True)
class PlainCallback:
    mobile: str
    sender: str
    send_time: str
    code: str
    content: str | None = None
    deliver_time: str | None = None
    err: str | None = None


def _field(doc: dict[str, Any], name: str, required: bool) -> str | None:
    v = doc.get(name)
    if v is None:
        if required:
            raise ValueError(f"callback field `{name}` is missing")
        return None
    if isinstance(v, str):
        s = v
    elif isinstance(v, int) and not isinstance(v, bool):
        s = str(v)
    else:
        raise ValueError(f"callback field `{name}` must be a string or an integer")
    if required and not s:
        raise ValueError(f"callback field `{name}` must not be empty")
    return s


def plain_parse_callback(body: bytes) -> PlainCallback:
    """What a user writes without fotp: json.loads, the contract's checks, a dataclass."""
    if len(body) > 64 * 1024:
        raise ValueError("callback body over 64 KiB")
    doc = json.loads(body)
    if not isinstance(doc, dict):
        raise ValueError("callback body is not a JSON object")
    return PlainCallback(
        _field(doc, "mobile", True),  # type: ignore[arg-type]
        _field(doc, "sender", True),  # type: ignore[arg-type]
        _field(doc, "sendTime", True),  # type: ignore[arg-type]
        _field(doc, "code", True),  # type: ignore[arg-type]
        _field(doc, "content", False),
        _field(doc, "deliverTime", False),
        _field(doc, "err", False),
    )


def check(ok: bool, what: str) -> None:
    if not ok:
        raise RuntimeError(f"unexpected {what}")


class Workers:
    """T threads started once and reused for every batch, as a threaded server's workers are.

    Starting 16 Python threads per batch timed thread start-up (each start waits for the GIL),
    not the calls: small batches came out at a third of the steady rate.
    """

    def __init__(self, threads: int, work: Callable[[int], None]) -> None:
        self.threads, self.work = threads, work
        self.share = [0] * threads
        self.errors: list[BaseException] = []
        self.start = threading.Barrier(threads + 1)
        self.done = threading.Barrier(threads + 1)
        for i in range(threads):
            threading.Thread(target=self.loop, args=(i,), daemon=True).start()

    def loop(self, i: int) -> None:
        while True:
            self.start.wait()
            try:
                self.work(self.share[i])
            except BaseException as e:  # reported to the driver by run()
                self.errors.append(e)
            self.done.wait()

    def run(self, n: int) -> None:
        self.share = [n // self.threads + (i < n % self.threads) for i in range(self.threads)]
        self.start.wait()
        self.done.wait()
        errors, self.errors = self.errors, []
        if errors:
            raise errors[0]


def main() -> None:
    if len(sys.argv) != 4 or sys.argv[1] != "cases":
        sys.exit("usage: runner.py cases BASE_URL CALLBACK_JSON | coldstart BASE_URL")
    base = sys.argv[2]
    with open(sys.argv[3], "rb") as f:
        cb_body = f.read()
    client = fotp.Client(base, app_id=APP_ID, app_secret=SECRET.decode())
    rq = Requests(base)
    hc = HttpClient(base)

    def py_verify() -> None:
        check(client.verify("2").code == "3872", "verify code")

    def py_query() -> None:
        check(client.query(TOKEN).status is fotp.Status.SUCCESS, "query status")

    def work(share: int) -> None:
        for _ in range(share):
            py_verify()
            py_query()

    pools: dict[int, Workers] = {}

    def tp(threads: int, n: int) -> None:
        if threads not in pools:
            pools[threads] = Workers(threads, work)
        pools[threads].run(n)

    ops: dict[str, Callable[[], None]] = {
        "py-verify": py_verify,
        "py-query": py_query,
        "requests-verify": lambda: check(
            plain_verification(rq.post(rq.verify_url, VERIFY_BODY)).code == "3872", "code"
        ),
        "requests-query": lambda: check(
            plain_query(rq.post(rq.query_url, QUERY_BODY)).status == "2", "status"
        ),
        "httpclient-verify": lambda: check(
            plain_verification(hc.post("/flash/opt/verify", VERIFY_BODY)).code == "3872", "code"
        ),
        "httpclient-query": lambda: check(
            plain_query(hc.post("/flash/opt/query", QUERY_BODY)).status == "2", "status"
        ),
        "py-parse": lambda: check(fotp.parse_callback(cb_body).code == "5776", "code"),
        "json-parse": lambda: check(plain_parse_callback(cb_body).code == "5776", "code"),
    }
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            case, count = line.split()
            n = int(count)
            if case.startswith("py-tp-"):
                threads = int(case.removeprefix("py-tp-"))
                t0 = time.perf_counter_ns()
                tp(threads, n)
            else:
                op = ops[case]
                t0 = time.perf_counter_ns()
                for _ in range(n):
                    op()
            dt = time.perf_counter_ns() - t0
            print(f"ok {dt}", flush=True)
        except Exception as e:  # the driver stops and shows it
            print(f"error {line.strip()}: {type(e).__name__}: {e}", flush=True)


if __name__ == "__main__":
    main()
