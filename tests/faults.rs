//! Fault injection: a misbehaving server must never hang the client, crash it or make it buffer
//! without bound. Each case asserts the error kind and a bound on time.

mod support;

use std::time::{Duration, Instant};

use fotp::{Client, ErrorKind, VerifyRequest};
use support::{client_for, Reply, Server, QUERY_OK};

const TOKEN: &str = "44cadc6071214b968b3b3bb1cb5a6c24";

fn within(start: Instant, limit: Duration) {
    let took = start.elapsed();
    assert!(took < limit, "took {took:?}, limit {limit:?}");
}

#[test]
fn headers_then_silence() {
    let server = Server::start(|_, _| Reply::HeadersThenSilence);
    let client = client_for(&server, |b| {
        b.timeout(Duration::from_millis(500)).retries(3)
    });
    let start = Instant::now();
    let e = client.query(TOKEN).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(e.http_status(), 200, "the status line did arrive");
    // The limit is per attempt: 4 attempts of 500 ms, plus back-off pauses of at most
    // 100 + 200 + 400 ms.
    assert_eq!(server.count(), 4);
    assert!(start.elapsed() >= Duration::from_millis(1990));
    within(start, Duration::from_millis(3500));
}

#[test]
fn endless_body_stops_at_the_limit() {
    let server = Server::start(|_, _| Reply::Endless);
    let client = client_for(&server, |b| b.timeout(Duration::from_secs(5)));
    let start = Instant::now();
    let e = client.query(TOKEN).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
    assert_eq!(server.count(), 1);
    within(start, Duration::from_secs(3));
}

#[test]
fn content_length_shorter_than_the_body() {
    // The client reads what was declared; the rest is not JSON it will see.
    let server = Server::start(|_, _| Reply::WrongLength(20, QUERY_OK.as_bytes().to_vec()));
    let client = client_for(&server, |b| b.timeout(Duration::from_secs(2)));
    let e = client.query(TOKEN).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Decode | ErrorKind::Network),
        "{e}"
    );
}

#[test]
fn content_length_longer_than_the_body() {
    let server = Server::start(|_, _| Reply::WrongLength(10_000, QUERY_OK.as_bytes().to_vec()));
    let client = client_for(&server, |b| b.timeout(Duration::from_secs(2)).retries(1));
    let start = Instant::now();
    let e = client.query(TOKEN).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Network | ErrorKind::Timeout),
        "{e}"
    );
    within(start, Duration::from_secs(3));
}

#[test]
fn compressed_answers_are_not_inflated() {
    // The client never asks for compression, so a compression bomb cannot reach it: a gzip body
    // is just bytes that are not JSON.
    let server = Server::start(|_, _| {
        Reply::Full(
            200,
            vec![("content-encoding", "gzip".into())],
            vec![0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3],
        )
    });
    let client = client_for(&server, |b| b);
    let e = client.query(TOKEN).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
    let req = &server.requests()[0];
    assert!(req.headers.get("accept-encoding").is_none());
}

#[test]
fn dns_failure_is_a_network_error() {
    let client = Client::new(
        fotp::Config::builder("https://fotp-test.invalid")
            .hmac_auth("a", "s")
            .retries(0)
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap(),
    )
    .unwrap();
    let start = Instant::now();
    let e = client.verify(&VerifyRequest::new("2")).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Network | ErrorKind::Timeout),
        "{e}"
    );
    within(start, Duration::from_secs(6));
}

#[test]
fn long_run_of_500s_is_bounded_by_the_retry_count() {
    let server = Server::always(500, "down");
    let client = client_for(&server, |b| b.retries(4).timeout(Duration::from_secs(10)));
    let start = Instant::now();
    let e = client.query(TOKEN).unwrap_err();
    assert_eq!((e.kind(), e.http_status()), (ErrorKind::HttpStatus, 500));
    assert_eq!(server.count(), 5);
    // Back-off: at most 100+200+400+800 ms.
    within(start, Duration::from_secs(3));
}

