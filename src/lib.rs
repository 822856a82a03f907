//! # fotp: Flash OTP for every backend
//!
//! Flash OTP verifies a phone number with a mobile-originated SMS: your backend calls
//! [`Client::verify`] and gets a redirect link; the user opens it on the phone and sends the
//! prepared SMS; the platform then pushes the result to your callback address (parse it with
//! [`parse_callback`] and answer [`CALLBACK_ACK`]) or you pull it with [`Client::query`] /
//! [`Client::wait`].
//!
//! This crate is the safe Rust core. The C library built from it (`include/fotp.h`, the `capi`
//! directory of the repository) is what the Python and Go bindings wrap; see `CONTRACT.md` in the
//! repository for the whole public surface. The C functions are compiled only with the `capi`
//! feature, so Rust programs neither build cbindgen nor export C symbols.
//!
//! ```no_run
//! use std::time::Duration;
//! let client = fotp::Client::new(
//!     fotp::Config::builder("http://127.0.0.1:8788")
//!         .hmac_auth("sandbox", "sandbox-secret")
//!         .build()?,
//! )?;
//! let v = client.verify(&fotp::VerifyRequest::new("2"))?;
//! println!("open {} on the phone, it sends code {}", v.url, v.code);
//! let r = client.wait(&v.ft_token, Duration::from_secs(120))?;
//! println!("status: {:?}", r.status);
//! # Ok::<(), fotp::Error>(())
//! ```
//!
//! ## Environment variables
//! Read by [`Config::from_env`] / [`ConfigBuilder::from_env`]: `FOTP_BASE_URL`, `FOTP_AUTH`
//! (`hmac-sha256` or `token`), `FOTP_APP_ID`, `FOTP_APP_SECRET`, `FOTP_APP_KEY`, `FOTP_TOKEN`,
//! `FOTP_TIMEOUT_MS`, `FOTP_CONNECT_TIMEOUT_MS`, `FOTP_RETRIES`, `FOTP_ALLOW_INSECURE_HTTP`,
//! `FOTP_CA_BUNDLE`. Proxies come from `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (never for a
//! loopback base URL). They are defaults: [`ConfigBuilder::ca_bundle`],
//! [`ConfigBuilder::proxy`] and [`ConfigBuilder::no_proxy`] set them per client.
//!
//! ## Time limits and retries
//! [`ConfigBuilder::timeout`] (10 s) bounds each attempt, connecting included; query is retried
//! after a timed-out attempt like after any transient failure (network error, time-out, HTTP
//! 429 or 5xx), with jittered exponential back-off, honouring `Retry-After` (seconds or an
//! HTTP-date, at most one attempt's limit). verify is retried only when the request surely never
//! reached the server. [`ConfigBuilder::call_timeout`] or [`Client::with_timeout`] bound the
//! whole call (every attempt and pause); without them a call never runs longer than
//! (retries + 1) × timeout plus the pauses. [`Client::wait`] polls through transient failures
//! until its own limit. No duration and no server answer can make a call panic.
//!
//! ## Cancellation and fork
//! [`Client::with_cancel`] gives a client whose calls watch a [`CancelToken`]: once cancelled,
//! a call returns within about 100 ms (even when blocked reading) with a timeout error saying so,
//! and a verify not yet sent is never sent. Signals (`EINTR`) never fail a call. After `fork`,
//! the child opens its own connections (the pool is rebuilt when the process id changes) and
//! draws its own nonces from the OS.
//!
//! ## Tracking (push mode at scale)
//! !
//!  A callback names no `ftToken`, only the phone number and the code, and it carries no
//!  signature. A [`Tracker`] gives each verification a code that no other live verification of
//!  the same tracker holds, so the code alone finds the verification; [`Tracker::settle`] has
//!  the platform confirm the callback and reports exactly one genuine delivery per verification
//!  as the first, and any process sharing the store can wait for the result.
//! !
//!  ```no_run
//!  # fn main() -> fotp::Result<()> {
//!  # let client = fotp::Client::from_env()?;
//!  let tracker = fotp::Tracker::memory(); // or fotp::Tracker::redis(url, "fotp")?
//!  let v = tracker.verify(&client, "2", 4, Some(5))?;
//!  // ... in the callback handler (possibly another process sharing the Redis store):
//!  # let body = b"";
//!  # fn act_on(_: &str) -> Result<(), ()> { Ok(()) }
//!  let cb = fotp::parse_callback(body)?;
//!  match tracker.settle(&client, &cb)? {
//!      fotp::Settlement::First(m) => {
//!          // Confirmed by the platform, and the first delivery: act on it, once.
//!          if act_on(&m.ft_token).is_err() {
//!              tracker.unsettle(&m)?; // answer 500: the next delivery is offered again
//!          }
//!      }
//!      fotp::Settlement::Duplicate(_) => { /* confirmed, handled before: acknowledge */ }
//!      fotp::Settlement::Unconfirmed => { /* not confirmed (yet): answer 503, nothing consumed */ }
//!      fotp::Settlement::NoMatch => { /* no live verification holds this code: acknowledge */ }
//!  }
//!  // ... where the user waits:
//!  let result = tracker.wait(&client, &v.ft_token, std::time::Duration::from_secs(120))?;
//!  # Ok(()) }
//!  ```
//! !
//!  ### Design decisions
//!  - Codes never start with `0`: a callback field may arrive as a JSON integer, which would
//!    drop a leading zero. The code space of length `n` is therefore `9 * 10^(n-1)` codes, and at
//!    most half of it may be live at once (4 digits: 4500); past that, allocation fails with
//!    [`ErrorKind::Exhausted`].
//!  - A code stays reserved for the verification's validity (the platform default of 5 minutes
//!    when none is given) plus a grace period ([`DEFAULT_GRACE`]), so a late callback is still
//!    matched and the code is not handed out again while the platform may still report it.
//!  - The mobile number is not part of the match: the platform decides which phone sent the code.
//!  - [`Tracker::wait`]'s result always comes from the platform's query. A matched or settled
//!    callback only wakes the waiter so it queries at once instead of at the next poll: a
//!    callback carries no signature, so a forged one can never make `wait` report success.
//!  - [`Tracker::settle`] consumes nothing until the platform confirms the callback, so a forged
//!    callback (posted for every code) never turns the genuine one into a duplicate; the
//!    unauthenticated [`Tracker::match_callback`] keeps a record of its own for the same reason.
//!  - A reservation is freed early only when the verify request surely never reached the server
//!    (or the platform refused it); otherwise the platform may hold a session with the code,
//!    and it stays reserved until its TTL. A late callback for an expired session does not
//!    confirm against the newer session's query, so it never settles it.

