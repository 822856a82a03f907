//! Push mode at scale: matching callbacks to verifications. The module is private; its user
//! documentation is the crate docs' "Tracking" section (src/lib.rs).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::callback::Callback;
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::logging;
use crate::validate;
use crate::wire::{QueryResult, Status, Verification, VerifyRequest};
use log::Level;

mod memory;
#[cfg(feature = "redis")]
mod redis_deploy;
#[cfg(feature = "redis")]
mod redis_store;

pub use memory::{Clock, MemoryStore};
#[cfg(feature = "redis")]
pub use redis_store::RedisStore;

/// How long a code stays reserved after its verification's validity ends.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);

/// How often [`Tracker::wait`] queries the platform when no callback wakes it.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// The platform's validity when a verification does not set one (minutes).
const DEFAULT_VALIDITY_MINUTES: u32 = 5;

/// Candidates sent to the store per allocation attempt (one round trip for Redis).
const CANDIDATES: usize = 8;

/// Attempts before giving up; with at most half of the space live, all
/// `CANDIDATES * ROUNDS` candidates being taken has a probability below 2^-128.
const ROUNDS: usize = 16;

/// The result of matching or settling a callback.
#[derive(Clone, PartialEq, Eq)]
pub struct Match {
    /// The verification the callback belongs to.
    pub ft_token: String,
    /// From [`Tracker::settle`]: `true` when the verification was settled before (a confirmed
    /// repeat). From [`Tracker::match_callback`]: `true` when an earlier match saw the code,
    /// which says nothing about the callback being genuine.
    pub duplicate: bool,
    /// Which settle call made this the first settlement, so that only it can undo it.
    settle_id: Option<String>,
}

impl Match {
    pub(crate) fn new(ft_token: String, duplicate: bool) -> Match {
        Match {
            ft_token,
            duplicate,
            settle_id: None,
        }
    }
}

impl fmt::Debug for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Match")
            .field("ft_token", &self.ft_token)
            .field("duplicate", &self.duplicate)
            .finish_non_exhaustive()
    }
}

/// What [`Tracker::settle`] found for a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// No live verification of this tracker holds the code: acknowledge the callback.
    NoMatch,
    /// A live verification holds the code but the platform does not confirm the callback (yet),
    /// or verify's answer for the code has not reached the tracker yet: nothing was consumed;
    /// answer so that the platform delivers again (HTTP 503).
    Unconfirmed,
    /// The first confirmed delivery for this verification: act on it (and
    /// [`unsettle`](Tracker::unsettle) it if acting fails).
    First(Match),
    /// A confirmed delivery for a verification settled before: acknowledge it, do not act.
    Duplicate(Match),
}

impl Settlement {
    /// The match of a confirmed delivery (first or duplicate).
    pub fn matched(&self) -> Option<&Match> {
        match self {
            Settlement::First(m) | Settlement::Duplicate(m) => Some(m),
            Settlement::NoMatch | Settlement::Unconfirmed => None,
        }
    }
}

/// A code reserved by [`Tracker::reserve`], to [`bind`](Tracker::bind) to the verification's
/// token or [`release`](Tracker::release). `Debug` shows neither the code nor the ticket.
#[derive(Clone, PartialEq, Eq)]
pub struct Reservation {
    code: String,
    ticket: String,
}

impl Reservation {
    /// The reserved code (send it as the verify request's `code`).
    pub fn code(&self) -> &str {
        &self.code
    }
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The ticket proves ownership of the reservation and the code is an OTP code: both
        // stay out of logs.
        f.debug_struct("Reservation").finish_non_exhaustive()
    }
}

/// What [`Store::reserve`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    /// The candidate at this index is now reserved.
    Reserved(usize),
    /// Every candidate is held by a live verification (try others).
    AllTaken,
    /// `limit` codes of this length are already live.
    Exhausted,
}

/// What [`Store::lookup`] found for a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// No live verification holds it.
    Free,
    /// Reserved for a verify whose answer has not been bound (yet, or never: it may have been
    /// lost).
    Reserved,
    /// Bound to this verification's token.
    Bound(String),
}

