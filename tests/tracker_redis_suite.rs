//! One store suite for every Redis deployment the tracker supports. `FOTP_TEST_REDIS_URL`
//! names it (`redis://`, `redis+cluster://`, `redis+sentinel://`; `scripts/test-redis-ha.sh`
//! starts a cluster and a Sentinel setup and runs this file against each); unset, the suite
//! starts its own standalone `redis-server`.
//!
//! `failover_during_settlements` (ignored: it kills the primary) runs only from that script.

#![cfg(feature = "redis")]

mod support;
mod tracker_support;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fotp::Lookup;
use fotp::{ErrorKind, Settlement, Tracker};
use redis::ConnectionLike;
use tracker_support::{eventually, line_with, lines_of, Platform, Redis};

/// The deployment under test; holds a private standalone server when the variable is unset.
struct Target {
    url: String,
    _own: Option<Redis>,
}

fn target() -> Option<Target> {
    match std::env::var("FOTP_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(Target { url, _own: None }),
        _ => {
            let r = Redis::start()?;
            Some(Target {
                url: r.url(),
                _own: Some(r),
            })
        }
    }
}

macro_rules! target_or_skip {
    () => {
        match target() {
            Some(t) => t,
            None => return,
        }
    };
}

/// A namespace no earlier run used (the HA servers outlive a test run).
fn fresh_ns(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{tag}-{}-{nanos}", std::process::id())
}

/// The hosts of a `redis+cluster://` or `redis+sentinel://` URL (no credentials in tests).
fn hosts(url: &str) -> Vec<String> {
    let rest = url.split_once("://").unwrap().1;
    let rest = rest.split('/').next().unwrap();
    rest.split(',').map(str::to_owned).collect()
}

fn single(addr: &str) -> redis::Connection {
    try_single(addr).unwrap()
}

fn try_single(addr: &str) -> redis::RedisResult<redis::Connection> {
    redis::Client::open(format!("redis://{addr}/"))?
        .get_connection_with_timeout(Duration::from_secs(5))
}

/// The address of the node that now serves `ns`'s keys (the primary, on a cluster the
/// primary of the namespace's slot).
fn primary_of(url: &str, ns: &str) -> String {
    if url.starts_with("redis+sentinel://") {
        let service = url.rsplit_once('/').map_or("mymaster", |(_, s)| s);
        for h in hosts(url) {
            let Ok(c) = redis::Client::open(format!("redis://{h}/")) else {
                continue;
            };
            let Ok(mut c) = c.get_connection_with_timeout(Duration::from_secs(2)) else {
                continue;
            };
            if let Ok((ip, port)) = redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(service)
                .query::<(String, String)>(&mut c)
            {
                return format!("{ip}:{port}");
            }
        }
        panic!("no Sentinel answered");
    }
    if url.starts_with("redis+cluster://") {
        let mut c = cluster_node_con(url);
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(format!("{{{ns}}}"))
            .query(&mut c)
            .unwrap();
        let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut c).unwrap();
        for line in nodes.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if !f[2].contains("master") || f[2].contains("fail") {
                continue;
            }
            for range in &f[8..] {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>()) {
                    if (lo..=hi).contains(&slot) {
                        return f[1].split('@').next().unwrap().to_owned();
                    }
                }
            }
        }
        panic!("no primary serves slot {slot}");
    }
    url.trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned()
}

/// A connection to any live node of a cluster.
fn cluster_node_con(url: &str) -> redis::Connection {
    for h in hosts(url) {
        if let Ok(c) = redis::Client::open(format!("redis://{h}/"))
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(2))
        {
            return c;
        }
    }
    panic!("no cluster node answered");
}

/// Every node of the deployment that a subscriber could be on.
fn pubsub_nodes(url: &str, ns: &str) -> Vec<String> {
    if url.starts_with("redis+cluster://") {
        let nodes: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query(&mut cluster_node_con(url))
            .unwrap();
        return nodes
            .lines()
            .filter(|l| !l.contains("fail"))
            .map(|l| {
                let addr = l.split_whitespace().nth(1).unwrap();
                addr.split('@').next().unwrap().to_owned()
            })
            .collect();
    }
    vec![primary_of(url, ns)]
}

