//! The blocking client: verify, query, wait and callback confirmation.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ureq::http::Uri;
use ureq::unversioned::transport::{ConnectProxyConnector, Connector, RustlsConnector};
use ureq::Agent;

use crate::callback::Callback;
use crate::cancel::{sleep_until, CancelToken};
use crate::config::{Config, ProxySetting};
use crate::error::{Error, ErrorKind, Result};
use crate::sign::constant_time_eq;
use crate::transport::{self, LiteralResolver, TcpConnector};
use crate::wire::{self, QueryResult, Status, Verification, VerifyRequest};

/// The largest response body accepted, in bytes.
pub const MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

const CONTENT_TYPE: &str = "application/json;charset=utf-8";
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(2);
/// Limits at least this long are no limits (ureq adds them to the current instant).
const FAR: Duration = Duration::from_secs(10 * 365 * 86_400);
/// What `wait` keeps for its last query when less than a poll interval is left.
const LAST_QUERY_RESERVE: Duration = Duration::from_millis(250);

/// A client of the Flash OTP platform.
///
/// Cheap to clone and safe to share between threads: all clones use one connection pool
/// (keep-alive).
///
/// ```no_run
/// let client = fotp::Client::new(
///     fotp::Config::builder("https://otp.example.com/otp-api")
///         .hmac_auth("my-app", "my-secret")
///         .build()?,
/// )?;
/// let v = client.verify(&fotp::VerifyRequest::new("2"))?;
/// println!("open {} on the phone", v.url);
/// let result = client.wait(&v.ft_token, std::time::Duration::from_secs(120))?;
/// assert_eq!(result.status, fotp::Status::Success);
/// # Ok::<(), fotp::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: Arc<Pool>,
    verify_uri: Uri,
    query_uri: Uri,
    config: Config,
    /// Bound on a whole call; `None`: only the per-attempt limits.
    call_timeout: Option<Duration>,
    cancel: Option<CancelToken>,
    /// Names this client (and the clients derived from it) in log events.
    log_id: u64,
}

/// The source of [`Client::log_id`]s.
static NEXT_LOG_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The connection pool, rebuilt in a forked child: a child never uses its parent's sockets.
struct Pool {
    /// The agent's settings, resolved once (proxy from the environment, roots), so that a
    /// rebuild cannot fail or differ.
    settings: ureq::config::Config,
    /// The fork generation the agent belongs to (`crate::fork`: no getpid() per call).
    owner: AtomicU64,
    agent: Mutex<Agent>,
}

impl Pool {
    fn new(config: &Config) -> Result<Pool> {
        let settings = agent_settings(config)?;
        Ok(Pool {
            agent: Mutex::new(new_agent(&settings)),
            settings,
            owner: AtomicU64::new(crate::fork::generation()),
        })
    }

    fn agent(&self) -> Agent {
        let generation = crate::fork::generation();
        if self.owner.load(Ordering::Acquire) == generation {
            return self.agent.lock().unwrap_or_else(|p| p.into_inner()).clone();
        }
        // A forked child. The lock may have been held at the fork by a thread that does not
        // exist here, so never block on it: if it stays held, use an agent of this call's own.
        let Some(mut guard) = crate::fork::lock_inherited(&self.agent, &self.owner, generation)
        else {
            return new_agent(&self.settings);
        };
        if self.owner.load(Ordering::Acquire) != generation {
            // Forgotten, not dropped: closing could write to the parent's TLS sessions.
            std::mem::forget(std::mem::replace(&mut *guard, new_agent(&self.settings)));
            self.owner.store(generation, Ordering::Release);
        }
        guard.clone()
    }
}