#[test]
fn self_signed_tls_needs_the_ca_bundle() {
    let (server, ca_pem) = Server::start_tls(|_, _| Reply::json(200, QUERY_OK));
    let url = format!("https://localhost:{}", server.addr.port());

    let plain = Client::new(
        fotp::Config::builder(url.clone())
            .hmac_auth("a", "s")
            .retries(2)
            .build()
            .unwrap(),
    )
    .unwrap();
    let e = plain.query(TOKEN).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");
    assert!(
        e.message().contains("TLS") || e.message().contains("certificate"),
        "{e}"
    );
    assert_eq!(server.count(), 0);

    let dir = std::env::temp_dir().join(format!("fotp-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bundle = dir.join("ca.pem");
    std::fs::write(&bundle, ca_pem).unwrap();
    let trusting = Client::new(
        fotp::Config::builder(url)
            .hmac_auth("a", "s")
            .ca_bundle(&bundle)
            .build()
            .unwrap(),
    )
    .unwrap();
    let r = trusting.query(TOKEN).unwrap();
    assert_eq!(r.status, fotp::Status::Success);
    assert_eq!(server.count(), 1);

    // The same through the environment variable, as users set it.
    let b = fotp::ConfigBuilder::from_lookup(|k| match k {
        "FOTP_BASE_URL" => Some(format!("https://localhost:{}", server.addr.port())),
        "FOTP_APP_ID" => Some("a".into()),
        "FOTP_APP_SECRET" => Some("s".into()),
        "FOTP_CA_BUNDLE" => Some(bundle.display().to_string()),
        _ => None,
    })
    .unwrap();
    Client::new(b.build().unwrap())
        .unwrap()
        .query(TOKEN)
        .unwrap();
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn secrets_never_appear_in_errors() {
    const SECRET: &str = "s3cr3t-VALUE-never-shown";
    const TOK: &str = "t0ken-VALUE-never-shown";
    let servers = [
        Server::always(500, "x"),
        Server::always(
            200,
            r#"{"code":"100001","message":"authentication failed"}"#,
        ),
        Server::always(200, "not json"),
    ];
    for server in &servers {
        for client in [
            client_for(server, |b| b.hmac_auth("app", SECRET).retries(0)),
            client_for(server, |b| b.token_auth("key", TOK).retries(0)),
        ] {
            let e = client.verify(&VerifyRequest::new("2")).unwrap_err();
            let shown = format!("{e} {e:?} {client:?}");
            assert!(!shown.contains(SECRET) && !shown.contains(TOK), "{shown}");
        }
    }
    let e = fotp::Config::builder("http://example.com")
        .hmac_auth("app", SECRET)
        .build()
        .unwrap_err();
    assert!(!format!("{e} {e:?}").contains(SECRET));
}

#[test]
fn redirects_are_not_followed() {
    // Following a redirect could downgrade to plain HTTP or leak the signed request elsewhere.
    let target = Server::always(200, QUERY_OK);
    let location = format!("{}/elsewhere", target.url());
    let server = Server::start(move |_, _| {
        Reply::Full(302, vec![("location", location.clone())], Vec::new())
    });
    let client = client_for(&server, |b| b);
    let e = client.query(TOKEN).unwrap_err();
    assert_eq!((e.kind(), e.http_status()), (ErrorKind::HttpStatus, 302));
    assert_eq!(target.count(), 0);
}

/// A server answering 429 with `Retry-After: value` once, then success; returns how long the
/// query took and how many requests the server saw.
fn retry_after_case(value: String, timeout: Duration) -> (Duration, usize) {
    let server = Server::start(move |n, _| {
        if n == 0 {
            Reply::Full(429, vec![("retry-after", value.clone())], b"later".to_vec())
        } else {
            Reply::json(200, QUERY_OK)
        }
    });
    let client = client_for(&server, |b| b.timeout(timeout).retries(2));
    let start = Instant::now();
    let r = client.query(TOKEN).unwrap();
    assert_eq!(r.status, fotp::Status::Success);
    (start.elapsed(), server.count())
}

#[test]
fn retry_after_seconds_dates_and_garbage() {
    let quick = Duration::from_millis(600);
    let date = |offset: i64| {
        let now = std::time::SystemTime::now();
        let t = if offset >= 0 {
            now + Duration::from_secs(offset as u64)
        } else {
            now - Duration::from_secs(offset.unsigned_abs())
        };
        httpdate::fmt_http_date(t)
    };
    // (header, lower bound, upper bound) of the whole query, per-attempt limit 3 s; dates are
    // made when their case runs.
    type Value = Box<dyn Fn() -> String>;
    let fixed = |v: &'static str| -> Value { Box::new(move || v.to_string()) };
    let cases: Vec<(Value, Duration, Duration)> = vec![
        (fixed("0"), Duration::ZERO, quick),
        (
            fixed("1"),
            Duration::from_millis(950),
            Duration::from_millis(2500),
        ),
        // An HTTP-date 2 s ahead: a pause of 1-2 s (the date has whole seconds).
        (
            Box::new(move || date(2)),
            Duration::from_millis(900),
            Duration::from_millis(3000),
        ),
        // A date in the past: no pause.
        (Box::new(move || date(-60)), Duration::ZERO, quick),
        // Ignored: the usual back-off (at most 100 ms) applies.
        (fixed("-1"), Duration::ZERO, quick),
        (fixed("soon"), Duration::ZERO, quick),
        (fixed("1.5"), Duration::ZERO, quick),
        (fixed(""), Duration::ZERO, quick),
        (
            fixed("Mon, 99 Foo 2026 99:99:99 GMT"),
            Duration::ZERO,
            quick,
        ),
    ];
    for (value, low, high) in cases {
        let value = value();
        let (took, count) = retry_after_case(value.clone(), Duration::from_secs(3));
        assert_eq!(count, 2, "{value:?}");
        assert!(took >= low && took < high, "{value:?}: {took:?}");
    }
}

#[test]
fn huge_retry_after_is_capped_not_a_crash() {
    // Used to panic: "overflow when adding duration to instant".
    for value in [
        "18446744073709551615",
        "99999999999999999999999999999999",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ] {
        let (took, count) = retry_after_case(value.into(), Duration::from_millis(700));
        assert_eq!(count, 2, "{value}");
        // Capped at one attempt's limit.
        assert!(
            took >= Duration::from_millis(690) && took < Duration::from_millis(2000),
            "{value}: {took:?}"
        );
    }
}

#[test]
fn huge_durations_from_rust_do_not_panic() {
    let server = Server::start(|n, _| {
        if n % 2 == 0 {
            Reply::Full(503, vec![("retry-after", "0".into())], b"busy".to_vec())
        } else {
            Reply::json(200, QUERY_OK)
        }
    });
    let client = client_for(&server, |b| {
        b.timeout(Duration::MAX)
            .connect_timeout(Duration::MAX)
            .call_timeout(Duration::MAX)
            .poll_interval(Duration::MAX)
    });
    assert_eq!(client.query(TOKEN).unwrap().status, fotp::Status::Success);
    let r = client.wait(TOKEN, Duration::MAX).unwrap();
    assert_eq!(r.status, fotp::Status::Success);
    let derived = client.with_timeout(Duration::MAX);
    derived.query(TOKEN).unwrap();
    derived
        .verify(&VerifyRequest::new("2"))
        .expect_err("the query body is no verification");
    assert!(derived.call_deadline().is_none(), "too far to represent");
    // Zero: the bound is already over, a clean timeout.
    let e = client
        .with_timeout(Duration::ZERO)
        .query(TOKEN)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    let e = client.wait(TOKEN, Duration::ZERO).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
}
