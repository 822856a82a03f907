//! The `fotp` binary: every command, its output and its exit status.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_fotp");

/// The binary with a clean environment (no FOTP_* leaking in from the caller).
fn fotp(envs: &[(&str, &str)]) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear();
    for (k, v) in envs {
        c.env(k, v);
    }
    c.stdin(Stdio::null());
    c
}

fn sandbox_env(env: &Env) -> Vec<(&'static str, String)> {
    vec![
        ("FOTP_BASE_URL", env.base()),
        ("FOTP_APP_ID", "sandbox".into()),
        ("FOTP_APP_SECRET", SECRET.into()),
    ]
}

fn run(env: &[(&str, String)], args: &[&str]) -> Output {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fotp(&pairs).args(args).output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

fn json_out(o: &Output) -> Value {
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    assert_eq!(
        text.trim().lines().count(),
        1,
        "one JSON object on stdout: {text}"
    );
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn error_of(o: &Output) -> Value {
    let v = json_out(o);
    let e = v["error"].clone();
    assert!(e["kind"].is_string() && e["message"].is_string(), "{v}");
    assert!(
        e.get("apiCode").is_some(),
        "apiCode key always present: {v}"
    );
    e
}

#[test]
fn verify_query_wait_with_json() {
    let env = Env::default();
    let vars = sandbox_env(&env);
    let o = run(&vars, &["verify", "--ft-id", "2", "--json"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let v = json_out(&o);
    for k in ["url", "ftToken", "messageId", "code"] {
        assert!(v[k].is_string(), "{k} in {v}");
    }
    let token = v["ftToken"].as_str().unwrap();
    let code_ = v["code"].as_str().unwrap();

    let o = run(&vars, &["query", token, "--json"]);
    assert_eq!(code(&o), 0);
    assert_eq!(json_out(&o)["status"], "0");

    // wait runs out on a processing session: time-out, exit 3.
    let o = run(&vars, &["wait", token, "--timeout", "0.5", "--json"]);
    assert_eq!(code(&o), 3);
    assert_eq!(error_of(&o)["kind"], "timeout");
    assert!(
        o.stderr.is_empty(),
        "no spinner when stderr is not a terminal"
    );

    env.uplink(uplink_body(token, code_));
    let o = run(&vars, &["wait", token, "--json"]);
    assert_eq!(code(&o), 0);
    let r = json_out(&o);
    assert_eq!(r["status"], "2");
    assert_eq!(r["mobile"], "8613800138000");
    assert_eq!(r["sender"], "1008611");
    assert_eq!(r["code"], code_);
    assert!(r["sendTime"].is_string() && r["deliverTime"].is_string());

    let o = run(&vars, &["query", token]);
    assert_eq!(code(&o), 0);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("success (2)") && text.contains("8613800138000"),
        "{text}"
    );
}

#[test]
fn wait_shows_a_countdown_only_on_a_terminal() {
    let env = Env::default();
    let vars = sandbox_env(&env);
    let v = json_out(&run(&vars, &["verify", "--ft-id", "2", "--json"]));
    let token = v["ftToken"].as_str().unwrap();
    // `script` (util-linux, always on Debian) gives the command a pseudo-terminal.
    let cmd = format!("{BIN} wait {token} --timeout 0.5");
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut c = Command::new("script");
    c.env_clear()
        .envs(pairs)
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null());
    let o = c
        .output()
        .expect("the `script` tool (util-linux) is needed");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("waiting for the user's SMS"), "{text}");
    assert!(text.contains("s left"), "{text}");
    assert_eq!(code(&o), 3, "{text}");
}

#[test]
fn failed_verification_exits_1() {
    let env = Env::default();
    let vars = sandbox_env(&env);
    let v = json_out(&run(
        &vars,
        &[
            "verify",
            "--ft-id",
            "2",
            "--code",
            "1234",
            "--validity",
            "2",
            "--json",
        ],
    ));
    assert_eq!(v["code"], "1234");
    let token = v["ftToken"].as_str().unwrap();
    env.uplink(uplink_body(token, "4321"));
    let o = run(&vars, &["wait", token, "--json"]);
    assert_eq!(code(&o), 1);
    assert_eq!(json_out(&o)["status"], "1");
    let o = run(&vars, &["query", token, "--json"]);
    assert_eq!(code(&o), 1);
    assert_eq!(json_out(&o)["status"], "1");
}

#[test]
fn flags_win_over_env_and_go_before_or_after_the_command() {
    let env = Env::default();
    let wrong = vec![
        ("FOTP_BASE_URL", "http://127.0.0.1:9".to_string()),
        ("FOTP_APP_ID", "sandbox".into()),
        ("FOTP_APP_SECRET", "wrong".into()),
    ];
    let base = env.base();
    let o = run(
        &wrong,
        &[
            "--base-url",
            &base,
            "--app-secret",
            SECRET,
            "verify",
            "--ft-id",
            "2",
            "--json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    let o = run(
        &wrong,
        &[
            "verify",
            "--ft-id",
            "2",
            "--json",
            "--base-url",
            &base,
            "--app-secret",
            SECRET,
        ],
    );
    assert_eq!(code(&o), 0);
    // Only flags, no environment at all.
    let o = run(
        &[],
        &[
            "verify",
            "--ft-id",
            "2",
            "--base-url",
            &base,
            "--app-id",
            "sandbox",
            "--app-secret",
            SECRET,
        ],
    );
    assert_eq!(code(&o), 0);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.starts_with("url:"), "{text}");
    // The environment's wrong secret: the sandbox refuses, exit 1 with its code.
    let o = run(
        &wrong,
        &["verify", "--ft-id", "2", "--json", "--base-url", &base],
    );
    assert_eq!(code(&o), 1);
    let e = error_of(&o);
    assert_eq!(
        (e["kind"].as_str(), e["apiCode"].as_str()),
        (Some("api"), Some("100001"))
    );
    assert!(
        !o.stdout.windows(5).any(|w| w == b"wrong"),
        "the secret is never printed"
    );
}

#[test]
fn error_exit_statuses() {
    let env = Env::default();
    let vars = sandbox_env(&env);
    // Invalid input: 2.
    let o = run(&vars, &["verify", "--ft-id", "2", "--code", "12", "--json"]);
    assert_eq!(code(&o), 2);
    let e = error_of(&o);
    assert_eq!(e["kind"], "invalid_argument");
    assert!(e["message"].as_str().unwrap().contains("code"));
    assert_eq!(e["apiCode"], Value::Null);
    let o = run(
        &vars,
        &["verify", "--ft-id", "2", "--validity", "11", "--json"],
    );
    assert_eq!(
        (code(&o), error_of(&o)["kind"].as_str()),
        (2, Some("invalid_argument"))
    );
    let o = run(&vars, &["wait", "a b", "--json"]);
    assert_eq!(code(&o), 2);
    // Config: 2.
    let o = run(&[], &["query", "abc", "--json"]);
    assert_eq!(code(&o), 2);
    assert_eq!(error_of(&o)["kind"], "config");
    let insecure = vec![
        ("FOTP_BASE_URL", "http://example.com".to_string()),
        ("FOTP_APP_ID", "a".into()),
        ("FOTP_APP_SECRET", "b".into()),
    ];
    let o = run(&insecure, &["query", "abc", "--json"]);
    assert_eq!(
        (code(&o), error_of(&o)["kind"].as_str()),
        (2, Some("config"))
    );
    let o = run(&[("FOTP_TIMEOUT_MS", "soon".into())], &["query", "abc"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("FOTP_TIMEOUT_MS"));
    // API answers: 1.
    let o = run(&vars, &["verify", "--ft-id", "404", "--json"]);
    assert_eq!(code(&o), 1);
    let e = error_of(&o);
    assert_eq!(
        (e["kind"].as_str(), e["apiCode"].as_str()),
        (Some("api"), Some("200002"))
    );
    let o = run(&vars, &["query", "0123456789abcdef0123456789abcdef"]);
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("300001"));
    // Network: 3 (a port where nothing listens).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = vec![
        ("FOTP_BASE_URL", format!("http://{closed}")),
        ("FOTP_APP_ID", "sandbox".into()),
        ("FOTP_APP_SECRET", SECRET.into()),
        ("FOTP_RETRIES", "0".into()),
    ];
    let o = run(&down, &["verify", "--ft-id", "2", "--json"]);
    assert_eq!(code(&o), 3);
    assert_eq!(error_of(&o)["kind"], "network");
}