impl std::fmt::Debug for Pool {
    // The settings hold the proxy: not shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

fn new_agent(settings: &ureq::config::Config) -> Agent {
    // ureq's default chain minus SOCKS, with a TCP layer that notices cancellation and retries
    // interrupted system calls.
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(TcpConnector)
            .chain(RustlsConnector::default());
    Agent::with_parts(settings.clone(), connector, LiteralResolver)
}

fn agent_settings(config: &Config) -> Result<ureq::config::Config> {
    let mut builder = Agent::config_builder()
        .http_status_as_error(false)
        .user_agent(config.user_agent.as_str())
        .max_redirects(0)
        .max_idle_connections(64)
        .max_idle_connections_per_host(64)
        // Each attempt's own limits (every client sharing this pool has the same): a request
        // overrides them only when less of its call is left. ureq adds a limit to the current
        // instant, so one past FAR (no real limit) is none at all.
        .timeout_global((config.timeout < FAR).then_some(config.timeout))
        .timeout_connect((config.connect_timeout < FAR).then_some(config.connect_timeout));
    let proxy = match &config.proxy {
        // Loopback never goes through an environment proxy: the sandbox and local tests must
        // stay local.
        ProxySetting::Env if config.base.loopback => None,
        ProxySetting::Env => match ureq::Proxy::try_from_env() {
            Some(p)
                if matches!(
                    p.protocol(),
                    ureq::ProxyProtocol::Http | ureq::ProxyProtocol::Https
                ) =>
            {
                Some(p)
            }
            Some(_) => {
                return Err(Error::config(
                    "the proxy from the environment uses SOCKS, which fotp does not support; \
                     set an http:// proxy or none",
                ))
            }
            None => None,
        },
        ProxySetting::Direct => None,
        ProxySetting::Url(url) => Some(crate::config::check_proxy(url)?),
    };
    builder = builder.proxy(proxy);
    if !config.extra_roots.is_empty() {
        // Extra roots add to the built-in (Mozilla) ones, they never replace them.
        let mut roots: Vec<ureq::tls::Certificate<'static>> =
            webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                .collect();
        roots.extend(config.extra_roots.iter().cloned());
        builder = builder.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
                .build(),
        );
    }
    Ok(builder.build())
}

enum Idempotency {
    /// Retried on any transient failure (query).
    Idempotent,
    /// Retried only when the request surely never reached the server (verify).
    Unsafe,
}

/// The limits of one call: its end (if bounded) and why it ends.
#[derive(Clone, Copy, Debug)]
struct Budget {
    deadline: Option<Instant>,
    /// The bound in force, for messages.
    limit: Duration,
    /// The bound is `wait`'s own limit rather than the call bound.
    wait: bool,
}

impl Budget {
    fn left(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    fn expired(&self) -> bool {
        self.left().is_some_and(|l| l.is_zero())
    }

    fn error(&self) -> Error {
        if self.wait {
            Error::new(
                ErrorKind::Timeout,
                format!("no final status within {} ms", self.limit.as_millis()),
            )
        } else {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "the call did not complete within {} ms",
                    self.limit.as_millis()
                ),
            )
        }
    }
}

/// The error of a cancelled call.
fn cancelled_error() -> Error {
    Error::new(ErrorKind::Timeout, "the call was cancelled")
}

/// Transient: worth another attempt or poll (network trouble, time-outs, HTTP 429 and 5xx).
///
/// The one rule behind query retries, `Client::wait` and `Tracker::wait`.
pub(crate) fn is_transient(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Network | ErrorKind::Timeout)
        || is_transient_status(e.http_status())
}

fn is_transient_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

impl Client {
    /// Builds a client. Nothing is sent on the network.
    pub fn new(config: Config) -> Result<Client> {
        let verify_uri = endpoint(&config, "/flash/opt/verify")?;
        let query_uri = endpoint(&config, "/flash/opt/query")?;
        let pool = Arc::new(Pool::new(&config)?);
        Ok(Client {
            inner: Arc::new(Inner {
                pool,
                verify_uri,
                query_uri,
                call_timeout: config.call_timeout,
                config,
                cancel: None,
                log_id: NEXT_LOG_ID.fetch_add(1, Ordering::Relaxed),
            }),
        })
    }

