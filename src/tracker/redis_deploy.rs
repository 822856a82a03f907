//! Which Redis deployment a store talks to, named by its URL, and connections to it.
//!
//! - `redis://[user:password@]host[:port][/db]` (also `rediss://`, `unix://`): one server;
//! - `redis+cluster://[user:password@]host:port[,host:port]...`: Redis Cluster, from seed nodes;
//!   the redis crate's cluster client follows MOVED/ASK and topology changes;
//! - `redis+sentinel://[user:password@]host:port[,host:port]...[/service]`: the primary the
//!   Sentinels name `service` (default `mymaster`), asked again on every new connection, so a
//!   promoted replica is found after a failover. The credentials are the primary's. Each
//!   Sentinel is asked in turn, the first to name a node whose `ROLE` says master wins (the
//!   Redis "Sentinel client" guidelines), all within the new connection's time limit.
//!
//! The store's keys are laid out for the deployment by [`Deployment::prefix`]: on a cluster,
//! every key of a namespace carries the hash tag `{namespace}`, so every script touches one slot.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{
    ConnectionAddr, ConnectionInfo, ConnectionLike, FromRedisValue, IntoConnectionInfo,
    RedisConnectionInfo, RedisError, RedisResult, Role,
};

use super::redis_store::interrupted;
use super::{deadline_after, remaining};
use crate::error::{Error, Result};

const CLUSTER_SCHEME: &str = "redis+cluster://";
const SENTINEL_SCHEME: &str = "redis+sentinel://";
const DEFAULT_SERVICE: &str = "mymaster";

/// Retries of the cluster client within one call (redirections included).
const CLUSTER_RETRIES: u32 = 3;

const EXPECTED: &str = "expected redis://[user:password@]host[:port][/db], \
     redis+cluster://[user:password@]host:port[,host:port]... or \
     redis+sentinel://[user:password@]host:port[,host:port]...[/service]";

/// A Redis deployment: one server, a cluster, or a primary found through Sentinels.
pub(super) enum Deployment {
    Single(redis::Client),
    Cluster {
        client: ClusterClient,
        /// Single-node clients of the seeds, for the subscriber (cluster pub/sub is broadcast
        /// to every node, so any node will do).
        seeds: Vec<redis::Client>,
    },
    Sentinel(Sentinels),
}

/// The Sentinels of a `redis+sentinel://` URL, asked on every new connection (nothing cached,
/// so nothing for a forked child to inherit).
pub(super) struct Sentinels {
    /// Each Sentinel, with its `host:port` as the URL lists it (errors name it so: the URL's
    /// credentials are the primary's and never shown).
    nodes: Vec<(String, ConnectionInfo)>,
    service: String,
    /// The primary's credentials and database.
    primary: RedisConnectionInfo,
    /// The Sentinel that last named the primary: asked first (the Redis "Sentinel client"
    /// guidelines), so one that stays hung at the head of the list does not cost every new
    /// connection its share. Only an index, so nothing a forked child could misuse.
    first: AtomicUsize,
}

impl Sentinels {
    /// A connection to the current primary, all within `limit`. Each Sentinel gets an equal
    /// share of the time left, so one that hangs leaves time for the next.
    fn primary(&self, limit: Duration) -> RedisResult<redis::Connection> {
        let deadline = deadline_after(limit);
        let n = self.nodes.len();
        let first = self.first.load(Ordering::Relaxed) % n;
        let mut failures = Vec::with_capacity(n);
        for (i, at) in (first..n).chain(0..first).enumerate() {
            let (name, sentinel) = &self.nodes[at];
            let left = u32::try_from(n - i).unwrap_or(u32::MAX);
            let Some(time) = remaining(deadline) else {
                failures.push(format!("{name}: not asked, no time left"));
                continue;
            };
            let share = deadline_after(time / left);
            // The primary's check may use half the time still left when the Sentinel's share
            // is shorter: a slow primary is no reason to ask a Sentinel that names the same.
            let check = share.max(deadline_after(time / 2));
            let asked = loop {
                match self.ask(sentinel, share, check) {
                    // A signal: this Sentinel again, within its share.
                    Err(e) if interrupted(&e) && remaining(share).is_some() => {}
                    other => break other,
                }
            };
            match asked {
                Ok(Ok(con)) => {
                    self.first.store(at, Ordering::Relaxed);
                    return Ok(con);
                }
                Ok(Err(why)) => failures.push(format!("{name}: {why}")),
                Err(e) => return Err(e),
            }
        }
        Err(RedisError::from((
            redis::ErrorKind::MasterNameNotFoundBySentinel,
            "no Sentinel named a primary",
            format!("service {:?}: {}", self.service, failures.join("; ")),
        )))
    }

