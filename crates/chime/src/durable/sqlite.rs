//! Durable timers in the cluster coordinator's SQLite file ([`cluster::Sqlite`](crate::cluster::Sqlite)).
//!
//! Every call is one `BEGIN IMMEDIATE` transaction on the coordinator's connection (WAL,
//! `synchronous = FULL`: a commit is on disk before the call returns), run on a blocking thread; it
//! reads the rows it needs, applies [`machine`](super::machine) and writes the result. SQLite has no
//! clock of its own: the scheduler's wall clock (`now_ms`) decides, which the processes of one machine
//! share.
//!
//! ```sql
//! CREATE TABLE chime_durable (key TEXT PRIMARY KEY, handler TEXT, payload BLOB, due_ms INTEGER,
//!     grace_ms INTEGER, state INTEGER, attempt INTEGER, fence INTEGER, owner TEXT, ready_ms INTEGER,
//!     error TEXT);
//! -- the live timers of each handler by when they may be claimed; the finished ones by state
//! CREATE INDEX chime_durable_live ON chime_durable (handler, ready_ms) WHERE state IN (0, 1);
//! CREATE INDEX chime_durable_done ON chime_durable (state, ready_ms, key) WHERE state NOT IN (0, 1);
//! -- one counter for the fences, and the handler names ever used (to report unknown ones)
//! CREATE TABLE chime_durable_fence (id INTEGER PRIMARY KEY, fence INTEGER);
//! CREATE TABLE chime_durable_handlers (handler TEXT PRIMARY KEY);
//! ```

use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::machine::{self, Decision, Finished, Row, State};
use super::store::{ClaimReply, ClaimRequest, Claimed, DurableStore, Finish};
use crate::Error;
use crate::cluster::sqlite::retry_busy;
use crate::cluster::{Sqlite, StoreFuture};

const BACKEND: &str = "sqlite";

fn store(e: impl std::fmt::Display) -> Error {
    Error::store(BACKEND, e)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS chime_durable (
    key TEXT PRIMARY KEY,
    handler TEXT NOT NULL,
    payload BLOB NOT NULL,
    due_ms INTEGER NOT NULL,
    grace_ms INTEGER,
    state INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    fence INTEGER NOT NULL,
    owner TEXT,
    ready_ms INTEGER NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS chime_durable_live ON chime_durable (handler, ready_ms) WHERE state IN (0, 1);
CREATE INDEX IF NOT EXISTS chime_durable_done ON chime_durable (state, ready_ms, key) WHERE state NOT IN (0, 1);
CREATE TABLE IF NOT EXISTS chime_durable_fence (id INTEGER PRIMARY KEY CHECK (id = 0), fence INTEGER NOT NULL);
INSERT OR IGNORE INTO chime_durable_fence (id, fence) VALUES (0, 0);
CREATE TABLE IF NOT EXISTS chime_durable_handlers (handler TEXT PRIMARY KEY);
";

const COLUMNS: &str =
    "key, handler, payload, due_ms, grace_ms, state, attempt, fence, owner, ready_ms, error";

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let state: i64 = r.get(5)?;
    Ok(Row {
        key: r.get(0)?,
        handler: r.get(1)?,
        payload: r.get(2)?,
        due_ms: r.get(3)?,
        grace_ms: r.get(4)?,
        state: State::from_code(state).unwrap_or(State::Failed),
        attempt: u32::try_from(r.get::<_, i64>(6)?).unwrap_or(u32::MAX),
        fence: r.get::<_, i64>(7)? as u64,
        owner: r.get(8)?,
        ready_ms: r.get(9)?,
        error: r.get(10)?,
    })
}

fn load(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<Option<Row>> {
    let sql = format!("SELECT {COLUMNS} FROM chime_durable WHERE key = ?1");
    tx.prepare_cached(&sql)?.query_row(params![key], read_row).optional()
}

/// The row without its payload (renewals, ends and cancels never need it, and [`save`] does not
/// write it), and its rowid: a payload of up to 64 KiB is not read for nothing.
fn load_meta(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<Option<(i64, Row)>> {
    let sql =
        "SELECT key, handler, x'', due_ms, grace_ms, state, attempt, fence, owner, ready_ms, error, rowid
               FROM chime_durable WHERE key = ?1";
    tx.prepare_cached(sql)?.query_row(params![key], |r| Ok((r.get(11)?, read_row(r)?))).optional()
}

/// Writes the mutable part of `row` back to its `rowid` (key, handler, payload and due time never
/// change).
fn save(tx: &Transaction<'_>, rowid: i64, row: &Row) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE chime_durable SET state = ?2, attempt = ?3, fence = ?4, owner = ?5, ready_ms = ?6, error = ?7
         WHERE rowid = ?1",
    )?
    .execute(params![
        rowid,
        row.state.code(),
        i64::from(row.attempt),
        row.fence as i64,
        row.owner,
        row.ready_ms,
        row.error
    ])?;
    Ok(())
}

impl Sqlite {
    /// Runs `work` in one `BEGIN IMMEDIATE` transaction on a blocking thread.
    async fn durable_tx<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, Error> {
        let conn = self.connection().clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(store)?;
            let answer = work(&tx).map_err(store)?;
            tx.commit().map_err(store)?;
            Ok(answer)
        });
        task.await.map_err(|e| store(format!("the blocking task failed: {e}")))?
    }
}

