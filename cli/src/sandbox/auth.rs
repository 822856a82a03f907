//! The server side of the `hmac-sha256` scheme: signature, timestamp window, nonce replay.

use std::collections::{HashSet, VecDeque};

use axum::http::HeaderMap;

use super::state::{wall_ms, ApiError, Shared};
use super::{AUTH_FAILED, BAD_TIMESTAMP, NONCE_REPLAYED};

/// Accepted distance between the request's timestamp and the sandbox's clock.
pub(crate) const WINDOW_MS: u64 = 300_000;
/// Nonces remembered at most; past this, requests are refused rather than memory grown.
const MAX_NONCES: usize = 1_000_000;

/// Nonces seen recently. A nonce is kept for two windows after it was seen: a request is only
/// accepted while its timestamp is within one window of now, so an older nonce cannot replay.
#[derive(Default)]
pub(crate) struct NonceStore {
    seen: HashSet<String>,
    // Insertion order = expiry order, because every entry lives equally long.
    order: VecDeque<(u64, String)>,
}

impl NonceStore {
    fn prune(&mut self, now: u64) {
        while let Some((expires, _)) = self.order.front() {
            if *expires > now {
                break;
            }
            let (_, nonce) = self.order.pop_front().expect("front exists");
            self.seen.remove(&nonce);
        }
    }

    /// Records `nonce`; false when it was already seen within the window.
    fn insert(&mut self, nonce: &str, now: u64) -> Result<bool, ApiError> {
        self.prune(now);
        if self.seen.contains(nonce) {
            return Ok(false);
        }
        if self.seen.len() >= MAX_NONCES {
            return Err(ApiError::new(
                NONCE_REPLAYED,
                "too many requests within the replay window; try again later",
            ));
        }
        self.seen.insert(nonce.to_owned());
        self.order
            .push_back((now + 2 * WINDOW_MS, nonce.to_owned()));
        Ok(true)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
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
        let id_ok = fotp::sign::constant_time_eq(app_id.as_bytes(), self.options.app_id.as_bytes());
        let sign_ok = fotp::sign::hmac_sha256_verify(
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
        if !nonces.insert(nonce, now)? {
            return Err(ApiError::new(
                NONCE_REPLAYED,
                "nonce was already used within the last 300 s",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_expire_and_memory_is_released() {
        let mut s = NonceStore::default();
        assert!(s.insert("a", 1000).unwrap());
        assert!(!s.insert("a", 2000).unwrap());
        assert!(s.insert("b", 2000).unwrap());
        assert_eq!(s.len(), 2);
        // After two windows both are forgotten (their timestamps could no longer pass).
        assert!(s.insert("c", 2000 + 2 * WINDOW_MS).unwrap());
        assert_eq!(s.len(), 1);
        assert!(s.insert("a", 2000 + 2 * WINDOW_MS).unwrap());
    }
}
