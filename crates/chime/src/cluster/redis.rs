//! The Redis coordinator (feature `redis`): claims shared by members on many hosts through one Redis
//! server.
//!
//! At most one start per (key, tick) holds only while Redis loses no acknowledged write: no failover
//! to a replica that may lag, AOF with `appendfsync always` to survive a restart, no eviction. The
//! scripts, the row layout and these promises in full are documented on [`Redis`] (this module is
//! private: that is where users read them).

use std::time::Duration;

use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::protocol::{Claim, ClaimOutcome, Lease, stored_lease_ms};
use super::{Coordinator, StoreFuture};
use crate::error::Error;

const BACKEND: &str = "redis";

fn store(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::store_error(BACKEND, e)
}

/// Lua shared by the scripts: Redis's clock in milliseconds, exact decimal comparison of ticks (kept
/// as strings, so every `u64` compares exactly), and integers formatted without an exponent.
const PRELUDE: &str = r"
if redis.replicate_commands then pcall(redis.replicate_commands) end
local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function tick_ge(a, b)
    if #a ~= #b then return #a > #b end
    return a >= b
end
local function int(n)
    return string.format('%.0f', n)
end
";

/// Claim: `KEYS[1]` the row, `ARGV` = tick, member, lease in ms. Returns `{'taken', last_tick}`,
/// `{'busy', owner, lease_until}` or `{'granted', fence, previous_tick or ''}`.
const CLAIM: &str = r"
local tick, member, lease_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
local row = redis.call('HMGET', KEYS[1], 'last_tick', 'owner', 'lease_until')
local last, owner, lease_until = row[1], row[2], tonumber(row[3] or '0')
local now = now_ms()
if last and tick_ge(last, tick) then
    return {'taken', last}
end
if owner and lease_until > now then
    return {'busy', owner, int(lease_until)}
end
local fence = redis.call('HINCRBY', KEYS[1], 'fence', 1)
redis.call('HSET', KEYS[1], 'last_tick', tick, 'owner', member, 'lease_until', int(now + lease_ms))
return {'granted', int(fence), last or ''}
";

/// Renew: `ARGV` = fence, member, lease in ms. Returns 1 when the row still is that claim (and
/// extends its lease from Redis's clock), 0 when the lease was lost.
const RENEW: &str = r"
local row = redis.call('HMGET', KEYS[1], 'fence', 'owner')
if row[1] ~= ARGV[1] or row[2] ~= ARGV[2] then
    return 0
end
redis.call('HSET', KEYS[1], 'lease_until', int(now_ms() + tonumber(ARGV[3])))
return 1
";

/// Release: `ARGV` = fence, member. Ends the lease when the row still is that claim; returns 1 then,
/// 0 when it was lost already.
const RELEASE: &str = r"
local row = redis.call('HMGET', KEYS[1], 'fence', 'owner')
if row[1] ~= ARGV[1] or row[2] ~= ARGV[2] then
    return 0
end
redis.call('HDEL', KEYS[1], 'owner')
redis.call('HSET', KEYS[1], 'lease_until', '0')
return 1
";

/// The three scripts, hashed once.
#[derive(Debug)]
struct Scripts {
    claim: Script,
    renew: Script,
    release: Script,
}

impl Scripts {
    fn new() -> Scripts {
        let with_prelude = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
        Scripts { claim: with_prelude(CLAIM), renew: with_prelude(RENEW), release: with_prelude(RELEASE) }
    }
}

/// Claims in Redis, for members on many hosts. Cheap to clone: clones share one connection, which
/// reconnects by itself.
///
/// Each operation is **one Lua script** (`EVALSHA`, loaded on first use), which Redis runs atomically:
/// it reads the key's row, applies the rules of [`protocol`](super::protocol) and writes the result,
/// reading time from Redis's own clock (`TIME`), never the members'. One key's row is a hash at
/// `{chime:<key>}` with the fields `last_tick`, `fence`, `owner` and `lease_until` (milliseconds since
/// the Unix epoch, Redis's clock); every script touches that one key only, and the braces make it a
/// hash tag, so the scripts are valid on Redis Cluster. Rows never expire (a deleted row would
/// restart the fences at 1).
///
/// # What Redis promises
///
/// At most one start per (key, tick) holds **only while Redis loses no acknowledged write**. A grant
/// is acknowledged as soon as the primary has it in memory, so:
///
/// - no failover to a replica that may lag (Sentinel or Cluster failover can hand out a tick, or a
///   fence, a second time);
/// - to survive a restart, `appendonly yes` with `appendfsync always` (with `everysec` up to a second
///   of grants is lost; RDB snapshots alone lose everything since the last one);
/// - no eviction of the rows (`maxmemory-policy noeviction`, or a `volatile-*` policy: the rows carry
///   no TTL).
///
/// Where that cannot be had, use `chime::cluster::Postgres` (feature `postgres`) or, on one
/// machine, [`Sqlite`](super::Sqlite).
///
/// The connection is a [`redis::aio::ConnectionManager`]: one multiplexed connection per
/// [`Redis`] (its clones share it) that reconnects on its own after an error. A call that fails
/// meanwhile is an [`Error::Store`]: the tick does not run here (fail closed). A call is never
/// retried by the coordinator, since a claim whose reply was lost may have been granted.
///
/// # Example
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
/// let store = chime::cluster::Redis::connect("redis://127.0.0.1:6379/").await?;
/// let sched = chime::Scheduler::start();
/// let report = sched
///     .timer(std::time::Duration::from_secs(60))
///     .recurring()
///     .key("nightly-report")
///     .coordinator(store)
///     .on_expire(|fire| println!("this host runs the tick with fence {:?}", fire.fence()))
///     .arm()?;
/// # drop(report);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Redis {
    conn: ConnectionManager,
    scripts: std::sync::Arc<Scripts>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").finish_non_exhaustive()
    }
}