    /// Asks one Sentinel by `deadline`: a connection to the primary it names, checked with
    /// `ROLE` by `check`; `Ok(Err(why))` when this Sentinel gave none (the next may); `Err` ends
    /// this Sentinel's turn: a signal (asked again) or credentials the primary refused (every
    /// node has them: the search ends).
    fn ask(
        &self,
        sentinel: &ConnectionInfo,
        deadline: Instant,
        check: Instant,
    ) -> RedisResult<Asked> {
        let named = open_by(sentinel, deadline).and_then(|mut con| {
            let mut cmd = redis::cmd("SENTINEL");
            cmd.arg("GET-MASTER-ADDR-BY-NAME").arg(&self.service);
            query_by::<Option<(String, u16)>>(&cmd, &mut con, deadline)
        });
        let (host, port) = match named {
            Ok(Some(addr)) => addr,
            Ok(None) => return Ok(Err(format!("knows no service {:?}", self.service))),
            Err(e) => return next_or_stop(e, String::new()),
        };
        let info = ConnectionInfo {
            addr: ConnectionAddr::Tcp(host.clone(), port),
            redis: self.primary.clone(),
        };
        let checked = open_by(&info, check).and_then(|mut con| {
            let role = role(&mut con, check)?;
            Ok((con, role))
        });
        match checked {
            Ok((con, Role::Primary { .. })) => Ok(Ok(con)),
            // A Sentinel whose view is stale (or wrong): the next one may know better.
            Ok((_, Role::Replica { .. })) => Ok(Err(format!(
                "names {host}:{port}, which is a replica, not a primary"
            ))),
            Ok((_, Role::Sentinel { .. })) => Ok(Err(format!(
                "names {host}:{port}, which is a Sentinel, not a primary"
            ))),
            Err(e) => next_or_stop(e, format!("names {host}:{port}, which failed: ")),
        }
    }
}

/// The node's role from `ROLE`, or from `INFO replication` when the user may not run `ROLE`
/// (an `@admin` command that a least-privilege ACL can leave out), as the crate's Sentinel client
/// did.
fn role(con: &mut redis::Connection, deadline: Instant) -> RedisResult<Role> {
    match query_by::<Role>(&redis::cmd("ROLE"), con, deadline) {
        Err(e) if e.code() == Some("NOPERM") => {
            let info: String = query_by(redis::cmd("INFO").arg("replication"), con, deadline)?;
            Ok(if info.lines().any(|l| l.trim_end() == "role:master") {
                Role::Primary {
                    replication_offset: 0,
                    replicas: Vec::new(),
                }
            } else {
                Role::Replica {
                    primary_ip: String::new(),
                    primary_port: 0,
                    replication_state: String::new(),
                    data_received: 0,
                }
            })
        }
        other => other,
    }
}

/// What one Sentinel gave: a connection to the primary, or why not.
type Asked = std::result::Result<redis::Connection, String>;

/// A Sentinel's failure `e` (after `context`) as the reason to ask the next one, unless it
/// ends the search (see [`Sentinels::ask`]).
fn next_or_stop(e: RedisError, context: String) -> RedisResult<Asked> {
    if interrupted(&e) || e.kind() == redis::ErrorKind::AuthenticationFailed {
        return Err(e);
    }
    if e.is_timeout() {
        // Rather than the system's text for a read time-out ("Resource temporarily unavailable").
        return Ok(Err(format!("{context}no answer in time")));
    }
    Ok(Err(format!("{context}{e}")))
}

/// `part` of the time left until `deadline`, or a time-out error: never zero, which would
/// mean no time-out at all to a socket.
fn time_left(deadline: Instant, part: u32) -> RedisResult<Duration> {
    let t = remaining(deadline).map(|t| t / part.max(1));
    t.filter(|t| !t.is_zero()).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no answer within the time limit",
        )
        .into()
    })
}

