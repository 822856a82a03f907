//! Two real app processes sharing a Redis tracker behind the sandbox (`target/release/fotp
//! sandbox`): this test process verifies and waits; a second process (this same test binary,
//! running the ignored `receiver_process`) receives the pushed callbacks and matches them.
//!
//! Skipped loudly when redis-server or the sandbox binary is missing, unless FOTP_REQUIRE_REDIS
//! (or FOTP_REQUIRE_SANDBOX) is set.

#![cfg(feature = "redis")]

mod support;
mod tracker_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fotp::{Status, Tracker};
use tracker_support::Redis;

const NS: &str = "sandbox-e2e";
const MOBILE: &str = "8613800000000";

/// Kills the child on drop (teardown even when an assertion fails).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends every stdout line of a child to a channel (and so keeps its pipe drained).
fn lines_of(out: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// What follows `prefix` in the first line holding it (libtest may print "test ... " before).
fn line_with(rx: &mpsc::Receiver<String>, prefix: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                if let Some(i) = l.find(prefix) {
                    return l[i + prefix.len()..].to_owned();
                }
            }
            Err(e) => panic!("no line with {prefix:?}: {e}"),
        }
    }
}

fn sandbox_binary() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let bin = target.join("release/fotp");
    if bin.exists() {
        return Some(bin);
    }
    if std::env::var_os("FOTP_REQUIRE_SANDBOX").is_some() {
        panic!(
            "FOTP_REQUIRE_SANDBOX is set but {} is missing",
            bin.display()
        );
    }
    eprintln!(
        "\n*** SKIPPED: {} is missing (cargo build --release); set FOTP_REQUIRE_SANDBOX=1 to \
         make this a failure ***\n",
        bin.display()
    );
    None
}

#[test]
fn two_processes_share_a_redis_tracker_behind_the_sandbox() {
    let Some(redis) = Redis::start() else { return };
    let Some(fotp_bin) = sandbox_binary() else {
        return;
    };

    // Process 2: the callback receiver.
    let mut receiver = Proc(
        Command::new(std::env::current_exe().unwrap())
            .args(["receiver_process", "--exact", "--ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env("FOTP_TEST_REDIS_URL", redis.url())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let from_receiver = lines_of(receiver.0.stdout.take().unwrap());
    let callback_url = line_with(&from_receiver, "RECEIVER_URL=", Duration::from_secs(30));

    // The platform: the sandbox pushes template 7's callbacks to the receiver.
    let mut sandbox = Proc(
        Command::new(fotp_bin)
            .args(["sandbox", "--addr", "127.0.0.1:0"])
            .arg("--template")
            .arg(format!("7={callback_url}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let from_sandbox = lines_of(sandbox.0.stdout.take().unwrap());
    let base = line_with(&from_sandbox, "FOTP_BASE_URL=", Duration::from_secs(30));

    // Process 1 (this one): verify and wait.
    let client = fotp::Client::new(
        fotp::Config::builder(&base)
            .hmac_auth("sandbox", "sandbox-secret")
            .build()
            .unwrap(),
    )
    .unwrap();
    // Only the store can wake the waiter within the test: its own poll is 10 minutes away.
    let tracker = Tracker::redis(&redis.url(), NS)
        .unwrap()
        .with_poll_interval(Duration::from_secs(600));
    let v = tracker.verify(&client, "7", 4, Some(2)).unwrap();
    assert_eq!(v.code.len(), 4);

    let started = Instant::now();
    let result = std::thread::scope(|s| {
        let waiter = s.spawn(|| tracker.wait(&client, &v.ft_token, Duration::from_secs(60)));
        // The user's SMS, delivered three times by the platform.
        let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).build().into();
        let uplink = serde_json::json!({
            "ftToken": v.ft_token,
            "mobile": MOBILE,
            "content": format!("My code is {}", v.code),
            "deliveries": 3,
        });
        let mut resp = agent
            .post(format!("{base}/sandbox/uplink"))
            .content_type("application/json")
            .send(uplink.to_string().as_bytes())
            .unwrap();
        let mut answer = String::new();
        resp.body_mut()
            .as_reader()
            .read_to_string(&mut answer)
            .unwrap();
        assert!(answer.contains("000000"), "{answer}");
        waiter.join().unwrap()
    });
    let r = result.unwrap();
    assert_eq!(r.status, Status::Success);
    assert_eq!(r.code.as_deref(), Some(v.code.as_str()));
    assert_eq!(r.mobile.as_deref(), Some(MOBILE));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "woken by the match"
    );

    // The receiver matched the three deliveries: the first as new, then two duplicates.
    let matches: Vec<String> = (0..3)
        .map(|_| line_with(&from_receiver, "MATCH ", Duration::from_secs(30)))
        .collect();
    assert_eq!(
        matches,
        vec![
            format!("{} false", v.ft_token),
            format!("{} true", v.ft_token),
            format!("{} true", v.ft_token),
        ]
    );
    // Closing its stdin asks the receiver to exit; it must do so on its own.
    drop(receiver.0.stdin.take());
    let status = receiver.0.wait().unwrap();
    assert!(status.success(), "receiver: {status}");
    drop(sandbox);
}

/// Process 2 of the test above (run by it, ignored otherwise): an HTTP callback receiver that
/// matches each callback with its own Redis tracker and prints `MATCH <token> <duplicate>`.
#[test]
#[ignore = "run as a child process by two_processes_share_a_redis_tracker_behind_the_sandbox"]
fn receiver_process() {
    use axum::routing::post;

    let url = std::env::var("FOTP_TEST_REDIS_URL").expect("started by the sandbox test");
    let tracker = Tracker::redis(&url, NS).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let app = axum::Router::new().route(
            "/callback",
            post(move |body: axum::body::Bytes| {
                let tracker = tracker.clone();
                async move {
                    let cb = match fotp::parse_callback(&body) {
                        Ok(cb) => cb,
                        Err(e) => return (axum::http::StatusCode::BAD_REQUEST, e.to_string()),
                    };
                    // The store call blocks: keep it off the async workers.
                    let m = tokio::task::spawn_blocking(move || tracker.match_callback(&cb))
                        .await
                        .unwrap();
                    match m {
                        Ok(Some(m)) => {
                            let mut out = std::io::stdout().lock();
                            writeln!(out, "MATCH {} {}", m.ft_token, m.duplicate).unwrap();
                            out.flush().unwrap();
                            (axum::http::StatusCode::OK, fotp::CALLBACK_ACK.to_owned())
                        }
                        Ok(None) => (axum::http::StatusCode::OK, fotp::CALLBACK_ACK.to_owned()),
                        // Not acknowledged: the platform retries.
                        Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "RECEIVER_URL=http://{}/callback",
                listener.local_addr().unwrap()
            )
            .unwrap();
            out.flush().unwrap();
        }
        // Until the parent closes our stdin.
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stdin_closed.await;
            })
            .await
            .unwrap();
    });
}
