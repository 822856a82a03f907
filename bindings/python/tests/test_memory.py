"""Memory: repeated calls must not grow the process."""

from __future__ import annotations

import dataclasses
import gc

import fotp
from _support import DATA, rss_bytes, sandbox

SEED = (DATA / "callback.json").read_bytes()
MiB = 1 << 20


def _growth(fn: object, n: int, warmup: int) -> int:
    for _ in range(warmup):
        fn()  # type: ignore[operator]
    gc.collect()
    before = rss_bytes()
    for _ in range(n):
        fn()  # type: ignore[operator]
    gc.collect()
    return rss_bytes() - before


def test_parse_callback_100k() -> None:
    grew = _growth(lambda: fotp.parse_callback(SEED), 100_000, 5_000)
    # Measured: ~0 MiB; not freeing the callbacks would add ~100 MiB.
    assert grew < 4 * MiB, f"RSS grew {grew / MiB:.1f} MiB"


def test_errors_100k() -> None:
    def bad() -> None:
        try:
            fotp.parse_callback(b'{"mobile":"1"}')
        except fotp.DecodeError:
            pass

    grew = _growth(bad, 100_000, 5_000)
    assert grew < 4 * MiB, f"RSS grew {grew / MiB:.1f} MiB"


def test_verify_20k() -> None:
    # A sandbox of its own, so 20k sessions do not slow down the other tests.
    with (
        sandbox("--quiet", "--max-sessions", "100000") as sb,
        fotp.Client(sb.base_url, **sb.client_kwargs()) as c,
    ):

        def call() -> None:
            c.verify("2")

        grew = _growth(call, 20_000, 1_000)
        # Measured: ~0 MiB; leaking the verification objects alone would add ~5.5 MiB.
        assert grew < 2 * MiB, f"RSS grew {grew / MiB:.1f} MiB"

        def failing() -> None:
            try:
                c.verify("2", code="12")
            except fotp.InvalidArgument:
                pass

        grew = _growth(failing, 20_000, 1_000)
        assert grew < 2 * MiB, f"RSS grew {grew / MiB:.1f} MiB"


def test_tracker_match_100k() -> None:
    # Every call parses a callback, matches it (a duplicate: a fotp_match to free) and frees both.
    with (
        sandbox("--quiet") as sb,
        fotp.Client(sb.base_url, **sb.client_kwargs()) as c,
        fotp.Tracker.memory() as t,
    ):
        v = t.verify(c, "2")
        cb = dataclasses.replace(fotp.parse_callback(SEED), code=v.code)
        assert cb.code == v.code and t.match(cb) == fotp.Match(v.ft_token, False)

        def call() -> None:
            t.match(cb)

        grew = _growth(call, 100_000, 5_000)
        assert grew < 4 * MiB, f"RSS grew {grew / MiB:.1f} MiB"
