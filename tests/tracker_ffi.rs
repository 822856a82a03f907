//! The tracker's C ABI (CONTRACT.md section 8) driven directly from Rust: ownership,
//! out-parameters, NULL and bad arguments, and a whole push-mode round trip.

mod support;
mod tracker_support;

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr::{null, null_mut, NonNull};

use fotp::ffi::*;
use tracker_support::Platform;
#[cfg(feature = "redis")]
use tracker_support::Redis;

fn sentinel<T>() -> *mut T {
    NonNull::dangling().as_ptr()
}

fn s(p: *const c_char) -> Option<String> {
    // SAFETY: NULL or a live NUL-terminated string from the library.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned())
}

/// (kind, message) of an error, which is freed.
#[track_caller]
fn take(e: *mut fotp_error) -> (c_int, String) {
    assert!(!e.is_null(), "expected an error, got success");
    // SAFETY: a live error, freed once here.
    unsafe {
        let out = (fotp_error_kind(e), s(fotp_error_message(e)).unwrap());
        fotp_error_free(e);
        out
    }
}

#[track_caller]
fn ok(e: *mut fotp_error) {
    if !e.is_null() {
        let (kind, message) = take(e);
        panic!("unexpected error {kind}: {message}");
    }
}

#[track_caller]
fn expect_invalid(e: *mut fotp_error, arg: &str) {
    let (kind, message) = take(e);
    assert_eq!(kind, FOTP_ERROR_INVALID_ARGUMENT, "{message}");
    assert!(
        message.contains(&format!("`{arg}`")),
        "{message:?} names {arg}"
    );
}

fn client_for(platform: &Platform) -> *mut fotp_client {
    let url = CString::new(platform.server.url()).unwrap();
    let mut client = null_mut();
    // SAFETY: live config and strings; out-pointers are writable.
    unsafe {
        let c = fotp_config_new();
        ok(fotp_config_set_base_url(c, url.as_ptr()));
        ok(fotp_config_set_hmac_auth(
            c,
            c"sandbox".as_ptr(),
            c"sandbox-secret".as_ptr(),
        ));
        fotp_config_set_retries(c, 0);
        ok(fotp_client_new(c, &mut client));
        fotp_config_free(c);
    }
    client
}

fn parse(body: &[u8]) -> *mut fotp_callback {
    let mut cb = null_mut();
    // SAFETY: `body` is readable for its length; `cb` is writable.
    unsafe { ok(fotp_callback_parse(body.as_ptr(), body.len(), &mut cb)) };
    cb
}

/// verify (code from the tracker), then (token, code).
fn verify(t: *const fotp_tracker, client: *const fotp_client, len: u32) -> (String, String) {
    let mut v = null_mut();
    // SAFETY: live objects; `v` is writable and freed here.
    unsafe {
        ok(fotp_tracker_verify(
            t,
            client,
            c"2".as_ptr(),
            len,
            0,
            &mut v,
        ));
        let out = (
            s(fotp_verification_ft_token(v)).unwrap(),
            s(fotp_verification_code(v)).unwrap(),
        );
        fotp_verification_free(v);
        out
    }
}

/// match: None when *out is NULL, else (token, duplicate).
fn matched(t: *const fotp_tracker, cb: *const fotp_callback) -> Option<(String, bool)> {
    let mut m = sentinel();
    // SAFETY: live objects; `m` is writable and freed here.
    unsafe {
        ok(fotp_tracker_match(t, cb, &mut m));
        if m.is_null() {
            return None;
        }
        let out = (
            s(fotp_match_ft_token(m)).unwrap(),
            fotp_match_is_duplicate(m),
        );
        fotp_match_free(m);
        Some(out)
    }
}

