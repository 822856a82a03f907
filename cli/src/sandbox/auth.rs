//! The server side of the `hmac-sha256` scheme: signature, timestamp window, nonce replay.

use std::collections::HashMap;

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use super::state::{wall_ms, ApiError, Shared};
use super::{AUTH_FAILED, BAD_TIMESTAMP, NONCE_REPLAYED, REPLAY_STORE_FULL};

/// Accepted distance between the request's timestamp and the sandbox's clock.
pub(crate) const WINDOW_MS: u64 = 300_000;

/// Heap bytes one remembered nonce may take at most: a 16-byte digest and an 8-byte expiry
/// in a hash table that is at most 7/8 full and at worst just doubled (24 × 8/7 × 2 plus
/// control bytes is under 57). Documented as the store's memory bound.
pub const NONCE_ENTRY_BYTES: usize = 64;

/// The part of SHA-256(nonce) kept: 128 bits make an accidental collision (a fresh request
/// refused as a replay) negligible at any number of nonces the store can hold.
type NonceDigest = [u8; 16];

/// Nonces seen recently, as fixed-size digests with the time until which each must be kept.
/// A request passes the timestamp check only while its timestamp is within one window of
/// now, so its nonce is kept until timestamp + window (at most two windows after it came)
/// and then forgotten: a replay after that is refused by the timestamp check.
pub(crate) struct NonceStore {
    keep_until: HashMap<NonceDigest, u64>,
    max: usize,
    last_sweep_ms: u64,
}

/// Why a nonce was not recorded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NonceRefusal {
    Replayed,
    Full,
}

impl NonceStore {
    pub(crate) fn new(max: usize) -> NonceStore {
        NonceStore {
            keep_until: HashMap::new(),
            max,
            last_sweep_ms: 0,
        }
    }

    /// Forgets expired nonces; at most once a second, so a full store costs one sweep a
    /// second, not one per request.
    fn sweep(&mut self, now: u64) {
        if now < self.last_sweep_ms.saturating_add(1000) {
            return;
        }
        self.last_sweep_ms = now;
        self.keep_until.retain(|_, until| *until > now);
    }

    /// Records `nonce` of a request stamped `timestamp` (already checked to be within the
    /// window).
    pub(crate) fn insert(
        &mut self,
        nonce: &str,
        timestamp: u64,
        now: u64,
    ) -> Result<(), NonceRefusal> {
        self.sweep(now);
        let digest: NonceDigest = Sha256::digest(nonce.as_bytes())[..16]
            .try_into()
            .expect("16 of 32 bytes");
        if let Some(until) = self.keep_until.get(&digest) {
            if *until > now {
                return Err(NonceRefusal::Replayed);
            }
        } else if self.keep_until.len() >= self.max {
            return Err(NonceRefusal::Full);
        }
        self.keep_until
            .insert(digest, timestamp.saturating_add(WINDOW_MS).max(now));
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.keep_until.len()
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    let v = headers.get(name).ok_or_else(|| {
        ApiError::new(
            AUTH_FAILED,
            format!("authentication failed: header `{name}` is missing"),
        )
    })?;
    v.to_str().ok().filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::new(
            AUTH_FAILED,
            format!("authentication failed: header `{name}` is empty or not ASCII"),
        )
    })
}

