//! The Redis store: many processes behind a load balancer share one tracker.
//!
//! Keys, all under `{namespace}:` (`{{namespace}}:` on Redis Cluster: a hash tag, so that every
//! script touches one slot; see [`redis_deploy`](super::redis_deploy)) and each with a TTL, so
//! nothing outlives its session:
//! - `code:{code}`: `r:{ticket}` while reserved, then `t:{ftToken}`; TTL validity + grace;
//! - `live:{length}`: sorted set of live codes scored by expiry (Redis server time, ms), to count
//!   them for the exhaustion rule; TTL that of its longest-lived member;
//! - `match:{ftToken}` / `settle:{ftToken}`: the id of the first match / settle call; TTL that
//!   of the code.
//!
//! A first match or settlement also publishes the token on the channel `{namespace}:wake` (the
//! prefix above plus `wake`; on a cluster, classic pub/sub reaches every node).
//!
//! Every multi-step operation is one Lua script, so it is atomic, and idempotent: a script sent
//! again (after an interrupted read or a connection that died) answers as the first time did.
//! One server, Redis Cluster or a primary under Sentinel, named by the URL.
//!
//! Connections, per process and store: at most [`RedisStore::MAX_CONNECTIONS`] for commands (a caller waits
//! for a free one) plus one subscriber that receives the wake-ups of every waiter of the
//! process, so the count stays bounded whatever the number of waits. A process never uses a
//! connection its parent opened (the fork generation of `crate::fork`), and a forked child never
//! blocks on a lock that a thread `fork()` did not copy held: its calls then use connections of
//! their own and its waits poll the store. A read interrupted by a signal (`EINTR`; sockets
//! with a time-out are never restarted) is retried within the command's time limit, and a
//! pooled connection found dead (a Redis restart) is replaced once, transparently.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::{ConnectionLike, RedisResult, Script};

use super::redis_deploy::{Conn, Deployment};
use super::{deadline_after, remaining, Lookup, Match, Reserve, Store};
use crate::error::{Error, ErrorKind, Result};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Command connections per process and store (the subscriber comes on top).
const MAX_CONNECTIONS: usize = RedisStore::MAX_CONNECTIONS;

/// How often the subscriber looks up from its socket (to notice the store was dropped).
const SUBSCRIBER_TICK: Duration = Duration::from_millis(500);

/// Pause between the subscriber's reconnection attempts while Redis is away.
const RESUBSCRIBE_PAUSE: Duration = Duration::from_millis(100);

/// `EINTR` in an `io::Error`'s text ("(os error 4)"): the redis crate keeps the `io::Error`
/// private, and 4 is `EINTR` on every POSIX system.
const EINTR_TEXT: &str = "(os error 4)";

// KEYS: live set, candidate code keys. ARGV: ttl ms, limit, holder value, candidate codes.
// Returns the 1-based index of the reserved candidate, 0 when all are taken, -1 when exhausted.
// Repeated with the same ticket (a lost answer), it answers the candidate already reserved.
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[3] then return i - 1 end
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return -1 end
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[3], 'NX', 'PX', ttl) then
    redis.call('ZADD', KEYS[1], now + ttl, ARGV[i + 2])
    if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
    return i - 1
  end
end
return 0
";

// KEYS: code key. ARGV: reservation value, bound value. Keeps the key's expiry. Repeated (a
// lost answer), it answers 1 again.
const BIND: &str = r"
local v = redis.call('GET', KEYS[1])
if v == ARGV[2] then return 1 end
if v ~= ARGV[1] then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
return 1
";

// KEYS: code key, live set. ARGV: reservation value, code.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
";

// KEYS: code key. ARGV: key prefix (`{ns}:`), claim id. Publishes the token on `{ns}:wake`. Returns nil, or {ftToken, duplicate}.
// The token's keys derive from the code's value, hence are built here: on a cluster the prefix
// is a hash tag, so they are in the code key's slot.
// Repeated with the same claim id (a lost answer), it answers the same.
const CLAIM: &str = r"
local v = redis.call('GET', KEYS[1])
if not v or string.sub(v, 1, 2) ~= 't:' then return false end
local token = string.sub(v, 3)
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 1 then ttl = 1 end
local mk = ARGV[1] .. 'match:' .. token
if not redis.call('SET', mk, ARGV[2], 'NX', 'PX', ttl) then
  if redis.call('GET', mk) == ARGV[2] then return {token, 0} end
  return {token, 1}
