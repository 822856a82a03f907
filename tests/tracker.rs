//! The tracker with its in-memory store, against a fake platform on loopback.

mod support;
mod tracker_support;

use std::time::{Duration, Instant};

use fotp::{ErrorKind, MemoryStore, Status, Tracker};
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
    assert_eq!(store.live(4), 0);
    tracker.verify(&client, "2", 4, None).unwrap();
    assert_eq!(store.live(4), 1);
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
    assert_eq!(store.live(5), 0);
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
