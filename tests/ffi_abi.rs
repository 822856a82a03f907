//! The C ABI driven directly from Rust (crate-type `lib`): NULL and bad arguments, out-parameters,
//! ownership, callback parsing, and the network calls against an in-process server.

mod support;

use std::ffi::{c_char, c_int, CStr};
use std::ptr::{null, null_mut, NonNull};
use std::time::{Duration, Instant};

use fotp::ffi::*;
use support::{query_status, Reply, Server, QUERY_OK, VERIFY_OK};

const SEED_CALLBACK: &[u8] = include_bytes!("data/callback.json");
const TOKEN: &CStr = c"200e96b6a8bf8ed8c3de194cf14b342f";

/// A non-NULL pointer that must come back unchanged from a failed call.
fn sentinel<T>() -> *mut T {
    NonNull::dangling().as_ptr()
}

fn s(p: *const c_char) -> Option<String> {
    // SAFETY: NULL or a live NUL-terminated string from the library.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned())
}

/// Takes an error apart and frees it: (kind, message, api code, http status).
fn take(e: *mut fotp_error) -> (c_int, String, Option<String>, u16) {
    assert!(!e.is_null(), "expected an error, got success");
    // SAFETY: a live error, freed once here.
    unsafe {
        let out = (
            fotp_error_kind(e),
            s(fotp_error_message(e)).unwrap(),
            s(fotp_error_api_code(e)),
            fotp_error_http_status(e),
        );
        fotp_error_free(e);
        out
    }
}

#[track_caller]
fn expect_invalid(e: *mut fotp_error, arg: &str) {
    let (kind, message, api, status) = take(e);
    assert_eq!(kind, FOTP_ERROR_INVALID_ARGUMENT, "{message}");
    assert!(
        message.contains(&format!("`{arg}`")),
        "{message:?} should name {arg}"
    );
    assert_eq!((api, status), (None, 0));
}

#[track_caller]
fn ok(e: *mut fotp_error) {
    if !e.is_null() {
        let (kind, message, _, _) = take(e);
        panic!("unexpected error {kind}: {message}");
    }
}

fn config(url: &CStr) -> *mut fotp_config {
    let c = fotp_config_new();
    assert!(!c.is_null());
    // SAFETY: live config and static strings.
    unsafe {
        ok(fotp_config_set_base_url(c, url.as_ptr()));
        ok(fotp_config_set_hmac_auth(
            c,
            c"sandbox".as_ptr(),
            c"sandbox-secret".as_ptr(),
        ));
    }
    c
}

fn client_for(server: &Server) -> *mut fotp_client {
    let url = std::ffi::CString::new(server.url()).unwrap();
    let c = config(&url);
    let mut client = null_mut();
    // SAFETY: live config; `client` is writable.
    unsafe {
        fotp_config_set_timeout_ms(c, 3000);
        ok(fotp_client_new(c, &mut client));
        fotp_config_free(c);
    }
    assert!(!client.is_null());
    client
}

#[test]
fn free_functions_accept_null() {
    // SAFETY: NULL is documented as a no-op.
    unsafe {
        fotp_error_free(null_mut());
        fotp_config_free(null_mut());
        fotp_client_free(null_mut());
        fotp_verification_free(null_mut());
        fotp_query_result_free(null_mut());
        fotp_callback_free(null_mut());
    }
}