end
redis.call('PUBLISH', ARGV[1] .. 'wake', token)
return {token, 0}
";

// KEYS: code key, settle key. ARGV: bound value, settle id, wake channel, token.
// Returns -1 when the code is no longer bound to the token, 1 for the first settlement (also
// when repeated with the same settle id), 0 when settled before.
const SETTLE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 1 then return -1 end
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ttl) then
  if redis.call('GET', KEYS[2]) == ARGV[2] then return 1 end
  return 0
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
";

// KEYS: settle key. ARGV: settle id. Only the first settlement's own id undoes it.
const UNSETTLE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
";

/// A [`Store`] in Redis, shared by every process that uses the same server and namespace.
///
/// Holds a bounded pool of connections and, once something waits, one subscriber connection
/// with its thread; safe to share between threads. A Redis failure is a [`ErrorKind::Network`]
/// error, never a guess.
pub struct RedisStore {
    namespace: String,
    /// The keys' prefix: `{namespace}:`, or `{{namespace}}:` on a cluster.
    prefix: String,
    pool: Arc<Pool>,
    wakeups: Arc<Wakeups>,
    reserve: Script,
    bind: Script,
    release: Script,
    claim: Script,
    settle: Script,
    unsettle: Script,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: show the namespace only.
        f.debug_struct("RedisStore")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        // The subscriber thread exits at its next tick (none runs where the lock is stuck).
        if let Some(mut s) = self.wakeups.lock() {
            s.stop = true;
        }
    }
}

impl RedisStore {
    /// The most connections a store opens for commands in one process; one more, the
    /// subscriber, carries the wake-ups of all its waiters.
    pub const MAX_CONNECTIONS: usize = 16;

    /// Connects to the Redis deployment `url` names and keeps keys under `namespace` (1-64
    /// visible ASCII characters, e.g. `"fotp"`; no braces on a cluster):
    /// - `redis://[user:password@]host[:port][/db]`: one server;
    /// - `redis+cluster://[user:password@]host:port[,host:port]...`: Redis Cluster (seed nodes);
    /// - `redis+sentinel://[user:password@]host:port[,host:port]...[/service]`: the primary the
    ///   Sentinels name `service` (default `mymaster`), followed across failovers.
    ///
    /// Connects once (and pings) so that a wrong address shows at once: a URL that does not
    /// parse or credentials the server refuses are a config error, an unreachable server a
    /// network error.
    pub fn open(url: &str, namespace: &str) -> Result<RedisStore> {
        if namespace.is_empty()
            || namespace.len() > 64
            || !namespace.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Error::invalid(
                "namespace must be 1-64 visible ASCII characters",
            ));
        }
        // The URL is never echoed: it may carry a password.
        let deployment = Arc::new(Deployment::open(url, CONNECT_TIMEOUT, COMMAND_TIMEOUT)?);
        let prefix = deployment.prefix(namespace)?;
        let store = RedisStore {
            namespace: namespace.to_owned(),
            pool: Arc::new(Pool::new(Arc::clone(&deployment))),
            wakeups: Arc::new(Wakeups::new(deployment, format!("{prefix}wake"))),
            prefix,
            reserve: Script::new(RESERVE),
            bind: Script::new(BIND),
            release: Script::new(RELEASE),
            claim: Script::new(CLAIM),
            settle: Script::new(SETTLE),
            unsettle: Script::new(UNSETTLE),
        };
        store
            .with_conn(|c| redis::cmd("PING").query::<String>(c))
            .map_err(|e| match e.message() == AUTH_REFUSED {
                // At start the credentials are the caller's configuration.
                true => Error::config("the Redis server refused the credentials in the URL"),
                false => e,
            })?;
        Ok(store)
    }

    /// The namespace of this store's keys.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Test hook: runs `f` while this store's connection pool lock (`pool`) or wake-up lock
    /// (otherwise) is held, as by a thread that `fork()` catches inside it. Only with the
    /// unstable `internals` feature; not part of the Rust API.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn with_lock_held<R>(&self, pool: bool, f: impl FnOnce() -> R) -> R {
        if pool {
            let _held = self.pool.state.lock();
            f()
        } else {
            let _held = self.wakeups.state.lock();
            f()
        }
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    /// Runs `f` on a pooled connection; every `f` here is idempotent, so it may run twice.
    ///
    /// An interrupted read (`EINTR`) is retried on the same connection until the time limit
    /// (the crate then skips the interrupted command's late answer); a pooled connection that
    /// turns out dead (or, under Sentinel, talking to a demoted primary) is replaced once.
    /// Anything else drops the connection and is the error.
    fn with_conn<T>(
        &self,
        mut f: impl FnMut(&mut dyn ConnectionLike) -> RedisResult<T>,
    ) -> Result<T> {
        let deadline = deadline_after(COMMAND_TIMEOUT);
        let mut lease = self.pool.checkout(deadline, false)?;
        let mut replaced = false;
        loop {
            match f(lease.con.like()) {
                Ok(v) => {
                    self.pool.checkin(lease);
                    return Ok(v);
                }
                Err(e) if interrupted(&e) && Instant::now() < deadline => {}
                Err(e) if self.stale(&e) && !lease.fresh && !replaced => {
                    // The server closed it (a restart?): the other idle ones are likely dead
                    // too, so the retry gets a new connection.
                    self.pool.discard(lease);
                    self.pool.clear_idle();
                    replaced = true;
                    lease = self.pool.checkout(deadline, true)?;
                }
                Err(e) => {
                    self.pool.discard(lease);
                    return Err(store_error(e));
                }
            }
        }
    }
}

