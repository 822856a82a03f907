//! `fotp_tracker` and `fotp_match`: matching push-mode callbacks to verifications
//! (CONTRACT.md section 8).

use std::ffi::{c_char, CString};
use std::time::Duration;

use super::{
    boundary, decoded_cstring, fotp_callback, fotp_client, fotp_error, fotp_query_result,
    fotp_verification, free_box, try_opt_str, try_out, try_ref, try_str, write_out, FfiOutput,
    FfiResult,
};
use crate::error::Error;
use crate::tracker::{Match, Settlement, Tracker};

/// A tracker: gives each verification a code no other live verification of the tracker holds,
/// matches callbacks to their verification exactly once, and lets any process sharing its
/// store wait for the result.
///
/// Created by fotp_tracker_new_memory() or fotp_tracker_new_redis(), owned by the caller, freed
/// with fotp_tracker_free() (after every call using it has returned). Thread-safe: one tracker
/// may be used by many threads at once.
pub struct fotp_tracker {
    tracker: Tracker,
}

/// The result of fotp_tracker_settle() or fotp_tracker_match(): the verification a callback
/// belongs to, and whether this delivery is a duplicate.
///
/// Owned by the caller, freed with fotp_match_free(). Immutable: its getters may be called
/// from several threads at once.
pub struct fotp_match {
    ft_token: CString,
    inner: Match,
}

impl fotp_match {
    fn boxed(m: Match) -> Result<*mut fotp_match, Error> {
        Ok(Box::into_raw(Box::new(fotp_match {
            ft_token: decoded_cstring("ftToken", m.ft_token.clone())?,
            inner: m,
        })))
    }
}

/// What fotp_tracker_settle_outcome() found for a callback; what a receiver answers follows
/// from it.
/// cbindgen:prefix-with-name=false
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum fotp_settle_outcome {
    /// No live verification holds the code: call the handler with no match, then acknowledge.
    FOTP_SETTLE_NO_MATCH = 0,
    /// A live verification holds the code but the platform does not confirm the callback
    /// (yet), or verify's answer for the code has not reached the tracker yet: nothing was
    /// consumed; answer HTTP 503 so that the platform delivers again.
    FOTP_SETTLE_UNCONFIRMED = 1,
    /// The first confirmed delivery: run the handler (fotp_tracker_unsettle() if it fails).
    FOTP_SETTLE_FIRST = 2,
    /// Settled before: acknowledge without running the handler.
    FOTP_SETTLE_DUPLICATE = 3,
}

// fotp_tracker_new_memory() has no error return: a panic gives NULL.
impl FfiOutput for *mut fotp_tracker {
    type C = *mut fotp_tracker;
    fn into_c(self) -> *mut fotp_tracker {
        self
    }
    fn on_panic(_: &str) -> *mut fotp_tracker {
        std::ptr::null_mut()
    }
}

/// A new tracker for one process, keeping its codes in memory (a mutex-protected map).
///
/// Owned by the caller: free with fotp_tracker_free(). Returns NULL only if the library hit an
/// internal error. Thread-safe.
#[no_mangle]
pub extern "C" fn fotp_tracker_new_memory() -> *mut fotp_tracker {
    boundary(|| {
        Box::into_raw(Box::new(fotp_tracker {
            tracker: Tracker::memory(),
        }))
    })
}

/// A new tracker whose codes live in Redis, shared by every process using the same deployment
/// and namespace (app instances behind a load balancer). Needs Redis 6.2 or later.
///
/// `url` names the deployment: `redis://[user:password@]host[:port][/db]` (one server),
/// `redis+cluster://[user:password@]host:port[,host:port]...` (Redis Cluster seed nodes) or
/// `redis+sentinel://[user:password@]host:port[,host:port]...[/service]` (the primary the
/// Sentinels name `service`, default `mymaster`). `ns` is the key namespace (1-64 visible ASCII
/// characters, no braces on a cluster), or NULL for "fotp". Every key starts with `ns` and a
/// colon (`{ns}` and a colon on a cluster), and has a
/// TTL of the verification's validity plus a grace period. Connects once to check the server:
/// a URL that does not parse, or credentials the server refuses, is FOTP_ERROR_CONFIG (also
/// when the library was built without Redis support); an unreachable server
/// FOTP_ERROR_NETWORK; a NULL `url` or a bad `ns` FOTP_ERROR_INVALID_ARGUMENT. The URL is never
/// shown in messages.
///
/// On success writes a new tracker to `*out` (owned by the caller, free with
/// fotp_tracker_free()) and returns NULL; `*out` is untouched on failure. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_tracker_new_redis(
    url: *const c_char,
    ns: *const c_char,
    out: *mut *mut fotp_tracker,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or live strings (caller's contract).
        let (url, ns) = unsafe { (try_str(url, "url")?, try_opt_str(ns, "ns")?) };
        let out = try_out(out, "out")?;
        let tracker = redis_tracker(url, ns.unwrap_or("fotp"))?;
        // SAFETY: `out` passed try_out() above.
        unsafe { write_out(out, fotp_tracker { tracker }) };
        Ok(())
    })
}

