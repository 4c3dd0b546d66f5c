//! Durable timers in PostgreSQL (feature `postgres`), on the cluster coordinator's connection
//! ([`cluster::Postgres`](crate::cluster::Postgres)).
//!
//! Every call is **one statement** (autocommit: durable once acknowledged, with the default
//! `synchronous_commit = on`), applying [`machine`](super::machine)'s rules in SQL and reading time
//! from the database's `clock_timestamp()`. Claims take their rows `FOR UPDATE SKIP LOCKED`, so
//! schedulers claiming at once never wait for each other nor take the same timer. No advisory locks,
//! no named prepared statements (PgBouncer in transaction mode works).
//!
//! ```sql
//! CREATE TABLE chime_durable (key text PRIMARY KEY, handler text, payload bytea, due_ms bigint,
//!     grace_ms bigint, state smallint, attempt integer, fence bigint, owner text, ready_ms bigint,
//!     error text);
//! CREATE INDEX chime_durable_live ON chime_durable (handler, ready_ms) WHERE state IN (0, 1);
//! CREATE INDEX chime_durable_state ON chime_durable (state, ready_ms, key COLLATE "C");
//! CREATE SEQUENCE chime_durable_fence;
//! CREATE TABLE chime_durable_handlers (handler text PRIMARY KEY);
//! ```

mod sql;

use tokio_postgres::types::{ToSql, Type};

use super::machine::{Decision, Outcome, Row, State};
use super::store::{ClaimReply, ClaimRequest, Claimed, DurableStore, Finish};
use crate::Error;
use crate::cluster::{Postgres, StoreFuture};
use sql::{CANCEL, CLAIM, COLUMNS, CREATE, FINISH, NEXT, PURGE, RENEW, SCHEMA, UNKNOWN};

const BACKEND: &str = "postgres";

/// A `tokio_postgres` error with its causes.
fn store(e: &tokio_postgres::Error) -> Error {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::store(BACKEND, message)
}

fn read_row(r: &tokio_postgres::Row) -> Result<Row, Error> {
    let get_err = |e: tokio_postgres::Error| store(&e);
    let state: i16 = r.try_get(5).map_err(get_err)?;
    Ok(Row {
        key: r.try_get(0).map_err(get_err)?,
        handler: r.try_get(1).map_err(get_err)?,
        payload: r.try_get(2).map_err(get_err)?,
        due_ms: r.try_get(3).map_err(get_err)?,
        grace_ms: r.try_get(4).map_err(get_err)?,
        state: State::from_code(i64::from(state)).unwrap_or(State::Failed),
        attempt: u32::try_from(r.try_get::<_, i32>(6).map_err(get_err)?).unwrap_or(0),
        fence: u64::try_from(r.try_get::<_, i64>(7).map_err(get_err)?).unwrap_or(0),
        owner: r.try_get(8).map_err(get_err)?,
        ready_ms: r.try_get(9).map_err(get_err)?,
        error: r.try_get(10).map_err(get_err)?,
    })
}

type Param<'a> = (&'a (dyn ToSql + Sync), Type);

impl Postgres {
    async fn durable_query(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<tokio_postgres::Row>, Error> {
        let client = self.client().await?;
        client.query_typed(sql, params).await.map_err(|e| store(&e))
    }
}

fn big(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl DurableStore for Postgres {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn prepare(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let client = self.client().await?;
            // Schedulers starting together race to create the tables: the losers try again.
            for attempt in 0..3 {
                match client.batch_execute(SCHEMA).await {
                    Ok(()) => return Ok(()),
                    Err(e) if attempt < 2 && e.code().is_some() => tokio::task::yield_now().await,
                    Err(e) => return Err(store(&e)),
                }
            }
            Ok(())
        })
    }

