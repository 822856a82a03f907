//! Who may drive the sandbox: its own origin only (CONTRACT.md section 7).
//!
//! The sandbox's own paths need no signature (a browser on the phone page performs the
//! uplink), so without these checks any web page in the same browser could drive it (a
//! `text/plain` or form POST goes cross-site without a CORS preflight) and DNS rebinding could
//! read `/sandbox/sessions` (every token and code). The rules, in order:
//!
//! 1. `Host` names the sandbox: `localhost`, the IP address the client connected to, or a name
//!    given with `--public-host` / `--public-url`. A rebinding page's requests carry its own
//!    name, so they stop here. Ports are not compared, so port mappings keep working.
//! 2. Requests that change state (any method but GET and HEAD): `Origin` and `Referer`, when
//!    present, are this origin (`Origin: null` is foreign), and `Sec-Fetch-Site`, when present,
//!    is `same-origin` or `none`.
//! 3. With a control token, `/` and the `/sandbox/*` control paths need it (the phone page and
//!    its form are guarded by the unguessable `ftToken` in their path instead).
//! 4. `/sandbox/*` bodies are `application/json`, except the phone page's own form.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::uri::Authority;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::state::Shared;

/// The address a connection was accepted on: the address the client dialled.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LocalAddr(Option<SocketAddr>);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for LocalAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        LocalAddr(stream.io().local_addr().ok())
    }
}

/// The accepted names and the optional control token.
pub(crate) struct Policy {
    /// Lower-case host names and IP literals accepted besides `localhost` and the dialled address.
    names: Vec<String>,
    control_token: Option<fotp::Secret>,
}

/// The host part of an authority (`name`, `name:port`, `[v6]:port`), lower case, without
/// brackets or a trailing dot, and its port.
fn split_authority(s: &str) -> Option<(String, Option<u16>)> {
    let a: Authority = s.parse().ok()?;
    // Userinfo has no place in Host or Origin.
    if a.as_str().contains('@') {
        return None;
    }
    let host = a.host().trim_start_matches('[').trim_end_matches(']');
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    Some((host, a.port_u16()))
}

/// Checks a `--public-host` value: a host name or IP address, no port, no path.
pub fn check_public_host(name: &str) -> Result<String, String> {
    match split_authority(name) {
        Some((host, None)) if !name.contains('/') => Ok(host),
        _ => Err(format!(
            "public host {name:?} must be a host name or IP address without port or path"
        )),
    }
}

impl Policy {
    pub(crate) fn new(
        public_hosts: &[String],
        public_url: &str,
        control_token: Option<fotp::Secret>,
    ) -> Result<Policy, String> {
        let mut names = Vec::new();
        for h in public_hosts {
            names.push(check_public_host(h)?);
        }
        if let Some(host) = public_url
            .parse::<Uri>()
            .ok()
            .and_then(|u| u.authority().and_then(|a| split_authority(a.as_str())))
        {
            names.push(host.0);
        }
        Ok(Policy {
            names,
            control_token: control_token.filter(|t| !t.is_empty()),
        })
    }

    fn host_is_ours(&self, host: &str, local: Option<SocketAddr>) -> bool {
        if host == "localhost" || self.names.iter().any(|n| n == host) {
            return true;
        }
        match (host.parse::<IpAddr>(), local) {
            (Ok(ip), Some(l)) => ip.to_canonical() == l.ip().to_canonical(),
            _ => false,
        }
    }

    fn token_ok(&self, req: &Request) -> bool {
        let Some(want) = &self.control_token else {
            return true;
        };
        let want = want.expose().as_bytes();
        let from_header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            // The scheme name is case-insensitive (RFC 9110).
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        if let Some(got) = from_header {
            return fotp::__internals::constant_time_eq(got.as_bytes(), want);
        }
        // The dashboard is opened in a browser, which cannot add a header to a link.
        if matches!(*req.method(), Method::GET | Method::HEAD) {
            if let Some(q) = req.uri().query() {
                for (k, v) in form_pairs(q) {
                    if k == "controlToken" {
                        return fotp::__internals::constant_time_eq(v.as_bytes(), want);
                    }
                }
            }
        }
        false
    }
}

fn form_pairs(q: &str) -> impl Iterator<Item = (String, String)> + '_ {
    q.split('&').filter_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let dec = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        };
        Some((dec(k)?, dec(v)?))
    })
}

