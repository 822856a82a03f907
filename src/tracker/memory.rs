//! The in-memory store: one process, a mutex-protected map and a condition variable.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{Lookup, Match, Reserve, Store};
use crate::error::{Error, ErrorKind, Result};

/// The time source of a [`MemoryStore`]'s expiries: a monotonic duration since any fixed
/// origin. Replace it to test expiry without waiting.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The time now, since the clock's origin.
    fn now(&self) -> Duration;
}

#[derive(Debug)]
struct Monotonic(Instant);

impl Clock for Monotonic {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// A [`Store`] for one process: codes in a mutex-protected map, waiters on a condition
/// variable. Expired codes are dropped on every operation.
pub struct MemoryStore {
    /// The fork generation that last took `state`: a forked child's copy of the codes is its own,
    /// but its first call must not block on a lock a thread fork() did not copy may hold.
    owner: AtomicU64,
    state: Mutex<State>,
    matched: Condvar,
    clock: Arc<dyn Clock>,
}

/// A code as a map key: its length and value packed in a `u32` (see [`key`]). At 400k live
/// codes, comparing a key in place instead of through a `String`'s heap pointer saves a cache
/// miss per probe, and a live code costs no allocation of its own.
type Key = u32;

/// Bits of a [`Key`] holding the code's value (below 2^20 > 999 999).
const VALUE_BITS: u32 = 20;

/// The key of a 4-6 digit code (leading zeros kept apart by the length); `None` for anything
/// else, which no live verification can hold.
fn key(code: &str) -> Option<Key> {
    if !(4..=6).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value = code.bytes().fold(0u32, |v, b| v * 10 + u32::from(b - b'0'));
    Some((code.len() as u32) << VALUE_BITS | value)
}

/// The code length a [`Key`] was made from.
fn key_len(k: Key) -> usize {
    (k >> VALUE_BITS) as usize
}

#[derive(Default)]
struct State {
    codes: HashMap<Key, Slot>,
    /// (expiry, code), to drop expired codes in order.
    expiries: BTreeSet<(Duration, Key)>,
    /// Live codes per length (index 4-6).
    live: [usize; 7],
    /// The same live codes as bits, per length (bit = the code's value), sized on first use:
    /// checking a candidate reads this (125 KB for 6 digits, cache-resident) rather than a
    /// random bucket of `codes`, so allocation costs about the same at 1k and 400k live.
    /// Kept equal to the keys of `codes` by `insert` and `remove`.
    taken: [Vec<u64>; 7],
    /// Tokens whose callback was matched or settled (what wakes waiters), while their code is
    /// live.
    matched: HashSet<String>,
    /// Settled tokens and the id of the settle call that was first, while their code is live.
    settled: HashMap<String, String>,
}

struct Slot {
    expires: Duration,
    holder: Holder,
}

enum Holder {
    Reserved { ticket: String },
    Bound { ft_token: String, matched: bool },
}

impl State {
    fn purge(&mut self, now: Duration) {
        while let Some(first) = self.expiries.first() {
            if first.0 > now {
                break;
            }
            let (_, code) = self.expiries.pop_first().expect("checked non-empty");
            self.remove(code);
        }
    }

    fn is_taken(&self, code: Key) -> bool {
        let (len, bit) = (key_len(code), (code & ((1 << VALUE_BITS) - 1)) as usize);
        self.taken[len]
            .get(bit / 64)
            .is_some_and(|w| w >> (bit % 64) & 1 == 1)
    }

    fn set_taken(&mut self, code: Key, on: bool) {
        let (len, bit) = (key_len(code), (code & ((1 << VALUE_BITS) - 1)) as usize);
        let words = &mut self.taken[len];
        if words.is_empty() {
            words.resize(10usize.pow(len as u32).div_ceil(64), 0);
        }
        let mask = 1u64 << (bit % 64);
        if on {
            words[bit / 64] |= mask;
        } else {
            words[bit / 64] &= !mask;
        }
    }