    /// A client configured by the `FOTP_*` environment variables.
    pub fn from_env() -> Result<Client> {
        Client::new(Config::from_env()?)
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    fn derive(&self, call_timeout: Option<Duration>, cancel: Option<CancelToken>) -> Client {
        Client {
            inner: Arc::new(Inner {
                pool: self.inner.pool.clone(),
                verify_uri: self.inner.verify_uri.clone(),
                query_uri: self.inner.query_uri.clone(),
                config: self.inner.config.clone(),
                call_timeout,
                cancel,
                log_id: self.inner.log_id,
            }),
        }
    }

    /// A client sharing this one's connection pool and settings whose every call (all attempts
    /// and pauses; for `wait`, the smaller of this and its own limit) is bounded by `timeout`.
    ///
    /// Bindings use it to apply a caller's deadline (a Go context, Python's `timeout=`). The
    /// per-attempt limit stays. Any duration is accepted: zero times out at once, one too long
    /// to represent means no bound. Keeps this client's cancel token.
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        self.derive(Some(timeout), self.inner.cancel.clone())
    }

    /// A client sharing this one's connection pool and settings whose calls watch `cancel`:
    /// once it is cancelled, a call returns within about 100 ms with a timeout error saying so
    /// (even when blocked on the network), and a verify not sent yet is never sent.
    pub fn with_cancel(&self, cancel: &CancelToken) -> Client {
        self.derive(self.inner.call_timeout, Some(cancel.clone()))
    }

    /// The number naming this client in log events (the `client` field, see [`crate::logging`]);
    /// clients made by [`Client::with_timeout`] and [`Client::with_cancel`] share it.
    pub fn log_id(&self) -> u64 {
        self.inner.log_id
    }

    /// True when this client's cancel token was cancelled.
    pub fn cancelled(&self) -> bool {
        self.inner
            .cancel
            .as_ref()
            .is_some_and(CancelToken::is_cancelled)
    }

    /// This client's cancel token, if it has one.
    pub fn cancel_token(&self) -> Option<&CancelToken> {
        self.inner.cancel.as_ref()
    }

    /// The bound on a whole call, if any (from [`ConfigBuilder::call_timeout`] or
    /// [`Client::with_timeout`]).
    ///
    /// [`ConfigBuilder::call_timeout`]: crate::ConfigBuilder::call_timeout
    pub fn call_timeout(&self) -> Option<Duration> {
        self.inner.call_timeout
    }

    /// When a call starting now must end: now plus [`Client::call_timeout`]; `None` when there
    /// is no call bound (or it is too far to represent).
    pub fn call_deadline(&self) -> Option<Instant> {
        self.inner
            .call_timeout
            .and_then(|t| Instant::now().checked_add(t))
    }

    /// Sleeps for `d` or until this client's token is cancelled; true when cancelled.
    pub(crate) fn pause(&self, d: Duration) -> bool {
        sleep_until(self.inner.cancel.as_ref(), Instant::now().checked_add(d))
    }

    fn call_budget(&self) -> Budget {
        let limit = self.inner.call_timeout.unwrap_or(Duration::MAX);
        Budget {
            deadline: self
                .inner
                .call_timeout
                .and_then(|t| Instant::now().checked_add(t)),
            limit,
            wait: false,
        }
    }

    /// Asks the platform for a redirect link and code.
    ///
    /// The input is checked before anything is sent. verify is not idempotent: it is retried
    /// only when the request surely never reached the server.
    pub fn verify(&self, req: &VerifyRequest) -> Result<Verification> {
        let body = req.body()?;
        let (status, bytes) = self.send(
            &self.inner.verify_uri,
            &body,
            self.call_budget(),
            Idempotency::Unsafe,
        )?;
        wire::decode_envelope(status, &bytes)
    }

    /// Pulls the result of a verification.
    ///
    /// Retried on network errors, time-outs, HTTP 429 and 5xx (see the crate documentation).
    pub fn query(&self, ft_token: &str) -> Result<QueryResult> {
        self.query_within(ft_token, self.call_budget())
    }

