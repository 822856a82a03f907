//! The Redis store: many processes behind a load balancer share one tracker.
//!
//! Keys, all under `{namespace}:` and each with a TTL, so nothing outlives its session:
//! - `code:{code}`: `r:{ticket}` while reserved, then `t:{ftToken}`; TTL validity + grace;
//! - `live:{length}`: sorted set of live codes scored by expiry (Redis server time, ms), to count
//!   them for the exhaustion rule; TTL that of its longest-lived member;
//! - `done:{ftToken}`: a one-element list once a callback matched; waiters block on it with
//!   `BLMOVE key key` (which leaves the element in place, so every waiter wakes); TTL that of
//!   its code.
//!
//! Every multi-step operation is one Lua script, so it is atomic. Needs Redis 6.2 or later
//! (BLMOVE), standalone or with replicas (not Redis Cluster: scripts touch several keys).

use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use redis::{Connection, RedisResult, Script};

use super::{Match, Reserve, Store};
use crate::error::{Error, ErrorKind, Result};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_IDLE: usize = 16;

// KEYS: live set, candidate code keys. ARGV: ttl ms, limit, holder value, candidate codes.
// Returns the 1-based index of the reserved candidate, 0 when all are taken, -1 when exhausted.
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
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

// KEYS: code key. ARGV: reservation value, bound value. Keeps the key's expiry.
const BIND: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
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

// KEYS: code key. ARGV: done-key prefix. Returns nil, or {ftToken, duplicate 0/1}.
// The done key is derived from the code's value, hence built here (standalone Redis only).
const CLAIM: &str = r"
local v = redis.call('GET', KEYS[1])
if not v or string.sub(v, 1, 2) ~= 't:' then return false end
local token = string.sub(v, 3)
local done = ARGV[1] .. token
if redis.call('EXISTS', done) == 1 then return {token, 1} end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 1 then ttl = 1 end
redis.call('RPUSH', done, '1')
redis.call('PEXPIRE', done, ttl)
return {token, 0}
";

/// A [`Store`] in Redis, shared by every process that uses the same server and namespace.
///
/// Holds a small pool of connections; safe to share between threads. A Redis failure is a
/// [`ErrorKind::Network`] error, never a guess.
pub struct RedisStore {
    client: redis::Client,
    namespace: String,
    idle: Mutex<Vec<Connection>>,
    reserve: Script,
    bind: Script,
    release: Script,
    claim: Script,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: show the namespace only.
        f.debug_struct("RedisStore")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the Redis server at `url` (`redis://[user:password@]host[:port][/db]`) and
    /// keeps keys under `namespace` (1-64 visible ASCII characters, e.g. `"fotp"`).
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
        let client = redis::Client::open(url).map_err(|e| {
            Error::config(format!(
                "the Redis URL is not valid (expected redis://[user:password@]host[:port][/db]): {}",
                e.category()
            ))
        })?;
        let store = RedisStore {
            client,
            namespace: namespace.to_owned(),
            idle: Mutex::new(Vec::new()),
            reserve: Script::new(RESERVE),
            bind: Script::new(BIND),
            release: Script::new(RELEASE),
            claim: Script::new(CLAIM),
        };
        store.with_conn(|c| redis::cmd("PING").query::<String>(c))?;
        Ok(store)
    }

    /// The namespace of this store's keys.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}:{kind}:{id}", self.namespace)
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // A Vec of connections stays valid whatever panicked while it was locked.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connect(&self) -> Result<Connection> {
        let c = self
            .client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .map_err(store_error)?;
        c.set_read_timeout(Some(COMMAND_TIMEOUT))
            .and_then(|()| c.set_write_timeout(Some(COMMAND_TIMEOUT)))
            .map_err(store_error)?;
        Ok(c)
    }

    /// Runs `f` on a pooled connection. A connection that failed is dropped, never reused;
    /// nothing is retried, since a lost answer may hide a change that did happen.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> RedisResult<T>) -> Result<T> {
        let pooled = self.idle().pop();
        let mut con = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let out = f(&mut con).map_err(store_error)?;
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(con);
        }
        Ok(out)
    }
}

fn store_error(e: redis::RedisError) -> Error {
    if e.kind() == redis::ErrorKind::AuthenticationFailed {
        return Error::config("the Redis server refused the credentials in the URL");
    }
    Error::new(
        ErrorKind::Network,
        format!("the tracker's Redis store failed: {e}"),
    )
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
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

    fn claim(&self, code: &str) -> Result<Option<Match>> {
        let mut inv = self.claim.key(self.key("code", code));
        inv.arg(self.key("done", ""));
        let found: Option<(String, i64)> = self.with_conn(|c| inv.invoke(c))?;
        Ok(found.map(|(ft_token, dup)| Match {
            ft_token,
            duplicate: dup == 1,
        }))
    }

    fn wait_matched(&self, ft_token: &str, timeout: Duration) -> Result<bool> {
        let key = self.key("done", ft_token);
        // BLMOVE's timeout 0 means "forever": block at least 1 ms.
        let secs = format!("{:.3}", timeout.as_secs_f64().max(0.001));
        let found: Option<String> = self.with_conn(|c| {
            // The connection blocks for `timeout`: allow for that before calling it dead.
            c.set_read_timeout(Some(timeout.saturating_add(COMMAND_TIMEOUT)))?;
            let r = redis::cmd("BLMOVE")
                .arg(&key)
                .arg(&key)
                .arg("RIGHT")
                .arg("LEFT")
                .arg(&secs)
                .query(c);
            c.set_read_timeout(Some(COMMAND_TIMEOUT))?;
            r
        })?;
        Ok(found.is_some())
    }
}
