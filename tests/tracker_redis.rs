//! The tracker's Redis store against a real `redis-server` (started per test on an ephemeral
//! loopback port). Skipped loudly when the binary is missing, unless FOTP_REQUIRE_REDIS is set.

#![cfg(feature = "redis")]

mod support;
mod tracker_support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use fotp::{ErrorKind, Status, Tracker};
use redis::Commands;
use tracker_support::{eventually, Platform, Redis};

macro_rules! redis_or_skip {
    () => {
        match Redis::start() {
            Some(r) => r,
            None => return,
        }
    };
}

fn keys(con: &mut redis::Connection) -> Vec<String> {
    let mut k: Vec<String> = con.keys("*").unwrap();
    k.sort();
    k
}

#[test]
fn two_processes_share_one_store_and_three_deliveries_match_once() {
    let redis = redis_or_skip!();
    let platform = Platform::start();
    let client = platform.client();
    // The waiter's poll interval is far beyond the test: only the store can wake it in time.
    let app_a = Tracker::redis(&redis.url(), "shop")
        .unwrap()
        .with_poll_interval(Duration::from_secs(600));
    let app_b = Tracker::redis(&redis.url(), "shop").unwrap();

    let v = app_a.verify(&client, "2", 4, Some(5)).unwrap();
    assert_eq!(v.code.len(), 4);
    assert_eq!(platform.session(&v.ft_token).unwrap().code, v.code);
    let sent: serde_json::Value =
        serde_json::from_slice(&platform.server.requests()[0].body).unwrap();
    assert_eq!(sent["code"], v.code.as_str(), "the tracker's code was sent");
    assert_eq!(sent["validityPeriod"], "5");

    let mut con = redis.con();
    let body = platform.callback_body(&v.ft_token, "8613800000000");
    let started = Instant::now();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| app_a.wait(&client, &v.ft_token, Duration::from_secs(60)));
        // Match only once the waiter's process listens for wake-ups, so the wake-up is what is
        // tested.
        assert!(eventually(Duration::from_secs(10), || {
            let subs: (String, usize) = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg("shop:wake")
                .query(&mut con)
                .unwrap();
            subs.1 == 1
        }));
        platform.finish(&v.ft_token, "2", "8613800000000");
        // `deliveries: 3`, arriving at once on three handler threads of the other process.
        let matches: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let cb = fotp::parse_callback(&body).unwrap();
                    app_b.match_callback(&cb).unwrap().expect("a live code")
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        assert!(matches.iter().all(|m| m.ft_token == v.ft_token));
        assert_eq!(matches.iter().filter(|m| !m.duplicate).count(), 1);

        let r = waiter.join().unwrap().unwrap();
        assert_eq!(r.status, Status::Success);
        assert_eq!(r.mobile.as_deref(), Some("8613800000000"));
        assert_eq!(r.code.as_deref(), Some(v.code.as_str()));
    });
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        platform.count("/flash/opt/query"),
        1,
        "one query, after the wake-up"
    );

    // A fourth delivery later is still a duplicate, from either process.
    let cb = fotp::parse_callback(&platform.callback_body(&v.ft_token, "1")).unwrap();
    assert!(app_a.match_callback(&cb).unwrap().unwrap().duplicate);
    // A second wait returns at once: the match is remembered.
    let again = app_b
        .wait(&client, &v.ft_token, Duration::from_secs(5))
        .unwrap();
    assert_eq!(again.status, Status::Success);

    // Every key is namespaced and will expire.
    for k in keys(&mut con) {
        assert!(k.starts_with("shop:"), "{k}");
        let ttl: i64 = con.pttl(&k).unwrap();
        assert!(ttl > 0 && ttl <= 6 * 60 * 1000, "{k}: {ttl}");
    }
}