    fn query_within(&self, ft_token: &str, budget: Budget) -> Result<QueryResult> {
        let body = wire::query_body(ft_token)?;
        let (status, bytes) = self.send(
            &self.inner.query_uri,
            &body,
            budget,
            Idempotency::Idempotent,
        )?;
        wire::decode_envelope(status, &bytes)
    }

    /// Polls query until the status is no longer processing, or `timeout` passes (then a
    /// timeout error).
    ///
    /// The limit bounds the whole wait, a query in flight included (a call bound, if smaller,
    /// wins). Transient failures (network errors, time-outs, HTTP 429 and 5xx) do not end the
    /// wait: it keeps polling until its limit, and makes a last query when less than a poll
    /// interval is left. Any duration is accepted (one too long to represent waits for ever).
    pub fn wait(&self, ft_token: &str, timeout: Duration) -> Result<QueryResult> {
        crate::validate::ft_token(ft_token)?;
        let start = Instant::now();
        let mut budget = Budget {
            deadline: start.checked_add(timeout),
            limit: timeout,
            wait: true,
        };
        if let Some(call) = self.inner.call_timeout.filter(|c| *c < timeout) {
            budget.deadline = start.checked_add(call);
            budget.limit = call;
        }
        let mut interval = self
            .inner
            .config
            .poll_interval
            .min(Duration::from_millis(250));
        let mut last_query_done = false;
        loop {
            if self.cancelled() {
                return Err(cancelled_error());
            }
            if budget.expired() {
                return Err(budget.error());
            }
            match self.query_within(ft_token, budget) {
                Ok(r) if r.status != Status::Processing => return Ok(r),
                Ok(_) => {}
                Err(_) if self.cancelled() => return Err(cancelled_error()),
                // The platform may come back before the deadline.
                Err(e) if is_transient(&e) => {}
                Err(e) => return Err(e),
            }
            let pause = match budget.left() {
                Some(left) if left <= interval => {
                    if last_query_done {
                        // Nothing more to ask: the limit is what the caller asked for.
                        if sleep_until(self.inner.cancel.as_ref(), budget.deadline) {
                            return Err(cancelled_error());
                        }
                        return Err(budget.error());
                    }
                    last_query_done = true;
                    left.saturating_sub(LAST_QUERY_RESERVE)
                }
                _ => interval,
            };
            if crate::logging::enabled(log::Level::Debug, crate::logging::HTTP) {
                let poll_in = crate::logging::ms(pause);
                crate::logging::emit(
                    log::Level::Debug,
                    crate::logging::HTTP,
                    &[
                        ("client", self.inner.log_id.into()),
                        ("op", "wait".into()),
                        ("ft_token", ft_token.into()),
                        ("poll_in_ms", poll_in.into()),
                    ],
                    format_args!("wait {ft_token}: still processing, next poll in {poll_in} ms"),
                );
            }
            if self.pause(pause) {
                return Err(cancelled_error());
            }
            interval = interval
                .saturating_mul(2)
                .min(self.inner.config.poll_interval);
        }
    }

    /// Cross-checks a callback with the platform: queries `ft_token` and compares the status
    /// (success), the code and the mobile number.
    ///
    /// Returns `Ok(false)` when they differ; errors are only for failed queries.
    pub fn confirm_callback(&self, cb: &Callback, ft_token: &str) -> Result<bool> {
        let r = self.query(ft_token)?;
        Ok(confirms(&r, cb))
    }

