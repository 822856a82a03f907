//! Unit tests of the boundary and conversion helpers (the exported functions are driven through
//! the ABI in tests/ffi_abi.rs).

use std::ffi::{c_char, c_int, CStr};

use super::*;
use crate::wire::{QueryResult, Status, Verification};

fn kind_and_message(e: *mut fotp_error) -> (c_int, String) {
    assert!(!e.is_null(), "expected an error");
    // SAFETY: a live error from this library, freed right after.
    unsafe {
        let out = (
            fotp_error_kind(e),
            CStr::from_ptr(fotp_error_message(e))
                .to_str()
                .unwrap()
                .to_owned(),
        );
        fotp_error_free(e);
        out
    }
}

#[test]
fn a_panic_in_a_fallible_body_becomes_an_internal_error() {
    let e = boundary(|| -> FfiResult { panic!("boom {}", 42) });
    let (kind, message) = kind_and_message(e);
    assert_eq!(kind, FOTP_ERROR_INTERNAL);
    assert_eq!(kind, 99);
    assert!(message.contains("boom 42"), "{message}");
    let e = boundary(|| -> FfiResult { panic!("static message") });
    assert!(kind_and_message(e).1.contains("static message"));
}

#[test]
fn a_panic_elsewhere_becomes_the_safe_default() {
    assert!(boundary(|| -> *const c_char { panic!("x") }).is_null());
    assert!(boundary(|| -> *mut fotp_config { panic!("x") }).is_null());
    assert_eq!(boundary(|| -> usize { panic!("x") }), 0);
    assert_eq!(boundary(|| -> c_int { panic!("x") }), 0);
    assert_eq!(boundary(|| -> u16 { panic!("x") }), 0);
    assert!(!boundary(|| -> bool { panic!("x") }));
    assert_eq!(
        boundary(|| -> fotp_status { panic!("x") }),
        fotp_status::Unknown
    );
    boundary(|| -> () { panic!("x") });
}

#[test]
fn no_panic_passes_values_through() {
    assert!(boundary(|| -> FfiResult { Ok(()) }).is_null());
    let e = boundary(|| -> FfiResult { Err(Error::new(ErrorKind::Timeout, "slow")) });
    assert_eq!(kind_and_message(e), (FOTP_ERROR_TIMEOUT, "slow".to_owned()));
    assert_eq!(boundary(|| 7usize), 7);
    assert!(boundary(|| true));
}

#[test]
fn error_constants_match_the_core() {
    for (c, k) in [
        (FOTP_ERROR_INVALID_ARGUMENT, ErrorKind::InvalidArgument),
        (FOTP_ERROR_CONFIG, ErrorKind::Config),
        (FOTP_ERROR_NETWORK, ErrorKind::Network),
        (FOTP_ERROR_TIMEOUT, ErrorKind::Timeout),
        (FOTP_ERROR_HTTP_STATUS, ErrorKind::HttpStatus),
        (FOTP_ERROR_API, ErrorKind::Api),
        (FOTP_ERROR_DECODE, ErrorKind::Decode),
        (FOTP_ERROR_EXHAUSTED, ErrorKind::Exhausted),
        (FOTP_ERROR_INTERNAL, ErrorKind::Internal),
    ] {
        assert_eq!(c, k as c_int, "{k}");
        let e = fotp_error::into_raw(Error::new(k, "m"));
        assert_eq!(kind_and_message(e).0, c);
    }
}

#[test]
fn status_values_are_the_contract_ones() {
    assert_eq!(fotp_status::Processing as c_int, 0);
    assert_eq!(fotp_status::Failed as c_int, 1);
    assert_eq!(fotp_status::Success as c_int, 2);
    assert_eq!(fotp_status::Unknown as c_int, 255);
    assert_eq!(
        std::mem::size_of::<fotp_status>(),
        std::mem::size_of::<c_int>()
    );
    for (s, f) in [
        (Status::Processing, fotp_status::Processing),
        (Status::Failed, fotp_status::Failed),
        (Status::Success, fotp_status::Success),
        (Status::Unknown, fotp_status::Unknown),
    ] {
        assert_eq!(fotp_status::from(s), f);
    }
}

