//! Client configuration: a builder, and the `FOTP_*` environment variables.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ureq::http::Uri;

use crate::error::{Error, Result};
use crate::sign::{
    HmacHeaderNames, HmacSha256Signer, Secret, Signer, TokenHeaderNames, TokenSigner,
};

/// Default time limit of one attempt (connecting included).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default connect time limit.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default number of retries (after the first attempt).
pub const DEFAULT_RETRIES: u32 = 2;

#[derive(Clone)]
enum AuthSpec {
    Hmac { app_id: String, secret: Secret },
    Token { app_key: String, token: Secret },
    Custom(Arc<dyn Signer>),
}

impl fmt::Debug for AuthSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthSpec::Hmac { app_id, .. } => write!(f, "hmac-sha256(appId={app_id:?})"),
            AuthSpec::Token { app_key, .. } => write!(f, "token(appKey={app_key:?})"),
            AuthSpec::Custom(s) => write!(f, "custom({s:?})"),
        }
    }
}

/// Builds a [`Config`]. Nothing is checked until [`ConfigBuilder::build`].
///
/// ```
/// use std::time::Duration;
/// let config = fotp::Config::builder("https://otp.example.com/otp-api")
///     .hmac_auth("my-app", "my-secret")
///     .timeout(Duration::from_secs(5))
///     .retries(1)
///     .build()
///     .unwrap();
/// assert_eq!(config.timeout(), Duration::from_secs(5));
/// ```
#[derive(Clone, Debug)]
pub struct ConfigBuilder {
    base_url: Option<String>,
    auth: Option<AuthSpec>,
    hmac_names: HmacHeaderNames,
    token_names: TokenHeaderNames,
    timeout: Duration,
    connect_timeout: Duration,
    retries: u32,
    allow_insecure_http: bool,
    user_agent_suffix: Option<String>,
    ca_bundle: Option<CaSource>,
    poll_interval: Duration,
    call_timeout: Option<Duration>,
    proxy: ProxySetting,
}

/// Where extra trusted roots come from.
#[derive(Clone)]
enum CaSource {
    /// Read by [`ConfigBuilder::build`].
    Path(PathBuf),
    /// Read already (the C ABI reads the file when it is set).
    Loaded(PathBuf, Arc<Vec<ureq::tls::Certificate<'static>>>),
}

impl fmt::Debug for CaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaSource::Path(p) => write!(f, "{}", p.display()),
            CaSource::Loaded(p, c) => write!(f, "{} ({} certificates)", p.display(), c.len()),
        }
    }
}

/// Which proxy a client uses.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) enum ProxySetting {
    /// `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`, never for a loopback base URL (the default).
    #[default]
    Env,
    /// No proxy at all.
    Direct,
    /// This proxy, for every request (a loopback base URL included).
    Url(String),
}

/// Shows where the proxy is, never its credentials.
impl fmt::Debug for ProxySetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySetting::Env => f.write_str("environment"),
            ProxySetting::Direct => f.write_str("none"),
            ProxySetting::Url(u) => match u.trim().parse::<Uri>() {
                Ok(uri) => write!(
                    f,
                    "{}://{}",
                    uri.scheme_str().unwrap_or("?"),
                    uri.authority()
                        .map(|a| a.as_str().rsplit('@').next().unwrap_or(""))
                        .unwrap_or_default()
                ),
                Err(_) => f.write_str("(invalid)"),
            },
        }
    }
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        ConfigBuilder {
            base_url: None,
            auth: None,
            hmac_names: HmacHeaderNames::default(),
            token_names: TokenHeaderNames::default(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            allow_insecure_http: false,
            user_agent_suffix: None,
            ca_bundle: None,
            poll_interval: Duration::from_secs(1),
            call_timeout: None,
            proxy: ProxySetting::Env,
        }
    }
}

