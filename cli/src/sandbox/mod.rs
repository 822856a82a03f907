//! `fotp sandbox`: a local stand-in for the Flash OTP platform (CONTRACT.md section 7).
//!
//! It speaks the platform's wire protocol (`/flash/opt/verify`, `/flash/opt/query`, envelope,
//! `hmac-sha256` authentication, input rules) and adds what a developer needs to test without a
//! phone: a redirect page standing for the phone, `POST /sandbox/uplink` to simulate the user's
//! SMS, callback pushes with retries, `GET /sandbox/sessions` and an HTML dashboard at `/`.
//!
//! Sandbox-only extras (not part of the platform): `POST /sandbox/clock {"advanceMs": N}` moves
//! the sandbox's session clock forward so that expiry can be tested without waiting, and the
//! error code `400001` when the live-session limit is reached.

mod auth;
mod callbacks;
mod html;
mod origin;
mod state;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;

pub use auth::NONCE_ENTRY_BYTES;
pub use origin::check_public_host;
use state::{ApiError, Shared, UplinkRequest};
pub use state::{Logger, Template};

/// Default application id.
pub const DEFAULT_APP_ID: &str = "sandbox";
/// Default application secret.
pub const DEFAULT_APP_SECRET: &str = "sandbox-secret";
/// Default template id.
pub const DEFAULT_FT_ID: &str = "2";
/// Default sender number (the number the user's SMS goes to).
pub const DEFAULT_SENDER: &str = "1008611";
/// Default number of live sessions past which verify is refused.
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;
/// Default number of nonces remembered within the replay window.
pub const DEFAULT_MAX_NONCES: usize = 1_000_000;

// Error codes of the sandbox (CONTRACT.md section 7), plus the session limit (sandbox-only).
const AUTH_FAILED: &str = "100001";
const BAD_TIMESTAMP: &str = "100002";
const NONCE_REPLAYED: &str = "100003";
const INVALID_PARAMETER: &str = "200001";
const UNKNOWN_FT_ID: &str = "200002";
const UNKNOWN_FT_TOKEN: &str = "300001";
const REPLAY_STORE_FULL: &str = "100004";
const SESSION_LIMIT: &str = "400001";

/// How the sandbox is set up. `Options::default()` is what `fotp sandbox` uses without flags,
/// except that the address is an ephemeral loopback port.
#[derive(Clone)]
pub struct Options {
    /// Where to listen (port 0: any free port).
    pub addr: SocketAddr,
    /// The accepted application id.
    pub app_id: String,
    /// The accepted application secret (never logged, never in `Debug`).
    pub app_secret: fotp::Secret,
    /// Templates; template `2` without a callback URL is always added unless listed here.
    pub templates: Vec<Template>,
    /// The number the user's SMS is addressed to.
    pub sender: String,
    /// Live (unexpired) sessions past which verify is refused with code `400001`.
    pub max_sessions: usize,
    /// Attempts per callback delivery (at least 3).
    pub callback_attempts: u32,
    /// Pause before the second attempt; doubles for each further attempt (capped at 5 s).
    pub callback_backoff: Duration,
    /// Time limit of one callback attempt.
    pub callback_timeout: Duration,
    /// How long an expired session stays queryable (as failed) before it is evicted.
    pub retention: Duration,
    /// The base URL put into redirect links (default: the listening address). Its host is
    /// accepted in `Host` like the `public_hosts`.
    pub public_url: Option<String>,
    /// Host names (or IP addresses) the sandbox answers to besides `localhost` and the address
    /// a client connected to, e.g. the machine's name on the LAN. Other `Host`s get HTTP 403.
    pub public_hosts: Vec<String>,
    /// When set, `/` and the `/sandbox/*` control paths need it (`Authorization: Bearer`).
    pub control_token: Option<fotp::Secret>,
    /// Nonces remembered at most; past this, signed requests get `100004` until some expire.
    pub max_nonces: usize,
    /// Where log lines go.
    pub logger: Logger,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            app_id: DEFAULT_APP_ID.into(),
            app_secret: fotp::Secret::new(DEFAULT_APP_SECRET),
            templates: Vec::new(),
            sender: DEFAULT_SENDER.into(),
            max_sessions: DEFAULT_MAX_SESSIONS,
            callback_attempts: 5,
            callback_backoff: Duration::from_millis(200),
            callback_timeout: Duration::from_secs(5),
            retention: Duration::from_secs(600),
            public_url: None,
            public_hosts: Vec::new(),
            control_token: None,
            max_nonces: DEFAULT_MAX_NONCES,
            logger: Logger::none(),
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("addr", &self.addr)
            .field("app_id", &self.app_id)
            .field("app_secret", &self.app_secret)
            .field("templates", &self.templates)
            .field("sender", &self.sender)
            .field("max_sessions", &self.max_sessions)
            .field("callback_attempts", &self.callback_attempts)
            .field("public_hosts", &self.public_hosts)
            .field("control_token", &self.control_token)
            .field("max_nonces", &self.max_nonces)
            .finish_non_exhaustive()
    }
}

