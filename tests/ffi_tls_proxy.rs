//! Per-client TLS roots and proxy through the C ABI: two clients in one process, each with its
//! own CA bundle or proxy, each works with its own settings only (no process-wide state).

mod support;

use std::ffi::{CStr, CString};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::ptr::null_mut;
use std::sync::{Arc, Mutex};

use fotp::ffi::*;
use support::{Reply, Server, QUERY_OK};

const TOKEN: &CStr = c"200e96b6a8bf8ed8c3de194cf14b342f";

/// A CONNECT proxy that records the targets it tunnelled to.
struct Proxy {
    url: String,
    targets: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let targets = Arc::new(Mutex::new(Vec::new()));
        let seen = targets.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let seen = seen.clone();
                std::thread::spawn(move || tunnel(conn, &seen));
            }
        });
        Proxy { url, targets }
    }

    fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}

fn tunnel(client: TcpStream, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
        let _ = (&client).write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n");
        return;
    };
    let target = target.to_string();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
            break;
        }
    }
    seen.lock().unwrap().push(target.clone());
    let upstream = TcpStream::connect(&target).unwrap();
    (&client)
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .unwrap();
    // Bytes the reader buffered past the head belong to the tunnel.
    let buffered = reader.buffer().to_vec();
    (&upstream).write_all(&buffered).unwrap();
    let (mut c_in, mut u_out) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_in, &mut u_out);
        let _ = u_out.shutdown(std::net::Shutdown::Write);
    });
    let (mut u_in, mut c_out) = (upstream, client);
    let _ = std::io::copy(&mut u_in, &mut c_out);
    let _ = c_out.shutdown(std::net::Shutdown::Write);
}

/// (kind, message) of an error, freed; panics on success.
fn take(e: *mut fotp_error) -> (i32, String) {
    assert!(!e.is_null(), "expected an error");
    // SAFETY: a live error, freed once here.
    unsafe {
        let out = (
            fotp_error_kind(e),
            CStr::from_ptr(fotp_error_message(e))
                .to_string_lossy()
                .into_owned(),
        );
        fotp_error_free(e);
        out
    }
}

fn ok(e: *mut fotp_error) {
    if !e.is_null() {
        panic!("unexpected error {:?}", take(e));
    }
}

/// A client of `url`; `ca` is a PEM path, `proxy` is Some(url) or Some(None) for "no proxy".
fn client(url: &str, ca: Option<&str>, proxy: Option<Option<&str>>) -> *mut fotp_client {
    let url = CString::new(url).unwrap();
    // SAFETY: live objects and NUL-terminated strings.
    unsafe {
        let c = fotp_config_new();
        ok(fotp_config_set_base_url(c, url.as_ptr()));
        ok(fotp_config_set_hmac_auth(c, c"a".as_ptr(), c"s".as_ptr()));
        fotp_config_set_retries(c, 0);
        fotp_config_set_timeout_ms(c, 5000);
        if let Some(ca) = ca {
            let ca = CString::new(ca).unwrap();
            ok(fotp_config_set_ca_bundle(c, ca.as_ptr()));
        }
        match proxy {
            Some(Some(p)) => {
                let p = CString::new(p).unwrap();
                ok(fotp_config_set_proxy(c, p.as_ptr()));
            }
            Some(None) => ok(fotp_config_set_proxy(c, std::ptr::null())),
            None => {}
        }
        let mut client = null_mut();
        ok(fotp_client_new(c, &mut client));
        fotp_config_free(c);
        client
    }
}

fn query(client: *mut fotp_client) -> Result<(), (i32, String)> {
    let mut r = null_mut();
    // SAFETY: a live client; `r` is writable.
    let e = unsafe { fotp_query(client, TOKEN.as_ptr(), &mut r) };
    if e.is_null() {
        // SAFETY: the result written on success.
        unsafe { fotp_query_result_free(r) };
        Ok(())
    } else {
        Err(take(e))
    }
}

#[test]
fn two_clients_with_their_own_ca_bundles() {
    let (server_a, ca_a) = Server::start_tls(|_, _| Reply::json(200, QUERY_OK));
    let (server_b, ca_b) = Server::start_tls(|_, _| Reply::json(200, QUERY_OK));
    let dir = std::env::temp_dir().join(format!("fotp-two-cas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (pem_a, pem_b) = (dir.join("a.pem"), dir.join("b.pem"));
    std::fs::write(&pem_a, ca_a).unwrap();
    std::fs::write(&pem_b, ca_b).unwrap();
    let (pem_a, pem_b) = (pem_a.to_str().unwrap(), pem_b.to_str().unwrap());
    let url_a = format!("https://localhost:{}", server_a.addr.port());
    let url_b = format!("https://localhost:{}", server_b.addr.port());

    // Built and used side by side, from two threads at once.
    let pairs = [
        (url_a.clone(), pem_a, true),
        (url_b.clone(), pem_b, true),
        (url_b, pem_a, false),
        (url_a, pem_b, false),
    ];
    std::thread::scope(|s| {
        for (url, pem, trusted) in &pairs {
            s.spawn(move || {
                let c = client(url, Some(pem), None);
                for _ in 0..3 {
                    match (query(c), trusted) {
                        (Ok(()), true) => {}
                        (Err((kind, message)), false) => {
                            assert_eq!(kind, FOTP_ERROR_NETWORK, "{message}");
                            assert!(message.contains("certificate"), "{message}");
                        }
                        (other, _) => panic!("{url} with {pem}: {other:?}"),
                    }
                }
                // SAFETY: no call uses it any more.
                unsafe { fotp_client_free(c) };
            });
        }
    });
    assert_eq!(server_a.count(), 3);
    assert_eq!(server_b.count(), 3);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn two_clients_with_their_own_proxies() {
    let (server, ca) = Server::start_tls(|_, _| Reply::json(200, QUERY_OK));
    let plain = Server::start(|_, _| Reply::json(200, QUERY_OK));
    let dir = std::env::temp_dir().join(format!("fotp-two-proxies-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = dir.join("ca.pem");
    std::fs::write(&pem, ca).unwrap();
    let pem = pem.to_str().unwrap();
    let (p1, p2) = (Proxy::start(), Proxy::start());
    let tls_url = format!("https://localhost:{}", server.addr.port());

    let via_p1 = client(&tls_url, Some(pem), Some(Some(&p1.url)));
    let via_p2 = client(&plain.url(), None, Some(Some(&p2.url)));
    let direct = client(&tls_url, Some(pem), Some(None));
    for _ in 0..2 {
        query(via_p1).unwrap();
        query(via_p2).unwrap();
        query(direct).unwrap();
    }
    // One tunnel each (keep-alive), to the right target; the direct client used none.
    let tls_target = format!("localhost:{}", server.addr.port());
    assert_eq!(p1.targets(), vec![tls_target]);
    assert_eq!(p2.targets(), vec![plain.addr.to_string()]);
    assert_eq!(server.count(), 4);
    assert_eq!(plain.count(), 2);

    // A proxy that is not there fails that client only.
    let gone = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let broken = client(&plain.url(), None, Some(Some(&format!("http://{gone}"))));
    let (kind, message) = query(broken).unwrap_err();
    assert_eq!(kind, FOTP_ERROR_NETWORK, "{message}");
    query(via_p2).unwrap();
    // SAFETY: no call uses them any more.
    unsafe {
        for c in [via_p1, via_p2, direct, broken] {
            fotp_client_free(c);
        }
    }
    std::fs::remove_dir_all(dir).ok();
}
