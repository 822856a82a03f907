//! The blocking client: verify, query, wait and callback confirmation.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::Agent;

use crate::callback::Callback;
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::sign::constant_time_eq;
use crate::wire::{self, QueryResult, Status, Verification, VerifyRequest};

/// The largest response body accepted, in bytes.
pub const MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

const CONTENT_TYPE: &str = "application/json;charset=utf-8";
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(2);

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
    agent: Agent,
    verify_uri: Uri,
    query_uri: Uri,
    config: Config,
}

enum Idempotency {
    /// Retried on any transient failure (query).
    Idempotent,
    /// Retried only when the request surely never reached the server (verify).
    Unsafe,
}

impl Client {
    /// Builds a client. Nothing is sent on the network.
    pub fn new(config: Config) -> Result<Client> {
        let verify_uri = endpoint(&config, "/flash/opt/verify")?;
        let query_uri = endpoint(&config, "/flash/opt/query")?;
        let mut builder = Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(config.user_agent.as_str())
            .max_redirects(0)
            .max_idle_connections(64)
            .max_idle_connections_per_host(64);
        // Loopback never goes through a proxy: the sandbox and local tests must stay local.
        builder = builder.proxy(if config.base.loopback {
            None
        } else {
            ureq::Proxy::try_from_env()
        });
        if !config.extra_roots.is_empty() {
            let mut roots: Vec<_> = config.extra_roots.iter().cloned().collect();
            roots.extend(system_roots());
            builder = builder.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
                    .build(),
            );
        }
        let agent = Agent::with_parts(
            builder.build(),
            DefaultConnector::new(),
            LiteralResolver::default(),
        );
        Ok(Client {
            inner: Arc::new(Inner {
                agent,
                verify_uri,
                query_uri,
                config,
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

    /// A client that shares this one's connection pool with another time limit per call.
    ///
    /// Bindings use it to apply a caller's deadline (a Go context, an asyncio timeout).
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        let mut config = self.inner.config.clone();
        config.timeout = timeout.max(Duration::from_millis(1));
        config.connect_timeout = config.connect_timeout.min(config.timeout);
        Client {
            inner: Arc::new(Inner {
                agent: self.inner.agent.clone(),
                verify_uri: self.inner.verify_uri.clone(),
                query_uri: self.inner.query_uri.clone(),
                config,
            }),
        }
    }

    /// Asks the platform for a redirect link and code.
    ///
    /// The input is checked before anything is sent. verify is not idempotent: it is retried
    /// only when the request surely never reached the server.
    pub fn verify(&self, req: &VerifyRequest) -> Result<Verification> {
        let body = req.body()?;
        let deadline = Instant::now() + self.inner.config.timeout;
        let (status, bytes) =
            self.send(&self.inner.verify_uri, &body, deadline, Idempotency::Unsafe)?;
        wire::decode_envelope(status, &bytes)
    }

    /// Pulls the result of a verification.
    pub fn query(&self, ft_token: &str) -> Result<QueryResult> {
        let deadline = Instant::now() + self.inner.config.timeout;
        self.query_until(ft_token, deadline)
    }

    fn query_until(&self, ft_token: &str, deadline: Instant) -> Result<QueryResult> {
        let body = wire::query_body(ft_token)?;
        let (status, bytes) = self.send(
            &self.inner.query_uri,
            &body,
            deadline,
            Idempotency::Idempotent,
        )?;
        wire::decode_envelope(status, &bytes)
    }

    /// Polls query until the status is no longer processing, or `timeout` passes (then a
    /// timeout error). The time limit bounds the whole wait, a query in flight included.
    pub fn wait(&self, ft_token: &str, timeout: Duration) -> Result<QueryResult> {
        crate::validate::ft_token(ft_token)?;
        let start = Instant::now();
        let deadline = start + timeout;
        let mut interval = self
            .inner
            .config
            .poll_interval
            .min(Duration::from_millis(250));
        loop {
            let call_deadline = deadline.min(Instant::now() + self.inner.config.timeout);
            match self.query_until(ft_token, call_deadline) {
                Ok(r) if r.status != Status::Processing => return Ok(r),
                Ok(_) => {}
                // A transient failure: the platform may come back before the deadline.
                Err(e) if matches!(e.kind(), ErrorKind::Network | ErrorKind::Timeout) => {}
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            if now + interval >= deadline {
                if let Some(left) = deadline.checked_duration_since(now) {
                    std::thread::sleep(left);
                }
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("no final status within {} ms", timeout.as_millis()),
                ));
            }
            std::thread::sleep(interval);
            interval = (interval * 2).min(self.inner.config.poll_interval);
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
        deadline: Instant,
        idempotency: Idempotency,
    ) -> Result<(u16, Vec<u8>)> {
        let cfg = &self.inner.config;
        let mut attempt: u32 = 0;
        loop {
            let outcome = self.attempt(uri, body, deadline);
            let retryable = match &outcome {
                Ok((status, _, _)) => {
                    matches!(idempotency, Idempotency::Idempotent)
                        && (*status == 429 || (500..600).contains(status))
                }
                Err(f) => match idempotency {
                    Idempotency::Idempotent => f.transient,
                    Idempotency::Unsafe => f.transient && !f.reached_server,
                },
            };
            if !retryable || attempt >= cfg.retries {
                return outcome.map(|(s, b, _)| (s, b)).map_err(Failure::into_error);
            }
            let retry_after = outcome.as_ref().ok().and_then(|(_, _, ra)| *ra);
            let pause = retry_after.unwrap_or_else(|| backoff(attempt));
            let now = Instant::now();
            // Never sleep past the deadline: answer with what we have instead.
            if now + pause >= deadline {
                return outcome.map(|(s, b, _)| (s, b)).map_err(Failure::into_error);
            }
            std::thread::sleep(pause);
            attempt += 1;
        }
    }

    fn attempt(
        &self,
        uri: &Uri,
        body: &[u8],
        deadline: Instant,
    ) -> std::result::Result<(u16, Vec<u8>, Option<Duration>), Failure> {
        let cfg = &self.inner.config;
        let remaining = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| Failure::final_(timeout_error(cfg.timeout)))?;
        let headers = cfg.signer.sign(body).map_err(Failure::final_)?;
        let mut req = self
            .inner
            .agent
            .post(uri)
            .header("Content-Type", CONTENT_TYPE)
            .header("Accept", "application/json");
        for (name, value) in &headers {
            req = req.header(name.as_str(), value.as_str());
        }
        // A global limit per call bounds every phase, a dripped body included; the resolver
        // below keeps it from costing a thread per request.
        let req = req
            .config()
            .timeout_global(Some(remaining))
            .timeout_connect(Some(cfg.connect_timeout.min(remaining)))
            .build();
        let mut resp = req.send(body).map_err(|e| classify(e, cfg.timeout))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
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
                    let mut f = classify(other, cfg.timeout);
                    f.reached_server = true;
                    f.error = f.error.with_http_status(status);
                    f
                }
            })?;
        Ok((status, bytes, retry_after))
    }
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
    /// Worth another attempt (network trouble, time-outs).
    transient: bool,
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
            transient: false,
            reached_server: true,
        }
    }
}