impl Redis {
    /// Connects to the Redis server at `url` (`redis://[user:password@]host[:port][/db]`, or
    /// `rediss://` where the `redis` crate was built with TLS), checking that it answers.
    ///
    /// Replies wait up to 5 s; after an error the connection reconnects by itself, with backoff.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] (backend `redis`) when `url` is not a Redis URL or the server cannot be
    /// reached.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let refused = chime::cluster::Redis::connect("not a redis url").await;
    /// assert!(matches!(refused, Err(chime::Error::Store { backend: "redis", .. })));
    /// # }
    /// ```
    ///
    /// With a server:
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::cluster::{Claim, ClaimOutcome, Coordinator, Redis};
    /// let store = Redis::connect("redis://127.0.0.1:6379/").await?;
    /// let ask = Claim { key: "report".into(), tick: 7, member: "a".into(), lease_ms: 1000, now_ms: 0 };
    /// if let ClaimOutcome::Granted(lease) = store.claim(&ask).await? {
    ///     println!("tick 7 is ours, fence {}", lease.fence);
    ///     store.release(&lease).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Redis, Error> {
        let client = redis::Client::open(url).map_err(store)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_with_config(client, config).await.map_err(store)?;
        let redis = Redis { conn, scripts: std::sync::Arc::new(Scripts::new()) };
        redis::cmd("PING").query_async::<()>(&mut redis.conn.clone()).await.map_err(store)?;
        Ok(redis)
    }

    /// The Redis key that holds `key`'s row: `{chime:<key>}`, a hash tag, so the row has one slot on
    /// Redis Cluster.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(chime::cluster::Redis::row_key("report"), "{chime:report}");
    /// ```
    pub fn row_key(key: &str) -> String {
        format!("{{chime:{key}}}")
    }

    /// The shared connection, for the durable timers' keys on the same server.
    pub(crate) fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

fn int<T: std::str::FromStr>(field: &str, value: &str) -> Result<T, Error> {
    value
        .parse()
        .map_err(|_| Error::store(BACKEND, format!("the claim script returned a bad {field}: {value:?}")))
}

/// Reads the claim script's reply.
fn outcome(claim: &Claim, reply: &[String]) -> Result<ClaimOutcome, Error> {
    match reply {
        [kind, last] if kind == "taken" => Ok(ClaimOutcome::Taken { last_tick: int("last_tick", last)? }),
        [kind, owner, until] if kind == "busy" => {
            Ok(ClaimOutcome::Busy { owner: owner.clone(), lease_until_ms: int("lease_until", until)? })
        }
        [kind, fence, previous] if kind == "granted" => {
            let previous_tick =
                if previous.is_empty() { None } else { Some(int("previous_tick", previous)?) };
            Ok(ClaimOutcome::Granted(Lease::granted(claim, int("fence", fence)?, previous_tick)))
        }
        other => Err(Error::store(BACKEND, format!("the claim script returned {other:?}"))),
    }
}

impl Coordinator for Redis {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn claim<'a>(&'a self, claim: &'a Claim) -> StoreFuture<'a, ClaimOutcome> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let reply: Vec<String> = self
                .scripts
                .claim
                .key(Redis::row_key(&claim.key))
                .arg(claim.tick)
                .arg(&claim.member)
                .arg(stored_lease_ms(claim.lease_ms))
                .invoke_async(&mut conn)
                .await
                .map_err(store)?;
            outcome(claim, &reply)
        })
    }

    fn renew<'a>(&'a self, lease: &'a Lease, _now_ms: i64) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let renewed: i64 = self
                .scripts
                .renew
                .key(Redis::row_key(&lease.key))
                .arg(lease.fence)
                .arg(&lease.member)
                .arg(stored_lease_ms(lease.lease_ms))
                .invoke_async(&mut conn)
                .await
                .map_err(store)?;
            Ok(renewed == 1)
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let _released: i64 = self
                .scripts
                .release
                .key(Redis::row_key(&lease.key))
                .arg(lease.fence)
                .arg(&lease.member)
                .invoke_async(&mut conn)
                .await
                .map_err(store)?;
            Ok(())
        })
    }
}
