//! Helpers shared by the integration tests: an in-process sandbox, a callback receiver and
//! raw HTTP requests.
#![allow(dead_code)]

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use fotp_cli::sandbox::{Options, Sandbox, Template};
use serde_json::{json, Value};

pub const SECRET: &str = "sandbox-secret";

pub struct Env {
    pub rt: tokio::runtime::Runtime,
    pub sandbox: Sandbox,
}

impl Env {
    pub fn start(options: Options) -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sandbox = rt.block_on(Sandbox::start(options)).unwrap();
        Env { rt, sandbox }
    }

    pub fn default() -> Env {
        Env::start(Options::default())
    }

    pub fn base(&self) -> String {
        self.sandbox.base_url().to_owned()
    }

    pub fn client(&self) -> fotp::Client {
        client(&self.base())
    }

    /// The session of `token` from `/sandbox/sessions`.
    pub fn session(&self, token: &str) -> Value {
        let doc = get_json(&format!("{}/sandbox/sessions", self.base()));
        doc["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["ftToken"] == token)
            .cloned()
            .unwrap_or_else(|| panic!("no session {token} in {doc}"))
    }

    /// Polls `/sandbox/sessions` until `cond` holds for the session (the sandbox records a
    /// callback attempt just after the receiver answered, so there is no event to await).
    pub fn wait_session(&self, token: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.session(token);
            if cond(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "condition never held: {s}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn uplink(&self, body: Value) -> Value {
        post_json(&format!("{}/sandbox/uplink", self.base()), &body)
    }
}

pub fn client(base: &str) -> fotp::Client {
    fotp::Client::new(
        fotp::Config::builder(base)
            .hmac_auth("sandbox", SECRET)
            .poll_interval(Duration::from_millis(50))
            .build()
            .unwrap(),
    )
    .unwrap()
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

pub fn get(url: &str) -> (u16, String) {
    let mut r = agent().get(url).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

pub fn get_json(url: &str) -> Value {
    let (status, body) = get(url);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

pub fn post_json(url: &str, body: &Value) -> Value {
    let mut r = agent()
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
}

/// A request signed by hand, with the given headers' values.
pub struct Raw<'a> {
    pub app_id: &'a str,
    pub secret: &'a str,
    pub timestamp: String,
    pub nonce: String,
    pub sign: Option<String>,
}

impl Raw<'_> {
    pub fn fresh() -> Raw<'static> {
        Raw {
            app_id: "sandbox",
            secret: SECRET,
            timestamp: fotp::__internals::now_millis().to_string(),
            nonce: fotp::__internals::new_nonce().unwrap(),
            sign: None,
        }
    }

    /// POSTs `body` to `base + path` and returns the HTTP status and the envelope.
    pub fn post(&self, base: &str, path: &str, body: &str) -> (u16, Value) {
        let sign = self.sign.clone().unwrap_or_else(|| {
            fotp::__internals::hmac_sha256_sign(
                self.secret.as_bytes(),
                self.app_id,
                &self.timestamp,
                &self.nonce,
                body.as_bytes(),
            )
        });
        let mut r = agent()
            .post(format!("{base}{path}"))
            .header("Content-Type", "application/json;charset=utf-8")
            .header("appId", self.app_id)
            .header("timestamp", &self.timestamp)
            .header("nonce", &self.nonce)
            .header("sign", &sign)
            .send(body)
            .unwrap();
        let status = r.status().as_u16();
        (
            status,
            serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap(),
        )
    }
}

/// A callback receiver: answers per attempt number as `answer` says and reports each body.
pub struct Receiver {
    pub url: String,
    pub bodies: mpsc::Receiver<Bytes>,
    pub hits: Arc<Mutex<u32>>,
}

impl Receiver {
    pub fn start(env: &Env, answer: fn(u32) -> (u16, &'static str)) -> Receiver {
        let (tx, rx) = mpsc::channel();
        let hits = Arc::new(Mutex::new(0u32));
        let h = hits.clone();
        let app = Router::new().route(
            "/cb",
            post(move |body: Bytes| {
                let tx = tx.clone();
                let h = h.clone();
                async move {
                    let n = {
                        let mut g = h.lock().unwrap();
                        *g += 1;
                        *g
                    };
                    let _ = tx.send(body);
                    let (status, text) = answer(n);
                    (StatusCode::from_u16(status).unwrap(), text).into_response()
                }
            }),
        );
        let listener = env
            .rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        env.rt.spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url: format!("http://{addr}/cb"),
            bodies: rx,
            hits,
        }
    }

    pub fn next(&self) -> Bytes {
        self.bodies
            .recv_timeout(Duration::from_secs(20))
            .expect("a callback should arrive")
    }
}

/// A sandbox whose template 7 pushes to a receiver answering per `answer`.
pub fn push_env(answer: fn(u32) -> (u16, &'static str), attempts: u32) -> (Env, Receiver) {
    // The receiver needs a runtime before the sandbox knows its URL: start on a bare
    // sandbox's runtime, then start the real sandbox on the same runtime.
    let bare = Env::default();
    let receiver = Receiver::start(&bare, answer);
    let sandbox = bare
        .rt
        .block_on(Sandbox::start(Options {
            templates: vec![Template {
                ft_id: "7".into(),
                callback_url: Some(receiver.url.clone()),
            }],
            callback_attempts: attempts,
            callback_backoff: Duration::from_millis(20),
            ..Options::default()
        }))
        .unwrap();
    let Env { rt, sandbox: old } = bare;
    drop(old);
    (Env { rt, sandbox }, receiver)
}

pub fn ack(_: u32) -> (u16, &'static str) {
    (200, fotp::CALLBACK_ACK)
}

pub fn json_body(v: Value) -> String {
    v.to_string()
}

pub fn uplink_body(token: &str, content: &str) -> Value {
    json!({"ftToken": token, "mobile": "8613800138000", "content": content})
}

/// One HTTP/1.1 request written by hand (any `Host`, any header), over a new connection to
/// `addr`; returns the status, the headers (lower-case names) and the body.
pub fn raw_http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, rest.to_owned())
}
