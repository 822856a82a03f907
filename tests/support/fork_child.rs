//! Runs code in a forked child while another thread holds a lock. One copy for the crate's unit
//! tests (`src/fork.rs` includes this file as `fork::testing`) and the integration tests.

use std::io::{Read, Write};
use std::os::fd::FromRawFd;

/// Takes a lock and calls its argument while holding it.
pub type Hold<'a> = &'a (dyn Fn(&dyn Fn()) + Sync);

/// Forks while a helper thread is inside `hold`, runs `f` in the child and returns what it
/// wrote to a pipe; `Err` when the child did not answer within 5 s (it is then killed): the
/// hang an inherited lock would cause.
pub fn in_child(hold: Option<Hold<'_>>, f: impl FnOnce() -> String) -> Result<String, String> {
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        if let Some(hold) = hold {
            scope.spawn(move || {
                hold(&|| {
                    held_tx.send(()).unwrap();
                    let _ = release_rx.recv();
                })
            });
            held_rx.recv().unwrap();
        }
        let mut fds = [0; 2];
        // SAFETY: a valid array of two descriptors. Close-on-exec: a redis-server another test
        // starts meanwhile must not hold the write end, or the read below waits for its exit.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: the child only runs `f` (the code under test) and writes to the pipe, then
        // leaves with _exit, never through the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .unwrap_or_else(|_| "the child panicked".into());
            // SAFETY: the write end, owned by this child alone.
            let mut w = unsafe { std::fs::File::from_raw_fd(fds[1]) };
            let ok = w.write_all(out.as_bytes()).is_ok();
            // SAFETY: ends the child at once, without the parent's destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        // SAFETY: the parent's copy of the write end; the read end is owned here.
        unsafe { libc::close(fds[1]) };
        // SAFETY: the read end, owned here alone from now on.
        let mut r = unsafe { std::fs::File::from_raw_fd(fds[0]) };
        let mut poll = libc::pollfd {
            fd: fds[0],
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let answer = if unsafe { libc::poll(&mut poll, 1, 5000) } == 1 {
            let mut text = String::new();
            r.read_to_string(&mut text).unwrap();
            Ok(text)
        } else {
            // SAFETY: our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            Err("the child hung".to_string())
        };
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        drop(release_tx);
        answer
    })
}