    fn create<'a>(&'a self, rows: &'a [Row]) -> StoreFuture<'a, Vec<Option<Row>>> {
        Box::pin(async move {
            let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
            let handlers: Vec<&str> = rows.iter().map(|r| r.handler.as_str()).collect();
            let payloads: Vec<&[u8]> = rows.iter().map(|r| r.payload.as_slice()).collect();
            let due: Vec<i64> = rows.iter().map(|r| r.due_ms).collect();
            let grace: Vec<Option<i64>> = rows.iter().map(|r| r.grace_ms).collect();
            let inserted = self
                .durable_query(
                    CREATE,
                    &[
                        (&keys, Type::TEXT_ARRAY),
                        (&handlers, Type::TEXT_ARRAY),
                        (&payloads, Type::BYTEA_ARRAY),
                        (&due, Type::INT8_ARRAY),
                        (&grace, Type::INT8_ARRAY),
                    ],
                )
                .await?;
            let mut new: std::collections::HashSet<String> =
                inserted.iter().filter_map(|r| r.try_get::<_, String>(0).ok()).collect();
            let taken: Vec<&str> = keys.iter().copied().filter(|k| !new.contains(*k)).collect();
            let mut existing = std::collections::HashMap::new();
            if !taken.is_empty() || new.len() < rows.len() {
                let sql = format!("SELECT {COLUMNS} FROM chime_durable WHERE key = ANY($1)");
                for row in self.durable_query(&sql, &[(&keys, Type::TEXT_ARRAY)]).await? {
                    let row = read_row(&row)?;
                    existing.insert(row.key.clone(), row);
                }
            }
            // The first of a key in the batch is the one stored; the others find it.
            Ok(rows
                .iter()
                .map(|r| if new.remove(&r.key) { None } else { existing.get(&r.key).cloned() })
                .collect())
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Row>> {
        Box::pin(async move {
            let sql = format!("SELECT {COLUMNS} FROM chime_durable WHERE key = $1");
            let rows = self.durable_query(&sql, &[(&key, Type::TEXT)]).await?;
            rows.first().map(read_row).transpose()
        })
    }

    fn list<'a>(
        &'a self,
        state: State,
        after: Option<(i64, &'a str)>,
        limit: usize,
    ) -> StoreFuture<'a, Vec<Row>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {COLUMNS} FROM chime_durable WHERE state = $1
                   AND (ready_ms, key COLLATE \"C\") > ($2, $3 COLLATE \"C\")
                 ORDER BY ready_ms, key COLLATE \"C\" LIMIT $4"
            );
            let code = state.code() as i16;
            let (ready, key) = after.unwrap_or((i64::MIN, ""));
            let limit = big(limit);
            let params: [Param<'_>; 4] =
                [(&code, Type::INT2), (&ready, Type::INT8), (&key, Type::TEXT), (&limit, Type::INT8)];
            self.durable_query(&sql, &params).await?.iter().map(read_row).collect()
        })
    }

    fn cancel<'a>(&'a self, key: &'a str, _now_ms: i64) -> StoreFuture<'a, bool> {
        Box::pin(async move { Ok(!self.durable_query(CANCEL, &[(&key, Type::TEXT)]).await?.is_empty()) })
    }

    fn claim<'a>(&'a self, request: &'a ClaimRequest) -> StoreFuture<'a, ClaimReply> {
        Box::pin(async move {
            let rules = &request.rules;
            let limit = big(request.limit);
            let attempts = i32::try_from(rules.max_attempts).unwrap_or(i32::MAX);
            let params: [Param<'_>; 6] = [
                (&request.handlers, Type::TEXT_ARRAY),
                (&limit, Type::INT8),
                (&rules.member, Type::TEXT),
                (&rules.lease_ms, Type::INT8),
                (&attempts, Type::INT4),
                (&rules.grace_ms, Type::INT8),
            ];
            let mut claimed = Vec::new();
            for row in self.durable_query(CLAIM, &params).await? {
                let decision: String = row.try_get(11).map_err(|e| store(&e))?;
                let decision = match decision.as_str() {
                    "run" => Decision::Run,
                    "skipped" => Decision::Skipped,
                    _ => Decision::Exhausted,
                };
                claimed.push(Claimed { decision, row: read_row(&row)? });
            }
            claimed.sort_by(|a, b| (a.row.due_ms, &a.row.key).cmp(&(b.row.due_ms, &b.row.key)));
            let next = self.durable_query(NEXT, &[(&request.handlers, Type::TEXT_ARRAY)]).await?;
            let next = next.first().ok_or_else(|| Error::store(BACKEND, "no clock"))?;
            let now_ms: i64 = next.try_get(0).map_err(|e| store(&e))?;
            let next_ready_ms: Option<i64> = next.try_get(1).map_err(|e| store(&e))?;
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
            let keys: Vec<&str> = runs.iter().map(|(k, _)| k.as_str()).collect();
            let fences: Vec<i64> = runs.iter().map(|(_, f)| i64::try_from(*f).unwrap_or(i64::MAX)).collect();
            let params: [Param<'_>; 4] = [
                (&keys, Type::TEXT_ARRAY),
                (&fences, Type::INT8_ARRAY),
                (&member, Type::TEXT),
                (&lease_ms, Type::INT8),
            ];
            let held: std::collections::HashSet<String> =
                self.durable_query(RENEW, &params).await?.iter().filter_map(|r| r.try_get(0).ok()).collect();
            Ok(keys.iter().map(|k| held.contains(*k)).collect())
        })
    }

    fn finish<'a>(&'a self, member: &'a str, runs: &'a [Finish], _now_ms: i64) -> StoreFuture<'a, Vec<bool>> {
        Box::pin(async move {
            let keys: Vec<&str> = runs.iter().map(|r| r.key.as_str()).collect();
            let fences: Vec<i64> = runs.iter().map(|r| i64::try_from(r.fence).unwrap_or(i64::MAX)).collect();
            let (mut kinds, mut delays, mut errors) = (Vec::new(), Vec::new(), Vec::new());
            for run in runs {
                let (kind, delay, error) = match &run.outcome {
                    Outcome::Fired => (0i16, 0, None),
                    Outcome::Retry { delay_ms, error } => (1, *delay_ms, Some(error.as_str())),
                    Outcome::Failed { error } => (2, 0, Some(error.as_str())),
                    Outcome::Released => (3, 0, None),
                };
                kinds.push(kind);
                delays.push(delay);
                errors.push(error);
            }
            let params: [Param<'_>; 6] = [
                (&keys, Type::TEXT_ARRAY),
                (&fences, Type::INT8_ARRAY),
                (&kinds, Type::INT2_ARRAY),
                (&delays, Type::INT8_ARRAY),
                (&errors, Type::TEXT_ARRAY),
                (&member, Type::TEXT),
            ];
            let rows = self.durable_query(FINISH, &params).await?;
            let recorded: std::collections::HashMap<String, bool> =
                rows.iter().filter_map(|r| Some((r.try_get(0).ok()?, r.try_get(1).ok()?))).collect();
            Ok(keys.iter().map(|k| recorded.get(*k).copied().unwrap_or(false)).collect())
        })
    }

    fn purge(&self, before_ms: i64, limit: usize) -> StoreFuture<'_, usize> {
        Box::pin(async move {
            let limit = big(limit);
            let rows = self.durable_query(PURGE, &[(&before_ms, Type::INT8), (&limit, Type::INT8)]).await?;
            let gone: i64 = rows.first().map_or(Ok(0), |r| r.try_get(0)).map_err(|e| store(&e))?;
            Ok(usize::try_from(gone).unwrap_or(0))
        })
    }

    fn unknown<'a>(&'a self, known: &'a [String], _now_ms: i64) -> StoreFuture<'a, Vec<(String, u64)>> {
        Box::pin(async move {
            let rows = self.durable_query(UNKNOWN, &[(&known, Type::TEXT_ARRAY)]).await?;
            let mut unknown = Vec::new();
            for row in rows {
                let handler: String = row.try_get(0).map_err(|e| store(&e))?;
                let count: i64 = row.try_get(1).map_err(|e| store(&e))?;
                if count > 0 {
                    unknown.push((handler, u64::try_from(count).unwrap_or(0)));
                }
            }
            Ok(unknown)
        })
    }
}
