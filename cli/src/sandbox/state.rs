//! The sandbox's state: sessions, templates, the clock and the log.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::auth::NonceStore;
use super::origin::Policy;
use super::{Options, INVALID_PARAMETER, SESSION_LIMIT, UNKNOWN_FT_ID, UNKNOWN_FT_TOKEN};

/// A template: an `ftId` and, for push mode, the callback URL results are POSTed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The template id.
    pub ft_id: String,
    /// Where results are pushed; `None` for pull-only.
    pub callback_url: Option<String>,
}

impl std::str::FromStr for Template {
    type Err = String;

    /// `FTID=CALLBACK_URL`, or `FTID` / `FTID=` for a template without callback.
    fn from_str(s: &str) -> Result<Self, String> {
        let (id, url) = match s.split_once('=') {
            Some((id, url)) => (id, url.trim()),
            None => (s, ""),
        };
        fotp::__internals::ft_id(id).map_err(|e| e.message().to_owned())?;
        let callback_url = if url.is_empty() {
            None
        } else {
            let uri: ureq::http::Uri = url
                .parse()
                .map_err(|e| format!("callback URL {url:?} does not parse: {e}"))?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                return Err(format!(
                    "callback URL {url:?} must be http:// or https:// with a host"
                ));
            }
            Some(url.to_owned())
        };
        Ok(Template {
            ft_id: id.to_owned(),
            callback_url,
        })
    }
}

/// Where log lines go. Writing happens on a thread of its own through a bounded queue, so a
/// reader that stops draining the pipe drops log lines instead of stalling requests.
#[derive(Clone)]
pub struct Logger {
    tx: Option<mpsc::SyncSender<String>>,
}

impl Logger {
    /// No logging.
    pub fn none() -> Logger {
        Logger { tx: None }
    }

    /// Log lines to standard output (after the startup lines).
    pub fn stdout() -> Logger {
        Self::spawn(|line| {
            let mut out = std::io::stdout().lock();
            // A closed pipe must not kill the sandbox: ignore write errors.
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        })
    }

    /// Log lines to standard error.
    pub fn stderr() -> Logger {
        Self::spawn(|line| {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        })
    }

    fn spawn(write: impl Fn(&str) + Send + 'static) -> Logger {
        let (tx, rx) = mpsc::sync_channel::<String>(1024);
        std::thread::Builder::new()
            .name("fotp-sandbox-log".into())
            .spawn(move || {
                for line in rx {
                    write(&line);
                }
            })
            .map(|_| Logger { tx: Some(tx) })
            .unwrap_or_else(|_| Logger::none())
    }

    /// Writes one log line (prefixed with the time), dropping it if the writer lags behind.
    pub fn line(&self, line: &str) {
        self.log(format_args!("{line}"));
    }

    pub(crate) fn log(&self, args: fmt::Arguments<'_>) {
        if let Some(tx) = &self.tx {
            // Request values end up in log lines: no terminal escapes from them.
            let line = format!(
                "{} {}",
                clock_text(wall_ms()),
                crate::text::escape_controls(&args.to_string())
            );
            let _ = tx.try_send(line);
        }
    }
}

/// An error answered inside the envelope (HTTP 200).
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl fmt::Display) -> Self {
        Self::new(INVALID_PARAMETER, format!("invalid parameter: {message}"))
    }

    /// A core input-rule error (its message names the field).
    pub(crate) fn from_core(e: fotp::Error) -> Self {
        Self::invalid(e.message())
    }
}

/// Milliseconds since the Unix epoch, real time.
pub(crate) fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, the platform's time format.
pub(crate) fn clock_text(ms: u64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// How far the session clock can be moved forward in total: 1000 years. Past it advances
/// saturate, so session times (now + validity + retention) always fit in a `u64` and keep
/// their order, and the clock keeps running.
pub(crate) const MAX_CLOCK_OFFSET_MS: u64 = 1000 * 366 * 86_400_000;

/// The session clock: real time plus an offset tests can advance.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    offset_ms: AtomicU64,
}

impl Clock {
    pub(crate) fn now_ms(&self) -> u64 {
        wall_ms().saturating_add(self.offset_ms())
    }
    pub(crate) fn offset_ms(&self) -> u64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
    pub(crate) fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        // fetch_add would wrap: saturate at the cap instead.
        let _ = self
            .offset_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
                Some(o.saturating_add(by).min(MAX_CLOCK_OFFSET_MS))
            });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Processing,
    Failed,
    Success,
}