#[test]
fn usage_errors_and_help() {
    for args in [
        &["--help"][..],
        &["verify", "--help"],
        &["query", "--help"],
        &["wait", "--help"],
        &["parse-callback", "--help"],
        &["sandbox", "--help"],
        &["demo", "--help"],
        &["--version"],
    ] {
        let o = run(&[], args);
        assert_eq!(code(&o), 0, "{args:?}");
        assert!(!o.stdout.is_empty(), "{args:?}");
    }
    let o = run(&[], &["verify", "--help"]);
    let help = String::from_utf8(o.stdout).unwrap();
    for flag in [
        "--ft-id",
        "--code",
        "--validity",
        "--json",
        "--qr",
        "--base-url",
        "--app-id",
        "--app-secret",
    ] {
        assert!(help.contains(flag), "{flag} in verify --help");
    }
    let o = run(&[], &["sandbox", "--help"]);
    let help = String::from_utf8(o.stdout).unwrap();
    for flag in [
        "--addr",
        "--template",
        "--sender",
        "--app-id",
        "--app-secret",
        "--app-secret-file",
        "--public-host",
        "--public-url",
        "--control-token-file",
        "--max-nonces",
    ] {
        assert!(help.contains(flag), "{flag} in sandbox --help");
    }
    assert_eq!(code(&run(&[], &[])), 2);
    assert_eq!(code(&run(&[], &["frobnicate"])), 2);
    assert_eq!(code(&run(&[], &["verify"])), 2, "--ft-id is required");
    assert_eq!(code(&run(&[], &["wait", "t", "--timeout", "-1"])), 2);
    let o = run(&[], &["verify", "--json"]);
    assert_eq!(code(&o), 2);
    assert_eq!(error_of(&o)["kind"], "invalid_argument");
}