impl RedisStore {
    /// An error that a new connection may not have: the server closed this one, or the
    /// Sentinels' former primary now refuses writes.
    fn stale(&self, e: &redis::RedisError) -> bool {
        e.is_connection_dropped()
            || (self.pool.deployment.follows_primary() && e.kind() == redis::ErrorKind::ReadOnly)
    }
}

pub(super) fn interrupted(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::IoError && e.to_string().ends_with(EINTR_TEXT)
}

const AUTH_REFUSED: &str = "the tracker's Redis store refused the credentials in the URL";

fn store_error(e: redis::RedisError) -> Error {
    // Network, credentials refused included: after start the URL was accepted once, so a
    // refusal now is the server's state (a rotated password), a store failure (docs/ERRORS.md).
    if e.kind() == redis::ErrorKind::AuthenticationFailed {
        return Error::new(ErrorKind::Network, AUTH_REFUSED);
    }
    Error::new(
        ErrorKind::Network,
        format!("the tracker's Redis store failed: {e}"),
    )
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Opens a connection within `deadline` (`open` gets the time it may take), retrying a
/// handshake a signal interrupted.
fn connect<C>(deadline: Instant, open: impl Fn(Duration) -> RedisResult<C>) -> Result<C> {
    loop {
        let limit = remaining(deadline)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Network,
                    "the tracker's Redis store failed: no connection within the time limit",
                )
            })?
            .min(CONNECT_TIMEOUT);
        match open(limit) {
            Ok(c) => return Ok(c),
            Err(e) if interrupted(&e) => {}
            Err(e) => return Err(store_error(e)),
        }
    }
}

/// A connection out of the pool.
struct Lease {
    con: Conn,
    /// Opened for this call (so not stale).
    fresh: bool,
    /// The fork generation of the pool that counts it; `None`: this call's own, never pooled.
    owner: Option<u64>,
}

/// At most [`MAX_CONNECTIONS`] command connections, reused; reset in a forked child.
struct Pool {
    deployment: Arc<Deployment>,
    /// The fork generation `state` belongs to; read without the lock, so that a forked child
    /// never blocks on a lock a thread that was not copied may hold.
    owner: AtomicU64,
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<Conn>,
    /// Connections of this process, idle or leased.
    open: usize,
}

