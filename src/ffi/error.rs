//! `fotp_error`: the error object every fallible function returns.

use std::ffi::{c_char, c_int, CString};

use super::{boundary, free_box, lossy_cstring};
use crate::error::Error;

/// The caller's input broke a rule (a NULL pointer and invalid UTF-8 included).
pub const FOTP_ERROR_INVALID_ARGUMENT: c_int = 1;
/// The client cannot be built (missing base URL or credentials, insecure URL).
pub const FOTP_ERROR_CONFIG: c_int = 2;
/// DNS, connect, TLS or I/O failure.
pub const FOTP_ERROR_NETWORK: c_int = 3;
/// A time limit ran out.
pub const FOTP_ERROR_TIMEOUT: c_int = 4;
/// A non-2xx answer that is not an API envelope.
pub const FOTP_ERROR_HTTP_STATUS: c_int = 5;
/// An envelope whose code is not "000000"; see fotp_error_api_code().
pub const FOTP_ERROR_API: c_int = 6;
/// A body that is not what the protocol says (bad JSON, missing field, too large).
pub const FOTP_ERROR_DECODE: c_int = 7;
/// A tracker has no free code left; use longer codes.
pub const FOTP_ERROR_EXHAUSTED: c_int = 8;
/// A bug (a panic caught at the C boundary); never expected.
pub const FOTP_ERROR_INTERNAL: c_int = 99;

/// An error: its kind (a FOTP_ERROR_* value), a message, and for API errors the platform's code.
///
/// Returned owned by every fallible function (NULL means success); free it with
/// fotp_error_free(). Immutable: it may be read from several threads at once.
pub struct fotp_error {
    kind: c_int,
    message: CString,
    api_code: Option<CString>,
    http_status: u16,
}

impl fotp_error {
    /// Boxes `e` for C.
    pub(crate) fn into_raw(e: Error) -> *mut fotp_error {
        Box::into_raw(Box::new(fotp_error {
            kind: e.kind() as c_int,
            message: lossy_cstring(e.message()),
            api_code: e.api_code().map(lossy_cstring),
            http_status: e.http_status(),
        }))
    }
}

/// The kind of `e`: one of the FOTP_ERROR_* values (never changes for a given failure).
///
/// Returns 0 when `e` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_error_kind(e: *const fotp_error) -> c_int {
    boundary(|| {
        // SAFETY: NULL or a live error from this library (caller's contract).
        unsafe { e.as_ref() }.map_or(0, |e| e.kind)
    })
}

/// A human-readable description of `e` (UTF-8, never contains a secret or a token).
///
/// The string is owned by `e` and lives until fotp_error_free(e). When `e` is NULL, returns a
/// static string (never NULL). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_error_message(e: *const fotp_error) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live error from this library (caller's contract).
        match unsafe { e.as_ref() } {
            Some(e) => e.message.as_ptr(),
            None => c"no error (the fotp_error pointer is NULL)".as_ptr(),
        }
    })
}

/// The platform's error code (e.g. "100001") when the kind is FOTP_ERROR_API, else NULL.
///
/// The string is owned by `e` and lives until fotp_error_free(e). NULL when `e` is NULL.
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_error_api_code(e: *const fotp_error) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live error from this library (caller's contract).
        unsafe { e.as_ref() }.map_or(std::ptr::null(), |e| super::opt_ptr(&e.api_code))
    })
}

/// The HTTP status of the answer that caused `e`, or 0 when there was no HTTP answer (or `e`
/// is NULL). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_error_http_status(e: *const fotp_error) -> u16 {
    boundary(|| {
        // SAFETY: NULL or a live error from this library (caller's contract).
        unsafe { e.as_ref() }.map_or(0, |e| e.http_status)
    })
}

/// Frees an error returned by this library. NULL is a no-op. Strings obtained from `e` become
/// invalid. Must not run concurrently with other use of `e`.
#[no_mangle]
pub unsafe extern "C" fn fotp_error_free(e: *mut fotp_error) {
    boundary(|| {
        // SAFETY: NULL or an error from this library not yet freed (caller's contract).
        unsafe { free_box(e) }
    })
}
