//! [`DurableTimers`]: the handle that creates, reads and cancels durable timers.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime};

use super::machine::State;
use super::shared::Shared;
use super::timer::{Created, DurableTimer, NewTimer};
use crate::Error;

/// Durable timers on one store: made by [`DurableBuilder::start`](super::DurableBuilder::start).
/// Cheap to clone; clones share the runner that runs the store's timers for this scheduler's
/// handlers. Dropping the handles does not stop it: [`shutdown`](Self::shutdown) (or the scheduler's)
/// does.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// use std::time::{Duration, SystemTime};
/// use chime::durable::{Created, DurableFire, State};
/// let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
/// let timers = sched.durable(chime::cluster::Sqlite::open(":memory:")?)
///     .handler("remind", |fire: &DurableFire| std::io::Result::Ok(println!("{}", fire.key())))
///     .start().await?;
/// assert_eq!(timers.after("invoice-42", Duration::from_secs(3600), "remind", b"42".to_vec()).await?, Created::New);
/// timers.at("invoice-43", SystemTime::now() + Duration::from_secs(60), "remind", Vec::new()).await?;
/// assert!(timers.cancel("invoice-42").await?);
/// assert_eq!(timers.get("invoice-42").await?.unwrap().state(), State::Cancelled);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DurableTimers {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for DurableTimers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableTimers")
            .field("backend", &self.shared.store.backend())
            .field("member", &self.shared.member)
            .field("handlers", &self.shared.names)
            .finish_non_exhaustive()
    }
}

impl DurableTimers {
    /// Creates a timer due `delay` from now, to run `handler` with `payload`; returns once it is
    /// durably stored. A key already taken changes nothing and answers
    /// [`Created::Exists`] with the stored timer.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming `key` (empty, or over [`MAX_KEY_BYTES`](super::MAX_KEY_BYTES)),
    /// `handler` (not registered on this scheduler), `payload` (over
    /// [`MAX_PAYLOAD_BYTES`](super::MAX_PAYLOAD_BYTES)) or `delay` (past the year 2554): nothing is
    /// stored. [`Error::Store`] when the store fails or does not answer in time.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
    /// # let timers = sched.durable(chime::cluster::Sqlite::open(":memory:")?)
    /// #     .handler("remind", |_: &chime::durable::DurableFire| std::io::Result::Ok(())).start().await?;
    /// use std::time::Duration;
    /// timers.after("invoice-42", Duration::from_secs(3600), "remind", b"42".to_vec()).await?;
    /// let err = timers.after("", Duration::from_secs(1), "remind", Vec::new()).await.unwrap_err();
    /// assert_eq!(err.to_string(), "invalid option `key`: must not be empty");
    /// # Ok(()) }
    /// ```
    pub async fn after(
        &self,
        key: impl Into<String>,
        delay: Duration,
        handler: impl Into<String>,
        payload: Vec<u8>,
    ) -> Result<Created, Error> {
        self.create(NewTimer::after(key, delay, handler, payload)).await
    }

