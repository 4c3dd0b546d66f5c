//! [`DurableBuilder`]: handlers and policies, then [`start`](DurableBuilder::start).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::fire::{BoxError, DurableFire, Handler, Report};
use super::handle::DurableTimers;
use super::retry::RetryPolicy;
use super::shared::{Config, Shared};
use super::store::DurableStore;
use super::timer::MAX_HANDLER_BYTES;
use crate::{Error, Scheduler};

/// Sets up durable timers on a store; made by [`Scheduler::durable`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// use std::time::Duration;
/// use chime::durable::{DurableFire, RetryPolicy};
///
/// let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
/// let timers = sched
///     .durable(chime::cluster::Sqlite::open(":memory:")?)
///     .handler("remind", |fire: &DurableFire| std::io::Result::Ok(println!("remind {}", fire.key())))
///     .handler_async("bill", |fire: DurableFire| async move { std::io::Result::Ok(println!("bill {}", fire.key())) })
///     .retry(RetryPolicy::exponential(Duration::from_secs(1), Duration::from_secs(60)).max_attempts(8))
///     .lease(Duration::from_secs(30))
///     .grace(Duration::from_secs(3600))          // skip first runs more than an hour late
///     .retention(Duration::from_secs(7 * 24 * 3600))
///     .on_report(|report| eprintln!("durable: {report}"))
///     .start()
///     .await?;
/// # timers.shutdown().await;
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until started"]
pub struct DurableBuilder {
    sched: Scheduler,
    store: Arc<dyn DurableStore>,
    handlers: Vec<(String, Handler)>,
    config: Config,
}

impl std::fmt::Debug for DurableBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.handlers.iter().map(|(n, _)| n).collect();
        f.debug_struct("DurableBuilder").field("handlers", &names).finish_non_exhaustive()
    }
}

impl DurableBuilder {
    pub(crate) fn new(sched: &Scheduler, store: Arc<dyn DurableStore>) -> DurableBuilder {
        DurableBuilder { sched: sched.clone(), store, handlers: Vec::new(), config: Config::default() }
    }

    /// Registers a sync handler under `name` (1 to 64 bytes, unique). It runs on a blocking thread, so
    /// it may block; its lease is renewed meanwhile. `Err` is retried by the [retry
    /// policy](Self::retry); a panic counts as an `Err` (and goes to the scheduler's panic hook).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let timers = sched.durable(chime::cluster::Sqlite::open(":memory:")?)
    ///     .handler("remind", |fire: &chime::durable::DurableFire| std::fs::write(std::env::temp_dir().join("reminder.txt"), fire.payload()))
    ///     .start().await?;
    /// # timers.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub fn handler<F, E>(mut self, name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(&DurableFire) -> Result<(), E> + Send + Sync + 'static,
        E: Into<BoxError>,
    {
        self.handlers.push((name.into(), Handler::sync(handler)));
        self
    }

