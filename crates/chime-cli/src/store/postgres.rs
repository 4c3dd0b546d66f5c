//! The PostgreSQL metadata store: tables `chime_daemon_*` beside chime's `chime_claims`, on one
//! connection of its own (reconnected when it breaks), one transaction per batch of run records.

use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls, Row};

use super::{
    Bucket, JobState, MetaStore, ReplicaInfo, Rollup, RunRecord, StoreError, StoreFuture, Write, bucket_of,
};

#[path = "postgres_write.rs"]
mod write;

use write::{apply, roll_up};

const BACKEND: &str = "postgres";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS chime_daemon_meta (key text PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE IF NOT EXISTS chime_daemon_replicas (id text PRIMARY KEY, heartbeat_ms bigint NOT NULL, record text NOT NULL);
CREATE TABLE IF NOT EXISTS chime_daemon_jobs (name text PRIMARY KEY, definition text NOT NULL);
CREATE TABLE IF NOT EXISTS chime_daemon_state (
    job text PRIMARY KEY, paused boolean NOT NULL DEFAULT false, paused_by text, paused_ms bigint,
    seen_ms bigint, last_run text, last_started_ms bigint, last_success_ms bigint,
    missed_total bigint NOT NULL DEFAULT 0, last_missed text);
CREATE TABLE IF NOT EXISTS chime_daemon_runs (
    run_id text PRIMARY KEY, job text NOT NULL, started_ms bigint NOT NULL, running boolean NOT NULL, record text NOT NULL);
CREATE INDEX IF NOT EXISTS chime_daemon_runs_by_job ON chime_daemon_runs (job, running, started_ms);
CREATE TABLE IF NOT EXISTS chime_daemon_timeline (
    job text NOT NULL, bucket_ms bigint NOT NULL, outcome text NOT NULL, count bigint NOT NULL,
    PRIMARY KEY (job, bucket_ms, outcome));
CREATE TABLE IF NOT EXISTS chime_daemon_stop (job text PRIMARY KEY, fence bigint NOT NULL);
";

const BUMP: &str = "INSERT INTO chime_daemon_meta (key, value) VALUES ('generation', 1)
    ON CONFLICT (key) DO UPDATE SET value = chime_daemon_meta.value + 1";

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::new(BACKEND, e)
}

/// A `tokio_postgres` error with its cause (its `Display` alone says only "db error").
fn pg(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => err(format!("{}: {}", db.code().code(), db.message())),
        None => err(e),
    }
}

pub(super) fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("records serialise")
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| err(format!("a stored record is unreadable: {e}")))
}

/// The daemon's tables in a PostgreSQL database.
pub(crate) struct PostgresStore {
    config: Config,
    client: tokio::sync::Mutex<Option<Client>>,
}

async fn open(config: &Config) -> Result<Client, StoreError> {
    let (client, connection) = config.connect(NoTls).await.map_err(pg)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "the PostgreSQL metadata store's connection closed");
        }
    });
    Ok(client)
}

impl PostgresStore {
    pub(crate) async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let mut config: Config = url.parse().map_err(pg)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("chime-daemon");
        let client = open(&config).await?;
        for attempt in 0..3 {
            match client.batch_execute(SCHEMA).await {
                Ok(()) => break,
                // Replicas starting together race to create the tables: the loser tries again.
                Err(_) if attempt < 2 => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => return Err(pg(e)),
            }
        }
        Ok(PostgresStore { config, client: tokio::sync::Mutex::new(Some(client)) })
    }

    /// Runs `f` on the connection (reconnecting first when it was closed).
    async fn with<T>(
        &self,
        f: impl AsyncFnOnce(&mut Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(open(&self.config).await?);
        }
        let client = guard.as_mut().expect("connected above");
        f(client).await.map_err(pg)
    }
}

