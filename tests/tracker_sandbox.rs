//! Two real app processes sharing a Redis tracker behind the sandbox (`target/release/fotp
//! sandbox`): this test process verifies and waits; a second process (this same test binary,
//! running the ignored `receiver_process`) receives the pushed callbacks and settles them, as
//! the receivers of the bindings do (CONTRACT.md section 8).
//!
//! Skipped loudly when redis-server or the sandbox binary is missing, unless FOTP_REQUIRE_REDIS
//! (or FOTP_REQUIRE_SANDBOX) is set.

#![cfg(feature = "redis")]

mod support;
mod tracker_support;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fotp::{Status, Tracker};
use tracker_support::{line_with, lines_of, Redis};

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

/// The receiver process and the sandbox pushing to it, sharing a fresh redis-server.
struct Setup {
    redis: Redis,
    receiver: Proc,
    from_receiver: mpsc::Receiver<String>,
    _sandbox: Proc,
    base: String,
    callback_url: String,
    client: fotp::Client,
    agent: ureq::Agent,
}

impl Setup {
    /// `fail_first`: the receiver's handler fails on the first delivery of each verification.
    fn start(fail_first: bool) -> Option<Setup> {
        let redis = Redis::start()?;
        let fotp_bin = sandbox_binary()?;
        // Process 2: the callback receiver.
        let mut receiver = Proc(
            Command::new(std::env::current_exe().unwrap())
                .args(["receiver_process", "--exact", "--ignored", "--nocapture"])
                .args(["--test-threads", "1"])
                .env("FOTP_TEST_REDIS_URL", redis.url())
                .env("FOTP_TEST_FAIL_FIRST", if fail_first { "1" } else { "" })
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let from_receiver = lines_of(receiver.0.stdout.take().unwrap());
        let callback_url = line_with(&from_receiver, "RECEIVER_URL=", Duration::from_secs(30));
        // The platform: the sandbox pushes template 7's callbacks to the receiver, retrying
        // each delivery until it is acknowledged.
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
        // The receiver settles through the platform: tell it where that is.
        let stdin: &mut ChildStdin = receiver.0.stdin.as_mut().unwrap();
        writeln!(stdin, "{base}").unwrap();
        stdin.flush().unwrap();
        let client = fotp::Client::new(
            fotp::Config::builder(&base)
                .hmac_auth("sandbox", "sandbox-secret")
                .build()
                .unwrap(),
        )
        .unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .build()
            .into();
        Some(Setup {
            redis,
            receiver,
            from_receiver,
            _sandbox: sandbox,
            base,
            callback_url,
            client,
            agent,
        })
    }

    /// The user's SMS for `v`, which the platform then delivers `deliveries` times.
    fn uplink(&self, v: &fotp::Verification, deliveries: u32) {
        let uplink = serde_json::json!({
            "ftToken": v.ft_token,
            "mobile": MOBILE,
            "content": format!("My code is {}", v.code),
            "deliveries": deliveries,
        });
        let mut resp = self
            .agent
            .post(format!("{}/sandbox/uplink", self.base))
            .content_type("application/json")
            .send(uplink.to_string().as_bytes())
            .unwrap();
        let mut answer = String::new();
        resp.body_mut()
            .as_reader()
            .read_to_string(&mut answer)
            .unwrap();
        assert!(answer.contains("000000"), "{answer}");
    }

    /// Closes the receiver's stdin (it exits on its own) and returns the lines it printed
    /// that were not read yet.
    fn finish(mut self) -> Vec<String> {
        drop(self.receiver.0.stdin.take());
        let status = self.receiver.0.wait().unwrap();
        assert!(status.success(), "receiver: {status}");
        self.from_receiver.try_iter().collect()
    }
}

/// Posts a callback to the receiver at `url` as an attacker would; returns the HTTP status.
fn post_callback(agent: &ureq::Agent, url: &str, code: &str, mobile: &str) -> u16 {
    let body = serde_json::json!({
        "mobile": mobile, "sender": "1008611", "sendTime": "2025-05-15 11:23:34", "code": code,
    });
    agent
        .post(url)
        .content_type("application/json")
        .send(body.to_string().as_bytes())
        .unwrap()
        .status()
        .as_u16()
}

/// The next `n` outcome lines of the receiver (FIRST / DUP / FAILED), in order.
fn outcomes(rx: &mpsc::Receiver<String>, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| line_with(rx, "SETTLED ", Duration::from_secs(60)))
        .collect()
}

