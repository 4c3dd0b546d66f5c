//! Cluster-wide timers: resty.timer's `key_name`, made safe. A recurring timer built with
//! [`.key(name)`](crate::TimerBuilder::key) and [`.coordinator(c)`](crate::TimerBuilder::coordinator)
//! runs each tick on exactly one member of every process and host that shares the coordinator.
//!
//! - **Ticks** are numbered from a shared anchor, the Unix epoch (or the timer's
//!   [`anchor`](crate::TimerBuilder::anchor)): tick `t` is due at `anchor + t * interval` of wall-clock time, so every member agrees which tick is due without talking.
//! - **Claims** are one atomic operation in the store ([`protocol`]): a member may run tick `t` only
//!   if no member claimed `t` (or a later tick) and no run holds a live lease. The grant carries a
//!   fencing token ([`Fire::fence`](crate::Fire::fence)), strictly increasing per key: pass it to
//!   whatever the run writes, so a paused member's late writes can be refused.
//! - **Leases**: a run holds a lease, renewed every third of its length while it runs (a sync
//!   callback runs on a blocking thread, so renewals go on beside it), released when it ends; so runs
//!   never overlap across members. A member that dies holding one is replaced once it expires:
//!   failover takes at most `lease + sub_interval`.
//! - **Fail closed**: a store error, a store call that outlasts the lease, a grant that arrives
//!   after its lease could have run out, or a run that cannot start before nine tenths of its lease
//!   have passed (a process frozen or starved after the grant) means the tick does not run here; a lease lost mid-run stops
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

mod arm;
mod local;
mod member;
mod plan;
#[cfg(feature = "postgres")]
mod postgres;
pub mod protocol;
#[cfg(feature = "redis")]
mod redis;
mod run;
pub(crate) mod sqlite;

pub use local::Local;
#[cfg(feature = "postgres")]
pub use postgres::Postgres;
pub use protocol::{Claim, ClaimOutcome, Lease};
#[cfg(feature = "redis")]
pub use redis::Redis;
pub use sqlite::Sqlite;

pub(crate) use arm::heartbeat;
pub(crate) use plan::ClusterPlan;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::Error;