impl Pool {
    fn new(deployment: Arc<Deployment>) -> Pool {
        Pool {
            deployment,
            owner: AtomicU64::new(crate::fork::generation()),
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// The state and its generation; `None` in a forked child where a thread that was not
    /// copied holds the lock.
    fn lock(&self) -> Option<(MutexGuard<'_, PoolState>, u64)> {
        let generation = crate::fork::generation();
        if self.owner.load(Ordering::Acquire) == generation {
            // Every update leaves the state valid, so a poisoned lock still guards valid data.
            let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            return Some((s, generation));
        }
        let mut s = crate::fork::lock_inherited(&self.state, &self.owner, generation)?;
        if self.owner.load(Ordering::Acquire) != generation {
            // A forked child: its parent's sockets are not its to use. Closing our copies
            // leaves the parent's connections open.
            s.idle.clear();
            s.open = 0;
            self.owner.store(generation, Ordering::Release);
        }
        Some((s, generation))
    }

    /// A connection of this call's own, not pooled: the pool's lock stays held by a thread
    /// that `fork()` did not copy.
    fn unpooled(&self, deadline: Instant) -> Result<Lease> {
        let con = self.open(deadline)?;
        Ok(Lease {
            con,
            fresh: true,
            owner: None,
        })
    }

    /// A new command connection, opened within `deadline`.
    fn open(&self, deadline: Instant) -> Result<Conn> {
        connect(deadline, |limit| {
            self.deployment
                .connect(limit, COMMAND_TIMEOUT, COMMAND_TIMEOUT)
        })
    }

    /// A connection, idle or new (only new when `new_only`).
    fn checkout(&self, deadline: Instant, new_only: bool) -> Result<Lease> {
        let Some((mut s, mut generation)) = self.lock() else {
            return self.unpooled(deadline);
        };
        loop {
            if !new_only {
                if let Some(con) = s.idle.pop() {
                    return Ok(Lease {
                        con,
                        fresh: false,
                        owner: Some(generation),
                    });
                }
            } else if s.open >= MAX_CONNECTIONS && s.idle.pop().is_some() {
                // Room for the new one: an idle connection is closed.
                s.open -= 1;
            }
            if s.open < MAX_CONNECTIONS {
                s.open += 1;
                drop(s);
                return match self.open(deadline) {
                    Ok(con) => Ok(Lease {
                        con,
                        fresh: true,
                        owner: Some(generation),
                    }),
                    Err(e) => {
                        self.forget(Some(generation));
                        Err(e)
                    }
                };
            }
            let Some(left) = remaining(deadline) else {
                return Err(Error::new(
                    ErrorKind::Network,
                    format!(
                        "the tracker's Redis store failed: all {MAX_CONNECTIONS} connections stayed busy"
                    ),
                ));
            };
            s = self
                .freed
                .wait_timeout(s, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            // Re-run the fork check on the reacquired state.
            drop(s);
            (s, generation) = match self.lock() {
                Some(locked) => locked,
                None => return self.unpooled(deadline),
            };
        }
    }

    fn checkin(&self, lease: Lease) {
        if lease.owner.is_none() {
            // This call's own: closed.
            return;
        }
        if let Some((mut s, generation)) = self.lock() {
            if lease.owner == Some(generation) {
                s.idle.push(lease.con);
                self.freed.notify_one();
            }
        }
    }

    /// Drops every idle connection.
    fn clear_idle(&self) {
        if let Some((mut s, _)) = self.lock() {
            let n = s.idle.len();
            s.idle.clear();
            s.open = s.open.saturating_sub(n);
            self.freed.notify_all();
        }
    }

    /// Drops a connection that failed.
    fn discard(&self, lease: Lease) {
        drop(lease.con);
        self.forget(lease.owner);
    }

    fn forget(&self, owner: Option<u64>) {
        if owner.is_none() {
            return;
        }
        if let Some((mut s, generation)) = self.lock() {
            if owner == Some(generation) {
                s.open = s.open.saturating_sub(1);
                self.freed.notify_one();
            }
        }
    }
}

/// The wake-ups of one process: a subscriber thread on `{ns}:wake` fans the published tokens
/// out to the local waiters.
struct Wakeups {
    deployment: Arc<Deployment>,
    /// Subscription attempts so far: on a cluster, each failure moves to the next seed node.
    attempts: std::sync::atomic::AtomicUsize,
    channel: String,
    /// The fork generation that last took `state` (read without the lock, as the pool's).
    owner: AtomicU64,
    state: Mutex<WakeState>,
    changed: Condvar,
}

#[derive(Default)]
struct WakeState {
    /// The fork generation whose subscriber thread runs (`None`: none yet).
    running: Option<u64>,
    /// Bumped each time the subscription (re)starts: a waiter then re-checks the store, since a
    /// wake-up published while it was down was missed.
    generation: u64,
    subscribed: bool,
    /// Tokens waited for, with their number of waiters.
    waiting: HashMap<String, usize>,
    /// Waited-for tokens whose wake-up came.
    woken: HashSet<String>,
    stop: bool,
}

impl Wakeups {
    fn new(deployment: Arc<Deployment>, channel: String) -> Wakeups {
        Wakeups {
            deployment,
            attempts: std::sync::atomic::AtomicUsize::new(0),
            channel,
            owner: AtomicU64::new(crate::fork::generation()),
            state: Mutex::new(WakeState::default()),
            changed: Condvar::new(),
        }
    }

    /// The state; `None` in a forked child where a thread that was not copied (the parent's
    /// subscriber, each tick) holds the lock: waiters then poll the store.
    fn lock(&self) -> Option<MutexGuard<'_, WakeState>> {
        let generation = crate::fork::generation();
        if self.owner.load(Ordering::Acquire) == generation {
            // Every update leaves the state valid, so a poisoned lock still guards valid data.
            return Some(self.state.lock().unwrap_or_else(|e| e.into_inner()));
        }
        // The subscriber is restarted by `ensure_running`: nothing else to reset here.
        let s = crate::fork::lock_inherited(&self.state, &self.owner, generation)?;
        self.owner.store(generation, Ordering::Release);
        Some(s)
    }

    /// Starts this process's subscriber thread unless it runs (threads do not survive a fork).
    /// Called with the state locked by this generation (a waiter's registration).
    fn ensure_running(self: &Arc<Self>, s: &mut WakeState) -> Result<()> {
        let generation = crate::fork::generation();
        if s.running == Some(generation) {
            return Ok(());
        }
        s.running = Some(generation);
        s.subscribed = false;
        s.woken.clear();
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("fotp-redis-wake".into())
            .spawn(move || me.run(generation));
        if let Err(e) = spawned {
            s.running = None;
            return Err(Error::new(
                ErrorKind::Internal,
                format!("could not start the tracker's wake-up thread: {e}"),
            ));
        }
        Ok(())
    }

    fn running_here(&self, generation: u64) -> bool {
        self.lock()
            .is_some_and(|s| !s.stop && s.running == Some(generation))
    }

    fn run(&self, generation: u64) {
        while self.running_here(generation) {
            if self.subscribe_and_listen(generation).is_err() {
                // Redis away: waiters poll meanwhile; try again shortly.
                std::thread::sleep(RESUBSCRIBE_PAUSE);
            }
            if let Some(mut s) = self.lock() {
                s.subscribed = false;
                self.changed.notify_all();
            }
        }
    }

    fn subscribe_and_listen(&self, generation: u64) -> Result<()> {
        let deadline = deadline_after(CONNECT_TIMEOUT);
        let attempt = self
            .attempts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // One node (the primary under Sentinel, a seed on a cluster): a published wake-up
        // reaches every node of a deployment (replication, cluster bus). Under Sentinel, asking
        // for the primary is bounded as a command connection's is.
        let mut con = connect(deadline, |limit| {
            self.deployment
                .node(attempt, limit, SUBSCRIBER_TICK, COMMAND_TIMEOUT)
        })?;
        let mut sub = con.as_pubsub();
        loop {
            match sub.subscribe(&self.channel) {
                Ok(()) => break,
                Err(e) if interrupted(&e) && Instant::now() < deadline => {}
                Err(e) => return Err(store_error(e)),
            }
        }
        if let Some(mut s) = self.lock() {
            s.generation = s.generation.wrapping_add(1);
            s.subscribed = true;
            self.changed.notify_all();
        }
        while self.running_here(generation) {
            match sub.get_message() {
                Ok(msg) => {
                    let Ok(token) = msg.get_payload::<String>() else {
                        continue;
                    };
                    let Some(mut s) = self.lock() else { continue };
                    if s.waiting.contains_key(&token) {
                        s.woken.insert(token);
                        self.changed.notify_all();
                    }
                }
                // Idle, or a signal: nothing lost, keep listening.
                Err(e) if e.is_timeout() || interrupted(&e) => {}
                Err(e) => return Err(store_error(e)),
            }
        }
        Ok(())
    }
}

/// Registration of one waiter for a token; removed on drop.
struct Waiting<'a> {
    wakeups: &'a Wakeups,
    token: String,
}

impl<'a> Waiting<'a> {
    /// Registers the waiter and makes sure this process's subscriber runs; `None` where the
    /// lock is stuck after a fork (the caller polls).
    fn new(wakeups: &'a Arc<Wakeups>, token: &str) -> Option<Result<Waiting<'a>>> {
        let mut s = wakeups.lock()?;
        if let Err(e) = wakeups.ensure_running(&mut s) {
            return Some(Err(e));
        }
        *s.waiting.entry(token.to_owned()).or_insert(0) += 1;
        Some(Ok(Waiting {
            wakeups,
            token: token.to_owned(),
        }))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        // Registered, so this generation took the lock: it is not stuck.
        let Some(mut s) = self.wakeups.lock() else {
            return;
        };
        let last = match s.waiting.get_mut(&self.token) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => true,
        };
        if last {
            s.waiting.remove(&self.token);
            s.woken.remove(&self.token);
        }
    }
}

impl RedisStore {
    /// A wait without the subscriber (its state is locked by a thread `fork()` did not copy):
    /// the store is checked now and when the time is up, as when the subscriber is down.
    fn poll_matched(
        &self,
        keys: &[String; 2],
        deadline: Instant,
        stop: &dyn Fn() -> bool,
    ) -> Result<bool> {
        loop {
            let found: usize = self.with_conn(|c| redis::cmd("EXISTS").arg(keys).query(c))?;
            if found > 0 {
                return Ok(true);
            }
            if remaining(deadline).is_none() {
                return Ok(false);
            }
            while let Some(left) = remaining(deadline) {
                if stop() {
                    return Ok(false);
                }
                std::thread::sleep(left.min(super::STOP_CHECK));
            }
        }
    }
}

impl Store for RedisStore {
    fn reserve(
        &self,
        candidates: &[String],
        ticket: &str,
        limit: usize,
        ttl: Duration,
    ) -> Result<Reserve> {
        let Some(len) = candidates.first().map(String::len) else {
            return Ok(Reserve::AllTaken);
        };
        let mut inv = self.reserve.key(self.key("live", &len.to_string()));
        for c in candidates {
            inv.key(self.key("code", c));
        }
        inv.arg(millis(ttl)).arg(limit).arg(format!("r:{ticket}"));
        for c in candidates {
            inv.arg(c);
        }
        let n: i64 = self.with_conn(|c| inv.invoke(c))?;
        Ok(match n {
            -1 => Reserve::Exhausted,
            0 => Reserve::AllTaken,
            n if n >= 1 && (n as usize) <= candidates.len() => Reserve::Reserved(n as usize - 1),
            n => {
                return Err(Error::new(
                    ErrorKind::Internal,
                    format!("the reserve script answered {n}"),
                ))
            }
        })
    }

