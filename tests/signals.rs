//! Signals delivered during calls (EINTR) are retried within the time limits, never errors.
//! Alone in its binary: it installs a process-wide handler.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::{client_for, Reply, Server, QUERY_OK, VERIFY_OK};

extern "C" fn ignore(_: libc::c_int) {}

#[test]
fn signals_during_calls_are_not_errors() {
    // SAFETY: a valid sigaction with a handler that does nothing.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = ignore as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    // Slow enough answers that the calling thread is blocked in connect, read and sleep.
    let server = Server::start(|n, r| {
        let body = if r.path.ends_with("/verify") {
            VERIFY_OK
        } else {
            QUERY_OK
        };
        if n % 2 == 0 {
            Reply::After(Duration::from_millis(3), Box::new(Reply::json(200, body)))
        } else if n % 7 == 0 {
            Reply::json(503, "busy")
        } else {
            Reply::json(200, body)
        }
    });
    // SAFETY: the id of this thread, which outlives the signalling thread (joined below).
    let me = unsafe { libc::pthread_self() };
    let stop = Arc::new(AtomicBool::new(false));
    let signaller = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: `me` is alive until `stop` is set and this thread joined.
                unsafe { libc::pthread_kill(me, libc::SIGUSR1) };
                sent += 1;
                std::thread::sleep(Duration::from_micros(100));
            }
            sent
        })
    };
    let mut calls = 0;
    for round in 0..15 {
        // A new client each round: new connections are made under signals too.
        let client = client_for(&server, |b| {
            b.timeout(Duration::from_secs(5))
                .poll_interval(Duration::from_millis(10))
        });
        for _ in 0..10 {
            let r = client.query("token-under-signals");
            assert!(r.is_ok(), "round {round}: {r:?}");
            calls += 1;
        }
        if let Err(e) = client.verify(&fotp::VerifyRequest::new("2")) {
            // Only the scripted 503 may fail a verify (it is not retried).
            assert_eq!(e.http_status(), 503, "{e}");
        }
        client
            .wait("token-under-signals", Duration::from_secs(5))
            .unwrap();
        calls += 2;
    }
    stop.store(true, Ordering::Relaxed);
    let sent = signaller.join().unwrap();
    assert!(
        sent > 1000,
        "only {sent} signals were sent during {calls} calls"
    );
}
