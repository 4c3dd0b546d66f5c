//! The SQLite metadata store: tables `chime_daemon_*` in the same file as chime's claims, through a
//! connection of its own (WAL; `synchronous = NORMAL`: run history is not a claim, and a power loss
//! may only lose its last records). Calls run on tokio's blocking threads.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    Bucket, JobState, MetaStore, ReplicaInfo, Rollup, RunRecord, StoreError, StoreFuture, Write, bucket_of,
};

#[path = "sqlite_write.rs"]
mod write;

use write::{apply, bump, exec, roll_up};

const BACKEND: &str = "sqlite";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS chime_daemon_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chime_daemon_replicas (id TEXT PRIMARY KEY, heartbeat_ms INTEGER NOT NULL, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chime_daemon_jobs (name TEXT PRIMARY KEY, definition TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chime_daemon_state (
    job TEXT PRIMARY KEY, paused INTEGER NOT NULL DEFAULT 0, paused_by TEXT, paused_ms INTEGER,
    seen_ms INTEGER, last_run TEXT, last_started_ms INTEGER, last_success_ms INTEGER,
    missed_total INTEGER NOT NULL DEFAULT 0, last_missed TEXT);
CREATE TABLE IF NOT EXISTS chime_daemon_runs (
    run_id TEXT PRIMARY KEY, job TEXT NOT NULL, started_ms INTEGER NOT NULL, running INTEGER NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chime_daemon_runs_by_job ON chime_daemon_runs (job, running, started_ms);
CREATE INDEX IF NOT EXISTS chime_daemon_runs_running ON chime_daemon_runs (running) WHERE running = 1;
CREATE TABLE IF NOT EXISTS chime_daemon_timeline (
    job TEXT NOT NULL, bucket_ms INTEGER NOT NULL, outcome TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (job, bucket_ms, outcome));
CREATE TABLE IF NOT EXISTS chime_daemon_stop (job TEXT PRIMARY KEY, fence INTEGER NOT NULL);
";

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::new(BACKEND, e)
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("records serialise")
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// The daemon's tables in an SQLite file.
#[derive(Clone)]
pub(crate) struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    pub(crate) fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        // Replicas starting together race to set WAL mode and create tables: retry while busy.
        loop {
            let setup = conn
                .pragma_update(None, "journal_mode", "WAL")
                .and_then(|()| conn.pragma_update(None, "synchronous", "NORMAL"))
                .and_then(|()| conn.execute_batch(SCHEMA));
            match setup {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if matches!(
                        e.code,
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                    ) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(err(e)),
            }
        }
        conn.set_prepared_statement_cache_capacity(64);
        Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)) })
    }

    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreFuture<'static, T> {
        let conn = self.conn.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
                f(&mut conn).map_err(err)
            })
            .await
            .map_err(|e| err(format!("the blocking task failed: {e}")))?
        })
    }
}

fn state_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<JobState> {
    let last_run: Option<String> = row.get(5)?;
    let last_missed: Option<String> = row.get(8)?;
    Ok(JobState {
        job: row.get(0)?,
        paused: row.get::<_, i64>(1)? != 0,
        paused_by: row.get(2)?,
        paused_ms: row.get(3)?,
        seen_ms: row.get(4)?,
        last_run: last_run.as_deref().map(parse).transpose()?,
        last_success_ms: row.get::<_, Option<i64>>(6)?.filter(|&ms| ms > 0),
        missed_total: row.get::<_, i64>(7)? as u64,
        last_missed: last_missed.as_deref().map(parse).transpose()?,
    })
}

