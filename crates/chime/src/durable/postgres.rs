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

use tokio_postgres::types::{ToSql, Type};

use super::machine::{Decision, Outcome, Row, State};
use super::store::{ClaimReply, ClaimRequest, Claimed, DurableStore, Finish};
use crate::Error;
use crate::cluster::{Postgres, StoreFuture};

const BACKEND: &str = "postgres";

/// The database's clock in milliseconds since the Unix epoch.
macro_rules! now_ms {
    () => {
        "floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
    };
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS chime_durable (
    key text PRIMARY KEY, handler text NOT NULL, payload bytea NOT NULL, due_ms bigint NOT NULL,
    grace_ms bigint, state smallint NOT NULL, attempt integer NOT NULL, fence bigint NOT NULL,
    owner text, ready_ms bigint NOT NULL, error text);
CREATE INDEX IF NOT EXISTS chime_durable_live ON chime_durable (handler, ready_ms) WHERE state IN (0, 1);
CREATE INDEX IF NOT EXISTS chime_durable_state ON chime_durable (state, ready_ms, key COLLATE "C");
CREATE SEQUENCE IF NOT EXISTS chime_durable_fence;
CREATE TABLE IF NOT EXISTS chime_durable_handlers (handler text PRIMARY KEY);
"#;

const COLUMNS: &str =
    "key, handler, payload, due_ms, grace_ms, state, attempt, fence, owner, ready_ms, error";

const CREATE: &str = "
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::int8[], $5::int8[])
        WITH ORDINALITY AS t(key, handler, payload, due_ms, grace_ms, n)
), handlers AS (
    INSERT INTO chime_durable_handlers (handler) SELECT DISTINCT handler FROM input ON CONFLICT DO NOTHING
)
INSERT INTO chime_durable (key, handler, payload, due_ms, grace_ms, state, attempt, fence, owner, ready_ms, error)
SELECT key, handler, payload, due_ms, grace_ms, 0, 0, 0, NULL, due_ms, NULL FROM input ORDER BY n
ON CONFLICT (key) DO NOTHING
RETURNING key";

const CLAIM: &str = concat!(
    "WITH now AS MATERIALIZED (SELECT ",
    now_ms!(),
    " AS ms),
due AS (
    SELECT x.key FROM now, unnest($1::text[]) AS h(name),
    LATERAL (SELECT d.key, d.ready_ms FROM chime_durable d
             WHERE d.handler = h.name AND d.state IN (0, 1) AND d.ready_ms <= now.ms
             ORDER BY d.ready_ms LIMIT $2 FOR UPDATE SKIP LOCKED) x
    ORDER BY x.ready_ms, x.key LIMIT $2
),
decided AS (
    SELECT d.key, CASE
        WHEN d.attempt = 0 AND now.ms - d.due_ms > COALESCE(d.grace_ms, $6) THEN 'skipped'
        WHEN d.attempt >= $5 THEN 'exhausted'
        ELSE 'run' END AS decision
    FROM chime_durable d JOIN due USING (key), now
)
UPDATE chime_durable d SET
    state = CASE c.decision WHEN 'skipped' THEN 5 WHEN 'exhausted' THEN 3 ELSE 1 END,
    attempt = CASE c.decision WHEN 'run' THEN d.attempt + 1 ELSE d.attempt END,
    fence = CASE c.decision WHEN 'run' THEN nextval('chime_durable_fence') ELSE d.fence END,
    owner = CASE c.decision WHEN 'run' THEN $3 ELSE NULL END,
    ready_ms = CASE c.decision WHEN 'run' THEN now.ms + $4 ELSE now.ms END,
    error = CASE c.decision
        WHEN 'skipped' THEN format('skipped: its first run would have started %s ms late (grace %s ms)',
            now.ms - d.due_ms, COALESCE(d.grace_ms, $6))
        WHEN 'exhausted' THEN format('attempt %s never finished (its scheduler died or lost the store) and no attempts are left', d.attempt)
        ELSE d.error END
FROM decided c, now
WHERE d.key = c.key
RETURNING d.key, d.handler, d.payload, d.due_ms, d.grace_ms, d.state, d.attempt, d.fence, d.owner, d.ready_ms,
    d.error, c.decision"
);

/// The store's clock and the next claimable time of `$1`'s handlers.
const NEXT: &str = concat!(
    "SELECT ",
    now_ms!(),
    ", (SELECT min(x.ready_ms) FROM unnest($1::text[]) AS h(name),
        LATERAL (SELECT ready_ms FROM chime_durable WHERE handler = h.name AND state IN (0, 1)
                 ORDER BY ready_ms LIMIT 1) x)"
);

const RENEW: &str = concat!(
    "UPDATE chime_durable d SET ready_ms = ",
    now_ms!(),
    " + $4
FROM unnest($1::text[], $2::int8[]) AS r(key, fence)
WHERE d.key = r.key AND d.fence = r.fence AND d.state = 1 AND d.owner = $3
RETURNING d.key"
);

/// Kinds: 0 fired, 1 retry, 2 failed, 3 released. The last SELECT sees the rows as they were before
/// the update (one snapshot): a run is recorded when it updated its row now, or its row already
/// holds its fence and is no longer running (an earlier try was recorded, or it was cancelled).
const FINISH: &str = concat!(
    "WITH now AS MATERIALIZED (SELECT ",
    now_ms!(),
    " AS ms),
r AS (SELECT * FROM unnest($1::text[], $2::int8[], $3::int2[], $4::int8[], $5::text[]) AS r(key, fence, kind, delay_ms, error)),
done AS (
    UPDATE chime_durable d SET
        state = CASE r.kind WHEN 0 THEN 2 WHEN 2 THEN 3 ELSE 0 END,
        attempt = CASE r.kind WHEN 3 THEN greatest(d.attempt - 1, 0) ELSE d.attempt END,
        owner = NULL,
        ready_ms = CASE r.kind WHEN 1 THEN now.ms + r.delay_ms ELSE now.ms END,
        error = CASE r.kind WHEN 0 THEN NULL WHEN 3 THEN d.error ELSE r.error END
    FROM r, now
    WHERE d.key = r.key AND d.fence = r.fence AND d.state = 1 AND d.owner = $6
    RETURNING d.key
)
SELECT r.key, r.key IN (SELECT key FROM done)
    OR EXISTS (SELECT 1 FROM chime_durable d WHERE d.key = r.key AND d.fence = r.fence AND d.state <> 1)
FROM r"
);

const CANCEL: &str = concat!(
    "UPDATE chime_durable SET state = 4, owner = NULL, ready_ms = ",
    now_ms!(),
    " WHERE key = $1 AND state IN (0, 1, 3) RETURNING key"
);

const PURGE: &str = "WITH gone AS (
    DELETE FROM chime_durable WHERE key IN (
        SELECT key FROM chime_durable WHERE state IN (2, 4, 5) AND ready_ms < $1 LIMIT $2)
    RETURNING 1)
SELECT count(*) FROM gone";

const UNKNOWN: &str = concat!(
    "SELECT h.handler, (SELECT count(*) FROM chime_durable d
        WHERE d.handler = h.handler AND d.state IN (0, 1) AND d.ready_ms <= ",
    now_ms!(),
    ") FROM chime_durable_handlers h WHERE NOT (h.handler = ANY($1))"
);

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