/// Where a tracker keeps its codes: one process ([`MemoryStore`]) or shared ([`RedisStore`]).
///
/// Every method is atomic with respect to every other user of the same store. Implementations
/// report their own failures as [`ErrorKind::Network`] errors and must never guess: a failed
/// operation is an error, not a wrong answer.
pub trait Store: Send + Sync + fmt::Debug {
    /// Reserves the first of `candidates` (codes of one length) that no live verification
    /// holds, for `ttl`, unless `limit` codes of that length are live already. `ticket` is the
    /// reservation's secret owner id, needed by [`bind`](Store::bind) and
    /// [`release`](Store::release).
    fn reserve(
        &self,
        candidates: &[String],
        ticket: &str,
        limit: usize,
        ttl: Duration,
    ) -> Result<Reserve>;

    /// Binds the reserved `code` to `ft_token` (keeping its expiry). Returns `false` when the
    /// reservation `ticket` no longer holds the code (it expired or the store lost it).
    fn bind(&self, code: &str, ticket: &str, ft_token: &str) -> Result<bool>;

    /// Frees `code` if the reservation `ticket` still holds it and it is not bound.
    fn release(&self, code: &str, ticket: &str) -> Result<()>;

    /// Who holds `code`. Changes nothing.
    fn lookup(&self, code: &str) -> Result<Lookup>;

    /// Finds the live verification bound to `code` and marks it matched (unauthenticated,
    /// for [`Tracker::match_callback`]): the first call answers `duplicate: false`, later ones
    /// `true`. `None` when no live verification holds the code. Wakes the waiters of its
    /// token. Has no effect on [`settle`](Store::settle).
    fn claim(&self, code: &str) -> Result<Option<Match>>;

    /// Marks `ft_token` settled if `code` is still bound to it: `Some(true)` for the first
    /// settlement, `Some(false)` when it was settled before, `None` when `code` is no longer
    /// bound to `ft_token`. `settle_id` is unique per call (a repeated call gives the same
    /// answer, and [`unsettle`](Store::unsettle) names it). Wakes the waiters of the token.
    fn settle(&self, code: &str, ft_token: &str, settle_id: &str) -> Result<Option<bool>>;

    /// Undoes the first settlement of `ft_token` if `settle_id` made it; else does nothing.
    fn unsettle(&self, ft_token: &str, settle_id: &str) -> Result<()>;

    /// Returns `true` as soon as a callback for `ft_token` was matched or settled (at once if it
    /// already was), `false` when `timeout` passes first.
    fn wait_matched(&self, ft_token: &str, timeout: Duration) -> Result<bool>;

    /// [`wait_matched`](Store::wait_matched) that also gives up (`false`) once `stop()` is
    /// true, checked at least every 50 ms. The default waits in such slices.
    fn wait_matched_unless(
        &self,
        ft_token: &str,
        timeout: Duration,
        stop: &dyn Fn() -> bool,
    ) -> Result<bool> {
        let deadline = deadline_after(timeout);
        loop {
            if stop() {
                return Ok(false);
            }
            let Some(left) = remaining(deadline) else {
                return Ok(false);
            };
            if self.wait_matched(ft_token, left.min(STOP_CHECK))? {
                return Ok(true);
            }
        }
    }
}

/// How often a wait looks at the client's cancel token.
pub(crate) const STOP_CHECK: Duration = Duration::from_millis(50);

/// Matches push-mode callbacks to verifications; see the [crate docs](crate#tracking-push-mode-at-scale).
///
/// Cheap to clone and safe to share between threads: clones use the same store.
#[derive(Clone, Debug)]
pub struct Tracker {
    store: Arc<dyn Store>,
    grace: Duration,
    poll_interval: Duration,
    ttl_override: Option<Duration>,
}

impl Tracker {
    /// A tracker over `store`.
    pub fn new(store: impl Store + 'static) -> Tracker {
        Tracker::with_store(Arc::new(store))
    }

    /// A tracker over a shared `store`.
    pub fn with_store(store: Arc<dyn Store>) -> Tracker {
        Tracker {
            store,
            grace: DEFAULT_GRACE,
            poll_interval: DEFAULT_POLL_INTERVAL,
            ttl_override: None,
        }
    }

    /// A tracker for one process, keeping its codes in memory.
    pub fn memory() -> Tracker {
        Tracker::new(MemoryStore::new())
    }

    /// A tracker whose codes live in Redis under `namespace`, shared by every process that
    /// uses the same server and namespace. See [`RedisStore::open`].
    #[cfg(feature = "redis")]
    pub fn redis(url: &str, namespace: &str) -> Result<Tracker> {
        Ok(Tracker::new(RedisStore::open(url, namespace)?))
    }