#[test]
fn two_processes_share_a_redis_tracker_behind_the_sandbox() {
    let Some(setup) = Setup::start(false) else {
        return;
    };
    let client = &setup.client;
    // Only the store can wake the waiter within the test: its own poll is 10 minutes away.
    let tracker = Tracker::redis(&setup.redis.url(), NS)
        .unwrap()
        .with_poll_interval(Duration::from_secs(600));
    let v = tracker.verify(client, "7", 4, Some(2)).unwrap();
    assert_eq!(v.code.len(), 4);

    let started = Instant::now();
    let result = std::thread::scope(|s| {
        let waiter = s.spawn(|| tracker.wait(client, &v.ft_token, Duration::from_secs(60)));
        // The user's SMS, delivered three times by the platform.
        setup.uplink(&v, 3);
        waiter.join().unwrap()
    });
    let r = result.unwrap();
    assert_eq!(r.status, Status::Success);
    assert_eq!(r.code.as_deref(), Some(v.code.as_str()));
    assert_eq!(r.mobile.as_deref(), Some(MOBILE));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "woken by the settlement in the other process"
    );
    // The receiver settled the three deliveries: the first, then two duplicates.
    assert_eq!(
        outcomes(&setup.from_receiver, 3),
        vec![
            format!("FIRST {}", v.ft_token),
            format!("DUP {}", v.ft_token),
            format!("DUP {}", v.ft_token),
        ]
    );
    let rest = setup.finish();
    assert!(rest.iter().all(|l| !l.contains("SETTLED")), "{rest:?}");
}

