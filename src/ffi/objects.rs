//! Result objects (verification, query result, callback) and static strings.

use std::ffi::{c_char, CString};

use super::{
    boundary, decoded_cstring, decoded_opt_cstring, free_box, opt_ptr, try_out, write_fields,
    FfiResult,
};
use crate::callback::{parse_callback, Callback};
use crate::error::{Error, ErrorKind};
use crate::wire::{QueryResult, Status, Verification};

/// The status of a verification, as query reports it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum fotp_status {
    /// "0": the platform has no answer yet.
    Processing = 0,
    /// "1": the verification failed (wrong code, expired).
    Failed = 1,
    /// "2": the user sent the right code in time.
    Success = 2,
    /// Any other value; see fotp_query_result_raw_status().
    Unknown = 255,
}

impl From<Status> for fotp_status {
    fn from(s: Status) -> Self {
        // An explicit match: the C side never sees a value outside the enum.
        match s {
            Status::Processing => fotp_status::Processing,
            Status::Failed => fotp_status::Failed,
            Status::Success => fotp_status::Success,
            Status::Unknown => fotp_status::Unknown,
        }
    }
}

/// The answer to fotp_verify(): the link to open on the phone, the token to query with, the
/// platform's message id and the code the SMS must carry.
///
/// Owned by the caller, freed with fotp_verification_free(). Immutable: its getters may be
/// called from several threads at once.
pub struct fotp_verification {
    url: CString,
    ft_token: CString,
    message_id: CString,
    code: CString,
}

impl fotp_verification {
    /// The C form of `v`; a field holding a NUL is a decode error.
    pub(crate) fn new(v: Verification) -> Result<Self, Error> {
        Ok(fotp_verification {
            url: decoded_cstring("url", v.url)?,
            ft_token: decoded_cstring("ftToken", v.ft_token)?,
            message_id: decoded_cstring("messageId", v.message_id)?,
            code: decoded_cstring("code", v.code)?,
        })
    }

    fn fields(&self) -> [*const c_char; 4] {
        [
            self.url.as_ptr(),
            self.ft_token.as_ptr(),
            self.message_id.as_ptr(),
            self.code.as_ptr(),
        ]
    }
}

/// The result of fotp_query() or fotp_wait().
///
/// Owned by the caller, freed with fotp_query_result_free(). Immutable: its getters may be
/// called from several threads at once.
pub struct fotp_query_result {
    status: fotp_status,
    raw_status: CString,
    mobile: Option<CString>,
    sender: Option<CString>,
    send_time: Option<CString>,
    code: Option<CString>,
    deliver_time: Option<CString>,
}

impl fotp_query_result {
    /// The C form of `r`; a field holding a NUL is a decode error.
    pub(crate) fn new(r: QueryResult) -> Result<Self, Error> {
        Ok(fotp_query_result {
            status: r.status.into(),
            raw_status: decoded_cstring("status", r.raw_status)?,
            mobile: decoded_opt_cstring("mobile", r.mobile)?,
            sender: decoded_opt_cstring("sender", r.sender)?,
            send_time: decoded_opt_cstring("sendTime", r.send_time)?,
            code: decoded_opt_cstring("code", r.code)?,
            deliver_time: decoded_opt_cstring("deliverTime", r.deliver_time)?,
        })
    }

    fn fields(&self) -> [*const c_char; 6] {
        [
            self.raw_status.as_ptr(),
            opt_ptr(&self.mobile),
            opt_ptr(&self.sender),
            opt_ptr(&self.send_time),
            opt_ptr(&self.code),
            opt_ptr(&self.deliver_time),
        ]
    }
}

/// A callback the platform pushed (push mode), parsed by fotp_callback_parse().
///
/// Owned by the caller, freed with fotp_callback_free(). Immutable: its getters may be called
/// from several threads at once.
pub struct fotp_callback {
    cb: Callback,
    // The C copies, in the order of fotp_callback_fields().
    c: [Option<CString>; 7],
}