fn timeout_error(limit: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!(
            "the request did not complete within {} ms",
            limit.as_millis()
        ),
    )
}

fn classify(e: ureq::Error, limit: Duration) -> Failure {
    use ureq::Error as E;
    let network = |msg: String, reached: bool| Failure {
        error: Error::new(ErrorKind::Network, msg),
        transient: true,
        reached_server: reached,
    };
    match e {
        E::Timeout(t) => {
            let before_send = matches!(t, ureq::Timeout::Resolve | ureq::Timeout::Connect);
            let error = if before_send {
                Error::new(ErrorKind::Timeout, format!("connecting timed out ({t})"))
            } else {
                timeout_error(limit)
            };
            Failure {
                error,
                transient: true,
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
                    error: timeout_error(limit),
                    transient: true,
                    reached_server: true,
                };
            }
            network(format!("I/O error: {io}"), !refused)
        }
        E::Tls(msg) => Failure {
            error: Error::new(ErrorKind::Network, format!("TLS error: {msg}")),
            transient: false,
            reached_server: false,
        },
        E::Rustls(err) => Failure {
            error: Error::new(ErrorKind::Network, format!("TLS error: {err}")),
            transient: false,
            reached_server: false,
        },
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

fn system_roots() -> Vec<ureq::tls::Certificate<'static>> {
    // Extra roots add to the system's, they do not replace them.
    let path = std::env::var_os("SSL_CERT_FILE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
    let Ok(data) = std::fs::read(path) else {
        return Vec::new();
    };
    ureq::tls::parse_pem(&data)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
            _ => None,
        })
        .collect()
}

/// Resolves IP literals and `localhost` in place, and leaves real names to ureq's resolver.
///
/// ureq's default resolver spawns a thread per request whenever a time limit is set, which
/// doubles the cost of a loopback call; an address needs no lookup at all.
#[derive(Debug, Default)]
struct LiteralResolver {
    fallback: DefaultResolver,
}

impl Resolver for LiteralResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> std::result::Result<ResolvedSocketAddrs, ureq::Error> {
        let Some(host) = uri.host() else {
            return self.fallback.resolve(uri, config, timeout);
        };
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let mut out = self.empty();
        if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
            out.push(std::net::SocketAddr::new(ip, port));
            return Ok(out);
        }
        if bare.eq_ignore_ascii_case("localhost") {
            out.push(std::net::SocketAddr::new(
                std::net::Ipv4Addr::LOCALHOST.into(),
                port,
            ));
            out.push(std::net::SocketAddr::new(
                std::net::Ipv6Addr::LOCALHOST.into(),
                port,
            ));
            return Ok(out);
        }
        self.fallback.resolve(uri, config, timeout)
    }
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