fn prepare_schema(conn: &Mutex<Connection>) -> Result<(), Error> {
    let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
    retry_busy(|| conn.execute_batch(SCHEMA)).map_err(store)
}

/// The earliest `ready_ms` of the live timers of `handlers`.
fn next_ready(tx: &Transaction<'_>, handlers: &[String]) -> rusqlite::Result<Option<i64>> {
    let mut next: Option<i64> = None;
    let mut stmt = tx.prepare_cached(
        "SELECT ready_ms FROM chime_durable WHERE handler = ?1 AND state IN (0, 1) ORDER BY ready_ms LIMIT 1",
    )?;
    for handler in handlers {
        if let Some(ready) = stmt.query_row(params![handler], |r| r.get::<_, i64>(0)).optional()? {
            next = Some(next.map_or(ready, |n| n.min(ready)));
        }
    }
    Ok(next)
}

fn claim(tx: &Transaction<'_>, request: &ClaimRequest) -> rusqlite::Result<ClaimReply> {
    let now = request.now_ms;
    let mut due = Vec::new();
    {
        let sql = format!(
            "SELECT {COLUMNS}, rowid FROM chime_durable WHERE handler = ?1 AND state IN (0, 1) AND ready_ms <= ?2
             ORDER BY ready_ms LIMIT ?3"
        );
        let mut stmt = tx.prepare_cached(&sql)?;
        let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
        for handler in &request.handlers {
            for row in
                stmt.query_map(params![handler, now, limit], |r| Ok((r.get::<_, i64>(11)?, read_row(r)?)))?
            {
                due.push(row?);
            }
        }
    }
    due.sort_by(|(_, a), (_, b)| (a.ready_ms, &a.key).cmp(&(b.ready_ms, &b.key)));
    due.truncate(request.limit);
    let mut fence: i64 =
        tx.query_row("SELECT fence FROM chime_durable_fence WHERE id = 0", [], |r| r.get(0))?;
    let mut claimed = Vec::with_capacity(due.len());
    for (rowid, row) in &due {
        let Some((decision, next)) = machine::claim(row, &request.rules, now, fence as u64 + 1) else {
            continue;
        };
        if decision == Decision::Run {
            fence += 1;
        }
        save(tx, *rowid, &next)?;
        claimed.push(Claimed { decision, row: next });
    }
    tx.execute("UPDATE chime_durable_fence SET fence = ?1 WHERE id = 0", params![fence])?;
    Ok(ClaimReply { claimed, next_ready_ms: next_ready(tx, &request.handlers)?, now_ms: now })
}

