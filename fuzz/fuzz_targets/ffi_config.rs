#![no_main]
//! C string arguments (any bytes, NUL-terminated) through the configuration and client
//! entry points: errors, never crashes or leaks.

use std::ffi::CString;
use std::ptr;

use fotp::ffi::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|parts: (Vec<u8>, Vec<u8>, Vec<u8>, u32, bool)| {
    let (url, id, secret, timeout, insecure) = parts;
    let c = |v: Vec<u8>| CString::new(v.into_iter().filter(|b| *b != 0).collect::<Vec<_>>()).unwrap();
    let (url, id, secret) = (c(url), c(id), c(secret));
    unsafe {
        let cfg = fotp_config_new();
        for err in [
            fotp_config_set_base_url(cfg, url.as_ptr()),
            fotp_config_set_hmac_auth(cfg, id.as_ptr(), secret.as_ptr()),
            fotp_config_set_token_auth(ptr::null_mut(), id.as_ptr(), secret.as_ptr()),
            // The same bytes as a proxy URL: checked when set, nothing is connected.
            fotp_config_set_proxy(cfg, if insecure { url.as_ptr() } else { ptr::null() }),
        ] {
            if !err.is_null() {
                assert!(!fotp_error_message(err).is_null());
                fotp_error_free(err);
            }
        }
        fotp_config_set_timeout_ms(cfg, timeout);
        fotp_config_set_call_timeout_ms(cfg, timeout.rotate_left(16));
        fotp_config_set_allow_insecure_http(cfg, insecure);
        let mut client = ptr::null_mut();
        let err = fotp_client_new(cfg, &mut client);
        if err.is_null() {
            let mut v = ptr::null_mut();
            // A validity of 11 minutes is always refused, so nothing is ever sent; the other
            // arguments are checked on the way.
            let e = fotp_verify(client, id.as_ptr(), secret.as_ptr(), 11, &mut v);
            assert!(!e.is_null() && v.is_null());
            assert_eq!(fotp_error_kind(e), FOTP_ERROR_INVALID_ARGUMENT);
            fotp_error_free(e);
            fotp_client_free(client);
        } else {
            assert!(client.is_null());
            fotp_error_free(err);
        }
        fotp_config_free(cfg);
    }
});