/// A connection to `info` opened (handshake included) by `deadline`.
fn open_by(info: &ConnectionInfo, deadline: Instant) -> RedisResult<redis::Connection> {
    // The crate's handshake waits for each of its answers up to the whole time-out it is given
    // (a silent server costs that many time-outs): each gets its share.
    let limit = time_left(deadline, handshake_answers(&info.redis))?;
    redis::Client::open(info.clone())?.get_connection_with_timeout(limit)
}

/// How many answers the crate's handshake waits for (at least 1: the TCP connect shares the
/// same time-out): AUTH (HELLO under RESP3) and SELECT when needed. CLIENT SETINFO is off
/// (Cargo.toml): its two answers, ignored anyway, would take their shares of the limit. A server
/// older than ACLs refuses AUTH with a user name at once and the crate sends all again; that
/// second round is not counted, since a server that answered the first is not a silent one.
fn handshake_answers(redis: &RedisConnectionInfo) -> u32 {
    let auth = redis.password.is_some() || redis.protocol != redis::ProtocolVersion::RESP2;
    (u32::from(auth) + u32::from(redis.db != 0)).max(1)
}

/// `cmd`'s answer on `con`, sent and read by `deadline`.
fn query_by<T: FromRedisValue>(
    cmd: &redis::Cmd,
    con: &mut redis::Connection,
    deadline: Instant,
) -> RedisResult<T> {
    let t = time_left(deadline, 1)?;
    con.set_read_timeout(Some(t))?;
    con.set_write_timeout(Some(t))?;
    cmd.query(con)
}

/// A command connection to the deployment.
pub(super) enum Conn {
    Single(redis::Connection),
    Cluster(ClusterConnection),
}

impl Conn {
    pub(super) fn like(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Conn::Single(c) => c,
            Conn::Cluster(c) => c,
        }
    }
}