    /// Makes `code` live; `false` (changing nothing) if it is live already. The map decides,
    /// not the bits: a code is never handed out twice even if they were wrong.
    fn insert(&mut self, code: Key, slot: Slot) -> bool {
        let expires = slot.expires;
        match self.codes.entry(code) {
            Entry::Occupied(_) => return false,
            Entry::Vacant(v) => v.insert(slot),
        };
        self.expiries.insert((expires, code));
        self.set_taken(code, true);
        self.live[key_len(code)] += 1;
        true
    }

    fn remove(&mut self, code: Key) {
        if let Some(slot) = self.codes.remove(&code) {
            self.expiries.remove(&(slot.expires, code));
            self.set_taken(code, false);
            self.live[key_len(code)] -= 1;
            if let Holder::Bound { ft_token, .. } = slot.holder {
                self.matched.remove(&ft_token);
                self.settled.remove(&ft_token);
            }
        }
    }
}

impl MemoryStore {
    /// An empty store using the system's monotonic clock.
    pub fn new() -> MemoryStore {
        MemoryStore::with_clock(Arc::new(Monotonic(Instant::now())))
    }

    /// An empty store whose expiries follow `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> MemoryStore {
        MemoryStore {
            owner: AtomicU64::new(crate::fork::generation()),
            state: Mutex::new(State::default()),
            matched: Condvar::new(),
            clock,
        }
    }

    /// The number of live codes (reserved or bound) of `len` digits.
    ///
    /// # Errors
    ///
    /// An [`Internal`](ErrorKind::Internal) error in a forked child whose parent had a thread
    /// inside the store at the fork, as from every other method.
    pub fn live(&self, len: usize) -> Result<usize> {
        let s = self.now_locked()?;
        Ok(s.live.get(len).copied().unwrap_or(0))
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        let generation = crate::fork::generation();
        if self.owner.load(Ordering::Acquire) == generation {
            // Every update keeps the state consistent before it can panic, so a poisoned lock
            // still guards valid data.
            return Ok(self.state.lock().unwrap_or_else(|e| e.into_inner()));
        }
        // A forked child: the codes are behind the lock, so a lock held by a thread that was
        // not copied leaves nothing to answer from.
        let s =
            crate::fork::lock_inherited(&self.state, &self.owner, generation).ok_or_else(|| {
                Error::new(
                ErrorKind::Internal,
                "the tracker's memory store was locked by a thread that did not survive fork(); \
                 make the tracker in the child",
            )
            })?;
        self.owner.store(generation, Ordering::Release);
        Ok(s)
    }

