//! The tracker with its in-memory store, against a fake platform on loopback.

mod support;
mod tracker_support;

use std::time::{Duration, Instant};

use fotp::{ErrorKind, MemoryStore, Settlement, Status, Store, Tracker};
use support::{Reply, Server};
use tracker_support::Platform;

#[test]
fn verify_sends_the_reserved_code_and_wait_is_woken_by_the_match() {
    let platform = Platform::start();
    let client = platform.client();
    let tracker = Tracker::memory().with_poll_interval(Duration::from_secs(600));
    let v = tracker.verify(&client, "2", 6, Some(3)).unwrap();
    assert_eq!(v.code.len(), 6);
    assert!(!v.code.starts_with('0'));
    let sent: serde_json::Value =
        serde_json::from_slice(&platform.server.requests()[0].body).unwrap();
    assert_eq!(sent["code"], v.code.as_str());
    assert_eq!(sent["validityPeriod"], "3");

    let body = platform.callback_body(&v.ft_token, "8613800000000");
    let started = Instant::now();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| tracker.wait(&client, &v.ft_token, Duration::from_secs(60)));
        platform.finish(&v.ft_token, "2", "8613800000000");
        let handler = tracker.clone();
        let firsts: usize = (0..3)
            .map(|_| {
                let m = handler
                    .match_callback(&fotp::parse_callback(&body).unwrap())
                    .unwrap()
                    .unwrap();
                assert_eq!(m.ft_token, v.ft_token);
                usize::from(!m.duplicate)
            })
            .sum();
        assert_eq!(firsts, 1);
        let r = waiter.join().unwrap().unwrap();
        assert_eq!(r.status, Status::Success);
    });
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(platform.count("/flash/opt/query"), 1);
}

#[test]
fn a_forged_callback_cannot_make_wait_report_success() {
    let platform = Platform::start();
    let client = platform.client();
    let tracker = Tracker::memory().with_poll_interval(Duration::from_millis(50));
    let v = tracker.verify(&client, "2", 4, None).unwrap();
    // The callback matches, but the platform still says "processing": wait keeps asking.
    let cb = fotp::parse_callback(&platform.callback_body(&v.ft_token, "1")).unwrap();
    assert!(!tracker.match_callback(&cb).unwrap().unwrap().duplicate);
    let e = tracker
        .wait(&client, &v.ft_token, Duration::from_millis(300))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(platform.count("/flash/opt/query") >= 2);
}

#[test]
fn wait_polls_when_no_callback_comes() {
    let platform = Platform::start();
    let client = platform.client();
    let tracker = Tracker::memory().with_poll_interval(Duration::from_millis(20));
    let v = tracker.verify(&client, "2", 4, None).unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| tracker.wait(&client, &v.ft_token, Duration::from_secs(20)));
        // Finish once the waiter has polled at least twice (an observable event).
        assert!(tracker_support::eventually(Duration::from_secs(10), || {
            platform.count("/flash/opt/query") >= 2
        }));
        platform.finish(&v.ft_token, "2", "8613800000000");
        assert_eq!(waiter.join().unwrap().unwrap().status, Status::Success);
    });
    // Bad token: refused before anything is sent.
    let before = platform.count("/flash/opt/query");
    let e = tracker
        .wait(&client, "bad token", Duration::from_secs(1))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(platform.count("/flash/opt/query"), before);
}

#[test]
fn wait_returns_api_errors_at_once() {
    let platform = Platform::start();
    let client = platform.client();
    let tracker = Tracker::memory().with_poll_interval(Duration::from_millis(20));
    let e = tracker
        .wait(&client, "unknown-token", Duration::from_secs(20))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Api);
    assert_eq!(e.api_code(), Some("300001"));
}

#[test]
fn failed_verify_releases_the_code() {
    let platform = Platform::start();
    let client = platform.client();
    let store = std::sync::Arc::new(MemoryStore::new());
    let tracker = Tracker::with_store(store.clone());
    platform.fail_next_verifies(2);
    for _ in 0..2 {
        let e = tracker.verify(&client, "2", 4, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Api);
    }
    assert_eq!(store.live(4).unwrap(), 0);
    tracker.verify(&client, "2", 4, None).unwrap();
    assert_eq!(store.live(4).unwrap(), 1);
}