/// A running sandbox. Dropping it stops the server.
pub struct Sandbox {
    addr: SocketAddr,
    base_url: String,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<io::Result<()>>>,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox")
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl Sandbox {
    /// Binds `options.addr` and serves on the current tokio runtime.
    pub async fn start(options: Options) -> io::Result<Sandbox> {
        Self::start_until(options, std::future::pending()).await
    }

    /// Like [`Sandbox::start`], and also stops when `signal` completes (e.g. SIGTERM).
    pub async fn start_until(
        options: Options,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> io::Result<Sandbox> {
        if options.callback_attempts < 3 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "callback attempts must be at least 3",
            ));
        }
        if options.max_sessions == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the session limit must be at least 1",
            ));
        }
        if options.max_nonces == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the nonce limit must be at least 1",
            ));
        }
        let listener = tokio::net::TcpListener::bind(options.addr).await?;
        let addr = listener.local_addr()?;
        let base_url = base_url_for(addr);
        let public = options
            .public_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| base_url.clone());
        let shared = Arc::new(Shared::new(options, public)?);
        let app = router(shared.clone()).into_make_service_with_connect_info::<origin::LocalAddr>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stop = async move {
                tokio::select! {
                    _ = stop_rx => {}
                    _ = signal => {}
                }
            };
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
        });
        Ok(Sandbox {
            addr,
            base_url,
            shared,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (what `FOTP_BASE_URL` should be).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Moves the session clock forward (expiry without waiting). Authentication keeps using
    /// the real clock, since clients sign with it. The total offset saturates at 1000 years,
    /// so no advance can make a new session expire early.
    pub fn advance_clock(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// The `/sandbox/sessions` document.
    pub fn sessions_json(&self) -> Value {
        self.shared.sessions_json()
    }

    /// Waits until the server stopped (after a signal given to [`Sandbox::start_until`]).
    pub async fn wait(mut self) -> io::Result<()> {
        match self.task.take() {
            Some(t) => t.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }

    /// Stops the server and waits for it (in-flight requests finish first).
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.wait().await
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn base_url_for(addr: SocketAddr) -> String {
    let ip = addr.ip();
    // An unspecified address listens everywhere, loopback included.
    let shown = if ip.is_unspecified() {
        match ip {
            std::net::IpAddr::V4(_) => "127.0.0.1".to_owned(),
            std::net::IpAddr::V6(_) => "[::1]".to_owned(),
        }
    } else if ip.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    format!("http://{shown}:{}", addr.port())
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/flash/opt/verify", post(verify))
        .route("/flash/opt/query", post(query))
        .route("/flash/opt/redirect/{token}", get(redirect_page))
        .route("/sandbox/send/{token}", post(send_form))
        .route("/sandbox/uplink", post(uplink))
        .route("/sandbox/sessions", get(sessions))
        .route("/sandbox/clock", post(clock))
        .route("/openapi.yaml", get(openapi))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            origin::guard,
        ))
        .layer(axum::middleware::map_response(private_headers))
        // Outermost: sees every request, the origin check's refusals included.
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            log_request,
        ))
        .with_state(shared)
}

/// One log line per request served: method, path (never the query string or the body, which
/// may carry codes and signatures), status and time taken.
async fn log_request(
    State(s): State<Arc<Shared>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    s.log(format_args!(
        "{method} {path} -> {} in {} ms",
        resp.status().as_u16(),
        started.elapsed().as_millis()
    ));
    resp
}

/// Pages and answers carry codes and tokens: keep them out of caches and out of `Referer`
/// headers to other sites. `same-origin`, not `no-referrer`: under `no-referrer` browsers
/// send the phone page's own form with `Origin: null`, which the origin check must refuse.
async fn private_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        axum::http::header::REFERRER_POLICY,
        axum::http::HeaderValue::from_static("same-origin"),
    );
    h.insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    resp
}

/// The success envelope.
fn ok(data: Value) -> Response {
    Json(json!({"code": "000000", "success": true, "message": "请求成功", "data": data}))
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        Json(json!({"code": self.code, "success": false, "message": self.message, "data": null}))
            .into_response()
    }
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::invalid("the body must be a JSON object")),
        Err(e) => Err(ApiError::invalid(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

/// A string-or-integer field; `null` and absence are `None`.
fn opt_str(m: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
        Some(_) => Err(ApiError::invalid(format!("{name} must be a string"))),
    }
}

fn req_str(m: &Map<String, Value>, name: &str) -> Result<String, ApiError> {
    opt_str(m, name)?.ok_or_else(|| ApiError::invalid(format!("{name} is missing")))
}

fn opt_u64(m: &Map<String, Value>, name: &str) -> Result<Option<u64>, ApiError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::invalid(format!("{name} must be a whole number >= 0"))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("{name} must be a whole number >= 0"))),
        Some(_) => Err(ApiError::invalid(format!("{name} must be a whole number"))),
    }
}

