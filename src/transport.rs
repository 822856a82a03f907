//! The TCP layer under ureq: connects, reads and writes in short slices so that a blocked call
//! notices cancellation and its deadline, and so that a signal (EINTR) never becomes an error.
//!
//! The cancel token of the call running on this thread is set by [`enter`] for the duration of
//! one attempt: ureq runs a request on the calling thread, and its transports are pooled and
//! shared between clients, so the token cannot live in the transport itself.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, ShutdownHandle,
    Transport,
};

use crate::cancel::CancelToken;

/// The longest a blocking system call runs before the token and the deadline are checked again.
pub(crate) const SLICE: Duration = Duration::from_millis(20);

thread_local! {
    static CURRENT: RefCell<Option<CancelToken>> = const { RefCell::new(None) };
}

/// Restores the previous token of this thread when dropped.
pub(crate) struct Scope {
    prev: Option<CancelToken>,
}

/// Makes `cancel` the token watched by network I/O on this thread until the scope ends.
pub(crate) fn enter(cancel: Option<&CancelToken>) -> Scope {
    let prev = CURRENT
        .try_with(|c| c.replace(cancel.cloned()))
        .ok()
        .flatten();
    Scope { prev }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let prev = self.prev.take();
        let _ = CURRENT.try_with(|c| c.replace(prev));
    }
}

fn cancelled() -> bool {
    CURRENT
        .try_with(|c| c.borrow().as_ref().is_some_and(CancelToken::is_cancelled))
        .unwrap_or(false)
}

fn cancelled_error() -> io::Error {
    io::Error::other("the call was cancelled")
}

/// The time left before `deadline` (`None`: no deadline), capped at one slice; `None` when it
/// ran out.
fn next_slice(deadline: Option<Instant>) -> Option<Duration> {
    match deadline {
        None => Some(SLICE),
        Some(d) => d
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .map(|left| left.min(SLICE)),
    }
}

/// The absolute end of ureq's time budget (`None`: no limit or too far to represent).
fn budget_end(t: &NextTimeout) -> Option<Instant> {
    if t.after.is_not_happening() {
        return None;
    }
    Instant::now().checked_add(*t.after)
}

/// Opens plain TCP connections (ureq's TLS and CONNECT-proxy connectors wrap them).
#[derive(Debug, Default)]
pub(crate) struct TcpConnector;

impl<In: Transport> Connector<In> for TcpConnector {
    type Out = Either<In, TcpTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if chained.is_some() {
            // A proxy tunnel already provides the connection.
            return Ok(chained.map(Either::A));
        }
        let deadline = budget_end(&details.timeout);
        let stream = connect_any(&details.addrs, deadline).map_err(|e| {
            if e.kind() == io::ErrorKind::TimedOut {
                ureq::Error::Timeout(ureq::Timeout::Connect)
            } else {
                ureq::Error::Io(e)
            }
        })?;
        if details.config.no_delay() {
            stream.set_nodelay(true)?;
        }
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        let transport = TcpTransport {
            stream: Arc::new(stream),
            buffers,
            read_timeout: None,
            write_timeout: None,
        };
        (details.register_shutdown)(Arc::downgrade(&transport.stream) as Weak<dyn ShutdownHandle>)?;
        Ok(Some(Either::B(transport)))
    }
}

/// Tries each address in turn; an address that refuses or is unreachable passes to the next.
fn connect_any(addrs: &[SocketAddr], deadline: Option<Instant>) -> io::Result<TcpStream> {
    let mut last = None;
    for (i, addr) in addrs.iter().enumerate() {
        // All but the last address get half of what is left, so one black hole cannot take it all.
        let own_deadline = match deadline {
            Some(d) if i + 1 < addrs.len() => {
                let left = d.saturating_duration_since(Instant::now());
                Instant::now().checked_add(left / 2).or(Some(d))
            }
            other => other,
        };
        match connect_one(*addr, own_deadline) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(e);
                }
                last = Some(e);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::HostUnreachable
                        | io::ErrorKind::NetworkUnreachable
                        | io::ErrorKind::NetworkDown
                        | io::ErrorKind::AddrNotAvailable
                ) =>
            {
                last = Some(e)
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::ConnectionRefused, "no address to connect to")
    }))
}

