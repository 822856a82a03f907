//! Push mode with a tracker: a callback endpoint that settles each callback (the platform
//! confirms it, then exactly one delivery per verification is the first), and a verification
//! that waits for it.
//!
//! `FOTP_BASE_URL=… FOTP_APP_ID=… FOTP_APP_SECRET=… cargo run --example push_tracker -- ADDR`
//! listens for callbacks on ADDR (default 127.0.0.1:8080, path /fotp/callback); register
//! `http://ADDR/fotp/callback` as the template's callback URL (`fotp sandbox --template
//! 2=http://ADDR/fotp/callback`). Set FOTP_REDIS_URL to share the tracker between instances.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("fotp: {e}");
            ExitCode::from(2)
        }
    }
}

/// What the callback endpoint does with a body (CONTRACT.md section 8).
fn on_callback(tracker: &fotp::Tracker, client: &fotp::Client, body: &[u8]) -> Response {
    let cb = match fotp::parse_callback(body) {
        Ok(cb) => cb,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    match tracker.settle(client, &cb) {
        Ok(fotp::Settlement::First(m)) => {
            // Your handler: the result is confirmed, act on it once. If acting fails,
            // `tracker.unsettle(&m)` and answer 500: the next delivery is offered again.
            println!("callback: code {} is {}", cb.code, m.ft_token);
        }
        Ok(fotp::Settlement::Duplicate(m)) => {
            println!("callback: repeated delivery for {}", m.ft_token)
        }
        Ok(fotp::Settlement::NoMatch) => {
            println!("callback: no live verification holds code {}", cb.code)
        }
        // Not confirmed by the platform (yet), or the store or the query failed: nothing was
        // consumed; 503 makes the platform deliver again.
        Ok(fotp::Settlement::Unconfirmed) => {
            return (StatusCode::SERVICE_UNAVAILABLE, "not confirmed").into_response()
        }
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
    let json = [(header::CONTENT_TYPE, "application/json")];
    (StatusCode::OK, json, fotp::CALLBACK_ACK).into_response()
}

fn run() -> fotp::Result<bool> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let tracker = Arc::new(match std::env::var("FOTP_REDIS_URL") {
        Ok(url) if !url.is_empty() => fotp::Tracker::redis(&url, "fotp-example")?,
        _ => fotp::Tracker::memory(),
    });
    let client = Arc::new(fotp::Client::from_env()?);

    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| fotp::Error::new(fotp::ErrorKind::Internal, e.to_string()))?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(&addr))
        .map_err(|e| fotp::Error::new(fotp::ErrorKind::Network, format!("{addr}: {e}")))?;
    let (endpoint, endpoint_client) = (tracker.clone(), client.clone());
    let app = Router::new().route(
        "/fotp/callback",
        // Settling blocks on the store and the platform: keep it off the async workers.
        post(move |body: Bytes| {
            let (tracker, client) = (endpoint.clone(), endpoint_client.clone());
            async move {
                tokio::task::spawn_blocking(move || on_callback(&tracker, &client, &body))
                    .await
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
            }
        }),
    );
    runtime.spawn(async move { axum::serve(listener, app).await });
    println!("callbacks: http://{addr}/fotp/callback");

    let v = tracker.verify(&client, "2", 4, None)?;
    println!("open on the phone: {}", v.url);
    println!("token {}", v.ft_token);
    let r = tracker.wait(&client, &v.ft_token, Duration::from_secs(120))?;
    println!("status {:?}", r.status);
    if r.status != fotp::Status::Success {
        return Ok(false);
    }
    // A real receiver keeps serving: the platform may deliver the same callback again.
    println!("still serving callbacks; Ctrl-C to stop");
    runtime.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    Ok(true)
}
