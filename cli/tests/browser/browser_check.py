#!/usr/bin/env python3
"""A real browser drives the sandbox's phone page.

Starts `fotp sandbox`, runs `fotp verify`, opens the redirect link in headless Chromium,
clicks "Send" with a real (DevTools) mouse event, then checks that the session queries as
success through `fotp query` and that the dashboard shows it. Screenshots of the phone page,
the page after sending and the dashboard go to the output folder.

Then the origin rules, in the same browser (names mapped to 127.0.0.1 by Chromium's host
resolver rules): the phone flow works through a LAN-style name given with --public-host; a
page on another origin that knows the token and the code cannot complete the session (a
no-cors text/plain fetch and a form post); a DNS-rebinding name cannot read the sessions.

Talks the Chrome DevTools protocol over a WebSocket (pip package `websocket-client`).
Usage: browser_check.py --fotp target/release/fotp --out target/browser
"""

import argparse
import base64
import http.server
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import websocket  # websocket-client

STEP_TIMEOUT = 30.0


def fail(msg):
    print(f"browser check FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


class CDP:
    """A minimal DevTools client: commands by id, events kept until asked for."""

    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=STEP_TIMEOUT, suppress_origin=True)
        self.next_id = 0
        self.events = []

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no answer from the browser in time")
        self.ws.settimeout(left)
        return json.loads(self.ws.recv())

    def call(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            m = self._recv(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def wait_event(self, method, session):
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            for i, m in enumerate(self.events):
                if m.get("method") == method and m.get("sessionId") == session:
                    del self.events[i]
                    return m
            m = self._recv(deadline)
            if "method" in m:
                self.events.append(m)

    def close(self):
        self.ws.close()


class Page:
    def __init__(self, cdp, session):
        self.cdp, self.session = cdp, session

    def call(self, method, params=None):
        return self.cdp.call(method, params, self.session)

    def navigate(self, url):
        self.cdp.events.clear()
        res = self.call("Page.navigate", {"url": url})
        if res.get("errorText"):
            fail(f"cannot open {url}: {res['errorText']}")
        self.cdp.wait_event("Page.loadEventFired", self.session)

    def eval(self, expression):
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in res:
            fail(f"script failed: {expression}: {res['exceptionDetails'].get('text')}")
        return res["result"].get("value")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        print(f"  screenshot {path}")

    def click(self, selector):
        rect = self.eval(
            f"JSON.stringify(document.querySelector({json.dumps(selector)}).getBoundingClientRect())"
        )
        r = json.loads(rect)
        x, y = r["x"] + r["width"] / 2, r["y"] + r["height"] / 2
        self.cdp.events.clear()
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            params = {"type": kind, "x": x, "y": y}
            if kind != "mouseMoved":
                params.update({"button": "left", "clickCount": 1})
            self.call("Input.dispatchMouseEvent", params)


class CallbackReceiver(http.server.BaseHTTPRequestHandler):
    """The app's push endpoint: records each callback body and acknowledges it. Its GET
    serves the "attacker" pages of the cross-site check (another origin)."""

    bodies = queue.Queue()
    pages = {}

    def do_GET(self):
        page = self.pages.get(self.path.split("?")[0])
        body = (page or "not found").encode()
        self.send_response(200 if page else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.bodies.put(body)
        ack = b'{"code":"0"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(ack)))
        self.end_headers()
        self.wfile.write(ack)

    def log_message(self, *args):
        pass


def read_lines(stream, q):
    for line in iter(stream.readline, ""):
        q.put(line)
    q.put(None)


def expect_line(q, prefix, what, proc):
    deadline = time.monotonic() + STEP_TIMEOUT
    while True:
        try:
            line = q.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            fail(f"{what} did not start in time")
        if line is None:
            fail(f"{what} exited early (status {proc.wait()})")
        if line.startswith(prefix) or prefix in line:
            return line.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fotp", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = ap.parse_args()
    fotp = os.path.abspath(args.fotp)
    os.makedirs(args.out, exist_ok=True)
    if not os.access(args.chromium, os.X_OK):
        fail(f"no Chromium at {args.chromium} (set CHROMIUM or install the Debian package chromium)")

    procs = []
    profile = tempfile.mkdtemp(prefix="fotp-chromium-")
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CallbackReceiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    callback_url = f"http://127.0.0.1:{receiver.server_address[1]}/fotp/callback"
    try:
        # 1. The sandbox (template 2 pushes to the receiver), its settings from its first
        #    stdout lines.
        sandbox = subprocess.Popen(
            [fotp, "sandbox", "--addr", "127.0.0.1:0", "--template", f"2={callback_url}",
             "--public-host", "phone.test"],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        )
        procs.append(sandbox)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOTP_")}
        for _ in range(3):
            key, _, value = sandbox.stdout.readline().strip().partition("=")
            env[key] = value
        base = env.get("FOTP_BASE_URL") or fail("the sandbox printed no FOTP_BASE_URL")
        # Its log (drained, so it never fills the pipe) shows what it refused and why.
        sandbox_log = queue.Queue()
        threading.Thread(target=read_lines, args=(sandbox.stdout, sandbox_log), daemon=True).start()
        print(f"  sandbox at {base}")

        # 2. verify through the command line.
        out = subprocess.run([fotp, "verify", "--ft-id", "2", "--json"], env=env,
                             capture_output=True, text=True, timeout=STEP_TIMEOUT)
        if out.returncode != 0:
            fail(f"fotp verify: {out.stdout} {out.stderr}")
        v = json.loads(out.stdout)
        token, code, url = v["ftToken"], v["code"], v["url"]

        # 3. Headless Chromium, driven over DevTools.
        chromium = subprocess.Popen(
            [args.chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--no-default-browser-check", "--disable-dev-shm-usage",
             f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "--remote-allow-origins=*",
             # A LAN-style name, an attacker's site and a DNS-rebinding name, all on loopback.
             "--host-resolver-rules=MAP phone.test 127.0.0.1, MAP evil.test 127.0.0.1, "
             "MAP rebind.test 127.0.0.1",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        )
        procs.append(chromium)
        q = queue.Queue()
        threading.Thread(target=read_lines, args=(chromium.stderr, q), daemon=True).start()
        line = expect_line(q, "DevTools listening on ", "Chromium", chromium)
        ws_url = line[line.index("ws://"):]
        cdp = CDP(ws_url)
        target = cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(cdp, session)
        page.call("Page.enable")
        page.call("Emulation.setDeviceMetricsOverride",
                  {"width": 412, "height": 860, "deviceScaleFactor": 1, "mobile": True})

        # 4. The phone page: the SMS with the code, the number, an sms: link, a Send button.
        page.navigate(url)
        sms = page.eval("document.getElementById('sms').textContent")
        if code not in (sms or ""):
            fail(f"the SMS text {sms!r} lacks the code {code}")
        if page.eval("document.getElementById('sender').textContent") != "1008611":
            fail("the page does not name the number 1008611")
        link = page.eval("document.getElementById('sms-link').getAttribute('href')")
        if not (link or "").startswith("sms:1008611?body="):
            fail(f"bad sms: link {link!r}")
        page.screenshot(os.path.join(args.out, "redirect.png"))

        # 5. Click "Send" like a user; the form posts and a new page loads.
        page.click("#send")
        cdp.wait_event("Page.loadEventFired", session)
        status = page.eval("document.getElementById('result') && document.getElementById('result').dataset.status")
        if status != "2":
            fail(f"after Send the page shows status {status!r}, expected '2'")
        page.screenshot(os.path.join(args.out, "sent.png"))

        # 6. The session queries as success (pull through the command line).
        out = subprocess.run([fotp, "query", token, "--json"], env=env,
                             capture_output=True, text=True, timeout=STEP_TIMEOUT)
        r = json.loads(out.stdout)
        if out.returncode != 0 or r.get("status") != "2" or r.get("code") != code:
            fail(f"fotp query after Send: exit {out.returncode}, {out.stdout}")
        print(f"  query: status {r['status']}, mobile {r.get('mobile')}, code {r.get('code')}")

        # 7. ... and the result was pushed to the callback address.
        try:
            cb = json.loads(CallbackReceiver.bodies.get(timeout=STEP_TIMEOUT))
        except queue.Empty:
            fail("no callback arrived")
        if cb.get("code") != code or cb.get("sender") != "1008611" or "err" in cb:
            fail(f"unexpected callback {cb}")
        print(f"  callback: mobile {cb['mobile']}, code {cb['code']}")

        # 8. The dashboard shows it, with the acknowledged callback (a desktop-sized window this time).
        page.call("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 720, "deviceScaleFactor": 1, "mobile": False})
        # The sandbox records the attempt just after the receiver answered: reload until the
        # page shows it (bounded).
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            page.navigate(base + "/")
            row = page.eval(
                f"(() => {{ const r = document.querySelector('tr.session[data-token=\"{token}\"]');"
                " return r ? [r.dataset.status, r.textContent] : null; })()"
            )
            if (row and '{"code":"0"}' in row[1]) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if not row or row[0] != "2" or "success" not in row[1] or '{"code":"0"}' not in row[1]:
            fail(f"the dashboard does not show the session as success with its callback: {row!r}")
        page.screenshot(os.path.join(args.out, "dashboard.png"))

        port = base.rsplit(":", 1)[1]

        def new_session():
            out = subprocess.run([fotp, "verify", "--ft-id", "2", "--json"], env=env,
                                 capture_output=True, text=True, timeout=STEP_TIMEOUT)
            if out.returncode != 0:
                fail(f"fotp verify: {out.stdout} {out.stderr}")
            return json.loads(out.stdout)

        def status_of(token):
            out = subprocess.run([fotp, "query", token, "--json"], env=env,
                                 capture_output=True, text=True, timeout=STEP_TIMEOUT)
            return json.loads(out.stdout).get("status")

        # 9. From another device on the LAN: the sandbox answers to names given with
        #    --public-host (here phone.test, mapped to 127.0.0.1); the page's Send passes the
        #    same-origin check through that name.
        page.call("Emulation.setDeviceMetricsOverride",
                  {"width": 412, "height": 860, "deviceScaleFactor": 1, "mobile": True})
        lan = new_session()
        page.navigate(f"http://phone.test:{port}/flash/opt/redirect/{lan['ftToken']}")
        page.click("#send")
        cdp.wait_event("Page.loadEventFired", session)
        status = page.eval("document.getElementById('result') && document.getElementById('result').dataset.status")
        if status != "2" or status_of(lan["ftToken"]) != "2":
            fail(f"the phone flow through --public-host phone.test ended with {status!r}")
        print("  phone page through a --public-host name: success")

        # 10. A page on another origin that knows a live token and its code tries to complete
        #     the session: a no-cors text/plain fetch (no preflight) and a form post.
        victim = new_session()
        evil = f"http://evil.test:{receiver.server_address[1]}"
        uplink = json.dumps({"ftToken": victim["ftToken"], "mobile": "8613800138000",
                             "content": victim["code"]})
        CallbackReceiver.pages["/fetch"] = (
            "<!DOCTYPE html><title>loading</title><script>"
            f"fetch('{base}/sandbox/uplink', {{method: 'POST', mode: 'no-cors', "
            f"headers: {{'Content-Type': 'text/plain'}}, body: {json.dumps(uplink)}}})"
            ".then(() => document.title = 'done', () => document.title = 'done');</script>")
        CallbackReceiver.pages["/form"] = (
            "<!DOCTYPE html><body onload=\"document.forms[0].submit()\">"
            f"<form method=post action='{base}/sandbox/send/{victim['ftToken']}'>"
            "<input name=mobile value=8613800138000>"
            f"<input name=content value={victim['code']}></form>")
        page.navigate(evil + "/fetch")
        deadline = time.monotonic() + STEP_TIMEOUT
        while page.eval("document.title") != "done":
            if time.monotonic() > deadline:
                fail("the cross-site fetch never settled")
            time.sleep(0.05)
        page.navigate(evil + "/form")
        cdp.wait_event("Page.loadEventFired", session)
        refused = page.eval("document.body.innerText")
        # Refused by Sec-Fetch-Site or by Origin, whichever the browser sends.
        if not any(w in (refused or "") for w in ("another site", "not this sandbox's origin")):
            fail(f"the cross-site form post was not refused: {refused!r}")
        page.screenshot(os.path.join(args.out, "cross-site-refused.png"))
        if status_of(victim["ftToken"]) != "0":
            fail("a page on another origin completed a session")
        # Both reached the sandbox and were refused by it (not blocked by the browser alone).
        for what in ("refused POST /sandbox/uplink", f"refused POST /sandbox/send/{victim['ftToken']}"):
            expect_line(sandbox_log, what, f"the sandbox's log line {what!r}", sandbox)
        print("  cross-site fetch and form post: refused, the session is still processing")

        # 11. DNS rebinding: rebind.test now resolves to the sandbox; its pages are same-origin
        #     with it, but the sandbox refuses its Host.
        page.navigate(f"http://rebind.test:{port}/sandbox/sessions")
        text = page.eval("document.body.innerText") or ""
        if victim["ftToken"] in text or "does not name this sandbox" not in text:
            fail(f"the rebinding name read the sessions: {text[:200]!r}")
        print("  DNS-rebinding Host: refused")
        cdp.close()
        print("browser check passed")
    finally:
        receiver.shutdown()
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