#[test]
fn getters_given_null() {
    // SAFETY: NULL is documented for every getter.
    unsafe {
        assert_eq!(fotp_error_kind(null()), 0);
        let m = s(fotp_error_message(null())).expect("a static string, never NULL");
        assert!(!m.is_empty());
        assert_eq!(s(fotp_error_api_code(null())), None);
        assert_eq!(fotp_error_http_status(null()), 0);
        for f in [
            fotp_verification_url,
            fotp_verification_ft_token,
            fotp_verification_message_id,
            fotp_verification_code,
        ] {
            assert!(f(null()).is_null());
        }
        for f in [
            fotp_query_result_raw_status,
            fotp_query_result_mobile,
            fotp_query_result_sender,
            fotp_query_result_send_time,
            fotp_query_result_code,
            fotp_query_result_deliver_time,
        ] {
            assert!(f(null()).is_null());
        }
        for f in [
            fotp_callback_mobile,
            fotp_callback_sender,
            fotp_callback_send_time,
            fotp_callback_code,
            fotp_callback_content,
            fotp_callback_deliver_time,
            fotp_callback_err,
        ] {
            assert!(f(null()).is_null());
        }
        assert_eq!(fotp_query_result_status(null()), fotp_status::Unknown);
        let mut out = [sentinel::<c_char>() as *const c_char; 7];
        assert_eq!(fotp_verification_fields(null(), out.as_mut_ptr(), 7), 0);
        assert_eq!(fotp_query_result_fields(null(), out.as_mut_ptr(), 7), 0);
        assert_eq!(fotp_callback_fields(null(), out.as_mut_ptr(), 7), 0);
        assert!(out.iter().all(|p| std::ptr::eq(*p, sentinel::<c_char>())));
        // Setters with no error return ignore a NULL config.
        fotp_config_set_timeout_ms(null_mut(), 1);
        fotp_config_set_connect_timeout_ms(null_mut(), 1);
        fotp_config_set_retries(null_mut(), 1);
        fotp_config_set_allow_insecure_http(null_mut(), true);
    }
}

#[test]
fn config_rejects_null_and_bad_utf8_naming_the_argument() {
    let c = fotp_config_new();
    let bad = c"\xff\xfe".as_ptr();
    // SAFETY: live config, NULL or static strings.
    unsafe {
        expect_invalid(
            fotp_config_set_base_url(null_mut(), c"https://x".as_ptr()),
            "c",
        );
        expect_invalid(fotp_config_set_base_url(c, null()), "url");
        expect_invalid(fotp_config_set_base_url(c, bad), "url");
        expect_invalid(
            fotp_config_set_hmac_auth(c, null(), c"s".as_ptr()),
            "app_id",
        );
        expect_invalid(
            fotp_config_set_hmac_auth(c, c"a".as_ptr(), null()),
            "app_secret",
        );
        expect_invalid(
            fotp_config_set_hmac_auth(c, c"a".as_ptr(), bad),
            "app_secret",
        );
        expect_invalid(
            fotp_config_set_token_auth(c, null(), c"t".as_ptr()),
            "app_key",
        );
        expect_invalid(fotp_config_set_token_auth(c, c"k".as_ptr(), bad), "token");
        expect_invalid(fotp_config_set_user_agent_suffix(c, null()), "suffix");
        expect_invalid(
            fotp_config_set_user_agent_suffix(null_mut(), c"x".as_ptr()),
            "c",
        );
        expect_invalid(fotp_config_from_env(null_mut()), "out");

        // Nothing was set by the failed calls: building reports the missing base URL.
        let mut client = sentinel();
        let (kind, message, _, _) = take(fotp_client_new(c, &mut client));
        assert_eq!(kind, FOTP_ERROR_CONFIG);
        assert!(message.contains("base URL"), "{message}");
        assert_eq!(client, sentinel());
        expect_invalid(fotp_client_new(null(), &mut client), "c");
        expect_invalid(fotp_client_new(c, null_mut()), "out");
        assert_eq!(client, sentinel());
        fotp_config_free(c);
    }
}

#[test]
fn config_errors_surface_at_client_new_without_secrets() {
    let cases: [(&CStr, &str); 3] = [
        (c"http://otp.example.com", "plain HTTP"),
        (c"ftp://x", "https://"),
        (c"not a url", "base URL"),
    ];
    for (url, expected) in cases {
        let c = config(url);
        let mut client = sentinel();
        // SAFETY: live config.
        let (kind, message, _, _) = take(unsafe { fotp_client_new(c, &mut client) });
        assert_eq!(kind, FOTP_ERROR_CONFIG, "{message}");
        assert!(message.contains(expected), "{message}");
        assert!(!message.contains("sandbox-secret"));
        assert_eq!(client, sentinel());
        // SAFETY: live config, freed once.
        unsafe { fotp_config_free(c) };
    }
    // Insecure HTTP is allowed when asked for; a zero time limit and an empty secret are not.
    let c = config(c"http://otp.example.com");
    let mut client = null_mut();
    // SAFETY: live config and client.
    unsafe {
        fotp_config_set_allow_insecure_http(c, true);
        ok(fotp_client_new(c, &mut client));
        fotp_client_free(client);
        fotp_config_set_timeout_ms(c, 0);
        assert_eq!(take(fotp_client_new(c, &mut client)).0, FOTP_ERROR_CONFIG);
        fotp_config_set_timeout_ms(c, 1000);
        fotp_config_set_connect_timeout_ms(c, 0);
        assert_eq!(take(fotp_client_new(c, &mut client)).0, FOTP_ERROR_CONFIG);
        fotp_config_set_connect_timeout_ms(c, 1000);
        ok(fotp_config_set_hmac_auth(c, c"app".as_ptr(), c"".as_ptr()));
        assert_eq!(take(fotp_client_new(c, &mut client)).0, FOTP_ERROR_CONFIG);
        ok(fotp_config_set_token_auth(
            c,
            c"key".as_ptr(),
            c"tok-secret".as_ptr(),
        ));
        ok(fotp_client_new(c, &mut client));
        fotp_client_free(client);
        ok(fotp_config_set_user_agent_suffix(
            c,
            c"bad\nsuffix".as_ptr(),
        ));
        let (kind, message, _, _) = take(fotp_client_new(c, &mut client));
        assert_eq!(kind, FOTP_ERROR_CONFIG);
        assert!(message.contains("User-Agent"), "{message}");
        fotp_config_free(c);
    }
}