#[cfg(feature = "redis")]
fn redis_tracker(url: &str, ns: &str) -> Result<Tracker, Error> {
    Tracker::redis(url, ns)
}

#[cfg(not(feature = "redis"))]
fn redis_tracker(_: &str, _: &str) -> Result<Tracker, Error> {
    Err(Error::new(
        crate::error::ErrorKind::Config,
        "this fotp library was built without Redis support (cargo feature `redis`)",
    ))
}

/// Frees a tracker. NULL is a no-op. No call may be using `t` any more. The codes it holds
/// stay reserved until they expire (in Redis, for the other processes too).
#[no_mangle]
pub unsafe extern "C" fn fotp_tracker_free(t: *mut fotp_tracker) {
    boundary(|| {
        // SAFETY: NULL or a tracker from this library not yet freed (caller's contract).
        unsafe { free_box(t) }
    })
}

/// Starts a verification with template `ft_id` through `client`, with a code of `code_length`
/// digits (4-6, or 0 for 4) that no other live verification of this tracker holds, valid
/// `validity_minutes` (1-10, or 0 for the platform's default of 5).
///
/// The code is drawn from the OS CSPRNG (never starting with 0) and reserved atomically
/// before the request. If verify fails, the code is freed only when the platform surely holds
/// no session with it (the request never reached the server, or the platform refused it);
/// otherwise it stays reserved until it expires, so a late callback cannot match another
/// verification. When half of the codes of
/// that length are live, fails with FOTP_ERROR_EXHAUSTED (use longer codes). Other errors: those
/// of fotp_verify(), and FOTP_ERROR_NETWORK when the tracker's store fails. On success writes a
/// new verification to `*out` (owned by the caller, free with fotp_verification_free()) and
/// returns NULL; `*out` is untouched on failure. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_tracker_verify(
    t: *const fotp_tracker,
    client: *const fotp_client,
    ft_id: *const c_char,
    code_length: u32,
    validity_minutes: u32,
    out: *mut *mut fotp_verification,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or live objects and strings (caller's contract).
        let (t, client, ft_id) = unsafe {
            (
                try_ref(t, "t")?,
                try_ref(client, "client")?,
                try_str(ft_id, "ft_id")?,
            )
        };
        let out = try_out(out, "out")?;
        let length = if code_length == 0 { 4 } else { code_length };
        let validity = (validity_minutes != 0).then_some(validity_minutes);
        let v = t.tracker.verify(client.client(), ft_id, length, validity)?;
        // SAFETY: `out` passed try_out() above.
        unsafe { write_out(out, fotp_verification::new(v)?) };
        Ok(())
    })
}

/// Finds the live verification the callback `cb` belongs to, by its code, WITHOUT asking the
/// platform: the callback is not authenticated. For callers who confirm each callback
/// themselves (fotp_confirm_callback()) before acting on it; everyone else uses
/// fotp_tracker_settle().
///
/// On success returns NULL and writes to `*out` either NULL, when no live verification of
/// this tracker holds the code, or a new match (owned by the caller, free with
/// fotp_match_free()). The first call for a code gives a match whose fotp_match_is_duplicate()
/// is false, and wakes fotp_tracker_wait() for its token in every process sharing the store;
/// later calls give true. Its record is its own: a (possibly forged) callback matched here never
/// makes fotp_tracker_settle() report the genuine delivery as a duplicate. Errors:
/// FOTP_ERROR_NETWORK when the store fails (never a wrong match), FOTP_ERROR_INVALID_ARGUMENT
/// for NULL arguments; `*out` is untouched on failure. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_tracker_match(
    t: *const fotp_tracker,
    cb: *const fotp_callback,
    out: *mut *mut fotp_match,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or live objects (caller's contract).
        let (t, cb) = unsafe { (try_ref(t, "t")?, try_ref(cb, "cb")?) };
        let out = try_out(out, "out")?;
        let found = t.tracker.match_callback(cb.callback())?;
        let m = match found {
            None => std::ptr::null_mut(),
            Some(m) => fotp_match::boxed(m)?,
        };
        // SAFETY: checked non-NULL; the caller provides a writable pointer.
        unsafe { out.write(m) };
        Ok(())
    })
}

