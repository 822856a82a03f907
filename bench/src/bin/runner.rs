//! The Rust side of the benchmarks (driven by bench/driver.py; see BENCHMARKS.md).
//!
//! `fotp-bench cases BASE_URL`: reads `CASE N` lines on stdin, runs case CASE N times and
//!   answers `ok <elapsed ns>` (or `error <message>`). Cases are listed in `run_case`.
//! `fotp-bench coldstart BASE_URL`: prints the ns taken to build a config and a client.
//! `fotp-bench load BASE_URL THREADS MILLIS`: verify+query pairs from THREADS threads sharing
//!   one client for MILLIS ms; prints `ok <requests> <elapsed ns>`.
//!
//! The tracker cases use an in-memory tracker, and a Redis one when `FOTP_BENCH_REDIS` names a
//! server.

use std::borrow::Cow;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::de::{self, Deserializer};
use serde::Deserialize;

const CALLBACK: &[u8] = include_bytes!("../../../tests/data/callback.json");
const VERIFY: &[u8] = include_bytes!("../../../tests/data/verify-response.json");
const QUERY: &[u8] = include_bytes!("../../../tests/data/query-response.json");
const QUERY_TOKEN: &str = "44cadc6071214b968b3b3bb1cb5a6c24";
const SEED_CODE: &str = "3872";

type Res<T> = Result<T, String>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["cases", base] => cases(base),
        ["coldstart", base] => coldstart(base),
        ["load", base, threads, millis] => load(base, threads, millis),
        _ => Err("usage: fotp-bench cases URL | coldstart URL | load URL THREADS MILLIS".into()),
    };
    if let Err(e) = code {
        eprintln!("fotp-bench: {e}");
        std::process::exit(1);
    }
}

fn client(base: &str) -> Res<fotp::Client> {
    let (id, secret) = credentials();
    let config = fotp::Config::builder(base)
        .hmac_auth(id, secret)
        .build()
        .map_err(|e| e.to_string())?;
    fotp::Client::new(config).map_err(|e| e.to_string())
}

/// The sandbox's defaults unless FOTP_APP_ID / FOTP_APP_SECRET say otherwise.
fn credentials() -> (String, String) {
    let get = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    (
        get("FOTP_APP_ID", "sandbox"),
        get("FOTP_APP_SECRET", "sandbox-secret"),
    )
}

fn coldstart(base: &str) -> Res<()> {
    let t = Instant::now();
    let c = client(base)?;
    let ns = t.elapsed().as_nanos();
    std::hint::black_box(c);
    println!("ok {ns}");
    Ok(())
}

struct Floor {
    agent: ureq::Agent,
    /// Sets the core's per-call limits (global and connect) on every request.
    limits: bool,
    verify_url: String,
    query_url: String,
    query_body: Vec<u8>,
}

impl Floor {
    fn new(base: &str, timeout_trap: bool) -> Floor {
        Self::build(base, timeout_trap, false)
    }

    /// The floor with fotp's per-call time limits, and an IP-literal resolver like the
    /// core's, to show what the limits alone cost.
    fn with_limits(base: &str) -> Floor {
        Self::build(base, false, true)
    }

    fn build(base: &str, timeout_trap: bool, limits: bool) -> Floor {
        let mut b = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(format!("fotp/{}", fotp::VERSION))
            .max_redirects(0);
        if timeout_trap {
            // What the core did before its literal resolver: a global limit makes ureq's
            // default resolver run every lookup on a new thread.
            b = b.timeout_global(Some(Duration::from_secs(10)));
        }
        let config = b.build();
        Floor {
            agent: if limits {
                ureq::Agent::with_parts(
                    config,
                    ureq::unversioned::transport::DefaultConnector::new(),
                    IpResolver,
                )
            } else {
                config.new_agent()
            },
            limits,
            verify_url: format!("{base}/flash/opt/verify"),
            query_url: format!("{base}/flash/opt/query"),
            query_body: format!("{{\"ftToken\":\"{QUERY_TOKEN}\"}}").into_bytes(),
        }
    }