/// What a store call returns: a boxed future, so coordinators can be used as trait objects.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
/// use chime::cluster::{Claim, ClaimOutcome, Coordinator, Local, StoreFuture};
/// let store = Local::new();
/// let ask = Claim { key: "report".into(), tick: 7, member: "a".into(), lease_ms: 1000, now_ms: 0 };
/// let pending: StoreFuture<'_, ClaimOutcome> = store.claim(&ask);
/// assert!(matches!(pending.await?, ClaimOutcome::Granted(_)));
/// # Ok(()) }
/// ```
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// A store that decides claims atomically: the small trait every backend implements.
///
/// Implementations must apply the rules of [`protocol`] atomically per key, and read time from one
/// clock shared by all members (the store's, where it has one).
///
/// # Examples
///
/// A coordinator of your own, here one that counts the claims of the in-process store it wraps:
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// # use std::time::Duration;
/// # let ms = Duration::from_millis;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use chime::cluster::{Claim, ClaimOutcome, Coordinator, Lease, Local, StoreFuture};
/// use chime::{Scheduler, WallClock};
///
/// #[derive(Clone, Default)]
/// struct Counted { store: Local, claims: Arc<AtomicU32> }
///
/// impl Coordinator for Counted {
///     fn backend(&self) -> &'static str { "counted" }
///     fn claim<'a>(&'a self, claim: &'a Claim) -> StoreFuture<'a, ClaimOutcome> {
///         self.claims.fetch_add(1, Ordering::SeqCst);
///         self.store.claim(claim)
///     }
///     fn renew<'a>(&'a self, lease: &'a Lease, now_ms: i64) -> StoreFuture<'a, bool> {
///         self.store.renew(lease, now_ms)
///     }
///     fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
///         self.store.release(lease)
///     }
/// }
///
/// let store = Counted::default();
/// let sched = Scheduler::builder().wall_clock(WallClock::FollowTokio).start();
/// let _timer = sched.timer(ms(100)).recurring().key("report").coordinator(store.clone()).on_expire(|_| {}).arm()?;
/// sched.sleep(ms(350)).await;
/// assert!(store.claims.load(Ordering::SeqCst) >= 3, "one claim per tick");
/// # Ok(()) }
/// ```
///
/// resty.timer keeps its claims in a shared dictionary (`shm_name`); a coordinator is its store.
pub trait Coordinator: Send + Sync + 'static {
    /// A short name for reports: `local`, `sqlite`, `redis`, `postgres`.
    ///
    /// # Examples
    ///
    /// ```
    /// use chime::cluster::{Coordinator, Local};
    /// assert_eq!(Local::new().backend(), "local");
    /// ```
    fn backend(&self) -> &'static str;

    /// Asks to run `claim.tick` for `claim.member` (see [`protocol::claim`]): granted with a lease
    /// and a fence, or refused because the tick (or a later one) was taken, or a run still holds the
    /// lease.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails; the member then does not run the tick (fail closed).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::cluster::{Claim, ClaimOutcome, Coordinator, Local};
    /// let store = Local::new();
    /// let ask = Claim { key: "report".into(), tick: 7, member: "a".into(), lease_ms: 1000, now_ms: 0 };
    /// let ClaimOutcome::Granted(lease) = store.claim(&ask).await? else { unreachable!() };
    /// assert_eq!((lease.tick, lease.fence), (7, 1));
    /// let b = Claim { member: "b".into(), tick: 8, ..ask.clone() };
    /// assert!(matches!(store.claim(&b).await?, ClaimOutcome::Busy { owner, .. } if owner == "a"), "a still runs 7");
    /// assert_eq!(store.claim(&ask).await?, ClaimOutcome::Taken { last_tick: 7 });
    /// # Ok(()) }
    /// ```
    fn claim<'a>(&'a self, claim: &'a Claim) -> StoreFuture<'a, ClaimOutcome>;

    /// Extends a lease from `now_ms` (the member's clock, for stores without one); `Ok(false)` when it
    /// was lost (see [`protocol::renew`]).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::cluster::{Claim, ClaimOutcome, Coordinator, Local};
    /// let store = Local::new();
    /// let ask = Claim { key: "report".into(), tick: 7, member: "a".into(), lease_ms: 1000, now_ms: 0 };
    /// let ClaimOutcome::Granted(lease) = store.claim(&ask).await? else { unreachable!() };
    /// assert!(store.renew(&lease, 500).await?);
    /// assert_eq!(store.row("report").unwrap().lease_until_ms, 1500);
    /// let later = Claim { member: "b".into(), tick: 8, now_ms: 2000, ..ask.clone() };
    /// assert!(matches!(store.claim(&later).await?, ClaimOutcome::Granted(_)), "a's lease ran out");
    /// assert!(!store.renew(&lease, 2100).await?, "lost to b");
    /// # Ok(()) }
    /// ```
    fn renew<'a>(&'a self, lease: &'a Lease, now_ms: i64) -> StoreFuture<'a, bool>;

    /// Ends a lease now, so the next tick need not wait for it to run out (see
    /// [`protocol::release`]); a lease already lost changes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::cluster::{Claim, ClaimOutcome, Coordinator, Local};
    /// let store = Local::new();
    /// let ask = Claim { key: "report".into(), tick: 7, member: "a".into(), lease_ms: 1000, now_ms: 0 };
    /// let ClaimOutcome::Granted(lease) = store.claim(&ask).await? else { unreachable!() };
    /// store.release(&lease).await?;
    /// assert_eq!(store.row("report").unwrap().owner, None);
    /// let next = Claim { member: "b".into(), tick: 8, now_ms: 1, ..ask.clone() };
    /// assert!(matches!(store.claim(&next).await?, ClaimOutcome::Granted(_)), "no wait for the lease");
    /// # Ok(()) }
    /// ```
    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()>;

    /// Asks to run several ticks at once, decided in order (a later claim of the same key sees the
    /// earlier one); the outcomes come back in the same order. For a caller with many keys due at
    /// one instant (a daemon with thousands of jobs).
    ///
    /// The default asks one claim after the other; SQLite decides the lot in one transaction (one
    /// commit). On error, claims before the failing one may have been granted (SQLite: none was).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::cluster::{Claim, ClaimOutcome, Coordinator, Local};
    /// let store = Local::new();
    /// let ask = |key: &str| Claim { key: key.into(), tick: 7, member: "a".into(), lease_ms: 1000, now_ms: 0 };
    /// let outcomes = store.claim_many(&[ask("report"), ask("backup"), ask("report")]).await?;
    /// assert!(matches!(
    ///     outcomes[..],
    ///     [ClaimOutcome::Granted(_), ClaimOutcome::Granted(_), ClaimOutcome::Taken { last_tick: 7 }]
    /// ));
    /// # Ok(()) }
    /// ```
    fn claim_many<'a>(&'a self, claims: &'a [Claim]) -> StoreFuture<'a, Vec<ClaimOutcome>> {
        Box::pin(async move {
            let mut outcomes = Vec::with_capacity(claims.len());
            for claim in claims {
                outcomes.push(self.claim(claim).await?);
            }
            Ok(outcomes)
        })
    }

    /// Ends several leases at once. The default releases one after the other; SQLite in one
    /// transaction.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::cluster::{Claim, ClaimOutcome, Coordinator, Local};
    /// let store = Local::new();
    /// let ask = |tick| Claim { key: "report".into(), tick, member: "a".into(), lease_ms: 60_000, now_ms: 0 };
    /// let ClaimOutcome::Granted(lease) = store.claim(&ask(1)).await? else { unreachable!() };
    /// assert!(matches!(store.claim(&ask(2)).await?, ClaimOutcome::Busy { .. }));
    /// store.release_many(&[lease]).await?;
    /// assert!(matches!(store.claim(&ask(2)).await?, ClaimOutcome::Granted(_)));
    /// # Ok(()) }
    /// ```
    fn release_many<'a>(&'a self, leases: &'a [Lease]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            for lease in leases {
                self.release(lease).await?;
            }
            Ok(())
        })
    }
}

/// What happens to a tick that no member could run on time (all were down, or a run overran it).
///
/// # Examples
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
