//! The benchmarks' HTTP server: answers verify and query with the seed's sample bodies
//! (tests/data), with keep-alive, and `GET /` with a hello-world. It checks nothing, so it
//! measures the clients, and is the ceiling of the sandbox (same stack: axum on tokio).
//!
//! `fotp-bench-server [--threads N] [--nodelay]`: N = 1 runs a single-threaded runtime
//! (the latency cases, pinned to one core); prints `FOTP_BASE_URL=...` first, then serves
//! until killed.

use std::io::Write;

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;

const VERIFY: &[u8] = include_bytes!("../../../tests/data/verify-response.json");
const QUERY: &[u8] = include_bytes!("../../../tests/data/query-response.json");
const JSON: &str = "application/json;charset=utf-8";

fn main() {
    let mut threads = 1usize;
    let mut nodelay = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => {
                threads = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage("--threads needs a positive number"))
            }
            "--nodelay" => nodelay = true,
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    }
    .enable_all()
    .build()
    .expect("cannot start the tokio runtime");
    rt.block_on(serve(nodelay));
}

fn usage(msg: &str) -> ! {
    eprintln!("fotp-bench-server: {msg}\nusage: fotp-bench-server [--threads N] [--nodelay]");
    std::process::exit(2);
}

async fn serve(nodelay: bool) {
    // The body is read (as a real handler would) and ignored.
    let app = Router::new()
        .route(
            "/flash/opt/verify",
            post(|_body: Bytes| async { ([(CONTENT_TYPE, JSON)], VERIFY) }),
        )
        .route(
            "/flash/opt/query",
            post(|_body: Bytes| async { ([(CONTENT_TYPE, JSON)], QUERY) }),
        )
        .route("/", get(|| async { "Hello, World!" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("cannot bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("no local address");
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "FOTP_BASE_URL=http://{addr}")
            .and_then(|()| out.flush())
            .ok();
    }
    if nodelay {
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await.expect("server failed");
    } else {
        // As the sandbox serves (the ceiling must use the same settings).
        axum::serve(listener, app).await.expect("server failed");
    }
}