#[test]
fn ten_thousand_concurrent_allocations_have_no_duplicate() {
    let redis = redis_or_skip!();
    let a = Tracker::redis(&redis.url(), "load").unwrap();
    let b = Tracker::redis(&redis.url(), "load").unwrap();
    let threads = 8;
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
    let mut con = redis.con();
    let live: usize = con.zcard("load:live:6").unwrap();
    assert_eq!(live, 10_000);
}

#[test]
fn exhaustion_is_shared_between_processes() {
    let redis = redis_or_skip!();
    let a = Tracker::redis(&redis.url(), "ex").unwrap();
    let b = Tracker::redis(&redis.url(), "ex").unwrap();
    let mut held = Vec::new();
    for i in 0..4500 {
        let t = if i % 2 == 0 { &a } else { &b };
        held.push(t.reserve(4, None).unwrap());
    }
    for t in [&a, &b] {
        let e = t.reserve(4, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Exhausted, "{e}");
    }
    // Other lengths are unaffected; a release makes room for one more.
    a.reserve(6, None).unwrap();
    b.release(&held.pop().unwrap()).unwrap();
    a.reserve(4, None).unwrap();
    assert_eq!(b.reserve(4, None).unwrap_err().kind(), ErrorKind::Exhausted);
}

#[test]
fn nothing_is_left_in_redis_after_the_ttl() {
    let redis = redis_or_skip!();
    let platform = Platform::start();
    let client = platform.client();
    // Long enough that a loaded machine still sees every key before it expires.
    let ttl = Duration::from_millis(2000);
    let t = Tracker::redis(&redis.url(), "ttl")
        .unwrap()
        .with_ttl_override(ttl);
    let v = t.verify(&client, "2", 5, None).unwrap();
    let cb = fotp::parse_callback(&platform.callback_body(&v.ft_token, "1")).unwrap();
    assert!(!t.match_callback(&cb).unwrap().unwrap().duplicate);
    let pending = t.reserve(4, None).unwrap();

    let mut con = redis.con();
    let all = keys(&mut con);
    assert_eq!(
        all.len(),
        5,
        "code x2, live set x2, match mark: {all:?} (pending {pending:?})"
    );
    for k in &all {
        let left: i64 = con.pttl(k).unwrap();
        assert!(left > 0 && left <= 2000, "{k}: {left}");
    }
    assert!(
        eventually(Duration::from_secs(10), || keys(&mut con).is_empty()),
        "left: {:?}",
        keys(&mut con)
    );
    assert_eq!(t.match_callback(&cb).unwrap(), None, "expired: no match");
}

