"""Runs the fotp benchmarks and rewrites BENCHMARKS.md. Started by scripts/bench (which builds
everything first); see BENCHMARKS.md for what is measured and how.

Every runner (Rust, C, Python, Go) is a long-lived process that answers `CASE N` with the
time N operations took. The driver runs each case of a group once per round, in turn
(A B C A B C ...), so that drift of the machine hits every case alike; medians and ranges are
over the rounds, and ratios are the median of the per-round ratios of the two cases.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import select
import socket
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import scaling

COMMAND_TIMEOUT = 120.0  # seconds for one batch: a hung runner fails the run, never blocks it


class BenchError(Exception):
    pass


class Proc:
    """A started process, killed at teardown (by its own handle, never by name)."""

    live: list["Proc"] = []

    def __init__(self, argv: Sequence[str], name: str, env: dict[str, str] | None = None,
                 stdin: bool = True) -> None:
        self.name = name
        self.p = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=sys.stderr,
            env=env,
            bufsize=0,
        )
        Proc.live.append(self)

    def readline(self, timeout: float = COMMAND_TIMEOUT) -> str:
        assert self.p.stdout is not None
        ready, _, _ = select.select([self.p.stdout], [], [], timeout)
        if not ready:
            raise BenchError(f"{self.name}: no answer within {timeout:.0f} s")
        line = self.p.stdout.readline().decode(errors="replace")
        if not line:
            raise BenchError(f"{self.name} exited (status {self.p.wait()}); see its stderr above")
        return line.strip()

    def expect_ready(self) -> None:
        line = self.readline(60)
        if line != "ready":
            raise BenchError(f"{self.name}: expected `ready`, got {line!r}")

    def run(self, case: str, n: int) -> float:
        """Runs `case` n times; returns the elapsed seconds."""
        assert self.p.stdin is not None
        self.p.stdin.write(f"{case} {n}\n".encode())
        self.p.stdin.flush()
        line = self.readline()
        if not line.startswith("ok "):
            raise BenchError(f"{self.name}: {line}")
        return int(line.split()[1]) / 1e9

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        if self in Proc.live:
            Proc.live.remove(self)

    @classmethod
    def stop_all(cls) -> None:
        for p in list(cls.live):
            p.stop()


@dataclass
class Case:
    runner: str  # rust, c, python, go
    case: str  # the runner's case name
    label: str  # shown in the tables
    samples: list[float] = field(default_factory=list)  # seconds per operation, one per round
    n: int = 0  # operations per batch

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def start_server(argv: Sequence[str], name: str, env: dict[str, str] | None = None) -> tuple[Proc, str]:
    p = Proc(argv, name, env=env, stdin=False)
    # The servers print FOTP_BASE_URL=... first (the sandbox then its credentials).
    line = p.readline(30)
    if not line.startswith("FOTP_BASE_URL="):
        raise BenchError(f"{name}: expected FOTP_BASE_URL=..., got {line!r}")
    return p, line.split("=", 1)[1]


def interleave(cases: list[Case], runners: dict[str, Proc], rounds: int, batch_s: float,
               progress: str) -> None:
    """Calibrates each case, then runs `rounds` rounds of one batch per case, in turn."""
    for c in cases:
        proc = runners[c.runner]
        # A discarded warm-up first: a cold first batch (new connections, threads, caches) would
        # calibrate the batch too small, and tiny batches of the thread cases time thread start-up.
        proc.run(c.case, 16)
        n, dt = 16, 0.0
        while dt < batch_s / 4:
            dt = proc.run(c.case, n)
            if dt < batch_s / 4:
                n *= 4
        c.n = max(4, int(n * batch_s / max(dt, 1e-9)))
    for r in range(rounds):
        print(f"  {progress}: round {r + 1}/{rounds}", file=sys.stderr, flush=True)
        # Rotate the order every round so no case always follows the same neighbour.
        k = r % len(cases)
        for c in cases[k:] + cases[:k]:
            c.samples.append(runners[c.runner].run(c.case, c.n) / c.n)


def paired_ratios(a: Case, b: Case) -> list[float]:
    return [x / y for x, y in zip(a.samples, b.samples)]


def fmt_us(s: float) -> str:
    return f"{s * 1e6:.1f}"


def fmt_ns(s: float) -> str:
    return f"{s * 1e9:.0f}"


def fmt_rate(r: float) -> str:
    if r >= 1e6:
        return f"{r / 1e6:.2f} M"
    if r >= 1e3:
        return f"{r / 1e3:.1f} k"
    return f"{r:.0f}"


def sh(argv: Sequence[str]) -> str:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine_info(root: Path) -> list[str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lock = (root / "Cargo.lock").read_text()

    def locked(name: str) -> str:
        m = re.search(rf'name = "{name}"\nversion = "([^"]+)"', lock)
        return m.group(1) if m else "?"

    py_requests = sh([sys.executable, "-c", "import requests; print(requests.__version__)"])
    return [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores; kernel {platform.release()}",
        f"- {sh(['rustc', '--version'])}; {sh(['go', 'version'])}; Python {platform.python_version()}"
        f" (requests {py_requests}); {sh(['gcc', '--version']).splitlines()[0] if shutil.which('gcc') else 'gcc ?'}",
        f"- fotp {locked('fotp')}, ureq {locked('ureq')}, axum {locked('axum')},"
        f" hyper {locked('hyper')}, tokio {locked('tokio')}, serde_json {locked('serde_json')}",
    ]


def load_note() -> str:
    la = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    top = sh(["ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers"]).splitlines()[:4]
    busy = ", ".join(
        f"{p.split(None, 1)[1]} {p.split()[0]}%" for p in top if len(p.split(None, 1)) == 2
    )
    return f"load average {la}; busiest processes: {busy or '?'}"


class Bench:
    def __init__(self, root: Path, quick: bool) -> None:
        self.root = root
        self.rel = root / "target" / "release"
        self.bindir = root / "target" / "bench"
        self.quick = quick
        # The pinned cases share the first CPU this process may use (CPU 0 on most machines).
        self.cpu = str(min(os.sched_getaffinity(0)))
        self.callback = str(root / "tests" / "data" / "callback.json")
        self.out: list[str] = []
        self.targets: list[tuple[str, str, str, bool | None]] = []
        self.extra: list[str] = []  # ratios that explain the targets
        # Plots: (path relative to the report, function writing the PNG there).
        self.figures: list[tuple[str, Callable[[Path], None]]] = []
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("FOTP_"):
                del env[k]  # a developer's settings must not leak in
        env["FOTP_LIBRARY"] = str(self.rel / "libfotp.so")
        env["PYTHONPATH"] = str(root / "bindings" / "python" / "src")
        self.env = env

    def pin(self, cpu: str | None) -> list[str]:
        return ["taskset", "-c", cpu] if cpu is not None else []

    def runners(self, base: str, cpu: str | None, which: Sequence[str]) -> dict[str, Proc]:
        argv = {
            "rust": [str(self.rel / "fotp-bench"), "cases", base],
            "c": [str(self.bindir / "fotp-bench-c"), "cases", base, self.callback],
            "python": [sys.executable, str(self.root / "bench" / "python" / "runner.py"), "cases",
                       base, self.callback],
            "go": [str(self.bindir / "fotp-bench-go"), "cases", base, self.callback],
        }
        procs = {w: Proc(self.pin(cpu) + argv[w], f"{w} runner", env=self.env) for w in which}
        for p in procs.values():
            p.expect_ready()
        return procs

    def target(self, what: str, value: str, goal: str, ok: bool | None) -> None:
        self.targets.append((what, value, goal, ok))

    # 1 (and the ureq time-out trap)
    def latency(self) -> None:
        rounds, batch = (5, 0.02) if self.quick else (31, 0.06)
        server, base = start_server(
            ["taskset", "-c", self.cpu, str(self.rel / "fotp-bench-server"), "--nodelay"], "server")
        procs = self.runners(base, self.cpu, ["rust", "c", "python", "go"])
        groups: dict[str, list[Case]] = {}
        for op in ("verify", "query"):
            groups[op] = [
                Case("rust", f"ureq-{op}", "raw ureq, same headers, no SDK logic (floor)"),
                Case("rust", f"fotp-{op}", "fotp, Rust API"),
                Case("c", f"c-{op}", "fotp, C API (libfotp.so)"),
                Case("go", f"go-{op}", "fotp, Go binding"),
                Case("go", f"nethttp-{op}", "Go net/http + signing in Go"),
                Case("python", f"py-{op}", "fotp, Python binding"),
                Case("python", f"httpclient-{op}", "Python http.client + signing in Python"),
                Case("python", f"requests-{op}", "Python requests.Session + signing in Python"),
            ]
        groups["verify"][1:1] = [
            Case("rust", "ureq-signed-verify",
                 "raw ureq, signed per call (timestamp, OS nonce, HMAC), no SDK logic"),
            Case("rust", "ureq-limits-verify",
                 "raw ureq + fotp's per-call time limits (IP-literal resolver)"),
            Case("rust", "ureq-timeout-verify",
                 "raw ureq with a global time-out (ureq's default resolver)"),
            Case("rust", "ureq-composite-verify",
                 "raw ureq + limits + fotp's signer and decoder called by hand"),
        ]
        groups["verify"].insert(7, Case("go", "cgo-verify", "C API called straight from Go (cgo)"))
        groups["verify"].insert(7, Case("c", "c-verify-logged",
                                        "fotp, C API, a logger at info (set and removed around each call)"))
        try:
            for op, cases in groups.items():
                interleave(cases, procs, rounds, batch, f"latency {op}")
        finally:
            for p in procs.values():
                p.stop()
            server.stop()
        self.out += [
            "## 1. Per-call latency (sequential, one keep-alive connection)",
            "",
            f"Client and server both pinned to CPU {self.cpu} (`taskset -c {self.cpu}`); the server is",
            "`fotp-bench-server --nodelay` (axum, one thread) answering the seed's sample bodies.",
            f"{rounds} interleaved rounds; a sample is the mean of one batch. Ratios: median (min-max)",
            "of the per-round ratios against the floor.",
            "",
        ]
        for op, cases in groups.items():
            floor = cases[0]
            self.out += [f"### {op}", "",
                         "| client | median µs | min-max µs | × floor | calls per batch |",
                         "|---|---:|---:|---:|---:|"]
            for c in cases:
                rs = paired_ratios(c, floor)
                self.out.append(
                    f"| {c.label} | {fmt_us(c.median)} | {fmt_us(min(c.samples))}-"
                    f"{fmt_us(max(c.samples))} | {statistics.median(rs):.2f} "
                    f"({min(rs):.2f}-{max(rs):.2f}) | {c.n} |")
            self.out.append("")
        v = {c.case: c for c in groups["verify"]}

        def ratio(a: str, b: str) -> tuple[float, str]:
            rs = paired_ratios(v[a], v[b])
            m = statistics.median(rs)
            return m, f"{m:.3f}x (rounds {min(rs):.3f}-{max(rs):.3f})"

        for a, b, label, goal in [
            ("fotp-verify", "ureq-verify", "Rust API verify / raw ureq", 1.05),
            ("c-verify", "ureq-verify", "C API verify / raw ureq", 1.08),
            ("py-verify", "requests-verify", "Python verify / requests.Session", 0.10),
            ("py-verify", "httpclient-verify", "Python verify / http.client", 0.30),
        ]:
            m, text = ratio(a, b)
            self.target(label, text, f"≤ {goal:.2f}x", m <= goal)
            if b == "ureq-verify":
                # The second reading: a floor that sends valid (signed, fresh-nonce) requests.
                m, text = ratio(a, "ureq-signed-verify")
                self.target(label.replace("raw ureq", "signed raw ureq"), text,
                            f"≤ {goal:.2f}x", m <= goal)
        # Go: the median at most net/http's, and no round more than 15% behind it (issue 17).
        rs = paired_ratios(v["go-verify"], v["nethttp-verify"])
        m = statistics.median(rs)
        self.target("Go verify / net/http", f"{m:.3f}x (rounds {min(rs):.3f}-{max(rs):.3f})",
                    "≤ 1.00x, no round above 1.15x", m <= 1.00 and max(rs) <= 1.15)
        for a, b, label in [
            ("ureq-timeout-verify", "ureq-verify",
             "ureq's time-out trap: raw ureq with a global time-out and its default resolver "
             "(a lookup thread per request) / raw ureq"),
            ("fotp-verify", "ureq-timeout-verify",
             "fotp (IP-literal resolver, so no lookup thread) / that trap"),
            ("ureq-limits-verify", "ureq-verify",
             "raw ureq with fotp's per-call time limits / raw ureq (what the limits alone cost)"),
            ("fotp-verify", "ureq-limits-verify", "fotp Rust verify / raw ureq with the same limits"),
            ("fotp-verify", "ureq-composite-verify",
             "fotp Rust verify / raw ureq + limits + fotp's signer and decoder by hand"),
            ("go-verify", "cgo-verify", "Go binding verify / the C API called straight from Go"),
            ("cgo-verify", "c-verify", "C API from Go (cgo) / the same from C"),
            ("c-verify-logged", "c-verify",
             "C API verify with a logger at info / with logging off (the disabled path is the "
             "other rows)"),
        ]:
            self.extra.append(f"- {label}: {ratio(a, b)[1]}")

    # 1b (issue 17): system calls per verify, counted by strace. Its own phase, kept small.
    def syscalls(self) -> None:
        """Counts the system calls of N keep-alive verifies (raw ureq floor, fotp Rust, fotp C)
        with `strace -c -f`: each runner runs a warm-up batch, then the counted batch; a second
        run with the warm-up alone is subtracted, so start-up and connecting are left out."""
        strace = shutil.which("strace")
        if strace is None:
            raise BenchError("the syscalls phase needs strace (apt-get install strace)")
        n, warm = (500, 100) if self.quick else (2000, 200)
        server, base = start_server([str(self.rel / "fotp-bench-server"), "--nodelay"], "server")
        runs = [
            ("rust", "ureq-verify", "raw ureq, same headers, no SDK logic (floor)"),
            ("rust", "fotp-verify", "fotp, Rust API"),
            ("c", "c-verify", "fotp, C API (libfotp.so)"),
        ]
        argv = {
            "rust": [str(self.rel / "fotp-bench"), "cases", base],
            "c": [str(self.bindir / "fotp-bench-c"), "cases", base, self.callback],
        }

        def counted(runner: str, case: str, batches: list[int]) -> dict[str, tuple[int, int]]:
            with tempfile.NamedTemporaryFile(prefix="fotp-strace-", suffix=".txt") as out:
                cmds = "".join(f"{case} {b}\n" for b in batches)
                res = subprocess.run([strace, "-c", "-f", "-o", out.name, *argv[runner]],
                                     input=cmds, capture_output=True, text=True, env=self.env,
                                     timeout=COMMAND_TIMEOUT)
                answers = res.stdout.split()
                if res.returncode != 0 or answers.count("ok") != len(batches):
                    raise BenchError(f"strace {runner} {case}: {res.stdout}{res.stderr}")
                counts: dict[str, tuple[int, int]] = {}
                for line in Path(out.name).read_text().splitlines():
                    f = line.split()
                    # "% time seconds usecs/call calls [errors] syscall"; skip headers and total.
                    if len(f) in (5, 6) and f[3].isdigit() and f[-1] != "total":
                        counts[f[-1]] = (int(f[3]), int(f[4]) if len(f) == 6 else 0)
                return counts

        per_call: dict[str, dict[str, tuple[float, float]]] = {}
        try:
            for runner, case, _ in runs:
                print(f"  syscalls: {case}", file=sys.stderr, flush=True)
                both = counted(runner, case, [warm, n])
                alone = counted(runner, case, [warm])
                per_call[case] = {
                    k: ((c - alone.get(k, (0, 0))[0]) / n, (e - alone.get(k, (0, 0))[1]) / n)
                    for k, (c, e) in both.items()
                }
        finally:
            server.stop()
        self.out += [
            "## 1b. System calls per verify (`strace -c -f`)",
            "",
            f"{n} sequential verifies on one keep-alive connection (`fotp-bench-server --nodelay`),",
            f"after {warm} to warm up; a run of the warm-up alone is subtracted, so the counts are",
            "the steady state of one call. In brackets: calls that failed (EAGAIN of a probe).",
            "",
            "| client | system calls per call | which |",
            "|---|---:|---|",
        ]
        totals = {}
        for _, case, label in runs:
            calls = {k: v for k, v in per_call[case].items() if round(v[0], 2) > 0}
            totals[case] = sum(c for c, _ in calls.values())
            which = ", ".join(
                f"{k} {round(c, 2):g}" + (f" ({round(e, 2):g})" if round(e, 2) else "")
                for k, (c, e) in sorted(calls.items(), key=lambda kv: -kv[1][0]))
            self.out.append(f"| {label} | {totals[case]:.2f} | {which} |")
        self.out.append("")
        f, u = totals["fotp-verify"], totals["ureq-verify"]
        self.target("Rust verify system calls per call / raw ureq's (strace -c)",
                    f"{f:.2f} / {u:.2f}", "≤ raw ureq's", f <= u)

    # 3
    def parsing(self) -> None:
        rounds, batch = (5, 0.02) if self.quick else (31, 0.06)
        procs = self.runners("http://127.0.0.1:9", self.cpu, ["rust", "c", "python", "go"])
        cases = [
            Case("rust", "fotp-parse", "fotp, Rust `parse_callback`"),
            Case("rust", "serde-parse", "Rust serde_json into a struct + validation"),
            Case("rust", "floor-scan", "floor: serde_json reads the body, keeps nothing (IgnoredAny)"),
            Case("rust", "floor-utf8", "floor: the UTF-8 check of the body (`str::from_utf8`)"),
            Case("c", "c-parse", "fotp, C `fotp_callback_parse` + free"),
            Case("go", "go-parse", "fotp, Go `ParseCallback`"),
            Case("go", "json-parse", "Go encoding/json into a struct + validation"),
            Case("python", "py-parse", "fotp, Python `parse_callback`"),
            Case("python", "json-parse", "Python json.loads + validation + dataclass"),
        ]
        try:
            interleave(cases, procs, rounds, batch, "callback parsing")
        finally:
            for p in procs.values():
                p.stop()
        self.out += [
            "## 3. Callback parsing (tests/data/callback.json, 346 bytes, emoji and escapes)",
            "",
            f"One core (`taskset -c {self.cpu}`), no server. Each language's own way checks the same rules:",
            "string-or-integer fields, four required non-empty, optional `null` = absent.",
            "",
            "| parser | median ns | min-max ns | per second (median) |",
            "|---|---:|---:|---:|",
        ]
        for c in cases:
            self.out.append(f"| {c.label} | {fmt_ns(c.median)} | {fmt_ns(min(c.samples))}-"
                            f"{fmt_ns(max(c.samples))} | {fmt_rate(1 / c.median)} |")
        self.out.append("")
        by = {(c.runner, c.case): c for c in cases}
        for a, b, label, goal in [
            (("go", "go-parse"), ("go", "json-parse"), "Go ParseCallback / encoding/json", 0.75),
            (("python", "py-parse"), ("python", "json-parse"),
             "Python parse_callback / json.loads + validation + dataclass", 0.70),
        ]:
            rs = paired_ratios(by[a], by[b])
            m = statistics.median(rs)
            self.target(label, f"{m:.3f}x (rounds {min(rs):.3f}-{max(rs):.3f})", f"≤ {goal:.2f}x",
                        m <= goal)
        parts = [
            Case("rust", "part-sign", "sign (timestamp, nonce from the OS, HMAC, 4 headers)"),
            Case("rust", "part-body", "verify body (validation + JSON)"),
            Case("rust", "part-decode-verify", "decode the verify answer (envelope + data)"),
            Case("rust", "part-decode-query", "decode the query answer (envelope + data)"),
        ]
        procs = self.runners("http://127.0.0.1:9", self.cpu, ["rust"])
        try:
            interleave(parts, procs, max(3, rounds // 2), batch, "parts of a call")
        finally:
            procs["rust"].stop()
        self.out += [
            "The work fotp adds to the HTTP exchange (Rust, CPU only, one core):",
            "",
            "| part | median ns | min-max ns |",
            "|---|---:|---:|",
        ]
        for c in parts:
            self.out.append(f"| {c.label} | {fmt_ns(c.median)} | {fmt_ns(min(c.samples))}-"
                            f"{fmt_ns(max(c.samples))} |")
        self.out.append("")
        rust = by[("rust", "fotp-parse")]
        rate = 1 / rust.median
        rs = paired_ratios(rust, by[("rust", "floor-scan")])
        self.extra.append(f"- fotp Rust parse_callback / serde_json's scan alone (IgnoredAny), one "
                          f"core: {statistics.median(rs):.3f}x (rounds {min(rs):.3f}-{max(rs):.3f});"
                          f" the scan alone runs at {1 / by[('rust', 'floor-scan')].median / 1e6:.2f} M/s")
        self.target("Rust parse_callback, one core",
                    f"{rate / 1e6:.2f} M/s (rounds {1 / max(rust.samples) / 1e6:.2f}-"
                    f"{1 / min(rust.samples) / 1e6:.2f})", "≥ 4 M/s", rate >= 4e6)

    def start_cluster(self, redis_bin: str) -> tuple[list[Proc], Path, str] | None:
        """Three primaries (no replicas) joined by `redis-cli --cluster create`; None without
        redis-cli. Returns the nodes, their directory and the cluster URL."""
        cli = shutil.which("redis-cli")
        if not cli:
            return None
        ports = [7790, 7791, 7792]  # fixed: a node's cluster bus is its port + 10000
        work = Path(tempfile.mkdtemp(prefix="fotp-bench-cluster-"))
        nodes = []
        for p in ports:
            d = work / str(p)
            d.mkdir()
            nodes.append(Proc([redis_bin, "--port", str(p), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(d), "--cluster-enabled", "yes",
                               "--cluster-config-file", str(d / "nodes.conf")],
                              f"cluster node {p}", stdin=False))
        for n in nodes:
            while "Ready to accept connections" not in n.readline(30):
                pass
        subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
                        "--cluster-yes"], check=True, stdout=subprocess.DEVNULL, timeout=60)
        deadline = time.monotonic() + 60
        while not all("cluster_state:ok" in subprocess.run(
                [cli, "-p", str(p), "cluster", "info"], capture_output=True, text=True,
                timeout=10).stdout for p in ports):
            if time.monotonic() > deadline:
                raise BenchError("the benchmark cluster never reached state ok")
            time.sleep(0.1)
        return nodes, work, "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)

    # 6 (issue 8; Redis Cluster rows: issue 16)
    def tracker(self) -> None:
        rounds, batch = (3, 0.02) if self.quick else (15, 0.06)
        redis_bin = shutil.which("redis-server")
        redis = None
        env = dict(self.env)
        if redis_bin:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            redis = Proc([redis_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no"], "redis-server", stdin=False)
            deadline = time.monotonic() + 30
            while "Ready to accept connections" not in redis.readline(30):
                if time.monotonic() > deadline:
                    raise BenchError("redis-server did not start")
            env["FOTP_BENCH_REDIS"] = f"redis://127.0.0.1:{port}/"
        cluster = self.start_cluster(redis_bin) if redis_bin else None
        cases = [
            Case("rust", "tracker-alloc-memory", "allocate a code (reserve + release), memory"),
            Case("rust", "tracker-match-memory", "match a callback, memory"),
            Case("rust", "tracker-settle-memory",
                 "settle a callback (lookup + confirming query + settle), memory"),
        ]
        if redis:
            cases += [
                Case("rust", "tracker-alloc-redis", "allocate a code (reserve + release), Redis"),
                Case("rust", "tracker-match-redis", "match a callback, Redis"),
                Case("rust", "tracker-settle-redis",
                     "settle a callback (lookup + confirming query + settle), Redis"),
            ]
        if cluster:
            cases += [
                Case("rust-cluster", "tracker-alloc-redis",
                     "allocate a code (reserve + release), Redis Cluster"),
                Case("rust-cluster", "tracker-settle-redis",
                     "settle a callback (lookup + confirming query + settle), Redis Cluster"),
            ]
        # settle queries the platform: the benchmarks' fixed-answer server plays it.
        server, base = start_server(
            ["taskset", "-c", self.cpu, str(self.rel / "fotp-bench-server"), "--nodelay"], "server")
        saved, self.env = self.env, env
        try:
            procs = self.runners(base, self.cpu, ["rust"])
            if cluster:
                self.env = dict(env, FOTP_BENCH_REDIS=cluster[2])
                procs["rust-cluster"] = self.runners(base, self.cpu, ["rust"])["rust"]
        finally:
            self.env = saved
        try:
            interleave(cases, procs, rounds, batch, "tracker")
        finally:
            for p in procs.values():
                p.stop()
            server.stop()
            if redis:
                redis.stop()
            if cluster:
                for n in cluster[0]:
                    n.stop()
                shutil.rmtree(cluster[1], ignore_errors=True)
        self.out += [
            "## 6. Tracker: allocating codes, matching and settling callbacks",
            "",
            f"Rust API, one core (`taskset -c {self.cpu}`); 6-digit codes; Redis is a local",
            "`redis-server` on loopback (one round trip per operation: each is one Lua script).",
            "Settling is a lookup (Redis: a GET), the confirming query (to the benchmarks'",
            "fixed-answer server on the same core, keep-alive) and the settle script; after the",
            "first call each is a duplicate, the same path as the first. Redis Cluster: three",
            "primaries on loopback (`redis-cli --cluster create`); a namespace's keys share one",
            "hash slot, so each operation is still one script on one primary, reached through",
            "the cluster client.",
            "",
            "| operation | median µs | min-max µs | per second (median) |",
            "|---|---:|---:|---:|",
        ]
        for c in cases:
            self.out.append(f"| {c.label} | {fmt_us(c.median)} | {fmt_us(min(c.samples))}-"
                            f"{fmt_us(max(c.samples))} | {fmt_rate(1 / c.median)} |")
        if not redis:
            self.out.append("")
            self.out.append("(redis-server was not found: the Redis rows were not measured.)")
        elif not cluster:
            self.out.append("")
            self.out.append("(redis-cli was not found: the Redis Cluster rows were not measured.)")
        self.out.append("")

    # 7 (issue 17: the tracker up to 400k live sessions; bench/scaling.py)
    def scaling(self) -> None:
        try:
            scaling.run(self)
        except scaling.Failed as e:
            raise BenchError(str(e)) from e

    # 2
    def throughput(self) -> None:
        rounds, batch = (3, 0.05) if self.quick else (9, 0.25)
        server, base = start_server(
            [str(self.rel / "fotp-bench-server"), "--threads", "2", "--nodelay"], "server")
        procs = self.runners(base, None, ["rust", "python", "go"])
        cases = []
        for t in (1, 4, 16):
            cases += [Case("rust", f"tp-fotp-{t}", f"Rust, {t} thread(s)"),
                      Case("go", f"go-tp-{t}", f"Go, {t} goroutine(s)"),
                      Case("go", f"nethttp-tp-{t}",
                           f"Go without fotp (net/http + signing), {t} goroutine(s)"),
                      Case("python", f"py-tp-{t}", f"Python, {t} thread(s)")]
        try:
            interleave(cases, procs, rounds, batch, "throughput")
        finally:
            for p in procs.values():
                p.stop()
            server.stop()
        self.out += [
            "## 2. Throughput: threads / goroutines sharing one client",
            "",
            "Not pinned (client and server share both cores); server: `fotp-bench-server",
            "--threads 2 --nodelay`. One operation = a verify then a query (2 calls); the table",
            "counts calls per second. \"Go without fotp\" is what a Go user would write instead:",
            "net/http (one `http.Client`, 64 idle connections per host) with the signing in Go.",
            "",
            "| client | calls/s (median) | min-max calls/s | × 1 thread |",
            "|---|---:|---:|---:|",
        ]
        by = {c.case: c for c in cases}
        for c in cases:
            one = by[re.sub(r"-\d+$", "-1", c.case)]
            rate = 2 / c.median
            self.out.append(f"| {c.label} | {rate:,.0f} | {2 / max(c.samples):,.0f}-"
                            f"{2 / min(c.samples):,.0f} | {one.median / c.median:.2f} |")
        self.out.append("")
        # Per-round ratios of calls/s (a ratio of times, inverted): interleaving pairs the rounds.
        for a, b, label, goal in [
            ("go-tp-16", "tp-fotp-16", "Go 16 goroutines / Rust 16 threads (calls/s)", 0.80),
            ("py-tp-16", "py-tp-4", "Python 16 threads / Python 4 threads (calls/s)", 1.00),
        ]:
            rs = [1 / r for r in paired_ratios(by[a], by[b])]
            m = statistics.median(rs)
            self.target(label, f"{m:.3f}x (rounds {min(rs):.3f}-{max(rs):.3f})", f"≥ {goal:.2f}x",
                        m >= goal)
        # What Go itself reaches on the same machine: the ceiling the Go16/Rust16 goal meets.
        for a, b, label in [
            ("go-tp-16", "nethttp-tp-16", "Go binding / Go net/http + signing, 16 goroutines"),
            ("nethttp-tp-16", "tp-fotp-16", "Go net/http + signing, 16 goroutines / Rust 16 threads"),
        ]:
            rs = [1 / r for r in paired_ratios(by[a], by[b])]
            self.extra.append(f"- {label} (calls/s): {statistics.median(rs):.3f}x "
                              f"(rounds {min(rs):.3f}-{max(rs):.3f})")

    # 4
    def coldstart(self) -> None:
        rounds = 3 if self.quick else 15
        base = "http://127.0.0.1:9"
        argv = {
            "Rust (static, in-process: config + client)": [str(self.rel / "fotp-bench"),
                                                           "coldstart", base],
            "C (dlopen libfotp.so + config + client)": [
                str(self.bindir / "fotp-bench-c-coldstart"), str(self.rel / "libfotp.so"), base],
            "Go (static libfotp.a; NewClient)": [str(self.bindir / "fotp-bench-go"), "coldstart",
                                                 base],
            "Python (`import fotp` + Client)": [sys.executable,
                                                str(self.root / "bench" / "python" / "runner.py"),
                                                "coldstart", base],
        }
        inner: dict[str, list[float]] = {k: [] for k in argv}
        whole: dict[str, list[float]] = {k: [] for k in argv}
        for r in range(rounds):
            print(f"  cold start: round {r + 1}/{rounds}", file=sys.stderr, flush=True)
            for k, a in argv.items():
                t = time.perf_counter()
                res = subprocess.run(a, capture_output=True, text=True, env=self.env, timeout=60)
                whole[k].append(time.perf_counter() - t)
                if res.returncode != 0 or not res.stdout.startswith("ok "):
                    raise BenchError(f"cold start {k}: {res.stdout}{res.stderr}")
                inner[k].append(int(res.stdout.split()[1]) / 1e9)
        self.out += [
            "## 4. Cold start and library size",
            "",
            f"A fresh process each time, {rounds} rounds interleaved. \"Load + client\" is measured",
            "inside the process; \"whole process\" is exec to exit as the driver sees it.",
            "",
            "| what | load + client, median ms | min-max ms | whole process, median ms |",
            "|---|---:|---:|---:|",
        ]
        for k in argv:
            self.out.append(f"| {k} | {statistics.median(inner[k]) * 1e3:.3f} | "
                            f"{min(inner[k]) * 1e3:.3f}-{max(inner[k]) * 1e3:.3f} | "
                            f"{statistics.median(whole[k]) * 1e3:.1f} |")
        self.out.append("")
        # "As installed": stripped the way `make install` (and the Go release step) strip them.
        with tempfile.TemporaryDirectory() as tmp:
            rows = []
            for name, flags, target_mb in [
                ("libfotp.so", ["--strip-unneeded"], 4),
                ("libfotp.a", ["--strip-unneeded", "-R", ".llvmbc", "-R", ".llvmcmd",
                               "-R", ".comment"], 12.5),
            ]:
                src = self.rel / name
                dst = Path(tmp) / name
                shutil.copy(src, dst)
                subprocess.run(["strip", *flags, str(dst)], check=True)
                size = dst.stat().st_size
                met = "yes" if size <= target_mb * 1_000_000 else "**no**"
                rows.append(f"| {name} | {src.stat().st_size / 1e6:.2f} | {size / 1e6:.2f} | "
                            f"≤ {target_mb} MB | {met} |")
            go_bin = self.bindir / "fotp-bench-go"
            rows.append(f"| Go benchmark binary (static libfotp.a, whole program) | "
                        f"{go_bin.stat().st_size / 1e6:.2f} | - | - | - |")
        self.out += ["| file | built, MB | as installed (`make install`), MB | target | met |",
                     "|---|---:|---:|---|---|", *rows, ""]

    # 5
    def sandbox(self) -> None:
        rounds, millis, threads = (2, 500, 4) if self.quick else (12, 1000, 4)
        sb, sb_base = start_server([str(self.rel / "fotp"), "sandbox", "--addr", "127.0.0.1:0",
                                    # Quiet: a log line per request would measure the terminal;
                                    # the session cap would stop the load after 10000 verifies.
                                    "--quiet", "--max-sessions", "100000000"],
                                   "sandbox", env=self.env)
        hello, hello_base = start_server([str(self.rel / "fotp-bench-server"), "--threads", "2"],
                                         "hello server")
        res: dict[str, list[float]] = {"sandbox": [], "hello": []}
        try:
            for r in range(rounds):
                print(f"  sandbox: round {r + 1}/{rounds}", file=sys.stderr, flush=True)
                order = [("sandbox", sb_base), ("hello", hello_base)]
                if r % 2:
                    order.reverse()
                for k, base in order:
                    out = subprocess.run([str(self.rel / "fotp-bench"), "load", base, str(threads),
                                          str(millis)], capture_output=True, text=True,
                                         env=self.env, timeout=120)
                    if out.returncode != 0 or not out.stdout.startswith("ok "):
                        raise BenchError(f"load on {k}: {out.stdout}{out.stderr}")
                    _, calls, ns = out.stdout.split()
                    res[k].append(int(calls) / (int(ns) / 1e9))
        finally:
            sb.stop()
            hello.stop()
        rs = [a / b for a, b in zip(res["sandbox"], res["hello"])]
        self.out += [
            "## 5. Sandbox throughput",
            "",
            f"Load generator: `fotp-bench load URL {threads} {millis}` ({threads} threads sharing one",
            "fotp client; each loop a signed verify with a fresh nonce, then a query of the token it",
            "got), on the same 2 cores as the server, not pinned. Ceiling: `fotp-bench-server",
            "--threads 2`, a hello-world on the same stack as the sandbox (axum 0.8 on a 2-worker",
            f"tokio runtime, same serve settings) answering fixed bodies. {rounds} rounds, alternating.",
            "",
            "| server | requests/s (median) | min-max |",
            "|---|---:|---:|",
        ]
        for k, label in [("sandbox", "`fotp sandbox` (checks signature, nonce, state)"),
                         ("hello", "hello-world ceiling")]:
            self.out.append(f"| {label} | {statistics.median(res[k]):,.0f} | "
                            f"{min(res[k]):,.0f}-{max(res[k]):,.0f} |")
        self.out.append("")
        m = statistics.median(rs)
        self.target("Sandbox / hello-world ceiling",
                    f"{m * 100:.0f}% (rounds {min(rs) * 100:.0f}-{max(rs) * 100:.0f}%)",
                    "≥ 40%", m >= 0.40)

    def write(self, path: Path, started: str, load_before: str, load_after: str,
              seconds: float) -> None:
        notes = self.root / "bench" / "NOTES.md"
        lines = [
            "# Benchmarks",
            "",
            "Rewritten by `scripts/bench` (do not edit by hand: edit `bench/NOTES.md`, which is",
            "copied in at the end). Numbers are from one run on the machine below.",
            "",
            "## Machine and run",
            "",
            *machine_info(self.root),
            f"- Run started {started}, took {seconds:.0f} s{' (--quick: few rounds, indicative only)' if self.quick else ''}",
            f"- Before: {load_before}",
            f"- After: {load_after} (this run's own processes included)",
            "- Other engineers' builds may have been running: a load average above ~0.5 before",
            "  the run means the timings shared the CPUs with them. The interleaving makes the",
            "  ratios robust to that; absolute numbers are not.",
            "",
            "Command: `scripts/bench` (or `make bench`; ~3-4 minutes of measuring on 2 cores, plus",
            "the build). It builds in release mode (`cargo build --release --workspace`, the C",
            "runner with gcc, the Go runner with `go build`), installs `requests` and `matplotlib`",
            "(section 7's plot) with pip when missing, then runs `python3 bench/driver.py`, which",
            "rewrites this file.",
            "`scripts/bench --quick` is a smoke run (few rounds, printed, this file untouched);",
            "`--only PHASES` prints some phases; `--strict` exits 1 when a target is missed.",
            "",
            "## Targets",
            "",
            "| target | this run | goal | met |",
            "|---|---|---|---|",
        ]
        for what, value, goal, ok in self.targets:
            lines.append(f"| {what} | {value} | {goal} | {'yes' if ok else '**no**'} |")
        lines += ["", "Other ratios of the same run (interleaved; verify pinned unless said):", "", *self.extra, ""]
        lines += self.out
        if notes.exists():
            lines += [notes.read_text().rstrip(), ""]
        path.write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--out", type=Path, help="default: ROOT/BENCHMARKS.md")
    ap.add_argument("--quick", action="store_true",
                    help="few rounds: a smoke run (printed; written only with --out)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--only", help="comma-separated phases: latency,syscalls,parsing,"
                    "throughput,coldstart,sandbox,tracker,scaling (the file is then written to "
                    "--out only if given)")
    args = ap.parse_args()
    if shutil.which("taskset") is None:
        print("bench: taskset (util-linux) is needed to pin the latency cases", file=sys.stderr)
        return 1
    b = Bench(args.root.resolve(), args.quick)
    phases: dict[str, Callable[[], None]] = {
        "latency": b.latency, "syscalls": b.syscalls, "throughput": b.throughput,
        "parsing": b.parsing,
        "coldstart": b.coldstart, "sandbox": b.sandbox, "tracker": b.tracker,
        "scaling": b.scaling,
    }
    chosen = args.only.split(",") if args.only else list(phases)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = load_note()
    t0 = time.monotonic()
    try:
        for name in chosen:
            if name not in phases:
                raise BenchError(f"unknown phase {name!r}")
            print(f"bench: {name}", file=sys.stderr, flush=True)
            phases[name]()
    except BenchError as e:
        print(f"bench: failed: {e}", file=sys.stderr)
        return 1
    finally:
        Proc.stop_all()
    out = args.out or (None if args.only or args.quick else args.root / "BENCHMARKS.md")
    for rel, draw in b.figures:
        # Next to the report it belongs to; a printed run draws into target/bench.
        png = out.parent / rel if out else b.bindir / Path(rel).name
        draw(png)
        print(f"bench: drew {png}", file=sys.stderr)
    missed = args.strict and any(ok is False for *_, ok in b.targets)
    if out is None:
        print("\n".join(b.out + b.extra))
        for what, value, goal, ok in b.targets:
            print(f"{'ok  ' if ok else 'MISS'} {what}: {value} (goal {goal})")
        return 1 if missed else 0
    b.write(out, started, load_before, load_note(), time.monotonic() - t0)
    print(f"bench: wrote {out}", file=sys.stderr)
    for what, value, goal, ok in b.targets:
        print(f"  {'ok  ' if ok else 'MISS'} {what}: {value} (goal {goal})", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