#[test]
fn a_platform_that_ignores_the_code_is_refused() {
    // Answers verify with a fixed code, whatever was sent.
    let server = Server::start(|_, _| Reply::json(200, support::VERIFY_OK));
    let client = support::client_for(&server, |b| b.retries(0));
    let store = std::sync::Arc::new(MemoryStore::new());
    let tracker = Tracker::with_store(store.clone());
    // The sample's code is 3872: a 5-digit code can never equal it.
    let e = tracker.verify(&client, "2", 5, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
    assert_eq!(store.live(5).unwrap(), 0);
}

#[test]
fn exhausted_is_reported_with_its_kind() {
    let tracker = Tracker::memory();
    let held: Vec<_> = (0..4500)
        .map(|_| tracker.reserve(4, None).unwrap())
        .collect();
    let platform = Platform::start();
    let e = tracker
        .verify(&platform.client(), "2", 4, None)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Exhausted);
    assert_eq!(e.kind() as i32, 8);
    assert_eq!(platform.count("/flash/opt/verify"), 0);
    drop(held);
}

/// A clock the test moves by hand, for expiry without waiting.
#[derive(Debug, Default)]
struct ManualClock(std::sync::atomic::AtomicU64);

impl ManualClock {
    fn advance(&self, d: Duration) {
        self.0
            .fetch_add(d.as_millis() as u64, std::sync::atomic::Ordering::SeqCst);
    }
}