#[test]
fn static_strings() {
    // SAFETY: static NUL-terminated strings.
    unsafe {
        let ack = CStr::from_ptr(fotp_callback_ack()).to_str().unwrap();
        assert_eq!(ack, crate::CALLBACK_ACK);
        assert_eq!(
            CStr::from_ptr(fotp_version()).to_str().unwrap(),
            crate::VERSION
        );
    }
}

#[test]
fn nul_in_a_received_field_is_a_decode_error_naming_it() {
    let e = decoded_cstring("content", "a\0b".into()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.message().contains("`content`"), "{e}");
    let v = Verification {
        url: "https://x/".into(),
        ft_token: "t".into(),
        message_id: "m\0".into(),
        code: "1234".into(),
    };
    let e = fotp_verification::new(v).err().unwrap();
    assert!(e.message().contains("messageId"), "{e}");
    let r = QueryResult {
        status: Status::Success,
        raw_status: "2".into(),
        mobile: Some("1\0".into()),
        sender: None,
        send_time: None,
        code: None,
        deliver_time: None,
    };
    let e = fotp_query_result::new(r).err().unwrap();
    assert!(e.message().contains("mobile"), "{e}");
}

#[test]
fn own_messages_keep_going_past_a_nul() {
    assert_eq!(lossy_cstring("a\0b").to_str().unwrap(), "a\u{FFFD}b");
    let e = fotp_error::into_raw(Error::api("1\u{0}2", "bad\0news", 200));
    // SAFETY: a live error, freed below.
    unsafe {
        assert_eq!(
            CStr::from_ptr(fotp_error_message(e)).to_str().unwrap(),
            "bad\u{FFFD}news"
        );
        assert_eq!(
            CStr::from_ptr(fotp_error_api_code(e)).to_str().unwrap(),
            "1\u{FFFD}2"
        );
        assert_eq!(fotp_error_http_status(e), 200);
        fotp_error_free(e);
    }
}

#[test]
fn unknown_status_keeps_the_raw_value() {
    let r = QueryResult {
        status: Status::Unknown,
        raw_status: "7".into(),
        mobile: None,
        sender: Some("1008611".into()),
        send_time: None,
        code: None,
        deliver_time: None,
    };
    let r = Box::into_raw(Box::new(fotp_query_result::new(r).unwrap()));
    // SAFETY: a live result, freed below; `out` has 6 slots.
    unsafe {
        assert_eq!(fotp_query_result_status(r), fotp_status::Unknown);
        let mut out = [std::ptr::null::<c_char>(); 6];
        assert_eq!(fotp_query_result_fields(r, out.as_mut_ptr(), 6), 6);
        assert_eq!(CStr::from_ptr(out[0]).to_str().unwrap(), "7");
        assert!(out[1].is_null());
        assert_eq!(CStr::from_ptr(out[2]).to_str().unwrap(), "1008611");
        assert_eq!(out[2], fotp_query_result_sender(r));
        assert!(out[3..].iter().all(|p| p.is_null()));
        fotp_query_result_free(r);
    }
}

#[test]
fn a_panicking_config_setter_leaves_the_config_unchanged() {
    let c = fotp_config_new();
    // SAFETY: a live config from fotp_config_new(), freed at the end.
    unsafe {
        let url = c"https://otp.example.com";
        assert!(fotp_config_set_base_url(c, url.as_ptr()).is_null());
        fotp_config_set_retries(c, 7);
        // What boundary() does when a setter's body panics.
        boundary(|| (*c).update(|_| panic!("setter bug")));
        let b = (*c).builder().clone().hmac_auth("a", "b").build().unwrap();
        assert_eq!(b.base_url(), "https://otp.example.com");
        assert_eq!(b.retries(), 7);
        fotp_config_free(c);
    }
}
