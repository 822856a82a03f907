//! Fork detection without a system call per check.
//!
//! A forked child must never use its parent's pooled connections nor repeat its nonces. Asking
//! `getpid()` on every call costs a system call (glibc does not cache it); instead a
//! `pthread_atfork` child handler bumps a process-wide generation number in every child that
//! `fork()` makes, and state made in one generation is rebuilt when it meets another.
//!
//! Children made without `fork()` (a raw `clone` system call) run no atfork handler; such a
//! child that goes on running Rust code instead of `exec`ing is not supported by any library
//! that keeps per-process state (glibc's own included). Go's runtime and `posix_spawn` only
//! make children that `exec` at once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Once, TryLockError};
use std::time::{Duration, Instant};

static GENERATION: AtomicU64 = AtomicU64::new(0);
/// Set when the handler could not be registered: then the process id is the generation.
static NO_HANDLER: AtomicBool = AtomicBool::new(false);
static REGISTER: Once = Once::new();

#[cfg(unix)]
extern "C" fn in_child() {
    // Runs in the child right after fork(): one atomic add, async-signal-safe.
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// The fork generation of this process. It differs in every forked child from every value its
/// parent (or any ancestor) ever returned, and never changes within one process.
///
/// State that must not cross a fork records the generation it was made in and is rebuilt when
/// `generation()` no longer matches. Cheap: an atomic load (the first call registers the
/// handler).
pub(crate) fn generation() -> u64 {
    REGISTER.call_once(register);
    if NO_HANDLER.load(Ordering::Relaxed) {
        // Never reached in practice (registration fails only without memory): fall back to
        // the process id, with the top bit set so it never equals a counted generation.
        return u64::from(std::process::id()) | 1 << 63;
    }
    GENERATION.load(Ordering::Acquire)
}

/// How long a forked child tries a lock it inherited before deciding that a thread `fork()` did
/// not copy holds it (the HTTP pool's `Pool::agent` waits as long).
const INHERITED_LOCK_WAIT: Duration = Duration::from_millis(50);

/// Marks `owner` once a generation has given up on its lock. The holder was a thread `fork()` did
/// not copy, so nothing in this process can ever release it: later calls fail at once instead
/// of waiting [`INHERITED_LOCK_WAIT`] each. Generations count from 0 and the process-id fallback
/// sets bit 63 only, so this bit never belongs to a generation.
const GAVE_UP: u64 = 1 << 62;

/// Locks `m`, whose state `owner` says belongs to another fork generation than `generation`
/// (a forked child's first use of it), without ever blocking: a thread that does not exist in
/// this process may have held it at the fork. `None` when it stays held for a short while and no
/// thread of this generation took it meanwhile, and from then on at once, for the rest of this
/// generation. The caller makes the state this generation's and stores `generation` in `owner`
/// before releasing the guard.
pub(crate) fn lock_inherited<'a, T>(
    m: &'a Mutex<T>,
    owner: &AtomicU64,
    generation: u64,
) -> Option<MutexGuard<'a, T>> {
    let start = Instant::now();
    loop {
        let seen = owner.load(Ordering::Acquire);
        if seen == generation | GAVE_UP {
            return None;
        }
        match m.try_lock() {
            Ok(g) => return Some(g),
            // Poisoned or not, the callers' state stays valid (each says why).
            Err(TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => {}
        }
        if seen == generation {
            // A thread of this process took it since: its holder is alive, so waiting ends.
            return Some(m.lock().unwrap_or_else(|e| e.into_inner()));
        }
        if start.elapsed() >= INHERITED_LOCK_WAIT {
            // Only if no thread of this generation took the lock since `seen` was read: that
            // thread is alive and will release it.
            return match owner.compare_exchange(
                seen,
                generation | GAVE_UP,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Err(now) if now == generation => Some(m.lock().unwrap_or_else(|e| e.into_inner())),
                _ => None,
            };
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(unix)]
fn register() {
    // SAFETY: registers a plain `extern "C" fn()` that touches only a static atomic; no prepare
    // or parent handler. glibc ties the registration to this object (its DSO handle), so
    // unloading libfotp.so removes it.
    let rc = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
    if rc != 0 {
        NO_HANDLER.store(true, Ordering::Relaxed);
    }
}

#[cfg(not(unix))]
fn register() {
    // No fork() on this platform: one generation for the whole life of the process.
}

/// Forking tests of the stores' locks (shared with the integration tests).
#[cfg(all(test, unix))]
#[path = "../tests/support/fork_child.rs"]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    /// Locks `m` on another thread, standing for one `fork()` did not copy, runs `f`, then
    /// releases the lock.
    fn while_held_elsewhere<R>(m: &Mutex<()>, f: impl FnOnce() -> R) -> R {
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            s.spawn(move || {
                let _g = m.lock().unwrap();
                held_tx.send(()).unwrap();
                let _ = release_rx.recv();
            });
            held_rx.recv().unwrap();
            let r = f();
            drop(release_tx);
            r
        })
    }

    #[test]
    fn a_lock_given_up_on_is_never_waited_for_again_in_that_generation() {
        let m = Mutex::new(());
        let owner = AtomicU64::new(7);
        let mine = 8;
        let first = while_held_elsewhere(&m, || lock_inherited(&m, &owner, mine).is_none());
        assert!(first, "a lock held throughout must be given up on");
        // Free now (in a real child it never is): the give-up holds without a second wait,
        // so a stuck child's calls fail at once instead of 50 ms each.
        assert!(m.try_lock().is_ok());
        assert!(lock_inherited(&m, &owner, mine).is_none());
        // A child of this process is a new generation: it tries afresh.
        assert!(lock_inherited(&m, &owner, mine + 1).is_some());
    }

    #[test]
    fn a_lock_taken_by_a_thread_of_this_generation_is_waited_for() {
        let m = Mutex::new(());
        let owner = AtomicU64::new(7);
        let mine = 8;
        let guard = m.lock().unwrap();
        // Its holder belongs to this generation (it recorded so): the lock will be released,
        // however long that takes. (Recorded before the waiter starts, so that a loaded machine
        // cannot make the waiter give up first; the race in which the record lands just before
        // the give-up is what `lock_inherited`'s compare_exchange handles.)
        owner.store(mine, Ordering::Release);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| lock_inherited(&m, &owner, mine).is_some());
            std::thread::sleep(INHERITED_LOCK_WAIT * 2);
            drop(guard);
            assert!(waiter.join().unwrap());
        });
        assert_eq!(owner.load(Ordering::Acquire), mine);
    }

    #[test]
    fn the_generation_is_stable_within_a_process() {
        let a = super::generation();
        let b = std::thread::spawn(super::generation).join().unwrap();
        assert_eq!(a, b);
        assert_eq!(a, super::generation());
    }
}
