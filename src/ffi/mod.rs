//! The C ABI (`include/fotp.h`): a thin layer that converts arguments, calls the safe core and
//! converts results. Nothing here knows the protocol.
//!
//! Conventions (see CONTRACT.md section 3):
//! - every fallible function returns an owned `fotp_error *` (NULL on success) and writes its
//!   result through its last parameter, only on success;
//! - NULL or non-UTF-8 string arguments are invalid-argument errors naming the argument;
//! - every exported function runs inside [`boundary`], so no panic crosses into C;
//! - there is no thread-local state: errors are returned objects (Go moves goroutines between
//!   threads, a "last error" would be read on the wrong one).

#![allow(non_camel_case_types)]
// Exported functions check every pointer they dereference; the C caller owns the contract that
// a non-NULL pointer is valid, which the header documents per function.
#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{Error, ErrorKind};

mod client;
mod config;
mod error;
mod log;
mod objects;
// After objects: the header lists it after the callback's other functions.
mod callback_fields;
mod offload;
mod tracker;

pub use callback_fields::*;
pub use client::*;
pub use config::*;
pub use error::*;
pub use log::*;
pub use objects::*;
pub use offload::*;
pub use tracker::*;

#[cfg(test)]
mod tests;

/// What an exported function's body produces, and how it becomes the C return value.
pub trait FfiOutput {
    /// The C return type.
    type C;
    /// Converts a normal result.
    fn into_c(self) -> Self::C;
    /// The value returned when a panic was caught; `message` describes the panic.
    fn on_panic(message: &str) -> Self::C;
}

/// A fallible body: `Ok` becomes NULL, `Err` an owned `fotp_error`, a panic an internal error.
impl FfiOutput for Result<(), Error> {
    type C = *mut fotp_error;
    fn into_c(self) -> *mut fotp_error {
        match self {
            Ok(()) => std::ptr::null_mut(),
            Err(e) => fotp_error::into_raw(e),
        }
    }
    fn on_panic(message: &str) -> *mut fotp_error {
        fotp_error::into_raw(Error::new(
            ErrorKind::Internal,
            format!("internal error (a bug in fotp, please report it): {message}"),
        ))
    }
}

macro_rules! panic_default {
    ($($t:ty => $v:expr),* $(,)?) => {
        $(impl FfiOutput for $t {
            type C = $t;
            fn into_c(self) -> $t {
                self
            }
            fn on_panic(_: &str) -> $t {
                $v
            }
        })*
    };
}

// Functions with no error return answer a safe default after a panic.
panic_default! {
    () => (),
    bool => false,
    u16 => 0,
    u64 => 0,
    std::ffi::c_int => 0,
    usize => 0,
    fotp_status => fotp_status::Unknown,
    *const c_char => std::ptr::null(),
    *mut fotp_config => std::ptr::null_mut(),
    *mut fotp_cancel => std::ptr::null_mut(),
}

/// The panic boundary: runs `f` and converts its output for C; a panic becomes an internal
/// error, or NULL / 0 / `FOTP_STATUS_UNKNOWN` / false for functions with no error return.
///
/// Every exported function's body is exactly one call of this helper; a test enforces it.
pub fn boundary<R: FfiOutput>(f: impl FnOnce() -> R) -> R::C {
    // The closures only reach data behind the caller's pointers, and nothing is handed back to
    // C before the closure returns, so a panic leaves no half-built object visible.
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v.into_c(),
        Err(payload) => {
            let message = if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_owned()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "a panic was caught at the C boundary".to_owned()
            };
            R::on_panic(&message)
        }
    }
}

/// The body type of fallible exported functions.
pub(crate) type FfiResult = Result<(), Error>;

/// An invalid-argument error for the NULL argument `name`.
pub(crate) fn null_arg(name: &str) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!("argument `{name}` is NULL"),
    )
}

/// `&T` from a pointer the caller passed, or an invalid-argument error naming it.
///
/// # Safety
/// `p` is NULL or points to a live `T` that is not mutated during the returned borrow.
pub(crate) unsafe fn try_ref<'a, T>(p: *const T, name: &str) -> Result<&'a T, Error> {
    // SAFETY: per this function's contract.
    unsafe { p.as_ref() }.ok_or_else(|| null_arg(name))
}

