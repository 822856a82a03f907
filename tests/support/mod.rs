//! An in-process HTTP server (axum) that records every request and answers from a script.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("no header {name} in {:?}", self.headers))
    }
}

/// What the server does with a request.
pub enum Reply {
    /// Status, extra headers, body.
    Full(u16, Vec<(&'static str, String)>, Vec<u8>),
    /// Waits, then replies.
    After(Duration, Box<Reply>),
    /// A 200 whose body comes one byte per `Duration`.
    Drip(Vec<u8>, Duration),
    /// A 200 that promises `Content-Length` bytes, sends the first half, then drops the connection.
    CutMidBody(Vec<u8>),
    /// A 200 with a body of `n` bytes of JSON-looking filler, streamed.
    Huge(usize),
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Full(status, vec![], body.as_bytes().to_vec())
    }
}

type Script = dyn Fn(usize, &Recorded) -> Reply + Send + Sync;
type Shared = (Arc<Mutex<Vec<Recorded>>>, Arc<Script>);

pub struct Server {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    /// Starts a server; `script(n, req)` answers the n-th request (0-based).
    pub fn start(script: impl Fn(usize, &Recorded) -> Reply + Send + Sync + 'static) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state: Shared = (requests.clone(), Arc::new(script));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(handle).with_state(state);
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server {
            addr,
            requests,
            _runtime: runtime,
        }
    }

    /// Answers every request with the same JSON body.
    pub fn always(status: u16, body: &'static str) -> Server {
        Server::start(move |_, _| Reply::json(status, body))
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

async fn handle(
    State((requests, script)): State<Shared>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap().to_vec();
    let rec = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        headers: parts.headers,
        body,
    };
    let n = {
        let mut all = requests.lock().unwrap();
        all.push(rec.clone());
        all.len() - 1
    };
    let reply = script(n, &rec);
    render(reply).await
}

async fn render(mut reply: Reply) -> Response {
    loop {
        match reply {
            Reply::After(d, next) => {
                tokio::time::sleep(d).await;
                reply = *next;
            }
            Reply::Full(status, headers, body) => {
                let mut resp = Response::new(Body::from(body));
                *resp.status_mut() = StatusCode::from_u16(status).unwrap();
                resp.headers_mut()
                    .insert("content-type", HeaderValue::from_static("application/json"));
                for (k, v) in headers {
                    resp.headers_mut()
                        .insert(k, HeaderValue::from_str(&v).unwrap());
                }
                return resp;
            }
            Reply::Drip(bytes, every) => {
                let stream = futures_util::stream::unfold(0usize, move |i| {
                    let bytes = bytes.clone();
                    async move {
                        if i >= bytes.len() {
                            return None;
                        }
                        tokio::time::sleep(every).await;
                        Some((Ok::<_, std::io::Error>(Bytes::from(vec![bytes[i]])), i + 1))
                    }
                });
                return Response::new(Body::from_stream(stream));
            }
            Reply::CutMidBody(bytes) => {
                let half = Bytes::from(bytes[..bytes.len() / 2].to_vec());
                let stream = futures_util::stream::iter(vec![
                    Ok(half),
                    Err(std::io::Error::other("connection cut by the test server")),
                ]);
                let mut resp = Response::new(Body::from_stream(stream));
                resp.headers_mut().insert(
                    "content-length",
                    HeaderValue::from_str(&bytes.len().to_string()).unwrap(),
                );
                return resp;
            }
            Reply::Huge(n) => {
                const CHUNK: usize = 64 * 1024;
                let stream = futures_util::stream::unfold(0usize, move |sent| async move {
                    if sent >= n {
                        return None;
                    }
                    let len = CHUNK.min(n - sent);
                    Some((
                        Ok::<_, std::io::Error>(Bytes::from(vec![b' '; len])),
                        sent + len,
                    ))
                });
                let mut resp = Response::new(Body::from_stream(stream));
                resp.headers_mut().insert(
                    "content-length",
                    HeaderValue::from_str(&n.to_string()).unwrap(),
                );
                return resp;
            }
        }
    }
}

pub const VERIFY_OK: &str = include_str!("../data/verify-response.json");
pub const QUERY_OK: &str = include_str!("../data/query-response.json");

pub fn query_status(status: &str) -> String {
    format!(r#"{{"code":"000000","success":true,"message":"ok","data":{{"status":"{status}"}}}}"#)
}

pub fn client_for(
    server: &Server,
    tune: impl FnOnce(fotp::ConfigBuilder) -> fotp::ConfigBuilder,
) -> fotp::Client {
    let builder = fotp::Config::builder(server.url()).hmac_auth("sandbox", "sandbox-secret");
    fotp::Client::new(tune(builder).build().unwrap()).unwrap()
}
