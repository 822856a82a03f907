//! The rows of docs/ERRORS.md that the Rust API alone can provoke (a custom signer, a tracker
//! reservation that ran out of time, a Redis server that stops accepting the credentials).
//! The C, Python and Go rows are in tests/ffi_abi.rs, bindings/python/tests/test_error_kinds.py
//! and bindings/go/errorkinds_test.go.

mod support;
mod tracker_support;

use std::time::Duration;

use fotp::{Config, ErrorKind, Header, Signer, Tracker};
use support::{Reply, Server};

#[derive(Debug)]
struct BadSigner(&'static str, &'static str);

impl Signer for BadSigner {
    fn sign(&self, _body: &[u8]) -> fotp::Result<Vec<Header>> {
        Ok(vec![(self.0.into(), self.1.into())])
    }
}

#[test]
fn a_signer_producing_an_invalid_header_is_a_config_error_never_sent_nor_retried() {
    let server = Server::start(|_, _| Reply::json(200, support::QUERY_OK));
    for (name, value) in [("Authorization", "Bearer a\nb"), ("bad name", "v")] {
        let config = Config::builder(server.url())
            .signer(BadSigner(name, value))
            .retries(3)
            .build()
            .unwrap();
        let client = fotp::Client::new(config).unwrap();
        let e = client.query("tok").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        // The value may be a secret: never echoed.
        assert!(!e.message().contains("Bearer"), "{e}");
        let e = client.verify(&fotp::VerifyRequest::new("2")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    }
    assert_eq!(server.count(), 0, "nothing may be sent, let alone retried");
}

/// A clock the test moves by hand.
#[derive(Debug, Default)]
struct ManualClock(std::sync::Mutex<Duration>);

impl fotp::Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.0.lock().unwrap()
    }
}

#[test]
fn a_reservation_that_ran_out_of_time_before_bind_is_a_timeout_error() {
    let clock = std::sync::Arc::new(ManualClock::default());
    let t = Tracker::new(fotp::MemoryStore::with_clock(clock.clone()));
    let r = t.reserve(4, Some(1)).unwrap();
    // Past the validity (1 minute) and the grace.
    *clock.0.lock().unwrap() += Duration::from_secs(61) + fotp::DEFAULT_GRACE;
    let e = t.bind(&r, "tok").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    // Within its time, bind works.
    let t = Tracker::memory();
    let r = t.reserve(4, None).unwrap();
    t.bind(&r, "tok").unwrap();
}

#[cfg(feature = "redis")]
#[test]
fn redis_refusing_credentials_after_start_is_a_network_error_at_start_a_config_error() {
    let Some(redis) = tracker_support::Redis::start() else {
        return;
    };
    let set_pass = |con: &mut redis::Connection, pw: &str| {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("requirepass")
            .arg(pw)
            .query(con)
            .unwrap();
    };
    let mut con = redis.con();
    set_pass(&mut con, "first-pw");
    let url = format!("redis://:first-pw@127.0.0.1:{}/", redis.port);
    let t = Tracker::redis(&url, "kinds").unwrap();
    let cb = fotp::parse_callback(br#"{"mobile":"1","sender":"2","sendTime":"3","code":"1234"}"#)
        .unwrap();
    assert!(t.match_callback(&cb).unwrap().is_none());
    // The password is rotated and every connection dropped: the tracker reconnects with the
    // credentials it started with, which the server now refuses.
    let mut admin = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    set_pass(&mut admin, "second-pw");
    let _: redis::RedisResult<i64> = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query(&mut admin);
    let e = t.match_callback(&cb).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");
    assert!(!e.message().contains("first-pw"), "{e}");
    // Opening with those credentials now is the caller's configuration: config.
    let e = Tracker::redis(&url, "kinds").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
}