impl Shared {
    /// Checks the authentication headers of a platform request over the exact body bytes.
    pub(crate) fn authenticate(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
        let app_id = header(headers, "appId")?;
        let timestamp = header(headers, "timestamp")?;
        let nonce = header(headers, "nonce")?;
        let sign = header(headers, "sign")?;
        // Compare app ids in constant time too: no hint of which part was wrong.
        let id_ok =
            fotp::__internals::constant_time_eq(app_id.as_bytes(), self.options.app_id.as_bytes());
        let sign_ok = fotp::__internals::hmac_sha256_verify(
            self.options.app_secret.expose().as_bytes(),
            app_id,
            timestamp,
            nonce,
            body,
            sign,
        );
        if !(id_ok && sign_ok) {
            return Err(ApiError::new(
                AUTH_FAILED,
                "authentication failed: unknown appId or bad sign",
            ));
        }
        let now = wall_ms();
        let ts: u64 = timestamp.parse().map_err(|_| {
            ApiError::new(BAD_TIMESTAMP, "timestamp must be Unix time in milliseconds")
        })?;
        if ts.abs_diff(now) > WINDOW_MS {
            return Err(ApiError::new(
                BAD_TIMESTAMP,
                format!(
                    "timestamp is {} s away from the sandbox's clock (allowed: 300 s)",
                    ts.abs_diff(now) / 1000
                ),
            ));
        }
        if nonce.len() > 128 {
            return Err(ApiError::new(
                AUTH_FAILED,
                "authentication failed: nonce is too long",
            ));
        }
        let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        match nonces.insert(nonce, ts, now) {
            Ok(()) => Ok(()),
            Err(NonceRefusal::Replayed) => Err(ApiError::new(
                NONCE_REPLAYED,
                "nonce was already used within the last 300 s",
            )),
            // Not a replay: the client did nothing wrong and may try again.
            Err(NonceRefusal::Full) => Err(ApiError::new(
                REPLAY_STORE_FULL,
                format!(
                    "the replay store is full ({} nonces within the 300 s window); try again \
                     later",
                    nonces.len()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    #[test]
    fn nonces_are_kept_until_their_timestamp_leaves_the_window() {
        let mut s = NonceStore::new(10);
        assert_eq!(s.insert("a", T0, T0), Ok(()));
        assert_eq!(s.insert("a", T0, T0 + 1), Err(NonceRefusal::Replayed));
        assert_eq!(s.insert("b", T0 + WINDOW_MS, T0 + 2), Ok(()));
        assert_eq!(s.len(), 2);
        // One window after its timestamp "a" could no longer pass the timestamp check:
        // forgotten. "b" was stamped a window ahead, so it stays until two windows.
        assert_eq!(s.insert("c", T0, T0 + WINDOW_MS + 1), Ok(()));
        assert_eq!(s.len(), 2);
        assert_eq!(
            s.insert("b", T0, T0 + WINDOW_MS + 2),
            Err(NonceRefusal::Replayed)
        );
        assert_eq!(s.insert("a", T0 + WINDOW_MS, T0 + WINDOW_MS + 3), Ok(()));
    }

    #[test]
    fn a_full_store_refuses_with_its_own_error_and_stays_within_its_bound() {
        const MAX: usize = 200_000;
        // Measured, not estimated: the heap bytes this thread holds for a full store.
        let before = crate::alloc_count::live_bytes();
        let mut s = NonceStore::new(MAX);
        for i in 0..MAX {
            assert_eq!(s.insert(&format!("{i:032x}"), T0, T0), Ok(()), "{i}");
        }
        let used = crate::alloc_count::live_bytes() - before;
        assert_eq!(s.insert("one more", T0, T0), Err(NonceRefusal::Full));
        // A replay is still told apart from a full store.
        assert_eq!(
            s.insert(&format!("{:032x}", 7), T0, T0),
            Err(NonceRefusal::Replayed)
        );
        assert_eq!(s.len(), MAX);
        assert!(
            used <= (MAX * NONCE_ENTRY_BYTES) as i64,
            "{used} heap bytes for {MAX} nonces, more than {NONCE_ENTRY_BYTES} each"
        );
        assert!(
            used >= (MAX * 24) as i64,
            "the count sees the table: {used}"
        );
        // Once their window has passed, room again.
        assert_eq!(
            s.insert("later", T0 + WINDOW_MS + 1, T0 + WINDOW_MS + 1),
            Ok(())
        );
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn timestamps_at_the_end_of_time_do_not_overflow() {
        let mut s = NonceStore::new(4);
        assert_eq!(s.insert("x", u64::MAX, u64::MAX - 2), Ok(()));
        assert_eq!(
            s.insert("x", u64::MAX, u64::MAX - 1),
            Err(NonceRefusal::Replayed)
        );
    }
}