#[test]
fn parse_callback_from_file_and_stdin() {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/callback.json");
    let o = run(&[], &["parse-callback", seed, "--json"]);
    assert_eq!(code(&o), 0);
    let cb = json_out(&o);
    assert_eq!(cb["mobile"], "8615711666132");
    assert_eq!(cb["sendTime"], "2025-05-15 11:23:34");
    assert_eq!(cb["code"], "5776");
    assert_eq!(cb["deliverTime"], "2025-05-15 11:24:24");
    assert!(cb["content"].as_str().unwrap().contains("5776"));
    let o = run(&[], &["parse-callback", seed]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("mobile:") && text.contains("8615711666132"),
        "{text}"
    );

    let stdin = |args: &[&str], input: &[u8]| with_stdin(&[], args, input);
    let body =
        br#"{"mobile":8613800000000,"sender":"1008611","sendTime":"t","code":"1234","err":"late"}"#;
    let o = stdin(&["parse-callback", "--json"], body);
    assert_eq!(code(&o), 0);
    let cb = json_out(&o);
    assert_eq!(
        (cb["mobile"].as_str(), cb["err"].as_str()),
        (Some("8613800000000"), Some("late"))
    );
    assert_eq!(code(&stdin(&["parse-callback", "-"], body)), 0);

    let o = stdin(
        &["parse-callback", "--json"],
        br#"{"mobile":"1","sender":true}"#,
    );
    assert_eq!(code(&o), 1);
    let e = error_of(&o);
    assert_eq!(e["kind"], "decode");
    assert!(e["message"].as_str().unwrap().contains("sender"));
    let big = vec![b' '; fotp::MAX_CALLBACK_BYTES + 10];
    let o = stdin(&["parse-callback", "--json"], &big);
    assert_eq!(
        (code(&o), error_of(&o)["kind"].as_str()),
        (1, Some("decode"))
    );

    let o = run(&[], &["parse-callback", "/nonexistent/cb.json", "--json"]);
    assert_eq!(code(&o), 2);
    assert!(error_of(&o)["message"]
        .as_str()
        .unwrap()
        .contains("/nonexistent/cb.json"));
}

#[test]
fn verify_qr_draws_the_link() {
    let env = Env::default();
    let vars = sandbox_env(&env);
    let o = run(&vars, &["verify", "--ft-id", "2", "--qr"]);
    assert_eq!(code(&o), 0);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains('█') && text.contains('▀'), "{text}");
    // With --json the QR goes to stderr and stdout stays one JSON object.
    let o = run(&vars, &["verify", "--ft-id", "2", "--qr", "--json"]);
    assert_eq!(code(&o), 0);
    json_out(&o);
    assert!(String::from_utf8(o.stderr).unwrap().contains('█'));
}

