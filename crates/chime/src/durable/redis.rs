//! Durable timers in Redis (feature `redis`), on the cluster coordinator's connection
//! ([`cluster::Redis`](crate::cluster::Redis)).
//!
//! Every call is **one Lua script** (`EVALSHA`, the operation's name its first argument), which Redis
//! runs atomically; it applies [`machine`](super::machine)'s rules and reads time from Redis's clock
//! (`TIME`). All keys share the hash tag `{chime:durable}`, so they live in one slot:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{chime:durable}:t:<key>` | hash | one timer: `handler payload due grace state attempt fence owner ready error` |
//! | `{chime:durable}:live:<handler>` | sorted set | the handler's pending and running timers, by `ready` |
//! | `{chime:durable}:s:<state>` | sorted set | the timers in a state, by `ready` (listing, purging) |
//! | `{chime:durable}:fence` | string | the fence counter |
//! | `{chime:durable}:handlers` | set | the handler names ever used |
//!
//! What Redis promises depends on its persistence: a create is durable when it returns only with
//! `appendonly yes` and `appendfsync always` (Redis then writes and fsyncs the AOF before it replies).
//! With `everysec`, up to a second of creates, claims and ends is lost when Redis crashes (a timer may
//! vanish or run twice); with RDB snapshots alone, everything since the last snapshot. A failover to a
//! replica that lags loses the same. [`DurableStore::prepare`] reads the setting (where `CONFIG` is
//! allowed) and warns through `tracing` when it is not `always`.

use redis::{Script, Value};

use super::machine::Outcome;
use super::machine::{Decision, Row, State};
use super::store::{ClaimReply, ClaimRequest, Claimed, DurableStore, Finish};
use crate::Error;
use crate::cluster::{Redis, StoreFuture};

const BACKEND: &str = "redis";
const PREFIX: &str = "{chime:durable}";
/// The longest lease or backoff the script takes, in ms: Lua numbers are doubles, exact to 2^53.
const MAX_MS: i64 = 1 << 50;

fn store(e: impl std::fmt::Display) -> Error {
    Error::store(BACKEND, e)
}

/// The script: every operation, dispatched on `ARGV[1]`.
const SCRIPT: &str = include_str!("redis.lua");

fn script() -> &'static Script {
    static SCRIPT_ONCE: std::sync::OnceLock<Script> = std::sync::OnceLock::new();
    SCRIPT_ONCE.get_or_init(|| Script::new(SCRIPT))
}

fn clamp(ms: i64) -> i64 {
    ms.clamp(-MAX_MS, MAX_MS)
}

/// One script call: `op` and its arguments; the flat reply.
async fn call(redis: &Redis, op: &str, args: Vec<Vec<u8>>) -> Result<Vec<Option<Vec<u8>>>, Error> {
    let mut conn = redis.connection();
    let mut invocation = script().key(PREFIX);
    invocation.arg(op);
    for arg in args {
        invocation.arg(arg);
    }
    let reply: Value = invocation.invoke_async(&mut conn).await.map_err(store)?;
    let items = match reply {
        Value::Array(items) => items,
        Value::Int(n) => return Ok(vec![Some(n.to_string().into_bytes())]),
        other => return Err(store(format!("the durable script answered {other:?}"))),
    };
    items
        .into_iter()
        .map(|v| match v {
            Value::Nil => Ok(None),
            Value::BulkString(b) => Ok(Some(b)),
            Value::SimpleString(s) => Ok(Some(s.into_bytes())),
            Value::Int(n) => Ok(Some(n.to_string().into_bytes())),
            other => Err(store(format!("the durable script answered {other:?}"))),
        })
        .collect()
}

/// Reads a flat reply in order.
struct Reader(std::vec::IntoIter<Option<Vec<u8>>>);

impl Reader {
    fn next(&mut self) -> Result<Option<Vec<u8>>, Error> {
        self.0.next().ok_or_else(|| store("the durable script's reply ended early"))
    }

