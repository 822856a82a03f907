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
    within(start, Duration::from_millis(1200));
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