    /// Sets how long a code stays reserved after the verification's validity
    /// (default [`DEFAULT_GRACE`]).
    pub fn with_grace(mut self, grace: Duration) -> Tracker {
        self.grace = grace;
        self
    }

    /// Sets how often [`wait`](Tracker::wait) queries the platform when no callback wakes it
    /// (default [`DEFAULT_POLL_INTERVAL`], at least 10 ms).
    pub fn with_poll_interval(mut self, interval: Duration) -> Tracker {
        self.poll_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Test hook: every reservation lives exactly `ttl`, whatever the validity and grace.
    /// Only with the unstable `internals` feature (the Redis expiry tests need seconds, not
    /// minutes); not part of the Rust API.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn with_ttl_override(mut self, ttl: Duration) -> Tracker {
        self.ttl_override = Some(ttl);
        self
    }

    /// The store this tracker uses.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Starts a verification with a code of `code_length` digits (4-6) that no other live
    /// verification of this tracker holds, valid `validity_minutes` (1-10, `None` for the
    /// platform default).
    ///
    /// The code is reserved before the request. If verify fails, it is released only when the
    /// platform surely holds no session with it (the request never reached the server, or the
    /// platform refused it); otherwise it stays reserved until its TTL. Errors:
    /// [`ErrorKind::Exhausted`] when half of the codes of that length are live, the store's
    /// errors, and those of [`Client::verify`].
    pub fn verify(
        &self,
        client: &Client,
        ft_id: &str,
        code_length: u32,
        validity_minutes: Option<u32>,
    ) -> Result<Verification> {
        let mut req = VerifyRequest::new(ft_id);
        req.validity_minutes = validity_minutes;
        // Refuse bad input before touching the store.
        req.validate()?;
        let reservation = self.reserve(code_length, validity_minutes)?;
        let req = req.code(reservation.code());
        let v = match client.verify(&req) {
            Ok(v) => v,
            Err(e) => {
                // The platform may hold a session with this code (a lost answer): the code must
                // stay reserved until its TTL, or that session's callback would match the next
                // verification given the code. An API error envelope created no session.
                if e.kind() == ErrorKind::Api || !e.request_may_have_reached_server() {
                    // Best effort: if this fails too, the reservation expires with its TTL.
                    let _ = self.release(&reservation);
                }
                return Err(e);
            }
        };
        if v.code != reservation.code {
            let _ = self.release(&reservation);
            return Err(Error::decode(
                "the platform answered verify with another code than the tracker sent, so \
                 its callbacks could not be matched",
            ));
        }
        self.bind(&reservation, &v.ft_token)?;
        if logging::enabled(Level::Info, logging::TRACKER) {
            logging::emit(
                Level::Info,
                logging::TRACKER,
                &[
                    ("client", client.log_id().into()),
                    ("event", "bound".into()),
                    ("ft_token", v.ft_token.as_str().into()),
                ],
                format_args!("verification {} bound to its reserved code", v.ft_token),
            );
        }
        Ok(v)
    }

    /// Reserves a code of `code_length` digits (4-6) for a verification valid
    /// `validity_minutes` (1-10, `None` for the platform default); for apps that send verify
    /// themselves. [`bind`](Tracker::bind) it to the token verify returns, or
    /// [`release`](Tracker::release) it if verify fails.
    pub fn reserve(&self, code_length: u32, validity_minutes: Option<u32>) -> Result<Reservation> {
        let len = code_len(code_length)?;
        if let Some(v) = validity_minutes {
            validate::validity_minutes(v)?;
        }
        let minutes = validity_minutes.unwrap_or(DEFAULT_VALIDITY_MINUTES);
        let ttl = self
            .ttl_override
            .unwrap_or(Duration::from_secs(60 * u64::from(minutes)).saturating_add(self.grace));
        let ticket = crate::sign::new_nonce()?;
        let limit = code_space(len) / 2;
        for _ in 0..ROUNDS {
            let candidates = random_codes(len, CANDIDATES)?;
            match logged(
                "reserve",
                self.store.reserve(&candidates, &ticket, limit, ttl),
            )? {
                Reserve::Reserved(i) => {
                    if logging::enabled(Level::Debug, logging::TRACKER) {
                        let ttl_ms = logging::ms(ttl);
                        logging::emit(
                            Level::Debug,
                            logging::TRACKER,
                            &[
                                ("event", "reserved".into()),
                                ("code_length", len.into()),
                                ("ttl_ms", ttl_ms.into()),
                            ],
                            format_args!("reserved a {len}-digit code for {ttl_ms} ms"),
                        );
                    }
                    let code = candidates.into_iter().nth(i).ok_or_else(|| {
                        Error::new(
                            ErrorKind::Internal,
                            "the tracker's store reserved a candidate that does not exist",
                        )
                    })?;
                    return Ok(Reservation { code, ticket });
                }
                Reserve::Exhausted => break,
                Reserve::AllTaken => {}
            }
        }
        Err(Error::new(
            ErrorKind::Exhausted,
            format!(
                "no free {len}-digit code: at most {limit} may be live at once; use longer codes"
            ),
        ))
    }