#[test]
fn nine_thousand_forged_callbacks_never_hide_the_genuine_ones() {
    let Some(setup) = Setup::start(false) else {
        return;
    };
    let client = &setup.client;
    let tracker = Tracker::redis(&setup.redis.url(), NS).unwrap();
    let sessions: Vec<_> = (0..5)
        .map(|_| tracker.verify(client, "7", 4, None).unwrap())
        .collect();
    // Every 4-digit code, posted to the receiver from the attacker's phone number.
    let statuses: Vec<u16> = std::thread::scope(|s| {
        (0..4)
            .map(|part| {
                let (agent, url) = (&setup.agent, &setup.callback_url);
                s.spawn(move || {
                    (1000 + part..10_000)
                        .step_by(4)
                        .map(|code| post_callback(agent, url, &code.to_string(), "8613999999999"))
                        .collect::<Vec<_>>()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(statuses.len(), 9000);
    // Live codes: 503 (not confirmed, nothing consumed); the rest: acknowledged, no match.
    let unconfirmed = statuses.iter().filter(|&&s| s == 503).count();
    let acked = statuses.iter().filter(|&&s| s == 200).count();
    assert_eq!(
        (unconfirmed, acked),
        (sessions.len(), 9000 - sessions.len())
    );

    // The genuine SMS: the platform delivers each callback 3 times.
    for v in &sessions {
        setup.uplink(v, 3);
    }
    let mut seen = outcomes(&setup.from_receiver, 3 * sessions.len());
    seen.sort();
    let mut expected: Vec<String> = sessions
        .iter()
        .flat_map(|v| {
            [
                format!("DUP {}", v.ft_token),
                format!("DUP {}", v.ft_token),
                format!("FIRST {}", v.ft_token),
            ]
        })
        .collect();
    expected.sort();
    assert_eq!(seen, expected, "each genuine one settled exactly once");
    for v in &sessions {
        let r = tracker
            .wait(client, &v.ft_token, Duration::from_secs(30))
            .unwrap();
        assert_eq!(r.status, Status::Success);
    }
    let rest = setup.finish();
    assert!(rest.iter().all(|l| !l.contains("SETTLED")), "{rest:?}");
}

#[test]
fn a_handler_that_fails_on_the_first_delivery_gets_the_next_once() {
    let Some(setup) = Setup::start(true) else {
        return;
    };
    let tracker = Tracker::redis(&setup.redis.url(), NS).unwrap();
    let v = tracker.verify(&setup.client, "7", 5, None).unwrap();
    setup.uplink(&v, 3);
    // The failed first delivery answers 500: the platform retries it, and that is the first.
    assert_eq!(
        outcomes(&setup.from_receiver, 4),
        vec![
            format!("FAILED {}", v.ft_token),
            format!("FIRST {}", v.ft_token),
            format!("DUP {}", v.ft_token),
            format!("DUP {}", v.ft_token),
        ]
    );
    let rest = setup.finish();
    assert!(rest.iter().all(|l| !l.contains("SETTLED")), "{rest:?}");
}

/// Process 2 of the tests above (run by them, ignored otherwise): an HTTP callback receiver
/// that settles each callback with its own Redis tracker, as CONTRACT.md section 8 says a
/// receiver does, and prints `SETTLED FIRST|DUP|FAILED <token>`. Its first stdin line is the
/// platform's base URL; it exits when stdin closes.
#[test]
#[ignore = "run as a child process by the tests above"]
fn receiver_process() {
    use axum::http::StatusCode;
    use axum::routing::post;
    use fotp::Settlement;
    use std::collections::HashSet;
    use std::io::BufRead as _;
    use std::sync::{Arc, Mutex};

    let url = std::env::var("FOTP_TEST_REDIS_URL").expect("started by the sandbox test");
    let fail_first = std::env::var("FOTP_TEST_FAIL_FIRST").is_ok_and(|v| v == "1");
    let tracker = Tracker::redis(&url, NS).unwrap();
    let failed: Arc<Mutex<HashSet<String>>> = Arc::default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
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
    let mut base = String::new();
    std::io::stdin().lock().read_line(&mut base).unwrap();
    let client = fotp::Client::new(
        fotp::Config::builder(base.trim())
            .hmac_auth("sandbox", "sandbox-secret")
            .build()
            .unwrap(),
    )
    .unwrap();
    let say = |what: &str, token: &str| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "SETTLED {what} {token}").unwrap();
        out.flush().unwrap();
    };
    runtime.block_on(async move {
        let app = axum::Router::new().route(
            "/callback",
            post(move |body: axum::body::Bytes| {
                let (tracker, client, failed) = (tracker.clone(), client.clone(), failed.clone());
                async move {
                    let cb = match fotp::parse_callback(&body) {
                        Ok(cb) => cb,
                        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()),
                    };
                    // The store and the query block: keep them off the async workers.
                    tokio::task::spawn_blocking(move || match tracker.settle(&client, &cb) {
                        Ok(Settlement::First(m)) => {
                            if fail_first && failed.lock().unwrap().insert(m.ft_token.clone()) {
                                // The handler raised: undo, so the next delivery is offered.
                                say("FAILED", &m.ft_token);
                                tracker.unsettle(&m).unwrap();
                                return (StatusCode::INTERNAL_SERVER_ERROR, "handler".into());
                            }
                            say("FIRST", &m.ft_token);
                            (StatusCode::OK, fotp::CALLBACK_ACK.to_owned())
                        }
                        Ok(Settlement::Duplicate(m)) => {
                            say("DUP", &m.ft_token);
                            (StatusCode::OK, fotp::CALLBACK_ACK.to_owned())
                        }
                        Ok(Settlement::NoMatch) => (StatusCode::OK, fotp::CALLBACK_ACK.to_owned()),
                        // Not acknowledged: the platform delivers again.
                        Ok(Settlement::Unconfirmed) => {
                            (StatusCode::SERVICE_UNAVAILABLE, "unconfirmed".into())
                        }
                        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
                    })
                    .await
                    .unwrap()
                }
            }),
        );
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
