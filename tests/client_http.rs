//! The client against an in-process HTTP server: exact requests and scripted failures.

mod support;

use std::time::{Duration, Instant};

use fotp::{Client, ErrorKind, Status, VerifyRequest};
use support::{client_for, query_status, Reply, Server, QUERY_OK, VERIFY_OK};

const TOKEN: &str = "44cadc6071214b968b3b3bb1cb5a6c24";

fn quick(b: fotp::ConfigBuilder) -> fotp::ConfigBuilder {
    b.timeout(Duration::from_secs(3))
}

#[test]
fn verify_sends_the_exact_signed_request() {
    let server = Server::always(200, VERIFY_OK);
    let client = client_for(&server, |b| b);
    let v = client
        .verify(&VerifyRequest::new("2").code("3872").validity_minutes(5))
        .unwrap();
    assert_eq!(v.ft_token, "200e96b6a8bf8ed8c3de194cf14b342f");
    assert_eq!(v.code, "3872");
    assert_eq!(v.message_id, "393801984179642368");

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/flash/opt/verify")
    );
    assert_eq!(
        r.body,
        br#"{"ftId":"2","code":"3872","validityPeriod":"5"}"#
    );
    assert_eq!(r.header("content-type"), "application/json;charset=utf-8");
    assert_eq!(r.header("user-agent"), format!("fotp/{}", fotp::VERSION));
    assert_eq!(r.header("appid"), "sandbox");
    let ts: u128 = r.header("timestamp").parse().unwrap();
    let now = support::now_millis();
    assert!(
        now.abs_diff(ts) < 5_000,
        "timestamp {ts} is not now ({now})"
    );
    let nonce = r.header("nonce");
    assert_eq!(nonce.len(), 32);
    assert!(nonce
        .bytes()
        .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
    assert!(support::hmac_sign_ok(
        b"sandbox-secret",
        "sandbox",
        r.header("timestamp"),
        nonce,
        &r.body,
        r.header("sign"),
    ));
}

#[test]
fn query_decodes_the_seed_and_keeps_the_base_path() {
    let server = Server::always(200, QUERY_OK);
    let client = Client::new(
        fotp::Config::builder(format!("{}/otp-api/", server.url()))
            .hmac_auth("sandbox", "sandbox-secret")
            .user_agent_suffix("rust-test/1")
            .build()
            .unwrap(),
    )
    .unwrap();
    let r = client.query(TOKEN).unwrap();
    assert_eq!(r.status, Status::Success);
    assert_eq!(r.code.as_deref(), Some("5777"));
    let req = &server.requests()[0];
    assert_eq!(req.path, "/otp-api/flash/opt/query");
    assert_eq!(req.body, format!(r#"{{"ftToken":"{TOKEN}"}}"#).as_bytes());
    assert_eq!(
        req.header("user-agent"),
        format!("fotp/{} rust-test/1", fotp::VERSION)
    );
}

#[test]
fn token_scheme_and_custom_signer() {
    let server = Server::always(200, QUERY_OK);
    let client = Client::new(
        fotp::Config::builder(server.url())
            .token_auth("key-1", "tok-1")
            .build()
            .unwrap(),
    )
    .unwrap();
    client.query(TOKEN).unwrap();
    let r = &server.requests()[0];
    assert_eq!(r.header("appkey"), "key-1");
    assert_eq!(r.header("authorization"), "tok-1");
    assert!(r.headers.get("sign").is_none());

    #[derive(Debug)]
    struct Fixed;
    impl fotp::Signer for Fixed {
        fn sign(&self, body: &[u8]) -> fotp::Result<Vec<fotp::Header>> {
            Ok(vec![("X-Body-Len".into(), body.len().to_string())])
        }
    }
    let client = Client::new(
        fotp::Config::builder(server.url())
            .signer(Fixed)
            .build()
            .unwrap(),
    )
    .unwrap();
    client.query(TOKEN).unwrap();
    let r = &server.requests()[1];
    assert_eq!(r.header("x-body-len"), r.body.len().to_string());
}

#[test]
fn invalid_input_sends_nothing() {
    let server = Server::always(200, VERIFY_OK);
    let client = client_for(&server, |b| b);
    let cases: Vec<(fotp::Result<()>, &str)> = vec![
        (client.verify(&VerifyRequest::new("")).map(drop), "ftId"),
        (
            client.verify(&VerifyRequest::new("2").code("12")).map(drop),
            "code",
        ),
        (
            client
                .verify(&VerifyRequest::new("2").validity_minutes(11))
                .map(drop),
            "validityPeriod",
        ),
        (client.query("").map(drop), "ftToken"),
        (client.query("has space").map(drop), "ftToken"),
        (client.wait("", Duration::from_secs(1)).map(drop), "ftToken"),
    ];
    for (result, field) in cases {
        let e = result.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.message().contains(field), "{e}");
    }
    assert_eq!(server.count(), 0);
}

#[test]
fn api_error_envelope() {
    let server = Server::always(
        200,
        r#"{"code":"200002","success":false,"message":"unknown ftId","data":null}"#,
    );
    let client = client_for(&server, quick);
    let e = client.verify(&VerifyRequest::new("9")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Api);
    assert_eq!(e.api_code(), Some("200002"));
    assert_eq!(e.message(), "unknown ftId");
    assert_eq!(e.http_status(), 200);
    // An API answer is final: no retry, for query either.
    let e = client.query(TOKEN).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Api);
    assert_eq!(server.count(), 2);
}

