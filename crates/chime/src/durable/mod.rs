//! Durable timers: timers kept in a store, so they survive crashes, deploys and reboots, and run
//! once, on one of the schedulers that share the store ("remind this user in 3 days", "expire this
//! reservation at 18:00", "retry this webhook in 10 minutes").
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::{Duration, SystemTime};
//! use chime::durable::{Created, DurableFire, DurableTimer};
//!
//! let sched = chime::Scheduler::start();
//! let store = chime::cluster::Sqlite::open("timers.db")?;      // or Redis / Postgres, as for cluster timers
//! let timers = sched
//!     .durable(store)
//!     .handler("remind", |fire: &DurableFire| std::fs::write("reminder.txt", fire.payload()))
//!     .handler_async("bill", |fire: DurableFire| async move { tokio::fs::write("bill.txt", fire.payload()).await })
//!     .start()
//!     .await?;                                                  // resumes what the store holds
//! let c: Created = timers.after("invoice-42", Duration::from_secs(3600), "remind", b"payload".to_vec()).await?;
//! timers.at("invoice-43", SystemTime::now() + Duration::from_secs(60), "remind", Vec::new()).await?;
//! let gone: bool = timers.cancel("invoice-42").await?;
//! let t: Option<DurableTimer> = timers.get("invoice-43").await?;
//! # let _ = (c, gone, t); Ok(()) }
//! ```
//!
//! # What is promised
//!
//! - **Stored before answered.** [`after`](DurableTimers::after), [`at`](DurableTimers::at) and
//!   [`create_many`](DurableTimers::create_many) return once the store has the timer durably (per
//!   backend, below). A key is unique per store: creating a key that exists changes nothing and
//!   answers [`Created::Exists`] with the stored timer (idempotent creation), until the timer is
//!   purged.
//! - **Never early.** A timer is claimed only once its due time has passed on the store's clock
//!   (SQLite: the machine's). Each scheduler tracks the store's clock from its claims' replies, so a
//!   host whose clock is off wakes at the right time rather than early or late.
//! - **One run at a time, on one scheduler.** A run is claimed atomically with a lease and a fence
//!   ([`DurableFire::fence`], strictly increasing per timer and per store). The lease is renewed every
//!   third of its length while the run goes on. A scheduler that dies holding runs is replaced once
//!   the lease runs out: the timer runs again, elsewhere, with [`DurableFire::attempt`] + 1 and a
//!   higher fence. An async run whose lease can no longer be trusted (the store unreachable for 9/10
//!   of the lease) is stopped, so async runs never overlap; a sync run cannot be stopped, so it
//!   finishes, and its end is refused by the store: pass the fence to whatever the run writes, so the
//!   stale write is refused too. Execution is at least once: a run whose scheduler dies after the
//!   handler's effect but before the end is recorded runs again (with a higher fence).
//! - **Failures** (a handler's `Err`, or a panic) are retried by the [`RetryPolicy`] (default 5
//!   attempts, backoff doubling from 1 s); after the last, the timer is marked
//!   [`Failed`](State::Failed), kept, and [reported](Report::Failed).
//! - **Late starts.** A timer found overdue (everything was down) runs at once. With a grace (per
//!   scheduler, [`DurableBuilder::grace`], or per timer, [`NewTimer::grace`]) a first run later than the
//!   grace is skipped instead, marked [`Skipped`](State::Skipped) and [reported](Report::Skipped).
//! - **Unknown handlers.** A scheduler claims only timers of handlers it knows. Timers of a handler no
//!   running scheduler knows stay pending, [reported](Report::UnknownHandler) every minute, until one
//!   that knows it starts. Creating a timer for a handler the creating scheduler does not know is an
//!   error.
//! - **Memory** does not grow with the number of stored timers: a scheduler holds its runs in flight
//!   (at most [`max_running`](DurableBuilder::max_running), claimed in batches as they come due) and
//!   the due time of the next claimable timer, which each claim returns; everything else stays in the
//!   store. A timer created by another scheduler is seen at the next claim, at most one
//!   [`poll`](DurableBuilder::poll) later (default 1 s).
//! - **Purge.** Fired, cancelled and skipped timers are deleted after the
//!   [retention](DurableBuilder::retention) (default 24 h); failed ones stay until cancelled.
//! - **Failover bound.** After a scheduler dies, its runs are run again within `lease + poll` (plus
//!   the claim's round trip); with the defaults, 31 s.
//! - **Bad input** gets [`Error::InvalidOption`](crate::Error::InvalidOption) naming the field, and
//!   nothing is stored: `key` (empty, or over [`MAX_KEY_BYTES`] = 256 bytes), `payload` (over
//!   [`MAX_PAYLOAD_BYTES`] = 64 KiB), `handler` (not registered on this scheduler), `due` (before the
//!   Unix epoch or after the year 2554) or `delay` (ending after 2554).
//!
//! # Per backend
//!
//! | store | durably stored when a create returns | one run at a time | clock |
//! |---|---|---|---|
//! | [`cluster::Sqlite`](crate::cluster::Sqlite) | yes: committed with `synchronous = FULL` (WAL) | yes (`BEGIN IMMEDIATE`) | the machine's |
//! | `cluster::Postgres` | yes: a committed statement (`synchronous_commit = on`, the default) | yes (`FOR UPDATE SKIP LOCKED`, one statement per call) | the database's `clock_timestamp()` |
//! | `cluster::Redis` | only with `appendonly yes` and `appendfsync always` (with `everysec` up to a second of creates and claims is lost on a crash of Redis; without AOF, everything since the last snapshot) | while Redis loses no acknowledged write (no failover to a lagging replica, no eviction) | Redis `TIME` |
//!
//! The lifecycle of one stored timer is in [`machine`], free of I/O; the backends apply it
//! atomically per call ([`DurableStore`]).

mod builder;
mod fire;
mod handle;
pub mod machine;
mod pool;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
mod retry;
mod runner;
mod shared;
mod sqlite;
mod store;
mod timer;

pub use builder::DurableBuilder;
pub use fire::{BoxError, DurableFire, Report};
pub use handle::DurableTimers;
pub use machine::State;
pub use retry::RetryPolicy;
pub use store::{ClaimReply, ClaimRequest, Claimed, DurableStore, Finish};
pub use timer::{
    Created, DurableTimer, MAX_DUE_MS, MAX_HANDLER_BYTES, MAX_KEY_BYTES, MAX_PAYLOAD_BYTES, NewTimer,
};

impl crate::Scheduler {
    /// Durable timers on `store` ([`cluster::Sqlite`](crate::cluster::Sqlite), or with their features
    /// `cluster::Redis` and `cluster::Postgres`): a builder to register handlers on, then
    /// [`start`](DurableBuilder::start). See [`durable`](crate::durable).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// use std::time::Duration;
    /// let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let timers = sched
    ///     .durable(chime::cluster::Sqlite::open(":memory:")?)
    ///     .handler("remind", move |fire: &chime::durable::DurableFire| tx.send(fire.key().to_string()))
    ///     .start()
    ///     .await?;
    /// timers.after("invoice-42", Duration::from_secs(3600), "remind", Vec::new()).await?;
    /// assert_eq!(rx.recv().await.as_deref(), Some("invoice-42"));   // an hour later, on the paused clock
    /// # Ok(()) }
    /// ```
    pub fn durable(&self, store: impl DurableStore) -> DurableBuilder {
        DurableBuilder::new(self, std::sync::Arc::new(store))
    }
}
