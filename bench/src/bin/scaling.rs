//! The tracker's cost as the work grows (issue 17): driven by bench/scaling.py, see
//! BENCHMARKS.md section 7.
//!
//! `fotp-bench-scale BASE_URL SIZES ROUNDS BATCH memory`
//! `fotp-bench-scale BASE_URL SIZES ROUNDS BATCH redis MAIN_URL REF_URL`
//!
//! Two trackers of one store kind: the main one is filled, through the tracker API, to each of
//! SIZES (comma-separated, ascending) live verifications with 6-digit codes; the reference one
//! holds 1000 live verifications throughout. At each size, ROUNDS rounds each time BATCH
//! allocations, then BATCH settlements, on both trackers in turn (the first one alternating),
//! so that the ratio main / reference of a round compares two samples taken under the same
//! load of the machine. Prints one JSON object per size:
//!
//! `{"live": N, "fill_s": s, "alloc": [[ns...] per round], "alloc_ref": ..., "settle": ...,
//! "settle_ref": ..., "bytes_per_session": b}`
//!
//! - allocation: `Tracker::reserve(6, Some(10))` (random candidates, the store's reserve;
//!   Redis: one script); each reservation is released after its timing, so the live count stays
//!   N;
//! - settlement: `Tracker::settle` of the callback the fixed-answer server's query confirms
//!   (its code is bound, before the fill, to the server's token): the store lookup, the
//!   confirming query and the store's settle; every timed call is a first settlement, undone
//!   (`unsettle`) after its timing;
//! - memory per live session: the memory store's process RSS (what the allocator took from the
//!   system, its overhead included), as (after the fill - before it) / N; Redis: the main
//!   server's `INFO memory` `used_memory` (what Redis allocated) (after - before) / N.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use fotp::{Callback, Client, Settlement, Tracker};

const CALLBACK: &[u8] = include_bytes!("../../../tests/data/callback.json");
const QUERY: &[u8] = include_bytes!("../../../tests/data/query-response.json");
/// The token the fixed-answer server's query answer belongs to (any token gets that answer).
const QUERY_TOKEN: &str = "44cadc6071214b968b3b3bb1cb5a6c24";
const REFERENCE_LIVE: usize = 1000;
const CODE_LENGTH: u32 = 6;
const VALIDITY_MINUTES: u32 = 10;
/// Threads filling a Redis tracker (the store pools 16 connections per process).
const REDIS_FILL_THREADS: usize = 8;

type Res<T> = Result<T, String>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("fotp-bench-scale: {e}");
        std::process::exit(1);
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn run(args: &[String]) -> Res<()> {
    let usage = "usage: fotp-bench-scale BASE_URL SIZES ROUNDS BATCH memory | \
                 ... redis MAIN_URL REF_URL";
    let [base, sizes, rounds, batch, kind, rest @ ..] = args else {
        return Err(usage.into());
    };
    let sizes: Vec<usize> = sizes
        .split(',')
        .map(|s| s.parse().map_err(|_| format!("bad size {s:?}")))
        .collect::<Res<_>>()?;
    if sizes.windows(2).any(|w| w[0] >= w[1]) {
        return Err("SIZES must ascend".into());
    }
    let rounds: usize = rounds.parse().map_err(|_| "bad ROUNDS")?;
    let batch: usize = batch.parse().map_err(|_| "bad BATCH")?;
    let (main, reference, redis_main) = match (kind.as_str(), rest) {
        ("memory", []) => (Tracker::memory(), Tracker::memory(), None),
        ("redis", [main_url, ref_url]) => (
            Tracker::redis(main_url, "fotp-scale").map_err(err)?,
            Tracker::redis(ref_url, "fotp-scale").map_err(err)?,
            Some(main_url.as_str()),
        ),
        _ => return Err(usage.into()),
    };
    let client = client(base)?;
    let confirmed = confirmed_callback()?;
    let threads = if redis_main.is_some() {
        REDIS_FILL_THREADS
    } else {
        1
    };
    for t in [&main, &reference] {
        bind_confirmed(t, &confirmed)?;
    }
    fill(&reference, 0, REFERENCE_LIVE, threads, "ref")?;
    // Memory in use before the main tracker holds anything (its settle code aside).
    let before = match redis_main {
        Some(url) => used_memory(url)?,
        None => rss()?,
    };
    let mut live = 0;
    let mut out = std::io::stdout().lock();
    for &n in &sizes {
        let t = Instant::now();
        fill(&main, live, n, threads, "main")?;
        let fill_s = t.elapsed().as_secs_f64();
        live = n;
        let after = match redis_main {
            Some(url) => used_memory(url)?,
            None => rss()?,
        };
        let bytes = (after - before) as f64 / n as f64;
        let mut series: [Vec<Vec<u64>>; 4] = Default::default();
        for r in 0..rounds {
            let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
            for which in order {
                let t = [&main, &reference][which];
                series[which].push(allocations(t, batch)?);
            }
            for which in order {
                let t = [&main, &reference][which];
                series[2 + which].push(settlements(t, &client, &confirmed, batch)?);
            }
        }
        let [alloc, alloc_ref, settle, settle_ref] = series;
        let line = serde_json::json!({
            "live": n,
            "fill_s": fill_s,
            "alloc": alloc,
            "alloc_ref": alloc_ref,
            "settle": settle,
            "settle_ref": settle_ref,
            "bytes_per_session": bytes,
        });
        writeln!(out, "{line}").map_err(err)?;
        out.flush().map_err(err)?;
    }
    Ok(())
}

