//! Cancellation: a token that calls watch, triggered from any thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A cancellation token: [`CancelToken::cancel`] from any thread stops every call of the
/// clients made with [`Client::with_cancel`](crate::Client::with_cancel) on it.
///
/// A cancelled call returns within about 100 ms with a timeout error whose message says it was
/// cancelled, even when it is blocked reading from the network, and a verify whose request was
/// not sent yet is never sent. Pauses between retries and `wait`'s polls wake at once.
/// Cancellation cannot be undone: make a new token for new calls. Cheap to clone (clones share
/// the state).
///
/// ```
/// let token = fotp::CancelToken::new();
/// let t = token.clone();
/// std::thread::spawn(move || t.cancel());
/// token.sleep(std::time::Duration::from_secs(5)); // returns as soon as it is cancelled
/// assert!(token.is_cancelled());
/// ```
#[derive(Clone, Debug, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    flag: AtomicBool,
    // Sleepers wait on the condition variable; the flag alone is read on hot paths.
    lock: Mutex<()>,
    wake: Condvar,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels every call watching this token (idempotent).
    pub fn cancel(&self) {
        self.inner.flag.store(true, Ordering::SeqCst);
        // A poisoned lock only means a sleeper panicked; the wake-up must still happen.
        let _guard = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.inner.wake.notify_all();
    }

    /// True once [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    /// Sleeps for `d`, or less when the token is cancelled meanwhile. Returns true when it was
    /// cancelled. Any duration is accepted (a huge one sleeps until cancelled).
    pub fn sleep(&self, d: Duration) -> bool {
        sleep_until(Some(self), deadline_after(d))
    }
}

/// `Instant::now() + d`, or `None` when that cannot be represented (treated as "never").
pub(crate) fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// Sleeps until `deadline` (`None`: forever), waking early when `cancel` is triggered.
/// Returns true when cancelled.
pub(crate) fn sleep_until(cancel: Option<&CancelToken>, deadline: Option<Instant>) -> bool {
    let Some(token) = cancel else {
        match deadline {
            Some(d) => {
                if let Some(left) = d.checked_duration_since(Instant::now()) {
                    std::thread::sleep(left);
                }
            }
            // Nothing can end this sleep; callers never ask for it, but do not spin.
            None => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
        }
        return false;
    };
    let inner = &token.inner;
    let mut guard = inner.lock.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if inner.flag.load(Ordering::SeqCst) {
            return true;
        }
        let left = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left,
                _ => return false,
            },
            // Condvar timeouts are capped internally; an hour at a time is plenty.
            None => Duration::from_secs(3600),
        };
        guard = inner
            .wake
            .wait_timeout(guard, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_wakes_a_sleeper_from_another_thread() {
        let token = CancelToken::new();
        let t = token.clone();
        let start = Instant::now();
        let h = std::thread::spawn(move || t.sleep(Duration::MAX));
        std::thread::sleep(Duration::from_millis(50));
        token.cancel();
        assert!(h.join().unwrap());
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(token.is_cancelled());
        // Already cancelled: no sleep at all.
        assert!(token.sleep(Duration::from_secs(10)));
    }

    #[test]
    fn sleep_without_cancel_runs_out() {
        let token = CancelToken::new();
        let start = Instant::now();
        assert!(!token.sleep(Duration::from_millis(30)));
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(deadline_after(Duration::MAX).is_none());
    }
}
