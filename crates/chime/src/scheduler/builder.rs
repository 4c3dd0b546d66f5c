//! [`SchedulerBuilder`]: a scheduler's settings, turned into the driver's [`Config`] at start.

use std::sync::Arc;

use super::registry::Registry;
use super::{Scheduler, Shared};
use crate::clock::{TimeSource, WallClock};
use crate::driver::{self, Config, Driver, Hooks};
use crate::error::Error;
use crate::unwind::PanicReport;

/// The most shards a scheduler may have.
const MAX_SHARDS: usize = 1024;

/// Configures a [`Scheduler`] before it starts.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// let panics = Arc::new(AtomicU32::new(0));
/// let counter = panics.clone();
/// let sched = chime::Scheduler::builder()
///     .shards(4)
///     .on_panic(move |report| {
///         eprintln!("timer {:?} panicked: {}", report.timer(), report.message());
///         counter.fetch_add(1, Ordering::SeqCst);
///     })
///     .start();
/// sched.after(std::time::Duration::from_millis(1), |_| panic!("boom"))?;
/// sched.sleep(std::time::Duration::from_millis(2)).await;
/// assert_eq!(panics.load(Ordering::SeqCst), 1);
/// # Ok(()) }
/// ```
#[derive(Default)]
#[must_use = "a builder does nothing until started"]
pub struct SchedulerBuilder {
    shards: Option<usize>,
    hooks: Hooks,
    wall: WallClock,
    source: TimeSource,
}

impl std::fmt::Debug for SchedulerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerBuilder").field("shards", &self.shards).finish_non_exhaustive()
    }
}

impl SchedulerBuilder {
    /// Number of shards (each a lock around a wheel; a thread always uses the same one), rounded up to
    /// a power of two. Default: twice the available parallelism, at most 64. Between 1 and 1024:
    /// another number is refused when the scheduler starts ([`Error::InvalidOption`] naming `shards`).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::builder().shards(1).start();
    /// assert!(sched.after(std::time::Duration::from_secs(1), |_| {}).is_ok());
    /// let refused = chime::Scheduler::builder().shards(0).try_start();
    /// assert!(matches!(refused, Err(chime::Error::InvalidOption(o)) if o.option() == "shards"));
    /// # Ok(()) }
    /// ```
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Called with every callback panic (after it is logged through `tracing`), on the thread where it
    /// was caught. A panic inside the hook itself is logged and otherwise ignored.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// use std::sync::{Arc, Mutex};
    /// let panics = Arc::new(Mutex::new(Vec::new()));
    /// let log = panics.clone();
    /// let sched = chime::Scheduler::builder()
    ///     .on_panic(move |report: &chime::PanicReport| log.lock().unwrap().push(report.message().to_string()))
    ///     .start();
    /// sched.after(std::time::Duration::from_millis(1), |_| panic!("boom"))?;
    /// sched.sleep(std::time::Duration::from_millis(2)).await;
    /// assert_eq!(*panics.lock().unwrap(), ["boom"]);
    /// # Ok(()) }
    /// ```
    pub fn on_panic(mut self, hook: impl Fn(&PanicReport) + Send + Sync + 'static) -> Self {
        self.hooks.on_panic = Some(Arc::new(hook));
        self
    }

    /// Called with the key and the error each time a cluster timer's store fails, so the tick did not
    /// run (after it is logged through `tracing`).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// use std::sync::{Arc, Mutex};
    /// use chime::cluster::{Claim, ClaimOutcome, Coordinator, Lease, StoreFuture};
    ///
    /// struct Down;   // a store that cannot be reached
    /// impl Coordinator for Down {
    ///     fn backend(&self) -> &'static str { "down" }
    ///     fn claim<'a>(&'a self, _: &'a Claim) -> StoreFuture<'a, ClaimOutcome> {
    ///         Box::pin(async { Err(chime::Error::store("down", "unreachable")) })
    ///     }
    ///     fn renew<'a>(&'a self, _: &'a Lease, _: i64) -> StoreFuture<'a, bool> { Box::pin(async { Ok(false) }) }
    ///     fn release<'a>(&'a self, _: &'a Lease) -> StoreFuture<'a, ()> { Box::pin(async { Ok(()) }) }
    /// }
    ///
    /// let errors = Arc::new(Mutex::new(Vec::new()));
    /// let log = errors.clone();
    /// let sched = chime::Scheduler::builder()
    ///     .wall_clock(chime::WallClock::FollowTokio)
    ///     .on_cluster_error(move |key, err| log.lock().unwrap().push(format!("{key}: {err}")))
    ///     .start();
    /// let _timer = sched.timer(ms(100)).recurring().key("report").coordinator(Down).on_expire(|_| {}).arm()?;
    /// sched.sleep(ms(150)).await;
    /// assert_eq!(errors.lock().unwrap()[0], "report: down store: unreachable");
    /// # Ok(()) }
    /// ```
    pub fn on_cluster_error(mut self, hook: impl Fn(&str, &Error) + Send + Sync + 'static) -> Self {
        self.hooks.on_cluster_error = Some(Arc::new(hook));
        self
    }