fn client(base: &str) -> Res<Client> {
    let config = fotp::Config::builder(base)
        .hmac_auth("sandbox", "sandbox-secret")
        .build()
        .map_err(err)?;
    Client::new(config).map_err(err)
}

/// The callback the fixed-answer server's query confirms (its code and mobile).
fn confirmed_callback() -> Res<Callback> {
    let mut cb = fotp::parse_callback(CALLBACK).map_err(err)?;
    let seed: serde_json::Value = serde_json::from_slice(QUERY).map_err(err)?;
    cb.code = seed["data"]["code"].as_str().ok_or("seed code")?.to_owned();
    cb.mobile = seed["data"]["mobile"]
        .as_str()
        .ok_or("seed mobile")?
        .to_owned();
    Ok(cb)
}

/// Binds the confirmed callback's code to the query's token, before the fill (so no filled
/// verification can hold it): through the store, since the tracker only binds random codes.
fn bind_confirmed(t: &Tracker, cb: &Callback) -> Res<()> {
    let store = t.store();
    let ticket = "fotp-bench-scale";
    let ttl = Duration::from_secs(3600);
    store
        .reserve(std::slice::from_ref(&cb.code), ticket, 4500, ttl)
        .map_err(err)?;
    check(
        store.bind(&cb.code, ticket, QUERY_TOKEN).map_err(err)?,
        "bound settle code",
    )
}

/// Adds live verifications `from..to` (reserve + bind to a 32-character token), over
/// `threads` threads sharing the tracker.
fn fill(t: &Tracker, from: usize, to: usize, threads: usize, tag: &str) -> Res<()> {
    let one = |i: usize| -> Res<()> {
        let r = t
            .reserve(CODE_LENGTH, Some(VALIDITY_MINUTES))
            .map_err(err)?;
        t.bind(&r, &format!("{tag}{i:0>28x}")).map_err(err)
    };
    if threads <= 1 {
        return (from..to).try_for_each(one);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let one = &one;
                s.spawn(move || (from + k..to).step_by(threads).try_for_each(one))
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().map_err(|_| "a fill thread panicked".to_string())?)
    })
}

/// `n` timed allocations, each released untimed (the live count stays the same).
fn allocations(t: &Tracker, n: usize) -> Res<Vec<u64>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let r = t.reserve(CODE_LENGTH, Some(VALIDITY_MINUTES));
        out.push(start.elapsed().as_nanos() as u64);
        let r = r.map_err(err)?;
        t.release(&r).map_err(err)?;
    }
    Ok(out)
}

/// `n` timed first settlements of the confirmed callback, each undone untimed.
fn settlements(t: &Tracker, client: &Client, cb: &Callback, n: usize) -> Res<Vec<u64>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let s = t.settle(client, cb);
        out.push(start.elapsed().as_nanos() as u64);
        match s.map_err(err)? {
            Settlement::First(m) if m.ft_token == QUERY_TOKEN => t.unsettle(&m).map_err(err)?,
            other => return Err(format!("expected a first settlement, got {other:?}")),
        }
    }
    Ok(out)
}

/// The process's resident set, in bytes.
fn rss() -> Res<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").map_err(err)?;
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or("bad /proc/self/statm")?;
    Ok(pages * 4096)
}

/// `used_memory` from the `INFO memory` of the server at `url` (`redis://host:port/`).
fn used_memory(url: &str) -> Res<i64> {
    let addr = url
        .strip_prefix("redis://")
        .and_then(|r| r.split('/').next())
        .ok_or("the Redis URL must be redis://host:port/")?;
    let mut s = std::net::TcpStream::connect(addr).map_err(err)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(err)?;
    s.write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nmemory\r\n")
        .map_err(err)?;
    // A bulk string: `$LEN\r\n` then LEN bytes and `\r\n`.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).map_err(err)?;
        if n == 0 {
            return Err("Redis closed the INFO connection".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n") {
            let len: usize = head
                .strip_prefix('$')
                .and_then(|l| l.parse().ok())
                .ok_or("bad INFO answer")?;
            if body.len() >= len {
                return body
                    .lines()
                    .find_map(|l| l.strip_prefix("used_memory:"))
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| "no used_memory in INFO".into());
            }
        }
    }
}

fn check(ok: bool, what: &str) -> Res<()> {
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected {what}"))
    }
}
