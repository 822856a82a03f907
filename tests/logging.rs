//! The `log` events of the core (src/logging.rs): a query retried after a 503 with
//! `Retry-After: 1`, tracker settlements and refused callbacks, captured by a `log` logger; no
//! secret, signature, code or full mobile number in any of them.

mod support;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use support::{client_for, query_status, Reply, Server, QUERY_OK};

const TOKEN: &str = "44cadc6071214b968b3b3bb1cb5a6c24";

/// One captured event: level, target, message and fields.
#[derive(Clone, Debug)]
struct Event {
    level: log::Level,
    target: String,
    message: String,
    fields: Vec<(String, String)>,
}

impl Event {
    fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Everything the event shows, for the searches for secrets.
    fn text(&self) -> String {
        let mut s = format!("{} {} {}", self.level, self.target, self.message);
        for (k, v) in &self.fields {
            s.push_str(&format!(" {k}={v}"));
        }
        s
    }
}

struct Capture(Mutex<Vec<Event>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        struct Fields(Vec<(String, String)>);
        impl<'k> log::kv::VisitSource<'k> for Fields {
            fn visit_pair(
                &mut self,
                k: log::kv::Key<'k>,
                v: log::kv::Value<'k>,
            ) -> Result<(), log::kv::Error> {
                self.0.push((k.to_string(), v.to_string()));
                Ok(())
            }
        }
        if !record.target().starts_with("fotp::") {
            return;
        }
        let mut fields = Fields(Vec::new());
        record.key_values().visit(&mut fields).unwrap();
        self.0.lock().unwrap().push(Event {
            level: record.level(),
            target: record.target().to_owned(),
            message: record.args().to_string(),
            fields: fields.0,
        });
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));
/// Tests that change the max level or read events without a client run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn capture() -> &'static Capture {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| log::set_logger(&CAPTURE).unwrap());
    log::set_max_level(log::LevelFilter::Trace);
    &CAPTURE
}

fn events(pred: impl Fn(&Event) -> bool) -> Vec<Event> {
    CAPTURE
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| pred(e))
        .cloned()
        .collect()
}

fn assert_nothing_secret(events: &[Event], forbidden: &[&str]) {
    for e in events {
        let text = e.text();
        for f in forbidden {
            assert!(!text.contains(f), "{f:?} in the event {text}");
        }
    }
}

#[test]
fn a_query_retried_after_503_logs_each_attempt_and_the_pause() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    capture();
    let server = Server::start(|n, _| {
        if n == 0 {
            Reply::Full(503, vec![("retry-after", "1".into())], b"busy".to_vec())
        } else {
            Reply::json(200, QUERY_OK)
        }
    });
    let client = client_for(&server, |b| b.timeout(Duration::from_secs(3)));
    let id = client.log_id().to_string();
    let r = client.query(TOKEN).unwrap();
    let evs = events(|e| e.get("client") == Some(id.as_str()));
    assert_eq!(evs.len(), 2, "{evs:#?}");
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e.target, "fotp::http");
        assert_eq!(e.level, log::Level::Info);
        assert_eq!(e.get("op"), Some("query"));
        assert_eq!(e.get("method"), Some("POST"));
        assert_eq!(e.get("path"), Some("/flash/opt/query"));
        assert_eq!(e.get("attempt"), Some((i + 1).to_string().as_str()));
        assert!(e.get("elapsed_ms").unwrap().parse::<u64>().is_ok());
    }
    assert_eq!(evs[0].get("status"), Some("503"));
    assert_eq!(evs[0].get("retry_in_ms"), Some("1000"));
    assert!(
        evs[0].message.contains("retrying in 1000 ms"),
        "{}",
        evs[0].message
    );
    assert_eq!(evs[1].get("status"), Some("200"));
    assert_eq!(evs[1].get("retry_in_ms"), None);

    // No secret, signature header value, code or full mobile number anywhere.
    let mut forbidden = vec!["sandbox-secret".to_owned()];
    for req in server.requests() {
        for (name, value) in &req.headers {
            if !matches!(
                name.as_str(),
                "content-type" | "accept" | "host" | "user-agent" | "content-length"
            ) {
                forbidden.push(value.to_str().unwrap().to_owned());
            }
        }
    }
    forbidden.push(r.code.clone().unwrap());
    forbidden.push(r.mobile.clone().unwrap());
    let forbidden: Vec<&str> = forbidden.iter().map(String::as_str).collect();
    assert!(
        forbidden.len() >= 4,
        "the signature headers were found: {forbidden:?}"
    );
    assert_nothing_secret(&evs, &forbidden);
}

#[test]
fn verify_logs_its_attempt_and_failures_their_kind() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    capture();
    // Nothing listens there: a network error, not retried for verify... but the connection is
    // refused, so the request surely never arrived: retried like any transient failure.
    let client = fotp::Client::new(
        fotp::Config::builder("http://127.0.0.1:9")
            .hmac_auth("sandbox", "sandbox-secret")
            .retries(1)
            .build()
            .unwrap(),
    )
    .unwrap();
    let id = client.log_id().to_string();
    client
        .verify(&fotp::VerifyRequest::new("2").code("583921"))
        .unwrap_err();
    let evs = events(|e| e.get("client") == Some(id.as_str()));
    assert_eq!(evs.len(), 2, "{evs:#?}");
    assert_eq!(evs[0].get("op"), Some("verify"));
    assert_eq!(evs[0].get("path"), Some("/flash/opt/verify"));
    assert_eq!(evs[0].get("error_kind"), Some("network"));
    assert!(evs[0].get("retry_in_ms").is_some());
    assert_eq!(evs[1].get("attempt"), Some("2"));
    assert_eq!(evs[1].get("retry_in_ms"), None);
    assert_nothing_secret(&evs, &["sandbox-secret", "583921"]);
    // A derived client shares the id.
    assert_eq!(
        client.with_timeout(Duration::from_secs(1)).log_id(),
        client.log_id()
    );
}

