#![no_main]
//! Any status and body: decoding a verify or query answer never panics, and success needs a 2xx.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u16, &[u8])| {
    let (status, body) = input;
    let status = 100 + status % 500;
    let ok = (200..300).contains(&status);
    if fotp::__internals::decode_envelope::<fotp::Verification>(status, body).is_ok() {
        assert!(ok);
    }
    if let Ok(r) = fotp::__internals::decode_envelope::<fotp::QueryResult>(status, body) {
        assert!(ok);
        assert_eq!(r.status, fotp::Status::from_wire(&r.raw_status));
    }
});