    fn send(
        &self,
        uri: &Uri,
        body: &[u8],
        budget: Budget,
        idempotency: Idempotency,
    ) -> Result<(u16, Vec<u8>)> {
        let cfg = &self.inner.config;
        let agent = self.inner.pool.agent();
        let mut attempt: u32 = 0;
        loop {
            if self.cancelled() {
                return Err(cancelled_error());
            }
            if budget.expired() {
                return Err(budget.error());
            }
            let started = Instant::now();
            let outcome = self.attempt(&agent, uri, body, budget);
            let log = |retry_in: Option<Duration>| {
                if crate::logging::enabled(log::Level::Info, crate::logging::HTTP) {
                    self.log_attempt(uri, attempt, &outcome, started.elapsed(), retry_in);
                }
            };
            let retryable = match &outcome {
                Ok((status, _, _)) => {
                    matches!(idempotency, Idempotency::Idempotent) && is_transient_status(*status)
                }
                Err(_) if self.cancelled() => {
                    log(None);
                    return Err(cancelled_error());
                }
                Err(f) => {
                    is_transient(&f.error)
                        && match idempotency {
                            Idempotency::Idempotent => true,
                            Idempotency::Unsafe => !f.reached_server,
                        }
                }
            };
            if !retryable || attempt >= cfg.retries {
                log(None);
                return outcome.map(|(s, b, _)| (s, b)).map_err(Failure::into_error);
            }
            // Retry-After is honoured up to one attempt's time limit, never past the call bound.
            let retry_after = outcome.as_ref().ok().and_then(|(_, _, ra)| *ra);
            let pause = retry_after
                .map(|ra| ra.min(cfg.timeout))
                .unwrap_or_else(|| backoff(attempt));
            if budget.left().is_some_and(|left| pause >= left) {
                log(None);
                return outcome.map(|(s, b, _)| (s, b)).map_err(Failure::into_error);
            }
            log(Some(pause));
            if self.pause(pause) {
                return Err(cancelled_error());
            }
            attempt += 1;
        }
    }

    /// The `fotp::http` event of one attempt (see [`crate::logging`]).
    fn log_attempt(
        &self,
        uri: &Uri,
        attempt: u32,
        outcome: &std::result::Result<(u16, Vec<u8>, Option<Duration>), Failure>,
        elapsed: Duration,
        retry_in: Option<Duration>,
    ) {
        use crate::logging::{emit, ms, HTTP};
        use log::kv::Value;
        let op = if *uri == self.inner.verify_uri {
            "verify"
        } else {
            "query"
        };
        let path = uri.path();
        let n = attempt.saturating_add(1);
        let elapsed_ms = ms(elapsed);
        let retry = retry_in.map(ms);
        let then = match retry {
            Some(p) => format!("; retrying in {p} ms"),
            None => String::new(),
        };
        let mut fields: Vec<(&str, Value<'_>)> = vec![
            ("client", Value::from(self.inner.log_id)),
            ("op", Value::from(op)),
            ("method", Value::from("POST")),
            ("path", Value::from(path)),
            ("attempt", Value::from(n)),
        ];
        let outcome_text = match outcome {
            Ok((status, _, _)) => {
                fields.push(("status", Value::from(*status)));
                format!("HTTP {status}")
            }
            Err(f) => {
                let kind = f.error.kind().as_str();
                fields.push(("error_kind", Value::from(kind)));
                format!("{kind} error: {}", f.error.message())
            }
        };
        fields.push(("elapsed_ms", Value::from(elapsed_ms)));
        if let Some(p) = retry {
            fields.push(("retry_in_ms", Value::from(p)));
        }
        emit(
            log::Level::Info,
            HTTP,
            &fields,
            format_args!("{op} POST {path} attempt {n}: {outcome_text} in {elapsed_ms} ms{then}"),
        );
    }

