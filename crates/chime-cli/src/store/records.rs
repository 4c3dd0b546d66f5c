//! What the daemon keeps in its store besides claims: replicas, runs, per-job state, and the
//! batched writes that record them.

use serde::{Deserialize, Serialize};

/// A replica sharing the store, as its last heartbeat described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReplicaInfo {
    /// Unique across hosts and restarts: `host:pid:random`.
    pub(crate) id: String,
    pub(crate) host: String,
    pub(crate) pid: u32,
    /// Where its API listens.
    pub(crate) listen: String,
    pub(crate) version: String,
    pub(crate) started_ms: i64,
    pub(crate) heartbeat_ms: i64,
    /// Jobs in its schedule (file and API).
    pub(crate) jobs: usize,
}

/// How a run ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    Running,
    Success,
    Failure,
    Timeout,
    /// The lease could not be kept (store lost, or taken over): the run was stopped, fail closed.
    LeaseLost,
    /// Stopped by the daemon: a replacing tick (`overlap = "replace"`) or a shutdown.
    Stopped,
    /// Its replica stopped sending heartbeats while it ran (seen by another replica).
    Abandoned,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Timeout => "timeout",
            Outcome::LeaseLost => "lease_lost",
            Outcome::Stopped => "stopped",
            Outcome::Abandoned => "abandoned",
        }
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Trigger {
    Schedule,
    Manual,
}

/// One run of a job, as the run history keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RunRecord {
    pub(crate) run_id: String,
    pub(crate) job: String,
    /// The nominal tick (RFC 3339, UTC); for a manual run, when it was asked for.
    pub(crate) tick: String,
    pub(crate) tick_ms: i64,
    pub(crate) fence: u64,
    pub(crate) replica: String,
    pub(crate) trigger: Trigger,
    /// When the tick was due to fire (nominal + jitter), for start latency.
    pub(crate) due_ms: i64,
    /// When the claim was granted.
    #[serde(default)]
    pub(crate) claimed_ms: i64,
    /// When the daemon started the job (its process, or its request).
    pub(crate) started_ms: i64,
    pub(crate) finished_ms: Option<i64>,
    pub(crate) outcome: Outcome,
    pub(crate) duration_ms: Option<u64>,
    pub(crate) exit_code: Option<i32>,
    pub(crate) signal: Option<i32>,
    pub(crate) http_status: Option<u16>,
    pub(crate) error: Option<String>,
    /// The tail of the run's output (stdout and stderr as they came, or the HTTP response).
    pub(crate) output: String,
    pub(crate) output_truncated: bool,
}

/// A tick a replica saw go unrun, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MissedTick {
    pub(crate) job: String,
    pub(crate) tick: String,
    /// `misfire`, `overlap` or `store_unavailable`.
    pub(crate) reason: String,
    pub(crate) replica: String,
    pub(crate) at_ms: i64,
}

/// A job's shared state: pause flag, first sighting, last run, last miss.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JobState {
    pub(crate) job: String,
    pub(crate) paused: bool,
    pub(crate) paused_by: Option<String>,
    pub(crate) paused_ms: Option<i64>,
    /// When a replica first scheduled it (ticks before that are never caught up).
    pub(crate) seen_ms: Option<i64>,
    pub(crate) last_run: Option<RunRecord>,
    pub(crate) last_success_ms: Option<i64>,
    pub(crate) missed_total: u64,
    pub(crate) last_missed: Option<MissedTick>,
}

/// Runs counted per outcome in one 15-minute bucket, for a 24-hour timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Bucket {
    pub(crate) start_ms: i64,
    pub(crate) outcome: Outcome,
    pub(crate) count: u64,
}

/// The bucket width of the timeline.
pub(crate) const BUCKET_MS: i64 = 15 * 60 * 1000;
/// How long buckets are kept.
pub(crate) const TIMELINE_MS: i64 = 25 * 60 * 60 * 1000;

/// A write the history batcher hands the store.
#[derive(Debug, Clone)]
pub(crate) enum Write {
    Started(RunRecord),
    Finished(RunRecord),
    Missed(MissedTick),
    /// Drop the job's finished runs beyond the history size.
    Prune(String),
}