impl ConfigBuilder {
    /// An empty builder (no base URL, no credentials, default limits).
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder filled from the `FOTP_*` environment variables (see the crate documentation).
    ///
    /// Fails with a config error when a variable is set to a value that does not parse.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`ConfigBuilder::from_env`], reading variables through `get` (for tests and for
    /// applications that keep settings elsewhere).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let mut b = ConfigBuilder::new();
        b.base_url = get("FOTP_BASE_URL");
        let scheme = get("FOTP_AUTH").unwrap_or_else(|| "hmac-sha256".into());
        match scheme.as_str() {
            "hmac-sha256" => {
                if let (Some(id), Some(secret)) = (get("FOTP_APP_ID"), get("FOTP_APP_SECRET")) {
                    b = b.hmac_auth(id, secret);
                }
            }
            "token" => {
                if let (Some(key), Some(token)) = (get("FOTP_APP_KEY"), get("FOTP_TOKEN")) {
                    b = b.token_auth(key, token);
                }
            }
            other => {
                return Err(Error::config(format!(
                    "FOTP_AUTH must be `hmac-sha256` or `token`, got {other:?}"
                )))
            }
        }
        let ms = |name: &str| -> Result<Option<Duration>> {
            get(name)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map(Duration::from_millis)
                        .map_err(|_| {
                            Error::config(format!(
                                "{name} must be a number of milliseconds, got {v:?}"
                            ))
                        })
                })
                .transpose()
        };
        if let Some(t) = ms("FOTP_TIMEOUT_MS")? {
            b.timeout = t;
        }
        if let Some(t) = ms("FOTP_CONNECT_TIMEOUT_MS")? {
            b.connect_timeout = t;
        }
        if let Some(v) = get("FOTP_RETRIES") {
            b.retries = v.trim().parse().map_err(|_| {
                Error::config(format!("FOTP_RETRIES must be a whole number, got {v:?}"))
            })?;
        }
        if let Some(v) = get("FOTP_ALLOW_INSECURE_HTTP") {
            b.allow_insecure_http = match v.as_str() {
                "1" | "true" => true,
                "0" | "false" => false,
                _ => {
                    return Err(Error::config(format!(
                        "FOTP_ALLOW_INSECURE_HTTP must be 1 or 0, got {v:?}"
                    )))
                }
            };
        }
        b.ca_bundle = get("FOTP_CA_BUNDLE").map(|p| CaSource::Path(PathBuf::from(p)));
        Ok(b)
    }

    /// The platform's base URL, e.g. `https://otp.example.com/otp-api`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Authenticates with the `hmac-sha256` scheme.
    pub fn hmac_auth(mut self, app_id: impl Into<String>, app_secret: impl Into<String>) -> Self {
        self.auth = Some(AuthSpec::Hmac {
            app_id: app_id.into(),
            secret: Secret::new(app_secret),
        });
        self
    }

    /// Authenticates with the `token` scheme.
    pub fn token_auth(mut self, app_key: impl Into<String>, token: impl Into<String>) -> Self {
        self.auth = Some(AuthSpec::Token {
            app_key: app_key.into(),
            token: Secret::new(token),
        });
        self
    }

    /// Authenticates with a signer of your own, replacing the built-in schemes.
    pub fn signer(mut self, signer: impl Signer) -> Self {
        self.auth = Some(AuthSpec::Custom(Arc::new(signer)));
        self
    }

    /// Header names of the `hmac-sha256` scheme.
    pub fn hmac_header_names(mut self, names: HmacHeaderNames) -> Self {
        self.hmac_names = names;
        self
    }

    /// Header names of the `token` scheme.
    pub fn token_header_names(mut self, names: TokenHeaderNames) -> Self {
        self.token_names = names;
        self
    }

    /// The time limit of one attempt, connecting included. Default 10 s.
    ///
    /// A query attempt that runs out of it is retried like any transient failure; without a
    /// [`call_timeout`](ConfigBuilder::call_timeout), a call never runs longer than
    /// (retries + 1) × timeout plus the pauses between attempts.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// The time limit of a whole call: every attempt and pause (for `wait`, the smaller of this
    /// and its own limit). `Duration::ZERO` means none beyond the per-attempt limits (the
    /// default). Any duration is accepted; one too long to represent means none.
    pub fn call_timeout(mut self, t: Duration) -> Self {
        self.call_timeout = (!t.is_zero()).then_some(t);
        self
    }

    /// Sends every request through this proxy (`http://host:port` or `https://host:port`,
    /// credentials allowed), a loopback base URL included. Checked by
    /// [`build`](ConfigBuilder::build). Default: the environment (`HTTPS_PROXY`, `HTTP_PROXY`,
    /// `NO_PROXY`), never for a loopback base URL.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = ProxySetting::Url(url.into());
        self
    }

    /// Uses no proxy at all, whatever the environment says.
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxySetting::Direct;
        self
    }

    /// The time limit to open a connection. Default 3 s.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Retries after the first attempt (see the retry policy). Default 2.
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// Allows `http://` to hosts that are not loopback. Off by default.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Appended to `User-Agent: fotp/<version>`, e.g. `python/3.11`.
    pub fn user_agent_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.user_agent_suffix = Some(suffix.into());
        self
    }

    /// A PEM file of extra trusted root certificates, added to the built-in (Mozilla) roots;
    /// read by [`build`](ConfigBuilder::build). Default: `FOTP_CA_BUNDLE`.
    pub fn ca_bundle(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_bundle = Some(CaSource::Path(path.into()));
        self
    }

    /// Like [`ca_bundle`](ConfigBuilder::ca_bundle), but reads the file now: a config error
    /// names the problem (unreadable, not PEM, no certificate).
    pub fn load_ca_bundle(mut self, path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let certs = load_pem(&path)?;
        self.ca_bundle = Some(CaSource::Loaded(path, Arc::new(certs)));
        Ok(self)
    }

    /// How often `wait` polls query at most. Default 1 s.
    pub fn poll_interval(mut self, t: Duration) -> Self {
        self.poll_interval = t;
        self
    }

    /// Checks everything and returns the configuration.
    ///
    /// Config errors: no base URL, a URL that does not parse or is `http://` to a host that is
    /// not loopback (unless insecure HTTP is allowed), missing or malformed credentials, a zero
    /// time limit, an unreadable CA bundle.
    pub fn build(self) -> Result<Config> {
        let raw = self
            .base_url
            .ok_or_else(|| Error::config("the base URL is not set (FOTP_BASE_URL)"))?;
        let base = parse_base_url(&raw, self.allow_insecure_http)?;
        let mut hmac = None;
        let signer: Arc<dyn Signer> = match self.auth {
            None => {
                return Err(Error::config(
                    "no credentials: set FOTP_APP_ID and FOTP_APP_SECRET (or the token scheme)",
                ))
            }
            Some(AuthSpec::Hmac { app_id, secret }) => {
                check_header_value("app id", &app_id)?;
                if secret.is_empty() {
                    return Err(Error::config("the app secret is empty"));
                }
                let s = Arc::new(HmacSha256Signer::with_header_names(
                    app_id,
                    &secret,
                    self.hmac_names,
                ));
                hmac = Some(s.clone());
                s
            }
            Some(AuthSpec::Token { app_key, token }) => {
                check_header_value("app key", &app_key)?;
                if token.is_empty() {
                    return Err(Error::config("the token is empty"));
                }
                if !token
                    .expose()
                    .bytes()
                    .all(|b| b == b' ' || b.is_ascii_graphic())
                {
                    return Err(Error::config("the token must be visible ASCII"));
                }
                Arc::new(TokenSigner::with_header_names(
                    app_key,
                    token,
                    self.token_names,
                ))
            }
            Some(AuthSpec::Custom(s)) => s,
        };
        if self.timeout.is_zero() {
            return Err(Error::config("the timeout must be greater than zero"));
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::config(
                "the connect timeout must be greater than zero",
            ));
        }
        if let Some(s) = &self.user_agent_suffix {
            if !s.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
                return Err(Error::config("the User-Agent suffix must be visible ASCII"));
            }
        }
        let ca_bundle = self.ca_bundle.or_else(|| {
            std::env::var_os("FOTP_CA_BUNDLE")
                .filter(|v| !v.is_empty())
                .map(|p| CaSource::Path(PathBuf::from(p)))
        });
        let extra_roots = match ca_bundle {
            Some(CaSource::Path(path)) => Arc::new(load_pem(&path)?),
            Some(CaSource::Loaded(_, certs)) => certs,
            None => Arc::new(Vec::new()),
        };
        if let ProxySetting::Url(url) = &self.proxy {
            check_proxy(url)?;
        }
        Ok(Config {
            base,
            signer,
            hmac,
            timeout: self.timeout,
            call_timeout: self.call_timeout,
            proxy: self.proxy,
            connect_timeout: self.connect_timeout.min(self.timeout),
            retries: self.retries,
            user_agent: match self.user_agent_suffix {
                Some(s) if !s.is_empty() => format!("fotp/{} {s}", crate::VERSION),
                _ => format!("fotp/{}", crate::VERSION),
            },
            extra_roots,
            poll_interval: self.poll_interval.max(Duration::from_millis(10)),
        })
    }
}

