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

// KEYS: code key. ARGV: key prefix (`{ns}:`), claim id. Returns nil, or {ftToken, duplicate}.
// The token's keys derive from the code's value, hence are built here (standalone Redis only).
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
local done = ARGV[1] .. 'done:' .. token
if redis.call('EXISTS', done) == 0 then
  redis.call('RPUSH', done, '1')
  redis.call('PEXPIRE', done, ttl)
end
return {token, 0}
";

// KEYS: code key, settle key, done key. ARGV: bound value, settle id.
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
if redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('RPUSH', KEYS[3], '1')
  redis.call('PEXPIRE', KEYS[3], ttl)
end
return 1
";

// KEYS: settle key. ARGV: settle id. Only the first settlement's own id undoes it.
const UNSETTLE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
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
            settle: Script::new(SETTLE),
            unsettle: Script::new(UNSETTLE),
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

    fn lookup(&self, code: &str) -> Result<Option<String>> {
        let key = self.key("code", code);
        let v: Option<String> = self.with_conn(|c| redis::cmd("GET").arg(&key).query(c))?;
        Ok(v.and_then(|v| v.strip_prefix("t:").map(str::to_owned)))
    }

    fn claim(&self, code: &str, claim_id: &str) -> Result<Option<Match>> {
        let mut inv = self.claim.key(self.key("code", code));
        inv.arg(format!("{}:", self.namespace)).arg(claim_id);
        let found: Option<(String, i64)> = self.with_conn(|c| inv.invoke(c))?;
        Ok(found.map(|(ft_token, dup)| Match::new(ft_token, dup == 1)))
    }

    fn settle(&self, code: &str, ft_token: &str, settle_id: &str) -> Result<Option<bool>> {
        let mut inv = self.settle.key(self.key("code", code));
        inv.key(self.key("settle", ft_token))
            .key(self.key("done", ft_token))
            .arg(format!("t:{ft_token}"))
            .arg(settle_id);
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