/// `&mut T` from a pointer the caller passed, or an invalid-argument error naming it.
///
/// # Safety
/// `p` is NULL or points to a live `T` that nothing else uses during the returned borrow.
pub(crate) unsafe fn try_mut<'a, T>(p: *mut T, name: &str) -> Result<&'a mut T, Error> {
    // SAFETY: per this function's contract.
    unsafe { p.as_mut() }.ok_or_else(|| null_arg(name))
}

/// Checks an out-parameter is not NULL (before any work is done).
pub(crate) fn try_out<T>(p: *mut T, name: &str) -> Result<*mut T, Error> {
    if p.is_null() {
        Err(null_arg(name))
    } else {
        Ok(p)
    }
}

/// Hands `value` to the C caller: boxes it and writes the owning pointer to `*out`.
///
/// # Safety
/// `out` passed [`try_out`] (not NULL) and points to writable memory for a `*mut T` (the C
/// caller's side of every `out` parameter's contract).
pub(crate) unsafe fn write_out<T>(out: *mut *mut T, value: T) {
    debug_assert!(!out.is_null(), "write_out before try_out");
    // SAFETY: per this function's contract.
    unsafe { out.write(Box::into_raw(Box::new(value))) }
}

/// Takes back ownership of a handle the library returned earlier, dropping it; NULL is a no-op.
///
/// # Safety
/// `p` is NULL or came from `Box::into_raw` in this library and was not freed yet.
pub(crate) unsafe fn free_box<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: per this function's contract.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// A `&str` from a C string argument; NULL and invalid UTF-8 are invalid-argument errors that
/// name the argument (never echo its value: it may be a secret).
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that lives during the returned borrow.
pub(crate) unsafe fn try_str<'a>(p: *const c_char, name: &str) -> Result<&'a str, Error> {
    if p.is_null() {
        return Err(null_arg(name));
    }
    // SAFETY: non-NULL, and NUL-terminated per this function's contract.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("argument `{name}` is not valid UTF-8"),
        )
    })
}

/// Like [`try_str`], but NULL means "not set".
///
/// # Safety
/// As [`try_str`].
pub(crate) unsafe fn try_opt_str<'a>(
    p: *const c_char,
    name: &str,
) -> Result<Option<&'a str>, Error> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { try_str(p, name) }.map(Some)
    }
}

/// A C copy of a string the library received: an interior NUL cannot travel through a C string,
/// so it is a decode error naming the field (the returned strings never hide a truncation).
pub(crate) fn decoded_cstring(field: &str, s: String) -> Result<CString, Error> {
    CString::new(s).map_err(|_| {
        Error::new(
            ErrorKind::Decode,
            format!("field `{field}` contains a NUL character, which a C string cannot carry"),
        )
    })
}

/// Like [`decoded_cstring`] for an optional field.
pub(crate) fn decoded_opt_cstring(
    field: &str,
    s: Option<String>,
) -> Result<Option<CString>, Error> {
    s.map(|s| decoded_cstring(field, s)).transpose()
}

/// A C copy of a message the library wrote itself; a NUL (which could only come from echoed
/// input) is shown as U+FFFD rather than cutting the message short.
pub(crate) fn lossy_cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "\u{FFFD}")).expect("NUL characters were replaced")
}

/// The pointer of an optional C string (NULL when absent).
pub(crate) fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// Writes up to `n` of `fields` to `out` (when not NULL) and returns `fields.len()`.
///
/// # Safety
/// `out` is NULL or points to at least `n` writable pointers.
pub(crate) unsafe fn write_fields(
    fields: &[*const c_char],
    out: *mut *const c_char,
    n: usize,
) -> usize {
    if !out.is_null() {
        for (i, f) in fields.iter().take(n).enumerate() {
            // SAFETY: i < n, and `out` holds n slots per this function's contract.
            unsafe { out.add(i).write(*f) };
        }
    }
    fields.len()
}