impl Status {
    pub(crate) fn wire(self) -> &'static str {
        match self {
            Status::Processing => "0",
            Status::Failed => "1",
            Status::Success => "2",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Uplink {
    pub(crate) mobile: String,
    pub(crate) content: String,
    pub(crate) code: String,
    pub(crate) send_time: String,
    pub(crate) deliver_time: String,
    pub(crate) err: Option<String>,
}

/// One callback POST, as recorded in `/sandbox/sessions`.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub(crate) delivery: u32,
    pub(crate) attempt: u32,
    pub(crate) http_status: u16,
    pub(crate) answer: String,
    pub(crate) at_ms: u64,
    pub(crate) accepted: bool,
}

#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) token: String,
    pub(crate) ft_id: String,
    pub(crate) code: String,
    pub(crate) message_id: String,
    pub(crate) created_ms: u64,
    pub(crate) expires_ms: u64,
    pub(crate) status: Status,
    pub(crate) uplink: Option<Uplink>,
    pub(crate) callback_url: Option<String>,
    pub(crate) callbacks: Vec<Attempt>,
}

impl Session {
    fn expired(&self, now: u64) -> bool {
        now >= self.expires_ms
    }

    /// The status as queried: a session still processing at expiry has failed.
    pub(crate) fn effective_status(&self, now: u64) -> Status {
        match self.status {
            Status::Processing if self.expired(now) => Status::Failed,
            s => s,
        }
    }
}

pub(crate) struct UplinkRequest {
    pub(crate) ft_token: Option<String>,
    pub(crate) mobile: String,
    pub(crate) content: String,
    pub(crate) deliveries: u32,
    pub(crate) delay: Duration,
}

pub(crate) struct PhoneViewData {
    pub(crate) token: String,
    pub(crate) sender: String,
    pub(crate) sms_text: String,
    pub(crate) status: Status,
    pub(crate) expires_in_s: u64,
}

pub(crate) enum PhoneView {
    Unknown,
    Expired,
    Live(PhoneViewData),
}

pub(crate) struct Shared {
    pub(crate) options: Options,
    pub(crate) public_url: String,
    pub(crate) templates: HashMap<String, Option<String>>,
    pub(crate) clock: Clock,
    pub(crate) nonces: Mutex<NonceStore>,
    pub(crate) policy: Policy,
    sessions: Mutex<Sessions>,
    pub(crate) http: ureq::Agent,
}

#[derive(Default)]
struct Sessions {
    map: HashMap<String, Session>,
    last_prune_ms: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn random_bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| {
        ApiError::new(
            "999999",
            format!("the OS random number generator failed: {e}"),
        )
    })?;
    Ok(b)
}