fn state(row: &Row) -> Result<JobState, StoreError> {
    let last_run: Option<String> = row.get(5);
    let last_missed: Option<String> = row.get(8);
    Ok(JobState {
        job: row.get(0),
        paused: row.get(1),
        paused_by: row.get(2),
        paused_ms: row.get(3),
        seen_ms: row.get(4),
        last_run: last_run.as_deref().map(parse).transpose()?,
        last_success_ms: row.get::<_, Option<i64>>(6).filter(|&ms| ms > 0),
        missed_total: row.get::<_, i64>(7) as u64,
        last_missed: last_missed.as_deref().map(parse).transpose()?,
    })
}

impl MetaStore for PostgresStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn heartbeat<'a>(&'a self, replica: &'a ReplicaInfo) -> StoreFuture<'a, ()> {
        Box::pin(self.with(async move |c| {
            c.execute(
                "INSERT INTO chime_daemon_replicas (id, heartbeat_ms, record) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET heartbeat_ms = EXCLUDED.heartbeat_ms, record = EXCLUDED.record",
                &[&replica.id, &replica.heartbeat_ms, &json(replica)],
            )
            .await?;
            c.execute("DELETE FROM chime_daemon_replicas WHERE heartbeat_ms < $1", &[&(replica.heartbeat_ms - 3_600_000)])
                .await?;
            Ok(())
        }))
    }

    fn leave<'a>(&'a self, replica_id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.with(async move |c| {
            c.execute("DELETE FROM chime_daemon_replicas WHERE id = $1", &[&replica_id]).await.map(drop)
        }))
    }

    fn replicas(&self) -> StoreFuture<'_, Vec<ReplicaInfo>> {
        Box::pin(async move {
            let rows = self
                .with(async |c| c.query("SELECT record FROM chime_daemon_replicas ORDER BY id", &[]).await)
                .await?;
            rows.iter().map(|r| parse(r.get::<_, &str>(0))).collect()
        })
    }

    fn generation(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let rows = self
                .with(async |c| {
                    c.query("SELECT value FROM chime_daemon_meta WHERE key = 'generation'", &[]).await
                })
                .await?;
            Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0) as u64))
        })
    }

    fn api_jobs(&self) -> StoreFuture<'_, Vec<(String, serde_json::Value)>> {
        Box::pin(async move {
            let rows = self
                .with(async |c| {
                    c.query("SELECT name, definition FROM chime_daemon_jobs ORDER BY name", &[]).await
                })
                .await?;
            rows.iter().map(|r| Ok((r.get::<_, String>(0), parse(r.get::<_, &str>(1))?))).collect()
        })
    }

    fn put_api_job<'a>(&'a self, name: &'a str, definition: &'a serde_json::Value) -> StoreFuture<'a, bool> {
        Box::pin(self.with(async move |c| {
            let tx = c.transaction().await?;
            let row = tx
                .query_one(
                    "INSERT INTO chime_daemon_jobs (name, definition) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition RETURNING (xmax = 0)",
                    &[&name, &definition.to_string()],
                )
                .await?;
            tx.execute(BUMP, &[]).await?;
            tx.commit().await?;
            Ok(row.get::<_, bool>(0))
        }))
    }

    fn delete_api_job<'a>(&'a self, name: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(self.with(async move |c| {
            let tx = c.transaction().await?;
            let deleted = tx.execute("DELETE FROM chime_daemon_jobs WHERE name = $1", &[&name]).await? > 0;
            tx.execute(BUMP, &[]).await?;
            tx.commit().await?;
            Ok(deleted)
        }))
    }

    fn states(&self) -> StoreFuture<'_, Vec<JobState>> {
        Box::pin(async move {
            let rows = self
                .with(async |c| {
                    c.query(
                        "SELECT job, paused, paused_by, paused_ms, seen_ms, last_run, last_success_ms, missed_total, last_missed
                         FROM chime_daemon_state ORDER BY job",
                        &[],
                    )
                    .await
                })
                .await?;
            rows.iter().map(state).collect()
        })
    }

    fn set_paused<'a>(&'a self, job: &'a str, paused: bool, by: &'a str, now_ms: i64) -> StoreFuture<'a, ()> {
        Box::pin(self.with(async move |c| {
            let tx = c.transaction().await?;
            tx.execute(
                "INSERT INTO chime_daemon_state (job, paused, paused_by, paused_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (job) DO UPDATE SET paused = EXCLUDED.paused, paused_by = EXCLUDED.paused_by,
                     paused_ms = EXCLUDED.paused_ms",
                &[&job, &paused, &paused.then_some(by), &paused.then_some(now_ms)],
            )
            .await?;
            tx.execute(BUMP, &[]).await?;
            tx.commit().await
        }))
    }

    fn see<'a>(&'a self, jobs: &'a [String], now_ms: i64) -> StoreFuture<'a, ()> {
        Box::pin(self.with(async move |c| {
            c.execute(
                "INSERT INTO chime_daemon_state AS s (job, seen_ms) SELECT unnest($1::text[]), $2
                 ON CONFLICT (job) DO UPDATE SET seen_ms = COALESCE(s.seen_ms, EXCLUDED.seen_ms)",
                &[&jobs, &now_ms],
            )
            .await
            .map(drop)
        }))
    }

    fn write<'a>(&'a self, batch: &'a [Write], history: usize) -> StoreFuture<'a, ()> {
        Box::pin(self.with(async move |c| {
            let tx = c.transaction().await?;
            for write in batch {
                apply(&tx, write, history).await?;
            }
            roll_up(&tx, &Rollup::of(batch)).await?;
            tx.commit().await
        }))
    }

    fn runs<'a>(&'a self, job: &'a str, limit: usize) -> StoreFuture<'a, Vec<RunRecord>> {
        Box::pin(async move {
            let rows = self
                .with(async |c| {
                    c.query(
                        "SELECT record FROM chime_daemon_runs WHERE job = $1 ORDER BY running DESC, started_ms DESC LIMIT $2",
                        &[&job, &(limit as i64)],
                    )
                    .await
                })
                .await?;
            let mut runs: Vec<RunRecord> =
                rows.iter().map(|r| parse(r.get::<_, &str>(0))).collect::<Result<_, _>>()?;
            runs.sort_by_key(|r| std::cmp::Reverse(r.started_ms));
            Ok(runs)
        })
    }

    fn running(&self) -> StoreFuture<'_, Vec<RunRecord>> {
        Box::pin(async move {
            let rows = self
                .with(async |c| {
                    c.query("SELECT record FROM chime_daemon_runs WHERE running ORDER BY started_ms", &[])
                        .await
                })
                .await?;
            rows.iter().map(|r| parse(r.get::<_, &str>(0))).collect()
        })
    }

    fn timeline<'a>(&'a self, job: &'a str, since_ms: i64) -> StoreFuture<'a, Vec<Bucket>> {
        Box::pin(async move {
            let rows = self
                .with(async |c| {
                    c.query(
                        "SELECT bucket_ms, outcome, count FROM chime_daemon_timeline WHERE job = $1 AND bucket_ms >= $2
                         ORDER BY bucket_ms, outcome",
                        &[&job, &bucket_of(since_ms)],
                    )
                    .await
                })
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(Bucket {
                        start_ms: r.get(0),
                        outcome: parse(&format!("\"{}\"", r.get::<_, &str>(1)))?,
                        count: r.get::<_, i64>(2) as u64,
                    })
                })
                .collect()
        })
    }

    fn request_stop<'a>(&'a self, job: &'a str, fence: u64) -> StoreFuture<'a, ()> {
        Box::pin(self.with(async move |c| {
            let tx = c.transaction().await?;
            tx.execute(
                "INSERT INTO chime_daemon_stop (job, fence) VALUES ($1, $2) ON CONFLICT (job) DO UPDATE SET fence = EXCLUDED.fence",
                &[&job, &(fence as i64)],
            )
            .await?;
            tx.execute(BUMP, &[]).await?;
            tx.commit().await
        }))
    }

    fn stop_requests(&self) -> StoreFuture<'_, Vec<(String, u64)>> {
        Box::pin(async move {
            let rows = self
                .with(async |c| c.query("SELECT job, fence FROM chime_daemon_stop ORDER BY job", &[]).await)
                .await?;
            Ok(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64)).collect())
        })
    }
}