/// A checked configuration, ready for [`Client::new`](crate::Client::new).
#[derive(Clone)]
pub struct Config {
    pub(crate) base: BaseUrl,
    pub(crate) signer: Arc<dyn Signer>,
    /// The same signer when it is the built-in `hmac-sha256` one: the client signs through
    /// its typed path (`HmacSha256Signer::sign_typed`).
    pub(crate) hmac: Option<Arc<HmacSha256Signer>>,
    pub(crate) timeout: Duration,
    pub(crate) call_timeout: Option<Duration>,
    pub(crate) proxy: ProxySetting,
    pub(crate) connect_timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) user_agent: String,
    pub(crate) extra_roots: Arc<Vec<ureq::tls::Certificate<'static>>>,
    pub(crate) poll_interval: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("base_url", &self.base.url)
            .field("signer", &self.signer)
            .field("timeout", &self.timeout)
            .field("call_timeout", &self.call_timeout)
            .field("proxy", &self.proxy)
            .field("connect_timeout", &self.connect_timeout)
            .field("retries", &self.retries)
            .field("user_agent", &self.user_agent)
            .field("extra_roots", &self.extra_roots.len())
            .finish()
    }
}

impl Config {
    /// A builder with `base_url` set.
    pub fn builder(base_url: impl Into<String>) -> ConfigBuilder {
        ConfigBuilder::new().base_url(base_url)
    }