/// A uniformly random decimal code of `len` digits (rejection sampling, no modulo bias).
fn random_code(len: u32) -> Result<String, ApiError> {
    let modulus = 10u32.pow(len.min(9));
    let limit = u32::MAX - u32::MAX % modulus;
    loop {
        let v = u32::from_le_bytes(random_bytes::<4>()?);
        if v < limit {
            return Ok(format!("{:0width$}", v % modulus, width = len as usize));
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The maximal runs of 4-6 ASCII digits in `content` (where the SMS's code can be).
pub(crate) fn code_candidates(content: &str) -> Vec<&str> {
    content
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| (4..=6).contains(&run.len()))
        .collect()
}

impl Shared {
    pub(crate) fn new(options: Options, public_url: String) -> std::io::Result<Shared> {
        let mut templates: HashMap<String, Option<String>> = HashMap::new();
        templates.insert(super::DEFAULT_FT_ID.to_owned(), None);
        for t in &options.templates {
            templates.insert(t.ft_id.clone(), t.callback_url.clone());
        }
        let http = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .timeout_global(Some(options.callback_timeout))
            .user_agent(format!("fotp-sandbox/{}", fotp::VERSION))
            .build()
            .new_agent();
        let policy = Policy::new(
            &options.public_hosts,
            &public_url,
            options.control_token.clone(),
        )
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Ok(Shared {
            public_url,
            templates,
            clock: Clock::default(),
            nonces: Mutex::new(NonceStore::new(options.max_nonces)),
            policy,
            sessions: Mutex::new(Sessions::default()),
            http,
            options,
        })
    }

    pub(crate) fn log(&self, args: fmt::Arguments<'_>) {
        self.options.logger.log(args);
    }

    pub(crate) fn create_session(
        &self,
        ft_id: &str,
        code: Option<String>,
        validity_minutes: Option<u32>,
    ) -> Result<Value, ApiError> {
        let callback_url = self
            .templates
            .get(ft_id)
            .ok_or_else(|| ApiError::new(UNKNOWN_FT_ID, format!("unknown ftId {ft_id:?}")))?
            .clone();
        let code = match code {
            Some(c) => c,
            None => random_code(4)?,
        };
        let token = hex(&random_bytes::<16>()?);
        let message_id = (100_000_000_000_000_000
            + u64::from_le_bytes(random_bytes::<8>()?) % 900_000_000_000_000_000)
            .to_string();
        let now = self.clock.now_ms();
        let minutes = validity_minutes.unwrap_or(5);
        let mut sessions = lock(&self.sessions);
        self.prune(&mut sessions, now);
        // Count (a scan of every session) only when the map could hold that many live ones:
        // a scan on every verify made verify O(sessions) under the lock.
        let live = if sessions.map.len() < self.options.max_sessions {
            sessions.map.len()
        } else {
            sessions.map.values().filter(|s| !s.expired(now)).count()
        };
        if live >= self.options.max_sessions {
            return Err(ApiError::new(
                SESSION_LIMIT,
                format!(
                    "the sandbox holds {live} live sessions, its limit (--max-sessions {}); \
                     wait for some to expire",
                    self.options.max_sessions
                ),
            ));
        }
        let url = format!("{}/flash/opt/redirect/{token}", self.public_url);
        sessions.map.insert(
            token.clone(),
            Session {
                token: token.clone(),
                ft_id: ft_id.to_owned(),
                code: code.clone(),
                message_id: message_id.clone(),
                created_ms: now,
                expires_ms: now.saturating_add(u64::from(minutes) * 60_000),
                status: Status::Processing,
                uplink: None,
                callback_url,
                callbacks: Vec::new(),
            },
        );
        drop(sessions);
        self.log(format_args!(
            "verify ftId={ft_id} ftToken={token} code={code} valid {minutes} min"
        ));
        Ok(json!({"url": url, "ftToken": token, "messageId": message_id, "code": code}))
    }

    /// Evicts sessions expired longer than the retention, and the oldest expired ones when
    /// there are more than twice the limit. Runs at most once a second, or when full.
    fn prune(&self, sessions: &mut Sessions, now: u64) {
        let full = sessions.map.len() >= self.options.max_sessions.saturating_mul(2);
        if !full && now < sessions.last_prune_ms.saturating_add(1000) {
            return;
        }
        sessions.last_prune_ms = now;
        let keep = u64::try_from(self.options.retention.as_millis()).unwrap_or(u64::MAX);
        sessions
            .map
            .retain(|_, s| now < s.expires_ms.saturating_add(keep));
        let cap = self.options.max_sessions.saturating_mul(2);
        if sessions.map.len() >= cap {
            let mut expired: Vec<(u64, String)> = sessions
                .map
                .values()
                .filter(|s| s.expired(now))
                .map(|s| (s.expires_ms, s.token.clone()))
                .collect();
            expired.sort_unstable();
            let excess = sessions.map.len() + 1 - cap;
            for (_, t) in expired.into_iter().take(excess) {
                sessions.map.remove(&t);
            }
        }
    }

    pub(crate) fn query(&self, token: &str) -> Result<Value, ApiError> {
        let now = self.clock.now_ms();
        let mut sessions = lock(&self.sessions);
        self.prune(&mut sessions, now);
        let s = sessions
            .map
            .get(token)
            .ok_or_else(|| ApiError::new(UNKNOWN_FT_TOKEN, "unknown ftToken"))?;
        let mut data = json!({"status": s.effective_status(now).wire()});
        if let Some(u) = &s.uplink {
            let o = data.as_object_mut().expect("an object");
            o.insert("mobile".into(), u.mobile.clone().into());
            o.insert("sender".into(), self.options.sender.clone().into());
            o.insert("sendTime".into(), u.send_time.clone().into());
            o.insert("code".into(), u.code.clone().into());
            o.insert("deliverTime".into(), u.deliver_time.clone().into());
        }
        Ok(data)
    }

    pub(crate) fn uplink(self: &Arc<Self>, req: UplinkRequest) -> Result<Value, ApiError> {
        let mobile = req.mobile.trim();
        let digits = mobile.strip_prefix('+').unwrap_or(mobile);
        if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid(
                "mobile must be 1-20 digits, optionally after +",
            ));
        }
        if req.content.chars().count() > 1000 {
            return Err(ApiError::invalid("content must be at most 1000 characters"));
        }
        let candidates = code_candidates(&req.content);
        if candidates.is_empty() {
            return Err(ApiError::invalid(
                "content must carry the code (4-6 digits)",
            ));
        }
        let now = self.clock.now_ms();
        let mut sessions = lock(&self.sessions);
        let token = match req.ft_token {
            Some(t) => {
                if !sessions.map.contains_key(&t) {
                    return Err(ApiError::new(UNKNOWN_FT_TOKEN, "unknown ftToken"));
                }
                t
            }
            // Like the platform, match by code: the newest live session holding one of them.
            None => sessions
                .map
                .values()
                .filter(|s| s.status == Status::Processing && !s.expired(now))
                .filter(|s| {
                    candidates.iter().any(|c| {
                        fotp::__internals::constant_time_eq(c.as_bytes(), s.code.as_bytes())
                    })
                })
                .max_by_key(|s| s.created_ms)
                .map(|s| s.token.clone())
                .ok_or_else(|| {
                    ApiError::new(
                        UNKNOWN_FT_TOKEN,
                        "no live session holds a code found in content (pass ftToken to name one)",
                    )
                })?,
        };
        let s = sessions.map.get_mut(&token).expect("checked above");
        if s.status != Status::Processing {
            return Err(ApiError::invalid(format!(
                "ftToken: the session already has a final status ({})",
                s.status.wire()
            )));
        }
        let matched = candidates
            .iter()
            .find(|c| fotp::__internals::constant_time_eq(c.as_bytes(), s.code.as_bytes()));
        let expired = s.expired(now);
        let (status, err) = match (matched, expired) {
            (Some(_), false) => (Status::Success, None),
            (_, true) => (Status::Failed, Some("the code has expired".to_owned())),
            (None, false) => (Status::Failed, Some("the code does not match".to_owned())),
        };
        let time = clock_text(now);
        let uplink = Uplink {
            mobile: mobile.to_owned(),
            content: req.content.clone(),
            code: matched.copied().unwrap_or(candidates[0]).to_owned(),
            send_time: time.clone(),
            deliver_time: time,
            err,
        };
        s.status = status;
        s.uplink = Some(uplink.clone());
        let callback_url = s.callback_url.clone();
        drop(sessions);
        self.log(format_args!(
            "uplink ftToken={token} mobile={mobile} -> status {} {}",
            status.wire(),
            uplink.err.as_deref().unwrap_or("")
        ));
        if let Some(url) = &callback_url {
            let body = self.callback_body(&uplink);
            super::callbacks::spawn_deliveries(
                self.clone(),
                token.clone(),
                url.clone(),
                body,
                req.deliveries,
                req.delay,
            );
        }
        Ok(json!({
            "ftToken": token,
            "status": status.wire(),
            "code": uplink.code,
            "err": uplink.err,
            "callbackUrl": callback_url,
            "deliveries": if callback_url.is_some() { req.deliveries } else { 0 },
        }))
    }

    fn callback_body(&self, u: &Uplink) -> Vec<u8> {
        let mut body = json!({
            "mobile": u.mobile,
            "sender": self.options.sender,
            "sendTime": u.send_time,
            "code": u.code,
            "content": u.content,
            "deliverTime": u.deliver_time,
        });
        if let Some(err) = &u.err {
            body["err"] = err.clone().into();
        }
        serde_json::to_vec(&body).expect("serializing a JSON value cannot fail")
    }

    pub(crate) fn record_attempt(&self, token: &str, attempt: Attempt) {
        if let Some(s) = lock(&self.sessions).map.get_mut(token) {
            // Bounded: deliveries x attempts is at most 10 x a small number, but be safe.
            if s.callbacks.len() < 1000 {
                s.callbacks.push(attempt);
            }
        }
    }

    pub(crate) fn phone_view(&self, token: &str) -> PhoneView {
        let now = self.clock.now_ms();
        let sessions = lock(&self.sessions);
        match sessions.map.get(token) {
            None => PhoneView::Unknown,
            Some(s) if s.expired(now) => PhoneView::Expired,
            Some(s) => PhoneView::Live(PhoneViewData {
                token: s.token.clone(),
                sender: self.options.sender.clone(),
                sms_text: sms_text(&s.code),
                status: s.status,
                expires_in_s: s.expires_ms.saturating_sub(now) / 1000,
            }),
        }
    }

    /// Sessions, oldest first, as `/sandbox/sessions` and the dashboard show them.
    pub(crate) fn sessions_json(&self) -> Value {
        let now = self.clock.now_ms();
        let sessions = lock(&self.sessions);
        let mut list: Vec<&Session> = sessions.map.values().collect();
        list.sort_by_key(|s| (s.created_ms, s.token.clone()));
        let items: Vec<Value> = list
            .into_iter()
            .map(|s| {
                json!({
                    "ftToken": s.token,
                    "ftId": s.ft_id,
                    "code": s.code,
                    "messageId": s.message_id,
                    "status": s.effective_status(now).wire(),
                    "expired": s.expired(now),
                    "mobile": s.uplink.as_ref().map(|u| u.mobile.clone()),
                    "content": s.uplink.as_ref().map(|u| u.content.clone()),
                    "uplinkCode": s.uplink.as_ref().map(|u| u.code.clone()),
                    "err": s.uplink.as_ref().and_then(|u| u.err.clone()),
                    "createdAt": s.created_ms,
                    "expiresAt": s.expires_ms,
                    "callbackUrl": s.callback_url,
                    "callbacks": s.callbacks.iter().map(|a| json!({
                        "delivery": a.delivery,
                        "attempt": a.attempt,
                        "httpStatus": a.http_status,
                        "answer": a.answer,
                        "at": a.at_ms,
                        "accepted": a.accepted,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({"sessions": items, "now": now})
    }
}

/// The SMS the phone page prepares (the code must appear in it).
pub(crate) fn sms_text(code: &str) -> String {
    format!("[fotp sandbox] My verification code is {code}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_digits_of_the_length_and_vary() {
        let codes: std::collections::HashSet<String> =
            (0..200).map(|_| random_code(4).unwrap()).collect();
        assert!(codes
            .iter()
            .all(|c| c.len() == 4 && c.bytes().all(|b| b.is_ascii_digit())));
        assert!(
            codes.len() > 150,
            "200 draws from 10000 codes rarely collide"
        );
        assert_eq!(random_code(6).unwrap().len(), 6);
    }

    #[test]
    fn code_candidates_are_runs_of_4_to_6_digits() {
        assert_eq!(code_candidates("Your VIP Key: ##FG5x-5776##"), ["5776"]);
        assert_eq!(
            code_candidates("123 1234 1234567 654321"),
            ["1234", "654321"]
        );
        assert!(code_candidates("no code, 12-34").is_empty());
        assert_eq!(
            code_candidates("１２３４ 4321"),
            ["4321"],
            "ASCII digits only"
        );
    }

    #[test]
    fn template_flags() {
        let t: Template = "7=http://127.0.0.1:8080/cb".parse().unwrap();
        assert_eq!(t.ft_id, "7");
        assert_eq!(t.callback_url.as_deref(), Some("http://127.0.0.1:8080/cb"));
        assert_eq!("9".parse::<Template>().unwrap().callback_url, None);
        assert_eq!("9=".parse::<Template>().unwrap().callback_url, None);
        for bad in ["=http://x", "2=ftp://x", "2=not a url", "2=/relative"] {
            assert!(bad.parse::<Template>().is_err(), "{bad}");
        }
    }

    #[test]
    fn clock_text_is_the_platform_format() {
        assert_eq!(clock_text(1_747_308_214_000), "2025-05-15 11:23:34");
    }
}
