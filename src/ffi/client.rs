//! `fotp_client`: verify, query, wait and callback confirmation.

use std::ffi::c_char;
use std::time::Duration;

use super::{
    boundary, fotp_callback, fotp_config, fotp_error, fotp_query_result, fotp_verification,
    free_box, try_opt_str, try_out, try_ref, try_str, write_out, FfiResult,
};
use crate::cancel::CancelToken;
use crate::client::Client;
use crate::error::{Error, ErrorKind};
use crate::wire::VerifyRequest;

/// A client of the Flash OTP platform, holding a connection pool.
///
/// Created by fotp_client_new(), owned by the caller, freed with fotp_client_free() (after
/// every call using it has returned). Thread-safe: one client may be used by many threads at
/// once.
pub struct fotp_client {
    client: Client,
}

impl fotp_client {
    /// The core client, for the tracker's functions (src/ffi/tracker.rs).
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }
}

/// Builds a client from `c`: checks the base URL, credentials and limits. Nothing is sent on
/// the network.
///
/// `c` is not consumed (free it when convenient; the client keeps its own copy). On success
/// writes a new client to `*out` (owned by the caller, free with fotp_client_free()) and
/// returns NULL. Errors: FOTP_ERROR_CONFIG (missing base URL or credentials, insecure URL,
/// zero time limit, unreadable CA bundle), FOTP_ERROR_INVALID_ARGUMENT (NULL argument).
/// `*out` is untouched on failure. Thread-safe as long as `c` is not being changed.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_client_new(
    c: *const fotp_config,
    out: *mut *mut fotp_client,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or a live config (caller's contract).
        let c = unsafe { try_ref(c, "c")? };
        let out = try_out(out, "out")?;
        let client = Client::new(c.builder().clone().build()?)?;
        // SAFETY: `out` passed try_out() above.
        unsafe { write_out(out, fotp_client { client }) };
        Ok(())
    })
}

/// A new client sharing `client`'s connection pool, settings and cancel token, whose every call
/// is bounded as a whole by `timeout_ms` milliseconds (> 0): all attempts and pauses; for
/// fotp_wait(), the smaller of this and its own limit. The per-attempt limit stays. Bindings
/// use it to apply a caller's deadline (a Go context, Python's per-call timeout=).
///
/// On success writes the new client to `*out` (owned by the caller, free with
/// fotp_client_free(), independently of `client`) and returns NULL. A NULL argument or
/// `timeout_ms` == 0 is FOTP_ERROR_INVALID_ARGUMENT. `*out` is untouched on failure.
/// Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_client_with_timeout(
    client: *const fotp_client,
    timeout_ms: u32,
    out: *mut *mut fotp_client,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or a live client (caller's contract).
        let client = unsafe { try_ref(client, "client")? };
        let out = try_out(out, "out")?;
        if timeout_ms == 0 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "argument `timeout_ms` must be greater than 0",
            ));
        }
        let client = client
            .client
            .with_timeout(Duration::from_millis(timeout_ms.into()));
        // SAFETY: `out` passed try_out() above.
        unsafe { write_out(out, fotp_client { client }) };
        Ok(())
    })
}

/// A cancellation token that calls watch (see fotp_client_with_cancel()).
///
/// Created by fotp_cancel_new(), owned by the caller, freed with fotp_cancel_free() (clients
/// made with it keep what they need: the token may be freed while they live). Thread-safe:
/// fotp_cancel_trigger() may be called from any thread, during calls that watch it.
pub struct fotp_cancel {
    token: CancelToken,
}

/// A new, untriggered cancellation token. Owned by the caller: free with fotp_cancel_free().
/// Returns NULL only if the library hit an internal error. Thread-safe.
#[no_mangle]
pub extern "C" fn fotp_cancel_new() -> *mut fotp_cancel {
    boundary(|| {
        Box::into_raw(Box::new(fotp_cancel {
            token: CancelToken::new(),
        }))
    })
}

/// Cancels every call watching `c`: each returns within about 100 ms with a FOTP_ERROR_TIMEOUT
/// error whose message says it was cancelled (even when blocked on the network), a verify
/// whose request was not sent yet is never sent, and later calls of clients made with `c` fail
/// at once. Cannot be undone. Idempotent; does nothing when `c` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn fotp_cancel_trigger(c: *const fotp_cancel) {
    boundary(|| {
        // SAFETY: NULL or a live token (caller's contract).
        if let Some(c) = unsafe { c.as_ref() } {
            c.token.cancel();
        }
    })
}

/// Frees a cancellation token. NULL is a no-op. Clients made with it by
/// fotp_client_with_cancel() stay valid and keep watching it: a fotp_cancel_trigger() is no
/// longer possible after this, so their calls are no longer cancellable.
#[no_mangle]
pub unsafe extern "C" fn fotp_cancel_free(c: *mut fotp_cancel) {
    boundary(|| {
        // SAFETY: NULL or a token from this library not yet freed (caller's contract).
        unsafe { free_box(c) }
    })
}

/// A new client sharing `client`'s connection pool, settings and call bound whose calls (and
/// the tracker's waits and settles given it) watch `cancel`: see fotp_cancel_trigger().
///
/// On success writes the new client to `*out` (owned by the caller, free with
/// fotp_client_free(), independently of `client` and `cancel`) and returns NULL. A NULL
/// argument is FOTP_ERROR_INVALID_ARGUMENT; `*out` is untouched on failure. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_client_with_cancel(
    client: *const fotp_client,
    cancel: *const fotp_cancel,
    out: *mut *mut fotp_client,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or live objects (caller's contract).
        let (client, cancel) = unsafe { (try_ref(client, "client")?, try_ref(cancel, "cancel")?) };
        let out = try_out(out, "out")?;
        let client = client.client.with_cancel(&cancel.token);
        // SAFETY: `out` passed try_out() above.
        unsafe { write_out(out, fotp_client { client }) };
        Ok(())
    })
}