#[test]
fn client_calls_reject_bad_arguments_before_sending() {
    let server = Server::always(200, VERIFY_OK);
    let client = client_for(&server);
    let bad = c"\xff".as_ptr();
    let mut v = sentinel();
    let mut r = sentinel();
    let mut cb = null_mut();
    let mut confirmed = true;
    // SAFETY: live objects, NULL or static strings.
    unsafe {
        ok(fotp_callback_parse(
            SEED_CALLBACK.as_ptr(),
            SEED_CALLBACK.len(),
            &mut cb,
        ));
        expect_invalid(
            fotp_verify(null(), c"2".as_ptr(), null(), 0, &mut v),
            "client",
        );
        expect_invalid(fotp_verify(client, null(), null(), 0, &mut v), "ft_id");
        expect_invalid(fotp_verify(client, bad, null(), 0, &mut v), "ft_id");
        expect_invalid(fotp_verify(client, c"2".as_ptr(), bad, 0, &mut v), "code");
        expect_invalid(
            fotp_verify(client, c"2".as_ptr(), null(), 0, null_mut()),
            "out",
        );
        for (ft_id, code, minutes, word) in [
            (c"", None, 0, "ftId"),
            (c"2", Some(c"12"), 0, "code"),
            (c"2", Some(c"12345a"), 0, "code"),
            (c"2", Some(c""), 0, "code"),
            (c"2", None, 11, "validityPeriod"),
        ] {
            let code = code.map_or(null(), CStr::as_ptr);
            let (kind, message, _, _) =
                take(fotp_verify(client, ft_id.as_ptr(), code, minutes, &mut v));
            assert_eq!(kind, FOTP_ERROR_INVALID_ARGUMENT);
            assert!(message.contains(word), "{message}");
        }
        assert_eq!(v, sentinel());

        expect_invalid(fotp_query(null(), TOKEN.as_ptr(), &mut r), "client");
        expect_invalid(fotp_query(client, null(), &mut r), "ft_token");
        expect_invalid(fotp_query(client, bad, &mut r), "ft_token");
        expect_invalid(fotp_query(client, TOKEN.as_ptr(), null_mut()), "out");
        assert_eq!(
            take(fotp_query(client, c"a b".as_ptr(), &mut r)).0,
            FOTP_ERROR_INVALID_ARGUMENT
        );
        expect_invalid(fotp_wait(null(), TOKEN.as_ptr(), 10, &mut r), "client");
        expect_invalid(fotp_wait(client, null(), 10, &mut r), "ft_token");
        expect_invalid(fotp_wait(client, TOKEN.as_ptr(), 10, null_mut()), "out");
        assert_eq!(
            take(fotp_wait(client, c"".as_ptr(), 10, &mut r)).0,
            FOTP_ERROR_INVALID_ARGUMENT
        );
        assert_eq!(r, sentinel());

        expect_invalid(
            fotp_confirm_callback(null(), cb, TOKEN.as_ptr(), &mut confirmed),
            "client",
        );
        expect_invalid(
            fotp_confirm_callback(client, null(), TOKEN.as_ptr(), &mut confirmed),
            "cb",
        );
        expect_invalid(
            fotp_confirm_callback(client, cb, null(), &mut confirmed),
            "ft_token",
        );
        expect_invalid(
            fotp_confirm_callback(client, cb, TOKEN.as_ptr(), null_mut()),
            "confirmed",
        );
        assert!(confirmed, "untouched on failure");

        let mut short = sentinel();
        expect_invalid(fotp_client_with_timeout(null(), 10, &mut short), "client");
        expect_invalid(
            fotp_client_with_timeout(client, 0, &mut short),
            "timeout_ms",
        );
        expect_invalid(fotp_client_with_timeout(client, 10, null_mut()), "out");
        assert_eq!(short, sentinel());

        fotp_callback_free(cb);
        fotp_client_free(client);
    }
    assert_eq!(
        server.count(),
        0,
        "invalid input must not reach the network"
    );
}

