//! fotp_callback_parse_into(): a callback parsed straight into the caller's memory.
//!
//! For bindings that copy every field out anyway (Python): one call instead of a parse, a
//! `*_fields` getter and a free, and no C copies of the strings inside the library. The parse
//! itself is the core's `parse_callback`, every rule included; this only lays out the result.

use std::ffi::c_char;

use super::{boundary, null_arg, try_out, FfiResult};
use crate::callback::{parse_callback, FIELD_NAMES};
use crate::error::{Error, ErrorKind};

/// Parses a callback body like fotp_callback_parse() (the same rules and errors), writing its
/// fields into the caller's memory instead of making an object: nothing to free afterwards.
///
/// The seven fields, in the order of fotp_callback_fields() (mobile, sender, send_time, code,
/// content, deliver_time, err), are written to `buf` as NUL-terminated UTF-8 strings, one right
/// after the other. An absent optional field is written as an empty string and its bit is clear
/// in `*present`: bit i (value 1 << i) is set when field i is present, so bits 0-3 (the required
/// fields) always are. `*used` receives the number of bytes written, the NULs included.
///
/// `buf` holds `cap` bytes; `len + 7` always suffices (a field's text is never longer than its
/// JSON, plus one NUL per field). A smaller `cap` that the fields do not fit in is
/// FOTP_ERROR_INVALID_ARGUMENT giving the size needed. `body` points to `len` bytes (it may be
/// NULL when `len` is 0) and is only read during the call; `buf` is only written during it. A
/// body that is not a valid callback is FOTP_ERROR_DECODE naming the problem, as for
/// fotp_callback_parse(); a NULL `buf`, `used` or `present`, or a NULL `body` with `len` > 0, is
/// FOTP_ERROR_INVALID_ARGUMENT. On failure nothing is written to `buf`, `*used` or `*present`.
/// Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_callback_parse_into(
    body: *const u8,
    len: usize,
    buf: *mut c_char,
    cap: usize,
    used: *mut usize,
    present: *mut u32,
) -> *mut super::fotp_error {
    boundary(|| -> FfiResult {
        let used = try_out(used, "used")?;
        let present = try_out(present, "present")?;
        let buf = try_out(buf, "buf")?;
        // SAFETY: `body` is NULL or points to `len` readable bytes (caller's contract).
        let bytes = unsafe { body_bytes(body, len)? };
        let cb = parse_callback(bytes)?;
        let fields = [
            Some(cb.mobile.as_str()),
            Some(cb.sender.as_str()),
            Some(cb.send_time.as_str()),
            Some(cb.code.as_str()),
            cb.content.as_deref(),
            cb.deliver_time.as_deref(),
            cb.err.as_deref(),
        ];
        // Everything is checked before the first byte is written.
        let mut need = 0usize;
        let mut mask = 0u32;
        for (i, (field, name)) in fields.iter().zip(FIELD_NAMES).enumerate() {
            if let Some(s) = field {
                if s.as_bytes().contains(&0) {
                    // As fotp_callback_parse(): a C string cannot carry it, never truncate.
                    return Err(Error::new(
                        ErrorKind::Decode,
                        format!(
                            "field `{name}` contains a NUL character, which a C string cannot \
                             carry"
                        ),
                    ));
                }
                mask |= 1 << i;
                need += s.len();
            }
            need += 1;
        }
        if need > cap {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "argument `cap` is {cap} bytes, this callback's fields need {need} \
                     (len + 7 always suffices)"
                ),
            ));
        }
        let dst = buf.cast::<u8>();
        let mut at = 0usize;
        for field in fields {
            let s = field.unwrap_or("");
            // SAFETY: `buf` is non-NULL with `cap` writable bytes (caller's contract) and
            // at + s.len() + 1 <= need <= cap; the source is this call's own strings, so the
            // ranges cannot overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(s.as_ptr(), dst.add(at), s.len());
                dst.add(at + s.len()).write(0);
            }
            at += s.len() + 1;
        }
        debug_assert_eq!(at, need);
        // SAFETY: both passed try_out() above; the caller provides writable pointers.
        unsafe {
            used.write(at);
            present.write(mask);
        }
        Ok(())
    })
}

/// The body as a slice: NULL is allowed only when `len` is 0.
///
/// # Safety
/// `body` is NULL or points to `len` bytes readable for the returned borrow.
unsafe fn body_bytes<'a>(body: *const u8, len: usize) -> Result<&'a [u8], Error> {
    if len == 0 {
        Ok(&[])
    } else if body.is_null() {
        Err(null_arg("body"))
    } else if len > isize::MAX as usize {
        Err(Error::new(
            ErrorKind::InvalidArgument,
            "argument `len` is larger than any object",
        ))
    } else {
        // SAFETY: non-NULL and `len` readable bytes, per this function's contract.
        Ok(unsafe { std::slice::from_raw_parts(body, len) })
    }
}