    /// Where wall-clock time comes from (cluster timers number their ticks on it); default
    /// [`WallClock::System`]. Tests under tokio's paused clock use [`WallClock::FollowTokio`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let secs = Duration::from_secs;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// let runs = Arc::new(AtomicU32::new(0));
    /// let counter = runs.clone();
    /// let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
    /// let _timer = sched
    ///     .timer(secs(1))
    ///     .recurring()
    ///     .key("report")
    ///     .coordinator(chime::cluster::Local::new())
    ///     .on_expire(move |_| { counter.fetch_add(1, Ordering::SeqCst); })
    ///     .arm()?;
    /// sched.sleep(secs(60)).await;   // a paused minute: the cluster's ticks follow it
    /// assert!(runs.load(Ordering::SeqCst) >= 59);
    /// # Ok(()) }
    /// ```
    pub fn wall_clock(mut self, wall: WallClock) -> Self {
        self.wall = wall;
        self
    }

    /// How the scheduler reads "now" when it arms (default [`TimeSource::Auto`]: the CPU's counter,
    /// or tokio's clock when it is paused at the start).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # use std::time::Duration;
    /// # let secs = Duration::from_secs;
    /// use chime::TimeSource;
    /// let sched = chime::Scheduler::builder().time_source(TimeSource::Tokio).start();
    /// tokio::time::pause();   // paused after the start: only TimeSource::Tokio follows it
    /// let (start, real) = (tokio::time::Instant::now(), std::time::Instant::now());
    /// sched.sleep(secs(3600)).await;   // an hour of paused time, at once
    /// assert!(start.elapsed() >= secs(3600) && real.elapsed() < secs(60));
    /// # }
    /// ```
    pub fn time_source(mut self, source: TimeSource) -> Self {
        self.source = source;
        self
    }

    /// Starts the scheduler: spawns its driver on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Panics outside a tokio runtime, or with a number of [`shards`](Self::shards) out of range;
    /// [`try_start`](Self::try_start) returns the error instead.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sched = chime::Scheduler::builder().shards(2).start();
    /// assert!(!sched.is_shut_down());
    /// # }
    /// ```
    pub fn start(self) -> Scheduler {
        self.try_start().unwrap_or_else(|err| panic!("chime::SchedulerBuilder::start: {err}"))
    }

    /// Starts the scheduler on the current tokio runtime, or fails outside one.
    ///
    /// # Errors
    ///
    /// [`Error::NoRuntime`] when called outside a tokio runtime; [`Error::InvalidOption`] (`shards`)
    /// for a number of [`shards`](Self::shards) out of range.
    ///
    /// # Examples
    ///
    /// ```
    /// let outside = chime::Scheduler::builder().try_start();
    /// assert!(matches!(outside, Err(chime::Error::NoRuntime)), "no runtime here");
    /// let runtime = tokio::runtime::Runtime::new().unwrap();
    /// let _entered = runtime.enter();
    /// assert!(chime::Scheduler::builder().try_start().is_ok());
    /// ```
    pub fn try_start(self) -> Result<Scheduler, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        if let Some(shards) = self.shards.filter(|n| !(1..=MAX_SHARDS).contains(n)) {
            return Err(Error::invalid(
                "shards",
                format!("must be between 1 and {MAX_SHARDS}, not {shards}"),
            ));
        }
        let shards = self.shards.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            (cores * 2).min(64)
        });
        let config = Config { shards, hooks: self.hooks, wall: self.wall, source: self.source };
        let driver = Arc::new(Driver::new(config, runtime.clone()));
        let run = driver::run::run(driver.clone());
        let shared = Arc::new(Shared { driver, registry: Registry::default() });
        // The lifecycle's first stages are announced when the driver first runs, so a handler
        // subscribed before the caller's first `.await` sees them.
        let announcer = Arc::downgrade(&shared);
        runtime.spawn(async move {
            if let Some(shared) = announcer.upgrade() {
                shared.registry.announce_start();
            }
            run.await;
        });
        Ok(Scheduler { shared })
    }
}
