#![no_main]
//! The C entry point for callbacks: any bytes in, every accessor on the result, then free.

use std::ffi::CStr;
use std::ptr;

use fotp::ffi::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    unsafe {
        let mut cb = ptr::null_mut();
        let err = fotp_callback_parse(data.as_ptr(), data.len(), &mut cb);
        if err.is_null() {
            assert!(!cb.is_null());
            for s in [
                fotp_callback_mobile(cb),
                fotp_callback_sender(cb),
                fotp_callback_send_time(cb),
                fotp_callback_code(cb),
            ] {
                assert!(!s.is_null());
                assert!(CStr::from_ptr(s).to_str().is_ok());
            }
            for s in [fotp_callback_content(cb), fotp_callback_deliver_time(cb), fotp_callback_err(cb)] {
                if !s.is_null() {
                    assert!(CStr::from_ptr(s).to_str().is_ok());
                }
            }
            fotp_callback_free(cb);
        } else {
            assert!(cb.is_null(), "out-parameter written on failure");
            assert_eq!(fotp_error_kind(err), FOTP_ERROR_DECODE);
            assert!(!fotp_error_message(err).is_null());
            fotp_error_free(err);
        }
    }
});
