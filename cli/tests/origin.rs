//! The sandbox answers control requests only from its own origin (CONTRACT.md section 7):
//! what a web page in the same browser, a DNS-rebinding page or another user could try.

mod common;

use std::net::SocketAddr;

use common::*;
use fotp::{Status, VerifyRequest};
use fotp_cli::sandbox::Options;
use serde_json::Value;

fn addr(env: &Env) -> SocketAddr {
    env.sandbox.addr()
}

fn host(env: &Env) -> String {
    format!("127.0.0.1:{}", addr(env).port())
}

fn origin(env: &Env) -> String {
    format!("http://{}", host(env))
}

fn uplink_text(token: &str, code: &str) -> String {
    format!(r#"{{"ftToken":"{token}","mobile":"8613800138000","content":"{code}"}}"#)
}

/// What a page on another site can send without a CORS preflight: `text/plain` (fetch with
/// `mode: "no-cors"`) and HTML form posts, with the browser's `Origin`.
#[test]
fn cross_site_posts_are_refused_and_change_nothing() {
    let env = Env::default();
    let c = env.client();
    let v = c.verify(&VerifyRequest::new("2")).unwrap();
    let body = uplink_text(&v.ft_token, &v.code);
    let h = host(&env);
    let evil = "http://attacker.example";
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, u16);
    let cases: Vec<Case> = vec![
        (
            "text/plain from a foreign origin",
            vec![
                ("Host", &h),
                ("Origin", evil),
                ("Content-Type", "text/plain;charset=UTF-8"),
            ],
            body.clone(),
            403,
        ),
        (
            "text/plain without Origin",
            vec![("Host", &h), ("Content-Type", "text/plain")],
            body.clone(),
            415,
        ),
        (
            "form post from a foreign origin",
            vec![
                ("Host", &h),
                ("Origin", evil),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            format!(
                "ftToken={}&mobile=8613800138000&content={}",
                v.ft_token, v.code
            ),
            403,
        ),
        (
            "form post without Origin",
            vec![
                ("Host", &h),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            format!("mobile=1&content={}", v.code),
            415,
        ),
        (
            "JSON from a sandboxed frame (Origin: null)",
            vec![
                ("Host", &h),
                ("Origin", "null"),
                ("Content-Type", "application/json"),
            ],
            body.clone(),
            403,
        ),
        (
            "JSON with a foreign Referer",
            vec![
                ("Host", &h),
                ("Referer", "http://attacker.example/page"),
                ("Content-Type", "application/json"),
            ],
            body.clone(),
            403,
        ),
        (
            "JSON marked cross-site by the browser",
            vec![
                ("Host", &h),
                ("Sec-Fetch-Site", "cross-site"),
                ("Content-Type", "application/json"),
            ],
            body.clone(),
            403,
        ),
        (
            // Sites ignore ports: another local app is "same-site", still not us.
            "JSON from another port of the same host",
            vec![
                ("Host", &h),
                ("Origin", "http://127.0.0.1:1"),
                ("Sec-Fetch-Site", "same-site"),
                ("Content-Type", "application/json"),
            ],
            body.clone(),
            403,
        ),
    ];
    for (what, headers, body, want) in cases {
        let (status, _, text) = raw_http(addr(&env), "POST", "/sandbox/uplink", &headers, &body);
        assert_eq!(status, want, "{what}: {text}");
        assert!(!text.contains(&v.code), "{what}: {text}");
    }
    // The clock is a control path too.
    let (status, _, _) = raw_http(
        addr(&env),
        "POST",
        "/sandbox/clock",
        &[
            ("Host", &h),
            ("Origin", evil),
            ("Content-Type", "text/plain"),
        ],
        r#"{"advanceMs": 600000}"#,
    );
    assert_eq!(status, 403);
    assert_eq!(c.query(&v.ft_token).unwrap().status, Status::Processing);

    // The same request from the sandbox's own origin goes through.
    let o = origin(&env);
    let (status, _, text) = raw_http(
        addr(&env),
        "POST",
        "/sandbox/uplink",
        &[
            ("Host", &h),
            ("Origin", &o),
            ("Sec-Fetch-Site", "same-origin"),
            ("Content-Type", "application/json; charset=utf-8"),
        ],
        &body,
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(c.query(&v.ft_token).unwrap().status, Status::Success);
}

/// The phone page's own form keeps working from its own origin, and only from there.
#[test]
fn the_phone_form_needs_its_own_origin() {
    let env = Env::default();
    let c = env.client();
    let v = c.verify(&VerifyRequest::new("2")).unwrap();
    let path = format!("/sandbox/send/{}", v.ft_token);
    let form = format!("mobile=8613800138000&content={}", v.code);
    let h = host(&env);
    let page = format!("{}/flash/opt/redirect/{}", origin(&env), v.ft_token);
    for (what, headers) in [
        (
            "foreign Origin",
            vec![("Origin", "http://attacker.example")],
        ),
        ("Origin: null", vec![("Origin", "null")]),
        ("cross-site", vec![("Sec-Fetch-Site", "cross-site")]),
    ] {
        let mut all = vec![
            ("Host", h.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ];
        all.extend(headers);
        let (status, _, text) = raw_http(addr(&env), "POST", &path, &all, &form);
        assert_eq!(status, 403, "{what}: {text}");
    }
    assert_eq!(c.query(&v.ft_token).unwrap().status, Status::Processing);
    // Not a form: refused before it is read.
    let (status, _, _) = raw_http(
        addr(&env),
        "POST",
        &path,
        &[("Host", &h), ("Content-Type", "text/plain")],
        &form,
    );
    assert_eq!(status, 415);
    // What Chromium sends for the page's own Send.
    let o = origin(&env);
    let (status, _, text) = raw_http(
        addr(&env),
        "POST",
        &path,
        &[
            ("Host", &h),
            ("Origin", &o),
            ("Referer", &page),
            ("Sec-Fetch-Site", "same-origin"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &form,
    );
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("data-status=\"2\""), "{text}");
    assert_eq!(c.query(&v.ft_token).unwrap().status, Status::Success);
}

/// DNS rebinding: a page on attacker.example, its name now resolving to 127.0.0.1, reads
/// the sandbox as its own origin. Its requests carry `Host: attacker.example`.
#[test]
fn a_foreign_host_is_refused() {
    let env = Env::default();
    let v = env.client().verify(&VerifyRequest::new("2")).unwrap();
    let port = addr(&env).port();
    for (method, path) in [
        ("GET", "/sandbox/sessions".to_owned()),
        ("GET", "/".to_owned()),
        ("GET", format!("/flash/opt/redirect/{}", v.ft_token)),
        ("POST", "/flash/opt/query".to_owned()),
    ] {
        for h in [
            format!("attacker.example:{port}"),
            "attacker.example".to_owned(),
            format!("127.0.0.1.attacker.example:{port}"),
            format!("localhost.attacker.example:{port}"),
            format!("10.0.0.1:{port}"),
            String::new(),
        ] {
            let (status, _, text) = raw_http(
                addr(&env),
                method,
                &path,
                &[("Host", &h), ("Content-Type", "application/json")],
                "{}",
            );
            assert_eq!(status, 403, "{method} {path} Host {h:?}: {text}");
            assert!(!text.contains(&v.ft_token), "{text}");
        }
    }
    // Without any Host header at all.
    let (status, _, _) = raw_http(addr(&env), "GET", "/sandbox/sessions", &[], "");
    assert_eq!(status, 403);
    // The names that are ours: the address dialled, and localhost (any case, trailing dot).
    for h in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LocalHost.:{port}"),
        // Ports are not compared (port mappings).
        "localhost".to_owned(),
    ] {
        let (status, _, text) =
            raw_http(addr(&env), "GET", "/sandbox/sessions", &[("Host", &h)], "");
        assert_eq!(status, 200, "Host {h:?}");
        assert!(text.contains(&v.ft_token));
    }
}

/// Bound to all interfaces, the sandbox answers to the address a device dialled (here the
/// second loopback address stands for the LAN address) and to the names it was given.
#[test]
fn all_interfaces_accept_the_dialled_address_and_public_names() {
    let env = Env::start(Options {
        addr: "0.0.0.0:0".parse().unwrap(),
        public_hosts: vec!["phone-lab.local".into()],
        public_url: Some("http://sandbox.test:8788".into()),
        ..Options::default()
    });
    let port = addr(&env).port();
    let lan: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
    for (h, want) in [
        (format!("127.0.0.2:{port}"), 200),
        (format!("phone-lab.local:{port}"), 200),
        (format!("PHONE-LAB.local:{port}"), 200),
        ("sandbox.test:8788".to_owned(), 200),
        (format!("127.0.0.3:{port}"), 403),
        (format!("other.local:{port}"), 403),
    ] {
        let (status, _, _) = raw_http(lan, "GET", "/sandbox/sessions", &[("Host", &h)], "");
        assert_eq!(status, want, "Host {h:?}");
    }
    // The phone page's flow from the "LAN" address, as a phone's browser sends it.
    let c = env.client();
    let v = c.verify(&VerifyRequest::new("2")).unwrap();
    assert!(v
        .url
        .starts_with("http://sandbox.test:8788/flash/opt/redirect/"));
    let h = format!("phone-lab.local:{port}");
    let page = format!("/flash/opt/redirect/{}", v.ft_token);
    let (status, _, text) = raw_http(lan, "GET", &page, &[("Host", &h)], "");
    assert_eq!(status, 200, "{text}");
    let o = format!("http://{h}");
    let (status, _, text) = raw_http(
        lan,
        "POST",
        &format!("/sandbox/send/{}", v.ft_token),
        &[
            ("Host", &h),
            ("Origin", &o),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &format!("mobile=8613800138000&content={}", v.code),
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(c.query(&v.ft_token).unwrap().status, Status::Success);
}

#[test]
fn bad_public_hosts_are_refused_at_start() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for bad in ["phone.local:80", "http://phone.local/", "", "a b"] {
        let r = rt.block_on(fotp_cli::sandbox::Sandbox::start(Options {
            public_hosts: vec![bad.into()],
            ..Options::default()
        }));
        assert!(r.is_err(), "{bad:?}");
    }
}

/// On a shared machine other users can reach 127.0.0.1 too: a control token keeps them out
/// of the dashboard and the control paths. The phone page needs none (its path holds the
/// unguessable ftToken).
#[test]
fn the_control_token_guards_the_control_paths() {
    let token = "ctl-7f3a9";
    let env = Env::start(Options {
        control_token: Some(fotp::Secret::new(token)),
        ..Options::default()
    });
    let c = env.client();
    let v = c.verify(&VerifyRequest::new("2")).unwrap();
    let h = host(&env);
    let bearer = format!("Bearer {token}");
    let body = uplink_text(&v.ft_token, "0000");
    for (method, path, body) in [
        ("GET", "/sandbox/sessions", ""),
        ("GET", "/", ""),
        ("POST", "/sandbox/uplink", body.as_str()),
        ("POST", "/sandbox/clock", r#"{"advanceMs":1}"#),
    ] {
        for auth in [None, Some("Bearer wrong"), Some("ctl-7f3a9")] {
            let mut headers = vec![("Host", h.as_str()), ("Content-Type", "application/json")];
            if let Some(a) = auth {
                headers.push(("Authorization", a));
            }
            let (status, hs, text) = raw_http(addr(&env), method, path, &headers, body);
            assert_eq!(status, 401, "{method} {path} {auth:?}: {text}");
            assert!(hs
                .iter()
                .any(|(k, v)| k == "www-authenticate" && v.starts_with("Bearer")));
            assert!(!text.contains(token) && !text.contains(&v.code), "{text}");
        }
        let (status, _, text) = raw_http(
            addr(&env),
            method,
            path,
            &[
                ("Host", &h),
                ("Content-Type", "application/json"),
                ("Authorization", &bearer),
            ],
            body,
        );
        assert_eq!(status, 200, "{method} {path}: {text}");
    }
    let (status, _, _) = raw_http(
        addr(&env),
        "GET",
        "/sandbox/sessions",
        &[("Host", &h), ("Authorization", "bearer  ctl-7f3a9")],
        "",
    );
    assert_eq!(status, 200, "the scheme name is case-insensitive");
    // The dashboard in a browser: the token in its URL.
    let (status, _, text) = raw_http(
        addr(&env),
        "GET",
        &format!("/?controlToken={token}"),
        &[("Host", &h)],
        "",
    );
    assert_eq!(status, 200);
    assert!(text.contains(&v.ft_token));
    // The phone page and its form work without it.
    let v = c.verify(&VerifyRequest::new("2")).unwrap();
    let (status, _, _) = raw_http(
        addr(&env),
        "GET",
        &format!("/flash/opt/redirect/{}", v.ft_token),
        &[("Host", &h)],
        "",
    );
    assert_eq!(status, 200);
    let (status, _, _) = raw_http(
        addr(&env),
        "POST",
        &format!("/sandbox/send/{}", v.ft_token),
        &[
            ("Host", &h),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &format!("mobile=1&content={}", v.code),
    );
    assert_eq!(status, 200);
    // And the platform endpoints keep their own authentication.
    let sessions: Value = {
        let (_, _, text) = raw_http(
            addr(&env),
            "GET",
            "/sandbox/sessions",
            &[("Host", &h), ("Authorization", &bearer)],
            "",
        );
        serde_json::from_str(&text).unwrap()
    };
    let s = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ftToken"] == v.ft_token.as_str())
        .cloned()
        .unwrap();
    assert_eq!(s["status"], "2");
}