impl fotp::Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_millis(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

fn cb_for(code: &str, mobile: &str) -> fotp::Callback {
    fotp::parse_callback(
        serde_json::json!({"mobile": mobile, "sender": "1008611", "sendTime": "2025-05-15 11:23:34", "code": code})
            .to_string()
            .as_bytes(),
    )
    .unwrap()
}

const USER: &str = "8613800000000";
const ATTACKER: &str = "8613999999999";

#[test]
fn nine_thousand_forged_callbacks_never_hide_a_genuine_one() {
    let platform = Platform::start();
    let client = platform.client();
    let tracker = Tracker::memory();
    let sessions: Vec<_> = (0..20)
        .map(|_| tracker.verify(&client, "2", 4, None).unwrap())
        .collect();
    // Every 4-digit code, from the attacker's number, through the unauthenticated match and
    // through settle: settle consumes nothing, whatever match recorded.
    let mut unconfirmed = 0;
    for code in 1000..10_000 {
        let forged = cb_for(&code.to_string(), ATTACKER);
        tracker.match_callback(&forged).unwrap();
        match tracker.settle(&client, &forged).unwrap() {
            Settlement::NoMatch => {}
            Settlement::Unconfirmed => unconfirmed += 1,
            other => panic!("a forged callback settled: {other:?}"),
        }
    }
    assert_eq!(
        unconfirmed,
        sessions.len(),
        "each live code was queried once"
    );
    // The users' SMS arrive; the platform delivers each genuine callback 3 times, at once.
    for v in &sessions {
        platform.finish(&v.ft_token, "2", USER);
    }
    for v in &sessions {
        let genuine = cb_for(&v.code, USER);
        let outcomes: Vec<Settlement> = std::thread::scope(|s| {
            (0..3)
                .map(|_| s.spawn(|| tracker.settle(&client, &genuine).unwrap()))
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect()
        });
        let firsts = outcomes
            .iter()
            .filter(|o| matches!(o, Settlement::First(m) if m.ft_token == v.ft_token))
            .count();
        let dups = outcomes
            .iter()
            .filter(|o| matches!(o, Settlement::Duplicate(m) if m.ft_token == v.ft_token))
            .count();
        assert_eq!((firsts, dups), (1, 2), "{outcomes:?}");
    }
}

#[test]
fn a_failed_handler_is_offered_the_next_delivery_once() {
    let platform = Platform::start();
    let client = platform.client();
    let tracker = Tracker::memory();
    let v = tracker.verify(&client, "2", 5, None).unwrap();
    platform.finish(&v.ft_token, "2", USER);
    let cb = cb_for(&v.code, USER);
    let Settlement::First(first) = tracker.settle(&client, &cb).unwrap() else {
        panic!("first delivery")
    };
    // The handler raises: undo. Unsettling a duplicate first must not undo anything.
    let Settlement::Duplicate(dup) = tracker.settle(&client, &cb).unwrap() else {
        panic!("duplicate")
    };
    tracker.unsettle(&dup).unwrap();
    assert!(matches!(
        tracker.settle(&client, &cb).unwrap(),
        Settlement::Duplicate(_)
    ));
    tracker.unsettle(&first).unwrap();
    let outcomes: Vec<Settlement> = (0..3)
        .map(|_| tracker.settle(&client, &cb).unwrap())
        .collect();
    assert!(matches!(&outcomes[0], Settlement::First(m) if m.ft_token == v.ft_token));
    assert!(matches!(&outcomes[1], Settlement::Duplicate(_)));
    assert!(matches!(&outcomes[2], Settlement::Duplicate(_)));
    // The stale first match cannot undo the new settlement either.
    tracker.unsettle(&first).unwrap();
    assert!(matches!(
        tracker.settle(&client, &cb).unwrap(),
        Settlement::Duplicate(_)
    ));
}

#[test]
fn settle_wakes_the_waiter_and_a_failed_query_consumes_nothing() {
    let platform = Platform::start();
    let client = platform.client();
    let tracker = Tracker::memory().with_poll_interval(Duration::from_secs(600));
    let v = tracker.verify(&client, "2", 4, None).unwrap();
    let cb = cb_for(&v.code, USER);
    // The platform is unreachable: the error, and nothing consumed.
    let failing = Server::always(503, "{}");
    let down = support::client_for(&failing, |b| b.retries(0));
    let e = tracker.settle(&down, &cb).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::HttpStatus, "{e}");
    std::thread::scope(|s| {
        let waiter = s.spawn(|| tracker.wait(&client, &v.ft_token, Duration::from_secs(60)));
        platform.finish(&v.ft_token, "2", USER);
        assert!(matches!(
            tracker.settle(&client, &cb).unwrap(),
            Settlement::First(_)
        ));
        assert_eq!(waiter.join().unwrap().unwrap().status, Status::Success);
    });
}

#[test]
fn a_late_callback_never_settles_a_newer_verification_with_the_same_code() {
    let platform = Platform::start();
    let client = platform.client();
    let clock = std::sync::Arc::new(ManualClock::default());
    let store = std::sync::Arc::new(MemoryStore::with_clock(clock.clone()));
    let tracker = Tracker::with_store(store.clone());
    let old = tracker.verify(&client, "2", 4, Some(1)).unwrap();
    // The old verification expires from the tracker; a new one is given the same code.
    clock.advance(Duration::from_secs(3600));
    assert_eq!(store.live(4).unwrap(), 0);
    let new = client
        .verify(&fotp::VerifyRequest::new("2").code(&old.code))
        .unwrap();
    assert_eq!(
        store
            .reserve(
                std::slice::from_ref(&old.code),
                "new-ticket",
                4500,
                Duration::from_secs(600)
            )
            .unwrap(),
        fotp::Reserve::Reserved(0)
    );
    assert!(store.bind(&old.code, "new-ticket", &new.ft_token).unwrap());
    // The platform retries the old verification's callback late (the old user succeeded).
    platform.finish(&old.ft_token, "2", USER);
    let late = cb_for(&old.code, USER);
    assert_eq!(
        tracker.settle(&client, &late).unwrap(),
        Settlement::Unconfirmed
    );
    // The new user succeeds from another phone: the late callback still does not confirm.
    platform.finish(&new.ft_token, "2", "8613700000000");
    assert_eq!(
        tracker.settle(&client, &late).unwrap(),
        Settlement::Unconfirmed
    );
    let genuine = cb_for(&old.code, "8613700000000");
    assert!(
        matches!(tracker.settle(&client, &genuine).unwrap(), Settlement::First(m) if m.ft_token == new.ft_token)
    );
}