    fn attempt(
        &self,
        agent: &Agent,
        uri: &Uri,
        body: &[u8],
        budget: Budget,
    ) -> std::result::Result<(u16, Vec<u8>, Option<Duration>), Failure> {
        let cfg = &self.inner.config;
        // The attempt's own limit, or what is left of the call when that is less. Its error is
        // only built when it is needed (never on the way of a successful call).
        let (limit, limit_error) = match budget.left() {
            Some(left) if left < cfg.timeout => {
                if left.is_zero() {
                    return Err(Failure::final_(budget.error()));
                }
                (left, LimitError::Call(budget))
            }
            _ => (cfg.timeout, LimitError::Attempt(cfg.timeout)),
        };
        use ureq::http::header::{ACCEPT, CONTENT_TYPE as CONTENT_TYPE_NAME};
        use ureq::http::HeaderValue;
        let mut req = agent
            .post(uri)
            .header(CONTENT_TYPE_NAME, HeaderValue::from_static(CONTENT_TYPE))
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        // The built-in scheme hands over its headers ready-made (names checked once, values
        // moved, not copied); any other signer's are checked here, once.
        match cfg
            .hmac
            .as_ref()
            .and_then(|h| h.sign_typed(body).transpose())
        {
            Some(headers) => {
                for (name, value) in headers.map_err(Failure::final_)? {
                    req = req.header(name, value);
                }
            }
            None => {
                let headers = cfg.signer.sign(body).map_err(Failure::final_)?;
                for (name, value) in typed_headers(headers).map_err(Failure::final_)? {
                    req = req.header(name, value);
                }
            }
        }
        // A global limit per attempt bounds every phase, a dripped body included. The agent
        // carries the client's own limits (`agent_settings`): a request sets them only when
        // what is left of the call is less, which saves a copy of ureq's settings per call.
        let req = if limit < cfg.timeout {
            // ureq adds its limits to the current instant: past FAR (no real limit) is none.
            let bounded = |d: Duration| (d < FAR).then_some(d);
            req.config()
                .timeout_global(bounded(limit))
                .timeout_connect(bounded(cfg.connect_timeout.min(limit)))
                .build()
        } else {
            req
        };
        // Network I/O of this attempt watches the client's cancel token.
        let _scope = transport::enter(self.inner.cancel.as_ref());
        let mut resp = req.send(body).map_err(|e| classify(e, &limit_error))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => Failure::final_(
                    Error::decode(format!(
                        "the response body is over the limit of {MAX_RESPONSE_BYTES} bytes"
                    ))
                    .with_http_status(status),
                ),
                other => {
                    let mut f = classify(other, &limit_error);
                    f.reached_server = true;
                    f.error = f.error.with_http_status(status);
                    f
                }
            })?;
        Ok((status, bytes, retry_after))
    }
}

/// `Retry-After` as a pause: delay-seconds or an HTTP-date (RFC 9110 10.2.3); anything else is
/// ignored. A number too large for a `u64` saturates; a date in the past means no pause.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(
            v.parse::<u64>()
                .map(Duration::from_secs)
                .unwrap_or(Duration::MAX),
        );
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The comparison behind [`Client::confirm_callback`], in constant time for the code.
pub(crate) fn confirms(r: &QueryResult, cb: &Callback) -> bool {
    let code_ok = r
        .code
        .as_deref()
        .is_some_and(|c| constant_time_eq(c.as_bytes(), cb.code.as_bytes()));
    let mobile_ok = r.mobile.as_deref() == Some(cb.mobile.as_str());
    r.status == Status::Success && code_ok && mobile_ok
}

struct Failure {
    error: Error,
    /// The request may have been received.
    reached_server: bool,
}

impl Failure {
    /// The error, telling the tracker whether a code sent with it may be held by the platform.
    fn into_error(self) -> Error {
        self.error.reached_server(self.reached_server)
    }

    fn final_(error: Error) -> Self {
        Failure {
            error,
            reached_server: true,
        }
    }
}

fn attempt_timeout_error(limit: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!(
            "the request did not complete within {} ms",
            limit.as_millis()
        ),
    )
}

