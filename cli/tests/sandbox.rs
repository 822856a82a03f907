//! End to end through the core client against the in-process sandbox.

mod common;

use std::time::Duration;

use common::*;
use fotp::{ErrorKind, Status, VerifyRequest};
use fotp_cli::sandbox::Options;
use serde_json::{json, Value};

fn is_hex32(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn pull_mode_success() {
    let env = Env::default();
    let c = env.client();
    let v = c.verify(&VerifyRequest::new("2")).unwrap();
    assert!(is_hex32(&v.ft_token), "{}", v.ft_token);
    assert!(v.code.len() == 4 && v.code.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(
        v.url,
        format!("{}/flash/opt/redirect/{}", env.base(), v.ft_token)
    );
    assert!(!v.message_id.is_empty());
    let r = c.query(&v.ft_token).unwrap();
    assert_eq!(r.status, Status::Processing);
    assert_eq!(r.mobile, None);

    let ans = env.uplink(uplink_body(
        &v.ft_token,
        &format!("my code is {} thanks", v.code),
    ));
    assert_eq!(ans["code"], "000000", "{ans}");
    assert_eq!(ans["data"]["status"], "2");
    let r = c.wait(&v.ft_token, Duration::from_secs(5)).unwrap();
    assert_eq!(r.status, Status::Success);
    assert_eq!(r.mobile.as_deref(), Some("8613800138000"));
    assert_eq!(r.sender.as_deref(), Some("1008611"));
    assert_eq!(r.code.as_deref(), Some(v.code.as_str()));
    assert!(r.send_time.is_some() && r.deliver_time.is_some());
    assert!(c
        .confirm_callback(
            &fotp::Callback {
                mobile: "8613800138000".into(),
                sender: "1008611".into(),
                send_time: "t".into(),
                code: v.code.clone(),
                content: None,
                deliver_time: None,
                err: None,
            },
            &v.ft_token
        )
        .unwrap());
}

#[test]
fn tokens_and_codes_are_random_and_caller_code_is_kept() {
    let env = Env::default();
    let c = env.client();
    let a = c.verify(&VerifyRequest::new("2")).unwrap();
    let b = c.verify(&VerifyRequest::new("2")).unwrap();
    assert_ne!(a.ft_token, b.ft_token);
    assert_ne!(a.message_id, b.message_id);
    let v = c
        .verify(&VerifyRequest::new("2").code("654321").validity_minutes(10))
        .unwrap();
    assert_eq!(v.code, "654321");
    let s = env.session(&v.ft_token);
    let ttl = s["expiresAt"].as_u64().unwrap() - s["createdAt"].as_u64().unwrap();
    assert_eq!(ttl, 10 * 60_000);
    let s = env.session(&a.ft_token);
    assert_eq!(
        s["expiresAt"].as_u64().unwrap() - s["createdAt"].as_u64().unwrap(),
        5 * 60_000
    );
}

#[test]
fn push_mode_delivers_the_seed_shaped_callback() {
    let (env, rx) = push_env(ack, 3);
    let c = env.client();
    let v = c.verify(&VerifyRequest::new("7")).unwrap();
    let content = format!("Your VIP Key: ##FG5x-{}##", v.code);
    env.uplink(uplink_body(&v.ft_token, &content));
    let body = rx.next();
    let cb = fotp::parse_callback(&body).unwrap();
    assert_eq!(cb.mobile, "8613800138000");
    assert_eq!(cb.sender, "1008611");
    assert_eq!(cb.code, v.code);
    assert_eq!(cb.content.as_deref(), Some(content.as_str()));
    assert!(cb.deliver_time.is_some());
    assert_eq!(cb.err, None);
    let raw: Value = serde_json::from_slice(&body).unwrap();
    assert!(raw.get("err").is_none(), "no err on success: {raw}");
    assert!(c.confirm_callback(&cb, &v.ft_token).unwrap());
    let s = env.wait_session(&v.ft_token, |s| {
        s["callbacks"].as_array().unwrap().len() == 1
    });
    let a = &s["callbacks"][0];
    assert_eq!(a["attempt"], 1);
    assert_eq!(a["httpStatus"], 200);
    assert_eq!(a["answer"], fotp::CALLBACK_ACK);
    assert!(a["at"].as_u64().unwrap() > 0);
    assert_eq!(a["accepted"], true);
}

#[test]
fn wrong_code_fails_and_the_callback_says_why() {
    let (env, rx) = push_env(ack, 3);
    let c = env.client();
    let v = c.verify(&VerifyRequest::new("7").code("1234")).unwrap();
    let ans = env.uplink(uplink_body(&v.ft_token, "code 9999"));
    assert_eq!(ans["data"]["status"], "1");
    let r = c.wait(&v.ft_token, Duration::from_secs(5)).unwrap();
    assert_eq!(r.status, Status::Failed);
    assert_eq!(r.code.as_deref(), Some("9999"));
    let cb = fotp::parse_callback(&rx.next()).unwrap();
    assert_eq!(cb.code, "9999");
    assert!(cb.err.as_deref().unwrap().contains("does not match"));
    assert!(!c.confirm_callback(&cb, &v.ft_token).unwrap());
    // A final session takes no second uplink.
    let again = env.uplink(uplink_body(&v.ft_token, "code 1234"));
    assert_eq!(again["code"], "200001");
    assert!(again["message"].as_str().unwrap().contains("ftToken"));
}

#[test]
fn expired_sessions_fail_and_the_redirect_page_is_gone() {
    let env = Env::default();
    let c = env.client();
    let v = c
        .verify(&VerifyRequest::new("2").validity_minutes(1))
        .unwrap();
    let (status, page) = get(&v.url);
    assert_eq!(status, 200);
    assert!(page.contains(&v.code));
    env.sandbox.advance_clock(Duration::from_secs(59));
    assert_eq!(c.query(&v.ft_token).unwrap().status, Status::Processing);
    env.sandbox.advance_clock(Duration::from_secs(1));
    assert_eq!(c.query(&v.ft_token).unwrap().status, Status::Failed);
    assert_eq!(
        c.wait(&v.ft_token, Duration::from_secs(2)).unwrap().status,
        Status::Failed
    );
    let (status, page) = get(&v.url);
    assert_eq!(status, 410);
    assert!(page.contains("expired"));
    // The right code after expiry still fails.
    let ans = env.uplink(uplink_body(&v.ft_token, &v.code));
    assert_eq!(ans["data"]["status"], "1");
    assert!(ans["data"]["err"].as_str().unwrap().contains("expired"));
    assert_eq!(env.session(&v.ft_token)["expired"], true);
}

#[test]
fn clock_endpoint_advances_expiry() {
    let env = Env::default();
    let c = env.client();
    let v = c.verify(&VerifyRequest::new("2")).unwrap();
    let ans = post_json(
        &format!("{}/sandbox/clock", env.base()),
        &json!({"advanceMs": 300_000}),
    );
    assert_eq!(ans["code"], "000000");
    assert_eq!(c.query(&v.ft_token).unwrap().status, Status::Failed);
    let bad = post_json(
        &format!("{}/sandbox/clock", env.base()),
        &json!({"advanceMs": -1}),
    );
    assert_eq!(bad["code"], "200001");
}

#[test]
fn expired_sessions_are_evicted_after_the_retention() {
    let env = Env::start(Options {
        retention: Duration::from_secs(60),
        ..Options::default()
    });
    let c = env.client();
    let v = c
        .verify(&VerifyRequest::new("2").validity_minutes(1))
        .unwrap();
    env.sandbox.advance_clock(Duration::from_secs(60 + 61));
    let e = c.query(&v.ft_token).unwrap_err();
    assert_eq!(e.api_code(), Some("300001"));
}

#[test]
fn authentication_errors() {
    let env = Env::default();
    let base = env.base();
    let body = r#"{"ftId":"2"}"#;

    let (status, ok) = Raw::fresh().post(&base, "/flash/opt/verify", body);
    assert_eq!((status, ok["code"].as_str()), (200, Some("000000")), "{ok}");

    let mut bad = Raw::fresh();
    bad.secret = "wrong-secret";
    assert_eq!(
        bad.post(&base, "/flash/opt/verify", body).1["code"],
        "100001"
    );

    let mut unknown = Raw::fresh();
    unknown.app_id = "someone-else";
    assert_eq!(
        unknown.post(&base, "/flash/opt/verify", body).1["code"],
        "100001"
    );

    let mut garbage = Raw::fresh();
    garbage.sign = Some("zz".into());
    let (_, e) = garbage.post(&base, "/flash/opt/query", r#"{"ftToken":"x"}"#);
    assert_eq!(e["code"], "100001");
    assert_eq!(e["success"], false);
    assert!(!e.to_string().contains(SECRET));

    // The body is part of the signature: a signature over another body fails.
    let mut tampered = Raw::fresh();
    tampered.sign = Some(fotp::__internals::hmac_sha256_sign(
        SECRET.as_bytes(),
        "sandbox",
        &tampered.timestamp,
        &tampered.nonce,
        br#"{"ftId":"3"}"#,
    ));
    assert_eq!(
        tampered.post(&base, "/flash/opt/verify", body).1["code"],
        "100001"
    );

    for skew in [-301_000i64, 301_000] {
        let mut old = Raw::fresh();
        old.timestamp = (fotp::__internals::now_millis() as i64 + skew).to_string();
        let (status, e) = old.post(&base, "/flash/opt/verify", body);
        assert_eq!(
            (status, e["code"].as_str()),
            (200, Some("100002")),
            "{skew}: {e}"
        );
    }
    let mut near = Raw::fresh();
    near.timestamp = (fotp::__internals::now_millis() - 250_000).to_string();
    assert_eq!(
        near.post(&base, "/flash/opt/verify", body).1["code"],
        "000000"
    );

    let mut nan = Raw::fresh();
    nan.timestamp = "yesterday".into();
    assert_eq!(
        nan.post(&base, "/flash/opt/verify", body).1["code"],
        "100002"
    );

    let fixed = Raw::fresh();
    assert_eq!(
        fixed.post(&base, "/flash/opt/verify", body).1["code"],
        "000000"
    );
    let (_, e) = fixed.post(&base, "/flash/opt/verify", body);
    assert_eq!(e["code"], "100003", "{e}");
    // Replayed on the other endpoint too.
    let (_, e) = fixed.post(&base, "/flash/opt/query", body);
    assert_eq!(e["code"], "100003");

    // Missing headers.
    let mut r = agent()
        .post(format!("{base}/flash/opt/verify"))
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap();
    let e: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(e["code"], "100001");
    assert!(e["message"].as_str().unwrap().contains("appId"));

    // Through the client: a wrong secret is an API error with the sandbox's code.
    let c = fotp::Client::new(
        fotp::Config::builder(&base)
            .hmac_auth("sandbox", "nope")
            .build()
            .unwrap(),
    )
    .unwrap();
    let e = c.verify(&VerifyRequest::new("2")).unwrap_err();
    assert_eq!((e.kind(), e.api_code()), (ErrorKind::Api, Some("100001")));
}

#[test]
fn input_errors_name_the_field() {
    let env = Env::default();
    let base = env.base();
    let check = |path: &str, body: &str, code: &str, word: &str| {
        let (status, e) = Raw::fresh().post(&base, path, body);
        assert_eq!(status, 200);
        assert_eq!(e["code"], code, "{body}: {e}");
        assert_eq!(e["success"], false);
        let msg = e["message"].as_str().unwrap();
        assert!(msg.contains(word), "{body}: {msg} should name {word}");
    };
    check(
        "/flash/opt/verify",
        r#"{"ftId":"2","code":"12a4"}"#,
        "200001",
        "code",
    );
    check(
        "/flash/opt/verify",
        r#"{"ftId":"2","code":"123"}"#,
        "200001",
        "code",
    );
    check(
        "/flash/opt/verify",
        r#"{"ftId":"2","code":true}"#,
        "200001",
        "code",
    );
    check(
        "/flash/opt/verify",
        r#"{"ftId":"2","validityPeriod":"11"}"#,
        "200001",
        "validityPeriod",
    );
    check(
        "/flash/opt/verify",
        r#"{"ftId":"2","validityPeriod":"five"}"#,
        "200001",
        "validityPeriod",
    );
    check("/flash/opt/verify", r#"{"code":"1234"}"#, "200001", "ftId");
    check("/flash/opt/verify", r#"{"ftId":""}"#, "200001", "ftId");
    check("/flash/opt/verify", "not json", "200001", "JSON");
    check("/flash/opt/verify", "[1]", "200001", "object");
    check("/flash/opt/verify", r#"{"ftId":"99"}"#, "200002", "99");
    check("/flash/opt/query", r#"{}"#, "200001", "ftToken");
    check(
        "/flash/opt/query",
        r#"{"ftToken":"a b"}"#,
        "200001",
        "ftToken",
    );
    check(
        "/flash/opt/query",
        r#"{"ftToken":"0123456789abcdef0123456789abcdef"}"#,
        "300001",
        "ftToken",
    );
    // Integers are accepted where the platform sends strings.
    let (_, ok) = Raw::fresh().post(
        &base,
        "/flash/opt/verify",
        r#"{"ftId":2,"validityPeriod":3}"#,
    );
    assert_eq!(ok["code"], "000000", "{ok}");

    let c = env.client();
    let e = c.verify(&VerifyRequest::new("nope")).unwrap_err();
    assert_eq!((e.kind(), e.api_code()), (ErrorKind::Api, Some("200002")));
    let e = c.query("0123456789abcdef0123456789abcdef").unwrap_err();
    assert_eq!(e.api_code(), Some("300001"));
}

#[test]
fn uplink_errors() {
    let env = Env::default();
    let v = env.client().verify(&VerifyRequest::new("2")).unwrap();
    let check = |body: Value, code: &str, word: &str| {
        let e = env.uplink(body.clone());
        assert_eq!(e["code"], code, "{body}: {e}");
        assert!(e["message"].as_str().unwrap().contains(word), "{e}");
    };
    check(
        json!({"ftToken": v.ft_token, "mobile": "1", "content": "no code here"}),
        "200001",
        "content",
    );
    check(
        json!({"ftToken": v.ft_token, "content": "1234"}),
        "200001",
        "mobile",
    );
    check(
        json!({"ftToken": v.ft_token, "mobile": "12ab", "content": "1234"}),
        "200001",
        "mobile",
    );
    check(
        json!({"ftToken": v.ft_token, "mobile": "1", "content": "1234", "deliveries": 0}),
        "200001",
        "deliveries",
    );
    check(
        json!({"ftToken": v.ft_token, "mobile": "1", "content": "1234", "delayMs": "x"}),
        "200001",
        "delayMs",
    );
    check(
        json!({"ftToken": "0123456789abcdef0123456789abcdef", "mobile": "1", "content": "1234"}),
        "300001",
        "ftToken",
    );
    check(
        json!({"mobile": "1", "content": "code 000000"}),
        "300001",
        "code",
    );
    assert_eq!(
        env.session(&v.ft_token)["status"],
        "0",
        "errors leave the session alone"
    );
}

#[test]
fn uplink_without_token_matches_by_code() {
    let env = Env::default();
    let c = env.client();
    let a = c.verify(&VerifyRequest::new("2").code("4711")).unwrap();
    let b = c.verify(&VerifyRequest::new("2").code("8150")).unwrap();
    let ans = env.uplink(json!({"mobile": "+8613800000001", "content": "8150"}));
    assert_eq!(ans["data"]["ftToken"], b.ft_token.as_str());
    assert_eq!(c.query(&b.ft_token).unwrap().status, Status::Success);
    assert_eq!(c.query(&a.ft_token).unwrap().status, Status::Processing);
}

#[test]
fn callback_is_retried_until_acknowledged() {
    fn flaky(n: u32) -> (u16, &'static str) {
        match n {
            1 => (500, "oops"),
            2 => (200, r#"{"code":"1"}"#),
            3 => (200, "OK"),
            _ => (200, r#"{"code":"0"}"#),
        }
    }
    let (env, rx) = push_env(flaky, 5);
    let c = env.client();
    let v = c.verify(&VerifyRequest::new("7")).unwrap();
    env.uplink(uplink_body(&v.ft_token, &v.code));
    for _ in 0..4 {
        fotp::parse_callback(&rx.next()).unwrap();
    }
    let s = env.wait_session(&v.ft_token, |s| {
        s["callbacks"].as_array().unwrap().len() == 4
    });
    let attempts = s["callbacks"].as_array().unwrap();
    let got: Vec<(u64, u64, bool)> = attempts
        .iter()
        .map(|a| {
            (
                a["attempt"].as_u64().unwrap(),
                a["httpStatus"].as_u64().unwrap(),
                a["accepted"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, 500, false),
            (2, 200, false),
            (3, 200, false),
            (4, 200, true)
        ]
    );
    assert_eq!(attempts[0]["answer"], "oops");
    // No more attempts after the acknowledgement.
    assert!(rx.bodies.recv_timeout(Duration::from_millis(300)).is_err());
}

#[test]
fn callback_gives_up_after_the_attempt_limit() {
    fn down(_: u32) -> (u16, &'static str) {
        (503, "down")
    }
    let (env, rx) = push_env(down, 3);
    let v = env.client().verify(&VerifyRequest::new("7")).unwrap();
    env.uplink(uplink_body(&v.ft_token, &v.code));
    for _ in 0..3 {
        rx.next();
    }
    let s = env.wait_session(&v.ft_token, |s| {
        s["callbacks"].as_array().unwrap().len() == 3
    });
    assert!(s["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["accepted"] == false));
    assert!(
        rx.bodies.recv_timeout(Duration::from_millis(400)).is_err(),
        "only 3 attempts"
    );
    assert_eq!(*rx.hits.lock().unwrap(), 3);
}

#[test]
fn deliveries_push_several_times_after_the_delay() {
    let (env, rx) = push_env(ack, 3);
    let v = env.client().verify(&VerifyRequest::new("7")).unwrap();
    let started = std::time::Instant::now();
    let ans = env.uplink(json!({
        "ftToken": v.ft_token, "mobile": "8613800138000", "content": v.code,
        "deliveries": 3, "delayMs": 200
    }));
    assert_eq!(ans["data"]["deliveries"], 3);
    let bodies: Vec<_> = (0..3).map(|_| rx.next()).collect();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "the same callback each time"
    );
    let s = env.wait_session(&v.ft_token, |s| {
        s["callbacks"].as_array().unwrap().len() == 3
    });
    let deliveries: Vec<u64> = s["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["delivery"].as_u64().unwrap())
        .collect();
    assert_eq!(deliveries, [1, 2, 3]);
    assert!(rx.bodies.recv_timeout(Duration::from_millis(300)).is_err());
}

#[test]
fn session_limit_refuses_verify_until_sessions_expire() {
    let env = Env::start(Options {
        max_sessions: 2,
        ..Options::default()
    });
    let c = env.client();
    c.verify(&VerifyRequest::new("2").validity_minutes(1))
        .unwrap();
    c.verify(&VerifyRequest::new("2").validity_minutes(1))
        .unwrap();
    let e = c.verify(&VerifyRequest::new("2")).unwrap_err();
    assert_eq!(e.api_code(), Some("400001"));
    assert!(e.message().contains("limit"), "{e}");
    env.sandbox.advance_clock(Duration::from_secs(61));
    c.verify(&VerifyRequest::new("2")).unwrap();
}

#[test]
fn phone_page_form_performs_the_uplink() {
    let env = Env::default();
    let c = env.client();
    let v = c.verify(&VerifyRequest::new("2")).unwrap();
    let (status, page) = get(&v.url);
    assert_eq!(status, 200);
    assert!(page.contains("1008611"), "the number the SMS goes to");
    assert!(page.contains(&format!("verification code is {}", v.code)));
    assert!(page.contains("href=\"sms:1008611?body="));
    assert!(page.contains(&format!("action=\"/sandbox/send/{}\"", v.ft_token)));
    assert!(page.contains(">Send</button>"));
    assert!(!page.contains("<script"));

    let form = format!(
        "mobile=8613800138000&content=My+verification+code+is+{}",
        v.code
    );
    let mut r = agent()
        .post(format!("{}/sandbox/send/{}", env.base(), v.ft_token))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(form)
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let sent = r.body_mut().read_to_string().unwrap();
    assert!(sent.contains("data-status=\"2\""), "{sent}");
    assert_eq!(c.query(&v.ft_token).unwrap().status, Status::Success);
    let (_, again) = get(&v.url);
    assert!(again.contains("Already sent"));

    assert_eq!(
        get(&format!("{}/flash/opt/redirect/nope", env.base())).0,
        404
    );
    let (_, dash) = get(&format!("{}/", env.base()));
    assert!(dash.contains(&v.ft_token) && dash.contains("success"));
    assert!(!dash.contains(SECRET));
}

#[test]
fn sessions_document_has_the_contract_keys() {
    let env = Env::default();
    let v = env.client().verify(&VerifyRequest::new("2")).unwrap();
    let s = env.session(&v.ft_token);
    for key in [
        "ftToken",
        "ftId",
        "code",
        "status",
        "mobile",
        "expiresAt",
        "callbacks",
    ] {
        assert!(s.get(key).is_some(), "missing {key} in {s}");
    }
    assert_eq!(s["ftId"], "2");
    assert_eq!(s["status"], "0");
    assert!(s["callbacks"].as_array().unwrap().is_empty());
}

#[test]
fn many_clients_at_once() {
    let env = Env::default();
    let c = env.client();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let c = c.clone();
            scope.spawn(move || {
                for _ in 0..10 {
                    let v = c.verify(&VerifyRequest::new("2")).unwrap();
                    assert_eq!(c.query(&v.ft_token).unwrap().status, Status::Processing);
                }
            });
        }
    });
    let doc = get_json(&format!("{}/sandbox/sessions", env.base()));
    assert_eq!(doc["sessions"].as_array().unwrap().len(), 80);
}

/// The clock offset used to wrap: four advances of 2^63-1 ms made new sessions expire at
/// once (a query right after verify answered 300001). Advances now saturate.
#[test]
fn clock_advances_saturate_and_sessions_keep_their_validity() {
    let env = Env::default();
    let c = env.client();
    let clock = format!("{}/sandbox/clock", env.base());
    // After any advance, a fresh session is processing, with its whole validity ahead.
    for ms in [0u64, 1, 59_999, 300_000, 1 << 32, 1 << 53, u64::MAX / 3, 7] {
        env.sandbox.advance_clock(Duration::from_millis(ms));
        let v = c.verify(&VerifyRequest::new("2")).unwrap();
        assert_eq!(
            c.query(&v.ft_token).unwrap().status,
            Status::Processing,
            "{ms}"
        );
        let s = env.session(&v.ft_token);
        assert_eq!(
            s["expiresAt"].as_u64().unwrap() - s["createdAt"].as_u64().unwrap(),
            300_000
        );
    }
    let mut offsets = Vec::new();
    for _ in 0..4 {
        let ans = post_json(&clock, &json!({"advanceMs": i64::MAX}));
        assert_eq!(ans["code"], "000000", "{ans}");
        offsets.push(ans["data"]["offsetMs"].as_u64().unwrap());
    }
    assert!(offsets.windows(2).all(|w| w[0] == w[1]), "{offsets:?}");
    assert!(offsets[0] >= 365 * 86_400_000, "{offsets:?}");
    env.sandbox.advance_clock(Duration::MAX);
    for bad in [
        json!(u64::MAX),
        json!(1e30),
        json!("99999999999999999999999"),
        json!(-5),
    ] {
        let ans = post_json(&clock, &json!({"advanceMs": bad}));
        assert!(
            ans["code"] == "000000" || ans["code"] == "200001",
            "{bad}: {ans}"
        );
    }

    let v = c
        .verify(&VerifyRequest::new("2").validity_minutes(1))
        .unwrap();
    assert_eq!(c.query(&v.ft_token).unwrap().status, Status::Processing);
    let s = env.session(&v.ft_token);
    assert_eq!(
        s["expiresAt"].as_u64().unwrap() - s["createdAt"].as_u64().unwrap(),
        60_000
    );
    assert_eq!(s["expired"], false);
    let (status, page) = get(&v.url);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("expires in 0 min") || page.contains("expires in 1 min"),
        "{page}"
    );
    let ans = env.uplink(uplink_body(&v.ft_token, &v.code));
    assert_eq!(ans["data"]["status"], "2", "{ans}");
    assert_eq!(c.query(&v.ft_token).unwrap().status, Status::Success);
    // The dashboard still renders far-future times.
    assert_eq!(get(&format!("{}/", env.base())).0, 200);
}

/// A full nonce store used to answer 100003, the replay code, to every signed request.
#[test]
fn a_full_replay_store_answers_100004_never_a_replay() {
    let env = Env::start(Options {
        max_nonces: 20,
        ..Options::default()
    });
    let base = env.base();
    let first = Raw::fresh();
    let (_, ok) = first.post(&base, "/flash/opt/verify", r#"{"ftId":"2"}"#);
    assert_eq!(ok["code"], "000000", "{ok}");
    for _ in 1..20 {
        let (_, e) = Raw::fresh().post(&base, "/flash/opt/query", r#"{"ftToken":"x"}"#);
        assert_eq!(e["code"], "300001", "{e}");
    }
    let (status, e) = Raw::fresh().post(&base, "/flash/opt/verify", r#"{"ftId":"2"}"#);
    assert_eq!((status, e["code"].as_str()), (200, Some("100004")), "{e}");
    assert_eq!(e["success"], false);
    assert!(e["message"].as_str().unwrap().contains("full"), "{e}");
    // A replay is still reported as one.
    let (_, e) = first.post(&base, "/flash/opt/verify", r#"{"ftId":"2"}"#);
    assert_eq!(e["code"], "100003", "{e}");
    // Through the client: an API error carrying the code.
    let e = env.client().verify(&VerifyRequest::new("2")).unwrap_err();
    assert_eq!((e.kind(), e.api_code()), (ErrorKind::Api, Some("100004")));
    // Unsigned or badly signed requests never take room.
    let mut bad = Raw::fresh();
    bad.secret = "wrong";
    assert_eq!(
        bad.post(&base, "/flash/opt/verify", "{}").1["code"],
        "100001"
    );
}

#[test]
fn the_openapi_document_is_served() {
    let env = Env::default();
    let r = agent()
        .get(format!("{}/openapi.yaml", env.base()))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers().get("content-type").unwrap(), "application/yaml");
    let (_, text) = get(&format!("{}/openapi.yaml", env.base()));
    let file =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml"))
            .unwrap();
    assert_eq!(text, file);
    assert!(text.starts_with("openapi: 3.1"));
}