    /// Binds a reservation to the token verify returned for it.
    ///
    /// Fails (without touching anything) when the reservation expired meanwhile: then the
    /// verification's callbacks cannot be matched by this tracker.
    pub fn bind(&self, reservation: &Reservation, ft_token: &str) -> Result<()> {
        validate::ft_token(ft_token)?;
        if logged(
            "bind",
            self.store
                .bind(&reservation.code, &reservation.ticket, ft_token),
        )? {
            Ok(())
        } else {
            // Timeout: the reservation's time ran out; retrying bind cannot help, a new
            // verification can (docs/ERRORS.md).
            Err(Error::new(
                ErrorKind::Timeout,
                "the tracker's reservation of the code ran out of time before bind (or the store \
                 lost it): start a new verification",
            ))
        }
    }

    /// Frees a reservation that was not bound (verify failed).
    pub fn release(&self, reservation: &Reservation) -> Result<()> {
        logged(
            "release",
            self.store.release(&reservation.code, &reservation.ticket),
        )
    }

    /// Finds the live verification a callback belongs to, by its code, without asking the
    /// platform: unauthenticated, for callers who confirm each callback themselves
    /// ([`Client::confirm_callback`]) before acting on it. Everyone else uses
    /// [`settle`](Tracker::settle).
    ///
    /// The first call for a code gives `Match { duplicate: false, .. }` and wakes the waiters
    /// of that token in every process sharing the store; later calls give `duplicate: true`.
    /// `None` when no live verification of this tracker holds the code. Its record is its own:
    /// a (possibly forged) callback matched here never makes [`settle`](Tracker::settle) report
    /// the genuine delivery as a duplicate.
    pub fn match_callback(&self, cb: &Callback) -> Result<Option<Match>> {
        // A code the tracker can never have allocated needs no store round trip.
        if validate::code(&cb.code).is_err() {
            return Ok(None);
        }
        logged("claim", self.store.claim(&cb.code))
    }

    /// The safe way to handle a callback: finds the live verification holding its code, has the
    /// platform confirm it with one query (status success, the same code, the same mobile) and
    /// settles it, atomically among all processes sharing the store.
    ///
    /// Exactly one confirmed delivery per verification is [`Settlement::First`]; a callback
    /// the platform does not confirm consumes nothing ([`Settlement::Unconfirmed`]), so a
    /// forged callback never hides the genuine one. A failed query is returned as the error
    /// (nothing consumed: answer 503 so the platform delivers again). Settling wakes
    /// [`wait`](Tracker::wait) for the token in every process. Never waits for the platform.
    pub fn settle(&self, client: &Client, cb: &Callback) -> Result<Settlement> {
        let s = self.settle_unlogged(client, cb)?;
        if logging::enabled(Level::Info, logging::TRACKER) {
            let (outcome, ft_token) = match &s {
                Settlement::NoMatch => ("no_match", None),
                Settlement::Unconfirmed => ("unconfirmed", None),
                Settlement::First(m) => ("first", Some(m.ft_token.as_str())),
                Settlement::Duplicate(m) => ("duplicate", Some(m.ft_token.as_str())),
            };
            let mobile = logging::mask_mobile(&cb.mobile);
            let mut fields = vec![
                ("client", client.log_id().into()),
                ("event", "settled".into()),
                ("outcome", outcome.into()),
                ("mobile", mobile.as_str().into()),
            ];
            if let Some(t) = ft_token {
                fields.push(("ft_token", t.into()));
            }
            logging::emit(
                Level::Info,
                logging::TRACKER,
                &fields,
                format_args!(
                    "callback from {mobile} settled: {outcome}{}{}",
                    if ft_token.is_some() {
                        ", verification "
                    } else {
                        ""
                    },
                    ft_token.unwrap_or("")
                ),
            );
        }
        Ok(s)
    }