#[test]
fn callback_parsing_through_the_abi() {
    let mut cb = null_mut();
    // SAFETY: live callback and buffers.
    unsafe {
        ok(fotp_callback_parse(
            SEED_CALLBACK.as_ptr(),
            SEED_CALLBACK.len(),
            &mut cb,
        ));
        assert_eq!(s(fotp_callback_mobile(cb)).unwrap(), "8615711666132");
        assert_eq!(s(fotp_callback_sender(cb)).unwrap(), "1008611");
        assert_eq!(
            s(fotp_callback_send_time(cb)).unwrap(),
            "2025-05-15 11:23:34"
        );
        assert_eq!(s(fotp_callback_code(cb)).unwrap(), "5776");
        assert!(s(fotp_callback_content(cb))
            .unwrap()
            .contains("##FG5x-5776##\n🚀"));
        assert_eq!(
            s(fotp_callback_deliver_time(cb)).unwrap(),
            "2025-05-15 11:24:24"
        );
        assert_eq!(s(fotp_callback_err(cb)), None);

        let mut out = [sentinel::<c_char>() as *const c_char; 9];
        assert_eq!(fotp_callback_fields(cb, out.as_mut_ptr(), 9), 7);
        assert_eq!(out[0], fotp_callback_mobile(cb));
        assert_eq!(out[3], fotp_callback_code(cb));
        assert_eq!(out[4], fotp_callback_content(cb));
        assert!(out[6].is_null());
        assert_eq!(
            out[7],
            sentinel::<c_char>() as *const c_char,
            "only 7 are written"
        );
        let mut two = [null::<c_char>(); 2];
        assert_eq!(fotp_callback_fields(cb, two.as_mut_ptr(), 2), 7);
        assert_eq!(two, [fotp_callback_mobile(cb), fotp_callback_sender(cb)]);
        assert_eq!(fotp_callback_fields(cb, null_mut(), 0), 7);
        fotp_callback_free(cb);

        // Integers become decimal strings; null is absent; err is kept.
        let body = br#"{"mobile":8613800000000,"sender":1008611,"sendTime":"t","code":5776,"content":null,"err":"expired"}"#;
        ok(fotp_callback_parse(body.as_ptr(), body.len(), &mut cb));
        assert_eq!(s(fotp_callback_mobile(cb)).unwrap(), "8613800000000");
        assert_eq!(s(fotp_callback_code(cb)).unwrap(), "5776");
        assert_eq!(s(fotp_callback_content(cb)), None);
        assert_eq!(s(fotp_callback_err(cb)).unwrap(), "expired");
        fotp_callback_free(cb);

        let mut cb = sentinel();
        let big = vec![b' '; 64 * 1024 + 1];
        let bad_bodies: [(&[u8], &str); 8] = [
            (b"", "EOF"),
            (b"not json", "invalid callback body"),
            (br#"{"mobile":"1","sender":"2","sendTime":"t"}"#, "`code`"),
            (br#"{"mobile":"","sender":"2","sendTime":"t","code":"1"}"#, "`mobile`"),
            (br#"{"mobile":"1","sender":"2","sendTime":"t","code":1.5}"#, "`code`"),
            (b"{\"mobile\":\"1\",\"sender\":\"2\",\"sendTime\":\"t\",\"code\":\"1\",\"content\":\"\xff\"}", "invalid callback body"),
            (br#"{"mobile":"1","sender":"2","sendTime":"t","code":"1","content":"a\u0000b"}"#, "`content`"),
            (&big, "over the limit"),
        ];
        for (body, word) in bad_bodies {
            let (kind, message, _, _) =
                take(fotp_callback_parse(body.as_ptr(), body.len(), &mut cb));
            assert_eq!(kind, FOTP_ERROR_DECODE, "{message}");
            assert!(
                message.contains(word),
                "{message:?} should contain {word:?}"
            );
        }
        assert_eq!(
            take(fotp_callback_parse(null(), 0, &mut cb)).0,
            FOTP_ERROR_DECODE
        );
        expect_invalid(fotp_callback_parse(null(), 5, &mut cb), "body");
        expect_invalid(fotp_callback_parse(b"{}".as_ptr(), 2, null_mut()), "out");
        assert_eq!(cb, sentinel());
    }
}

#[test]
fn verify_query_wait_confirm_over_http() {
    let server = Server::start(|n, r| {
        if r.path.ends_with("/verify") {
            Reply::json(200, VERIFY_OK)
        } else if n < 3 {
            Reply::json(200, &query_status("0"))
        } else {
            Reply::json(200, QUERY_OK)
        }
    });
    let client = client_for(&server);
    // SAFETY: live objects; out-parameters are writable.
    unsafe {
        let mut v = null_mut();
        ok(fotp_verify(
            client,
            c"2".as_ptr(),
            c"3872".as_ptr(),
            5,
            &mut v,
        ));
        let req = &server.requests()[0];
        assert_eq!(req.path, "/flash/opt/verify");
        assert_eq!(
            req.body,
            br#"{"ftId":"2","code":"3872","validityPeriod":"5"}"#
        );
        assert_eq!(
            req.header("user-agent"),
            format!("fotp/{} c", fotp::VERSION)
        );
        assert_eq!(req.header("appId"), "sandbox");
        assert_eq!(
            s(fotp_verification_url(v)).unwrap(),
            "http://otpdev.cm253.com/otp-api/flash/opt/redirect/200e96b6a8bf8ed8c3de194cf14b342f"
        );
        assert_eq!(
            s(fotp_verification_ft_token(v)).unwrap(),
            TOKEN.to_str().unwrap()
        );
        assert_eq!(
            s(fotp_verification_message_id(v)).unwrap(),
            "393801984179642368"
        );
        assert_eq!(s(fotp_verification_code(v)).unwrap(), "3872");
        let mut f = [null::<c_char>(); 4];
        assert_eq!(fotp_verification_fields(v, f.as_mut_ptr(), 4), 4);
        assert_eq!(f[1], fotp_verification_ft_token(v));
        assert_eq!(f[3], fotp_verification_code(v));

        let mut r = null_mut();
        ok(fotp_query(client, fotp_verification_ft_token(v), &mut r));
        assert_eq!(fotp_query_result_status(r), fotp_status::Processing);
        assert_eq!(s(fotp_query_result_raw_status(r)).unwrap(), "0");
        assert_eq!(s(fotp_query_result_mobile(r)), None);
        fotp_query_result_free(r);

        // Polls past the processing answers (requests 2 and 3) to the final one.
        ok(fotp_wait(
            client,
            fotp_verification_ft_token(v),
            5000,
            &mut r,
        ));
        assert_eq!(fotp_query_result_status(r), fotp_status::Success);
        assert_eq!(s(fotp_query_result_raw_status(r)).unwrap(), "2");
        assert_eq!(s(fotp_query_result_mobile(r)).unwrap(), "6285273203675");
        assert_eq!(s(fotp_query_result_sender(r)).unwrap(), "6285215410016");
        assert_eq!(
            s(fotp_query_result_send_time(r)).unwrap(),
            "2025-04-29 17:47:00"
        );
        assert_eq!(s(fotp_query_result_code(r)).unwrap(), "5777");
        assert_eq!(
            s(fotp_query_result_deliver_time(r)).unwrap(),
            "2025-04-29 17:48:23"
        );
        let mut f = [null::<c_char>(); 6];
        assert_eq!(fotp_query_result_fields(r, f.as_mut_ptr(), 6), 6);
        assert_eq!(s(f[4]).unwrap(), "5777");
        fotp_query_result_free(r);
        assert_eq!(server.count(), 4);

        for (body, expected) in [
            (
                &br#"{"mobile":"6285273203675","sender":"x","sendTime":"t","code":"5777"}"#[..],
                true,
            ),
            (
                &br#"{"mobile":"6285273203675","sender":"x","sendTime":"t","code":"5778"}"#[..],
                false,
            ),
            (
                &br#"{"mobile":"6285273203676","sender":"x","sendTime":"t","code":"5777"}"#[..],
                false,
            ),
        ] {
            let mut cb = null_mut();
            ok(fotp_callback_parse(body.as_ptr(), body.len(), &mut cb));
            let mut confirmed = !expected;
            ok(fotp_confirm_callback(
                client,
                cb,
                TOKEN.as_ptr(),
                &mut confirmed,
            ));
            assert_eq!(confirmed, expected);
            fotp_callback_free(cb);
        }
        fotp_verification_free(v);
        fotp_client_free(client);
    }
}

#[test]
fn errors_over_http_carry_kind_code_and_status() {
    let server = Server::start(|n, _| match n {
        0 => Reply::json(
            200,
            r#"{"code":"100001","success":false,"message":"authentication failed"}"#,
        ),
        1 => Reply::json(502, "<html>bad gateway</html>"),
        _ => Reply::json(
            200,
            r#"{"code":"000000","success":true,"data":{"url":"u"}}"#,
        ),
    });
    let client = client_for(&server);
    let mut v = sentinel();
    // SAFETY: live client; `v` is writable.
    unsafe {
        let (kind, message, api, status) =
            take(fotp_verify(client, c"2".as_ptr(), null(), 0, &mut v));
        assert_eq!(
            (kind, api.as_deref(), status),
            (FOTP_ERROR_API, Some("100001"), 200)
        );
        assert_eq!(message, "authentication failed");
        let (kind, _, api, status) = take(fotp_verify(client, c"2".as_ptr(), null(), 0, &mut v));
        assert_eq!((kind, api, status), (FOTP_ERROR_HTTP_STATUS, None, 502));
        let (kind, message, _, _) = take(fotp_verify(client, c"2".as_ptr(), null(), 0, &mut v));
        assert_eq!(kind, FOTP_ERROR_DECODE, "{message}");
        assert_eq!(v, sentinel());
        fotp_client_free(client);
    }
}

#[test]
fn nul_inside_a_received_field_is_a_decode_error() {
    let server = Server::always(
        200,
        r#"{"code":"000000","data":{"status":"2","mobile":"123\u0000456"}}"#,
    );
    let client = client_for(&server);
    let mut r = sentinel();
    // SAFETY: live client; `r` is writable.
    unsafe {
        let (kind, message, _, _) = take(fotp_query(client, TOKEN.as_ptr(), &mut r));
        assert_eq!(kind, FOTP_ERROR_DECODE);
        assert!(message.contains("`mobile`"), "{message}");
        assert_eq!(r, sentinel());
        fotp_client_free(client);
    }
}

#[test]
fn time_limits_and_with_timeout() {
    let server = Server::start(|_, r| {
        if r.path.ends_with("/query") && r.body.windows(4).any(|w| w == b"slow") {
            Reply::After(Duration::from_secs(5), Box::new(Reply::json(200, QUERY_OK)))
        } else {
            Reply::json(200, &query_status("0"))
        }
    });
    let client = client_for(&server);
    // SAFETY: live clients; out-parameters are writable.
    unsafe {
        let mut short = null_mut();
        ok(fotp_client_with_timeout(client, 200, &mut short));
        let mut r = sentinel();
        let start = Instant::now();
        assert_eq!(
            take(fotp_query(short, c"slow".as_ptr(), &mut r)).0,
            FOTP_ERROR_TIMEOUT
        );
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        // The derived client lives on its own once the original is freed.
        fotp_client_free(client);
        let mut ok_r = null_mut();
        ok(fotp_query(short, TOKEN.as_ptr(), &mut ok_r));
        assert_eq!(fotp_query_result_status(ok_r), fotp_status::Processing);
        fotp_query_result_free(ok_r);

        // The smaller of the call bound (200 ms) and wait's own limit wins.
        for (limit, expected) in [(400, 200), (120, 120)] {
            let start = Instant::now();
            let (kind, message, _, _) = take(fotp_wait(short, TOKEN.as_ptr(), limit, &mut r));
            assert_eq!(kind, FOTP_ERROR_TIMEOUT, "{message}");
            assert!(message.contains(&format!("{expected} ms")), "{message}");
            let took = start.elapsed();
            assert!(
                took >= Duration::from_millis(expected - 10) && took < Duration::from_secs(2),
                "{took:?}"
            );
        }
        assert_eq!(r, sentinel());
        fotp_client_free(short);
    }
}

#[test]
fn connection_refused_is_a_network_error() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = std::ffi::CString::new(format!("http://127.0.0.1:{port}")).unwrap();
    let c = config(&url);
    let mut client = null_mut();
    let mut v = sentinel();
    // SAFETY: live objects.
    unsafe {
        fotp_config_set_retries(c, 0);
        ok(fotp_client_new(c, &mut client));
        fotp_config_free(c);
        let (kind, message, _, status) =
            take(fotp_verify(client, c"2".as_ptr(), null(), 0, &mut v));
        assert_eq!((kind, status), (FOTP_ERROR_NETWORK, 0), "{message}");
        assert_eq!(v, sentinel());
        fotp_client_free(client);
    }
}

#[test]
fn one_client_from_many_threads() {
    let server = Server::always(200, QUERY_OK);
    let client = client_for(&server) as usize; // raw pointers are not Send; the client is.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(move || {
                for _ in 0..10 {
                    let mut r = null_mut();
                    // SAFETY: the client outlives the scope; it is documented thread-safe.
                    unsafe {
                        ok(fotp_query(
                            client as *const fotp_client,
                            TOKEN.as_ptr(),
                            &mut r,
                        ));
                        assert_eq!(fotp_query_result_status(r), fotp_status::Success);
                        fotp_query_result_free(r);
                    }
                }
            });
        }
    });
    assert_eq!(server.count(), 40);
    // SAFETY: no thread uses it any more.
    unsafe { fotp_client_free(client as *mut fotp_client) };
}