#[test]
fn a_failed_verify_releases_its_code() {
    let redis = redis_or_skip!();
    let platform = Platform::start();
    let client = platform.client();
    let t = Tracker::redis(&redis.url(), "rel").unwrap();
    platform.fail_next_verifies(1);
    let e = t.verify(&client, "2", 4, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Api);
    let mut con = redis.con();
    let live: usize = con.zcard("rel:live:4").unwrap();
    assert_eq!(live, 0);
    assert!(keys(&mut con).is_empty(), "{:?}", keys(&mut con));
    // Invalid input never reaches the store or the platform.
    for (len, validity) in [(3, None), (7, None), (4, Some(0)), (4, Some(11))] {
        let e = t.verify(&client, "2", len, validity).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{len} {validity:?}");
    }
    assert_eq!(
        t.verify(&client, "", 4, None).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert!(keys(&mut con).is_empty());
    assert_eq!(platform.count("/flash/opt/verify"), 1);
}

#[test]
fn wait_falls_back_to_query_and_times_out() {
    let redis = redis_or_skip!();
    let platform = Platform::start();
    let client = platform.client();
    let t = Tracker::redis(&redis.url(), "poll")
        .unwrap()
        .with_poll_interval(Duration::from_millis(50));
    let v = t.verify(&client, "2", 4, None).unwrap();
    // No callback at all: a final status seen by query ends the wait.
    platform.finish(&v.ft_token, "1", "8613800000000");
    let r = t
        .wait(&client, &v.ft_token, Duration::from_secs(10))
        .unwrap();
    assert_eq!(r.status, Status::Failed);

    let w = t.verify(&client, "2", 4, None).unwrap();
    let started = Instant::now();
    let e = t
        .wait(&client, &w.ft_token, Duration::from_millis(300))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(!e.message().contains(&w.ft_token));
}

#[test]
fn redis_down_is_a_network_error_never_a_match() {
    let mut redis = redis_or_skip!();
    let platform = Platform::start();
    let client = platform.client();
    let t = Tracker::redis(&redis.url(), "down")
        .unwrap()
        .with_poll_interval(Duration::from_millis(50));
    let v = t.verify(&client, "2", 4, None).unwrap();
    let cb = fotp::parse_callback(&platform.callback_body(&v.ft_token, "1")).unwrap();
    redis.kill();

    let e = t.match_callback(&cb).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");
    assert_eq!(t.reserve(4, None).unwrap_err().kind(), ErrorKind::Network);
    // wait goes on by polling the platform, and says so when it runs out of time.
    let e = t
        .wait(&client, &v.ft_token, Duration::from_millis(300))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.message().contains("Redis store failed"), "{e}");
    platform.finish(&v.ft_token, "2", "8613800000000");
    let r = t
        .wait(&client, &v.ft_token, Duration::from_secs(10))
        .unwrap();
    assert_eq!(r.status, Status::Success);
    let before = platform.count("/flash/opt/verify");
    let e = t.verify(&client, "2", 4, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network);
    assert_eq!(
        platform.count("/flash/opt/verify"),
        before,
        "no verify without a reserved code"
    );

    // A server that is not there at all, a bad URL, a bad namespace.
    let e = Tracker::redis(&redis.url(), "down").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");
    let e = Tracker::redis("redis://:hunter2@[nope/", "ns").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(!e.message().contains("hunter2"), "{e}");
    for ns in ["", "a b", &"x".repeat(65)] {
        let e = Tracker::redis("redis://127.0.0.1:1/", ns).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{ns:?}");
    }
}