impl DurableStore for Sqlite {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn prepare(&self) -> StoreFuture<'_, ()> {
        let conn = self.connection().clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || prepare_schema(&conn))
                .await
                .map_err(|e| store(format!("the blocking task failed: {e}")))?
        })
    }

    fn create<'a>(&'a self, rows: &'a [Row]) -> StoreFuture<'a, Vec<Option<Row>>> {
        let rows = rows.to_vec();
        Box::pin(self.durable_tx(move |tx| {
            let mut insert = tx.prepare_cached(&format!(
                "INSERT INTO chime_durable ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (key) DO NOTHING"
            ))?;
            let mut handlers = std::collections::BTreeSet::new();
            let mut answers = Vec::with_capacity(rows.len());
            for row in &rows {
                let inserted = insert.execute(params![
                    row.key,
                    row.handler,
                    row.payload,
                    row.due_ms,
                    row.grace_ms,
                    row.state.code(),
                    i64::from(row.attempt),
                    row.fence as i64,
                    row.owner,
                    row.ready_ms,
                    row.error
                ])?;
                if inserted == 1 {
                    handlers.insert(row.handler.as_str());
                    answers.push(None);
                } else {
                    answers.push(load(tx, &row.key)?);
                }
            }
            let mut known =
                tx.prepare_cached("INSERT OR IGNORE INTO chime_durable_handlers (handler) VALUES (?1)")?;
            for handler in handlers {
                known.execute(params![handler])?;
            }
            Ok(answers)
        }))
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Row>> {
        let key = key.to_string();
        Box::pin(self.durable_tx(move |tx| load(tx, &key)))
    }

    fn list<'a>(
        &'a self,
        state: State,
        after: Option<(i64, &'a str)>,
        limit: usize,
    ) -> StoreFuture<'a, Vec<Row>> {
        let after = after.map(|(ready, key)| (ready, key.to_string()));
        Box::pin(self.durable_tx(move |tx| {
            // Keys are never empty, so `(i64::MIN, "")` comes before every row.
            let (ready, key) = after.unwrap_or((i64::MIN, String::new()));
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            if !state.is_live() {
                let sql = format!(
                    "SELECT {COLUMNS} FROM chime_durable WHERE state = ?1 AND state NOT IN (0, 1)
                       AND (ready_ms, key) > (?2, ?3) ORDER BY ready_ms, key LIMIT ?4"
                );
                let mut stmt = tx.prepare_cached(&sql)?;
                return stmt.query_map(params![state.code(), ready, key, limit], read_row)?.collect();
            }
            // Live timers are indexed per handler: the first `limit` of each, merged.
            let handlers: Vec<String> = tx
                .prepare_cached("SELECT handler FROM chime_durable_handlers")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let sql = format!(
                "SELECT {COLUMNS} FROM chime_durable WHERE handler = ?1 AND state IN (0, 1) AND state = ?2
                   AND (ready_ms, key) > (?3, ?4) ORDER BY ready_ms, key LIMIT ?5"
            );
            let mut stmt = tx.prepare_cached(&sql)?;
            let mut rows = Vec::new();
            for handler in &handlers {
                for row in stmt.query_map(params![handler, state.code(), ready, key, limit], read_row)? {
                    rows.push(row?);
                }
            }
            rows.sort_by(|a, b| (a.ready_ms, &a.key).cmp(&(b.ready_ms, &b.key)));
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            Ok(rows)
        }))
    }

    fn cancel<'a>(&'a self, key: &'a str, now_ms: i64) -> StoreFuture<'a, bool> {
        let key = key.to_string();
        Box::pin(self.durable_tx(move |tx| {
            let Some((rowid, row)) = load_meta(tx, &key)? else { return Ok(false) };
            let Some(next) = machine::cancel(&row, now_ms) else { return Ok(false) };
            save(tx, rowid, &next)?;
            Ok(true)
        }))
    }

    fn claim<'a>(&'a self, request: &'a ClaimRequest) -> StoreFuture<'a, ClaimReply> {
        let request = request.clone();
        Box::pin(self.durable_tx(move |tx| claim(tx, &request)))
    }

    fn renew<'a>(
        &'a self,
        member: &'a str,
        runs: &'a [(String, u64)],
        lease_ms: i64,
        now_ms: i64,
    ) -> StoreFuture<'a, Vec<bool>> {
        let (member, runs) = (member.to_string(), runs.to_vec());
        Box::pin(self.durable_tx(move |tx| {
            let mut held = Vec::with_capacity(runs.len());
            for (key, fence) in &runs {
                let next = load_meta(tx, key)?.and_then(|(rowid, row)| {
                    machine::renew(&row, &member, *fence, lease_ms, now_ms).map(|next| (rowid, next))
                });
                if let Some((rowid, next)) = &next {
                    save(tx, *rowid, next)?;
                }
                held.push(next.is_some());
            }
            Ok(held)
        }))
    }

    fn finish<'a>(&'a self, member: &'a str, runs: &'a [Finish], now_ms: i64) -> StoreFuture<'a, Vec<bool>> {
        let (member, runs) = (member.to_string(), runs.to_vec());
        Box::pin(self.durable_tx(move |tx| {
            let mut recorded = Vec::with_capacity(runs.len());
            for run in &runs {
                let (rowid, finished) = match load_meta(tx, &run.key)? {
                    Some((rowid, row)) => {
                        (rowid, machine::finish(&row, &member, run.fence, &run.outcome, now_ms))
                    }
                    None => (0, Finished::Stale),
                };
                if let Finished::Done(next) = &finished {
                    save(tx, rowid, next)?;
                }
                recorded.push(finished != Finished::Stale);
            }
            Ok(recorded)
        }))
    }

    fn purge(&self, before_ms: i64, limit: usize) -> StoreFuture<'_, usize> {
        Box::pin(self.durable_tx(move |tx| {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            tx.execute(
                "DELETE FROM chime_durable WHERE key IN (
                     SELECT key FROM chime_durable WHERE state IN (2, 4, 5) AND ready_ms < ?1 LIMIT ?2)",
                params![before_ms, limit],
            )
        }))
    }

    fn unknown<'a>(&'a self, known: &'a [String], now_ms: i64) -> StoreFuture<'a, Vec<(String, u64)>> {
        let known = known.to_vec();
        Box::pin(self.durable_tx(move |tx| {
            let names: Vec<String> = tx
                .prepare_cached("SELECT handler FROM chime_durable_handlers ORDER BY handler")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut count = tx.prepare_cached(
                "SELECT count(*) FROM chime_durable WHERE handler = ?1 AND state IN (0, 1) AND ready_ms <= ?2",
            )?;
            let mut unknown = Vec::new();
            for name in names.into_iter().filter(|n| !known.contains(n)) {
                let n: i64 = count.query_row(params![name, now_ms], |r| r.get(0))?;
                if n > 0 {
                    unknown.push((name, n as u64));
                }
            }
            Ok(unknown)
        }))
    }
}