/// A signer's headers as ureq's types. Headers that HTTP cannot carry are a config error, never
/// sent and never retried (ureq would report them as a transient failure). Values are never
/// echoed: they are secrets.
fn typed_headers(
    headers: Vec<crate::sign::Header>,
) -> Result<Vec<(ureq::http::HeaderName, ureq::http::HeaderValue)>> {
    use ureq::http::{HeaderName, HeaderValue};
    headers
        .into_iter()
        .map(|(name, value)| {
            let Ok(typed_name) = HeaderName::from_bytes(name.as_bytes()) else {
                return Err(Error::config(format!(
                    "the signer produced an invalid header name {name:?}"
                )));
            };
            // From the String itself: no copy.
            let Ok(typed_value) = HeaderValue::try_from(value) else {
                return Err(Error::config(format!(
                    "the signer produced an invalid value for header {name:?}"
                )));
            };
            Ok((typed_name, typed_value))
        })
        .collect()
}

/// The error of an attempt whose time limit ran out, made only when it happens.
#[derive(Clone, Copy)]
enum LimitError {
    /// What was left of the call bound (or of `wait`'s limit) was the limit.
    Call(Budget),
    /// The attempt's own time limit.
    Attempt(Duration),
}

impl LimitError {
    fn error(self) -> Error {
        match self {
            LimitError::Call(budget) => budget.error(),
            LimitError::Attempt(limit) => attempt_timeout_error(limit),
        }
    }
}

/// A ureq failure as an error, and whether the request may have reached the server;
/// `limit_error` is the error for the attempt's time limit running out.
fn classify(e: ureq::Error, limit_error: &LimitError) -> Failure {
    use ureq::Error as E;
    let network = |msg: String, reached: bool| Failure {
        error: Error::new(ErrorKind::Network, msg),
        reached_server: reached,
    };
    match e {
        E::Timeout(t) => {
            let before_send = matches!(t, ureq::Timeout::Resolve | ureq::Timeout::Connect);
            let error = if before_send {
                Error::new(ErrorKind::Timeout, format!("connecting timed out ({t})"))
            } else {
                limit_error.error()
            };
            Failure {
                error,
                reached_server: !before_send,
            }
        }
        E::HostNotFound => network("the host name could not be resolved".into(), false),
        E::ConnectionFailed => network("the connection could not be established".into(), false),
        E::Io(io) => {
            let refused = matches!(
                io.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::AddrNotAvailable
                    | io::ErrorKind::HostUnreachable
                    | io::ErrorKind::NetworkUnreachable
            );
            if io.kind() == io::ErrorKind::TimedOut {
                return Failure {
                    error: limit_error.error(),
                    reached_server: true,
                };
            }
            network(format!("I/O error: {io}"), !refused)
        }
        // A handshake failure: nothing of the request was sent.
        E::Tls(msg) => network(format!("TLS error: {msg}"), false),
        E::Rustls(err) => network(format!("TLS error: {err}"), false),
        E::BodyExceedsLimit(_) => Failure::final_(Error::decode(format!(
            "the response body is over the limit of {MAX_RESPONSE_BYTES} bytes"
        ))),
        other => network(format!("HTTP transport error: {other}"), true),
    }
}

fn backoff(attempt: u32) -> Duration {
    let exp = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_CAP);
    // Equal jitter: half fixed, half random, so retries of many clients spread out.
    let mut b = [0u8; 2];
    let r = if getrandom::fill(&mut b).is_ok() {
        u16::from_le_bytes(b) as u32
    } else {
        u16::MAX as u32 / 2
    };
    exp / 2 + (exp / 2).mul_f64(r as f64 / u16::MAX as f64)
}