impl fotp_callback {
    fn new(cb: Callback) -> Result<Self, Error> {
        let c = [
            Some(decoded_cstring("mobile", cb.mobile.clone())?),
            Some(decoded_cstring("sender", cb.sender.clone())?),
            Some(decoded_cstring("sendTime", cb.send_time.clone())?),
            Some(decoded_cstring("code", cb.code.clone())?),
            decoded_opt_cstring("content", cb.content.clone())?,
            decoded_opt_cstring("deliverTime", cb.deliver_time.clone())?,
            decoded_opt_cstring("err", cb.err.clone())?,
        ];
        Ok(fotp_callback { cb, c })
    }

    /// The parsed callback, for the core's functions.
    pub(crate) fn callback(&self) -> &Callback {
        &self.cb
    }

    fn field(&self, i: usize) -> *const c_char {
        opt_ptr(&self.c[i])
    }
}

/// The redirect link to open on the user's phone. Owned by `v`, lives until
/// fotp_verification_free(v); NULL when `v` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_verification_url(v: *const fotp_verification) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { v.as_ref() }.map_or(std::ptr::null(), |v| v.url.as_ptr())
    })
}

/// The token to query the result with. Owned by `v`, lives until fotp_verification_free(v);
/// NULL when `v` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_verification_ft_token(v: *const fotp_verification) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { v.as_ref() }.map_or(std::ptr::null(), |v| v.ft_token.as_ptr())
    })
}

/// The platform's message id. Owned by `v`, lives until fotp_verification_free(v); NULL
/// when `v` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_verification_message_id(
    v: *const fotp_verification,
) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { v.as_ref() }.map_or(std::ptr::null(), |v| v.message_id.as_ptr())
    })
}

/// The code the user's SMS must carry. Owned by `v`, lives until fotp_verification_free(v);
/// NULL when `v` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_verification_code(v: *const fotp_verification) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { v.as_ref() }.map_or(std::ptr::null(), |v| v.code.as_ptr())
    })
}

/// All fields of `v` in one call: writes up to `n` pointers to `out`, in the order url,
/// ft_token, message_id, code, and returns 4 (the number of fields; when `n` is smaller only
/// the first `n` are written, when `out` is NULL nothing is). Returns 0 and writes nothing when
/// `v` is NULL. The pointers are owned by `v` and live until fotp_verification_free(v).
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_verification_fields(
    v: *const fotp_verification,
    out: *mut *const c_char,
    n: usize,
) -> usize {
    boundary(|| {
        // SAFETY: NULL or a live object; `out` holds `n` slots (caller's contract).
        unsafe { v.as_ref().map_or(0, |v| write_fields(&v.fields(), out, n)) }
    })
}

/// Frees a verification. NULL is a no-op. Strings obtained from `v` become invalid.
#[no_mangle]
pub unsafe extern "C" fn fotp_verification_free(v: *mut fotp_verification) {
    boundary(|| {
        // SAFETY: NULL or an object from this library not yet freed (caller's contract).
        unsafe { free_box(v) }
    })
}

/// The decoded status of `r`; FOTP_STATUS_UNKNOWN when the platform sent another value (see
/// fotp_query_result_raw_status()) or when `r` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_query_result_status(r: *const fotp_query_result) -> fotp_status {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { r.as_ref() }.map_or(fotp_status::Unknown, |r| r.status)
    })
}

/// The status as the platform sent it ("0", "1", "2" or another value). Owned by `r`,
/// lives until fotp_query_result_free(r); NULL only when `r` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_query_result_raw_status(
    r: *const fotp_query_result,
) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { r.as_ref() }.map_or(std::ptr::null(), |r| r.raw_status.as_ptr())
    })
}

/// The user's phone number; NULL when absent or `r` is NULL. Owned by `r`, lives until
/// fotp_query_result_free(r). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_query_result_mobile(r: *const fotp_query_result) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { r.as_ref() }.map_or(std::ptr::null(), |r| opt_ptr(&r.mobile))
    })
}