    /// The floor with real signing: a timestamp, a fresh nonce from the OS and the HMAC per
    /// call, written as a user of ureq would (no validation, limits, retries or decoding).
    fn post_signed(&self, url: &str, body: &[u8]) -> Res<Vec<u8>> {
        use hmac::Mac;
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_millis()
            .to_string();
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(|e| e.to_string())?;
        let nonce = to_hex(&raw);
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"sandbox-secret")
            .map_err(|e| e.to_string())?;
        for part in [
            b"sandbox\n",
            ts.as_bytes(),
            b"\n",
            nonce.as_bytes(),
            b"\n",
            body,
        ] {
            mac.update(part);
        }
        let sign = to_hex(&mac.finalize().into_bytes());
        let mut resp = self
            .agent
            .post(url)
            .header("Content-Type", "application/json;charset=utf-8")
            .header("Accept", "application/json")
            .header("appId", "sandbox")
            .header("timestamp", ts)
            .header("nonce", nonce)
            .header("sign", sign)
            .send(body)
            .map_err(|e| format!("ureq: {e}"))?;
        if resp.status() != 200 {
            return Err(format!("HTTP {}", resp.status()));
        }
        resp.body_mut()
            .read_to_vec()
            .map_err(|e| format!("ureq body: {e}"))
    }

    /// The same headers as fotp sends, with fixed values (tests/data/signing.json vector 1):
    /// no signing, no JSON, nothing but the HTTP exchange.
    fn post(&self, url: &str, body: &[u8]) -> Res<Vec<u8>> {
        let req = self
            .agent
            .post(url)
            .header("Content-Type", "application/json;charset=utf-8")
            .header("Accept", "application/json")
            .header("appId", "sandbox")
            .header("timestamp", "1764374400000")
            .header("nonce", "0123456789abcdef0123456789abcdef")
            .header(
                "sign",
                "5db186a0ff9ddcb9b784221a6f9e926a11f46d49485dd1bd480367699ccce6cb",
            );
        let sent = if self.limits {
            req.config()
                .timeout_global(Some(Duration::from_secs(10)))
                .timeout_connect(Some(Duration::from_secs(3)))
                .build()
                .send(body)
        } else {
            req.send(body)
        };
        let mut resp = sent.map_err(|e| format!("ureq: {e}"))?;
        if resp.status() != 200 {
            return Err(format!("HTTP {}", resp.status()));
        }
        resp.body_mut()
            .read_to_vec()
            .map_err(|e| format!("ureq body: {e}"))
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.extend_from_slice(&[DIGITS[(b >> 4) as usize], DIGITS[(b & 15) as usize]]);
    }
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// Resolves the IP literal of the benchmark's URL in place (no lookup thread).
#[derive(Debug)]
struct IpResolver;

impl ureq::unversioned::resolver::Resolver for IpResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let ip = uri
            .host()
            .and_then(|h| h.parse::<std::net::IpAddr>().ok())
            .ok_or(ureq::Error::HostNotFound)?;
        let mut out = self.empty();
        out.push(std::net::SocketAddr::new(ip, uri.port_u16().unwrap_or(80)));
        Ok(out)
    }
}

/// The callback as a Rust user would parse it without fotp: serde_json into a struct, with
/// the contract's rules (string or integer, required non-empty, null = absent).
#[derive(Deserialize)]
struct PlainCallback {
    #[serde(deserialize_with = "str_or_int")]
    mobile: String,
    #[serde(deserialize_with = "str_or_int")]
    sender: String,
    #[serde(rename = "sendTime", deserialize_with = "str_or_int")]
    send_time: String,
    #[serde(deserialize_with = "str_or_int")]
    code: String,
    #[serde(default, deserialize_with = "opt_str_or_int")]
    content: Option<String>,
    #[serde(rename = "deliverTime", default, deserialize_with = "opt_str_or_int")]
    deliver_time: Option<String>,
    #[serde(default, deserialize_with = "opt_str_or_int")]
    err: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StrOrInt<'a> {
    #[serde(borrow)]
    S(Cow<'a, str>),
    I(i64),
    U(u64),
}

impl StrOrInt<'_> {
    fn into_string(self) -> String {
        match self {
            StrOrInt::S(s) => s.into_owned(),
            StrOrInt::I(i) => i.to_string(),
            StrOrInt::U(u) => u.to_string(),
        }
    }
}

fn str_or_int<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = StrOrInt::deserialize(d)?.into_string();
    if s.is_empty() {
        return Err(de::Error::custom("must not be empty"));
    }
    Ok(s)
}