/// The safe way to handle a callback: finds the live verification holding the code of `cb`,
/// has the platform confirm it with one query through `client` (status success, the same code,
/// the same mobile), and settles it atomically among all processes sharing the store.
///
/// On success returns NULL and writes to `*out` NULL when no live verification holds the code
/// or the platform does not confirm the callback (nothing is consumed then, so a forged
/// callback never hides the genuine one), otherwise a new match (owned by the caller, free with
/// fotp_match_free()) whose fotp_match_is_duplicate() is true when this verification was
/// settled before, in any process sharing the store: exactly one genuine delivery per
/// verification is the first. Receivers, which must tell "no match" from "unconfirmed", use
/// fotp_tracker_settle_outcome(). Settling wakes fotp_tracker_wait() for the token in every
/// process. Queries the platform once and never waits for it. Errors: those of fotp_query()
/// (a failed query consumes nothing: answer 503 so the platform delivers again),
/// FOTP_ERROR_NETWORK when the store fails, FOTP_ERROR_INVALID_ARGUMENT for NULL arguments;
/// `*out` is untouched on failure. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_tracker_settle(
    t: *const fotp_tracker,
    client: *const fotp_client,
    cb: *const fotp_callback,
    out: *mut *mut fotp_match,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        let mut outcome = fotp_settle_outcome::FOTP_SETTLE_NO_MATCH;
        // SAFETY: the caller's pointers, per this function's contract; `outcome` is local.
        unsafe { settle_into(t, client, cb, &mut outcome, out) }
    })
}

/// Settles and writes the outcome and the match; the checks and writes of both settle calls.
///
/// # Safety
/// Each pointer is NULL or live, as the C caller's contract says.
unsafe fn settle_into(
    t: *const fotp_tracker,
    client: *const fotp_client,
    cb: *const fotp_callback,
    outcome: *mut fotp_settle_outcome,
    out: *mut *mut fotp_match,
) -> FfiResult {
    // SAFETY: NULL or live objects (caller's contract).
    let (t, client, cb) = unsafe {
        (
            try_ref(t, "t")?,
            try_ref(client, "client")?,
            try_ref(cb, "cb")?,
        )
    };
    let outcome = try_out(outcome, "outcome")?;
    let out = try_out(out, "out")?;
    let (o, m) = match t.tracker.settle(client.client(), cb.callback())? {
        Settlement::NoMatch => (fotp_settle_outcome::FOTP_SETTLE_NO_MATCH, None),
        Settlement::Unconfirmed => (fotp_settle_outcome::FOTP_SETTLE_UNCONFIRMED, None),
        Settlement::First(m) => (fotp_settle_outcome::FOTP_SETTLE_FIRST, Some(m)),
        Settlement::Duplicate(m) => (fotp_settle_outcome::FOTP_SETTLE_DUPLICATE, Some(m)),
    };
    let m = match m {
        Some(m) => fotp_match::boxed(m)?,
        None => std::ptr::null_mut(),
    };
    // SAFETY: both checked non-NULL; the caller provides writable pointers.
    unsafe {
        outcome.write(o);
        out.write(m);
    }
    Ok(())
}

