//! The daemon's own store: what replicas share besides claims (claims and fences are chime's, through
//! its [`Coordinator`](chime::cluster::Coordinator)). Pause flags, jobs upserted through the API,
//! replica heartbeats, run history, per-job state, stop requests. One small trait, three backends
//! on the same servers as the coordinators, in tables and keys of their own (`chime_daemon_*`,
//! `chime:daemon:*`).

mod postgres;
mod records;
mod redis;
mod sqlite;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chime::cluster::Coordinator;

pub(crate) use records::*;

use crate::config::StoreUrl;

/// A store failure: the operation did not happen (or its outcome is unknown).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{backend} store: {message}")]
pub(crate) struct StoreError {
    pub(crate) backend: &'static str,
    pub(crate) message: String,
}

impl StoreError {
    pub(crate) fn new(backend: &'static str, message: impl std::fmt::Display) -> Self {
        StoreError { backend, message: message.to_string() }
    }
}

/// What a store call returns: boxed, so the store can be a trait object.
pub(crate) type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The metadata store. Every method is one round trip (or one transaction) and idempotent where
/// it can be; none is on the path of a claim.
pub(crate) trait MetaStore: Send + Sync + 'static {
    /// `sqlite`, `redis` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Records this replica as alive now; forgets replicas silent for an hour.
    fn heartbeat<'a>(&'a self, replica: &'a ReplicaInfo) -> StoreFuture<'a, ()>;
    /// Removes this replica (a clean shutdown).
    fn leave<'a>(&'a self, replica_id: &'a str) -> StoreFuture<'a, ()>;
    fn replicas(&self) -> StoreFuture<'_, Vec<ReplicaInfo>>;

    /// A counter bumped by every change replicas must pick up (API jobs, pauses, stop requests).
    fn generation(&self) -> StoreFuture<'_, u64>;
    /// Jobs upserted through the API, as their canonical definitions.
    fn api_jobs(&self) -> StoreFuture<'_, Vec<(String, serde_json::Value)>>;
    /// Inserts or replaces an API job; `true` when it was new.
    fn put_api_job<'a>(&'a self, name: &'a str, definition: &'a serde_json::Value) -> StoreFuture<'a, bool>;
    /// Removes an API job; `true` when it existed.
    fn delete_api_job<'a>(&'a self, name: &'a str) -> StoreFuture<'a, bool>;

    /// Every job's shared state.
    fn states(&self) -> StoreFuture<'_, Vec<JobState>>;
    /// Pauses or resumes a job for every replica.
    fn set_paused<'a>(&'a self, job: &'a str, paused: bool, by: &'a str, now_ms: i64) -> StoreFuture<'a, ()>;
    /// Notes when each job was first scheduled (kept if already known).
    fn see<'a>(&'a self, jobs: &'a [String], now_ms: i64) -> StoreFuture<'a, ()>;

    /// Applies a batch of run records, misses and prunes, keeping `history` finished runs per job.
    fn write<'a>(&'a self, batch: &'a [Write], history: usize) -> StoreFuture<'a, ()>;
    /// A job's runs, running ones and the latest finished ones, newest first.
    fn runs<'a>(&'a self, job: &'a str, limit: usize) -> StoreFuture<'a, Vec<RunRecord>>;
    /// Every run going now, on every replica (who holds which lease).
    fn running(&self) -> StoreFuture<'_, Vec<RunRecord>>;
    /// A job's outcome counts per 15-minute bucket since `since_ms`.
    fn timeline<'a>(&'a self, job: &'a str, since_ms: i64) -> StoreFuture<'a, Vec<Bucket>>;

    /// Asks the replica running `job` under `fence` to stop it (`overlap = "replace"`).
    fn request_stop<'a>(&'a self, job: &'a str, fence: u64) -> StoreFuture<'a, ()>;
    /// The stop requests outstanding: (job, fence).
    fn stop_requests(&self) -> StoreFuture<'_, Vec<(String, u64)>>;
}

/// A store and the coordinator on the same server.
pub(crate) struct Stores {
    pub(crate) meta: Arc<dyn MetaStore>,
    pub(crate) coordinator: Arc<dyn Coordinator>,
    /// Durable timers on the same server (chime's `durable`).
    pub(crate) durable: Durable,
}