#[cfg(unix)]
fn connect_one(addr: SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
    use std::os::fd::AsRawFd;

    use socket2::{Domain, Protocol, Socket, Type};

    // socket2 sets close-on-exec; a plain fork is handled by the client's fork generation check.
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e)
            if e.raw_os_error() == Some(libc::EINPROGRESS)
                || e.kind() == io::ErrorKind::WouldBlock
                // A signal during a non-blocking connect leaves it going on in the background.
                || e.kind() == io::ErrorKind::Interrupted =>
        {
            loop {
                if cancelled() {
                    return Err(cancelled_error());
                }
                let slice = next_slice(deadline).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::TimedOut, "connecting timed out")
                })?;
                let mut pfd = libc::pollfd {
                    fd: socket.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // At most SLICE (20 ms): the cast cannot truncate.
                let ms = slice.as_millis().max(1) as libc::c_int;
                // SAFETY: one valid pollfd for the duration of the call.
                let n = unsafe { libc::poll(&mut pfd, 1, ms) };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(e);
                }
                if n > 0 {
                    break;
                }
            }
            if let Some(e) = socket.take_error()? {
                return Err(e);
            }
            // A connect that did not complete (no error, no peer) is refused.
            socket.peer_addr()?;
        }
        Err(e) => return Err(e),
    }
    socket.set_nonblocking(false)?;
    Ok(socket.into())
}

#[cfg(not(unix))]
fn connect_one(addr: SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
    if cancelled() {
        return Err(cancelled_error());
    }
    match deadline {
        Some(d) => {
            let left = d
                .checked_duration_since(Instant::now())
                .filter(|l| !l.is_zero())
                .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "connecting timed out"))?;
            TcpStream::connect_timeout(&addr, left)
        }
        None => TcpStream::connect(addr),
    }
}