#[test]
fn push_mode_round_trip_in_memory() {
    let platform = Platform::start();
    let client = client_for(&platform);
    let t = fotp_tracker_new_memory();
    assert!(!t.is_null());
    let (token, code) = verify(t, client, 0);
    assert_eq!(code.len(), 4, "code_length 0 means 4");
    let sent: serde_json::Value =
        serde_json::from_slice(&platform.server.requests()[0].body).unwrap();
    assert_eq!(sent["code"], code.as_str());
    assert!(sent.get("validityPeriod").is_none(), "0 = platform default");

    let (token6, code6) = verify(t, client, 6);
    assert_eq!(code6.len(), 6);
    assert_ne!(token6, token);

    platform.finish(&token, "2", "8613800000000");
    let cb = parse(&platform.callback_body(&token, "8613800000000"));
    assert_eq!(matched(t, cb), Some((token.clone(), false)));
    assert_eq!(matched(t, cb), Some((token.clone(), true)));
    assert_eq!(matched(t, cb), Some((token.clone(), true)));

    // A code no live verification holds: success with *out = NULL.
    let other = if code == "9999" { "8888" } else { "9999" };
    let stray = parse(
        format!(r#"{{"mobile":"1","sender":"2","sendTime":"3","code":"{other}"}}"#).as_bytes(),
    );
    assert_eq!(matched(t, stray), None);

    let ft = CString::new(token.clone()).unwrap();
    let mut r = null_mut();
    // SAFETY: live objects; `r` is writable and freed here.
    unsafe {
        ok(fotp_tracker_wait(t, client, ft.as_ptr(), 10_000, &mut r));
        assert_eq!(fotp_query_result_status(r), fotp_status::Success);
        assert_eq!(s(fotp_query_result_code(r)), Some(code.clone()));
        assert_eq!(
            s(fotp_query_result_mobile(r)).as_deref(),
            Some("8613800000000")
        );
        fotp_query_result_free(r);

        // An unfinished verification runs into the time limit.
        let ft6 = CString::new(token6).unwrap();
        let mut r = sentinel();
        let (kind, _) = take(fotp_tracker_wait(t, client, ft6.as_ptr(), 200, &mut r));
        assert_eq!(kind, FOTP_ERROR_TIMEOUT);
        assert_eq!(r, sentinel(), "*out untouched on failure");

        fotp_callback_free(cb);
        fotp_callback_free(stray);
        fotp_tracker_free(t);
        fotp_client_free(client);
    }
}

/// settle_outcome: (outcome, Some((token, duplicate)) when a match was written).
fn settled(
    t: *const fotp_tracker,
    client: *const fotp_client,
    cb: *const fotp_callback,
) -> (fotp_settle_outcome, Option<(String, bool)>) {
    let mut outcome = fotp_settle_outcome::FOTP_SETTLE_DUPLICATE;
    let mut m = sentinel();
    // SAFETY: live objects; out-pointers writable; the match is freed here.
    unsafe {
        ok(fotp_tracker_settle_outcome(
            t,
            client,
            cb,
            &mut outcome,
            &mut m,
        ));
        if m.is_null() {
            return (outcome, None);
        }
        let out = (
            s(fotp_match_ft_token(m)).unwrap(),
            fotp_match_is_duplicate(m),
        );
        fotp_match_free(m);
        (outcome, Some(out))
    }
}

#[test]
fn settle_confirms_then_settles_once_and_unsettle_offers_it_again() {
    use fotp_settle_outcome::*;
    let platform = Platform::start();
    let client = client_for(&platform);
    let t = fotp_tracker_new_memory();
    let (token, code) = verify(t, client, 4);
    let genuine = parse(&platform.callback_body(&token, "8613800000000"));
    // Not confirmed yet (the platform says processing): nothing consumed.
    assert_eq!(settled(t, client, genuine), (FOTP_SETTLE_UNCONFIRMED, None));
    // A forged callback through the unauthenticated match does not consume the settlement.
    assert_eq!(matched(t, genuine), Some((token.clone(), false)));
    platform.finish(&token, "2", "8613800000000");
    // Another mobile with the live code: the platform does not confirm it.
    let forged = parse(&platform.callback_body(&token, "8613900000000"));
    assert_eq!(settled(t, client, forged), (FOTP_SETTLE_UNCONFIRMED, None));
    let other = if code == "9999" { "8888" } else { "9999" };
    let stray = parse(
        format!(r#"{{"mobile":"1","sender":"2","sendTime":"3","code":"{other}"}}"#).as_bytes(),
    );
    assert_eq!(settled(t, client, stray), (FOTP_SETTLE_NO_MATCH, None));

    // SAFETY: live objects; every match is freed.
    unsafe {
        // The plain settle: the first genuine delivery, then duplicates.
        let mut m = null_mut();
        ok(fotp_tracker_settle(t, client, genuine, &mut m));
        assert!(!m.is_null());
        assert_eq!(s(fotp_match_ft_token(m)), Some(token.clone()));
        assert!(!fotp_match_is_duplicate(m));
        assert_eq!(
            settled(t, client, genuine),
            (FOTP_SETTLE_DUPLICATE, Some((token.clone(), true)))
        );
        // The handler failed: undo, and the next delivery is the first again, once.
        ok(fotp_tracker_unsettle(t, m));
        fotp_match_free(m);
        assert_eq!(
            settled(t, client, genuine),
            (FOTP_SETTLE_FIRST, Some((token.clone(), false)))
        );
        assert_eq!(
            settled(t, client, genuine),
            (FOTP_SETTLE_DUPLICATE, Some((token.clone(), true)))
        );
        // Unsettling a duplicate (or a match from fotp_tracker_match) changes nothing.
        let mut dup = null_mut();
        ok(fotp_tracker_settle(t, client, genuine, &mut dup));
        assert!(fotp_match_is_duplicate(dup));
        ok(fotp_tracker_unsettle(t, dup));
        fotp_match_free(dup);
        let mut plain = null_mut();
        ok(fotp_tracker_match(t, genuine, &mut plain));
        ok(fotp_tracker_unsettle(t, plain));
        fotp_match_free(plain);
        assert_eq!(settled(t, client, genuine).0, FOTP_SETTLE_DUPLICATE);
        // The unconfirmed and stray callbacks still answer NULL through the plain settle.
        for cb in [forged, stray] {
            let mut m = sentinel();
            ok(fotp_tracker_settle(t, client, cb, &mut m));
            assert!(m.is_null());
        }
        // Settle queried the platform; a failed query is the error, *out untouched.
        let queries = platform.count("/flash/opt/query");
        assert!(queries >= 7, "{queries}");
        let down = {
            let url = c"http://127.0.0.1:1";
            let c = fotp_config_new();
            ok(fotp_config_set_base_url(c, url.as_ptr()));
            ok(fotp_config_set_hmac_auth(c, c"a".as_ptr(), c"b".as_ptr()));
            fotp_config_set_retries(c, 0);
            let mut client = null_mut();
            ok(fotp_client_new(c, &mut client));
            fotp_config_free(c);
            client
        };
        let mut m = sentinel();
        let mut outcome = FOTP_SETTLE_NO_MATCH;
        let (kind, _) = take(fotp_tracker_settle_outcome(
            t,
            down,
            genuine,
            &mut outcome,
            &mut m,
        ));
        assert_eq!(kind, FOTP_ERROR_NETWORK);
        assert_eq!((outcome, m), (FOTP_SETTLE_NO_MATCH, sentinel()));
        fotp_client_free(down);

        fotp_callback_free(genuine);
        fotp_callback_free(forged);
        fotp_callback_free(stray);
        fotp_tracker_free(t);
        fotp_client_free(client);
    }
}

#[test]
fn null_and_bad_arguments() {
    let platform = Platform::start();
    let client = client_for(&platform);
    let t = fotp_tracker_new_memory();
    let cb = parse(br#"{"mobile":"1","sender":"2","sendTime":"3","code":"1234"}"#);
    // SAFETY: every pointer is NULL or live; failed calls must not write their out-parameter.
    unsafe {
        let mut v = sentinel();
        let id = c"2".as_ptr();
        expect_invalid(fotp_tracker_verify(null(), client, id, 4, 0, &mut v), "t");
        expect_invalid(fotp_tracker_verify(t, null(), id, 4, 0, &mut v), "client");
        expect_invalid(
            fotp_tracker_verify(t, client, null(), 4, 0, &mut v),
            "ft_id",
        );
        expect_invalid(fotp_tracker_verify(t, client, id, 4, 0, null_mut()), "out");
        for (len, validity, field) in [
            (3, 0, "code_length"),
            (7, 0, "code_length"),
            (4, 11, "validityPeriod"),
        ] {
            let (kind, message) = take(fotp_tracker_verify(t, client, id, len, validity, &mut v));
            assert_eq!(kind, FOTP_ERROR_INVALID_ARGUMENT);
            assert!(message.contains(field), "{message}");
        }
        let bad_utf8 = [0xffu8, 0];
        expect_invalid(
            fotp_tracker_verify(t, client, bad_utf8.as_ptr().cast(), 4, 0, &mut v),
            "ft_id",
        );
        assert_eq!(v, sentinel());
        assert_eq!(platform.count("/flash/opt/verify"), 0);

        let mut m = sentinel();
        expect_invalid(fotp_tracker_match(null(), cb, &mut m), "t");
        expect_invalid(fotp_tracker_match(t, null(), &mut m), "cb");
        expect_invalid(fotp_tracker_match(t, cb, null_mut()), "out");
        assert_eq!(m, sentinel());

        expect_invalid(fotp_tracker_settle(null(), client, cb, &mut m), "t");
        expect_invalid(fotp_tracker_settle(t, null(), cb, &mut m), "client");
        expect_invalid(fotp_tracker_settle(t, client, null(), &mut m), "cb");
        expect_invalid(fotp_tracker_settle(t, client, cb, null_mut()), "out");
        let mut o = fotp_settle_outcome::FOTP_SETTLE_DUPLICATE;
        expect_invalid(
            fotp_tracker_settle_outcome(null(), client, cb, &mut o, &mut m),
            "t",
        );
        expect_invalid(
            fotp_tracker_settle_outcome(t, null(), cb, &mut o, &mut m),
            "client",
        );
        expect_invalid(
            fotp_tracker_settle_outcome(t, client, null(), &mut o, &mut m),
            "cb",
        );
        expect_invalid(
            fotp_tracker_settle_outcome(t, client, cb, null_mut(), &mut m),
            "outcome",
        );
        expect_invalid(
            fotp_tracker_settle_outcome(t, client, cb, &mut o, null_mut()),
            "out",
        );
        assert_eq!(m, sentinel());
        assert_eq!(o, fotp_settle_outcome::FOTP_SETTLE_DUPLICATE);
        expect_invalid(fotp_tracker_unsettle(null(), null()), "t");
        expect_invalid(fotp_tracker_unsettle(t, null()), "m");
        assert_eq!(platform.count("/flash/opt/query"), 0);

        let mut r = sentinel();
        let tok = c"abc".as_ptr();
        expect_invalid(fotp_tracker_wait(null(), client, tok, 10, &mut r), "t");
        expect_invalid(fotp_tracker_wait(t, null(), tok, 10, &mut r), "client");
        expect_invalid(fotp_tracker_wait(t, client, null(), 10, &mut r), "ft_token");
        expect_invalid(fotp_tracker_wait(t, client, tok, 10, null_mut()), "out");
        let (kind, message) = take(fotp_tracker_wait(t, client, c"a b".as_ptr(), 10, &mut r));
        assert_eq!(kind, FOTP_ERROR_INVALID_ARGUMENT);
        assert!(message.contains("ftToken"), "{message}");
        assert_eq!(r, sentinel());

        let mut out = sentinel();
        expect_invalid(fotp_tracker_new_redis(null(), null(), &mut out), "url");
        expect_invalid(
            fotp_tracker_new_redis(c"redis://127.0.0.1:1/".as_ptr(), null(), null_mut()),
            "out",
        );
        let (kind, _) = take(fotp_tracker_new_redis(
            c"redis://127.0.0.1:1/".as_ptr(),
            c"two words".as_ptr(),
            &mut out,
        ));
        assert_eq!(kind, FOTP_ERROR_INVALID_ARGUMENT);
        let (kind, message) = take(fotp_tracker_new_redis(
            c"not a url :pw@".as_ptr(),
            null(),
            &mut out,
        ));
        assert_eq!(kind, FOTP_ERROR_CONFIG, "{message}");
        assert_eq!(out, sentinel());

        // The URL names the deployment: the same function opens a cluster or a Sentinel
        // primary (both unreachable here: a network error, so the URL was understood).
        for url in [
            c"redis+cluster://127.0.0.1:1,127.0.0.1:2",
            c"redis+sentinel://127.0.0.1:1,127.0.0.1:2/orders",
        ] {
            let (kind, message) = take(fotp_tracker_new_redis(url.as_ptr(), null(), &mut out));
            assert_eq!(kind, FOTP_ERROR_NETWORK, "{url:?}: {message}");
        }
        let (kind, message) = take(fotp_tracker_new_redis(
            c"redis+cluster://u:hunter2@127.0.0.1".as_ptr(),
            null(),
            &mut out,
        ));
        assert_eq!(kind, FOTP_ERROR_CONFIG, "{message}");
        assert!(
            message.contains("host:port") && !message.contains("hunter2"),
            "{message}"
        );
        let (kind, message) = take(fotp_tracker_new_redis(
            c"redis+cluster://127.0.0.1:1".as_ptr(),
            c"a{b}".as_ptr(),
            &mut out,
        ));
        assert_eq!(kind, FOTP_ERROR_INVALID_ARGUMENT, "{message}");
        assert_eq!(out, sentinel());

        // Getters and frees given NULL.
        assert!(fotp_match_ft_token(null()).is_null());
        assert!(!fotp_match_is_duplicate(null()));
        fotp_match_free(null_mut());
        fotp_tracker_free(null_mut());

        fotp_callback_free(cb);
        fotp_tracker_free(t);
        fotp_client_free(client);
    }
}

#[test]
fn exhausted_has_its_own_kind() {
    let platform = Platform::start();
    let client = client_for(&platform);
    let t = fotp_tracker_new_memory();
    for _ in 0..4500 {
        verify(t, client, 4);
    }
    let mut v = sentinel();
    // SAFETY: live objects.
    unsafe {
        let (kind, message) = take(fotp_tracker_verify(t, client, c"2".as_ptr(), 4, 0, &mut v));
        assert_eq!(kind, FOTP_ERROR_EXHAUSTED, "{message}");
        assert_eq!(kind, 8);
        assert_eq!(v, sentinel());
        fotp_tracker_free(t);
        fotp_client_free(client);
    }
}

#[cfg(feature = "redis")]
#[test]
fn redis_trackers_in_two_processes() {
    let Some(redis) = Redis::start() else { return };
    let platform = Platform::start();
    let client = client_for(&platform);
    let url = CString::new(redis.url()).unwrap();
    let (mut a, mut b) = (null_mut(), null_mut());
    // SAFETY: live strings; out-pointers writable; everything freed at the end.
    unsafe {
        ok(fotp_tracker_new_redis(url.as_ptr(), null(), &mut a));
        ok(fotp_tracker_new_redis(
            url.as_ptr(),
            c"fotp".as_ptr(),
            &mut b,
        ));
        let (token, _) = verify(a, client, 5);
        platform.finish(&token, "2", "8613800000000");
        let cb = parse(&platform.callback_body(&token, "8613800000000"));
        assert_eq!(matched(b, cb), Some((token.clone(), false)));
        assert_eq!(matched(a, cb), Some((token.clone(), true)));

        // The default namespace is "fotp".
        let mut con = redis.con();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).unwrap();
        assert!(!keys.is_empty() && keys.iter().all(|k| k.starts_with("fotp:")));

        let ft = CString::new(token).unwrap();
        let mut r = null_mut();
        ok(fotp_tracker_wait(a, client, ft.as_ptr(), 10_000, &mut r));
        assert_eq!(fotp_query_result_status(r), fotp_status::Success);
        fotp_query_result_free(r);
        fotp_callback_free(cb);

        // Redis gone: errors, never a match.
        drop(redis);
        let cb = parse(&platform.callback_body(ft.to_str().unwrap(), "1"));
        let mut m = sentinel();
        let (kind, _) = take(fotp_tracker_match(b, cb, &mut m));
        assert_eq!(kind, FOTP_ERROR_NETWORK);
        assert_eq!(m, sentinel());
        let mut t = sentinel();
        let (kind, _) = take(fotp_tracker_new_redis(url.as_ptr(), null(), &mut t));
        assert_eq!(kind, FOTP_ERROR_NETWORK);
        assert_eq!(t, sentinel());

        fotp_callback_free(cb);
        fotp_tracker_free(a);
        fotp_tracker_free(b);
        fotp_client_free(client);
    }
}

#[test]
fn a_panic_while_creating_a_tracker_gives_null() {
    let p = boundary(|| -> *mut fotp_tracker { panic!("boom") });
    assert!(p.is_null());
    let e = boundary(|| -> Result<(), fotp::Error> { panic!("boom") });
    assert_eq!(take(e).0, FOTP_ERROR_INTERNAL);
}