/// fotp_tracker_settle() with its outcome told apart, as a receiver answers:
/// FOTP_SETTLE_NO_MATCH (call the handler with no match, acknowledge), FOTP_SETTLE_UNCONFIRMED
/// (HTTP 503, nothing consumed), FOTP_SETTLE_FIRST (run the handler; if it fails,
/// fotp_tracker_unsettle() and answer 500), FOTP_SETTLE_DUPLICATE (acknowledge only).
///
/// On success returns NULL, writes the outcome to `*outcome` and to `*out` a new match (owned by
/// the caller, free with fotp_match_free()) for FOTP_SETTLE_FIRST and FOTP_SETTLE_DUPLICATE,
/// NULL otherwise. Errors as for fotp_tracker_settle(); `*outcome` and `*out` are untouched on
/// failure. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_tracker_settle_outcome(
    t: *const fotp_tracker,
    client: *const fotp_client,
    cb: *const fotp_callback,
    outcome: *mut fotp_settle_outcome,
    out: *mut *mut fotp_match,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: the caller's pointers, per this function's contract.
        unsafe { settle_into(t, client, cb, outcome, out) }
    })
}

/// The handler failed: undoes the first settlement `m` (from fotp_tracker_settle() or
/// fotp_tracker_settle_outcome()) so that the next delivery of the callback is the first again
/// and the result is not lost. Does nothing for a duplicate, or a match from
/// fotp_tracker_match(): only the first settlement's own match can undo it. `m` stays owned by
/// the caller. Errors: FOTP_ERROR_NETWORK when the store fails, FOTP_ERROR_INVALID_ARGUMENT for
/// NULL arguments. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_tracker_unsettle(
    t: *const fotp_tracker,
    m: *const fotp_match,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or live objects (caller's contract).
        let (t, m) = unsafe { (try_ref(t, "t")?, try_ref(m, "m")?) };
        t.tracker.unsettle(&m.inner)?;
        Ok(())
    })
}

/// The token of the verification the callback belongs to. Owned by `m`, lives until
/// fotp_match_free(m); NULL when `m` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_match_ft_token(m: *const fotp_match) -> *const c_char {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { m.as_ref() }.map_or(std::ptr::null(), |m| m.ft_token.as_ptr())
    })
}

/// For a match from fotp_tracker_settle(): true when this verification was settled before (a
/// confirmed repeat: acknowledge it without acting again), false for the first confirmed
/// delivery. For one from fotp_tracker_match(): true when an earlier match call saw the code;
/// that says nothing about the callback being genuine (confirm it before acting, or use
/// settle). False when `m` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_match_is_duplicate(m: *const fotp_match) -> bool {
    boundary(|| {
        // SAFETY: NULL or a live object from this library (caller's contract).
        unsafe { m.as_ref() }.is_some_and(|m| m.inner.duplicate)
    })
}

/// Frees a match. NULL is a no-op. Strings obtained from `m` become invalid.
#[no_mangle]
pub unsafe extern "C" fn fotp_match_free(m: *mut fotp_match) {
    boundary(|| {
        // SAFETY: NULL or an object from this library not yet freed (caller's contract).
        unsafe { free_box(m) }
    })
}

/// Waits for the result of `ft_token`: returns as soon as a callback for it was settled or
/// matched in any process sharing the store (memory: this process) and the platform's query
/// confirms a final status, or when a query made every 2 s reports one; after `timeout_ms`
/// milliseconds, a FOTP_ERROR_TIMEOUT error. The limit bounds the whole wait, a query in flight
/// included. When the store fails, the wait goes on by polling the platform. A client from
/// fotp_client_with_timeout() bounds the wait to its call limit too, and one from
/// fotp_client_with_cancel() ends it (FOTP_ERROR_TIMEOUT, "cancelled") within about 100 ms of
/// the trigger.
///
/// The result always comes from the platform's query (a matched callback only makes the query
/// happen at once), so a forged callback cannot make this report success. On success writes a
/// new result to `*out` (owned by the caller, free with fotp_query_result_free()) and returns
/// NULL; `*out` is untouched on failure. Errors: those of fotp_query() other than transient
/// ones (retried within the limit). Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_tracker_wait(
    t: *const fotp_tracker,
    client: *const fotp_client,
    ft_token: *const c_char,
    timeout_ms: u32,
    out: *mut *mut fotp_query_result,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or live objects and strings (caller's contract).
        let (t, client, ft_token) = unsafe {
            (
                try_ref(t, "t")?,
                try_ref(client, "client")?,
                try_str(ft_token, "ft_token")?,
            )
        };
        let out = try_out(out, "out")?;
        let r = t.tracker.wait(
            client.client(),
            ft_token,
            Duration::from_millis(timeout_ms.into()),
        )?;
        // SAFETY: `out` passed try_out() above.
        unsafe { write_out(out, fotp_query_result::new(r)?) };
        Ok(())
    })
}