    /// The configuration described by the `FOTP_*` environment variables.
    pub fn from_env() -> Result<Config> {
        ConfigBuilder::from_env()?.build()
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base.url
    }

    /// The time limit of one attempt, connecting included.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The time limit of a whole call, if any (see [`ConfigBuilder::call_timeout`]).
    pub fn call_timeout(&self) -> Option<Duration> {
        self.call_timeout
    }

    /// The time limit to open a connection.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Retries after the first attempt.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The `User-Agent` header sent with every request.
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }
}

#[derive(Clone, Debug)]
pub(crate) struct BaseUrl {
    pub(crate) url: String,
    pub(crate) loopback: bool,
}

fn check_header_value(what: &str, v: &str) -> Result<()> {
    if v.is_empty() {
        return Err(Error::config(format!("the {what} is empty")));
    }
    if !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::config(format!("the {what} must be visible ASCII")));
    }
    Ok(())
}

/// True for `localhost`, `127.0.0.0/8` and `[::1]` (IPv6 in brackets, as in a URL, or bare).
///
/// Other names are not loopback, `*.localhost` included: only `localhost` is pinned to a
/// loopback address, others would go through DNS.
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks an explicit proxy URL: a CONNECT proxy over http:// or https://.
pub(crate) fn check_proxy(url: &str) -> Result<ureq::Proxy> {
    let bad = |why: &str| Error::config(format!("the proxy URL is not usable: {why}"));
    let lower = url.trim().to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(bad(
            "it must start with http:// or https:// (SOCKS is not supported)",
        ));
    }
    let proxy = ureq::Proxy::new(url.trim()).map_err(|_| bad("it does not parse"))?;
    if proxy.host().is_empty() {
        return Err(bad("it has no host"));
    }
    Ok(proxy)
}

fn parse_base_url(raw: &str, allow_insecure: bool) -> Result<BaseUrl> {
    let trimmed = raw.trim_end_matches('/');
    let uri: Uri = trimmed
        .parse()
        .map_err(|e| Error::config(format!("the base URL {raw:?} does not parse: {e}")))?;
    let scheme = uri.scheme_str().unwrap_or("");
    let host = uri.host().unwrap_or("");
    if host.is_empty() {
        return Err(Error::config(format!("the base URL {raw:?} has no host")));
    }
    // RFC 3986: brackets hold only an IPv6 (or IPvFuture) literal.
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        if inner.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(Error::config(format!(
                "the base URL {raw:?} has brackets around something that is not an IPv6 address"
            )));
        }
    }
    if uri.query().is_some() {
        return Err(Error::config(format!(
            "the base URL {raw:?} must not have a query"
        )));
    }
    if trimmed.contains('@') {
        return Err(Error::config(
            "the base URL must not carry user information",
        ));
    }
    let loopback = is_loopback_host(host);
    match scheme {
        "https" => {}
        "http" if loopback || allow_insecure => {}
        "http" => {
            return Err(Error::config(format!(
                "the base URL {raw:?} uses plain HTTP to a host that is not loopback; use https:// \
                 or allow insecure HTTP explicitly (FOTP_ALLOW_INSECURE_HTTP=1)"
            )))
        }
        _ => {
            return Err(Error::config(format!(
                "the base URL {raw:?} must start with https:// (or http:// to a loopback host)"
            )))
        }
    }
    Ok(BaseUrl {
        url: trimmed.to_owned(),
        loopback,
    })
}

