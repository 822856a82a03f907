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
    /// A 200 whose headers arrive and whose body never does.
    HeadersThenSilence,
    /// A 200 with a chunked body that never ends.
    Endless,
    /// A 200 that declares `Content-Length: declared` and sends `body`.
    WrongLength(usize, Vec<u8>),
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
        Server::launch(script, |listener, app| async move {
            axum::serve(listener, app).await.unwrap()
        })
    }

    /// Binds a loopback port on a runtime of its own and runs `serve` with the app answering
    /// from `script`.
    fn launch<Fut>(
        script: impl Fn(usize, &Recorded) -> Reply + Send + Sync + 'static,
        serve: impl FnOnce(tokio::net::TcpListener, Router) -> Fut,
    ) -> Server
    where
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
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
        runtime.spawn(serve(listener, app));
        Server {
            addr,
            requests,
            _runtime: runtime,
        }
    }

    /// Like [`Server::start`], over TLS with a certificate for `localhost` issued by a fresh CA
    /// whose PEM is returned.
    pub fn start_tls(
        script: impl Fn(usize, &Recorded) -> Reply + Send + Sync + 'static,
    ) -> (Server, String) {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use hyper_util::service::TowerToHyperService;

        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let server = Server::launch(script, |listener, app| async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake: not an error here.
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
                        .await;
                });
            }
        });
        (server, ca_cert.pem())
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

async fn handle(State((requests, script)): State<Shared>, req: Request) -> Response {
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
            Reply::HeadersThenSilence => {
                let stream = futures_util::stream::pending::<Result<Bytes, std::io::Error>>();
                return Response::new(Body::from_stream(stream));
            }
            Reply::Endless => {
                let stream = futures_util::stream::repeat_with(|| {
                    Ok::<_, std::io::Error>(Bytes::from_static(&[b' '; 16 * 1024]))
                });
                return Response::new(Body::from_stream(stream));
            }
            Reply::WrongLength(declared, body) => {
                let stream =
                    futures_util::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(body))]);
                let mut resp = Response::new(Body::from_stream(stream));
                resp.headers_mut().insert(
                    "content-length",
                    HeaderValue::from_str(&declared.to_string()).unwrap(),
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

/// Checks an `hmac-sha256` `sign` header independently of the code under test (the `hmac`
/// crate directly, per docs/CONTRACT.md section 1).
#[allow(dead_code)]
pub fn hmac_sign_ok(
    secret: &[u8],
    app_id: &str,
    ts: &str,
    nonce: &str,
    body: &[u8],
    sign: &str,
) -> bool {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    for part in [
        app_id.as_bytes(),
        b"\n",
        ts.as_bytes(),
        b"\n",
        nonce.as_bytes(),
        b"\n",
        body,
    ] {
        mac.update(part);
    }
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    want == sign
}

/// Milliseconds since the Unix epoch.
#[allow(dead_code)]
pub fn now_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}
