//! A forked child never uses its parent's pooled connections, and never repeats its nonces.
//! Alone in its binary: fork copies only the calling thread, so no other test may be running.

mod support;

use std::time::Duration;

use support::{Reply, Server};

/// The server answers each query with the token it was sent as the mobile number, so that a
/// client reading another request's answer (a shared socket) notices.
fn echo_server() -> Server {
    Server::start(|_, r| {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let token = body["ftToken"].as_str().unwrap_or("?").to_string();
        Reply::json(
            200,
            &format!(r#"{{"code":"000000","data":{{"status":"2","mobile":"{token}"}}}}"#),
        )
    })
}

fn queries(client: &fotp::Client, who: &str, n: usize) -> Result<(), String> {
    for i in 0..n {
        let token = format!("{who}-{i}");
        let r = client.query(&token).map_err(|e| format!("{token}: {e}"))?;
        if r.mobile.as_deref() != Some(token.as_str()) {
            return Err(format!("{token}: got the answer to {:?}", r.mobile));
        }
    }
    Ok(())
}

#[test]
fn a_forked_child_uses_its_own_connections_and_nonces() {
    let server = echo_server();
    let client = support::client_for(&server, |b| b.timeout(Duration::from_secs(5)).retries(0));
    for round in 0..3 {
        // The parent's connection is in the pool when the child is forked.
        queries(&client, &format!("parent-warm-{round}"), 1).unwrap();
        // SAFETY: the child only runs the client (no lock held by another thread of this
        // process is touched) and leaves with _exit, never through the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                queries(&client, &format!("child-{round}"), 20)
            }))
            .map(|r| r.is_ok())
            .unwrap_or(false);
            // SAFETY: ends the child at once, without running the parent's destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        // The parent keeps using the same client meanwhile.
        let parent = queries(&client, &format!("parent-{round}"), 20);
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        parent.unwrap();
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child's calls failed (status {status})"
        );
    }
    // Every request arrived whole and correctly signed: no interleaved bytes.
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3 * 41);
    let mut nonces = std::collections::HashSet::new();
    for r in &reqs {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert!(body["ftToken"].is_string(), "{:?}", r.body);
        assert!(support::hmac_sign_ok(
            b"sandbox-secret",
            "sandbox",
            r.header("timestamp"),
            r.header("nonce"),
            &r.body,
            r.header("sign"),
        ));
        nonces.insert(r.header("nonce").to_string());
    }
    // Nonces come from the OS (getrandom) for every request: the child's differ from the
    // parent's though both started from the same memory.
    assert_eq!(nonces.len(), reqs.len(), "a nonce was repeated");
}

/// Nonces come from a per-thread generator seeded from the OS: a forked child must reseed it
/// before its first nonce, or it would draw exactly the parent's next nonces.
#[test]
fn a_forked_child_never_repeats_the_parents_nonces() {
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;
    const N: usize = 64;
    for _ in 0..5 {
        // The parent's generator is seeded and in use when the child is forked.
        let before = fotp::__internals::new_nonce().unwrap();
        let mut fds = [0; 2];
        // SAFETY: a valid array of two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child only draws nonces and writes them to the pipe, then leaves with
        // _exit, never through the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: the write end, owned by this child alone.
            let mut w = unsafe { std::fs::File::from_raw_fd(fds[1]) };
            let mut text = String::new();
            for _ in 0..N {
                text.push_str(&fotp::__internals::new_nonce().unwrap_or_default());
                text.push('\n');
            }
            let ok = w.write_all(text.as_bytes()).is_ok();
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        // SAFETY: the parent's copy of the write end is closed; the read end is owned here.
        unsafe { libc::close(fds[1]) };
        let mut r = unsafe { std::fs::File::from_raw_fd(fds[0]) };
        let parent: Vec<String> = (0..N)
            .map(|_| fotp::__internals::new_nonce().unwrap())
            .collect();
        let mut text = String::new();
        r.read_to_string(&mut text).unwrap();
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        let child: Vec<&str> = text.lines().collect();
        assert_eq!(child.len(), N);
        let mut all: std::collections::HashSet<&str> = parent.iter().map(String::as_str).collect();
        all.insert(&before);
        for n in &child {
            assert_eq!(n.len(), 32, "{n:?}");
            assert!(
                all.insert(n),
                "the child repeated a nonce of its parent: {n}"
            );
        }
    }
}