fn load_pem(path: &std::path::Path) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let data = std::fs::read(path)
        .map_err(|e| Error::config(format!("cannot read the CA bundle {}: {e}", path.display())))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&data) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c.to_owned()),
            Ok(_) => {}
            Err(e) => {
                return Err(Error::config(format!(
                    "the CA bundle {} is not valid PEM: {e}",
                    path.display()
                )))
            }
        }
    }
    if certs.is_empty() {
        return Err(Error::config(format!(
            "the CA bundle {} holds no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn cfg(url: &str) -> Result<Config> {
        Config::builder(url).hmac_auth("a", "s").build()
    }

    #[test]
    fn url_rules() {
        assert!(cfg("https://otp.example.com/otp-api").is_ok());
        assert!(cfg("http://127.0.0.1:8788").is_ok());
        assert!(cfg("http://127.5.6.7").is_ok());
        assert!(cfg("http://localhost:1/").is_ok());
        assert!(cfg("http://[::1]:80").is_ok());
        assert_eq!(
            cfg("http://localhost:1/").unwrap().base_url(),
            "http://localhost:1"
        );
        for bad in [
            "http://otpdev.cm253.com/otp-api",
            "http://10.0.0.1",
            "http://127.0.0.1.example.com",
            "ftp://x",
            "otp.example.com",
            "",
            "https://",
            "https://a b",
            "https://user:pw@host",
            "https://host/?q=1",
        ] {
            let e = cfg(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
        }
        let ok = Config::builder("http://otpdev.cm253.com/otp-api")
            .hmac_auth("a", "s")
            .allow_insecure_http(true)
            .build();
        assert!(ok.is_ok());
    }

    #[test]
    fn loopback_means_literal_addresses_and_localhost() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.255.0.9",
            "[::1]",
            "::1",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "foo.localhost",
            "localhost.example.com",
            "[127.0.0.1]",
            "[localhost]",
            "10.0.0.1",
            "[::2]",
            "example.com",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
        // *.localhost would go through DNS: plain HTTP to it needs the explicit opt-in.
        let e = cfg("http://app.localhost:8788").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(cfg("https://app.localhost:8788").is_ok());
        assert!(Config::builder("http://app.localhost:8788")
            .hmac_auth("a", "s")
            .allow_insecure_http(true)
            .build()
            .is_ok());
        assert!(!cfg("https://app.localhost").unwrap().base.loopback);
        // Brackets hold only IPv6 (RFC 3986), even with insecure HTTP allowed.
        for bad in [
            "http://[127.0.0.1]/",
            "https://[127.0.0.1]:443",
            "http://[localhost]:1",
        ] {
            let e = Config::builder(bad)
                .hmac_auth("a", "s")
                .allow_insecure_http(true)
                .build()
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
        }
        assert!(cfg("http://[::1]:8788").unwrap().base.loopback);
        assert!(cfg("http://localhost:8788").unwrap().base.loopback);
    }

    #[test]
    fn proxy_and_call_timeout_settings() {
        let b = || Config::builder("https://x").hmac_auth("a", "s");
        assert_eq!(b().build().unwrap().proxy, ProxySetting::Env);
        assert_eq!(b().no_proxy().build().unwrap().proxy, ProxySetting::Direct);
        let c = b().proxy("http://user:pw@proxy:3128").build().unwrap();
        assert_eq!(
            c.proxy,
            ProxySetting::Url("http://user:pw@proxy:3128".into())
        );
        // Debug shows where the proxy is, not its credentials.
        let shown = format!("{c:?}");
        assert!(
            shown.contains("proxy:3128") && !shown.contains("pw"),
            "{shown}"
        );
        let client = crate::Client::new(c.clone()).unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("pw"), "{shown}");
        let shown = format!("{:?}", b().proxy("http://user:pw@proxy:3128"));
        assert!(
            shown.contains("proxy:3128") && !shown.contains("pw"),
            "{shown}"
        );
        for bad in ["socks5://proxy:1080", "proxy:3128", "http://", ""] {
            let e = b().proxy(bad).build().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
            assert!(e.message().contains("proxy"), "{e}");
        }
        assert_eq!(b().build().unwrap().call_timeout(), None);
        assert_eq!(
            b().call_timeout(Duration::ZERO)
                .build()
                .unwrap()
                .call_timeout(),
            None
        );
        assert_eq!(
            b().call_timeout(Duration::MAX)
                .build()
                .unwrap()
                .call_timeout(),
            Some(Duration::MAX)
        );
    }

    #[test]
    fn credentials_required() {
        let e = Config::builder("https://x").build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let e = Config::builder("https://x")
            .hmac_auth("", "s")
            .build()
            .unwrap_err();
        assert!(e.message().contains("app id"));
        let e = Config::builder("https://x")
            .hmac_auth("a", "")
            .build()
            .unwrap_err();
        assert!(e.message().contains("secret"));
        let e = ConfigBuilder::new()
            .hmac_auth("a", "s")
            .build()
            .unwrap_err();
        assert!(e.message().contains("base URL"));
        let e = Config::builder("https://x")
            .token_auth("k", "")
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }

    #[test]
    fn from_lookup_reads_everything() {
        let env = |k: &str| {
            Some(
                match k {
                    "FOTP_BASE_URL" => "http://127.0.0.1:9",
                    "FOTP_AUTH" => "token",
                    "FOTP_APP_KEY" => "key",
                    "FOTP_TOKEN" => "tok",
                    "FOTP_TIMEOUT_MS" => "2500",
                    "FOTP_CONNECT_TIMEOUT_MS" => "500",
                    "FOTP_RETRIES" => "5",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let c = ConfigBuilder::from_lookup(env).unwrap().build().unwrap();
        assert_eq!(c.timeout(), Duration::from_millis(2500));
        assert_eq!(c.connect_timeout(), Duration::from_millis(500));
        assert_eq!(c.retries(), 5);
        assert!(format!("{:?}", c.signer).contains("AppKey") || format!("{c:?}").contains("key"));
        assert!(!format!("{c:?}").contains("tok\""));
    }

    #[test]
    fn from_lookup_rejects_garbage() {
        for (k, v) in [
            ("FOTP_TIMEOUT_MS", "ten"),
            ("FOTP_RETRIES", "-1"),
            ("FOTP_AUTH", "basic"),
            ("FOTP_ALLOW_INSECURE_HTTP", "yes please"),
        ] {
            let e =
                ConfigBuilder::from_lookup(|name| (name == k).then(|| v.to_string())).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.message().contains(k), "{e}");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let b = Config::builder("https://x").hmac_auth("app", "hunter2-secret");
        assert!(!format!("{b:?}").contains("hunter2"));
        assert!(!format!("{:?}", b.build().unwrap()).contains("hunter2"));
        let b = Config::builder("https://x").token_auth("key", "hunter2-token");
        assert!(!format!("{b:?}").contains("hunter2"));
        assert!(!format!("{:?}", b.build().unwrap()).contains("hunter2"));
    }

    #[test]
    fn user_agent() {
        let c = Config::builder("https://x")
            .hmac_auth("a", "s")
            .build()
            .unwrap();
        assert_eq!(c.user_agent(), format!("fotp/{}", crate::VERSION));
        let c = Config::builder("https://x")
            .hmac_auth("a", "s")
            .user_agent_suffix("python/3.11")
            .build()
            .unwrap();
        assert_eq!(
            c.user_agent(),
            format!("fotp/{} python/3.11", crate::VERSION)
        );
    }

    #[test]
    fn ca_bundle_errors() {
        let e = Config::builder("https://x")
            .hmac_auth("a", "s")
            .ca_bundle("/nonexistent/ca.pem")
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("/nonexistent/ca.pem"));
    }
}