#[test]
fn cancel_tokens_through_the_abi() {
    let server = Server::start(|_, _| {
        Reply::After(
            Duration::from_secs(10),
            Box::new(Reply::json(200, QUERY_OK)),
        )
    });
    let client = client_for(&server);
    // SAFETY: live objects; out-parameters are writable; NULL is documented for each.
    unsafe {
        fotp_cancel_trigger(null());
        fotp_cancel_free(null_mut());
        let cancel = fotp_cancel_new();
        assert!(!cancel.is_null());
        let mut watched = sentinel();
        expect_invalid(
            fotp_client_with_cancel(null(), cancel, &mut watched),
            "client",
        );
        expect_invalid(
            fotp_client_with_cancel(client, null(), &mut watched),
            "cancel",
        );
        expect_invalid(fotp_client_with_cancel(client, cancel, null_mut()), "out");
        assert_eq!(watched, sentinel());
        let mut watched = null_mut();
        ok(fotp_client_with_cancel(client, cancel, &mut watched));

        // A call blocked reading the answer returns soon after the trigger, from another thread.
        let c = cancel as usize;
        let trigger = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            fotp_cancel_trigger(c as *const fotp_cancel);
            Instant::now()
        });
        let mut r = sentinel();
        let (kind, message, _, _) = take(fotp_query(watched, TOKEN.as_ptr(), &mut r));
        let returned = Instant::now();
        let triggered = trigger.join().unwrap();
        assert_eq!(kind, FOTP_ERROR_TIMEOUT, "{message}");
        assert!(message.contains("cancelled"), "{message}");
        assert!(
            returned.duration_since(triggered) < Duration::from_millis(300),
            "{:?}",
            returned.duration_since(triggered)
        );
        assert_eq!(r, sentinel());
        // Once cancelled, a verify is never sent; the token may be freed before the client.
        let sent = server.count();
        fotp_cancel_free(cancel);
        let mut v = sentinel();
        let (kind, message, _, _) = take(fotp_verify(watched, c"2".as_ptr(), null(), 0, &mut v));
        assert_eq!(kind, FOTP_ERROR_TIMEOUT, "{message}");
        assert_eq!(server.count(), sent);
        // The original client is not cancelled.
        let mut short = null_mut();
        ok(fotp_client_with_timeout(client, 200, &mut short));
        let (kind, message, _, _) = take(fotp_query(short, TOKEN.as_ptr(), &mut r));
        assert_eq!(kind, FOTP_ERROR_TIMEOUT, "{message}");
        assert!(!message.contains("cancelled"), "{message}");
        fotp_client_free(short);
        fotp_client_free(watched);
        fotp_client_free(client);
    }
}