impl Deployment {
    /// Parses `url`; a URL that does not parse is a config error that never echoes the URL
    /// (it may hold a password).
    pub(super) fn open(
        url: &str,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> Result<Deployment> {
        let bad =
            |why: &str| Error::config(format!("the Redis URL is not valid ({EXPECTED}): {why}"));
        if let Some(rest) = strip_scheme(url, CLUSTER_SCHEME) {
            let (userinfo, hosts, path) = split_multi(rest).map_err(bad)?;
            if !path.is_empty() && path != "/" {
                return Err(bad(
                    "a cluster has only database 0: no /db or /service part",
                ));
            }
            let nodes: Vec<String> = hosts
                .iter()
                .map(|h| format!("redis://{userinfo}{h}/"))
                .collect();
            let seeds = nodes
                .iter()
                .map(|n| redis::Client::open(n.as_str()))
                .collect::<RedisResult<Vec<_>>>()
                .map_err(|e| bad(e.category()))?;
            // The crate's defaults (16 retries, pauses from 1.28 s growing to minutes) could
            // hold a call for minutes while a primary fails over: fail within a few attempts
            // instead, so that settle answers 503 and the platform delivers again.
            let client = ClusterClient::builder(nodes)
                .connection_timeout(connect_timeout)
                .response_timeout(command_timeout)
                .retries(CLUSTER_RETRIES)
                .min_retry_wait(10)
                .max_retry_wait(200)
                .build()
                .map_err(|e| bad(e.category()))?;
            return Ok(Deployment::Cluster { client, seeds });
        }
        if let Some(rest) = strip_scheme(url, SENTINEL_SCHEME) {
            let (userinfo, hosts, path) = split_multi(rest).map_err(bad)?;
            let service = match path.trim_start_matches('/') {
                "" => DEFAULT_SERVICE,
                s if s.contains('/') => return Err(bad("the service name has a '/'")),
                s => s,
            };
            // The crate decodes percent-escapes of the credentials in a URL of its own.
            let info = |url: String| url.into_connection_info().map_err(|e| bad(e.category()));
            let primary = info(format!("redis://{userinfo}127.0.0.1/"))?.redis;
            // Parsed here, so that a bad node shows now.
            let nodes = hosts
                .iter()
                .map(|h| Ok((h.to_string(), info(format!("redis://{h}/"))?)))
                .collect::<Result<Vec<_>>>()?;
            return Ok(Deployment::Sentinel(Sentinels {
                nodes,
                service: service.to_owned(),
                primary,
                first: AtomicUsize::new(0),
            }));
        }
        let client = redis::Client::open(url).map_err(|e| bad(e.category()))?;
        Ok(Deployment::Single(client))
    }

    /// The key prefix of `namespace`: `{namespace}:` (a hash tag: one slot) on a cluster,
    /// `namespace:` elsewhere (the layout of earlier versions).
    pub(super) fn prefix(&self, namespace: &str) -> Result<String> {
        match self {
            Deployment::Cluster { .. } => {
                // A brace would move the hash tag off the namespace.
                if namespace.contains(['{', '}']) {
                    return Err(Error::invalid(
                        "a namespace on Redis Cluster must not contain '{' or '}' (it becomes the keys' hash tag)",
                    ));
                }
                Ok(format!("{{{namespace}}}:"))
            }
            _ => Ok(format!("{namespace}:")),
        }
    }

    /// Opens a command connection within `limit` (the cluster client's own connection time-out
    /// is the one given to [`Deployment::open`]), with these read and write time-outs.
    pub(super) fn connect(
        &self,
        limit: Duration,
        read: Duration,
        write: Duration,
    ) -> RedisResult<Conn> {
        let Deployment::Cluster { client, .. } = self else {
            return Ok(Conn::Single(self.node(0, limit, read, write)?));
        };
        let con = client.get_connection()?;
        con.set_read_timeout(Some(read))?;
        con.set_write_timeout(Some(write))?;
        Ok(Conn::Cluster(con))
    }

    /// Opens a connection to one node within `limit`, with these read and write time-outs: the
    /// server, the primary the Sentinels name, or (for the subscriber) a cluster seed that
    /// `attempt` rotates through.
    pub(super) fn node(
        &self,
        attempt: usize,
        limit: Duration,
        read: Duration,
        write: Duration,
    ) -> RedisResult<redis::Connection> {
        let con = match self {
            Deployment::Single(c) => open_by(c.get_connection_info(), deadline_after(limit))?,
            Deployment::Cluster { seeds, .. } => open_by(
                seeds[attempt % seeds.len()].get_connection_info(),
                deadline_after(limit),
            )?,
            Deployment::Sentinel(s) => s.primary(limit)?,
        };
        con.set_read_timeout(Some(read))?;
        con.set_write_timeout(Some(write))?;
        Ok(con)
    }

    /// Whether a connection may be talking to a node that is no longer the primary (a
    /// demoted primary answers READONLY): then a new connection asks the Sentinels again.
    pub(super) fn follows_primary(&self) -> bool {
        matches!(self, Deployment::Sentinel(_))
    }
}

fn strip_scheme<'a>(url: &'a str, scheme: &str) -> Option<&'a str> {
    let head = url.get(..scheme.len())?;
    head.eq_ignore_ascii_case(scheme)
        .then(|| &url[scheme.len()..])
}