#[test]
fn query_retries_500_then_succeeds() {
    let server = Server::start(|n, _| {
        if n == 0 {
            Reply::json(500, "oops")
        } else {
            Reply::json(200, QUERY_OK)
        }
    });
    let client = client_for(&server, quick);
    let start = Instant::now();
    let r = client.query(TOKEN).unwrap();
    assert_eq!(r.status, Status::Success);
    assert_eq!(server.count(), 2);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    // Each attempt is signed afresh.
    let reqs = server.requests();
    assert_ne!(reqs[0].header("nonce"), reqs[1].header("nonce"));
}

#[test]
fn verify_is_not_retried_once_it_reached_the_server() {
    let server = Server::always(500, "oops");
    let client = client_for(&server, quick);
    let e = client.verify(&VerifyRequest::new("2")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::HttpStatus);
    assert_eq!(e.http_status(), 500);
    assert_eq!(server.count(), 1);
}

#[test]
fn retry_after_is_honoured() {
    let server = Server::start(|n, _| {
        if n == 0 {
            Reply::Full(
                429,
                vec![("retry-after", "1".into())],
                b"slow down".to_vec(),
            )
        } else {
            Reply::json(200, QUERY_OK)
        }
    });
    let client = client_for(&server, quick);
    let start = Instant::now();
    client.query(TOKEN).unwrap();
    let took = start.elapsed();
    assert_eq!(server.count(), 2);
    assert!(
        took >= Duration::from_millis(950),
        "Retry-After ignored: {took:?}"
    );
    assert!(took < Duration::from_millis(2500), "{took:?}");
}