/// The keys' prefix for `ns` on this deployment (the store's documented layout).
fn prefix(url: &str, ns: &str) -> String {
    if url.starts_with("redis+cluster://") {
        format!("{{{ns}}}:")
    } else {
        format!("{ns}:")
    }
}

/// A raw connection for checks: routed by key on a cluster.
fn raw(url: &str, ns: &str) -> Box<dyn ConnectionLike> {
    if url.starts_with("redis+cluster://") {
        let nodes: Vec<String> = hosts(url).iter().map(|h| format!("redis://{h}/")).collect();
        return Box::new(
            redis::cluster::ClusterClient::new(nodes)
                .unwrap()
                .get_connection()
                .unwrap(),
        );
    }
    Box::new(single(&primary_of(url, ns)))
}

/// This test binary again, running the ignored test `name` with `env`; its stdout lines.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_self(name: &str, env: &[(&str, String)]) -> (Proc, std::sync::mpsc::Receiver<String>) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let rx = lines_of(child.stdout.take().unwrap());
    (Proc(child), rx)
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by the parent test"))
}

#[test]
fn ten_thousand_concurrent_allocations_are_unique() {
    let t = target_or_skip!();
    let ns = fresh_ns("load");
    let ttl = Duration::from_secs(120);
    let a = Tracker::redis(&t.url, &ns).unwrap().with_ttl_override(ttl);
    let b = Tracker::redis(&t.url, &ns).unwrap().with_ttl_override(ttl);
    let threads = 16;
    let per = 10_000 / threads;
    let codes: Vec<String> = std::thread::scope(|s| {
        (0..threads)
            .map(|i| {
                let t = if i % 2 == 0 { &a } else { &b };
                s.spawn(move || {
                    (0..per)
                        .map(|_| t.reserve(6, Some(5)).unwrap().code().to_owned())
                        .collect::<Vec<_>>()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(codes.len(), 10_000);
    let distinct: HashSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), codes.len(), "a code was handed out twice");
    let live: usize = redis::cmd("ZCARD")
        .arg(format!("{}live:6", prefix(&t.url, &ns)))
        .query(&mut *raw(&t.url, &ns))
        .unwrap();
    assert_eq!(live, 10_000, "one live entry per allocation");
}

#[test]
fn exhaustion_is_shared_and_expires_with_the_codes() {
    let t = target_or_skip!();
    let ns = fresh_ns("ex");
    // Long enough that 4,500 reservations on a loaded machine finish well within it.
    let ttl = Duration::from_secs(12);
    let a = Tracker::redis(&t.url, &ns).unwrap().with_ttl_override(ttl);
    let b = Tracker::redis(&t.url, &ns).unwrap().with_ttl_override(ttl);
    let started = Instant::now();
    let held: Vec<_> = std::thread::scope(|s| {
        (0..4)
            .map(|i| {
                let t = if i % 2 == 0 { &a } else { &b };
                s.spawn(move || {
                    (0..1125)
                        .map(|_| t.reserve(4, None).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        started.elapsed() < ttl,
        "the reservations outlived their TTL"
    );
    for t in [&a, &b] {
        assert_eq!(t.reserve(4, None).unwrap_err().kind(), ErrorKind::Exhausted);
    }
    // Other lengths are unaffected; a release makes room for exactly one more.
    a.reserve(6, None).unwrap();
    b.release(&held[0]).unwrap();
    a.reserve(4, None).unwrap();
    assert_eq!(b.reserve(4, None).unwrap_err().kind(), ErrorKind::Exhausted);
    // Once they expire, the space is free again.
    assert!(eventually(ttl + Duration::from_secs(20), || a
        .reserve(4, None)
        .is_ok()));
}

#[test]
fn keys_carry_the_ttl_and_are_gone_after_it() {
    let t = target_or_skip!();
    let ns = fresh_ns("ttl");
    let ttl = Duration::from_millis(3000);
    let tr = Tracker::redis(&t.url, &ns).unwrap().with_ttl_override(ttl);
    let r = tr.reserve(5, None).unwrap();
    tr.bind(&r, "tok-ttl").unwrap();
    let store = tr.store();
    assert!(!store.claim(r.code()).unwrap().unwrap().duplicate);
    assert_eq!(store.settle(r.code(), "tok-ttl", "s1").unwrap(), Some(true));
    let p = prefix(&t.url, &ns);
    let keys = [
        format!("{p}code:{}", r.code()),
        format!("{p}live:5"),
        format!("{p}match:tok-ttl"),
        format!("{p}settle:tok-ttl"),
    ];
    let mut con = raw(&t.url, &ns);
    for k in &keys {
        let left: i64 = redis::cmd("PTTL").arg(k).query(&mut *con).unwrap();
        assert!(left > 0 && left <= 3000, "{k}: {left}");
    }
    assert!(
        eventually(Duration::from_secs(15), || keys.iter().all(|k| {
            redis::cmd("EXISTS")
                .arg(k)
                .query::<usize>(&mut *con)
                .unwrap()
                == 0
        })),
        "keys outlived their TTL"
    );
    assert_eq!(store.lookup(r.code()).unwrap(), Lookup::Free);
    assert_eq!(store.claim(r.code()).unwrap(), None, "expired: no match");
    assert_eq!(store.settle(r.code(), "tok-ttl", "s2").unwrap(), None);
}

const CODES_PER_RUN: usize = 200;

#[test]
fn settle_exactly_once_across_three_processes() {
    let t = target_or_skip!();
    let ns = fresh_ns("once");
    let tr = Tracker::redis(&t.url, &ns).unwrap();
    let mut bound = Vec::new();
    for i in 0..CODES_PER_RUN {
        let r = tr.reserve(6, None).unwrap();
        let token = format!("tok-{i}");
        tr.bind(&r, &token).unwrap();
        bound.push(format!("{}={token}", r.code()));
    }
    let list = bound.join(",");
    let children: Vec<_> = (0..3)
        .map(|i| {
            spawn_self(
                "settler_process",
                &[
                    ("FOTP_TEST_REDIS_URL", t.url.clone()),
                    ("FOTP_TEST_NS", ns.clone()),
                    ("FOTP_TEST_CODES", list.clone()),
                    ("FOTP_TEST_ID", i.to_string()),
                ],
            )
        })
        .collect();
    // Six settle calls per code (three processes, two threads each): one first, five duplicates.
    let mut firsts: Vec<String> = Vec::new();
    let mut duplicates = 0;
    for (_child, rx) in &children {
        let out = line_with(rx, "SETTLED ", Duration::from_secs(120));
        for item in out.split(',').filter(|s| !s.is_empty()) {
            let (code, verdict) = item.split_once(':').unwrap();
            match verdict {
                "first" => firsts.push(code.to_owned()),
                "dup" => duplicates += 1,
                v => panic!("{code}: {v}"),
            }
        }
    }
    let distinct: HashSet<_> = firsts.iter().collect();
    assert_eq!(
        firsts.len(),
        CODES_PER_RUN,
        "each code settled first exactly once"
    );
    assert_eq!(distinct.len(), CODES_PER_RUN);
    assert_eq!(duplicates, 5 * CODES_PER_RUN);
}

/// A child of `settle_exactly_once_across_three_processes`: settles every code from two
/// threads at once and prints what the store answered each time.
#[test]
#[ignore = "a child process of settle_exactly_once_across_three_processes"]
fn settler_process() {
    let url = env("FOTP_TEST_REDIS_URL");
    let id = env("FOTP_TEST_ID");
    let tr = Tracker::redis(&url, &env("FOTP_TEST_NS")).unwrap();
    let codes: Vec<(String, String)> = env("FOTP_TEST_CODES")
        .split(',')
        .map(|p| {
            let (c, t) = p.split_once('=').unwrap();
            (c.to_owned(), t.to_owned())
        })
        .collect();
    let verdicts = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for th in 0..2 {
            let (tr, codes, verdicts, id) = (&tr, &codes, &verdicts, &id);
            s.spawn(move || {
                for (code, token) in codes {
                    let v = tr
                        .store()
                        .settle(code, token, &format!("p{id}-t{th}-{code}"))
                        .unwrap();
                    let v = match v {
                        Some(true) => "first",
                        Some(false) => "dup",
                        None => "unbound",
                    };
                    verdicts.lock().unwrap().push((code.clone(), v));
                }
            });
        }
    });
    let out: Vec<String> = verdicts
        .into_inner()
        .unwrap()
        .iter()
        .map(|(c, v)| format!("{c}:{v}"))
        .collect();
    println!("SETTLED {}", out.join(","));
}

#[test]
fn wakeups_reach_waiters_in_other_processes() {
    let t = target_or_skip!();
    let ns = fresh_ns("wake");
    let tr = Tracker::redis(&t.url, &ns).unwrap();
    let r = tr.reserve(6, None).unwrap();
    tr.bind(&r, "tok-wake").unwrap();
    let vars = [
        ("FOTP_TEST_REDIS_URL", t.url.clone()),
        ("FOTP_TEST_NS", ns.clone()),
    ];
    let children: Vec<_> = (0..2)
        .map(|_| spawn_self("waiter_process", &vars))
        .collect();
    for (_, rx) in &children {
        line_with(rx, "READY", Duration::from_secs(60));
    }
    // Both subscribers are up (on a cluster, each on some node: the publish reaches them all).
    let channel = format!("{}wake", prefix(&t.url, &ns));
    let nodes = pubsub_nodes(&t.url, &ns);
    assert!(eventually(Duration::from_secs(20), || {
        nodes
            .iter()
            .filter_map(|n| {
                let mut c = redis::Client::open(format!("redis://{n}/"))
                    .ok()?
                    .get_connection_with_timeout(Duration::from_secs(1))
                    .ok()?;
                let (_, subs): (String, usize) = redis::cmd("PUBSUB")
                    .arg("NUMSUB")
                    .arg(&channel)
                    .query(&mut c)
                    .ok()?;
                Some(subs)
            })
            .sum::<usize>()
            >= 2
    }));
    let matched = Instant::now();
    assert!(!tr.store().claim(r.code()).unwrap().unwrap().duplicate);
    for (_, rx) in &children {
        // The waiters' only other way out is their 60 s time-out.
        let woke = line_with(rx, "WOKE ", Duration::from_secs(60));
        assert_eq!(woke, "true");
        assert!(matched.elapsed() < Duration::from_secs(30));
    }
}

/// A child of `wakeups_reach_waiters_in_other_processes`: subscribes, says READY, then waits.
#[test]
#[ignore = "a child process of wakeups_reach_waiters_in_other_processes"]
fn waiter_process() {
    let tr = Tracker::redis(&env("FOTP_TEST_REDIS_URL"), &env("FOTP_TEST_NS")).unwrap();
    // A wait for nothing returns once the subscriber is up (or after its time-out).
    assert!(!tr
        .store()
        .wait_matched("nobody", Duration::from_secs(2))
        .unwrap());
    println!("READY");
    let woke = tr
        .store()
        .wait_matched("tok-wake", Duration::from_secs(60))
        .unwrap();
    println!("WOKE {woke}");
}

/// Slack for "acknowledged after the replica fell behind": writes acknowledged just before it
/// was frozen may still have been in flight to it.
const LINK_SLACK: Duration = Duration::from_millis(200);

/// A section of `INFO` from the server at `addr`.
fn info(addr: &str, section: &str) -> String {
    try_info(addr, section).unwrap()
}

fn try_info(addr: &str, section: &str) -> redis::RedisResult<String> {
    redis::cmd("INFO")
        .arg(section)
        .query(&mut try_single(addr)?)
}

/// The value of `field` in an `INFO` text.
fn info_field(info: &str, field: &str) -> String {
    let prefix = format!("{field}:");
    info.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("INFO has no {field}"))
        .trim()
        .to_owned()
}

/// The pid of the server at `addr` (all on this machine).
fn pid_of(addr: &str) -> i32 {
    info_field(&info(addr, "server"), "process_id")
        .parse()
        .unwrap()
}

struct Settled {
    token: String,
    cb: Vec<u8>,
    /// When its verification began, and when the settlement was acknowledged.
    began: Instant,
    at: Instant,
}

#[test]
#[ignore = "kills the primary: run by scripts/test-redis-ha.sh on a cluster and on Sentinel"]
fn failover_during_settlements() {
    // One phone per verification, as in life: a callback confirms only its own verification.
    let phones = std::sync::atomic::AtomicUsize::new(0);
    let url = env("FOTP_TEST_REDIS_URL");
    let ns = fresh_ns("failover");
    let platform = Platform::start();
    let client = platform.client();
    let tr = Tracker::redis(&url, &ns).unwrap();
    let settled: Mutex<Vec<Settled>> = Mutex::default();
    let stop = AtomicBool::new(false);
    let wrong = Mutex::new(Vec::<String>::new());
    let errors = std::sync::atomic::AtomicUsize::new(0);
    let dup_on_first = std::sync::atomic::AtomicUsize::new(0);
    let kill_at: Mutex<Option<Instant>> = Mutex::default();
    let link_cut: Mutex<Option<Instant>> = Mutex::default();
    let mut unavailable = Duration::ZERO;
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let backoff = || {
                    errors.fetch_add(1, Ordering::Relaxed);
                    // A store that is failing over: do not spin on it.
                    std::thread::sleep(Duration::from_millis(20));
                };
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    let v = match tr.verify(&client, "2", 6, None) {
                        Ok(v) => v,
                        Err(_) => {
                            backoff();
                            continue;
                        }
                    };
                    let mobile = format!("86138{:08}", phones.fetch_add(1, Ordering::Relaxed));
                    platform.finish(&v.ft_token, "2", &mobile);
                    let body = platform.callback_body(&v.ft_token, &mobile);
                    let cb = fotp::parse_callback(&body).unwrap();
                    // The platform delivers again until the receiver acknowledges.
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        match tr.settle(&client, &cb) {
                            Ok(Settlement::First(m)) if m.ft_token == v.ft_token => {
                                settled.lock().unwrap().push(Settled {
                                    token: v.ft_token.clone(),
                                    cb: body.clone(),
                                    began,
                                    at: Instant::now(),
                                });
                                break;
                            }
                            Ok(Settlement::Duplicate(m)) if m.ft_token == v.ft_token => {
                                // An earlier attempt failed after its write landed.
                                dup_on_first.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            Ok(Settlement::First(m) | Settlement::Duplicate(m)) => {
                                wrong.lock().unwrap().push(m.ft_token);
                                break;
                            }
                            Ok(other) => {
                                // No match / unconfirmed for a bound, confirmed code: the
                                // reservation was lost in the failover. Counted as wrong only
                                // when it names another verification (above).
                                eprintln!("first delivery: {other:?}");
                                break;
                            }
                            Err(_) => backoff(),
                        }
                    }
                }
            });
        }
        let count = || settled.lock().unwrap().len();
        assert!(eventually(Duration::from_secs(60), || count() >= 200));
        let primary = primary_of(&url, &ns);
        let pid = pid_of(&primary);
        // The replica falls behind first (frozen, its link cut: as in a network split), so the
        // crash takes acknowledged writes with it: those made while the replica was behind.
        let mut pcon = single(&primary);
        let replica_pid = pid_of(&replica_of(&primary));
        // SAFETY: kill(2) on the pid the server reported; no memory is involved.
        assert_eq!(unsafe { libc::kill(replica_pid, libc::SIGSTOP) }, 0);
        let cut = Instant::now();
        let cut_links: usize = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("replica")
            .query(&mut pcon)
            .unwrap();
        assert!(cut_links >= 1, "the primary had no replica");
        // 20 settlements the replica misses; at most 500 ms frozen, well within the Sentinels'
        // `down-after-milliseconds` (1 s), so it stays eligible for promotion on a slow machine.
        let cut_at = count();
        eventually(Duration::from_millis(500), || count() >= cut_at + 20);
        let before = count();
        let at = Instant::now();
        // SAFETY: as above.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::kill(replica_pid, libc::SIGCONT) }, 0);
        *kill_at.lock().unwrap() = Some(at);
        *link_cut.lock().unwrap() = Some(cut);
        // Verifications begun after the crash, settled (in flight at the crash do not count).
        let after = |n: usize| {
            let s = settled.lock().unwrap();
            s.iter().filter(|x| x.began > at).count() >= n
        };
        assert!(
            eventually(Duration::from_secs(90), || after(1)),
            "no settlement after the failover"
        );
        unavailable = settled
            .lock()
            .unwrap()
            .iter()
            .filter(|x| x.began > at)
            .map(|x| x.at - at)
            .min()
            .unwrap();
        assert!(eventually(Duration::from_secs(60), || after(200)));
        stop.store(true, Ordering::Relaxed);
        eprintln!("killed primary {primary} (pid {pid}) after {before} settlements");
    });
    let kill_at = kill_at.into_inner().unwrap().unwrap();
    let cut = link_cut.into_inner().unwrap().unwrap();
    // The documented window: writes the promoted replica had not received, i.e. those
    // acknowledged while its link was down (its lag at the crash).
    let window_start = cut.checked_sub(LINK_SLACK).unwrap();
    let settled = settled.into_inner().unwrap();

    // Every callback delivered again: a duplicate, unless the failover lost its settlement.
    let mut lost_settlements = Vec::new();
    let mut lost_codes = 0;
    let mut outside_window = 0;
    for x in &settled {
        let cb = fotp::parse_callback(&x.cb).unwrap();
        let outcome = (0..100)
            .find_map(|_| match tr.settle(&client, &cb) {
                Ok(o) => Some(o),
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(50));
                    None
                }
            })
            .expect("the store answers after the failover");
        match outcome {
            Settlement::Duplicate(m) if m.ft_token == x.token => {}
            Settlement::First(m) if m.ft_token == x.token => {
                lost_settlements.push(kill_at.saturating_duration_since(x.at));
                outside_window += usize::from(x.at < window_start);
                assert!(
                    x.began < kill_at,
                    "a settlement made after the failover was lost"
                );
            }
            Settlement::First(m) | Settlement::Duplicate(m) => {
                wrong.lock().unwrap().push(m.ft_token)
            }
            Settlement::NoMatch | Settlement::Unconfirmed => {
                assert!(
                    x.began < kill_at,
                    "a code bound after the failover was lost"
                );
                outside_window += usize::from(x.at < window_start);
                lost_codes += 1;
            }
        }
    }
    let wrong = wrong.into_inner().unwrap();
    let max_age = lost_settlements.iter().max().copied().unwrap_or_default();
    println!(
        "FAILOVER FIGURES: settlements {}, replica link cut {} ms before the crash, primary \
         killed after {}, first settlement begun after the crash done {} ms after it, \
         errors retried {}, duplicates reported first {} (acknowledged at most {} ms before \
         the crash), codes lost {}, first deliveries answered duplicate {}, wrong matches {}",
        settled.len(),
        (kill_at - cut).as_millis(),
        settled.iter().filter(|x| x.began < kill_at).count(),
        unavailable.as_millis(),
        errors.load(Ordering::Relaxed),
        lost_settlements.len(),
        max_age.as_millis(),
        lost_codes,
        dup_on_first.load(Ordering::Relaxed),
        wrong.len(),
    );
    assert!(wrong.is_empty(), "wrong matches: {}", wrong.len());
    assert_eq!(
        outside_window, 0,
        "writes acknowledged before the replica fell behind were lost"
    );
}

