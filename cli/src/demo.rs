//! `fotp demo`: the whole flow on loopback, in-process, with no configuration.

use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use fotp::{Client, Config, Error, ErrorKind, Settlement, Tracker};
use fotp_cli::sandbox::{self, Sandbox, Template};

const MOBILE: &str = "8613800138000";

fn internal(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Internal, format!("{what}: {e}"))
}

pub fn run() -> Result<std::process::ExitCode, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| internal("cannot start the runtime", e))?;

    // The tracker gives each verification a code no other live one holds, so a callback (which
    // names no token) finds its verification; settling it confirms it with the platform first,
    // so exactly one genuine delivery counts, whatever else is posted to the endpoint.
    let tracker = Arc::new(Tracker::memory());
    // The receiver settles through the client, which needs the sandbox's address: set below.
    let settle_client: Arc<OnceLock<Client>> = Arc::default();

    // The app's push endpoint: parse with the core, settle with the tracker, answer as
    // CONTRACT.md section 8 says (ACK; 503 while the platform does not confirm).
    let (cb_tx, cb_rx) = mpsc::channel::<(fotp::Callback, Settlement)>();
    let (receiver_tracker, receiver_client) = (tracker.clone(), settle_client.clone());
    let receiver = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| internal("cannot open the callback receiver", e))?;
    let receiver_addr = receiver.local_addr().map_err(|e| internal("receiver", e))?;
    let app = Router::new().route(
        "/callback",
        post(move |body: Bytes| {
            let tx = cb_tx.clone();
            let (tracker, client) = (receiver_tracker.clone(), receiver_client.clone());
            async move {
                let cb = match fotp::parse_callback(&body) {
                    Ok(cb) => cb,
                    Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
                };
                // settle queries the platform (blocking): keep it off the async workers.
                let settled = tokio::task::spawn_blocking(move || {
                    let client = client.get().ok_or_else(|| {
                        Error::new(ErrorKind::Internal, "the demo's client is not ready")
                    })?;
                    tracker.settle(client, &cb).map(|s| (cb, s))
                })
                .await
                .unwrap_or_else(|e| Err(internal("the receiver task failed", e)));
                match settled {
                    // Not confirmed (yet), or the platform could not be asked: nothing was
                    // consumed, and the platform delivers again.
                    Ok((_, Settlement::Unconfirmed)) | Err(_) => {
                        (StatusCode::SERVICE_UNAVAILABLE, "not confirmed yet").into_response()
                    }
                    Ok(pair) => {
                        let _ = tx.send(pair);
                        (
                            StatusCode::OK,
                            [(header::CONTENT_TYPE, "application/json")],
                            fotp::CALLBACK_ACK,
                        )
                            .into_response()
                    }
                }
            }
        }),
    );
    runtime.spawn(async move {
        let _ = axum::serve(receiver, app).await;
    });
    let callback_url = format!("http://{receiver_addr}/callback");

    let sb = runtime
        .block_on(Sandbox::start(sandbox::Options {
            templates: vec![Template {
                ft_id: sandbox::DEFAULT_FT_ID.into(),
                callback_url: Some(callback_url.clone()),
            }],
            ..Default::default()
        }))
        .map_err(|e| internal("cannot start the sandbox", e))?;
    let base = sb.base_url().to_owned();

    println!("fotp demo: Flash OTP from start to finish, all on this machine");
    println!("(no configuration, no network: a sandbox and a callback receiver run in-process)\n");
    println!("  platform (sandbox)   {base}");
    println!("  your push endpoint   {callback_url}\n");

    let client = Client::new(
        Config::builder(&base)
            .hmac_auth(sandbox::DEFAULT_APP_ID, sandbox::DEFAULT_APP_SECRET)
            .user_agent_suffix("cli-demo")
            .build()?,
    )?;
    let _ = settle_client.set(client.clone());

    println!(
        "1. Your backend calls verify for template {} through a tracker",
        sandbox::DEFAULT_FT_ID
    );
    let v = tracker.verify(&client, sandbox::DEFAULT_FT_ID, 4, None)?;
    println!("   ✓ link      {}", v.url);
    println!("     ftToken   {}", v.ft_token);
    println!("     code      {}", v.code);
    println!("   You show the link to the user (or this QR code, scanned by the phone):\n");
    if let Ok(qr) = crate::output::qr(&v.url) {
        for line in qr.lines() {
            println!("     {line}");
        }
    }

    let content = format!("[fotp sandbox] My verification code is {}", v.code);
    println!(
        "2. The user opens it; the phone sends the prepared SMS to {}:",
        sandbox::DEFAULT_SENDER
    );
    println!("   \"{content}\"  (from {MOBILE})");
    // Two deliveries: platforms retry, and the tracker must not count the SMS twice.
    uplink(&base, &v.ft_token, &content, 2)?;
    println!("   ✓ the platform received it\n");

    println!("3. Push mode: the platform POSTs the result to your callback address (twice here)");
    let mut confirmed = false;
    let mut first_matches = 0;
    for delivery in 1..=2 {
        let (cb, settled) = cb_rx
            .recv_timeout(Duration::from_secs(15))
            .map_err(|_| Error::new(ErrorKind::Timeout, "no callback arrived within 15 s"))?;
        println!(
            "   ✓ callback {delivery}  mobile {}, code {}, sent {} (answered {})",
            cb.mobile,
            cb.code,
            cb.send_time,
            fotp::CALLBACK_ACK
        );
        match settled {
            Settlement::First(m) if m.ft_token == v.ft_token => {
                first_matches += 1;
                confirmed = true;
                println!("     tracker   matched to ftToken {}", m.ft_token);
                println!(
                    "     ✓ confirmed with a query (status, code and mobile match) and settled: \
                     the first delivery, your handler runs"
                );
            }
            Settlement::Duplicate(m) => println!(
                "     tracker   a repeated delivery for {}, settled before: acknowledged, the \
                 handler does not run again",
                m.ft_token
            ),
            _ => println!("     ✗ tracker   no live verification holds this code"),
        }
    }
    println!();

    println!("4. Pull mode: your backend waits for the result (the settled callback wakes it)");
    let r = tracker.wait(&client, &v.ft_token, Duration::from_secs(15))?;
    println!(
        "   ✓ status {} ({}), mobile {}, code {}\n",
        r.raw_status,
        if r.status == fotp::Status::Success {
            "success"
        } else {
            "not success"
        },
        r.mobile.as_deref().unwrap_or("-"),
        r.code.as_deref().unwrap_or("-")
    );

    println!("Done. Next: run the sandbox yourself and point any fotp client at it:");
    println!(
        "   fotp sandbox        # push mode: add --template 2=http://127.0.0.1:8080/fotp/callback"
    );
    println!("   export FOTP_BASE_URL=http://127.0.0.1:8788 FOTP_APP_ID=sandbox FOTP_APP_SECRET=sandbox-secret");
    println!("   fotp verify --ft-id 2 --qr      # then open the link, press Send, and:");
    println!("   fotp wait <ftToken>");

    drop(sb);
    runtime.shutdown_timeout(Duration::from_millis(500));
    if confirmed && first_matches == 1 && r.status == fotp::Status::Success {
        Ok(std::process::ExitCode::SUCCESS)
    } else {
        Err(Error::new(
            ErrorKind::Internal,
            "the demo flow did not end in success",
        ))
    }
}

/// Simulates the user's SMS through the sandbox's `POST /sandbox/uplink`.
fn uplink(base: &str, token: &str, content: &str, deliveries: u32) -> Result<(), Error> {
    let body = serde_json::json!({
        "ftToken": token, "mobile": MOBILE, "content": content, "deliveries": deliveries
    });
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut resp = agent
        .post(format!("{base}/sandbox/uplink"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .map_err(|e| Error::new(ErrorKind::Network, format!("uplink failed: {e}")))?;
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| Error::new(ErrorKind::Network, format!("uplink failed: {e}")))?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::new(ErrorKind::Decode, format!("uplink answer: {e}")))?;
    if doc["code"] != "000000" {
        return Err(Error::new(
            ErrorKind::Api,
            format!("uplink refused: {text}"),
        ));
    }
    Ok(())
}