#[test]
fn retry_after_past_the_call_bound_answers_at_once() {
    let server = Server::start(|_, _| {
        Reply::Full(429, vec![("retry-after", "30".into())], b"later".to_vec())
    });
    let client = client_for(&server, |b| {
        b.timeout(Duration::from_secs(3))
            .call_timeout(Duration::from_secs(2))
    });
    let start = Instant::now();
    let e = client.query(TOKEN).unwrap_err();
    assert_eq!((e.kind(), e.http_status()), (ErrorKind::HttpStatus, 429));
    assert_eq!(server.count(), 1);
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[test]
fn retry_after_is_capped_at_one_attempt_time_limit() {
    // Without a call bound, a pause never exceeds the per-attempt limit, so the call stays
    // within (retries + 1) x timeout plus the pauses.
    let server = Server::start(|_, _| {
        Reply::Full(429, vec![("retry-after", "30".into())], b"later".to_vec())
    });
    let client = client_for(&server, |b| {
        b.timeout(Duration::from_millis(300)).retries(2)
    });
    let start = Instant::now();
    let e = client.query(TOKEN).unwrap_err();
    let took = start.elapsed();
    assert_eq!((e.kind(), e.http_status()), (ErrorKind::HttpStatus, 429));
    assert_eq!(server.count(), 3);
    assert!(
        took >= Duration::from_millis(580) && took < Duration::from_millis(2000),
        "{took:?}"
    );
}

#[test]
fn bad_gateway_html() {
    let server = Server::start(|_, _| {
        Reply::Full(
            502,
            vec![],
            b"<html><body>Bad Gateway</body></html>".to_vec(),
        )
    });
    let client = client_for(&server, |b| b.retries(2));
    let start = Instant::now();
    let e = client.query(TOKEN).unwrap_err();
    assert_eq!((e.kind(), e.http_status()), (ErrorKind::HttpStatus, 502));
    assert_eq!(server.count(), 3, "query: first attempt + 2 retries");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let e = client.verify(&VerifyRequest::new("2")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::HttpStatus);
    assert_eq!(server.count(), 4, "verify: no retry");
}

#[test]
fn stall_past_the_time_limit() {
    let server = Server::start(|_, _| {
        Reply::After(
            Duration::from_secs(10),
            Box::new(Reply::json(200, QUERY_OK)),
        )
    });
    let client = client_for(&server, |b| {
        b.timeout(Duration::from_millis(400)).retries(2)
    });
    // The limit is per attempt: query tries three times, then gives up.
    let start = Instant::now();
    let e = client.query(TOKEN).unwrap_err();
    let took = start.elapsed();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.message().contains("400 ms"), "{e}");
    // 3 x 400 ms plus two back-off pauses (at most 100 + 200 ms).
    assert!(
        took >= Duration::from_millis(1190) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    assert_eq!(server.count(), 3);
    // verify reached the server: no retry.
    let start = Instant::now();
    let e = client.verify(&VerifyRequest::new("2")).unwrap_err();
    let took = start.elapsed();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(
        took >= Duration::from_millis(390) && took < Duration::from_millis(1200),
        "{took:?}"
    );
    assert_eq!(server.count(), 4);
}

#[test]
fn stalled_first_attempt_is_retried() {
    let server = Server::start(|n, _| {
        if n == 0 {
            Reply::After(
                Duration::from_secs(10),
                Box::new(Reply::json(200, QUERY_OK)),
            )
        } else {
            Reply::json(200, QUERY_OK)
        }
    });
    let client = client_for(&server, |b| {
        b.timeout(Duration::from_millis(500)).retries(2)
    });
    let start = Instant::now();
    let r = client.query(TOKEN).unwrap();
    let took = start.elapsed();
    assert_eq!(r.status, Status::Success);
    assert_eq!(server.count(), 2);
    // One timed-out attempt, one back-off pause (at most 100 ms), one quick answer.
    assert!(
        took >= Duration::from_millis(490) && took < Duration::from_millis(1500),
        "{took:?}"
    );
}

#[test]
fn call_timeout_bounds_the_whole_call() {
    let server = Server::start(|_, _| {
        Reply::After(
            Duration::from_secs(10),
            Box::new(Reply::json(200, QUERY_OK)),
        )
    });
    let client = client_for(&server, |b| {
        b.timeout(Duration::from_millis(400))
            .retries(5)
            .call_timeout(Duration::from_millis(700))
    });
    for verify in [false, true] {
        let start = Instant::now();
        let e = if verify {
            client.verify(&VerifyRequest::new("2")).unwrap_err()
        } else {
            client.query(TOKEN).unwrap_err()
        };
        let took = start.elapsed();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        let bound = if verify { 400 } else { 700 };
        assert!(
            took >= Duration::from_millis(bound - 10) && took < Duration::from_millis(bound + 700),
            "{verify}: {took:?}"
        );
    }
    // with_timeout: the same bound, set per call by bindings.
    let client = client_for(&server, |b| {
        b.timeout(Duration::from_millis(400)).retries(5)
    });
    let start = Instant::now();
    let e = client
        .with_timeout(Duration::from_millis(600))
        .query(TOKEN)
        .unwrap_err();
    let took = start.elapsed();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.message().contains("600 ms"), "{e}");
    assert!(
        took >= Duration::from_millis(590) && took < Duration::from_millis(1300),
        "{took:?}"
    );
    assert_eq!(
        client.with_timeout(Duration::from_secs(1)).call_timeout(),
        Some(Duration::from_secs(1))
    );
    assert_eq!(client.call_timeout(), None);
}

