//! Shared by the tracker tests: a fake platform that keeps sessions, and a real `redis-server`
//! on an ephemeral loopback port.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{Reply, Server};

/// One verification the fake platform handed out.
#[derive(Clone, Debug)]
pub struct Session {
    pub code: String,
    pub status: &'static str,
    pub mobile: Option<String>,
}

/// A fake platform: verify keeps the code it was sent (or fails when told to), query reports
/// the session's status. Built on the recording server of `tests/support`.
pub struct Platform {
    pub server: Server,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    fail_verify: Arc<AtomicUsize>,
}

fn envelope(data: serde_json::Value) -> String {
    serde_json::json!({"code": "000000", "success": true, "message": "ok", "data": data})
        .to_string()
}

impl Platform {
    pub fn start() -> Platform {
        let sessions: Arc<Mutex<HashMap<String, Session>>> = Arc::default();
        let fail_verify = Arc::new(AtomicUsize::new(0));
        let counter = AtomicUsize::new(0);
        let (s, f) = (sessions.clone(), fail_verify.clone());
        let server = Server::start(move |_, req| {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            match req.path.as_str() {
                "/flash/opt/verify" => {
                    if f.load(Ordering::SeqCst) > 0 {
                        f.fetch_sub(1, Ordering::SeqCst);
                        return Reply::json(
                            200,
                            r#"{"code":"200002","success":false,"message":"unknown ftId"}"#,
                        );
                    }
                    let code = body["code"].as_str().unwrap_or("1234").to_owned();
                    let token = format!("{:032x}", counter.fetch_add(1, Ordering::SeqCst) + 1);
                    s.lock().unwrap().insert(
                        token.clone(),
                        Session {
                            code: code.clone(),
                            status: "0",
                            mobile: None,
                        },
                    );
                    Reply::json(
                        200,
                        &envelope(serde_json::json!({
                            "url": format!("http://127.0.0.1/redirect/{token}"),
                            "ftToken": token,
                            "messageId": "1",
                            "code": code,
                        })),
                    )
                }
                "/flash/opt/query" => {
                    let token = body["ftToken"].as_str().unwrap();
                    match s.lock().unwrap().get(token) {
                        Some(sess) => Reply::json(
                            200,
                            &envelope(serde_json::json!({
                                "status": sess.status,
                                "mobile": sess.mobile,
                                "code": sess.code,
                                "sender": "1008611",
                            })),
                        ),
                        None => Reply::json(
                            200,
                            r#"{"code":"300001","success":false,"message":"unknown ftToken"}"#,
                        ),
                    }
                }
                other => panic!("unexpected path {other}"),
            }
        });
        Platform {
            server,
            sessions,
            fail_verify,
        }
    }

    pub fn client(&self) -> fotp::Client {
        crate::support::client_for(&self.server, |b| b.retries(0))
    }

    /// The next `n` verify requests fail with an API error.
    pub fn fail_next_verifies(&self, n: usize) {
        self.fail_verify.store(n, Ordering::SeqCst);
    }

    /// What the user's SMS does: the session becomes success (or failed) for `mobile`.
    pub fn finish(&self, token: &str, status: &'static str, mobile: &str) {
        let mut s = self.sessions.lock().unwrap();
        let sess = s.get_mut(token).expect("known token");
        sess.status = status;
        sess.mobile = Some(mobile.to_owned());
    }

    pub fn session(&self, token: &str) -> Option<Session> {
        self.sessions.lock().unwrap().get(token).cloned()
    }

    pub fn count(&self, path: &str) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    /// The callback the platform would push for `token`.
    pub fn callback_body(&self, token: &str, mobile: &str) -> Vec<u8> {
        let sess = self.session(token).expect("known token");
        serde_json::json!({
            "mobile": mobile,
            "sender": "1008611",
            "sendTime": "2025-05-15 11:23:34",
            "code": sess.code,
            "content": format!("Your code: {}", sess.code),
        })
        .to_string()
        .into_bytes()
    }
}

/// A private `redis-server` on an ephemeral loopback port, killed on drop.
pub struct Redis {
    child: Child,
    pub port: u16,
    /// Its working directory (where `restart` keeps the data), removed on drop.
    dir: std::path::PathBuf,
}

static DIRS: AtomicUsize = AtomicUsize::new(0);

impl Redis {
    /// Starts a server, or returns `None` (after saying so loudly) when the binary is missing
    /// and `FOTP_REQUIRE_REDIS` is not set; with it set, a missing binary fails the test.
    pub fn start() -> Option<Redis> {
        let dir = std::env::temp_dir().join(format!(
            "fotp-redis-{}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for _ in 0..5 {
            // The port is free now; another process could take it before redis binds it, in
            // which case redis exits and we try another.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            match spawn_redis(port, &dir) {
                Spawn::Ready(child) => return Some(Redis { child, port, dir }),
                Spawn::Missing => return None,
                Spawn::Failed => {}
            }
        }
        panic!("redis-server did not start on any of 5 ports");
    }

    #[cfg(feature = "redis")]
    /// Restarts the server on the same port with the same data (saved on shutdown): every
    /// connection to it dies, nothing stored is lost.
    pub fn restart(&mut self) {
        let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").arg("SAVE").query(&mut self.con());
        let _ = self.child.wait();
        for _ in 0..50 {
            if let Spawn::Ready(child) = spawn_redis(self.port, &self.dir) {
                self.child = child;
                return;
            }
            // The port may linger for a moment after the old server exits.
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis-server did not restart on port {}", self.port);
    }

    #[cfg(feature = "redis")]
    /// The number of client connections the server has (this call's own included).
    pub fn clients(&self) -> usize {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query(&mut self.con())
            .unwrap();
        list.lines().filter(|l| !l.trim().is_empty()).count()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    #[cfg(feature = "redis")]
    pub fn con(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// Kills the server now (for failure tests).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

enum Spawn {
    Ready(Child),
    Missing,
    Failed,
}

fn spawn_redis(port: u16, dir: &std::path::Path) -> Spawn {
    let spawned = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .args(["--loglevel", "notice", "--maxclients", "10000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::env::var_os("FOTP_REQUIRE_REDIS").is_some() {
                panic!("FOTP_REQUIRE_REDIS is set but redis-server is not installed");
            }
            eprintln!(
                "\n*** SKIPPED: redis-server is not installed (apt-get install \
                 redis-server); set FOTP_REQUIRE_REDIS=1 to make this a failure ***\n"
            );
            return Spawn::Missing;
        }
        Err(e) => panic!("cannot start redis-server: {e}"),
    };
    // Ready when it says so (an event, not a guess); EOF means it exited.
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("Ready to accept connections"));
    if ready {
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        return Spawn::Ready(child);
    }
    let _ = child.kill();
    let _ = child.wait();
    Spawn::Failed
}

/// Polls `f` until it holds or `limit` passes; for states with no event to wait on (a key's
/// expiry, a client blocking inside Redis).
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends every stdout line of a child to a channel (and so keeps its pipe drained).
pub fn lines_of(out: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
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
pub fn line_with(rx: &std::sync::mpsc::Receiver<String>, prefix: &str, limit: Duration) -> String {
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