#[test]
fn a_verify_that_times_out_after_sending_keeps_its_code_until_the_ttl() {
    // The platform receives verify and answers too late: it may hold a session with the code.
    let server = Server::start(|_, _| {
        Reply::After(
            Duration::from_secs(3),
            Box::new(Reply::json(200, support::VERIFY_OK)),
        )
    });
    let client = support::client_for(&server, |b| {
        b.retries(0).timeout(Duration::from_millis(300))
    });
    let clock = std::sync::Arc::new(ManualClock::default());
    let store = std::sync::Arc::new(MemoryStore::with_clock(clock.clone()));
    let tracker = Tracker::with_store(store.clone());
    let e = tracker.verify(&client, "2", 4, Some(1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(server.count(), 1, "the request was sent");
    assert_eq!(
        store.live(4).unwrap(),
        1,
        "kept while the platform may hold it"
    );
    clock.advance(Duration::from_secs(60) + fotp::DEFAULT_GRACE);
    assert_eq!(store.live(4).unwrap(), 0, "freed with its TTL");

    // Nobody listening: the request surely never arrived, so the code is freed at once.
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        drop(l);
        url
    };
    let client = fotp::Client::new(
        fotp::Config::builder(&refused)
            .hmac_auth("a", "b")
            .retries(0)
            .build()
            .unwrap(),
    )
    .unwrap();
    let e = tracker.verify(&client, "2", 4, Some(1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");
    assert_eq!(store.live(4).unwrap(), 0);
}

/// A wait through a client made with a cancel token ends soon after the trigger, and one made
/// with a call bound ends at that bound, whatever the wait's own limit.
fn wait_honours_cancel_and_call_bound(tracker: &Tracker, client: &fotp::Client, token: &str) {
    let cancel = fotp::CancelToken::new();
    let cancellable = client.with_cancel(&cancel);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| tracker.wait(&cancellable, token, Duration::from_secs(600)));
        std::thread::sleep(Duration::from_millis(200));
        let triggered = Instant::now();
        cancel.cancel();
        let e = waiter.join().unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert!(e.message().contains("cancelled"), "{e}");
        assert!(
            triggered.elapsed() < Duration::from_secs(1),
            "{:?}",
            triggered.elapsed()
        );
    });
    let bounded = client.with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let e = tracker
        .wait(&bounded, token, Duration::from_secs(600))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn wait_honours_the_clients_cancel_token_and_call_bound() {
    let platform = Platform::start();
    let client = platform.client();
    let tracker = Tracker::memory().with_poll_interval(Duration::from_secs(600));
    let v = tracker.verify(&client, "2", 4, None).unwrap();
    wait_honours_cancel_and_call_bound(&tracker, &client, &v.ft_token);
}

#[test]
fn a_callback_racing_the_verify_answer_is_not_acknowledged_away() {
    // The platform may push the callback before verify's answer reaches the tracker (the code
    // is reserved, not yet bound): acknowledging it would lose the result; 503 gets it again.
    let platform = Platform::start();
    let client = platform.client();
    let tracker = Tracker::memory();
    let r = tracker.reserve(4, None).unwrap();
    let v = client
        .verify(&fotp::VerifyRequest::new("2").code(r.code()))
        .unwrap();
    platform.finish(&v.ft_token, "2", USER);
    let cb = cb_for(r.code(), USER);
    assert_eq!(
        tracker.settle(&client, &cb).unwrap(),
        Settlement::Unconfirmed
    );
    tracker.bind(&r, &v.ft_token).unwrap();
    assert!(
        matches!(tracker.settle(&client, &cb).unwrap(), Settlement::First(m) if m.ft_token == v.ft_token)
    );
}