    fn text(&mut self) -> Result<Option<String>, Error> {
        self.next()?.map(|b| String::from_utf8(b).map_err(store)).transpose()
    }

    fn string(&mut self) -> Result<String, Error> {
        self.text()?.ok_or_else(|| store("the durable script returned nil for a field"))
    }

    fn number<T: std::str::FromStr>(&mut self) -> Result<T, Error> {
        let s = self.string()?;
        s.parse().map_err(|_| store(format!("the durable script returned a bad number {s:?}")))
    }

    fn row(&mut self) -> Result<Row, Error> {
        let key = self.string()?;
        let handler = self.string()?;
        let payload = self.next()?.unwrap_or_default();
        let due_ms = self.number()?;
        let grace_ms = self.text()?.map(|g| g.parse().map_err(store)).transpose()?;
        let state = self.string()?;
        let state = State::from_name(&state).ok_or_else(|| store(format!("unknown state {state:?}")))?;
        Ok(Row {
            key,
            handler,
            payload,
            due_ms,
            grace_ms,
            state,
            attempt: self.number()?,
            fence: self.number()?,
            owner: self.text()?,
            ready_ms: self.number()?,
            error: self.text()?,
        })
    }

    fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    fn flags(self) -> Vec<bool> {
        self.0.map(|v| v.as_deref() == Some(b"1")).collect()
    }
}

fn num(n: impl ToString) -> Vec<u8> {
    n.to_string().into_bytes()
}