    fn bind(&self, code: &str, ticket: &str, ft_token: &str) -> Result<bool> {
        let mut inv = self.bind.key(self.key("code", code));
        inv.arg(format!("r:{ticket}")).arg(format!("t:{ft_token}"));
        let n: i64 = self.with_conn(|c| inv.invoke(c))?;
        Ok(n == 1)
    }

    fn release(&self, code: &str, ticket: &str) -> Result<()> {
        let mut inv = self.release.key(self.key("code", code));
        inv.key(self.key("live", &code.len().to_string()))
            .arg(format!("r:{ticket}"))
            .arg(code);
        let _: i64 = self.with_conn(|c| inv.invoke(c))?;
        Ok(())
    }

    fn lookup(&self, code: &str) -> Result<Lookup> {
        let key = self.key("code", code);
        let v: Option<String> = self.with_conn(|c| redis::cmd("GET").arg(&key).query(c))?;
        Ok(match v {
            None => Lookup::Free,
            Some(v) => match v.strip_prefix("t:") {
                Some(token) => Lookup::Bound(token.to_owned()),
                None => Lookup::Reserved,
            },
        })
    }

    fn claim(&self, code: &str) -> Result<Option<Match>> {
        // Names this call, so that the script resent after an interrupted read answers the same.
        let claim_id = crate::sign::new_nonce()?;
        let mut inv = self.claim.key(self.key("code", code));
        inv.arg(&self.prefix).arg(&claim_id);
        let found: Option<(String, i64)> = self.with_conn(|c| inv.invoke(c))?;
        Ok(found.map(|(ft_token, dup)| Match::new(ft_token, dup == 1)))
    }