#[test]
fn debug_never_shows_the_redis_password() {
    let redis = redis_or_skip!();
    // Give the test server a password, as production servers have.
    let mut con = redis.con();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("s3cret-pw")
        .query(&mut con)
        .unwrap();
    let url = format!("redis://:s3cret-pw@127.0.0.1:{}/", redis.port);
    let t = Tracker::redis(&url, "pw").unwrap();
    let shown = format!("{t:?}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    let wrong = format!("redis://:wrong-pw@127.0.0.1:{}/", redis.port);
    let e = Tracker::redis(&wrong, "pw").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(!e.message().contains("wrong-pw"), "{e}");
}

#[test]
fn settle_is_shared_between_processes_and_a_repeated_call_answers_the_same() {
    use fotp::Settlement;
    let redis = redis_or_skip!();
    let platform = Platform::start();
    let client = platform.client();
    let a = Tracker::redis(&redis.url(), "settle").unwrap();
    let b = Tracker::redis(&redis.url(), "settle").unwrap();
    let v = a.verify(&client, "2", 4, None).unwrap();
    let genuine =
        fotp::parse_callback(&platform.callback_body(&v.ft_token, "8613800000000")).unwrap();
    // Before the SMS arrives, and from another phone after: unconfirmed, nothing consumed. The
    // unauthenticated match has its own record.
    assert_eq!(
        b.settle(&client, &genuine).unwrap(),
        Settlement::Unconfirmed
    );
    assert!(!b.match_callback(&genuine).unwrap().unwrap().duplicate);
    platform.finish(&v.ft_token, "2", "8613800000000");
    let forged = fotp::parse_callback(&platform.callback_body(&v.ft_token, "1")).unwrap();
    assert_eq!(a.settle(&client, &forged).unwrap(), Settlement::Unconfirmed);

    let Settlement::First(first) = b.settle(&client, &genuine).unwrap() else {
        panic!("first")
    };
    assert_eq!(first.ft_token, v.ft_token);
    assert!(
        matches!(a.settle(&client, &genuine).unwrap(), Settlement::Duplicate(m) if m.ft_token == v.ft_token)
    );
    // The handler in b failed: the next delivery, in either process, is the first again.
    b.unsettle(&first).unwrap();
    assert!(matches!(
        a.settle(&client, &genuine).unwrap(),
        Settlement::First(_)
    ));
    assert!(matches!(
        b.settle(&client, &genuine).unwrap(),
        Settlement::Duplicate(_)
    ));
    b.unsettle(&first).unwrap();
    assert!(
        matches!(
            b.settle(&client, &genuine).unwrap(),
            Settlement::Duplicate(_)
        ),
        "a stale first undoes nothing"
    );

    // The store's operations may be sent twice (an interrupted read): same answer both times.
    let w = a.verify(&client, "2", 5, None).unwrap();
    let store = a.store();
    assert_eq!(
        store.lookup(&w.code).unwrap(),
        fotp::Lookup::Bound(w.ft_token.clone())
    );
    assert_eq!(
        store.settle(&w.code, &w.ft_token, "id-1").unwrap(),
        Some(true)
    );
    assert_eq!(
        store.settle(&w.code, &w.ft_token, "id-1").unwrap(),
        Some(true)
    );
    assert_eq!(
        store.settle(&w.code, &w.ft_token, "id-2").unwrap(),
        Some(false)
    );
    assert_eq!(
        store.settle(&w.code, "another-token", "id-3").unwrap(),
        None
    );
    assert!(!store.claim(&w.code).unwrap().unwrap().duplicate);
    assert!(store.claim(&w.code).unwrap().unwrap().duplicate);
    let r = a.reserve(6, None).unwrap();
    let mut con = redis.con();
    let before: usize = con.zcard("settle:live:6").unwrap();
    assert_eq!(store.lookup(r.code()).unwrap(), fotp::Lookup::Reserved);
    a.bind(&r, "tok-r").unwrap();
    a.bind(&r, "tok-r").unwrap();
    assert_eq!(con.zcard::<_, usize>("settle:live:6").unwrap(), before);
    let cands: Vec<String> = (0..8).map(|i| format!("{}", 777_770 + i)).collect();
    let once = store
        .reserve(&cands, "ticket-x", 450_000, Duration::from_secs(60))
        .unwrap();
    let twice = store
        .reserve(&cands, "ticket-x", 450_000, Duration::from_secs(60))
        .unwrap();
    assert_eq!(once, fotp::Reserve::Reserved(0));
    assert_eq!(twice, once, "a repeated reserve takes no second code");
    assert_eq!(con.zcard::<_, usize>("settle:live:6").unwrap(), before + 1);
}

/// `n` verifications through `t`, each waited for on its own thread until `settle` has run,
/// then checked: every wait succeeds.
fn waits_survive(
    t: &Tracker,
    platform: &Platform,
    client: &fotp::Client,
    n: usize,
    during: impl FnOnce(&[fotp::Verification]),
) {
    let sessions: Vec<_> = (0..n)
        .map(|_| t.verify(client, "2", 6, None).unwrap())
        .collect();
    std::thread::scope(|s| {
        let waiters: Vec<_> = sessions
            .iter()
            .map(|v| {
                std::thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn_scoped(s, || t.wait(client, &v.ft_token, Duration::from_secs(120)))
                    .unwrap()
            })
            .collect();
        during(&sessions);
        for v in &sessions {
            platform.finish(&v.ft_token, "2", "8613800000000");
        }
        for (v, w) in sessions.iter().zip(waiters) {
            let r = w
                .join()
                .unwrap()
                .unwrap_or_else(|e| panic!("{}: {e}", v.ft_token));
            assert_eq!(r.status, Status::Success);
        }
    });
}

#[test]
fn a_thousand_concurrent_waits_keep_the_connection_count_bounded() {
    use fotp::RedisStore;
    let redis = redis_or_skip!();
    let platform = Platform::start();
    let client = platform.client();
    // Only wake-ups end these waits in time: the poll is 10 minutes away.
    let t = Tracker::redis(&redis.url(), "many")
        .unwrap()
        .with_poll_interval(Duration::from_secs(600));
    let bound = RedisStore::MAX_CONNECTIONS + 1 + 1; // pool, subscriber, and this test's own connection
    let mut most = 0;
    waits_survive(&t, &platform, &client, 1000, |sessions| {
        // Every waiter is between its check and its wake-up: settle them all while counting.
        for v in sessions {
            platform.finish(&v.ft_token, "2", "8613800000000");
        }
        for (i, v) in sessions.iter().enumerate() {
            let cb = fotp::parse_callback(&platform.callback_body(&v.ft_token, "8613800000000"))
                .unwrap();
            assert!(matches!(
                t.settle(&client, &cb).unwrap(),
                fotp::Settlement::First(_)
            ));
            if i % 50 == 0 {
                most = most.max(redis.clients());
            }
        }
    });
    most = most.max(redis.clients());
    assert!(
        most <= bound,
        "{most} connections for 1000 waits (bound {bound})"
    );
    assert!(
        most >= 2,
        "the subscriber and the pool were counted: {most}"
    );
}

#[test]
fn a_redis_restart_mid_run_is_invisible_to_callers() {
    let mut redis = redis_or_skip!();
    let platform = Platform::start();
    let client = platform.client();
    let t = Tracker::redis(&redis.url(), "restart")
        .unwrap()
        .with_poll_interval(Duration::from_millis(200));
    // Fill the pool with connections that the restart kills.
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..20 {
                    t.reserve(6, None).unwrap();
                }
            });
        }
    });
    waits_survive(&t, &platform, &client, 50, |sessions| {
        redis.restart();
        // Every pooled connection is dead now: each call replaces one, transparently.
        for v in sessions {
            platform.finish(&v.ft_token, "2", "8613800000000");
            let cb = fotp::parse_callback(&platform.callback_body(&v.ft_token, "8613800000000"))
                .unwrap();
            let got = t.settle(&client, &cb);
            assert!(matches!(got, Ok(fotp::Settlement::First(_))), "{got:?}");
        }
    });
}