/// Frees a client. NULL is a no-op. No call may be using `client` any more; clients made by
/// fotp_client_with_timeout() or fotp_client_with_cancel() stay valid.
#[no_mangle]
pub unsafe extern "C" fn fotp_client_free(client: *mut fotp_client) {
    boundary(|| {
        // SAFETY: NULL or a client from this library not yet freed (caller's contract).
        unsafe { free_box(client) }
    })
}

/// Starts a verification with template `ft_id`: the platform answers with the link to open on
/// the phone, a token and the code.
///
/// `code` may be NULL (the platform picks one) or 4-6 ASCII digits; `validity_minutes` is 1-10,
/// or 0 for the platform's default (5). The input is checked before anything is sent. Each
/// attempt keeps to the client's time limit, the whole call to its call bound if any; verify
/// is retried only when the request surely never reached the server. On success writes a new verification to `*out` (owned by the caller,
/// free with fotp_verification_free()) and returns NULL; `*out` is untouched on failure.
/// Errors: INVALID_ARGUMENT, NETWORK, TIMEOUT, HTTP_STATUS, API, DECODE. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_verify(
    client: *const fotp_client,
    ft_id: *const c_char,
    code: *const c_char,
    validity_minutes: u32,
    out: *mut *mut fotp_verification,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or live objects and strings (caller's contract).
        let (client, ft_id, code) = unsafe {
            (
                try_ref(client, "client")?,
                try_str(ft_id, "ft_id")?,
                try_opt_str(code, "code")?,
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
        let v = fotp_verification::new(client.client.verify(&req)?)?;
        // SAFETY: `out` passed try_out() above.
        unsafe { write_out(out, v) };
        Ok(())
    })
}

/// Pulls the result of the verification `ft_token` (1-128 visible ASCII characters) once.
///
/// Each attempt keeps to the client's time limit and the whole call to its call bound if any;
/// retried on network errors, time-outs, HTTP 429 and 5xx, honouring Retry-After (seconds or
/// an HTTP-date, at most one attempt's time limit). On success writes a new result to `*out` (owned by the caller, free with
/// fotp_query_result_free()) and returns NULL; `*out` is untouched on failure. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_query(
    client: *const fotp_client,
    ft_token: *const c_char,
    out: *mut *mut fotp_query_result,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or live objects and strings (caller's contract).
        let (client, ft_token) =
            unsafe { (try_ref(client, "client")?, try_str(ft_token, "ft_token")?) };
        let out = try_out(out, "out")?;
        let r = fotp_query_result::new(client.client.query(ft_token)?)?;
        // SAFETY: `out` passed try_out() above.
        unsafe { write_out(out, r) };
        Ok(())
    })
}

/// Polls query until the status of `ft_token` is no longer "processing" (success, failed or
/// an unknown value), or `timeout_ms` milliseconds pass: then a FOTP_ERROR_TIMEOUT error. The
/// limit bounds the whole wait, a query in flight included (0 times out at once; the client's
/// call bound, if smaller, wins). Transient failures (network errors, time-outs, HTTP 429 and
/// 5xx) do not end the wait: it polls on until its limit and makes a last query when less than
/// a poll interval is left. Each query also keeps to the client's time limit.
///
/// On success writes a new result to `*out` (owned by the caller, free with
/// fotp_query_result_free()) and returns NULL; `*out` is untouched on failure. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_wait(
    client: *const fotp_client,
    ft_token: *const c_char,
    timeout_ms: u32,
    out: *mut *mut fotp_query_result,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or live objects and strings (caller's contract).
        let (client, ft_token) =
            unsafe { (try_ref(client, "client")?, try_str(ft_token, "ft_token")?) };
        let out = try_out(out, "out")?;
        let r = client
            .client
            .wait(ft_token, Duration::from_millis(timeout_ms.into()))?;
        // SAFETY: `out` passed try_out() above.
        unsafe { write_out(out, fotp_query_result::new(r)?) };
        Ok(())
    })
}

/// Cross-checks a callback with the platform before trusting it (a callback carries no
/// signature): queries `ft_token` and compares the status (must be success), the code and the
/// mobile number.
///
/// On success writes to `*confirmed` (true when everything matches, false when anything
/// differs) and returns NULL. Errors are only for failed queries or bad arguments;
/// `*confirmed` is untouched then. Thread-safe.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn fotp_confirm_callback(
    client: *const fotp_client,
    cb: *const fotp_callback,
    ft_token: *const c_char,
    confirmed: *mut bool,
) -> *mut fotp_error {
    boundary(|| -> FfiResult {
        // SAFETY: NULL or live objects and strings (caller's contract).
        let (client, cb, ft_token) = unsafe {
            (
                try_ref(client, "client")?,
                try_ref(cb, "cb")?,
                try_str(ft_token, "ft_token")?,
            )
        };
        let confirmed = try_out(confirmed, "confirmed")?;
        let ok = client.client.confirm_callback(cb.callback(), ft_token)?;
        // SAFETY: checked non-NULL; the caller provides a writable pointer.
        unsafe { confirmed.write(ok) };
        Ok(())
    })
}
