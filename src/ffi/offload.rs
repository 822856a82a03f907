//! `fotp_offload` and `fotp_call`: verify, query and callback confirmation run on the library's
//! worker threads, their completion reported on a file descriptor, for callers that wait in an
//! event loop instead of a blocked thread (the Go binding's goroutines park in Go's network
//! poller). The pool itself is `crate::offload`; this file only converts and delegates.

use std::ffi::c_char;
use std::sync::{Arc, Mutex};

use super::{
    boundary, fotp_callback, fotp_client, fotp_error, fotp_query_result, fotp_verification,
    free_box, try_opt_str, try_out, try_ref, try_str, write_out, FfiResult,
};
use crate::error::{Error, ErrorKind};
use crate::offload::Offload;
use crate::wire::VerifyRequest;

/// A pool of worker threads that runs the calls started with fotp_verify_start(),
/// fotp_query_start() and fotp_confirm_callback_start(), and reports each finished call on a
/// file descriptor (fotp_offload_fd()).
///
/// Created by fotp_offload_new(), owned by the caller, freed with fotp_offload_free().
/// Thread-safe. Workers start when calls need them (at most the number given to
/// fotp_offload_new(); more calls wait in a queue, in order) and exit after 5 s without work.
/// After fork(), the child cannot start calls with a pool made before (they fail with
/// FOTP_ERROR_INTERNAL), drains nothing from it, and fotp_offload_free() there returns at once
/// (the workers are the parent's): make a new pool in the child.
pub struct fotp_offload {
    pool: Offload,
}

/// The outcome of a started call, written by the worker, taken once by the caller.
enum Outcome {
    Verify(Result<fotp_verification, Error>),
    Query(Result<fotp_query_result, Error>),
    Confirm(Result<bool, Error>),
    /// The core panicked (a bug): every kind of result reports it.
    Panicked(Error),
    Taken,
}

/// A call started with fotp_verify_start(), fotp_query_start() or
/// fotp_confirm_callback_start().
///
/// Owned by the caller, freed with fotp_call_free() at any time (a call still running then
/// finishes on its worker and its result is dropped). Its result is taken once with the
/// function matching how it was started, after its tag came out of fotp_offload_drain().
pub struct fotp_call {
    outcome: Arc<Mutex<Option<Outcome>>>,
}

/// A new pool of at most `max_threads` worker threads (0 means 1). No thread starts yet.
///
/// On success writes the pool to `*out` (owned by the caller, free with fotp_offload_free())
/// and returns NULL; `*out` is untouched on failure. Errors: FOTP_ERROR_INVALID_ARGUMENT (NULL
/// `out`), FOTP_ERROR_INTERNAL (no descriptor could be made: see the message).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_offload_new(
    max_threads: u32,
    out: *mut *mut fotp_offload,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        let out = try_out(out, "out")?;
        let pool = Offload::new(max_threads as usize).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot create the worker pool: {e}"),
            )
        })?;
        // SAFETY: `out` passed try_out() above.
        unsafe { write_out(out, fotp_offload { pool }) };
        Ok(())
    })
}

/// Writes to `*fd` the file descriptor that is readable while finished calls wait to be
/// collected with fotp_offload_drain(), and returns NULL; a NULL argument is
/// FOTP_ERROR_INVALID_ARGUMENT (`*fd` untouched). The descriptor is owned by the pool: never
/// read, write or close it (wait on it with poll/epoll, or on a dup() of it); valid until
/// fotp_offload_free(). It stays readable until drained, so an edge-triggered poller must call
/// fotp_offload_drain() until it returns fewer tags than asked before waiting. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_offload_fd(
    o: *const fotp_offload,
    fd: *mut std::ffi::c_int,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or a live pool (caller's contract).
        let o = unsafe { try_ref(o, "o")? };
        let fd = try_out(fd, "fd")?;
        // SAFETY: checked non-NULL; the caller provides a writable int.
        unsafe { fd.write(o.pool.fd()) };
        Ok(())
    })
}

/// Writes the tags of up to `n` finished calls to `tags` (oldest first) and returns how many;
/// each finished call's tag comes out exactly once. When it returns fewer than `n` (0
/// included), no finished call is left and the descriptor is no longer readable until the next
/// one finishes. Never blocks. Returns 0 when `o` or `tags` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_offload_drain(
    o: *const fotp_offload,
    tags: *mut u64,
    n: usize,
) -> usize {
    boundary(|| {
        // SAFETY: NULL or a live pool (caller's contract).
        let Some(o) = (unsafe { o.as_ref() }) else {
            return 0;
        };
        if tags.is_null() || n == 0 {
            return 0;
        }
        // SAFETY: `tags` points to `n` writable u64 (caller's contract).
        let out = unsafe { std::slice::from_raw_parts_mut(tags, n) };
        o.pool.drain(out)
    })
}

