//! `fotp query` and `fotp wait` against a scripted misbehaving server (a raw HTTP/1.1 server
//! on a thread): a passing outage during wait, and a Retry-After that used to crash the binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_fotp");
const TOKEN: &str = "44cadc6071214b968b3b3bb1cb5a6c24";
const SUCCESS: &str = r#"{"code":"000000","success":true,"message":"ok","data":{"status":"2"}}"#;

/// Serves `answer(n)` (status, extra header lines, body) to the n-th request; returns the base
/// URL and the request counter.
fn serve(answer: fn(usize) -> (u16, &'static str, &'static str)) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                loop {
                    // Request head, then a Content-Length body.
                    let mut length = 0;
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        reader.read_line(&mut line).unwrap();
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    let (status, headers, body) = answer(n);
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{headers}\
                         content-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if (&conn).write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, count)
}

fn fotp(url: &str, args: &[&str]) -> (i32, String, Duration) {
    let start = Instant::now();
    let out = Command::new(BIN)
        .env_clear()
        .env("FOTP_BASE_URL", url)
        .env("FOTP_APP_ID", "a")
        .env("FOTP_APP_SECRET", "s")
        .env("FOTP_TIMEOUT_MS", "2000")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text, start.elapsed())
}

#[test]
fn wait_rides_out_503s_until_success() {
    let (url, count) = serve(|n| {
        if n < 4 {
            (503, "", "busy")
        } else {
            (200, "", SUCCESS)
        }
    });
    let (code, text, took) = fotp(&url, &["wait", TOKEN, "--timeout", "20", "--json"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(r#""status":"2""#), "{text}");
    assert_eq!(count.load(Ordering::SeqCst), 5);
    assert!(took < Duration::from_secs(15), "{took:?}");
}

#[test]
fn huge_retry_after_is_no_crash() {
    // Used to exit 101: "overflow when adding duration to instant".
    let (url, count) = serve(|n| {
        if n == 0 {
            (429, "retry-after: 18446744073709551615\r\n", "slow down")
        } else {
            (200, "", SUCCESS)
        }
    });
    let (code, text, took) = fotp(&url, &["query", TOKEN, "--json"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(count.load(Ordering::SeqCst), 2);
    // The pause is capped at one attempt's limit (FOTP_TIMEOUT_MS=2000).
    assert!(took < Duration::from_secs(6), "{took:?}");
}

/// `fotp -v` / `FOTP_LOG`: the attempts of a query retried after a 503 with `Retry-After: 1`,
/// on stderr; no secret, signature or code.
#[test]
fn verbose_prints_each_attempt_and_the_pause_on_stderr() {
    let answer = |n| {
        if n % 2 == 0 {
            (503, "retry-after: 1\r\n", "busy")
        } else {
            (
                200,
                "",
                r#"{"code":"000000","success":true,"message":"ok","data":{"status":"2","mobile":"6285273203675","code":"5777"}}"#,
            )
        }
    };
    let (url, _) = serve(answer);
    let run = |verbose: Option<&str>, env: Option<&str>| {
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("FOTP_BASE_URL", &url)
            .env("FOTP_APP_ID", "a")
            .env("FOTP_APP_SECRET", "cli-logging-secret")
            .args(verbose)
            .args(["query", TOKEN])
            .stdin(Stdio::null());
        if let Some(level) = env {
            c.env("FOTP_LOG", level);
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    for (flag, env) in [
        (Some("-v"), None),
        (Some("-vv"), None),
        (None, Some("debug")),
    ] {
        let (stdout, stderr) = run(flag, env);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{flag:?} {env:?}: {stderr}");
        assert!(
            lines[0].starts_with(
                "fotp: info fotp::http: query POST /flash/opt/query attempt 1: HTTP 503 in "
            ) && lines[0].ends_with(" ms; retrying in 1000 ms"),
            "{stderr}"
        );
        assert!(
            lines[1].starts_with(
                "fotp: info fotp::http: query POST /flash/opt/query attempt 2: HTTP 200 in "
            ),
            "{stderr}"
        );
        for secret in ["cli-logging-secret", "5777", "6285273203675"] {
            assert!(!stderr.contains(secret), "{secret} in {stderr}");
        }
        assert!(
            !stdout.contains("fotp::http"),
            "events only on stderr: {stdout}"
        );
    }
    // Quiet without them; FOTP_LOG=warn hides the info events.
    assert_eq!(run(None, None).1, "");
    assert_eq!(run(None, Some("warn")).1, "");
    // A bad level is a usage error naming the variable.
    let out = Command::new(BIN)
        .env_clear()
        .env("FOTP_LOG", "loud")
        .args(["query", TOKEN])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FOTP_LOG is \"loud\""));
}