    fn settle_unlogged(&self, client: &Client, cb: &Callback) -> Result<Settlement> {
        if validate::code(&cb.code).is_err() {
            return Ok(Settlement::NoMatch);
        }
        let ft_token = match logged("lookup", self.store.lookup(&cb.code))? {
            Lookup::Bound(t) => t,
            // verify's answer is not bound yet (the callback raced it): have it delivered again.
            Lookup::Reserved => return Ok(Settlement::Unconfirmed),
            Lookup::Free => return Ok(Settlement::NoMatch),
        };
        let r = client.query(&ft_token)?;
        if !crate::client::confirms(&r, cb) {
            return Ok(Settlement::Unconfirmed);
        }
        let settle_id = crate::sign::new_nonce()?;
        Ok(
            match logged("settle", self.store.settle(&cb.code, &ft_token, &settle_id))? {
                // The code expired (or was freed) between the lookup and now.
                None => Settlement::NoMatch,
                Some(true) => Settlement::First(Match {
                    ft_token,
                    duplicate: false,
                    settle_id: Some(settle_id),
                }),
                Some(false) => Settlement::Duplicate(Match::new(ft_token, true)),
            },
        )
    }

    /// Undoes a [`Settlement::First`] whose handling failed, so that the next delivery of the
    /// callback is the first again and the result is not lost. Does nothing for a duplicate or
    /// an unsettled match (only the settlement's own first match can undo it).
    pub fn unsettle(&self, m: &Match) -> Result<()> {
        match (&m.settle_id, m.duplicate) {
            (Some(id), false) => {
                logged("unsettle", self.store.unsettle(&m.ft_token, id))?;
                if logging::enabled(Level::Debug, logging::TRACKER) {
                    logging::emit(
                        Level::Debug,
                        logging::TRACKER,
                        &[
                            ("event", "unsettled".into()),
                            ("ft_token", m.ft_token.as_str().into()),
                        ],
                        format_args!("settlement of {} undone", m.ft_token),
                    );
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Waits for the result of `ft_token`: returns as soon as a callback for it was matched or
    /// settled (in any process sharing the store) and the platform's query reports a final
    /// status, or when a query made every poll interval does; after `timeout`, a timeout error.
    ///
    /// The result always comes from a query (see the [crate docs](crate#tracking-push-mode-at-scale)). Transient query
    /// failures are retried within `timeout`. When the store fails, the wait goes on by
    /// polling the platform; a time-out error then says that the store failed too. The
    /// client's call bound ([`Client::with_timeout`]) limits the wait as well, and its cancel
    /// token ([`Client::with_cancel`]) ends it within about 100 ms (a timeout error saying so).
    pub fn wait(&self, client: &Client, ft_token: &str, timeout: Duration) -> Result<QueryResult> {
        validate::ft_token(ft_token)?;
        let start = Instant::now();
        // The client's own call bound (a Go context, Python's timeout=) bounds the wait too.
        let deadline = match client.call_deadline() {
            Some(bound) => deadline_after(timeout).min(bound),
            None => deadline_after(timeout),
        };
        let limit = deadline.saturating_duration_since(start);
        let mut store_failure: Option<Error> = None;
        let timed_out = |store_failure: &Option<Error>| {
            let mut msg = format!("no final status within {} ms", limit.as_millis());
            if let Some(e) = store_failure {
                msg.push_str(&format!(" (polled the platform only: {})", e.message()));
            }
            Error::new(ErrorKind::Timeout, msg)
        };
        let cancelled = || Error::new(ErrorKind::Timeout, "the call was cancelled");
        let stop = || client.cancelled();
        let mut matched = false;
        loop {
            let left = remaining(deadline).ok_or_else(|| timed_out(&store_failure))?;
            let slice = left.min(self.poll_interval);
            let slice_end = deadline_after(slice);
            if !matched {
                // Not `logged`: one fallback_to_polling event per wait, not a warning per poll.
                match self.store.wait_matched_unless(ft_token, slice, &stop) {
                    Ok(m) => matched = m,
                    Err(e) => {
                        if store_failure.is_none()
                            && logging::enabled(Level::Warn, logging::TRACKER)
                        {
                            logging::emit(
                                Level::Warn,
                                logging::TRACKER,
                                &[
                                    ("client", client.log_id().into()),
                                    ("event", "fallback_to_polling".into()),
                                    ("ft_token", ft_token.into()),
                                    ("error", e.message().into()),
                                ],
                                format_args!(
                                    "wait {ft_token}: the store failed, polling the platform \
                                     only: {}",
                                    e.message()
                                ),
                            );
                        }
                        // Without the store's wake-up, the poll below still finds the result.
                        store_failure = Some(e);
                        if let Some(rest) = remaining(slice_end) {
                            client.pause(rest);
                        }
                    }
                }
            } else {
                // Matched, but the platform has no final status yet: poll it.
                client.pause(slice);
            }
            if client.cancelled() {
                return Err(cancelled());
            }
            let left = remaining(deadline).ok_or_else(|| timed_out(&store_failure))?;
            let limited = client.with_timeout(left.min(client.config().timeout()));
            match limited.query(ft_token) {
                Ok(r) if r.status != Status::Processing => return Ok(r),
                Ok(_) => {}
                Err(_) if client.cancelled() => return Err(cancelled()),
                Err(e) if crate::client::is_transient(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Now plus `timeout`, or a century ahead for a timeout too long to add.
/// A store operation's result, logging its failure (`store_failure`, see [`crate::logging`]).
fn logged<T>(op: &'static str, r: Result<T>) -> Result<T> {
    if let Err(e) = &r {
        if logging::enabled(Level::Warn, logging::TRACKER) {
            logging::emit(
                Level::Warn,
                logging::TRACKER,
                &[
                    ("event", "store_failure".into()),
                    ("op", op.into()),
                    ("error", e.message().into()),
                ],
                format_args!("the tracker's store failed ({op}): {}", e.message()),
            );
        }
    }
    r
}

pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

fn code_len(code_length: u32) -> Result<usize> {
    match code_length {
        4..=6 => Ok(code_length as usize),
        n => Err(Error::invalid(format!(
            "code_length must be 4-6 digits, got {n}"
        ))),
    }
}

/// The number of codes of `len` digits the tracker uses (no leading zero).
pub(crate) fn code_space(len: usize) -> usize {
    9 * 10usize.pow(len as u32 - 1)
}

/// `n` random codes of `len` digits without a leading zero, from the OS CSPRNG.
pub(crate) fn random_codes(len: usize, n: usize) -> Result<Vec<String>> {
    let low = 10u32.pow(len as u32 - 1);
    let span = 9 * low;
    // Rejection sampling keeps every code equally likely.
    let zone = u32::MAX - u32::MAX % span;
    let mut out = Vec::with_capacity(n);
    let mut buf = [0u8; 4 * CANDIDATES];
    while out.len() < n {
        getrandom::fill(&mut buf).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("the OS random number generator failed: {e}"),
            )
        })?;
        for chunk in buf.chunks_exact(4) {
            let r = u32::from_le_bytes(chunk.try_into().expect("4-byte chunks"));
            if r < zone && out.len() < n {
                out.push((low + r % span).to_string());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_codes_have_the_length_and_no_leading_zero() {
        for len in 4..=6 {
            let codes = random_codes(len, 2000).unwrap();
            assert_eq!(codes.len(), 2000);
            for c in &codes {
                assert_eq!(c.len(), len, "{c}");
                assert!(!c.starts_with('0'), "{c}");
                validate::code(c).unwrap();
            }
            let distinct: std::collections::HashSet<_> = codes.iter().collect();
            assert!(distinct.len() > 1500, "codes must vary: {}", distinct.len());
        }
        // Both ends of the 4-digit range show up among many draws.
        let many = random_codes(4, 200_000).unwrap();
        assert!(many.iter().any(|c| c.starts_with('1')));
        assert!(many.iter().any(|c| c.starts_with('9')));
    }

    #[test]
    fn code_length_rules() {
        for bad in [0, 3, 7, 100] {
            let e = code_len(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
            assert!(e.message().contains("code_length"), "{e}");
        }
        assert_eq!(code_space(4), 9000);
        assert_eq!(code_space(6), 900_000);
    }

    #[test]
    fn reservation_debug_hides_the_ticket_and_the_code() {
        let r = Reservation {
            code: "5776".into(),
            ticket: "secret-ticket".into(),
        };
        let s = format!("{r:?}");
        assert!(
            s.starts_with("Reservation") && !s.contains("5776") && !s.contains("secret-ticket"),
            "{s}"
        );
    }
}