    fn settle(&self, code: &str, ft_token: &str, settle_id: &str) -> Result<Option<bool>> {
        let mut inv = self.settle.key(self.key("code", code));
        inv.key(self.key("settle", ft_token))
            .arg(format!("t:{ft_token}"))
            .arg(settle_id)
            .arg(&self.wakeups.channel)
            .arg(ft_token);
        let n: i64 = self.with_conn(|c| inv.invoke(c))?;
        Ok(match n {
            1 => Some(true),
            0 => Some(false),
            _ => None,
        })
    }

    fn unsettle(&self, ft_token: &str, settle_id: &str) -> Result<()> {
        let mut inv = self.unsettle.key(self.key("settle", ft_token));
        inv.arg(settle_id);
        let _: i64 = self.with_conn(|c| inv.invoke(c))?;
        Ok(())
    }

    fn wait_matched(&self, ft_token: &str, timeout: Duration) -> Result<bool> {
        self.wait_matched_unless(ft_token, timeout, &|| false)
    }

    fn wait_matched_unless(
        &self,
        ft_token: &str,
        timeout: Duration,
        stop: &dyn Fn() -> bool,
    ) -> Result<bool> {
        let deadline = deadline_after(timeout);
        let keys = [self.key("match", ft_token), self.key("settle", ft_token)];
        let Some(waiting) = Waiting::new(&self.wakeups, ft_token) else {
            return self.poll_matched(&keys, deadline, stop);
        };
        let _waiting = waiting?;
        let mut checked: Option<u64> = None;
        loop {
            // Check the store whenever the subscription (re)started since the last check:
            // a wake-up published before it was active would be missed otherwise.
            let generation = {
                let Some(mut s) = self.wakeups.lock() else {
                    return self.poll_matched(&keys, deadline, stop);
                };
                loop {
                    if s.woken.contains(ft_token) {
                        return Ok(true);
                    }
                    if s.subscribed && checked != Some(s.generation) {
                        break Some(s.generation);
                    }
                    if checked.is_none() && !s.subscribed && remaining(deadline).is_none() {
                        // Never subscribed in time: one check, then the caller polls.
                        break None;
                    }
                    let Some(left) = remaining(deadline) else {
                        return Ok(false);
                    };
                    if stop() {
                        return Ok(false);
                    }
                    s = self
                        .wakeups
                        .changed
                        .wait_timeout(s, left.min(super::STOP_CHECK))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            };
            let found: usize = self.with_conn(|c| redis::cmd("EXISTS").arg(&keys).query(c))?;
            if found > 0 {
                return Ok(true);
            }
            match generation {
                Some(g) => checked = Some(g),
                None => return Ok(false),
            }
        }
    }
}