/// The number the SMS was sent to; NULL when absent or `r` is NULL. Owned by `r`, lives
/// until fotp_query_result_free(r). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_query_result_sender(r: *const fotp_query_result) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { r.as_ref() }.map_or(std::ptr::null(), |r| opt_ptr(&r.sender))
    })
}

/// When the user sent the SMS; NULL when absent or `r` is NULL. Owned by `r`, lives until
/// fotp_query_result_free(r). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_query_result_send_time(r: *const fotp_query_result) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { r.as_ref() }.map_or(std::ptr::null(), |r| opt_ptr(&r.send_time))
    })
}

/// The code the SMS carried; NULL when absent or `r` is NULL. Owned by `r`, lives until
/// fotp_query_result_free(r). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_query_result_code(r: *const fotp_query_result) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { r.as_ref() }.map_or(std::ptr::null(), |r| opt_ptr(&r.code))
    })
}

/// When the SMS reached the platform; NULL when absent or `r` is NULL. Owned by `r`, lives
/// until fotp_query_result_free(r). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_query_result_deliver_time(
    r: *const fotp_query_result,
) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { r.as_ref() }.map_or(std::ptr::null(), |r| opt_ptr(&r.deliver_time))
    })
}

/// All string fields of `r` in one call: writes up to `n` pointers to `out`, in the order
/// raw_status, mobile, sender, send_time, code, deliver_time (NULL for absent ones), and
/// returns 6 (when `n` is smaller only the first `n` are written, when `out` is NULL nothing
/// is). Returns 0 and writes nothing when `r` is NULL. The pointers are owned by `r` and live
/// until fotp_query_result_free(r). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_query_result_fields(
    r: *const fotp_query_result,
    out: *mut *const c_char,
    n: usize,
) -> usize {
    boundary(|| {
        // SAFETY: NULL or a live object; `out` holds `n` slots (caller's contract).
        unsafe { r.as_ref().map_or(0, |r| write_fields(&r.fields(), out, n)) }
    })
}

/// Frees a query result. NULL is a no-op. Strings obtained from `r` become invalid.
#[no_mangle]
pub unsafe extern "C" fn fotp_query_result_free(r: *mut fotp_query_result) {
    boundary(|| {
        // SAFETY: NULL or an object from this library not yet freed (caller's contract).
        unsafe { free_box(r) }
    })
}

/// Parses a callback body (the JSON the platform POSTs to your callback address).
///
/// `body` points to `len` bytes (it may be NULL when `len` is 0) and is only read during the
/// call. On success writes a new callback to `*out` (owned by the caller, free with
/// fotp_callback_free()) and returns NULL. A body that is not a valid callback (bad JSON or
/// UTF-8, a required field missing or empty, a field of the wrong type, over 64 KiB, a NUL
/// inside a field) is a FOTP_ERROR_DECODE error naming the problem; a NULL `out`, or a NULL
/// `body` with `len` > 0, is FOTP_ERROR_INVALID_ARGUMENT. `*out` is untouched on failure.
/// Thread-safe. Answer an accepted callback with fotp_callback_ack().
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_callback_parse(
    body: *const u8,
    len: usize,
    out: *mut *mut fotp_callback,
) -> *mut super::fotp_error {
    boundary(|| -> FfiResult {
        let out = try_out(out, "out")?;
        let bytes: &[u8] = if len == 0 {
            &[]
        } else if body.is_null() {
            return Err(super::null_arg("body"));
        } else if len > isize::MAX as usize {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "argument `len` is larger than any object",
            ));
        } else {
            // SAFETY: non-NULL and `len` readable bytes (caller's contract).
            unsafe { std::slice::from_raw_parts(body, len) }
        };
        let cb = fotp_callback::new(parse_callback(bytes)?)?;
        // SAFETY: checked non-NULL; the caller provides a writable pointer.
        unsafe { out.write(Box::into_raw(Box::new(cb))) };
        Ok(())
    })
}