/// True when `url`'s scheme, host and port are those of a request addressed to `host`.
fn same_origin(url: &str, host: &str, host_port: Option<u16>) -> bool {
    let Ok(uri) = url.parse::<Uri>() else {
        return false;
    };
    let default_port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return false,
    };
    let Some((h, p)) = uri.authority().and_then(|a| split_authority(a.as_str())) else {
        return false;
    };
    h == host && p.unwrap_or(default_port) == host_port.unwrap_or(default_port)
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    // A header that is not text counts as present and foreign.
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

fn refuse(s: &Shared, req: &Request, status: StatusCode, message: String) -> Response {
    s.log(format_args!(
        "refused {} {}: {message}",
        req.method(),
        req.uri().path()
    ));
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"fotp sandbox\""),
        );
    }
    resp
}

/// A control path: `/` and `/sandbox/*` except the phone page's form target.
fn is_control(path: &str) -> bool {
    path == "/" || (path.starts_with("/sandbox/") && !path.starts_with("/sandbox/send/"))
}

/// The middleware applying the rules above to every request.
pub(crate) async fn guard(
    State(s): State<Arc<Shared>>,
    ConnectInfo(local): ConnectInfo<LocalAddr>,
    req: Request,
    next: Next,
) -> Response {
    let headers = req.headers();
    let Some(host_value) = header_text(headers, header::HOST) else {
        return refuse(
            &s,
            &req,
            StatusCode::FORBIDDEN,
            "the Host header is missing".into(),
        );
    };
    let Some((host, port)) =
        split_authority(host_value).filter(|(h, _)| s.policy.host_is_ours(h, local.0))
    else {
        return refuse(
            &s,
            &req,
            StatusCode::FORBIDDEN,
            format!(
                "Host {host_value:?} does not name this sandbox (accepted: localhost, the \
                 address it was reached at, and names given with --public-host or --public-url)"
            ),
        );
    };
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD);
    if unsafe_method {
        if let Some(site) = header_text(headers, header::HeaderName::from_static("sec-fetch-site"))
        {
            if !(site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none")) {
                return refuse(
                    &s,
                    &req,
                    StatusCode::FORBIDDEN,
                    format!("a request from another site (Sec-Fetch-Site: {site:?})"),
                );
            }
        }
        for name in [header::ORIGIN, header::REFERER] {
            if let Some(v) = header_text(headers, name.clone()) {
                if !same_origin(v, &host, port) {
                    return refuse(
                        &s,
                        &req,
                        StatusCode::FORBIDDEN,
                        format!("{name} {v:?} is not this sandbox's origin"),
                    );
                }
            }
        }
    }
    let path = req.uri().path().to_owned();
    if is_control(&path) && !s.policy.token_ok(&req) {
        return refuse(
            &s,
            &req,
            StatusCode::UNAUTHORIZED,
            format!(
                "{path} needs the sandbox's control token (header `Authorization: Bearer \
                 TOKEN`, or `?controlToken=TOKEN` on the dashboard's URL)"
            ),
        );
    }
    if unsafe_method && path.starts_with("/sandbox/") && !path.starts_with("/sandbox/send/") {
        let ct = header_text(req.headers(), header::CONTENT_TYPE).unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/json") {
            return refuse(
                &s,
                &req,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("{path} takes Content-Type application/json (got {ct:?})"),
            );
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_are_normalised() {
        assert_eq!(
            split_authority("LocalHost.:8788"),
            Some(("localhost".into(), Some(8788)))
        );
        assert_eq!(split_authority("[::1]:80"), Some(("::1".into(), Some(80))));
        assert_eq!(split_authority("a@b:1"), None);
        assert_eq!(split_authority(""), None);
        assert!(check_public_host("phone.local").is_ok());
        assert!(check_public_host("phone.local:80").is_err());
        assert!(check_public_host("http://x/").is_err());
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert!(same_origin(
            "http://127.0.0.1:8788",
            "127.0.0.1",
            Some(8788)
        ));
        assert!(same_origin(
            "http://127.0.0.1:8788/flash/opt/redirect/x",
            "127.0.0.1",
            Some(8788)
        ));
        assert!(same_origin("https://sb.example", "sb.example", None));
        assert!(same_origin("http://sb.example:80", "sb.example", None));
        assert!(!same_origin(
            "http://127.0.0.1:9999",
            "127.0.0.1",
            Some(8788)
        ));
        assert!(!same_origin(
            "http://evil.example:8788",
            "127.0.0.1",
            Some(8788)
        ));
        assert!(!same_origin("null", "127.0.0.1", Some(8788)));
        assert!(!same_origin("file:///x", "127.0.0.1", Some(8788)));
    }
}