    fn now_locked(&self) -> Result<MutexGuard<'_, State>> {
        let mut s = self.lock()?;
        s.purge(self.clock.now());
        Ok(s)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl Store for MemoryStore {
    fn reserve(
        &self,
        candidates: &[String],
        ticket: &str,
        limit: usize,
        ttl: Duration,
    ) -> Result<Reserve> {
        let Some(len) = candidates.first().map(String::len) else {
            return Ok(Reserve::AllTaken);
        };
        let keys = candidates
            .iter()
            .map(|c| key(c).filter(|_| c.len() == len))
            .collect::<Option<Vec<Key>>>()
            .ok_or_else(|| Error::invalid("candidates must be codes of one length, 4-6 digits"))?;
        let now = self.clock.now();
        let mut s = self.lock()?;
        s.purge(now);
        if s.live[len] >= limit {
            return Ok(Reserve::Exhausted);
        }
        let Some(i) = keys.iter().position(|&c| !s.is_taken(c)) else {
            return Ok(Reserve::AllTaken);
        };
        let code = keys[i];
        let slot = Slot {
            expires: now.saturating_add(ttl),
            holder: Holder::Reserved {
                ticket: ticket.to_owned(),
            },
        };
        if !s.insert(code, slot) {
            return Err(Error::new(
                ErrorKind::Internal,
                "the memory store's free-code bits disagreed with its map",
            ));
        }
        Ok(Reserve::Reserved(i))
    }

    fn bind(&self, code: &str, ticket: &str, ft_token: &str) -> Result<bool> {
        let Some(code) = key(code) else {
            return Ok(false);
        };
        let mut s = self.now_locked()?;
        match s.codes.get_mut(&code) {
            Some(slot) if matches!(&slot.holder, Holder::Reserved { ticket: t } if t == ticket) => {
                slot.holder = Holder::Bound {
                    ft_token: ft_token.to_owned(),
                    matched: false,
                };
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn release(&self, code: &str, ticket: &str) -> Result<()> {
        let Some(code) = key(code) else {
            return Ok(());
        };
        let mut s = self.now_locked()?;
        let ours = matches!(
            s.codes.get(&code),
            Some(Slot { holder: Holder::Reserved { ticket: t }, .. }) if t == ticket
        );
        if ours {
            s.remove(code);
        }
        Ok(())
    }

    fn lookup(&self, code: &str) -> Result<Lookup> {
        let Some(code) = key(code) else {
            return Ok(Lookup::Free);
        };
        let s = self.now_locked()?;
        Ok(match s.codes.get(&code).map(|slot| &slot.holder) {
            Some(Holder::Bound { ft_token, .. }) => Lookup::Bound(ft_token.clone()),
            Some(Holder::Reserved { .. }) => Lookup::Reserved,
            None => Lookup::Free,
        })
    }

    fn claim(&self, code: &str) -> Result<Option<Match>> {
        let Some(code) = key(code) else {
            return Ok(None);
        };
        let mut s = self.now_locked()?;
        let Some(Slot {
            holder: Holder::Bound { ft_token, matched },
            ..
        }) = s.codes.get_mut(&code)
        else {
            return Ok(None);
        };
        let ft_token = ft_token.clone();
        let duplicate = std::mem::replace(matched, true);
        if !duplicate {
            s.matched.insert(ft_token.clone());
            self.matched.notify_all();
        }
        Ok(Some(Match::new(ft_token, duplicate)))
    }

    fn settle(&self, code: &str, ft_token: &str, settle_id: &str) -> Result<Option<bool>> {
        let Some(code) = key(code) else {
            return Ok(None);
        };
        let mut s = self.now_locked()?;
        let bound = matches!(
            s.codes.get(&code),
            Some(Slot { holder: Holder::Bound { ft_token: t, .. }, .. }) if t == ft_token
        );
        if !bound {
            return Ok(None);
        }
        if s.settled.contains_key(ft_token) {
            return Ok(Some(false));
        }
        s.settled.insert(ft_token.to_owned(), settle_id.to_owned());
        s.matched.insert(ft_token.to_owned());
        self.matched.notify_all();
        Ok(Some(true))
    }

    fn unsettle(&self, ft_token: &str, settle_id: &str) -> Result<()> {
        let mut s = self.now_locked()?;
        if s.settled.get(ft_token).is_some_and(|id| id == settle_id) {
            s.settled.remove(ft_token);
        }
        Ok(())
    }

    fn wait_matched(&self, ft_token: &str, timeout: Duration) -> Result<bool> {
        let deadline = super::deadline_after(timeout);
        let mut s = self.now_locked()?;
        loop {
            if s.matched.contains(ft_token) {
                return Ok(true);
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Ok(false);
            };
            if left.is_zero() {
                return Ok(false);
            }
            s = self
                .matched
                .wait_timeout(s, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            s.purge(self.clock.now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::Tracker;
    use crate::Callback;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Debug, Default)]
    struct ManualClock(AtomicU64);

    impl ManualClock {
        fn advance(&self, d: Duration) {
            self.0.fetch_add(d.as_millis() as u64, Ordering::SeqCst);
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Duration {
            Duration::from_millis(self.0.load(Ordering::SeqCst))
        }
    }

    /// The free-code bits name exactly the live codes.
    fn assert_bits_match(store: &MemoryStore) {
        let s = store.lock().unwrap();
        let mut from_bits = HashSet::new();
        for (len, words) in s.taken.iter().enumerate() {
            for (i, w) in words.iter().enumerate() {
                for b in (0..64).filter(|b| w >> b & 1 == 1) {
                    from_bits.insert((len as u32) << VALUE_BITS | (i * 64 + b) as u32);
                }
            }
        }
        let live: HashSet<Key> = s.codes.keys().copied().collect();
        assert_eq!(from_bits, live);
    }

    fn manual() -> (Arc<ManualClock>, Arc<MemoryStore>, Tracker) {
        let clock = Arc::new(ManualClock::default());
        let store = Arc::new(MemoryStore::with_clock(clock.clone()));
        let tracker = Tracker::with_store(store.clone());
        (clock, store, tracker)
    }

    fn callback(code: &str) -> Callback {
        Callback {
            mobile: "8613800000000".into(),
            sender: "1008611".into(),
            send_time: "2025-05-15 11:23:34".into(),
            code: code.into(),
            content: None,
            deliver_time: None,
            err: None,
        }
    }

    #[test]
    fn keys_keep_every_code_apart() {
        // Every 4-6 digit code, leading zeros included, has its own key; nothing else has one.
        let mut seen = HashSet::new();
        for len in 4..=6usize {
            for v in 0..10u32.pow(len as u32) {
                let code = format!("{v:0>len$}");
                let k = key(&code).unwrap();
                assert_eq!(key_len(k), len, "{code}");
                assert!(seen.insert(k), "{code} shares a key");
            }
        }
        assert_eq!(seen.len(), 1_110_000);
        for bad in [
            "",
            "123",
            "1234567",
            "12a4",
            "-123",
            "+1234",
            " 1234",
            "１２３４",
        ] {
            assert_eq!(key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn codes_differing_only_by_leading_zeros_are_different_codes() {
        let (_, store, tracker) = manual();
        let ttl = Duration::from_secs(60);
        let held = ["1234".to_owned()];
        assert_eq!(
            store.reserve(&held, "t", 4500, ttl).unwrap(),
            Reserve::Reserved(0)
        );
        assert!(store.bind("1234", "t", "tok-z").unwrap());
        for other in ["01234", "001234", "12340"] {
            assert_eq!(store.lookup(other).unwrap(), Lookup::Free, "{other}");
            assert_eq!(tracker.match_callback(&callback(other)).unwrap(), None);
            assert!(!store.bind(other, "t", "tok-other").unwrap());
            assert_eq!(store.settle(other, "tok-z", "s").unwrap(), None);
        }
        assert_eq!(store.lookup("1234").unwrap(), Lookup::Bound("tok-z".into()));
        // "01234" is a free 5-digit code of its own.
        let five = ["01234".to_owned()];
        assert_eq!(
            store.reserve(&five, "u", 45_000, ttl).unwrap(),
            Reserve::Reserved(0)
        );
        assert_eq!((store.live(4).unwrap(), store.live(5).unwrap()), (1, 1));
        assert_bits_match(&store);
        // Candidates that are not codes of one length are refused.
        for bad in [
            &["12a4".to_owned()][..],
            &["1234".to_owned(), "12345".to_owned()],
        ] {
            let e = store.reserve(bad, "v", 4500, ttl).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        }
    }

    #[test]
    fn ten_thousand_concurrent_allocations_are_unique() {
        let tracker = Tracker::memory();
        let threads = 16;
        let per = 10_000 / threads;
        let codes: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let t = &tracker;
                    s.spawn(move || {
                        (0..per)
                            .map(|_| t.reserve(6, Some(5)).unwrap().code().to_owned())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(codes.len(), threads * per);
        let distinct: HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), codes.len(), "a code was handed out twice");
    }

    #[test]
    fn exhaustion_at_half_the_space_per_length() {
        let (clock, store, tracker) = manual();
        let mut held = Vec::new();
        for _ in 0..4500 {
            held.push(tracker.reserve(4, None).unwrap());
        }
        assert_eq!(store.live(4).unwrap(), 4500);
        let e = tracker.reserve(4, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Exhausted);
        assert!(e.message().contains("4-digit"), "{e}");
        // Other lengths have their own space.
        tracker.reserve(5, None).unwrap();
        // Freeing one makes room for exactly one.
        tracker.release(&held.pop().unwrap()).unwrap();
        tracker.reserve(4, None).unwrap();
        assert_eq!(
            tracker.reserve(4, None).unwrap_err().kind(),
            ErrorKind::Exhausted
        );
        assert_bits_match(&store);
        // Once they expire, the whole half of the space is free again.
        clock.advance(Duration::from_secs(3600));
        assert_eq!(store.live(4).unwrap(), 0);
        assert_bits_match(&store);
        let again: HashSet<String> = (0..4500)
            .map(|_| tracker.reserve(4, None).unwrap().code().to_owned())
            .collect();
        assert_eq!(again.len(), 4500);
        assert_bits_match(&store);
    }

    #[test]
    fn codes_expire_after_validity_plus_grace() {
        let (clock, store, tracker) = manual();
        let tracker = tracker.with_grace(Duration::from_secs(60));
        let r = tracker.reserve(4, Some(1)).unwrap();
        tracker.bind(&r, "tok-1").unwrap();
        clock.advance(Duration::from_secs(119));
        assert_eq!(store.live(4).unwrap(), 1);
        let m = tracker
            .match_callback(&callback(r.code()))
            .unwrap()
            .unwrap();
        assert_eq!(m.ft_token, "tok-1");
        assert!(!m.duplicate);
        assert!(store.wait_matched("tok-1", Duration::ZERO).unwrap());
        clock.advance(Duration::from_secs(1));
        // Gone: no match, no matched flag, the count dropped.
        assert_eq!(tracker.match_callback(&callback(r.code())).unwrap(), None);
        assert!(!store.wait_matched("tok-1", Duration::ZERO).unwrap());
        assert_eq!(store.live(4).unwrap(), 0);
        let s = store.lock().unwrap();
        assert!(s.codes.is_empty() && s.expiries.is_empty() && s.matched.is_empty());
        assert!(s.settled.is_empty());
        drop(s);
        assert_bits_match(&store);
    }

    #[test]
    fn an_expired_reservation_cannot_be_bound_or_released_over_a_new_one() {
        let (clock, store, tracker) = manual();
        let old = tracker.reserve(4, Some(1)).unwrap();
        clock.advance(Duration::from_secs(3600));
        // Someone else now holds the same code.
        assert_eq!(
            store
                .reserve(
                    &[old.code().to_owned()],
                    "other",
                    4500,
                    Duration::from_secs(60)
                )
                .unwrap(),
            Reserve::Reserved(0)
        );
        let e = tracker.bind(&old, "tok-old").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        tracker.release(&old).unwrap();
        assert_eq!(
            store.live(4).unwrap(),
            1,
            "release must not free another's code"
        );
        assert!(store.bind(old.code(), "other", "tok-new").unwrap());
        let m = tracker.match_callback(&callback(old.code())).unwrap();
        assert_eq!(m.unwrap().ft_token, "tok-new");
    }

    #[test]
    fn matches_once_then_duplicates() {
        let tracker = Tracker::memory();
        let r = tracker.reserve(5, None).unwrap();
        let cb = callback(r.code());
        // Reserved but not bound yet: nothing to match.
        assert_eq!(tracker.match_callback(&cb).unwrap(), None);
        tracker.bind(&r, "tok-a").unwrap();
        let first = tracker.match_callback(&cb).unwrap().unwrap();
        assert_eq!(first, Match::new("tok-a".into(), false));
        for _ in 0..3 {
            let again = tracker.match_callback(&cb).unwrap().unwrap();
            assert!(again.duplicate);
            assert_eq!(again.ft_token, "tok-a");
        }
        // Another mobile with the same code still belongs to the same verification.
        let mut other = cb.clone();
        other.mobile = "8613900000000".into();
        assert!(tracker.match_callback(&other).unwrap().unwrap().duplicate);
        // Unknown or malformed codes match nothing.
        for code in ["0000", "12", "abcd", "1234567"] {
            if code != r.code() {
                assert_eq!(tracker.match_callback(&callback(code)).unwrap(), None);
            }
        }
    }

    #[test]
    fn concurrent_deliveries_match_exactly_once() {
        let tracker = Tracker::memory();
        let r = tracker.reserve(6, None).unwrap();
        tracker.bind(&r, "tok-c").unwrap();
        let cb = callback(r.code());
        let firsts: usize = std::thread::scope(|s| {
            (0..8)
                .map(|_| s.spawn(|| tracker.match_callback(&cb).unwrap().unwrap()))
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| usize::from(!h.join().unwrap().duplicate))
                .sum()
        });
        assert_eq!(firsts, 1);
    }

    #[test]
    fn huge_durations_do_not_overflow() {
        let (_, store, tracker) = manual();
        let tracker = tracker.with_grace(Duration::MAX);
        let r = tracker.reserve(4, Some(10)).unwrap();
        tracker.bind(&r, "tok-h").unwrap();
        tracker
            .match_callback(&callback(r.code()))
            .unwrap()
            .unwrap();
        assert!(store.wait_matched("tok-h", Duration::MAX).unwrap());
        assert_eq!(store.live(4).unwrap(), 1);
    }

    #[test]
    fn wait_is_woken_by_a_match() {
        let tracker = Tracker::memory();
        let r = tracker.reserve(4, None).unwrap();
        tracker.bind(&r, "tok-w").unwrap();
        let store = tracker.store().clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let started = Instant::now();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                tx.send(()).unwrap();
                store
                    .wait_matched("tok-w", Duration::from_secs(30))
                    .unwrap()
            });
            rx.recv().unwrap();
            tracker
                .match_callback(&callback(r.code()))
                .unwrap()
                .unwrap();
            assert!(waiter.join().unwrap());
        });
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "woken by the match, not by the time limit"
        );
        // Another token is not woken: its wait runs into the time limit.
        assert!(!store
            .wait_matched("tok-other", Duration::from_millis(20))
            .unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn a_lock_caught_held_by_fork_is_an_error_in_the_child_not_a_hang() {
        let (_, store, tracker) = manual();
        let v = tracker.reserve(4, None).unwrap();
        let code = v.code().to_owned();
        for _ in 0..3 {
            let hold = |held: &dyn Fn()| {
                let _guard = store.state.lock();
                held();
            };
            let answer = crate::fork::testing::in_child(Some(&hold), || {
                let start = Instant::now();
                let first = match store.lookup(&code) {
                    Ok(l) => format!("answered {l:?}"),
                    Err(e) => format!(
                        "{:?} in {} ms: {}",
                        e.kind(),
                        start.elapsed().as_millis(),
                        e.message()
                    ),
                };
                // Every method answers so, `live` included (it once panicked here).
                let live = store.live(4).map_err(|e| e.kind());
                format!("{first} / live: {live:?}")
            })
            .unwrap();
            assert!(
                answer.starts_with("Internal in ")
                    && answer.contains("did not survive fork()")
                    && answer.ends_with(" / live: Err(Internal)"),
                "{answer}"
            );
            let ms: u64 = answer["Internal in ".len()..]
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(ms < 1000, "{answer}");
        }
        // The parent's store is untouched.
        assert_eq!(store.lookup(&code).unwrap(), Lookup::Reserved);
    }

    #[cfg(unix)]
    #[test]
    fn a_forked_child_keeps_using_a_store_whose_lock_was_free() {
        let (_, store, tracker) = manual();
        let v = tracker.reserve(4, None).unwrap();
        let code = v.code().to_owned();
        let answer = crate::fork::testing::in_child(None, || {
            let first = store.lookup(&code);
            let again = store.reserve(
                &["1234".to_string(), "5678".to_string()],
                "t",
                10,
                Duration::from_secs(60),
            );
            format!("{first:?} {again:?} {}", store.live(4).unwrap())
        })
        .unwrap();
        let expected_second = if code == "1234" { 1 } else { 0 };
        assert_eq!(
            answer,
            format!("Ok(Reserved) Ok(Reserved({expected_second})) 2")
        );
        // The child's reservation was in its copy only.
        assert_eq!(store.live(4).unwrap(), 1);
    }
}