fn endpoint(config: &Config, path: &str) -> Result<Uri> {
    format!("{}{path}", config.base.url)
        .parse()
        .map_err(|e| Error::config(format!("the base URL does not form a valid URL: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_cap() {
        for attempt in 0..20 {
            let d = backoff(attempt);
            let exp = BACKOFF_BASE
                .saturating_mul(1 << attempt.min(16))
                .min(BACKOFF_CAP);
            assert!(d >= exp / 2 && d <= exp, "{attempt}: {d:?}");
        }
        let samples: std::collections::HashSet<_> = (0..32).map(|_| backoff(3)).collect();
        assert!(samples.len() > 1, "jitter must vary");
    }

    /// A child forked while a thread held the pool's lock gets an agent of its own at once,
    /// instead of blocking on a lock whose holder was not copied.
    #[cfg(unix)]
    #[test]
    fn a_child_never_blocks_on_the_pool_lock_fork_caught_held() {
        let config = Config::builder("http://127.0.0.1:9")
            .hmac_auth("a", "s")
            .build()
            .unwrap();
        let client = Client::new(config).unwrap();
        let pool = &client.inner.pool;
        let hold = |held: &dyn Fn()| {
            let _guard = pool.agent.lock();
            held();
        };
        let answer = crate::fork::testing::in_child(Some(&hold), || {
            let start = Instant::now();
            drop(pool.agent());
            drop(pool.agent());
            format!("two agents in {} ms", start.elapsed().as_millis())
        })
        .unwrap();
        let ms: u64 = answer["two agents in ".len()..]
            .trim_end_matches(" ms")
            .parse()
            .unwrap();
        assert!(ms < 1000, "{answer}");
    }

    #[test]
    fn a_ca_bundle_adds_to_the_built_in_roots() {
        let dir = std::env::temp_dir().join(format!("fotp-roots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = dir.join("one.pem");
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        std::fs::write(&pem, params.self_signed(&key).unwrap().pem()).unwrap();
        let config = Config::builder("https://x")
            .hmac_auth("a", "s")
            .ca_bundle(&pem)
            .build()
            .unwrap();
        match agent_settings(&config).unwrap().tls_config().root_certs() {
            ureq::tls::RootCerts::Specific(certs) => assert_eq!(
                certs.len(),
                webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() + 1,
                "built-in roots plus the bundle's"
            ),
            other => panic!("unexpected roots {other:?}"),
        }
        // Without a bundle: ureq's default, the same Mozilla roots.
        let plain = Config::builder("https://x")
            .hmac_auth("a", "s")
            .build()
            .unwrap();
        assert!(matches!(
            agent_settings(&plain).unwrap().tls_config().root_certs(),
            ureq::tls::RootCerts::WebPki
        ));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn retry_after_values() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("18446744073709551615", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse_retry_after("184467440737095516150", now),
            Some(Duration::MAX)
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        for bad in [
            "",
            "-1",
            "+1",
            "1.5",
            "soon",
            "1e3",
            "Mon, 32 Jan 2024 00:00:00 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn one_notion_of_transient() {
        let e = |kind, status| Error::new(kind, "x").with_http_status(status);
        assert!(is_transient(&e(ErrorKind::Network, 0)));
        assert!(is_transient(&e(ErrorKind::Timeout, 0)));
        assert!(is_transient(&e(ErrorKind::HttpStatus, 429)));
        assert!(is_transient(&e(ErrorKind::HttpStatus, 503)));
        assert!(is_transient(&Error::api("500001", "busy", 502)));
        assert!(!is_transient(&e(ErrorKind::HttpStatus, 404)));
        assert!(!is_transient(&Error::api("100001", "bad auth", 200)));
        assert!(!is_transient(&e(ErrorKind::Decode, 200)));
        assert!(!is_transient(&e(ErrorKind::InvalidArgument, 0)));
    }

    #[test]
    fn confirm_compares_status_code_and_mobile() {
        let cb = crate::parse_callback(include_bytes!("../tests/data/callback.json")).unwrap();
        let mut r = QueryResult {
            status: Status::Success,
            raw_status: "2".into(),
            mobile: Some(cb.mobile.clone()),
            sender: None,
            send_time: None,
            code: Some(cb.code.clone()),
            deliver_time: None,
        };
        assert!(confirms(&r, &cb));
        r.code = Some("0000".into());
        assert!(!confirms(&r, &cb));
        r.code = Some(cb.code.clone());
        r.mobile = Some("1".into());
        assert!(!confirms(&r, &cb));
        r.mobile = None;
        assert!(!confirms(&r, &cb));
        r.mobile = Some(cb.mobile.clone());
        r.status = Status::Processing;
        assert!(!confirms(&r, &cb));
    }
}
