//! A Redis tracker made before `fork()` (uWSGI, gunicorn `--preload`): every process must use
//! connections of its own, or the answers of one land in another. Real forks, against a real
//! `redis-server`; a file of its own so that no other test's threads run during the forks.

#![cfg(all(feature = "redis", unix))]

mod support;
mod tracker_support;

use std::time::Duration;

use fotp::Tracker;
use tracker_support::{Platform, Redis};

const ROUNDS: usize = 4000;

/// What a worker saw matching `code` ROUNDS times: (wrong tokens, errors).
fn match_many(t: &Tracker, code: &str, token: &str) -> (usize, usize) {
    let cb = fotp::parse_callback(
        format!(r#"{{"mobile":"1","sender":"2","sendTime":"3","code":"{code}"}}"#).as_bytes(),
    )
    .unwrap();
    let (mut wrong, mut errors) = (0, 0);
    for _ in 0..ROUNDS {
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
