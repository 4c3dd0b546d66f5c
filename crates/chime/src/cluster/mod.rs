//! Cluster-wide timers: resty.timer's `key_name`, made safe. A recurring timer built with
//! [`.key(name)`](crate::TimerBuilder::key) and [`.coordinator(c)`](crate::TimerBuilder::coordinator)
//! runs each tick on exactly one member of every process and host that shares the coordinator.
//!
//! - **Ticks** are numbered from a shared anchor, the Unix epoch: tick `t` is due at
//!   `t * interval` of wall-clock time, so every member agrees which tick is due without talking.
//! - **Claims** are one atomic operation in the store ([`protocol`]): a member may run tick `t` only
//!   if no member claimed `t` (or a later tick) and no run holds a live lease. The grant carries a
//!   fencing token ([`Fire::fence`](crate::Fire::fence)), strictly increasing per key: pass it to
//!   whatever the run writes, so a paused member's late writes can be refused.
//! - **Leases**: a run holds a lease, renewed every third of its length while it runs (a sync
//!   callback runs on a blocking thread, so renewals go on beside it), released when it ends; so runs
//!   never overlap across members. A member that dies holding one is replaced once it expires:
//!   failover takes at most `lease + sub_interval`.
//! - **Fail closed**: a store error, a store call that outlasts the lease, or a grant that arrives
//!   after its lease could have run out means the tick does not run here; a lease lost mid-run stops
//!   an async run (a sync one finishes with its now stale fence). All of it is reported (`tracing`,
//!   and the scheduler's [cluster error hook](crate::SchedulerBuilder::on_cluster_error)).
//! - **Misfires**: a tick no member could run on time is run late only within [`Misfire`]'s grace.
//!
//! | coordinator | scope | at most one start per (key, tick) | clock for leases |
//! |---|---|---|---|
//! | [`Local`] | one process | yes | the process's |
//! | [`Sqlite`] | the processes of one machine | yes (`BEGIN IMMEDIATE`, WAL, local disk only) | the machine's |
//! | `Redis` (feature `redis`) | many hosts | while Redis loses no acknowledged writes (no failover, no restart without AOF `always`) | Redis's `TIME` |
//! | `Postgres` (feature `postgres`) | many hosts | yes (one `INSERT .. ON CONFLICT .. DO UPDATE .. WHERE .. RETURNING`) | the database's `clock_timestamp()` |

mod local;
pub(crate) mod member;
#[cfg(feature = "postgres")]
mod postgres;
pub mod protocol;
#[cfg(feature = "redis")]
mod redis;
pub(crate) mod sqlite;

pub use local::Local;
#[cfg(feature = "postgres")]
pub use postgres::Postgres;
pub use protocol::{Claim, ClaimOutcome, Lease};
#[cfg(feature = "redis")]
pub use redis::Redis;
pub use sqlite::Sqlite;

pub(crate) use member::ClusterPlan;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::Error;

/// What a store call returns: a boxed future, so coordinators can be used as trait objects.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// A store that decides claims atomically: the small trait every backend implements.
///
/// Implementations must apply the rules of [`protocol`] atomically per key, and read time from one
/// clock shared by all members (the store's, where it has one).
pub trait Coordinator: Send + Sync + 'static {
    /// A short name for reports: `local`, `sqlite`, `redis`, `postgres`.
    fn backend(&self) -> &'static str;

    /// Asks to run `claim.tick` (see [`protocol::claim`]).
    fn claim<'a>(&'a self, claim: &'a Claim) -> StoreFuture<'a, ClaimOutcome>;

    /// Extends a lease from `now_ms` (the member's clock, for stores without one); `Ok(false)` when it
    /// was lost (see [`protocol::renew`]).
    fn renew<'a>(&'a self, lease: &'a Lease, now_ms: i64) -> StoreFuture<'a, bool>;

    /// Ends a lease now (see [`protocol::release`]).
    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()>;
}

/// What happens to a tick that no member could run on time (all were down, or a run overran it).
///
/// ```
/// assert_eq!(chime::cluster::Misfire::default(), chime::cluster::Misfire::FireOnce { grace: std::time::Duration::from_secs(60) });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misfire {
    /// Run a tick only in its first check window (within one `sub_interval` of its due time).
    Skip,
    /// Run the latest missed tick once, late, if it is no older than `grace` (Quartz, sidekiq-cron
    /// and Temporal do the same; their default grace is 60 s too).
    FireOnce {
        /// How late a tick may still run.
        grace: Duration,
    },
}

impl Default for Misfire {
    fn default() -> Self {
        Misfire::FireOnce { grace: Duration::from_secs(60) }
    }
}

/// A member id unique across hosts and restarts: host, process and a random part.
pub(crate) fn member_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string());
    let host = host.unwrap_or_else(|_| "host".to_string());
    format!("{host}:{}:{:08x}", std::process::id(), rand::random::<u32>())
}