impl MetaStore for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn heartbeat<'a>(&'a self, replica: &'a ReplicaInfo) -> StoreFuture<'a, ()> {
        let replica = replica.clone();
        self.call(move |conn| {
            exec(
                conn,
                "INSERT OR REPLACE INTO chime_daemon_replicas (id, heartbeat_ms, record) VALUES (?1, ?2, ?3)",
                params![replica.id, replica.heartbeat_ms, json(&replica)],
            )?;
            exec(
                conn,
                "DELETE FROM chime_daemon_replicas WHERE heartbeat_ms < ?1",
                params![replica.heartbeat_ms - 3_600_000],
            )?;
            Ok(())
        })
    }

    fn leave<'a>(&'a self, replica_id: &'a str) -> StoreFuture<'a, ()> {
        let id = replica_id.to_string();
        self.call(move |conn| {
            exec(conn, "DELETE FROM chime_daemon_replicas WHERE id = ?1", params![id]).map(drop)
        })
    }

    fn replicas(&self) -> StoreFuture<'_, Vec<ReplicaInfo>> {
        self.call(|conn| {
            let mut stmt = conn.prepare_cached("SELECT record FROM chime_daemon_replicas ORDER BY id")?;
            let rows = stmt.query_map([], |r| parse(&r.get::<_, String>(0)?))?;
            rows.collect()
        })
    }

    fn generation(&self) -> StoreFuture<'_, u64> {
        self.call(|conn| {
            let value: Option<i64> = conn
                .prepare_cached("SELECT value FROM chime_daemon_meta WHERE key = 'generation'")?
                .query_row([], |r| r.get(0))
                .optional()?;
            Ok(value.unwrap_or(0) as u64)
        })
    }

    fn api_jobs(&self) -> StoreFuture<'_, Vec<(String, serde_json::Value)>> {
        self.call(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT name, definition FROM chime_daemon_jobs ORDER BY name")?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, parse(&r.get::<_, String>(1)?)?)))?;
            rows.collect()
        })
    }

    fn put_api_job<'a>(&'a self, name: &'a str, definition: &'a serde_json::Value) -> StoreFuture<'a, bool> {
        let (name, definition) = (name.to_string(), definition.to_string());
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let existed: bool = tx
                .prepare_cached("SELECT 1 FROM chime_daemon_jobs WHERE name = ?1")?
                .query_row(params![name], |_| Ok(()))
                .optional()?
                .is_some();
            exec(
                &tx,
                "INSERT OR REPLACE INTO chime_daemon_jobs (name, definition) VALUES (?1, ?2)",
                params![name, definition],
            )?;
            bump(&tx)?;
            tx.commit()?;
            Ok(!existed)
        })
    }

    fn delete_api_job<'a>(&'a self, name: &'a str) -> StoreFuture<'a, bool> {
        let name = name.to_string();
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let deleted = exec(&tx, "DELETE FROM chime_daemon_jobs WHERE name = ?1", params![name])? > 0;
            bump(&tx)?;
            tx.commit()?;
            Ok(deleted)
        })
    }

    fn states(&self) -> StoreFuture<'_, Vec<JobState>> {
        self.call(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT job, paused, paused_by, paused_ms, seen_ms, last_run, last_success_ms, missed_total, last_missed
                 FROM chime_daemon_state ORDER BY job",
            )?;
            let rows = stmt.query_map([], state_row)?;
            rows.collect()
        })
    }

    fn set_paused<'a>(&'a self, job: &'a str, paused: bool, by: &'a str, now_ms: i64) -> StoreFuture<'a, ()> {
        let (job, by) = (job.to_string(), by.to_string());
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            exec(
                &tx,
                "INSERT INTO chime_daemon_state (job, paused, paused_by, paused_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (job) DO UPDATE SET paused = excluded.paused, paused_by = excluded.paused_by,
                     paused_ms = excluded.paused_ms",
                params![job, paused as i64, paused.then_some(by), paused.then_some(now_ms)],
            )?;
            bump(&tx)?;
            tx.commit()
        })
    }

    fn see<'a>(&'a self, jobs: &'a [String], now_ms: i64) -> StoreFuture<'a, ()> {
        let jobs = jobs.to_vec();
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO chime_daemon_state (job, seen_ms) VALUES (?1, ?2)
                     ON CONFLICT (job) DO UPDATE SET seen_ms = COALESCE(seen_ms, excluded.seen_ms)",
                )?;
                for job in &jobs {
                    stmt.execute(params![job, now_ms])?;
                }
            }
            tx.commit()
        })
    }

    fn write<'a>(&'a self, batch: &'a [Write], history: usize) -> StoreFuture<'a, ()> {
        let batch = batch.to_vec();
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for write in &batch {
                apply(&tx, write, history)?;
            }
            roll_up(&tx, &Rollup::of(&batch))?;
            tx.commit()
        })
    }

    fn runs<'a>(&'a self, job: &'a str, limit: usize) -> StoreFuture<'a, Vec<RunRecord>> {
        let job = job.to_string();
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT record FROM chime_daemon_runs WHERE job = ?1 ORDER BY running DESC, started_ms DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![job, limit as i64], |r| parse(&r.get::<_, String>(0)?))?;
            let mut runs: Vec<RunRecord> = rows.collect::<rusqlite::Result<_>>()?;
            runs.sort_by_key(|r| std::cmp::Reverse(r.started_ms));
            Ok(runs)
        })
    }

    fn running(&self) -> StoreFuture<'_, Vec<RunRecord>> {
        self.call(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT record FROM chime_daemon_runs WHERE running = 1 ORDER BY started_ms",
            )?;
            let rows = stmt.query_map([], |r| parse(&r.get::<_, String>(0)?))?;
            rows.collect()
        })
    }

    fn timeline<'a>(&'a self, job: &'a str, since_ms: i64) -> StoreFuture<'a, Vec<Bucket>> {
        let job = job.to_string();
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT bucket_ms, outcome, count FROM chime_daemon_timeline WHERE job = ?1 AND bucket_ms >= ?2
                 ORDER BY bucket_ms, outcome",
            )?;
            let rows = stmt.query_map(params![job, bucket_of(since_ms)], |r| {
                Ok(Bucket {
                    start_ms: r.get(0)?,
                    outcome: parse(&format!("\"{}\"", r.get::<_, String>(1)?))?,
                    count: r.get::<_, i64>(2)? as u64,
                })
            })?;
            rows.collect()
        })
    }

    fn request_stop<'a>(&'a self, job: &'a str, fence: u64) -> StoreFuture<'a, ()> {
        let job = job.to_string();
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            exec(
                &tx,
                "INSERT OR REPLACE INTO chime_daemon_stop (job, fence) VALUES (?1, ?2)",
                params![job, fence as i64],
            )?;
            bump(&tx)?;
            tx.commit()
        })
    }

    fn stop_requests(&self) -> StoreFuture<'_, Vec<(String, u64)>> {
        self.call(|conn| {
            let mut stmt = conn.prepare_cached("SELECT job, fence FROM chime_daemon_stop ORDER BY job")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?;
            rows.collect()
        })
    }
}