#[test]
fn dripped_body_cannot_outlast_the_time_limit() {
    let server =
        Server::start(|_, _| Reply::Drip(QUERY_OK.as_bytes().to_vec(), Duration::from_millis(20)));
    let client = client_for(&server, |b| {
        b.timeout(Duration::from_millis(700)).retries(0)
    });
    let start = Instant::now();
    let e = client.query(TOKEN).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn connection_closed_mid_body() {
    let server = Server::start(|_, _| Reply::CutMidBody(QUERY_OK.as_bytes().to_vec()));
    let client = client_for(&server, |b| b.retries(1));
    let start = Instant::now();
    let e = client.query(TOKEN).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");
    assert_eq!(server.count(), 2, "query retries a broken connection");
    assert!(start.elapsed() < Duration::from_secs(2));
    let e = client.verify(&VerifyRequest::new("2")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");
    assert_eq!(server.count(), 3, "verify reached the server: no retry");
}

#[test]
fn five_mib_body_is_refused_while_reading() {
    let server = Server::start(|_, _| Reply::Huge(5 * 1024 * 1024));
    let client = client_for(&server, quick);
    let start = Instant::now();
    let e = client.query(TOKEN).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
    assert!(e.message().contains("limit"), "{e}");
    assert_eq!(server.count(), 1, "a too-large answer is final");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn connection_refused_is_a_network_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = Client::new(
        fotp::Config::builder(format!("http://127.0.0.1:{port}"))
            .hmac_auth("a", "s")
            .retries(2)
            .build()
            .unwrap(),
    )
    .unwrap();
    let start = Instant::now();
    let e = client.verify(&VerifyRequest::new("2")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");
    assert_eq!(e.http_status(), 0);
    // Two back-off pauses at most (100-200 ms, then 200-400 ms).
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn wait_polls_until_final_and_times_out() {
    let server = Server::start(|n, _| {
        if n < 2 {
            Reply::json(200, &query_status("0"))
        } else {
            Reply::json(200, &query_status("1"))
        }
    });
    let client = client_for(&server, |b| b.poll_interval(Duration::from_millis(50)));
    let r = client.wait(TOKEN, Duration::from_secs(5)).unwrap();
    assert_eq!(r.status, Status::Failed);
    assert_eq!(server.count(), 3);

    let pending = Server::always(200, r#"{"code":"000000","data":{"status":0}}"#);
    let client = client_for(&pending, |b| b.poll_interval(Duration::from_millis(50)));
    let start = Instant::now();
    let e = client.wait(TOKEN, Duration::from_millis(600)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(590) && took < Duration::from_millis(1100),
        "{took:?}"
    );
    assert!(pending.count() >= 3);
}

#[test]
fn wait_bounds_a_query_in_flight() {
    let server = Server::start(|_, _| {
        Reply::After(
            Duration::from_secs(10),
            Box::new(Reply::json(200, QUERY_OK)),
        )
    });
    let client = client_for(&server, |b| b);
    let start = Instant::now();
    let e = client.wait(TOKEN, Duration::from_millis(500)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(
        start.elapsed() < Duration::from_millis(1200),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn confirm_callback_cross_checks() {
    let server = Server::always(200, QUERY_OK);
    let client = client_for(&server, |b| b);
    let mut cb = fotp::parse_callback(
        br#"{"mobile":"6285273203675","sender":"6285215410016","sendTime":"t","code":"5777"}"#,
    )
    .unwrap();
    assert!(client.confirm_callback(&cb, TOKEN).unwrap());
    cb.code = "5778".into();
    assert!(!client.confirm_callback(&cb, TOKEN).unwrap());
    cb.code = "5777".into();
    cb.mobile = "6285273203676".into();
    assert!(!client.confirm_callback(&cb, TOKEN).unwrap());
}

#[test]
fn one_client_shared_by_eight_threads() {
    let server = Server::start(|_, r| {
        if r.path.ends_with("verify") {
            Reply::json(200, VERIFY_OK)
        } else {
            Reply::json(200, QUERY_OK)
        }
    });
    let client = client_for(&server, |b| b);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..8 {
            let client = client.clone();
            s.spawn(move || {
                for _ in 0..25 {
                    let v = client.verify(&VerifyRequest::new("2")).unwrap();
                    assert_eq!(client.query(&v.ft_token).unwrap().status, Status::Success);
                }
            });
        }
    });
    assert_eq!(server.count(), 400);
    assert!(start.elapsed() < Duration::from_secs(20));
    let nonces: std::collections::HashSet<String> = server
        .requests()
        .iter()
        .map(|r| r.header("nonce").to_string())
        .collect();
    assert_eq!(nonces.len(), 400, "every request has its own nonce");
}

#[test]
fn client_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Client>();
}

#[test]
fn with_timeout_shortens_the_limit() {
    let server = Server::start(|_, _| {
        Reply::After(
            Duration::from_secs(10),
            Box::new(Reply::json(200, QUERY_OK)),
        )
    });
    let client = client_for(&server, |b| b);
    let short = client.with_timeout(Duration::from_millis(300));
    let start = Instant::now();
    assert_eq!(short.query(TOKEN).unwrap_err().kind(), ErrorKind::Timeout);
    assert!(start.elapsed() < Duration::from_millis(900));
}

#[test]
fn wait_rides_out_a_passing_outage() {
    // 503 four times (beyond the query's own retries), then success; 429 the same.
    for status in [503, 429] {
        let server = Server::start(move |n, _| {
            if n < 4 {
                Reply::json(status, "unavailable")
            } else {
                Reply::json(200, QUERY_OK)
            }
        });
        let client = client_for(&server, |b| {
            b.retries(1).poll_interval(Duration::from_millis(50))
        });
        let r = client.wait(TOKEN, Duration::from_secs(20)).unwrap();
        assert_eq!(r.status, Status::Success, "{status}");
        assert_eq!(server.count(), 5, "{status}");
    }
    // A failure that is not transient ends the wait at once.
    let server = Server::always(401, "no");
    let client = client_for(&server, |b| b.poll_interval(Duration::from_millis(50)));
    let e = client.wait(TOKEN, Duration::from_secs(20)).unwrap_err();
    assert_eq!((e.kind(), e.http_status()), (ErrorKind::HttpStatus, 401));
    assert_eq!(server.count(), 1);
}

#[test]
fn wait_makes_a_last_query_before_its_limit() {
    // Polls at 0 and ~250 ms; then 350 ms are left, less than the next interval (500 ms): the
    // old loop slept to the limit, now a last query sees the result.
    let server = Server::start(|n, _| {
        if n < 2 {
            Reply::json(200, &query_status("0"))
        } else {
            Reply::json(200, QUERY_OK)
        }
    });
    let client = client_for(&server, |b| b.poll_interval(Duration::from_secs(1)));
    let start = Instant::now();
    let r = client.wait(TOKEN, Duration::from_millis(600)).unwrap();
    assert_eq!(r.status, Status::Success);
    assert_eq!(server.count(), 3);
    assert!(start.elapsed() < Duration::from_millis(600));
}

/// Cancels `token` after `after` on another thread; returns when it was cancelled.
fn cancel_later(token: &fotp::CancelToken, after: Duration) -> std::thread::JoinHandle<Instant> {
    let token = token.clone();
    std::thread::spawn(move || {
        std::thread::sleep(after);
        token.cancel();
        Instant::now()
    })
}

#[track_caller]
fn assert_cancelled(
    result: fotp::Result<impl std::fmt::Debug>,
    trigger: std::thread::JoinHandle<Instant>,
) {
    let returned = Instant::now();
    let triggered = trigger.join().unwrap();
    let e = result.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.message().contains("cancelled"), "{e}");
    let late = returned.saturating_duration_since(triggered);
    assert!(
        late < Duration::from_millis(250),
        "returned {late:?} after the trigger"
    );
}

#[test]
fn cancel_stops_a_call_blocked_on_the_network() {
    // Blocked waiting for the status line, then mid-body.
    for reply in [0, 1] {
        let server = Server::start(move |_, _| {
            if reply == 0 {
                Reply::After(
                    Duration::from_secs(30),
                    Box::new(Reply::json(200, QUERY_OK)),
                )
            } else {
                Reply::HeadersThenSilence
            }
        });
        let client = client_for(&server, |b| b.timeout(Duration::from_secs(30)));
        let token = fotp::CancelToken::new();
        let watched = client.with_cancel(&token);
        assert!(!watched.cancelled());
        let trigger = cancel_later(&token, Duration::from_millis(300));
        assert_cancelled(watched.query(TOKEN), trigger);
        assert!(watched.cancelled() && !client.cancelled());
        // The shared pool still serves the uncancelled client.
        assert_eq!(
            client
                .with_timeout(Duration::from_millis(200))
                .query(TOKEN)
                .unwrap_err()
                .kind(),
            ErrorKind::Timeout
        );
    }
}

#[test]
fn cancel_wakes_pauses_and_waits() {
    // A Retry-After pause between attempts.
    let server = Server::start(|_, _| {
        Reply::Full(503, vec![("retry-after", "20".into())], b"busy".to_vec())
    });
    let client = client_for(&server, |b| b.timeout(Duration::from_secs(30)));
    let token = fotp::CancelToken::new();
    let trigger = cancel_later(&token, Duration::from_millis(300));
    assert_cancelled(client.with_cancel(&token).query(TOKEN), trigger);
    assert_eq!(server.count(), 1);

    // wait's sleep between polls.
    let pending = Server::always(200, r#"{"code":"000000","data":{"status":0}}"#);
    let client = client_for(&pending, |b| b.poll_interval(Duration::from_secs(30)));
    let token = fotp::CancelToken::new();
    let trigger = cancel_later(&token, Duration::from_millis(600));
    assert_cancelled(
        client
            .with_cancel(&token)
            .wait(TOKEN, Duration::from_secs(60)),
        trigger,
    );
}

#[test]
fn cancelled_verify_is_never_sent() {
    let server = Server::always(200, VERIFY_OK);
    let client = client_for(&server, |b| b);
    let token = fotp::CancelToken::new();
    token.cancel();
    let watched = client.with_cancel(&token);
    let e = watched.verify(&VerifyRequest::new("2")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.message().contains("cancelled"), "{e}");
    assert!(watched.query(TOKEN).is_err());
    // Derived clients keep both the token and the call bound, in either order.
    let both = watched.with_timeout(Duration::from_secs(5));
    assert!(both.cancelled());
    assert!(both.verify(&VerifyRequest::new("2")).is_err());
    let both = client
        .with_timeout(Duration::from_secs(5))
        .with_cancel(&token);
    assert_eq!(both.call_timeout(), Some(Duration::from_secs(5)));
    let deadline = both.call_deadline().unwrap();
    assert!(deadline > Instant::now() + Duration::from_secs(4));
    assert!(both
        .query(TOKEN)
        .unwrap_err()
        .message()
        .contains("cancelled"));
    assert_eq!(server.count(), 0);

    // Cancelled during the back-off after a refused connection: no later attempt is made.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = Client::new(
        fotp::Config::builder(format!("http://127.0.0.1:{port}"))
            .hmac_auth("a", "s")
            .retries(1000)
            .build()
            .unwrap(),
    )
    .unwrap();
    let token = fotp::CancelToken::new();
    let trigger = cancel_later(&token, Duration::from_millis(300));
    assert_cancelled(
        client.with_cancel(&token).verify(&VerifyRequest::new("2")),
        trigger,
    );
}

#[test]
fn cancel_over_tls_mid_read() {
    let (server, ca_pem) = Server::start_tls(|_, _| Reply::HeadersThenSilence);
    let dir = std::env::temp_dir().join(format!("fotp-cancel-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bundle = dir.join("ca.pem");
    std::fs::write(&bundle, ca_pem).unwrap();
    let client = Client::new(
        fotp::Config::builder(format!("https://localhost:{}", server.addr.port()))
            .hmac_auth("a", "s")
            .ca_bundle(&bundle)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    )
    .unwrap();
    let token = fotp::CancelToken::new();
    let trigger = cancel_later(&token, Duration::from_millis(300));
    assert_cancelled(client.with_cancel(&token).query(TOKEN), trigger);
    assert_eq!(server.count(), 1);
    std::fs::remove_dir_all(dir).ok();
}

/// A listener whose accept queue is full: a new connection attempt stalls (Linux drops the SYN).
/// Returns it with the connections that fill it (both must stay alive) and its address.
fn stalled_listener() -> (
    socket2::Socket,
    Vec<std::net::TcpStream>,
    std::net::SocketAddr,
) {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut held = Vec::new();
    loop {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(c) => held.push(c),
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
                break;
            }
        }
        assert!(held.len() < 64, "the accept queue never filled");
    }
    (listener, held, addr)
}

#[test]
fn a_stalled_connect_is_bounded_and_cancellable() {
    let (_listener, _held, addr) = stalled_listener();
    let client = Client::new(
        fotp::Config::builder(format!("http://{addr}"))
            .hmac_auth("a", "s")
            .connect_timeout(Duration::from_millis(300))
            .timeout(Duration::from_secs(5))
            .retries(1)
            .build()
            .unwrap(),
    )
    .unwrap();
    // verify never reached the server: retried once, each attempt cut at the connect limit.
    let start = Instant::now();
    let e = client.verify(&VerifyRequest::new("2")).unwrap_err();
    let took = start.elapsed();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.message().contains("connecting"), "{e}");
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(2000),
        "{took:?}"
    );
    // Cancelled while connecting.
    let slow = Client::new(
        fotp::Config::builder(format!("http://{addr}"))
            .hmac_auth("a", "s")
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    )
    .unwrap();
    let token = fotp::CancelToken::new();
    let trigger = cancel_later(&token, Duration::from_millis(300));
    assert_cancelled(slow.with_cancel(&token).query(TOKEN), trigger);
}