#[test]
fn sandbox_binary_prints_its_settings_first_and_stops_on_sigterm() {
    let mut child = fotp(&[])
        .args([
            "sandbox",
            "--addr",
            "127.0.0.1:0",
            "--app-id",
            "tester",
            "--app-secret",
            "s3cr3t-value",
            "--template",
            "5=http://127.0.0.1:9/cb",
            "--sender",
            "10010",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(lines.next().unwrap().unwrap());
    }
    let base = first[0]
        .strip_prefix("FOTP_BASE_URL=http://127.0.0.1:")
        .map(|p| format!("http://127.0.0.1:{p}"));
    let base = base.unwrap_or_else(|| panic!("first line: {}", first[0]));
    assert_eq!(first[1], "FOTP_APP_ID=tester");
    assert_eq!(first[2], "FOTP_APP_SECRET=s3cr3t-value");

    let vars = vec![
        ("FOTP_BASE_URL", base.clone()),
        ("FOTP_APP_ID", "tester".to_string()),
        ("FOTP_APP_SECRET", "s3cr3t-value".into()),
    ];
    let v = json_out(&run(&vars, &["verify", "--ft-id", "5", "--json"]));
    let (_, page) = get(v["url"].as_str().unwrap());
    assert!(page.contains("10010"), "the sender flag is used");
    let o = run(&vars, &["verify", "--ft-id", "2", "--json"]);
    assert_eq!(code(&o), 0, "template 2 always exists");

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "clean exit on SIGTERM");
    let log: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(log.iter().any(|l| l.contains("verify ftId=5")), "{log:?}");
    // One line per request served: method, path, status, time.
    for served in [
        "POST /flash/opt/verify -> 200 in ",
        "GET /flash/opt/redirect/",
    ] {
        assert!(log.iter().any(|l| l.contains(served)), "{served}: {log:?}");
    }
    assert!(
        !log.iter().any(|l| l.contains("s3cr3t-value")),
        "the secret is never logged: {log:?}"
    );
}

#[test]
fn sandbox_keeps_serving_when_nobody_reads_its_log() {
    let mut child = fotp(&[])
        .args(["sandbox", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("FOTP_BASE_URL=")
        .unwrap()
        .to_owned();
    // Well over a pipe's 64 KiB of log lines, none of them read.
    let c = client(&base);
    for _ in 0..1500 {
        c.verify(&fotp::VerifyRequest::new("2")).unwrap();
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn sandbox_binary_rejects_bad_options() {
    for args in [
        &["sandbox", "--template", "=http://x"][..],
        &["sandbox", "--template", "2=ftp://x"],
        &["sandbox", "--addr", "nowhere"],
        &["sandbox", "--callback-attempts", "2"],
        &["sandbox", "--max-sessions", "0"],
    ] {
        let o = run(&[], args);
        assert_eq!(
            code(&o),
            2,
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // A port in use: a clear error, not a panic.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let o = run(&[], &["sandbox", "--addr", &addr]);
    assert_eq!(code(&o), 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains(&addr));
}

#[test]
fn demo_runs_the_whole_flow() {
    let mut child = fotp(&[])
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The demo bounds itself (15 s per step); this only keeps a broken build from hanging CI.
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stdout), &mut s);
        let _ = tx.send(s);
    });
    let out = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("demo finishes");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{out}");
    for needle in [
        "/flash/opt/redirect/",
        "callback",
        "confirmed",
        "status 2",
        "Done",
    ] {
        assert!(out.contains(needle), "{needle} in {out}");
    }
    // The tracker matches the first delivery and recognises the second.
    assert_eq!(
        out.matches("tracker   matched to ftToken").count(),
        1,
        "{out}"
    );
    assert_eq!(out.matches("a repeated delivery").count(), 1, "{out}");
    assert!(!out.contains('✗'), "{out}");
}

fn temp_file(name: &str, content: &[u8]) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("fotp-cli-{}-{name}", std::process::id()));
    std::fs::write(&p, content).unwrap();
    p
}