/// Frees a pool. NULL is a no-op. Blocks until every call started with it has finished (each
/// within its own time limits) and every worker has exited; no call may be started with it
/// meanwhile. Tags not yet drained are dropped; fotp_call objects stay valid.
#[no_mangle]
pub unsafe extern "C" fn fotp_offload_free(o: *mut fotp_offload) {
    boundary(|| {
        // SAFETY: NULL or a pool from this library not yet freed (caller's contract).
        unsafe { free_box(o) }
    })
}

/// Queues `work` (which produces the call's outcome) on `o`, reporting `tag` when it is done.
fn start(
    o: &fotp_offload,
    tag: u64,
    out: *mut *mut fotp_call,
    work: impl FnOnce() -> Outcome + Send + 'static,
) -> FfiResult {
    let outcome = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&outcome);
    o.pool
        .spawn(tag, move || {
            // A panic in the core becomes an internal error, as at the C boundary.
            let r =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|_| {
                    Outcome::Panicked(Error::new(
                        ErrorKind::Internal,
                        "internal error (a bug in fotp, please report it): a panic in a worker",
                    ))
                });
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        })
        .map_err(|e| Error::new(ErrorKind::Internal, format!("cannot start the call: {e}")))?;
    // SAFETY: the callers checked `out` with try_out().
    unsafe { write_out(out, fotp_call { outcome }) };
    Ok(())
}

/// Starts fotp_verify() on one of `o`'s workers: same arguments, checks, limits and
/// cancellation (`client`'s call bound and cancel token apply as they are when this is
/// called). `tag` is the caller's: fotp_offload_drain() reports it once the call has finished;
/// then fotp_call_verification() gives the result.
///
/// `client` and the strings are copied: they may be freed as soon as this returns. On success
/// writes the started call to `*out` (owned by the caller, free with fotp_call_free()) and
/// returns NULL; `*out` is untouched on failure (NULL argument: FOTP_ERROR_INVALID_ARGUMENT,
/// no worker could start: FOTP_ERROR_INTERNAL). Errors of the call itself come from
/// fotp_call_verification(). Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_verify_start(
    client: *const fotp_client,
    ft_id: *const c_char,
    code: *const c_char,
    validity_minutes: u32,
    o: *const fotp_offload,
    tag: u64,
    out: *mut *mut fotp_call,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or live objects and strings (caller's contract).
        let (client, ft_id, code, o) = unsafe {
            (
                try_ref(client, "client")?,
                try_str(ft_id, "ft_id")?,
                try_opt_str(code, "code")?,
                try_ref(o, "o")?,
            )
        };
        let out = try_out(out, "out")?;
        let mut req = VerifyRequest::new(ft_id);
        if let Some(code) = code {
            req = req.code(code);
        }
        if validity_minutes != 0 {
            req = req.validity_minutes(validity_minutes);
        }
        let client = client.client().clone();
        start(o, tag, out, move || {
            Outcome::Verify(client.verify(&req).and_then(fotp_verification::new))
        })
    })
}

/// Starts fotp_query() on one of `o`'s workers; see fotp_verify_start(). The result comes from
/// fotp_call_query_result(). Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_query_start(
    client: *const fotp_client,
    ft_token: *const c_char,
    o: *const fotp_offload,
    tag: u64,
    out: *mut *mut fotp_call,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or live objects and strings (caller's contract).
        let (client, ft_token, o) = unsafe {
            (
                try_ref(client, "client")?,
                try_str(ft_token, "ft_token")?,
                try_ref(o, "o")?,
            )
        };
        let out = try_out(out, "out")?;
        let client = client.client().clone();
        let ft_token = ft_token.to_owned();
        start(o, tag, out, move || {
            Outcome::Query(client.query(&ft_token).and_then(fotp_query_result::new))
        })
    })
}

/// Starts fotp_confirm_callback() on one of `o`'s workers; see fotp_verify_start(). `cb` is
/// copied (it may be freed at once). The result comes from fotp_call_confirmed(). Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_confirm_callback_start(
    client: *const fotp_client,
    cb: *const fotp_callback,
    ft_token: *const c_char,
    o: *const fotp_offload,
    tag: u64,
    out: *mut *mut fotp_call,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or live objects and strings (caller's contract).
        let (client, cb, ft_token, o) = unsafe {
            (
                try_ref(client, "client")?,
                try_ref(cb, "cb")?,
                try_str(ft_token, "ft_token")?,
                try_ref(o, "o")?,
            )
        };
        let out = try_out(out, "out")?;
        let client = client.client().clone();
        let cb = cb.callback().clone();
        let ft_token = ft_token.to_owned();
        start(o, tag, out, move || {
            Outcome::Confirm(client.confirm_callback(&cb, &ft_token))
        })
    })
}