#[test]
fn call_bound_and_huge_limits_through_the_abi() {
    let server = Server::start(|n, r| {
        if r.path.ends_with("/query") && n == 0 {
            Reply::After(
                Duration::from_secs(10),
                Box::new(Reply::json(200, QUERY_OK)),
            )
        } else {
            Reply::json(200, QUERY_OK)
        }
    });
    let url = std::ffi::CString::new(server.url()).unwrap();
    // SAFETY: live objects; out-parameters are writable.
    unsafe {
        // u32::MAX ms everywhere: no overflow, and a stalled first attempt under a call bound
        // of 300 ms is a timeout.
        let c = config(&url);
        fotp_config_set_timeout_ms(c, u32::MAX);
        fotp_config_set_connect_timeout_ms(c, u32::MAX);
        fotp_config_set_call_timeout_ms(c, 300);
        fotp_config_set_call_timeout_ms(null_mut(), 1);
        let mut client = null_mut();
        ok(fotp_client_new(c, &mut client));
        let mut r = sentinel();
        let start = Instant::now();
        let (kind, message, _, _) = take(fotp_query(client, TOKEN.as_ptr(), &mut r));
        assert_eq!(kind, FOTP_ERROR_TIMEOUT, "{message}");
        assert!(message.contains("300 ms"), "{message}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        let mut long = null_mut();
        ok(fotp_client_with_timeout(client, u32::MAX, &mut long));
        let mut r = null_mut();
        ok(fotp_query(long, TOKEN.as_ptr(), &mut r));
        fotp_query_result_free(r);
        let mut r = null_mut();
        ok(fotp_wait(long, TOKEN.as_ptr(), u32::MAX, &mut r));
        assert_eq!(fotp_query_result_status(r), fotp_status::Success);
        fotp_query_result_free(r);
        // No call bound at all: u32::MAX per attempt, 0 = none.
        fotp_config_set_call_timeout_ms(c, 0);
        let mut unbounded = null_mut();
        ok(fotp_client_new(c, &mut unbounded));
        let mut r = null_mut();
        ok(fotp_wait(unbounded, TOKEN.as_ptr(), u32::MAX, &mut r));
        fotp_query_result_free(r);
        fotp_client_free(unbounded);
        fotp_client_free(long);
        fotp_client_free(client);
        fotp_config_free(c);
    }
}

#[test]
fn ca_bundle_and_proxy_setters_check_their_input() {
    let dir = std::env::temp_dir().join(format!("fotp-ffi-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let c = config(c"https://otp.example.com");
    // SAFETY: live config and NUL-terminated strings.
    unsafe {
        expect_invalid(fotp_config_set_ca_bundle(null_mut(), c"x".as_ptr()), "c");
        expect_invalid(fotp_config_set_ca_bundle(c, null()), "pem_path");
        expect_invalid(fotp_config_set_ca_bundle(c, c"\xff".as_ptr()), "pem_path");
        let (kind, message, _, _) = take(fotp_config_set_ca_bundle(
            c,
            c"/nonexistent/ca.pem".as_ptr(),
        ));
        assert_eq!(kind, FOTP_ERROR_CONFIG, "{message}");
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");
        let path = std::ffi::CString::new(garbage.to_str().unwrap()).unwrap();
        let (kind, message, _, _) = take(fotp_config_set_ca_bundle(c, path.as_ptr()));
        assert_eq!(kind, FOTP_ERROR_CONFIG, "{message}");
        assert!(message.contains("no certificate"), "{message}");

        expect_invalid(fotp_config_set_proxy(null_mut(), null()), "c");
        expect_invalid(fotp_config_set_proxy(c, c"\xff".as_ptr()), "proxy_url");
        for bad in [
            c"socks5://127.0.0.1:1080",
            c"ftp://proxy",
            c"not a url",
            c"",
        ] {
            let (kind, message, _, _) = take(fotp_config_set_proxy(c, bad.as_ptr()));
            assert_eq!(kind, FOTP_ERROR_CONFIG, "{bad:?}: {message}");
            assert!(message.contains("proxy"), "{message}");
        }
        ok(fotp_config_set_proxy(
            c,
            c"http://user:pw@127.0.0.1:3128".as_ptr(),
        ));
        ok(fotp_config_set_proxy(c, null()));
        let mut client = null_mut();
        ok(fotp_client_new(c, &mut client));
        fotp_client_free(client);
        fotp_config_free(c);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
