//! # Logging: the events fotp emits
//!
//! fotp emits structured events through the [`log`] facade with its `kv` feature (key-value
//! fields). `log` rather than `tracing`: it is already in every build through ureq, its `kv`
//! feature has no dependencies, so libfotp stays as lean as before; a disabled event costs one
//! atomic load ([`log::max_level`]) before anything is formatted; and `tracing` subscribers
//! receive `log` events through `tracing-log`. Install any `log` logger (`env_logger`, ...) to
//! see them; the C library forwards them to the callback of `fotp_set_logger`, the Python and Go
//! bindings to `logging` and `log/slog`.
//!
//! No event ever carries a secret, a token header, a signature, an OTP code or a full mobile
//! number (`mobile` keeps only its last 4 digits, the others are `*`); the ftToken may appear.
//! Every event has a human message (which repeats the fields) and these fields:
//!
//! | target | level | event | fields |
//! |---|---|---|---|
//! | `fotp::http` | info | one per attempt of verify or query | `client`, `op` (`verify`/`query`), `method`, `path`, `attempt` (1, 2, ...), `status` (HTTP status) or `error_kind` (`network`, `timeout`, ...), `elapsed_ms`, and when another attempt follows, `retry_in_ms` (the pause, from `Retry-After` or back-off) |
//! | `fotp::http` | debug | `wait` polls again | `client`, `op` = `wait`, `ft_token`, `poll_in_ms` |
//! | `fotp::tracker` | debug | a code was reserved | `event` = `reserved`, `code_length`, `ttl_ms` |
//! | `fotp::tracker` | info | a verification was bound to its code | `client`, `event` = `bound`, `ft_token` |
//! | `fotp::tracker` | info | a callback was settled | `client`, `event` = `settled`, `outcome` (`first`, `duplicate`, `unconfirmed`, `no_match`), `mobile` (masked), `ft_token` when matched |
//! | `fotp::tracker` | info | a duplicate delivery | as `settled`, `outcome` = `duplicate` |
//! | `fotp::tracker` | debug | a settlement was undone | `event` = `unsettled`, `ft_token` |
//! | `fotp::tracker` | warn | the store failed (outside `wait`, which reports `fallback_to_polling` once) | `event` = `store_failure`, `op` (the store operation), `error` |
//! | `fotp::tracker` | warn | `wait` goes on by polling only | `client`, `event` = `fallback_to_polling`, `ft_token`, `error` |
//! | `fotp::callback` | info | a callback body was refused | `event` = `refused`, `reason` (never a field's value) |
//!
//! `client` is a number naming the client (and the clients derived from it with
//! [`Client::with_timeout`](crate::Client::with_timeout) /
//! [`Client::with_cancel`](crate::Client::with_cancel)), so that a binding can route the events
//! of each client to that client's logger.

use std::fmt;

use log::kv::Value;
use log::Level;

/// The targets, all under `fotp::` (sinks filter on that prefix, leaving out ureq's own events).
pub(crate) const HTTP: &str = "fotp::http";
pub(crate) const TRACKER: &str = "fotp::tracker";
pub(crate) const CALLBACK: &str = "fotp::callback";

/// True when an event of `level` for `target` would be recorded: call before preparing fields.
///
/// Never inlined: a call costs nothing measurable, and thread checkers see every lock-free read
/// of the max level in this one frame (tests/c/logging-helgrind.supp).
#[inline(never)]
pub(crate) fn enabled(level: Level, target: &str) -> bool {
    // The static and the atomic max level first: nothing else runs when logging is off.
    level <= log::STATIC_MAX_LEVEL && level <= log::max_level() && {
        let meta = log::Metadata::builder().level(level).target(target).build();
        log::logger().enabled(&meta)
    }
}

/// Emits one event; callers check [`enabled`] first.
pub(crate) fn emit(
    level: Level,
    target: &'static str,
    fields: &[(&str, Value<'_>)],
    args: fmt::Arguments<'_>,
) {
    log::logger().log(
        &log::Record::builder()
            .level(level)
            .target(target)
            .module_path_static(Some(module_path!()))
            .args(args)
            .key_values(&fields)
            .build(),
    );
}

/// `mobile` with all but its last 4 characters replaced by `*`.
pub(crate) fn mask_mobile(mobile: &str) -> String {
    let n = mobile.chars().count();
    mobile
        .chars()
        .enumerate()
        .map(|(i, c)| if i + 4 < n { '*' } else { c })
        .collect()
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_all_but_the_last_four() {
        assert_eq!(mask_mobile("8613800001234"), "*********1234");
        assert_eq!(mask_mobile("1234"), "1234");
        assert_eq!(mask_mobile("12"), "12");
        assert_eq!(mask_mobile(""), "");
    }
}