/// A TCP connection whose reads and writes block at most one slice at a time.
pub(crate) struct TcpTransport {
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
    // The socket's current SO_RCVTIMEO / SO_SNDTIMEO, to skip redundant system calls.
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpTransport")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

/// What a slice that ended without data means: go on, or stop with the deadline's error.
fn after_idle_slice(deadline: Option<Instant>, reason: ureq::Timeout) -> Result<(), ureq::Error> {
    if cancelled() {
        return Err(ureq::Error::Io(cancelled_error()));
    }
    if next_slice(deadline).is_none() {
        return Err(ureq::Error::Timeout(reason));
    }
    Ok(())
}

fn is_idle(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

impl Transport for TcpTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        if timeout.after.is_zero() {
            return Err(ureq::Error::Timeout(timeout.reason));
        }
        let deadline = budget_end(&timeout);
        let mut sent = 0;
        while sent < amount {
            after_idle_slice(deadline, timeout.reason)?;
            let slice = next_slice(deadline);
            if self.write_timeout != slice {
                self.stream.set_write_timeout(slice)?;
                self.write_timeout = slice;
            }
            let output = &self.buffers.output()[sent..amount];
            match (&*self.stream).write(output) {
                Ok(0) => return Err(ureq::Error::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => sent += n,
                Err(e) if is_idle(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        if timeout.after.is_zero() {
            return Err(ureq::Error::Timeout(timeout.reason));
        }
        let deadline = budget_end(&timeout);
        loop {
            after_idle_slice(deadline, timeout.reason)?;
            let slice = next_slice(deadline);
            if self.read_timeout != slice {
                self.stream.set_read_timeout(slice)?;
                self.read_timeout = slice;
            }
            let input = self.buffers.input_append_buf();
            match (&*self.stream).read(input) {
                Ok(n) => {
                    self.buffers.input_appended(n);
                    return Ok(n > 0);
                }
                Err(e) if is_idle(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn is_open(&mut self) -> bool {
        peer_still_open(&self.stream)
    }
}

/// True when a pooled connection is usable: nothing is waiting to be read and the peer has not
/// closed it. One `recv(MSG_PEEK | MSG_DONTWAIT)`, where ureq's own probe makes three system
/// calls (non-blocking on, read, non-blocking off); the socket's mode is never changed.
#[cfg(unix)]
fn peer_still_open(stream: &TcpStream) -> bool {
    use std::mem::MaybeUninit;
    let sock = socket2::SockRef::from(stream);
    let mut buf = [MaybeUninit::<u8>::uninit(); 1];
    loop {
        match sock.recv_with_flags(&mut buf, libc::MSG_PEEK | libc::MSG_DONTWAIT) {
            // Nothing to read and not closed: the normal state of an idle connection.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // 0: the peer closed; data: an answer nobody asked for; other errors: broken.
            _ => return false,
        }
    }
}

#[cfg(not(unix))]
fn peer_still_open(mut stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut buf = [0u8; 1];
    let open = loop {
        match stream.peek(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            _ => break false,
        }
    };
    open && stream.set_nonblocking(false).is_ok()
}

/// Resolves IP literals and `localhost` in place (never through DNS), and other names on a
/// helper thread that the caller stops waiting for on cancellation or time-out.
///
/// ureq's default resolver spawns a thread per request whenever a time limit is set, which
/// doubles the cost of a loopback call; an address needs no lookup at all.
#[derive(Debug, Default)]
pub(crate) struct LiteralResolver;

impl Resolver for LiteralResolver {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().ok_or(ureq::Error::HostNotFound)?;
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        let mut out = self.empty();
        for addr in literal_addrs(host, port).unwrap_or_default() {
            // At most two addresses: always within capacity.
            let _ = out.try_push(addr);
        }
        if !out.is_empty() {
            return Ok(out);
        }
        let deadline = budget_end(&timeout);
        let (tx, rx) = mpsc::sync_channel(1);
        let name = format!(
            "{}:{port}",
            host.trim_start_matches('[').trim_end_matches(']')
        );
        std::thread::Builder::new()
            .name("fotp-resolve".into())
            .spawn(move || {
                use std::net::ToSocketAddrs;
                let _ = tx.send(name.to_socket_addrs().map(|a| a.collect::<Vec<_>>()));
            })
            .map_err(ureq::Error::Io)?;
        let found = loop {
            after_idle_slice(deadline, ureq::Timeout::Resolve)?;
            match rx.recv_timeout(next_slice(deadline).unwrap_or(SLICE)) {
                Ok(r) => break r.map_err(|_| ureq::Error::HostNotFound)?,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(ureq::Error::HostNotFound),
            }
        };
        for addr in found {
            if out.try_push(addr).is_err() {
                break;
            }
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

/// The addresses of a host that needs no lookup: an IP literal (IPv6 only in brackets) or
/// `localhost`, pinned to 127.0.0.1 and ::1.
pub(crate) fn literal_addrs(host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .ok()
            .map(|ip| vec![SocketAddr::new(IpAddr::V6(ip), port)]);
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Some(vec![SocketAddr::new(IpAddr::V4(ip), port)]);
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Some(vec![
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
        ]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pooled_connection_is_open_until_the_peer_closes_or_talks() {
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let pair = || {
            let client = TcpStream::connect(addr).unwrap();
            let (server, _) = listener.accept().unwrap();
            (client, server)
        };
        // Idle: open, again and again (the probe leaves nothing behind).
        let (client, server) = pair();
        assert!(peer_still_open(&client));
        assert!(peer_still_open(&client));
        // The socket stays blocking: a read waits for data rather than failing.
        (&server).write_all(b"x").unwrap();
        let mut one = [0u8; 1];
        assert_eq!((&client).read(&mut one).unwrap(), 1);
        assert!(peer_still_open(&client));
        // Bytes nobody asked for: not reusable.
        (&server).write_all(b"y").unwrap();
        let mut peek = [0u8; 1];
        assert_eq!(client.peek(&mut peek).unwrap(), 1);
        assert!(!peer_still_open(&client));
        // The peer closed: a blocking peek sees the end, then the probe must too.
        let (client, server) = pair();
        drop(server);
        assert_eq!(client.peek(&mut peek).unwrap(), 0);
        assert!(!peer_still_open(&client));
        // Reset by the peer (unread data at close): broken.
        let (client, server) = pair();
        (&client).write_all(b"unread").unwrap();
        let mut got = [0u8; 6];
        (&server).read_exact(&mut got[..1]).unwrap();
        drop(server);
        while client.peek(&mut peek).is_ok_and(|n| n > 0) {}
        assert!(!peer_still_open(&client));
    }

    #[test]
    fn literals_and_localhost_need_no_lookup() {
        let v4 = literal_addrs("127.0.0.1", 80).unwrap();
        assert_eq!(v4, vec!["127.0.0.1:80".parse().unwrap()]);
        let v6 = literal_addrs("[::1]", 443).unwrap();
        assert_eq!(v6, vec!["[::1]:443".parse().unwrap()]);
        let lh = literal_addrs("LocalHost", 1).unwrap();
        assert_eq!(
            lh,
            vec!["127.0.0.1:1".parse().unwrap(), "[::1]:1".parse().unwrap()]
        );
        assert!(literal_addrs("foo.localhost", 1).is_none());
        assert!(literal_addrs("[127.0.0.1]", 1).is_none());
        assert!(literal_addrs("example.com", 1).is_none());
    }
}