/// `[userinfo@]host:port[,host:port]...[/path]` into (`userinfo@` or "", hosts, `/path` or "").
fn split_multi(rest: &str) -> std::result::Result<(&str, Vec<&str>, &str), &'static str> {
    // The credentials end at the last '@' (a password may contain '@' or '/' only
    // percent-encoded, but be lenient). Cutting the path off first would put the rest of a
    // password with a '/' in the host list or the service name, which errors show.
    let (userinfo, rest) = match rest.rfind('@') {
        Some(i) => rest.split_at(i + 1),
        None => ("", rest),
    };
    let (hosts, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let hosts: Vec<&str> = hosts.split(',').collect();
    for h in &hosts {
        let Some((host, port)) = h.rsplit_once(':') else {
            return Err("every node needs host:port");
        };
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err("every node needs host:port (port 1-65535)");
        }
    }
    Ok((userinfo, hosts, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;

    const T: Duration = Duration::from_secs(1);

    /// A server on 127.0.0.1 that accepts connections and never answers (a hung Sentinel); it
    /// keeps them open for the life of the test process.
    fn silent_server() -> u16 {
        silent_counting_server().0
    }

    /// A silent server, and how many connections it has accepted.
    fn silent_counting_server() -> (u16, std::sync::Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&accepted);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in listener.incoming() {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(s);
            }
        });
        (port, accepted)
    }

    fn config_error(url: &str) -> String {
        let e = Deployment::open(url, T, T).err().expect(url);
        assert_eq!(e.kind(), crate::ErrorKind::Config, "{url}: {e}");
        e.to_string()
    }

    #[test]
    fn the_url_names_the_deployment() {
        let one = Deployment::open("redis://127.0.0.1:7/2", T, T).unwrap();
        assert!(matches!(one, Deployment::Single(_)));
        assert!(!one.follows_primary());
        assert_eq!(one.prefix("shop").unwrap(), "shop:");
        let c = Deployment::open(
            "REDIS+CLUSTER://u:p%40ss@127.0.0.1:7001,127.0.0.1:7002",
            T,
            T,
        )
        .unwrap();
        assert!(matches!(c, Deployment::Cluster { ref seeds, .. } if seeds.len() == 2));
        assert_eq!(c.prefix("shop").unwrap(), "{shop}:");
        assert!(c.prefix("a{b").is_err());
        let s = Deployment::open(
            "redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/orders",
            T,
            T,
        )
        .unwrap();
        let Deployment::Sentinel(ref inner) = s else {
            panic!("not a Sentinel deployment")
        };
        assert_eq!(inner.service, "orders");
        assert_eq!(inner.nodes.len(), 2);
        assert_eq!(inner.primary.password.as_deref(), Some("pw"));
        assert!(s.follows_primary());
        assert_eq!(s.prefix("shop").unwrap(), "shop:");
    }

    #[test]
    fn bad_urls_are_config_errors_without_the_password() {
        for url in [
            "redis+cluster://u:secret@127.0.0.1",
            "redis+cluster://u:secret@127.0.0.1:7001/3",
            "redis+cluster://u:secret@:7001",
            "redis+sentinel://u:secret@127.0.0.1:0",
            "redis+sentinel://u:secret@127.0.0.1:26379/a/b",
            "http://u:secret@127.0.0.1:6379",
        ] {
            let msg = config_error(url);
            assert!(!msg.contains("secret"), "{msg}");
            assert!(msg.contains("redis+cluster://"), "{msg}");
        }
    }

    /// A '/' in the password (not percent-encoded) once moved the rest of it into the Sentinel
    /// list and the service name, which the discovery's errors show.
    #[test]
    fn a_slash_in_the_password_never_reaches_an_error() {
        let port = silent_server();
        for url in [
            "redis+sentinel://u:12345/topsecret@127.0.0.1:1".to_string(),
            format!("redis+sentinel://u:12345/topsecret@127.0.0.1:{port}/orders"),
        ] {
            let msg = match Deployment::open(&url, T, T) {
                Err(e) => e.to_string(),
                Ok(d) => within_10s(move || d.connect(T, T, T).map(|_| ()))
                    .unwrap_err()
                    .to_string(),
            };
            assert!(
                !msg.contains("topsecret") && !msg.contains("12345"),
                "{msg}"
            );
        }
    }

    /// Runs `f` on a thread: its answer, or a test failure when it has not returned within
    /// 10 s (a hang fails the test rather than holding it).
    fn within_10s<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("no answer within 10 s: a hang")
    }

    /// Reproduces the hang of the redis crate's Sentinel client (no time-out on a Sentinel's
    /// connection): a command connection and the subscriber's both fail within their limit.
    #[test]
    fn a_sentinel_that_never_answers_is_an_error_not_a_hang() {
        let port = silent_server();
        let d = std::sync::Arc::new(sentinels(&[port], "mymaster"));
        for subscriber in [false, true] {
            let d = std::sync::Arc::clone(&d);
            let started = Instant::now();
            let e = within_10s(move || match subscriber {
                false => d.connect(T, T, T).map(|_| ()),
                true => d.node(0, T, T, T).map(|_| ()),
            })
            .unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(3), "{e}");
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("127.0.0.1:{port}: no answer in time")),
                "{msg}"
            );
        }
    }

    /// The crate's handshake waits the whole time-out for each answer it reads (and goes on
    /// after one that got none): a silent server held a new connection to a single server, or
    /// a subscriber's to a cluster seed, for 3-4 times the limit.
    #[test]
    fn a_silent_server_costs_one_connect_limit() {
        let port = silent_server();
        let limit = Duration::from_millis(600);
        for url in [
            format!("redis://:p@127.0.0.1:{port}/"),
            format!("redis://u:p@127.0.0.1:{port}/3"),
            format!("redis+cluster://:p@127.0.0.1:{port}"),
        ] {
            let d = Deployment::open(&url, T, T).unwrap();
            let started = Instant::now();
            let e = within_10s(move || d.node(0, limit, T, T).map(|_| ())).unwrap_err();
            let took = started.elapsed();
            // Twice the limit is what the old code took at the least.
            assert!(
                took < limit * 3 / 2,
                "{url}: {took:?} for a limit of {limit:?}: {e}"
            );
            assert!(e.is_timeout() || e.is_io_error(), "{url}: {e}");
        }
    }

    /// A server on 127.0.0.1 that answers each command (its words) with `answer`'s RESP text.
    fn fake_server(answer: impl Fn(&[String]) -> String + Send + Sync + 'static) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let answer = std::sync::Arc::new(answer);
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let answer = std::sync::Arc::clone(&answer);
                std::thread::spawn(move || serve(s, &*answer));
            }
        });
        port
    }

    /// Reads RESP commands (arrays of bulk strings) until the client leaves.
    fn serve(s: TcpStream, answer: &dyn Fn(&[String]) -> String) -> Option<()> {
        let mut r = BufReader::new(s.try_clone().ok()?);
        let mut w = s;
        let line = |r: &mut BufReader<TcpStream>, mark: char| -> Option<usize> {
            let mut l = String::new();
            r.read_line(&mut l).ok().filter(|&n| n > 0)?;
            l.trim_end().strip_prefix(mark)?.parse().ok()
        };
        loop {
            let n = line(&mut r, '*')?;
            let mut words = Vec::with_capacity(n);
            for _ in 0..n {
                let mut word = vec![0; line(&mut r, '$')? + 2];
                r.read_exact(&mut word).ok()?;
                word.truncate(word.len() - 2);
                words.push(String::from_utf8(word).ok()?);
            }
            w.write_all(answer(&words).as_bytes()).ok()?;
        }
    }

    /// A fake Sentinel that names 127.0.0.1:`primary` for every service (or knows none).
    fn fake_sentinel(primary: Option<u16>) -> u16 {
        fake_server(move |cmd| match (cmd[0].as_str(), primary) {
            ("SENTINEL", Some(p)) => format!(
                "*2\r\n$9\r\n127.0.0.1\r\n${}\r\n{p}\r\n",
                p.to_string().len()
            ),
            ("SENTINEL", None) => "*-1\r\n".into(),
            _ => "+OK\r\n".into(),
        })
    }

    const MASTER: &str = "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n";
    const REPLICA: &str =
        "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n:0\r\n";

    /// A fake Redis node that answers `ROLE` with `role` and refuses every password.
    fn fake_node(role: &'static str) -> u16 {
        fake_server(move |cmd| match cmd[0].as_str() {
            "ROLE" => role.into(),
            "AUTH" => "-WRONGPASS invalid username-password pair\r\n".into(),
            _ => "+OK\r\n".into(),
        })
    }

    fn sentinels(ports: &[u16], service: &str) -> Deployment {
        let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let url = format!("redis+sentinel://{}/{service}", nodes.join(","));
        Deployment::open(&url, T, T).unwrap()
    }

    /// The role of the node a new connection of `d` talks to, within `limit`.
    fn role_within(d: Deployment, limit: Duration) -> RedisResult<Role> {
        within_10s(move || {
            let mut con = d.connect(limit, T, T)?;
            redis::cmd("ROLE").query(con.like())
        })
    }

    #[test]
    fn a_hung_sentinel_leaves_time_for_the_next() {
        let good = fake_sentinel(Some(fake_node(MASTER)));
        let limit = Duration::from_secs(2);
        let started = Instant::now();
        let role = role_within(sentinels(&[silent_server(), good], "mymaster"), limit);
        assert!(matches!(role, Ok(Role::Primary { .. })), "{role:?}");
        assert!(started.elapsed() < limit + T, "{:?}", started.elapsed());
    }

    #[test]
    fn a_sentinel_naming_a_replica_is_skipped_for_the_next() {
        let stale = fake_sentinel(Some(fake_node(REPLICA)));
        let good = fake_sentinel(Some(fake_node(MASTER)));
        let role = role_within(sentinels(&[stale, good], "mymaster"), T);
        assert!(matches!(role, Ok(Role::Primary { .. })), "{role:?}");
        // With no Sentinel left, the error says which named what.
        let replica = fake_node(REPLICA);
        let stale = fake_sentinel(Some(replica));
        let e = role_within(sentinels(&[stale], "mymaster"), T).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&format!(
                "127.0.0.1:{stale}: names 127.0.0.1:{replica}, which is a replica"
            )),
            "{msg}"
        );
    }

    /// The Sentinel that answered is asked first next time: one that stays hung at the head of
    /// the list is not asked again on every new connection.
    #[test]
    fn the_sentinel_that_answered_is_asked_first() {
        let (hung, asked) = silent_counting_server();
        let good = fake_sentinel(Some(fake_node(MASTER)));
        let d = std::sync::Arc::new(sentinels(&[hung, good], "mymaster"));
        for _ in 0..3 {
            let d = std::sync::Arc::clone(&d);
            within_10s(move || d.connect(T, T, T).map(|_| ())).unwrap();
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1);
    }

    /// `ROLE` is an `@admin` command: a user without it is checked with `INFO replication`.
    #[test]
    fn a_user_without_role_is_checked_with_info() {
        let node = |role: &'static str| {
            fake_server(move |cmd| match cmd[0].as_str() {
                "ROLE" => "-NOPERM User u has no permissions to run the 'role' command\r\n".into(),
                "INFO" => format!("${}\r\n{role}\r\n", role.len()),
                _ => "+OK\r\n".into(),
            })
        };
        let stale = fake_sentinel(Some(node("# Replication\r\nrole:slave")));
        let good = fake_sentinel(Some(node("# Replication\r\nrole:master")));
        let d = std::sync::Arc::new(sentinels(&[stale, good], "mymaster"));
        let d2 = std::sync::Arc::clone(&d);
        within_10s(move || d2.connect(T, T, T).map(|_| ())).unwrap();
        let Deployment::Sentinel(ref s) = *d else {
            panic!("not a Sentinel deployment")
        };
        // The second Sentinel's primary was taken: the first one's said role:slave.
        assert_eq!(s.first.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_sentinel_that_knows_no_such_service_says_so() {
        let unaware = fake_sentinel(None);
        let e = role_within(sentinels(&[unaware], "orders"), T).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("127.0.0.1:{unaware}: knows no service \"orders\"")),
            "{msg}"
        );
    }

    /// Through the store: a network error that names the Sentinels by host:port, never the
    /// password, within the store's connect time-out (3 s).
    #[test]
    fn failed_sentinels_are_a_network_error_without_the_password() {
        let silent = silent_server();
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("redis+sentinel://u:secret@127.0.0.1:{silent},127.0.0.1:{closed}/o");
        let started = Instant::now();
        let e =
            within_10s(move || super::super::RedisStore::open(&url, "ns").map(|_| ())).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "{e}");
        assert_eq!(e.kind(), crate::ErrorKind::Network, "{e}");
        let msg = e.to_string();
        assert!(!msg.contains("secret"), "{msg}");
        assert!(msg.contains(&format!("127.0.0.1:{silent}: ")), "{msg}");
        assert!(msg.contains(&format!("127.0.0.1:{closed}: ")), "{msg}");
    }

    /// A primary that refuses the URL's password ends the search: the store's start says the
    /// credentials were refused (a config error), as on one server.
    #[test]
    fn a_primary_refusing_the_password_is_a_config_error_at_start() {
        let sentinel = fake_sentinel(Some(fake_node(MASTER)));
        let url = format!("redis+sentinel://:secret@127.0.0.1:{sentinel}/mymaster");
        let e =
            within_10s(move || super::super::RedisStore::open(&url, "ns").map(|_| ())).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Config, "{e}");
        assert!(e.to_string().contains("refused the credentials"), "{e}");
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    /// Asking the Sentinels keeps no state: a child forked while a thread of its parent waits
    /// for a Sentinel asks them itself, within its own limit.
    #[cfg(unix)]
    #[test]
    fn a_child_forked_during_a_search_asks_the_sentinels_itself() {
        let d = std::sync::Arc::new(sentinels(&[silent_server()], "mymaster"));
        let parent = std::sync::Arc::clone(&d);
        let searching = std::thread::spawn(move || parent.connect(T * 3, T, T).is_err());
        std::thread::sleep(Duration::from_millis(200));
        let answer = crate::fork::testing::in_child(None, || match d.connect(T, T, T) {
            Ok(_) => "a primary".to_string(),
            Err(e) => format!("error: {e}"),
        })
        .unwrap();
        assert!(answer.starts_with("error: "), "{answer}");
        assert!(searching.join().unwrap());
    }
}