fn opt_str_or_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<StrOrInt>::deserialize(d)?.map(StrOrInt::into_string))
}

fn plain_parse(body: &[u8]) -> Res<PlainCallback> {
    if body.len() > fotp::MAX_CALLBACK_BYTES {
        return Err("too large".into());
    }
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

/// A tracker with one live verification bound to a token, and a callback carrying its code.
struct TrackerCase {
    tracker: fotp::Tracker,
    callback: fotp::Callback,
    /// The callback for the seed's query answer (its code and mobile), bound to QUERY_TOKEN.
    confirmed: fotp::Callback,
}

impl TrackerCase {
    fn new(tracker: fotp::Tracker) -> Res<TrackerCase> {
        let r = tracker.reserve(6, Some(10)).map_err(|e| e.to_string())?;
        tracker.bind(&r, QUERY_TOKEN).map_err(|e| e.to_string())?;
        let mut callback = fotp::parse_callback(CALLBACK).map_err(|e| e.to_string())?;
        callback.code = r.code().to_owned();
        // settle's query gets the seed's answer: bind its code to its token.
        let seed: serde_json::Value = serde_json::from_slice(QUERY).map_err(|e| e.to_string())?;
        let mut confirmed = callback.clone();
        confirmed.code = seed["data"]["code"].as_str().ok_or("seed code")?.to_owned();
        confirmed.mobile = seed["data"]["mobile"]
            .as_str()
            .ok_or("seed mobile")?
            .to_owned();
        let store = tracker.store();
        let ticket = "fotp-bench-settle";
        let ttl = std::time::Duration::from_secs(3600);
        let code = std::slice::from_ref(&confirmed.code);
        store
            .reserve(code, ticket, 4500, ttl)
            .and_then(|_| store.bind(&confirmed.code, ticket, QUERY_TOKEN))
            .map_err(|e| e.to_string())?;
        // Another runner of this run may have bound it already (Redis): either way, bound.
        check(
            store.lookup(&confirmed.code).map_err(|e| e.to_string())?
                == fotp::Lookup::Bound(QUERY_TOKEN.to_owned()),
            "settle code bound",
        )?;
        Ok(TrackerCase {
            tracker,
            callback,
            confirmed,
        })
    }

    /// Reserves a fresh code and gives it back: the allocation, with the live count steady.
    fn allocate(&self) -> Res<()> {
        let r = self
            .tracker
            .reserve(6, Some(10))
            .map_err(|e| e.to_string())?;
        check(r.code().len() == 6, "reserved code")?;
        self.tracker.release(&r).map_err(|e| e.to_string())
    }

    /// Settles the callback the seed's query confirms (a duplicate after the first time: the
    /// same lookup, query and settle script).
    fn settle(&self, client: &fotp::Client) -> Res<()> {
        let s = self
            .tracker
            .settle(client, &self.confirmed)
            .map_err(|e| e.to_string())?;
        check(
            s.matched().is_some_and(|m| m.ft_token == QUERY_TOKEN),
            "tracker settle",
        )
    }

    /// Matches the callback (a duplicate after the first time: the same lookup and claim).
    fn matching(&self) -> Res<()> {
        let m = self
            .tracker
            .match_callback(&self.callback)
            .map_err(|e| e.to_string())?;
        check(
            m.is_some_and(|m| m.ft_token == QUERY_TOKEN),
            "tracker match",
        )
    }
}

struct Cases {
    memory: TrackerCase,
    redis: Option<TrackerCase>,
    fotp: fotp::Client,
    floor: Floor,
    trap: Floor,
    limited: Floor,
    signer: fotp::__internals::HmacSha256Signer,
    verify_req: fotp::VerifyRequest,
}

impl Cases {
    fn fotp_verify(&self) -> Res<()> {
        let v = self
            .fotp
            .verify(&self.verify_req)
            .map_err(|e| e.to_string())?;
        check(v.code == SEED_CODE, "verify code")
    }

    fn fotp_query(&self) -> Res<()> {
        let r = self.fotp.query(QUERY_TOKEN).map_err(|e| e.to_string())?;
        check(r.status == fotp::Status::Success, "query status")
    }

    fn run_case(&self, case: &str, n: u64) -> Res<u128> {
        let floor_verify = |f: &Floor| -> Res<()> {
            let b = f.post(&f.verify_url, b"{\"ftId\":\"2\"}")?;
            check(b.len() > 100, "verify body")
        };
        let t = Instant::now();
        match case {
            "fotp-verify" => repeat(n, || self.fotp_verify())?,
            "fotp-query" => repeat(n, || self.fotp_query())?,
            "ureq-verify" => repeat(n, || floor_verify(&self.floor))?,
            "ureq-query" => repeat(n, || {
                let f = &self.floor;
                let b = f.post(&f.query_url, &f.query_body)?;
                check(b.len() > 100, "query body")
            })?,
            "ureq-timeout-verify" => repeat(n, || floor_verify(&self.trap))?,
            "ureq-limits-verify" => repeat(n, || floor_verify(&self.limited))?,
            // The floor with limits plus fotp's signer and decoder called by hand: shows
            // whether the client adds anything beyond those parts.
            "ureq-composite-verify" => repeat(n, || {
                use fotp::Signer;
                let f = &self.limited;
                let body = self.verify_req.body().map_err(|e| e.to_string())?;
                let headers = self.signer.sign(&body).map_err(|e| e.to_string())?;
                let mut req = f
                    .agent
                    .post(&f.verify_url)
                    .header("Content-Type", "application/json;charset=utf-8")
                    .header("Accept", "application/json");
                for (k, v) in &headers {
                    req = req.header(k.as_str(), v.as_str());
                }
                let mut resp = req
                    .config()
                    .timeout_global(Some(Duration::from_secs(10)))
                    .timeout_connect(Some(Duration::from_secs(3)))
                    .build()
                    .send(&body[..])
                    .map_err(|e| format!("ureq: {e}"))?;
                let bytes = resp
                    .body_mut()
                    .with_config()
                    .limit(fotp::MAX_RESPONSE_BYTES)
                    .read_to_vec()
                    .map_err(|e| format!("ureq body: {e}"))?;
                let v: fotp::Verification =
                    fotp::__internals::decode_envelope(200, &bytes).map_err(|e| e.to_string())?;
                check(v.code == SEED_CODE, "code")
            })?,
            "ureq-signed-verify" => repeat(n, || {
                let f = &self.floor;
                let b = f.post_signed(&f.verify_url, b"{\"ftId\":\"2\"}")?;
                check(b.len() > 100, "verify body")
            })?,
            "tracker-alloc-memory" => repeat(n, || self.memory.allocate())?,
            "tracker-match-memory" => repeat(n, || self.memory.matching())?,
            "tracker-settle-memory" => repeat(n, || self.memory.settle(&self.fotp))?,
            "tracker-alloc-redis" | "tracker-match-redis" | "tracker-settle-redis" => {
                let t = self.redis.as_ref().ok_or("FOTP_BENCH_REDIS is not set")?;
                if case.starts_with("tracker-alloc") {
                    repeat(n, || t.allocate())?
                } else if case.starts_with("tracker-settle") {
                    repeat(n, || t.settle(&self.fotp))?
                } else {
                    repeat(n, || t.matching())?
                }
            }
            "fotp-parse" => repeat(n, || {
                let cb = fotp::parse_callback(std::hint::black_box(CALLBACK))
                    .map_err(|e| e.to_string())?;
                check(cb.code == "5776", "callback code")
            })?,
            // Floors of any parser of this body built on serde_json: its UTF-8 check, and
            // serde_json reading the whole body while keeping nothing.
            "floor-utf8" => repeat(n, || {
                let text = std::str::from_utf8(std::hint::black_box(CALLBACK));
                check(text.is_ok(), "UTF-8")
            })?,
            "floor-scan" => repeat(n, || {
                let v =
                    serde_json::from_slice::<serde::de::IgnoredAny>(std::hint::black_box(CALLBACK));
                check(v.is_ok(), "JSON")
            })?,
            "serde-parse" => repeat(n, || {
                let cb = plain_parse(std::hint::black_box(CALLBACK))?;
                check(
                    cb.code == "5776"
                        && !cb.mobile.is_empty()
                        && !cb.sender.is_empty()
                        && !cb.send_time.is_empty()
                        && cb.content.is_some()
                        && cb.deliver_time.is_some()
                        && cb.err.is_none(),
                    "callback fields",
                )
            })?,
            // The parts of a call that are not HTTP, for the breakdown in BENCHMARKS.md.
            "part-sign" => {
                let signer = fotp::__internals::HmacSha256Signer::new(
                    "sandbox",
                    &fotp::Secret::new("sandbox-secret"),
                );
                repeat(n, || {
                    use fotp::Signer;
                    let h = signer
                        .sign(b"{\"ftId\":\"2\"}")
                        .map_err(|e| e.to_string())?;
                    check(h.len() == 4, "headers")
                })?
            }
            "part-body" => repeat(n, || {
                let b = self.verify_req.body().map_err(|e| e.to_string())?;
                check(b.len() == 12, "body")
            })?,
            "part-decode-verify" => repeat(n, || {
                let v: fotp::Verification =
                    fotp::__internals::decode_envelope(200, VERIFY).map_err(|e| e.to_string())?;
                check(v.code == SEED_CODE, "code")
            })?,
            "part-decode-query" => repeat(n, || {
                let r: fotp::QueryResult =
                    fotp::__internals::decode_envelope(200, QUERY).map_err(|e| e.to_string())?;
                check(r.status == fotp::Status::Success, "status")
            })?,
            other => match other.strip_prefix("tp-fotp-").map(str::parse::<u64>) {
                Some(Ok(threads)) if threads > 0 => self.throughput(threads, n)?,
                _ => return Err(format!("unknown case {other:?}")),
            },
        }
        Ok(t.elapsed().as_nanos())
    }

    /// n calls (verify and query alternating) spread over `threads` threads, one client.
    fn throughput(&self, threads: u64, n: u64) -> Res<()> {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let share = n / threads + u64::from(t < n % threads);
                    s.spawn(move || {
                        repeat(share, || {
                            self.fotp_verify()?;
                            self.fotp_query()
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().map_err(|_| "a thread panicked".to_string())?)
        })
    }
}

fn check(ok: bool, what: &str) -> Res<()> {
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected {what}"))
    }
}

fn repeat(n: u64, mut f: impl FnMut() -> Res<()>) -> Res<()> {
    (0..n).try_for_each(|_| f())
}

fn cases(base: &str) -> Res<()> {
    let redis = match std::env::var("FOTP_BENCH_REDIS") {
        Ok(url) if !url.is_empty() => Some(TrackerCase::new(
            fotp::Tracker::redis(&url, "fotp-bench").map_err(|e| e.to_string())?,
        )?),
        _ => None,
    };
    let c = Cases {
        memory: TrackerCase::new(fotp::Tracker::memory())?,
        redis,
        fotp: client(base)?,
        floor: Floor::new(base, false),
        trap: Floor::new(base, true),
        limited: Floor::with_limits(base),
        signer: fotp::__internals::HmacSha256Signer::new(
            "sandbox",
            &fotp::Secret::new("sandbox-secret"),
        ),
        verify_req: fotp::VerifyRequest::new("2"),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let mut parts = line.split_whitespace();
        let (Some(case), Some(n), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("bad command {line:?}: expected `CASE N`"));
        };
        let n: u64 = n.parse().map_err(|_| format!("bad count {n:?}"))?;
        let answer = match c.run_case(case, n) {
            Ok(ns) => format!("ok {ns}"),
            Err(e) => format!("error {case}: {e}"),
        };
        writeln!(out, "{answer}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn load(base: &str, threads: &str, millis: &str) -> Res<()> {
    let threads: u64 = threads.parse().map_err(|_| "THREADS must be a number")?;
    let millis: u64 = millis.parse().map_err(|_| "MILLIS must be a number")?;
    let c = client(base)?;
    let req = fotp::VerifyRequest::new("2");
    // Warm up: open the connections outside the measured window.
    c.verify(&req).map_err(|e| e.to_string())?;
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let t = Instant::now();
    let result: Res<()> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Res<()> {
                    while !stop.load(Ordering::Relaxed) {
                        let v = c.verify(&req).map_err(|e| e.to_string())?;
                        c.query(&v.ft_token).map_err(|e| e.to_string())?;
                        done.fetch_add(2, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        // The measuring thread only waits: the window closes when the time is up.
        std::thread::sleep(Duration::from_millis(millis));
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .try_for_each(|h| h.join().map_err(|_| "a thread panicked".to_string())?)
    });
    let ns = t.elapsed().as_nanos();
    result?;
    println!("ok {} {ns}", done.load(Ordering::Relaxed));
    Ok(())
}