    /// Registers an async handler under `name` (1 to 64 bytes, unique): each run is a task, stopped
    /// if its lease is lost (so runs never overlap) or the scheduler shuts down (it is then run again,
    /// at once, by whichever scheduler claims it).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let timers = sched.durable(chime::cluster::Sqlite::open(":memory:")?)
    ///     .handler_async("bill", |fire: chime::durable::DurableFire| async move {
    ///         tokio::fs::write(std::env::temp_dir().join("bill.txt"), fire.payload()).await
    ///     })
    ///     .start().await?;
    /// # timers.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub fn handler_async<F, Fut, E>(mut self, name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(DurableFire) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        self.handlers.push((name.into(), Handler::asynchronous(handler)));
        self
    }

    /// What happens after a handler's `Err` (default: 5 attempts, backoff doubling from 1 s).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let builder = sched.durable(chime::cluster::Sqlite::open(":memory:")?).retry(chime::durable::RetryPolicy::none());
    /// # drop(builder); Ok(()) }
    /// ```
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.config.retry = policy;
        self
    }

    /// The lease a run holds (default 30 s), renewed every third of it while the run goes on. A run
    /// whose scheduler dies is run again by another once the lease runs out. At least 30 ms.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let builder = sched.durable(chime::cluster::Sqlite::open(":memory:")?).lease(std::time::Duration::from_secs(5));
    /// # drop(builder); Ok(()) }
    /// ```
    pub fn lease(mut self, lease: Duration) -> Self {
        self.config.lease = lease;
        self
    }

    /// Skips (and reports) a timer whose first run would start more than `grace` after its due time,
    /// e.g. after everything was down; default: none, an overdue timer runs at once however late.
    /// A timer's own [`NewTimer::grace`](super::NewTimer::grace) wins.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let builder = sched.durable(chime::cluster::Sqlite::open(":memory:")?).grace(std::time::Duration::from_secs(60));
    /// # drop(builder); Ok(()) }
    /// ```
    pub fn grace(mut self, grace: Duration) -> Self {
        self.config.grace = Some(grace);
        self
    }

    /// How long fired, cancelled and skipped timers stay in the store (default 24 h); their keys stay
    /// taken meanwhile (creating one again answers [`Created::Exists`](super::Created::Exists)).
    /// Failed timers stay until cancelled.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let builder = sched.durable(chime::cluster::Sqlite::open(":memory:")?).retention(std::time::Duration::from_secs(3600));
    /// # drop(builder); Ok(()) }
    /// ```
    pub fn retention(mut self, retention: Duration) -> Self {
        self.config.retention = retention;
        self
    }

    /// Runs at once at most (default 64): claims are taken in batches up to it. With the runs' rows,
    /// this bounds the scheduler's memory, however many timers the store holds.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let builder = sched.durable(chime::cluster::Sqlite::open(":memory:")?).max_running(256);
    /// # drop(builder); Ok(()) }
    /// ```
    pub fn max_running(mut self, runs: usize) -> Self {
        self.config.max_running = runs;
        self
    }

    /// How often the store is asked for timers even when none is known to be due (default 1 s): a
    /// timer created by another scheduler, due sooner than anything this one knows of, runs at most
    /// this late.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let builder = sched.durable(chime::cluster::Sqlite::open(":memory:")?).poll(std::time::Duration::from_millis(200));
    /// # drop(builder); Ok(()) }
    /// ```
    pub fn poll(mut self, every: Duration) -> Self {
        self.config.poll = every;
        self
    }

    /// How long a call made through the handle (`after`, `cancel`, ...) waits for the store before it
    /// fails with [`Error::Store`] (default 10 s). A create that timed out may have been stored:
    /// create again with the same key (creation is idempotent).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let builder = sched.durable(chime::cluster::Sqlite::open(":memory:")?).store_timeout(std::time::Duration::from_secs(2));
    /// # drop(builder); Ok(()) }
    /// ```
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.config.store_timeout = timeout;
        self
    }

    /// Called with everything the scheduler reports (after it is logged through `tracing`): retries,
    /// failed and skipped timers, lost leases, unknown handlers, store errors.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let builder = sched.durable(chime::cluster::Sqlite::open(":memory:")?).on_report(|r| eprintln!("{r}"));
    /// # drop(builder); Ok(()) }
    /// ```
    pub fn on_report(mut self, hook: impl Fn(&Report) + Send + Sync + 'static) -> Self {
        self.config.on_report = Some(Arc::new(hook));
        self
    }

    /// Checks the settings, prepares the store (creates its tables) and starts serving: timers the
    /// store holds for these handlers run as they come due, overdue ones at once.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming `handler` (an empty, over-long or repeated name), `lease`,
    /// `retry`, `max_running`, `poll`, `retention` or `store_timeout`; [`Error::Store`] when the store
    /// cannot be prepared; [`Error::Shutdown`] after the scheduler shut down.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let store = chime::cluster::Sqlite::open(":memory:")?;
    /// let err = sched.durable(store).lease(std::time::Duration::ZERO).start().await.unwrap_err();
    /// assert!(matches!(err, chime::Error::InvalidOption(ref o) if o.option() == "lease"));
    /// # Ok(()) }
    /// ```
    pub async fn start(self) -> Result<DurableTimers, Error> {
        let DurableBuilder { sched, store, handlers, config } = self;
        let mut named = HashMap::new();
        for (name, handler) in handlers {
            if name.is_empty() || name.len() > MAX_HANDLER_BYTES {
                let why = format!("`{name}` must be 1 to {MAX_HANDLER_BYTES} bytes");
                return Err(Error::invalid("handler", why));
            }
            if named.insert(name.clone(), handler).is_some() {
                return Err(Error::invalid("handler", format!("`{name}` is registered twice")));
            }
        }
        validate(&config)?;
        if sched.is_shut_down() {
            return Err(Error::Shutdown);
        }
        match tokio::time::timeout(config.store_timeout, store.prepare()).await {
            Ok(result) => result?,
            Err(_) => return Err(Error::store(store.backend(), "preparing the store timed out")),
        }
        let shared = Shared::new(&sched, store, named, config);
        super::runner::spawn(&sched, shared.clone());
        Ok(DurableTimers { shared })
    }
}

fn validate(config: &Config) -> Result<(), Error> {
    let in_range = |d: Duration| crate::clock::nanos(d).is_some_and(|n| n < i64::MAX as u64);
    if config.lease < Duration::from_millis(30) || !in_range(config.lease) {
        return Err(Error::invalid("lease", "must be at least 30 ms and within chime's range"));
    }
    config.retry.validate()?;
    if config.max_running == 0 {
        return Err(Error::invalid("max_running", "must be at least 1"));
    }
    if config.poll.is_zero() || !in_range(config.poll) {
        return Err(Error::invalid("poll", "must be more than zero and within chime's range"));
    }
    if !in_range(config.retention) {
        return Err(Error::invalid("retention", "exceeds chime's range"));
    }
    if config.store_timeout.is_zero() || !in_range(config.store_timeout) {
        return Err(Error::invalid("store_timeout", "must be more than zero and within chime's range"));
    }
    Ok(())
}