fn with_stdin(envs: &[(&str, String)], args: &[&str], input: &[u8]) -> Output {
    let pairs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut child = fotp(&pairs)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn app_secret_from_a_file_or_stdin_and_a_warning_for_argv() {
    let env = Env::default();
    let base = env.base();
    let only_url = vec![
        ("FOTP_BASE_URL", base.clone()),
        ("FOTP_APP_ID", "sandbox".to_string()),
    ];
    let file = temp_file("secret", format!("{SECRET}\n").as_bytes());
    let path = file.to_str().unwrap();
    let o = run(
        &only_url,
        &[
            "verify",
            "--ft-id",
            "2",
            "--json",
            "--app-secret-file",
            path,
        ],
    );
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    json_out(&o);
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let o = with_stdin(
        &only_url,
        &["--app-secret-file", "-", "verify", "--ft-id", "2", "--json"],
        format!("{SECRET}\r\n").as_bytes(),
    );
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    assert!(o.stderr.is_empty());

    // The secret read is the one used: a wrong one is refused by the sandbox.
    let wrong = temp_file("wrong", b"not-the-secret");
    let o = run(
        &only_url,
        &[
            "verify",
            "--ft-id",
            "2",
            "--json",
            "--app-secret-file",
            wrong.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 1);
    assert_eq!(error_of(&o)["apiCode"], "100001");

    // Unusable files: exit 2, the path named, the content never shown.
    let empty = temp_file("empty", b"\n");
    let binary = temp_file("binary", b"\xff\xfe-MARK");
    for (p, why) in [
        ("/nonexistent/secret", "/nonexistent/secret"),
        (empty.to_str().unwrap(), "empty"),
        (binary.to_str().unwrap(), "UTF-8"),
    ] {
        let o = run(
            &only_url,
            &["verify", "--ft-id", "2", "--json", "--app-secret-file", p],
        );
        assert_eq!(code(&o), 2, "{p}");
        let e = error_of(&o);
        let msg = e["message"].as_str().unwrap();
        assert!(
            msg.contains(why) && msg.contains("--app-secret-file"),
            "{msg}"
        );
        assert!(!msg.contains("MARK"), "{msg}");
    }
    let o = run(
        &only_url,
        &[
            "verify",
            "--ft-id",
            "2",
            "--app-secret",
            SECRET,
            "--app-secret-file",
            path,
        ],
    );
    assert_eq!(code(&o), 2, "one or the other");

    // On the command line it still works, with a warning on stderr (stdout stays JSON).
    let o = run(
        &only_url,
        &["verify", "--ft-id", "2", "--json", "--app-secret", SECRET],
    );
    assert_eq!(code(&o), 0);
    json_out(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning") && err.contains("--app-secret-file") && !err.contains(SECRET),
        "{err}"
    );
    for f in [file, wrong, empty, binary] {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn sandbox_reads_its_secret_and_control_token_from_files() {
    let token_file = temp_file("control", b"ctl-token-1\n");
    let mut child = fotp(&[])
        .args([
            "sandbox",
            "--addr",
            "127.0.0.1:0",
            "--quiet",
            "--app-secret-file",
            "-",
            "--control-token-file",
            token_file.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from-stdin-secret\n")
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = lines.next().unwrap().unwrap();
    let base = base.strip_prefix("FOTP_BASE_URL=").unwrap().to_owned();
    lines.next();
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "FOTP_APP_SECRET=from-stdin-secret"
    );
    let vars = vec![
        ("FOTP_BASE_URL", base.clone()),
        ("FOTP_APP_ID", "sandbox".to_string()),
        ("FOTP_APP_SECRET", "from-stdin-secret".into()),
    ];
    assert_eq!(code(&run(&vars, &["verify", "--ft-id", "2", "--json"])), 0);
    let sessions = format!("{base}/sandbox/sessions");
    assert_eq!(get(&sessions).0, 401);
    let mut r = agent()
        .get(&sessions)
        .header("Authorization", "Bearer ctl-token-1")
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.body_mut().read_to_string().unwrap().contains("ftToken"));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.stderr.is_empty(),
        "no argv warning: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(token_file);

    let o = run(
        &[],
        &[
            "sandbox",
            "--app-secret-file",
            "-",
            "--control-token-file",
            "-",
        ],
    );
    assert_eq!(code(&o), 2, "stdin can feed only one of them");
    let o = run(&[], &["sandbox", "--public-host", "phone.local:80"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--public-host"));
    let o = run(&[], &["sandbox", "--max-nonces", "0"]);
    assert_eq!(code(&o), 2);
}

/// A callback (or a server) can carry terminal escapes: `ESC]0;title BEL` retitles the
/// terminal, `ESC[2J` clears it. Human output shows them escaped; JSON keeps them exact.
#[test]
fn control_characters_are_escaped_in_human_output_only() {
    let hostile = "code 1234 \u{1b}]0;pwned\u{7}\u{1b}[2J\r\u{9b}31m\u{202e}gnp.exe";
    let body = serde_json::json!({
        "mobile": "8613800138000", "sender": "1008611", "sendTime": "t\u{1b}[1A",
        "code": "1234", "content": hostile, "err": "late\u{7}"
    })
    .to_string();
    let o = with_stdin(&[], &["parse-callback"], body.as_bytes());
    assert_eq!(code(&o), 0);
    let text = String::from_utf8(o.stdout).unwrap();
    for raw in ['\u{1b}', '\u{7}', '\r', '\u{9b}', '\u{202e}'] {
        assert!(
            !text.contains(raw),
            "{raw:?} reached the terminal: {text:?}"
        );
    }
    assert!(
        text.contains("code 1234 \\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{d}\\u{9b}31m\\u{202e}gnp.exe"),
        "{text}"
    );
    assert!(
        text.contains("t\\u{1b}[1A") && text.contains("late\\u{7}"),
        "{text}"
    );

    let o = with_stdin(&[], &["parse-callback", "--json"], body.as_bytes());
    assert_eq!(code(&o), 0);
    let cb = json_out(&o);
    assert_eq!(cb["content"], hostile);
    assert_eq!(cb["sendTime"], "t\u{1b}[1A");
    assert_eq!(cb["err"], "late\u{7}");
    assert!(!o.stdout.contains(&0x1b), "JSON escapes them itself");

    // Multi-line content keeps its lines.
    let two = serde_json::json!({"mobile":"1","sender":"2","sendTime":"t","code":"1234",
        "content":"line one\nline two"})
    .to_string();
    let text =
        String::from_utf8(with_stdin(&[], &["parse-callback"], two.as_bytes()).stdout).unwrap();
    assert!(text.contains("line one\n              line two"), "{text}");
}

/// A platform (or anything at the base URL) answering with terminal escapes: in query
/// results and in error messages.
#[test]
fn server_strings_are_escaped_in_human_output() {
    use axum::routing::post;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route(
            "/flash/opt/query",
            post(|| async {
                axum::Json(
                    serde_json::json!({"code": "000000", "success": true, "message": "ok",
                    "data": {"status": "2", "mobile": "\u{1b}[2J8613800138000", "sender": "1008611",
                             "code": "1234", "sendTime": "t", "deliverTime": "\u{1b}]0;x\u{7}"}}),
                )
            }),
        )
        .route(
            "/flash/opt/verify",
            post(|| async {
                axum::Json(serde_json::json!({"code": "999999", "success": false,
                    "message": "denied \u{1b}]0;pwned\u{7}\u{1b}[2J", "data": null}))
            }),
        );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    let vars = vec![
        ("FOTP_BASE_URL", base),
        ("FOTP_APP_ID", "sandbox".to_string()),
        ("FOTP_APP_SECRET", SECRET.into()),
    ];
    let o = run(&vars, &["query", "abc"]);
    assert_eq!(code(&o), 0);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.contains("\\u{1b}[2J8613800138000"), "{text}");
    let o = run(&vars, &["query", "abc", "--json"]);
    assert_eq!(json_out(&o)["mobile"], "\u{1b}[2J8613800138000");

    let o = run(&vars, &["verify", "--ft-id", "2"]);
    assert_eq!(code(&o), 1);
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    assert!(err.contains("denied \\u{1b}]0;pwned\\u{7}"), "{err}");
    let o = run(&vars, &["verify", "--ft-id", "2", "--json"]);
    assert_eq!(
        error_of(&o)["message"]
            .as_str()
            .map(|m| m.contains("\u{1b}]0;pwned\u{7}")),
        Some(true)
    );
}