#[test]
fn redis_stopped_for_good_waits_finish_by_polling() {
    let mut redis = redis_or_skip!();
    let platform = Platform::start();
    let client = platform.client();
    let t = Tracker::redis(&redis.url(), "gone")
        .unwrap()
        .with_poll_interval(Duration::from_millis(100));
    waits_survive(&t, &platform, &client, 20, |_| redis.kill());
}

#[test]
fn redis_wait_honours_the_clients_cancel_token_and_call_bound() {
    let redis = redis_or_skip!();
    let platform = Platform::start();
    let client = platform.client();
    let t = Tracker::redis(&redis.url(), "cancel")
        .unwrap()
        .with_poll_interval(Duration::from_secs(600));
    let v = t.verify(&client, "2", 4, None).unwrap();
    let cancel = fotp::CancelToken::new();
    let cancellable = client.with_cancel(&cancel);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| t.wait(&cancellable, &v.ft_token, Duration::from_secs(600)));
        std::thread::sleep(Duration::from_millis(200));
        let triggered = Instant::now();
        cancel.cancel();
        let e = waiter.join().unwrap().unwrap_err();
        assert!(e.message().contains("cancelled"), "{e}");
        assert!(
            triggered.elapsed() < Duration::from_secs(1),
            "{:?}",
            triggered.elapsed()
        );
    });
    let bounded = client.with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let e = t
        .wait(&bounded, &v.ft_token, Duration::from_secs(600))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