impl DurableStore for Redis {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn prepare(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut conn = self.connection();
            let config: Result<Vec<String>, _> =
                redis::cmd("CONFIG").arg("GET").arg("append*").query_async(&mut conn).await;
            if let Ok(pairs) = config {
                let get = |name: &str| pairs.chunks(2).find(|p| p[0] == name).map(|p| p[1].clone());
                let (aof, fsync) = (get("appendonly"), get("appendfsync"));
                if aof.as_deref() != Some("yes") || fsync.as_deref() != Some("always") {
                    tracing::warn!(
                        ?aof,
                        ?fsync,
                        "chime durable timers on Redis: without `appendonly yes` and `appendfsync always`, \
                         a Redis crash loses acknowledged creates and claims"
                    );
                }
            }
            call(self, "get", vec![b"".to_vec()]).await.map(drop)
        })
    }

    fn create<'a>(&'a self, rows: &'a [Row]) -> StoreFuture<'a, Vec<Option<Row>>> {
        Box::pin(async move {
            let mut args = vec![num(rows.len())];
            for row in rows {
                args.extend([
                    row.key.clone().into_bytes(),
                    row.handler.clone().into_bytes(),
                    row.payload.clone(),
                ]);
                args.push(num(row.due_ms));
                args.push(row.grace_ms.map(num).unwrap_or_default());
            }
            let mut reply = Reader(call(self, "create", args).await?.into_iter());
            let mut answers = Vec::with_capacity(rows.len());
            for _ in rows {
                answers.push(match reply.string()?.as_str() {
                    "new" => None,
                    _ => Some(reply.row()?),
                });
            }
            Ok(answers)
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Row>> {
        Box::pin(async move {
            let mut reply = Reader(call(self, "get", vec![key.as_bytes().to_vec()]).await?.into_iter());
            if reply.is_empty() { Ok(None) } else { reply.row().map(Some) }
        })
    }

    fn list<'a>(
        &'a self,
        state: State,
        after: Option<(i64, &'a str)>,
        limit: usize,
    ) -> StoreFuture<'a, Vec<Row>> {
        Box::pin(async move {
            let (ready, key) =
                after.map_or((Vec::new(), Vec::new()), |(r, k)| (num(r), k.as_bytes().to_vec()));
            let args = vec![state.name().as_bytes().to_vec(), ready, key, num(limit)];
            let mut reply = Reader(call(self, "list", args).await?.into_iter());
            let mut rows = Vec::new();
            while !reply.is_empty() {
                rows.push(reply.row()?);
            }
            Ok(rows)
        })
    }

    fn cancel<'a>(&'a self, key: &'a str, _now_ms: i64) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let reply = call(self, "cancel", vec![key.as_bytes().to_vec()]).await?;
            Ok(Reader(reply.into_iter()).flags() == [true])
        })
    }

    fn claim<'a>(&'a self, request: &'a ClaimRequest) -> StoreFuture<'a, ClaimReply> {
        Box::pin(async move {
            let rules = &request.rules;
            let mut args = vec![
                rules.member.clone().into_bytes(),
                num(clamp(rules.lease_ms)),
                num(rules.max_attempts),
                rules.grace_ms.map(|g| num(clamp(g))).unwrap_or_default(),
                num(request.limit),
                num(request.handlers.len()),
            ];
            args.extend(request.handlers.iter().map(|h| h.clone().into_bytes()));
            let mut reply = Reader(call(self, "claim", args).await?.into_iter());
            let now_ms = reply.number()?;
            let next_ready_ms = reply.text()?.map(|n| n.parse().map_err(store)).transpose()?;
            let mut claimed = Vec::new();
            while !reply.is_empty() {
                let decision = match reply.string()?.as_str() {
                    "run" => Decision::Run,
                    "skipped" => Decision::Skipped,
                    _ => Decision::Exhausted,
                };
                claimed.push(Claimed { decision, row: reply.row()? });
            }
            Ok(ClaimReply { claimed, next_ready_ms, now_ms })
        })
    }

    fn renew<'a>(
        &'a self,
        member: &'a str,
        runs: &'a [(String, u64)],
        lease_ms: i64,
        _now_ms: i64,
    ) -> StoreFuture<'a, Vec<bool>> {
        Box::pin(async move {
            let mut args = vec![member.as_bytes().to_vec(), num(clamp(lease_ms)), num(runs.len())];
            for (key, fence) in runs {
                args.extend([key.clone().into_bytes(), num(fence)]);
            }
            Ok(Reader(call(self, "renew", args).await?.into_iter()).flags())
        })
    }

    fn finish<'a>(&'a self, member: &'a str, runs: &'a [Finish], _now_ms: i64) -> StoreFuture<'a, Vec<bool>> {
        Box::pin(async move {
            let mut args = vec![member.as_bytes().to_vec(), num(runs.len())];
            for run in runs {
                let (kind, delay, error) = match &run.outcome {
                    Outcome::Fired => ("fired", 0, ""),
                    Outcome::Retry { delay_ms, error } => ("retry", clamp(*delay_ms), error.as_str()),
                    Outcome::Failed { error } => ("failed", 0, error.as_str()),
                    Outcome::Released => ("released", 0, ""),
                };
                args.extend([
                    run.key.clone().into_bytes(),
                    num(run.fence),
                    kind.into(),
                    num(delay),
                    error.into(),
                ]);
            }
            Ok(Reader(call(self, "finish", args).await?.into_iter()).flags())
        })
    }

    fn purge(&self, before_ms: i64, limit: usize) -> StoreFuture<'_, usize> {
        Box::pin(async move {
            let mut reply = Reader(call(self, "purge", vec![num(before_ms), num(limit)]).await?.into_iter());
            reply.number()
        })
    }

    fn unknown<'a>(&'a self, known: &'a [String], _now_ms: i64) -> StoreFuture<'a, Vec<(String, u64)>> {
        Box::pin(async move {
            let mut args = vec![num(known.len())];
            args.extend(known.iter().map(|h| h.clone().into_bytes()));
            let mut reply = Reader(call(self, "unknown", args).await?.into_iter());
            let mut unknown = Vec::new();
            while !reply.is_empty() {
                unknown.push((reply.string()?, reply.number()?));
            }
            Ok(unknown)
        })
    }
}
