//! Which Redis deployment a store talks to, named by its URL, and connections to it.
//!
//! - `redis://[user:password@]host[:port][/db]` (also `rediss://`, `unix://`): one server;
//! - `redis+cluster://[user:password@]host:port[,host:port]...`: Redis Cluster, from seed nodes;
//!   the redis crate's cluster client follows MOVED/ASK and topology changes;
//! - `redis+sentinel://[user:password@]host:port[,host:port]...[/service]`: the primary the
//!   Sentinels name `service` (default `mymaster`), asked again on every new connection, so a
//!   promoted replica is found after a failover. The credentials are the primary's.
//!
//! The store's keys are laid out for the deployment by [`Deployment::prefix`]: on a cluster,
//! every key of a namespace carries the hash tag `{namespace}`, so every script touches one slot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Connection, ConnectionLike, IntoConnectionInfo, RedisResult};

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

/// The Sentinel client of this process: the crate's client caches its connections to the
/// Sentinels, which a forked child must not share with its parent (fork generation check).
pub(super) struct Sentinels {
    nodes: Vec<String>,
    service: String,
    info: SentinelNodeConnectionInfo,
    /// The fork generation that last took `client` (read without the lock: it is held while
    /// the Sentinels are asked, and a forked child must not block on it).
    owner: AtomicU64,
    /// The client and the fork generation that made it.
    client: Mutex<Option<(u64, SentinelClient)>>,
}

impl Sentinels {
    /// The current primary, as the Sentinels name it (the crate checks its ROLE).
    fn primary(&self) -> RedisResult<redis::Client> {
        let generation = crate::fork::generation();
        let mut guard = if self.owner.load(Ordering::Acquire) == generation {
            self.client.lock().unwrap_or_else(|e| e.into_inner())
        } else {
            match crate::fork::lock_inherited(&self.client, &self.owner, generation) {
                Some(g) => {
                    self.owner.store(generation, Ordering::Release);
                    g
                }
                // Held by a thread fork() did not copy: a client of this call's own.
                None => return self.build()?.get_client(),
            }
        };
        let client = match &mut *guard {
            Some((g, c)) if *g == generation => c,
            slot => &mut slot.insert((generation, self.build()?)).1,
        };
        client.get_client()
    }

    fn build(&self) -> RedisResult<SentinelClient> {
        SentinelClient::build(
            self.nodes.clone(),
            self.service.clone(),
            Some(self.info.clone()),
            SentinelServerType::Master,
        )
    }
}

/// A command connection to the deployment.
pub(super) enum Conn {
    Single(Connection),
    Cluster(ClusterConnection),
}

impl Conn {
    pub(super) fn like(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Conn::Single(c) => c,
            Conn::Cluster(c) => c,
        }
    }

    fn set_timeouts(&self, read: Duration, write: Duration) -> RedisResult<()> {
        match self {
            Conn::Single(c) => {
                c.set_read_timeout(Some(read))?;
                c.set_write_timeout(Some(write))
            }
            Conn::Cluster(c) => {
                c.set_read_timeout(Some(read))?;
                c.set_write_timeout(Some(write))
            }
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
            let primary = format!("redis://{userinfo}127.0.0.1/")
                .into_connection_info()
                .map_err(|e| bad(e.category()))?;
            let info = SentinelNodeConnectionInfo {
                tls_mode: None,
                redis_connection_info: Some(primary.redis),
            };
            let nodes: Vec<String> = hosts.iter().map(|h| format!("redis://{h}/")).collect();
            // Built once here so that a bad node shows now.
            SentinelClient::build(
                nodes.clone(),
                service.to_owned(),
                Some(info.clone()),
                SentinelServerType::Master,
            )
            .map_err(|e| bad(e.category()))?;
            return Ok(Deployment::Sentinel(Sentinels {
                nodes,
                service: service.to_owned(),
                info,
                owner: AtomicU64::new(crate::fork::generation()),
                client: Mutex::new(None),
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

    /// Opens a command connection within `limit`.
    pub(super) fn connect(
        &self,
        limit: Duration,
        read: Duration,
        write: Duration,
    ) -> RedisResult<Conn> {
        let con = match self {
            Deployment::Single(c) => Conn::Single(c.get_connection_with_timeout(limit)?),
            Deployment::Cluster { client, .. } => Conn::Cluster(client.get_connection()?),
            Deployment::Sentinel(_) => {
                Conn::Single(self.node(0)?.get_connection_with_timeout(limit)?)
            }
        };
        con.set_timeouts(read, write)?;
        Ok(con)
    }

    /// A single-node client for the subscriber; `attempt` rotates through a cluster's seeds.
    pub(super) fn node(&self, attempt: usize) -> RedisResult<redis::Client> {
        match self {
            Deployment::Single(c) => Ok(c.clone()),
            Deployment::Cluster { seeds, .. } => Ok(seeds[attempt % seeds.len()].clone()),
            // Asks the Sentinels for the current primary (and checks its ROLE).
            Deployment::Sentinel(s) => s.primary(),
        }
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
    // The credentials end at the last '@' before the path (a password may contain '@' only
    // percent-encoded, but be lenient).
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(i) => authority.split_at(i + 1),
        None => ("", authority),
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

    const T: Duration = Duration::from_secs(1);

    fn config_error(url: &str) -> String {
        let e = Deployment::open(url, T, T).err().expect(url);
        assert_eq!(e.kind(), crate::ErrorKind::Config, "{url}: {e}");
        e.to_string()
    }

    #[test]
    fn the_url_names_the_deployment() {
        let one = Deployment::open("redis://127.0.0.1:7/2", T, T).unwrap();
        assert!(matches!(one, Deployment::Single(_)));
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
        assert!(matches!(s, Deployment::Sentinel(_)));
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

    /// A fork that catches a thread inside the Sentinel client's lock: the child asks the
    /// Sentinels with a client of its own, and does not hang. No Sentinel listens on port 1, so
    /// the answer is a connection error, at once.
    #[cfg(unix)]
    #[test]
    fn a_child_asks_the_sentinels_when_fork_catches_their_lock() {
        let d = Deployment::open("redis+sentinel://127.0.0.1:1/orders", T, T).unwrap();
        let Deployment::Sentinel(s) = &d else {
            panic!("not a Sentinel deployment")
        };
        let hold = |held: &dyn Fn()| {
            let _guard = s.client.lock();
            held();
        };
        let answer = crate::fork::testing::in_child(Some(&hold), || match d.node(0) {
            Ok(_) => "a primary".to_string(),
            Err(e) => format!("error: {e}"),
        })
        .unwrap();
        assert!(answer.starts_with("error: "), "{answer}");
        assert!(d.node(0).is_err());
    }
}