/// Which `fotp_*_start` made a call.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Verify,
    Query,
    Confirm,
}

/// Takes the outcome of `call`, which must have finished and been started as `kind` (a wrong
/// kind takes nothing: the right getter still works).
fn take(call: &fotp_call, kind: Kind, getter: &str) -> Result<Outcome, Error> {
    let mut slot = call.outcome.lock().unwrap_or_else(|p| p.into_inner());
    let (started, by) = match slot.as_ref() {
        None => {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "the call has not finished: wait until fotp_offload_drain() reports its tag",
            ))
        }
        Some(Outcome::Taken) => {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("the result of this call was already taken ({getter})"),
            ))
        }
        Some(Outcome::Verify(_)) => (Kind::Verify, "fotp_verify_start()"),
        Some(Outcome::Query(_)) => (Kind::Query, "fotp_query_start()"),
        Some(Outcome::Confirm(_)) => (Kind::Confirm, "fotp_confirm_callback_start()"),
        Some(Outcome::Panicked(_)) => (kind, ""),
    };
    if started != kind {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("{getter} cannot take the result of a call started by {by}"),
        ));
    }
    match slot.replace(Outcome::Taken) {
        Some(Outcome::Panicked(e)) => Err(e),
        Some(o) => Ok(o),
        None => unreachable!("checked above"),
    }
}

/// The result of a call started with fotp_verify_start(), once its tag came out of
/// fotp_offload_drain(): on success writes the verification to `*out` (owned by the caller,
/// free with fotp_verification_free()) and returns NULL; otherwise the call's error (as
/// fotp_verify() would return it), `*out` untouched. The result can be taken once; before the
/// call finished, or for another kind of call, FOTP_ERROR_INVALID_ARGUMENT. Never blocks.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_call_verification(
    call: *const fotp_call,
    out: *mut *mut fotp_verification,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or a live call (caller's contract).
        let call = unsafe { try_ref(call, "call")? };
        let out = try_out(out, "out")?;
        match take(call, Kind::Verify, "fotp_call_verification()")? {
            Outcome::Verify(r) => {
                // SAFETY: `out` passed try_out() above.
                unsafe { write_out(out, r?) };
                Ok(())
            }
            _ => unreachable!("take() checked the kind"),
        }
    })
}

/// The result of a call started with fotp_query_start(); as fotp_call_verification(), the
/// result being a fotp_query_result (free with fotp_query_result_free()).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_call_query_result(
    call: *const fotp_call,
    out: *mut *mut fotp_query_result,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or a live call (caller's contract).
        let call = unsafe { try_ref(call, "call")? };
        let out = try_out(out, "out")?;
        match take(call, Kind::Query, "fotp_call_query_result()")? {
            Outcome::Query(r) => {
                // SAFETY: `out` passed try_out() above.
                unsafe { write_out(out, r?) };
                Ok(())
            }
            _ => unreachable!("take() checked the kind"),
        }
    })
}

/// The result of a call started with fotp_confirm_callback_start(); as
/// fotp_call_verification(), the result being written to `*confirmed`.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_call_confirmed(
    call: *const fotp_call,
    confirmed: *mut bool,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or a live call (caller's contract).
        let call = unsafe { try_ref(call, "call")? };
        let confirmed = try_out(confirmed, "confirmed")?;
        match take(call, Kind::Confirm, "fotp_call_confirmed()")? {
            Outcome::Confirm(r) => {
                let ok = r?;
                // SAFETY: checked non-NULL; the caller provides a writable pointer.
                unsafe { confirmed.write(ok) };
                Ok(())
            }
            _ => unreachable!("take() checked the kind"),
        }
    })
}

/// Frees a call. NULL is a no-op. May be called at any time: a call still running finishes on
/// its worker (within its limits; trigger its cancel token to end it sooner), its tag still
/// comes out of fotp_offload_drain(), and its result is dropped.
#[no_mangle]
pub unsafe extern "C" fn fotp_call_free(call: *mut fotp_call) {
    boundary(|| {
        // SAFETY: NULL or a call from this library not yet freed (caller's contract).
        unsafe { free_box(call) }
    })
}