/// The store for chime's durable timers, by backend (each is its own type for
/// [`Scheduler::durable`](chime::Scheduler::durable)).
pub(crate) enum Durable {
    Sqlite(chime::cluster::Sqlite),
    Redis(chime::cluster::Redis),
    Postgres(chime::cluster::Postgres),
}

impl Durable {
    /// A durable-timers builder on this store.
    pub(crate) fn builder(self, sched: &chime::Scheduler) -> chime::durable::DurableBuilder {
        match self {
            Durable::Sqlite(s) => sched.durable(s),
            Durable::Redis(s) => sched.durable(s),
            Durable::Postgres(s) => sched.durable(s),
        }
    }
}

/// Connects to the store named by `url`: the metadata store and chime's coordinator.
pub(crate) async fn open(url: &StoreUrl) -> Result<Stores, String> {
    let what = url.redacted();
    match url {
        StoreUrl::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("{what}: cannot create {}: {e}", dir.display()))?;
            }
            let coordinator = chime::cluster::Sqlite::open(path).map_err(|e| format!("{what}: {e}"))?;
            // A connection of its own: timers' calls do not wait behind a batch of claims.
            let durable = chime::cluster::Sqlite::open(path).map_err(|e| format!("{what}: {e}"))?;
            let meta = sqlite::SqliteStore::open(path).map_err(|e| format!("{what}: {e}"))?;
            Ok(Stores {
                meta: Arc::new(meta),
                coordinator: Arc::new(coordinator),
                durable: Durable::Sqlite(durable),
            })
        }
        StoreUrl::Redis(u) => {
            let coordinator = chime::cluster::Redis::connect(u).await.map_err(|e| format!("{what}: {e}"))?;
            let meta = redis::RedisStore::connect(u).await.map_err(|e| format!("{what}: {e}"))?;
            let durable = Durable::Redis(coordinator.clone());
            Ok(Stores { meta: Arc::new(meta), coordinator: Arc::new(coordinator), durable })
        }
        StoreUrl::Postgres(u) => {
            let coordinator =
                chime::cluster::Postgres::connect(u).await.map_err(|e| format!("{what}: {e}"))?;
            let meta = postgres::PostgresStore::connect(u).await.map_err(|e| format!("{what}: {e}"))?;
            let durable = Durable::Postgres(coordinator.clone());
            Ok(Stores { meta: Arc::new(meta), coordinator: Arc::new(coordinator), durable })
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// What a batch's finished runs change beyond their own rows, summed up: one state update per
/// job (its latest run, its latest success), one increment per timeline bucket, one stop-request
/// check per job.
#[derive(Default)]
pub(crate) struct Rollup<'a> {
    pub(crate) last: std::collections::HashMap<&'a str, &'a RunRecord>,
    pub(crate) success_ms: std::collections::HashMap<&'a str, i64>,
    pub(crate) timeline: std::collections::HashMap<(&'a str, i64, &'static str), i64>,
    pub(crate) fence: std::collections::HashMap<&'a str, u64>,
}

impl<'a> Rollup<'a> {
    pub(crate) fn of(batch: &'a [Write]) -> Rollup<'a> {
        let mut r = Rollup::default();
        for write in batch {
            let Write::Finished(run) = write else { continue };
            let job = run.job.as_str();
            if r.last.get(job).is_none_or(|l| l.started_ms <= run.started_ms) {
                r.last.insert(job, run);
            }
            if let (Outcome::Success, Some(at)) = (run.outcome, run.finished_ms) {
                let best = r.success_ms.entry(job).or_insert(at);
                *best = (*best).max(at);
            }
            *r.timeline.entry((job, bucket_of(run.started_ms), run.outcome.as_str())).or_default() += 1;
            let fence = r.fence.entry(job).or_insert(run.fence);
            *fence = (*fence).max(run.fence);
        }
        r
    }
}

/// Bucket start for a run that started at `ms`.
pub(crate) fn bucket_of(ms: i64) -> i64 {
    ms.div_euclid(BUCKET_MS) * BUCKET_MS
}

#[cfg(test)]
mod tests;