/// The replica of the node serving `ns` (from the primary's replication info).
fn replica_of(primary: &str) -> String {
    let slave0 = info_field(&info(primary, "replication"), "slave0");
    let port = slave0
        .split(',')
        .find_map(|f| f.strip_prefix("port="))
        .expect("the primary has a replica");
    format!("127.0.0.1:{port}")
}

/// `addr`'s role; `None` when it cannot say yet: a Sentinel reconfiguring a node closes its
/// clients (`CLIENT KILL TYPE normal`), this query's included.
fn role(addr: &str) -> Option<String> {
    let r: redis::Value = redis::cmd("ROLE").query(&mut try_single(addr).ok()?).ok()?;
    match r {
        redis::Value::Array(v) => match v.first() {
            Some(redis::Value::BulkString(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            Some(redis::Value::SimpleString(s)) => Some(s.clone()),
            other => panic!("ROLE: {other:?}"),
        },
        other => panic!("ROLE: {other:?}"),
    }
}

#[test]
#[ignore = "fails the primary over: run by scripts/test-redis-ha.sh on a cluster and on Sentinel"]
fn switchover_is_followed_transparently() {
    let url = env("FOTP_TEST_REDIS_URL");
    let ns = fresh_ns("switch");
    let tr = Tracker::redis(&url, &ns).unwrap();
    // Every pooled connection in use once, so that all of them point at the old primary.
    let held: Vec<_> = std::thread::scope(|s| {
        (0..16)
            .map(|i| {
                let tr = &tr;
                s.spawn(move || {
                    let r = tr.reserve(6, None).unwrap();
                    tr.bind(&r, &format!("tok-{i}")).unwrap();
                    r
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect()
    });
    let old = primary_of(&url, &ns);
    let new = replica_of(&old);
    // Wait until the replica has everything, so the switchover loses nothing.
    assert!(eventually(Duration::from_secs(20), || {
        let offset = |addr: &str| info_field(&info(addr, "replication"), "master_repl_offset");
        offset(&old) == offset(&new)
    }));
    if url.starts_with("redis+sentinel://") {
        let service = url.rsplit_once('/').unwrap().1;
        let mut s = single(&hosts(&url)[0]);
        let _: String = redis::cmd("SENTINEL")
            .arg("FAILOVER")
            .arg(service)
            .query(&mut s)
            .unwrap();
    } else {
        let _: String = redis::cmd("CLUSTER")
            .arg("FAILOVER")
            .query(&mut single(&new))
            .unwrap();
    }
    // Done when the deployment names the new primary and the old one is its synced replica.
    assert!(
        eventually(Duration::from_secs(60), || primary_of(&url, &ns) == new
            && role(&old).as_deref() == Some("slave")
            && role(&new).as_deref() == Some("master")
            && try_info(&new, "replication")
                .is_ok_and(|i| i.contains("state=online"))),
        "the switchover did not finish"
    );
    // Every call succeeds: stale connections (READONLY, MOVED) are replaced transparently.
    for (i, r) in held.iter().enumerate() {
        assert_eq!(
            tr.store().lookup(r.code()).unwrap(),
            Lookup::Bound(format!("tok-{i}"))
        );
        assert_eq!(
            tr.store()
                .settle(r.code(), &format!("tok-{i}"), "s1")
                .unwrap(),
            Some(true),
            "settling {i} after the switchover"
        );
    }
    for _ in 0..32 {
        tr.reserve(6, None).unwrap();
    }
}