    /// Creates a timer due at wall-clock time `due` (one already past runs at once); as
    /// [`after`](Self::after) otherwise (`due` before the Unix epoch or past 2554 is refused, naming
    /// `due`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
    /// # let timers = sched.durable(chime::cluster::Sqlite::open(":memory:")?)
    /// #     .handler("remind", |_: &chime::durable::DurableFire| std::io::Result::Ok(())).start().await?;
    /// use std::time::{Duration, SystemTime};
    /// timers.at("invoice-43", SystemTime::now() + Duration::from_secs(60), "remind", Vec::new()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn at(
        &self,
        key: impl Into<String>,
        due: SystemTime,
        handler: impl Into<String>,
        payload: Vec<u8>,
    ) -> Result<Created, Error> {
        self.create(NewTimer::at(key, due, handler, payload)).await
    }

    /// Creates one timer with its own options (see [`NewTimer`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
    /// # let timers = sched.durable(chime::cluster::Sqlite::open(":memory:")?)
    /// #     .handler("remind", |_: &chime::durable::DurableFire| std::io::Result::Ok(())).start().await?;
    /// use std::time::Duration;
    /// use chime::durable::NewTimer;
    /// let t = NewTimer::after("k", Duration::from_secs(60), "remind", Vec::new()).grace(Duration::from_secs(5));
    /// assert!(timers.create(t).await?.is_new());
    /// # Ok(()) }
    /// ```
    pub async fn create(&self, timer: NewTimer) -> Result<Created, Error> {
        let mut created = self.create_batch(vec![timer], false).await?;
        Ok(created.pop().unwrap_or(Created::New))
    }

    /// Creates many timers in one store transaction (one fsync on SQLite, one statement on
    /// PostgreSQL, one script on Redis): every one is checked first, so an invalid one stores none.
    /// Answers per timer, in order. A key repeated in the batch is created once; later ones answer
    /// `Exists`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
    /// # let timers = sched.durable(chime::cluster::Sqlite::open(":memory:")?)
    /// #     .handler("remind", |_: &chime::durable::DurableFire| std::io::Result::Ok(())).start().await?;
    /// use std::time::Duration;
    /// use chime::durable::NewTimer;
    /// let batch = (0..1000).map(|i| NewTimer::after(format!("user-{i}"), Duration::from_secs(3600), "remind", Vec::new()));
    /// let created = timers.create_many(batch).await?;
    /// assert!(created.iter().all(|c| c.is_new()));
    /// # Ok(()) }
    /// ```
    pub async fn create_many(
        &self,
        timers: impl IntoIterator<Item = NewTimer>,
    ) -> Result<Vec<Created>, Error> {
        self.create_batch(timers.into_iter().collect(), true).await
    }

    async fn create_batch(&self, timers: Vec<NewTimer>, batch: bool) -> Result<Vec<Created>, Error> {
        let now_ms = self.shared.store_ms();
        let knows = |name: &str| self.shared.handlers.contains_key(name);
        let rows = timers
            .into_iter()
            .enumerate()
            .map(|(i, t)| t.into_row(now_ms, batch.then_some(i), knows))
            .collect::<Result<Vec<_>, Error>>()?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let earliest = rows.iter().map(|r| r.ready_ms).min().unwrap_or(i64::MAX);
        let stored = self.shared.call(self.shared.store.create(&rows)).await?;
        if earliest < self.shared.next_claim_ms.load(Ordering::SeqCst) {
            self.shared.poke.notify_one();
        }
        Ok(stored
            .into_iter()
            .map(|s| s.map_or(Created::New, |row| Created::Exists(DurableTimer { row })))
            .collect())
    }

    /// Cancels `key`: a pending timer will not run; a run going on is not interrupted but can no
    /// longer renew its lease or record its end (an async run is stopped at its next renewal); a failed
    /// timer is dismissed (then purged like the others). `false` when there was nothing to cancel (no
    /// such key, or it fired, was skipped or was cancelled already).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
    /// # let timers = sched.durable(chime::cluster::Sqlite::open(":memory:")?)
    /// #     .handler("remind", |_: &chime::durable::DurableFire| std::io::Result::Ok(())).start().await?;
    /// timers.after("k", std::time::Duration::from_secs(60), "remind", Vec::new()).await?;
    /// assert!(timers.cancel("k").await?);
    /// assert!(!timers.cancel("k").await?, "once");
    /// # Ok(()) }
    /// ```
    pub async fn cancel(&self, key: &str) -> Result<bool, Error> {
        self.shared.call(self.shared.store.cancel(key, self.shared.store_ms())).await
    }

    /// The timer stored under `key` (until purged, also after it ran).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
    /// # let timers = sched.durable(chime::cluster::Sqlite::open(":memory:")?)
    /// #     .handler("remind", |_: &chime::durable::DurableFire| std::io::Result::Ok(())).start().await?;
    /// assert_eq!(timers.get("nothing").await?, None);
    /// # Ok(()) }
    /// ```
    pub async fn get(&self, key: &str) -> Result<Option<DurableTimer>, Error> {
        let row = self.shared.call(self.shared.store.get(key)).await?;
        Ok(row.map(|row| DurableTimer { row }))
    }

    /// Up to `limit` timers in `state`, in the order they become claimable (pending, running) or
    /// finished (the others), then by key. Page on with [`list_after`](Self::list_after).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
    /// # let timers = sched.durable(chime::cluster::Sqlite::open(":memory:")?)
    /// #     .handler("remind", |_: &chime::durable::DurableFire| std::io::Result::Ok(())).start().await?;
    /// use std::time::Duration;
    /// for (key, secs) in [("b", 20), ("a", 10), ("c", 30)] {
    ///     timers.after(key, Duration::from_secs(secs), "remind", Vec::new()).await?;
    /// }
    /// let first = timers.list(chime::durable::State::Pending, 2).await?;
    /// assert_eq!(first.iter().map(|t| t.key()).collect::<Vec<_>>(), ["a", "b"]);
    /// let rest = timers.list_after(chime::durable::State::Pending, &first[1], 2).await?;
    /// assert_eq!(rest.iter().map(|t| t.key()).collect::<Vec<_>>(), ["c"]);
    /// # Ok(()) }
    /// ```
    pub async fn list(&self, state: State, limit: usize) -> Result<Vec<DurableTimer>, Error> {
        let rows = self.shared.call(self.shared.store.list(state, None, limit)).await?;
        Ok(rows.into_iter().map(|row| DurableTimer { row }).collect())
    }

    /// The next page of [`list`](Self::list): up to `limit` timers in `state` after `after` (the
    /// last of the previous page).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
    /// # let timers = sched.durable(chime::cluster::Sqlite::open(":memory:")?)
    /// #     .handler("remind", |_: &chime::durable::DurableFire| std::io::Result::Ok(())).start().await?;
    /// use chime::durable::{NewTimer, State};
    /// let batch = (0..250).map(|i| NewTimer::after(format!("k{i:03}"), std::time::Duration::from_secs(60), "remind", Vec::new()));
    /// timers.create_many(batch).await?;
    /// let mut page = timers.list(State::Pending, 100).await?;
    /// let mut seen = page.len();
    /// while let Some(last) = page.last() {
    ///     page = timers.list_after(State::Pending, last, 100).await?;
    ///     seen += page.len();
    /// }
    /// assert_eq!(seen, 250);
    /// # Ok(()) }
    /// ```
    pub async fn list_after(
        &self,
        state: State,
        after: &DurableTimer,
        limit: usize,
    ) -> Result<Vec<DurableTimer>, Error> {
        let from = Some((after.row.ready_ms, after.row.key.as_str()));
        let rows = self.shared.call(self.shared.store.list(state, from, limit)).await?;
        Ok(rows.into_iter().map(|row| DurableTimer { row }).collect())
    }

    /// Purges now what the retention allows (the runner also does, every half retention, at most
    /// every 10 min); how many timers were removed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
    /// # let timers = sched.durable(chime::cluster::Sqlite::open(":memory:")?)
    /// #     .handler("remind", |_: &chime::durable::DurableFire| std::io::Result::Ok(())).start().await?;
    /// assert_eq!(timers.purge().await?, 0);
    /// # Ok(()) }
    /// ```
    pub async fn purge(&self) -> Result<usize, Error> {
        let retention = i64::try_from(self.shared.config.retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = self.shared.store_ms().saturating_sub(retention);
        let mut purged = 0;
        loop {
            let n = self.shared.call(self.shared.store.purge(cutoff, 1000)).await?;
            purged += n;
            if n < 1000 {
                return Ok(purged);
            }
        }
    }

    /// Runs going on in this scheduler now.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
    /// # let timers = sched.durable(chime::cluster::Sqlite::open(":memory:")?)
    /// #     .handler("remind", |_: &chime::durable::DurableFire| std::io::Result::Ok(())).start().await?;
    /// assert_eq!(timers.running(), 0);
    /// # Ok(()) }
    /// ```
    pub fn running(&self) -> usize {
        self.shared.running.load(Ordering::Relaxed)
    }

    /// This scheduler's member id in the store (who holds a running timer's lease): host, process
    /// and a random part.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
    /// # let timers = sched.durable(chime::cluster::Sqlite::open(":memory:")?)
    /// #     .handler("remind", |_: &chime::durable::DurableFire| std::io::Result::Ok(())).start().await?;
    /// assert!(timers.member().contains(&std::process::id().to_string()));
    /// # Ok(()) }
    /// ```
    pub fn member(&self) -> &str {
        &self.shared.member
    }

    /// Stops serving: no more claims; async runs are stopped and handed back at once (another
    /// scheduler, or the next start, runs them again right away); sync runs are waited for and
    /// recorded. [`Scheduler::shutdown`](crate::Scheduler::shutdown) does the same. Creating, reading and cancelling still work.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
    /// # let timers = sched.durable(chime::cluster::Sqlite::open(":memory:")?)
    /// #     .handler("remind", |_: &chime::durable::DurableFire| std::io::Result::Ok(())).start().await?;
    /// timers.shutdown().await;
    /// timers.after("k", std::time::Duration::from_secs(1), "remind", Vec::new()).await?;   // stored, run by another
    /// # Ok(()) }
    /// ```
    pub async fn shutdown(&self) {
        self.shared.stop.send_replace(true);
        let mut stopped = self.shared.stopped.subscribe();
        let _ = stopped.wait_for(|s| *s).await;
        let subscription = self.shared.subscription.lock().unwrap_or_else(PoisonError::into_inner).take();
        drop(subscription);
    }
}
