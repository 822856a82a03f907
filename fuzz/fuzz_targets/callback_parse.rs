#![no_main]
//! Any bytes: an error or a callback whose fields are non-empty where required.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cb) = fotp::parse_callback(data) {
        assert!(data.len() <= fotp::MAX_CALLBACK_BYTES);
        assert!(!cb.mobile.is_empty() && !cb.sender.is_empty());
        assert!(!cb.send_time.is_empty() && !cb.code.is_empty());
    }
});
