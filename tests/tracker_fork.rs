//! A Redis tracker made before `fork()` (uWSGI, gunicorn `--preload`): every process must use
//! connections of its own, or the answers of one land in another. Real forks, against a real
//! `redis-server`; a file of its own so that no other test's threads run during the forks.

#![cfg(all(feature = "redis", unix))]

#[path = "support/fork_child.rs"]
mod fork_child;
mod support;
mod tracker_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fotp::{RedisStore, Store, Tracker};
use tracker_support::{Platform, Redis};

const ROUNDS: usize = 4000;

/// What a worker saw matching `code` ROUNDS times: (wrong tokens, errors).
fn match_many(t: &Tracker, code: &str, token: &str) -> (usize, usize) {
    match_n(t, code, token, ROUNDS)
}

/// What a worker saw matching `code` `rounds` times: (wrong tokens, errors).
fn match_n(t: &Tracker, code: &str, token: &str, rounds: usize) -> (usize, usize) {
    let cb = fotp::parse_callback(
        format!(r#"{{"mobile":"1","sender":"2","sendTime":"3","code":"{code}"}}"#).as_bytes(),
    )
    .unwrap();
    let (mut wrong, mut errors) = (0, 0);
    for _ in 0..rounds {
        match t.match_callback(&cb) {
            Ok(Some(m)) if m.ft_token == token => {}
            Ok(_) => wrong += 1,
            Err(_) => errors += 1,
        }
    }
    (wrong, errors)
}

#[test]
fn forked_workers_never_share_a_connection() {
    let Some(redis) = Redis::start() else { return };
    let platform = Platform::start();
    let client = platform.client();
    for run in 0..5 {
        let ns = format!("fork{run}");
        let t = Tracker::redis(&redis.url(), &ns).unwrap();
        let vs: Vec<_> = (0..3)
            .map(|_| t.verify(&client, "2", 4, None).unwrap())
            .collect();
        // The parent's pool holds connections when it forks.
        std::thread::scope(|s| {
            for v in &vs {
                s.spawn(|| match_many(&t, &v.code, &v.ft_token));
            }
        });
        let mut children = Vec::new();
        for v in &vs[1..] {
            // SAFETY: the child only runs the tracker's own code (its locks are free: no other
            // thread of this process uses this tracker now) and leaves with _exit.
            match unsafe { libc::fork() } {
                0 => {
                    let (wrong, errors) = match_many(&t, &v.code, &v.ft_token);
                    // The child's own wake-up subscriber: the match is seen at once.
                    let woke = t
                        .store()
                        .wait_matched(&v.ft_token, Duration::from_secs(10))
                        .unwrap_or(false);
                    let status = match (wrong, errors, woke) {
                        (0, 0, true) => 0,
                        (0, 0, false) => 3,
                        (0, _, _) => 2,
                        _ => 1,
                    };
                    // SAFETY: ends the child without running the test harness's exit code.
                    unsafe { libc::_exit(status) }
                }
                -1 => panic!("fork failed: {}", std::io::Error::last_os_error()),
                pid => children.push(pid),
            }
        }
        // The parent keeps working meanwhile, on its own connections.
        assert_eq!(
            match_many(&t, &vs[0].code, &vs[0].ft_token),
            (0, 0),
            "run {run}: parent"
        );
        for pid in children {
            let mut status = 0;
            // SAFETY: a child of this process; `status` is writable.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "run {run}: child {pid}: status {status:#x} (1: wrong tokens, 2: errors, 3: no wake-up)"
            );
        }
    }
}

/// Forks while a helper thread holds one of `store`'s locks (the pool's when `pool`, else the
/// wake-ups'), runs `f` in the child and returns what it wrote to a pipe; `Err` when the child
/// did not answer within 5 s: the hang an inherited lock would cause.
fn in_child_with_lock_held(
    store: &RedisStore,
    pool: bool,
    f: impl FnOnce() -> String,
) -> Result<String, String> {
    let hold = |held: &dyn Fn()| store.with_lock_held(pool, held);
    fork_child::in_child(Some(&hold), f)
}

/// A fork that catches a thread inside the pool's lock: the child's calls still work (on
/// connections of their own), and the parent's pool is untouched.
#[test]
fn a_child_works_when_fork_catches_the_pool_locked() {
    let Some(redis) = Redis::start() else { return };
    let platform = Platform::start();
    let client = platform.client();
    let store = Arc::new(RedisStore::open(&redis.url(), "forkpool").unwrap());
    let t = Tracker::with_store(store.clone());
    let v = t.verify(&client, "2", 4, None).unwrap();
    for run in 0..3 {
        // The parent's pool holds connections when it forks.
        assert_eq!(match_n(&t, &v.code, &v.ft_token, 10), (0, 0));
        let answer = in_child_with_lock_held(&store, true, || {
            format!("{:?}", match_n(&t, &v.code, &v.ft_token, 5))
        });
        assert_eq!(answer.as_deref(), Ok("(0, 0)"), "run {run}");
        assert_eq!(
            match_n(&t, &v.code, &v.ft_token, 10),
            (0, 0),
            "run {run}: parent"
        );
    }
}

/// A fork that catches a thread inside the wake-ups' lock (the parent's subscriber takes it
/// every tick): the child's waits poll the store instead, and end within their limits.
#[test]
fn a_childs_wait_ends_in_time_when_fork_catches_the_wakeups_locked() {
    let Some(redis) = Redis::start() else { return };
    let platform = Platform::start();
    let client = platform.client();
    let store = Arc::new(RedisStore::open(&redis.url(), "forkwake").unwrap());
    let t = Tracker::with_store(store.clone());
    let matched = t.verify(&client, "2", 4, None).unwrap();
    let unmatched = t.verify(&client, "3", 4, None).unwrap();
    assert_eq!(match_n(&t, &matched.code, &matched.ft_token, 1), (0, 0));
    // The parent's subscriber runs: the parent has waited.
    assert!(store
        .wait_matched(&matched.ft_token, Duration::from_secs(5))
        .unwrap());
    for run in 0..3 {
        let answer = in_child_with_lock_held(&store, false, || {
            let start = Instant::now();
            let found = store.wait_matched(&matched.ft_token, Duration::from_secs(2));
            let first = start.elapsed();
            let start = Instant::now();
            let not_found = store.wait_matched(&unmatched.ft_token, Duration::from_millis(800));
            let second = start.elapsed();
            let in_time = first < Duration::from_millis(2500)
                && second >= Duration::from_millis(800)
                && second < Duration::from_millis(1500);
            format!("{found:?} {not_found:?} in time: {in_time} ({first:?}, {second:?})")
        })
        .unwrap();
        assert!(
            answer.starts_with("Ok(true) Ok(false) in time: true"),
            "run {run}: {answer}"
        );
    }
    // The parent's wake-ups still work.
    assert!(store
        .wait_matched(&matched.ft_token, Duration::from_secs(5))
        .unwrap());
}