#![deny(missing_docs)]

mod callback;
mod cancel;
mod client;
mod config;
mod error;
mod fork;
pub mod logging;
/// Worker threads for callers that wait in an event loop (the C ABI's `*_start` functions).
#[cfg(feature = "capi")]
mod offload;
mod sign;
mod tracker;
mod transport;
mod validate;
mod wire;

/// The C ABI of include/fotp.h. Compiled only with the `capi` feature, which only the C library
/// crate (`capi/`) turns on: Rust users never see it, and it is no part of the Rust API.
#[cfg(feature = "capi")]
#[doc(hidden)]
pub mod ffi;

/// Helpers this repository's own sandbox, benchmarks and fuzz targets share with the core
/// (signature check, input rules, envelope decoder). Only with the `internals` feature: no
/// semver promise, not part of the Rust API (`docs/public-api.txt` is built without it).
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod __internals {
    pub use crate::sign::{
        constant_time_eq, hmac_sha256_sign, hmac_sha256_verify, new_nonce, now_millis,
        HmacSha256Signer,
    };
    pub use crate::validate::{code, ft_id, ft_token, validity_minutes};
    pub use crate::wire::{decode_envelope, query_body};
}

pub use callback::{parse_callback, Callback, CALLBACK_ACK, MAX_CALLBACK_BYTES};
pub use cancel::CancelToken;
pub use client::{Client, MAX_RESPONSE_BYTES};
pub use config::{
    is_loopback_host, Config, ConfigBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
};
pub use error::{Error, ErrorKind, Result};
pub use sign::{Header, HmacHeaderNames, Secret, Signer, TokenHeaderNames};
#[cfg(feature = "redis")]
pub use tracker::RedisStore;
pub use tracker::{
    Clock, Lookup, Match, MemoryStore, Reservation, Reserve, Settlement, Store, Tracker,
    DEFAULT_GRACE, DEFAULT_POLL_INTERVAL,
};
pub use wire::{QueryResult, Status, Verification, VerifyRequest};

/// The version of this library.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