/// The user's phone number (never NULL for a parsed callback). Owned by `cb`, lives until
/// fotp_callback_free(cb); NULL when `cb` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_callback_mobile(cb: *const fotp_callback) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { cb.as_ref() }.map_or(std::ptr::null(), |cb| cb.field(0))
    })
}

/// The number the SMS was sent to. Owned by `cb`, lives until fotp_callback_free(cb); NULL
/// when `cb` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_callback_sender(cb: *const fotp_callback) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { cb.as_ref() }.map_or(std::ptr::null(), |cb| cb.field(1))
    })
}

/// When the user sent the SMS. Owned by `cb`, lives until fotp_callback_free(cb); NULL when
/// `cb` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_callback_send_time(cb: *const fotp_callback) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { cb.as_ref() }.map_or(std::ptr::null(), |cb| cb.field(2))
    })
}

/// The code the SMS carried. Owned by `cb`, lives until fotp_callback_free(cb); NULL when
/// `cb` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_callback_code(cb: *const fotp_callback) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { cb.as_ref() }.map_or(std::ptr::null(), |cb| cb.field(3))
    })
}

/// The SMS text; NULL when absent or `cb` is NULL. Owned by `cb`, lives until
/// fotp_callback_free(cb). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_callback_content(cb: *const fotp_callback) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { cb.as_ref() }.map_or(std::ptr::null(), |cb| cb.field(4))
    })
}

/// When the SMS reached the platform; NULL when absent or `cb` is NULL. Owned by `cb`,
/// lives until fotp_callback_free(cb). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_callback_deliver_time(cb: *const fotp_callback) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { cb.as_ref() }.map_or(std::ptr::null(), |cb| cb.field(5))
    })
}

/// Why the verification failed; NULL when absent or `cb` is NULL. Owned by `cb`, lives
/// until fotp_callback_free(cb). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_callback_err(cb: *const fotp_callback) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { cb.as_ref() }.map_or(std::ptr::null(), |cb| cb.field(6))
    })
}

/// All fields of `cb` in one call: writes up to `n` pointers to `out`, in the order mobile,
/// sender, send_time, code, content, deliver_time, err (NULL for absent ones), and returns 7
/// (when `n` is smaller only the first `n` are written, when `out` is NULL nothing is).
/// Returns 0 and writes nothing when `cb` is NULL. The pointers are owned by `cb` and live
/// until fotp_callback_free(cb). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_callback_fields(
    cb: *const fotp_callback,
    out: *mut *const c_char,
    n: usize,
) -> usize {
    boundary(|| {
        let fields =
            |cb: &fotp_callback| -> [*const c_char; 7] { std::array::from_fn(|i| cb.field(i)) };
        // SAFETY: NULL or a live object; `out` holds `n` slots (caller's contract).
        unsafe {
            cb.as_ref()
                .map_or(0, |cb| write_fields(&fields(cb), out, n))
        }
    })
}

/// Frees a callback. NULL is a no-op. Strings obtained from `cb` become invalid.
#[no_mangle]
pub unsafe extern "C" fn fotp_callback_free(cb: *mut fotp_callback) {
    boundary(|| {
        // SAFETY: NULL or an object from this library not yet freed (caller's contract).
        unsafe { free_box(cb) }
    })
}

/// The exact body to answer an accepted callback with: {"code":"0"} (send it with
/// Content-Type application/json). A static string: never NULL, never freed. Thread-safe.
#[no_mangle]
pub extern "C" fn fotp_callback_ack() -> *const c_char {
    boundary(|| c"{\"code\":\"0\"}".as_ptr())
}

/// The version of the library, e.g. "0.1.0" (compare with the header's FOTP_VERSION). A
/// static string: never NULL, never freed. Thread-safe.
#[no_mangle]
pub extern "C" fn fotp_version() -> *const c_char {
    boundary(|| {
        concat!(env!("CARGO_PKG_VERSION"), "\0")
            .as_ptr()
            .cast::<c_char>()
    })
}