#[test]
fn settlements_mask_the_mobile_and_refusals_never_quote_the_body() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    capture();
    CAPTURE.0.lock().unwrap().clear();
    let server = Server::start(|_, _| Reply::json(200, QUERY_OK));
    let client = client_for(&server, |b| b);
    let tracker = fotp::Tracker::memory();
    let cb = fotp::parse_callback(include_bytes!("data/callback.json")).unwrap();
    assert!(matches!(
        tracker.settle(&client, &cb).unwrap(),
        fotp::Settlement::NoMatch
    ));
    let settled = events(|e| e.get("event") == Some("settled"));
    assert_eq!(settled.len(), 1, "{settled:#?}");
    assert_eq!(settled[0].get("outcome"), Some("no_match"));
    assert_eq!(settled[0].get("mobile"), Some("*********6132"));
    assert_eq!(
        settled[0].get("client"),
        Some(client.log_id().to_string().as_str())
    );

    let body = br#"{"mobile":"8615711666132","sender":"1008611","sendTime":"t","code":["5776"]}"#;
    fotp::parse_callback(body).unwrap_err();
    let refused = events(|e| e.get("event") == Some("refused"));
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert_eq!(refused[0].target, "fotp::callback");
    assert_eq!(
        refused[0].get("bytes"),
        Some(body.len().to_string().as_str())
    );
    fotp::parse_callback(br#"{"mobile":"8615711666132"}"#).unwrap_err();
    let refused = events(|e| e.get("event") == Some("refused"));
    assert!(refused[1]
        .get("reason")
        .unwrap()
        .contains("`sender` is missing"));
    assert_nothing_secret(
        &events(|_| true),
        &["8615711666132", "5776", "sandbox-secret"],
    );
}

#[test]
fn nothing_is_emitted_below_the_max_level() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    capture();
    CAPTURE.0.lock().unwrap().clear();
    log::set_max_level(log::LevelFilter::Warn);
    let server = Server::start(|_, _| Reply::json(200, QUERY_OK));
    let client = client_for(&server, |b| b);
    client.query(TOKEN).unwrap();
    fotp::parse_callback(b"{").unwrap_err();
    let id = client.log_id().to_string();
    let n =
        events(|e| e.get("client") == Some(id.as_str()) || e.get("event") == Some("refused")).len();
    log::set_max_level(log::LevelFilter::Trace);
    assert_eq!(n, 0);
}

/// A store that is down: every operation fails.
#[derive(Debug)]
struct DownStore;

impl fotp::Store for DownStore {
    fn reserve(&self, _: &[String], _: &str, _: usize, _: Duration) -> fotp::Result<fotp::Reserve> {
        Err(down())
    }
    fn bind(&self, _: &str, _: &str, _: &str) -> fotp::Result<bool> {
        Err(down())
    }
    fn release(&self, _: &str, _: &str) -> fotp::Result<()> {
        Err(down())
    }
    fn lookup(&self, _: &str) -> fotp::Result<fotp::Lookup> {
        Err(down())
    }
    fn claim(&self, _: &str) -> fotp::Result<Option<fotp::Match>> {
        Err(down())
    }
    fn settle(&self, _: &str, _: &str, _: &str) -> fotp::Result<Option<bool>> {
        Err(down())
    }
    fn unsettle(&self, _: &str, _: &str) -> fotp::Result<()> {
        Err(down())
    }
    fn wait_matched(&self, _: &str, _: Duration) -> fotp::Result<bool> {
        Err(down())
    }
}

fn down() -> fotp::Error {
    fotp::Error::new(fotp::ErrorKind::Network, "the store is down")
}

#[test]
fn store_failures_and_the_fallback_to_polling_are_warnings() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    capture();
    CAPTURE.0.lock().unwrap().clear();
    // Processing for three polls, then success.
    let server = Server::start(|n, _| {
        if n < 3 {
            Reply::json(200, &query_status("0"))
        } else {
            Reply::json(200, QUERY_OK)
        }
    });
    let client = client_for(&server, |b| b);
    let tracker = fotp::Tracker::new(DownStore).with_poll_interval(Duration::from_millis(20));
    // The store fails, polling the platform still finds the result.
    let r = tracker
        .wait(&client, TOKEN, Duration::from_secs(5))
        .unwrap();
    assert_eq!(r.status, fotp::Status::Success);
    assert_eq!(server.count(), 4);
    let fallback = events(|e| e.get("event") == Some("fallback_to_polling"));
    assert_eq!(fallback.len(), 1, "{:#?}", events(|_| true));
    assert_eq!(fallback[0].level, log::Level::Warn);
    assert_eq!(fallback[0].get("ft_token"), Some(TOKEN));
    assert_eq!(fallback[0].get("error"), Some("the store is down"));
    // One warning per wait, not one per poll.
    assert!(events(|e| e.get("event") == Some("store_failure")).is_empty());
    // A settle whose lookup fails: the error is returned and logged.
    let cb = fotp::parse_callback(include_bytes!("data/callback.json")).unwrap();
    tracker.settle(&client, &cb).unwrap_err();
    let lookup = events(|e| e.get("op") == Some("lookup"));
    assert_eq!(lookup.len(), 1);
    assert_eq!(lookup[0].target, "fotp::tracker");
}