async fn verify(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result = (|| {
        s.authenticate(&headers, &body)?;
        let m = parse_object(&body)?;
        let ft_id = req_str(&m, "ftId")?;
        fotp::__internals::ft_id(&ft_id).map_err(ApiError::from_core)?;
        let code = opt_str(&m, "code")?;
        if let Some(c) = &code {
            fotp::__internals::code(c).map_err(ApiError::from_core)?;
        }
        let validity = match opt_str(&m, "validityPeriod")? {
            None => None,
            Some(v) => {
                let n: u32 = v.trim().parse().map_err(|_| {
                    ApiError::invalid("validityPeriod must be a whole number of minutes (1-10)")
                })?;
                fotp::__internals::validity_minutes(n).map_err(ApiError::from_core)?;
                Some(n)
            }
        };
        s.create_session(&ft_id, code, validity)
    })();
    match result {
        Ok(data) => ok(data),
        Err(e) => {
            s.log(format_args!("verify refused: {} {}", e.code, e.message));
            e.into_response()
        }
    }
}

async fn query(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result = (|| {
        s.authenticate(&headers, &body)?;
        let m = parse_object(&body)?;
        let token = req_str(&m, "ftToken")?;
        fotp::__internals::ft_token(&token).map_err(ApiError::from_core)?;
        s.query(&token)
    })();
    match result {
        Ok(data) => ok(data),
        Err(e) => {
            s.log(format_args!("query refused: {} {}", e.code, e.message));
            e.into_response()
        }
    }
}

async fn uplink(State(s): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let result = (|| {
        let m = parse_object(&body)?;
        let ft_token = opt_str(&m, "ftToken")?;
        if let Some(t) = &ft_token {
            fotp::__internals::ft_token(t).map_err(ApiError::from_core)?;
        }
        let deliveries = opt_u64(&m, "deliveries")?.unwrap_or(1);
        if !(1..=10).contains(&deliveries) {
            return Err(ApiError::invalid("deliveries must be 1-10"));
        }
        let delay_ms = opt_u64(&m, "delayMs")?.unwrap_or(0);
        if delay_ms > 600_000 {
            return Err(ApiError::invalid("delayMs must be at most 600000"));
        }
        Ok(UplinkRequest {
            ft_token,
            mobile: req_str(&m, "mobile")?,
            content: req_str(&m, "content")?,
            deliveries: deliveries as u32,
            delay: Duration::from_millis(delay_ms),
        })
    })()
    .and_then(|req| s.uplink(req));
    match result {
        Ok(data) => ok(data),
        Err(e) => {
            s.log(format_args!("uplink refused: {} {}", e.code, e.message));
            e.into_response()
        }
    }
}

async fn sessions(State(s): State<Arc<Shared>>) -> Json<Value> {
    Json(s.sessions_json())
}

async fn clock(State(s): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let result = parse_object(&body).and_then(|m| {
        let ms =
            opt_u64(&m, "advanceMs")?.ok_or_else(|| ApiError::invalid("advanceMs is missing"))?;
        s.clock.advance(Duration::from_millis(ms));
        s.log(format_args!("clock advanced by {ms} ms"));
        Ok(json!({"offsetMs": s.clock.offset_ms(), "now": s.clock.now_ms()}))
    });
    match result {
        Ok(data) => ok(data),
        Err(e) => e.into_response(),
    }
}

/// `docs/openapi.yaml`, so that other tools can load the description from the sandbox.
pub const OPENAPI_YAML: &str = include_str!("../../../docs/openapi.yaml");

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/yaml")],
        OPENAPI_YAML,
    )
        .into_response()
}

async fn dashboard(State(s): State<Arc<Shared>>) -> Html<String> {
    Html(html::dashboard(&s))
}

async fn redirect_page(State(s): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    match s.phone_view(&token) {
        state::PhoneView::Unknown => (
            StatusCode::NOT_FOUND,
            Html(html::message_page(
                "Unknown link",
                "This verification link does not exist.",
            )),
        )
            .into_response(),
        state::PhoneView::Expired => (
            StatusCode::GONE,
            Html(html::message_page(
                "Link expired",
                "This verification link has expired. Ask the app for a new one.",
            )),
        )
            .into_response(),
        state::PhoneView::Live(view) => Html(html::phone_page(&view)).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct SendForm {
    mobile: String,
    content: String,
}

async fn send_form(
    State(s): State<Arc<Shared>>,
    Path(token): Path<String>,
    Form(form): Form<SendForm>,
) -> Response {
    let req = UplinkRequest {
        ft_token: Some(token),
        mobile: form.mobile,
        content: form.content,
        deliveries: 1,
        delay: Duration::ZERO,
    };
    match s.uplink(req) {
        Ok(data) => Html(html::sent_page(&data)).into_response(),
        Err(e) => {
            let status = match e.code {
                UNKNOWN_FT_TOKEN => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_REQUEST,
            };
            (status, Html(html::message_page("Not sent", &e.message))).into_response()
        }
    }
}
