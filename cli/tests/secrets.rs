//! The app secret and the token never appear in anything the command line prints, whatever
//! goes wrong.

mod common;

use std::process::{Command, Output, Stdio};

use common::Env;

const BIN: &str = env!("CARGO_BIN_EXE_fotp");
const SECRET: &str = "Zq9-app-secret-MARKER";
const TOKEN: &str = "Tk7-auth-token-MARKER";

fn run(envs: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(BIN)
        .env_clear()
        .envs(envs.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn assert_clean(o: &Output, what: &str) {
    let all = [o.stdout.as_slice(), o.stderr.as_slice()].concat();
    let text = String::from_utf8_lossy(&all);
    assert!(
        !text.contains("MARKER"),
        "{what}: a secret leaked into the output: {text}"
    );
    assert_ne!(
        o.status.code(),
        Some(0),
        "{what} should have failed: {text}"
    );
}

#[test]
fn no_secret_in_any_output() {
    let env = Env::default();
    let base = env.base();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let hmac = |url: &str| -> Vec<(&'static str, String)> {
        vec![
            ("FOTP_BASE_URL", url.to_string()),
            ("FOTP_APP_ID", "sandbox".into()),
            ("FOTP_APP_SECRET", SECRET.into()),
            ("FOTP_RETRIES", "0".into()),
        ]
    };
    let token = |url: &str| -> Vec<(&'static str, String)> {
        vec![
            ("FOTP_BASE_URL", url.to_string()),
            ("FOTP_AUTH", "token".into()),
            ("FOTP_APP_KEY", "key".into()),
            ("FOTP_TOKEN", TOKEN.into()),
            ("FOTP_RETRIES", "0".into()),
        ]
    };
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "refused signature",
            hmac(&base),
            vec!["verify", "--ft-id", "2"],
        ),
        (
            "refused signature, json",
            hmac(&base),
            vec!["verify", "--ft-id", "2", "--json"],
        ),
        (
            "refused token",
            token(&base),
            vec!["verify", "--ft-id", "2", "--json"],
        ),
        (
            "query refused",
            hmac(&base),
            vec!["query", "0123456789abcdef0123456789abcdef"],
        ),
        (
            "network error",
            hmac(&closed),
            vec!["verify", "--ft-id", "2"],
        ),
        (
            "network error, token",
            token(&closed),
            vec!["query", "abc", "--json"],
        ),
        (
            "wait times out",
            hmac(&closed),
            vec!["wait", "abc", "--timeout", "0.3"],
        ),
        (
            "insecure URL",
            hmac("http://example.com"),
            vec!["verify", "--ft-id", "2"],
        ),
        (
            "insecure URL, token",
            token("http://example.com"),
            vec!["verify", "--ft-id", "2", "--json"],
        ),
        (
            "invalid input",
            hmac(&base),
            vec!["verify", "--ft-id", "2", "--code", "1"],
        ),
    ];
    for (what, vars, args) in cases {
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_clean(&run(&pairs, &args), what);
    }
    // Flags are treated like the environment.
    let o = run(
        &[],
        &[
            "--base-url",
            &base,
            "--app-id",
            "sandbox",
            "--app-secret",
            SECRET,
            "verify",
            "--ft-id",
            "2",
        ],
    );
    assert_clean(&o, "secret given as a flag");
}

#[test]
fn pages_with_codes_stay_out_of_caches_and_referrers() {
    let env = Env::default();
    let v = env.client().verify(&fotp::VerifyRequest::new("2")).unwrap();
    for url in [v.url.clone(), format!("{}/", env.base())] {
        let r = common::agent().get(&url).call().unwrap();
        let h = r.headers();
        // Never to other sites; same-origin keeps the phone form's Origin checkable.
        assert_eq!(h.get("referrer-policy").unwrap(), "same-origin", "{url}");
        assert_eq!(h.get("cache-control").unwrap(), "no-store", "{url}");
    }
}
