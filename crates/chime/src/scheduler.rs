//! The [`Scheduler`]: the handle every chime facility hangs from.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::Error;
use crate::clock::WallClock;
use crate::driver::{ClusterErrorHook, Inner, PanicHook, run::run};
use crate::timer::record::{Extras, Plan, Record};
use crate::timer::{CancelReason, Fire, PanicReport, TimerBuilder, TimerId};

/// A timer scheduler driven by one tokio task, following tokio's clock.
///
/// Cheap to clone; every clone drives the same wheels. Arm and cancel from any thread or from inside
/// callbacks.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// use std::time::Duration;
/// let sched = chime::Scheduler::start();
/// let id = sched.after(Duration::from_secs(1), |fire| println!("ran {}", fire.id()))?;
/// sched.reschedule(id, Duration::from_millis(10))?;
/// sched.sleep(Duration::from_millis(20)).await;
/// assert_eq!(sched.cancel(id), Err(chime::Error::NotFound), "it ran, and its id is gone");
/// let report = sched.shutdown().await;
/// assert_eq!(report.timers_cancelled, 0);
/// # Ok(()) }
/// ```
pub struct Scheduler {
    pub(crate) inner: Arc<Inner>,
}

impl Clone for Scheduler {
    fn clone(&self) -> Self {
        self.inner.handles.fetch_add(1, Ordering::Relaxed);
        Scheduler { inner: self.inner.clone() }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        if self.inner.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.wake_driver();
        }
    }
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").field("stopped", &self.inner.is_stopped()).finish_non_exhaustive()
    }
}

/// Configures a [`Scheduler`] before it starts.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sched = chime::Scheduler::builder()
///     .shards(4)
///     .on_panic(|report| eprintln!("timer {:?} panicked: {}", report.timer(), report.message()))
///     .start();
/// # drop(sched); }
/// ```
#[derive(Default)]
#[must_use = "a builder does nothing until started"]
pub struct SchedulerBuilder {
    shards: Option<usize>,
    on_panic: Option<PanicHook>,
    on_cluster_error: Option<ClusterErrorHook>,
    wall: WallClock,
}

/// A builder's settings, as the driver takes them.
pub(crate) struct Config {
    pub(crate) shards: usize,
    pub(crate) on_panic: Option<PanicHook>,
    pub(crate) on_cluster_error: Option<ClusterErrorHook>,
    pub(crate) wall: WallClock,
}

impl std::fmt::Debug for SchedulerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerBuilder").field("shards", &self.shards).finish_non_exhaustive()
    }
}

impl SchedulerBuilder {
    /// Number of shards (each a lock around a wheel; a thread always uses the same one), rounded up to
    /// a power of two. Default: twice the available parallelism, at most 64. Values below 1 count as 1.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards.clamp(1, 1024));
        self
    }

    /// Called with every callback panic (after it is logged through `tracing`), on the thread where it
    /// was caught. A panic inside the hook itself is logged and otherwise ignored.
    pub fn on_panic(mut self, hook: impl Fn(&PanicReport) + Send + Sync + 'static) -> Self {
        self.on_panic = Some(Arc::new(hook));
        self
    }

    /// Called with the key and the error each time a cluster timer's store fails, so the tick did not
    /// run (after it is logged through `tracing`).
    pub fn on_cluster_error(mut self, hook: impl Fn(&str, &Error) + Send + Sync + 'static) -> Self {
        self.on_cluster_error = Some(Arc::new(hook));
        self
    }

    /// Where wall-clock time comes from (cluster timers number their ticks on it); default
    /// [`WallClock::System`]. Tests under tokio's paused clock use [`WallClock::FollowTokio`].
    pub fn wall_clock(mut self, wall: WallClock) -> Self {
        self.wall = wall;
        self
    }

    /// Starts the scheduler: spawns its driver on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Panics outside a tokio runtime; [`try_start`](Self::try_start) returns an error instead.
    pub fn start(self) -> Scheduler {
        self.try_start().expect("chime::Scheduler::start must be called from inside a tokio runtime")
    }

    /// Starts the scheduler on the current tokio runtime, or fails outside one.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming `runtime` when called outside a tokio runtime.
    ///
    /// ```
    /// assert!(chime::Scheduler::builder().try_start().is_err(), "no runtime here");
    /// ```
    pub fn try_start(self) -> Result<Scheduler, Error> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::invalid("runtime", "a scheduler must start inside a tokio runtime"))?;
        let shards = self.shards.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            (cores * 2).min(64)
        });
        let config = Config {
            shards,
            on_panic: self.on_panic,
            on_cluster_error: self.on_cluster_error,
            wall: self.wall,
        };
        let inner = Arc::new(Inner::new(config, runtime.clone()));
        inner.handles.store(1, Ordering::Relaxed);
        runtime.spawn(run(inner.clone()));
        Ok(Scheduler { inner })
    }
}

/// What [`Scheduler::shutdown`] did.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// let sched = chime::Scheduler::start();
/// sched.recurrent(std::time::Duration::from_secs(1), |_| {})?;
/// assert_eq!(sched.shutdown().await.timers_cancelled, 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Pending timers cancelled with [`CancelReason::Shutdown`].
    pub timers_cancelled: usize,
    /// Workers closed and drained (event handlers included).
    pub workers_closed: usize,
    /// Items the workers left unprocessed: handed back through each [`Worker::join`](crate::Worker::join).
    pub items_unprocessed: usize,
    /// fd watches stopped.
    pub watches_stopped: usize,
}

impl Scheduler {
    /// Starts a scheduler with default settings on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Panics outside a tokio runtime (use [`SchedulerBuilder::try_start`] to get an error instead).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// # drop(sched); }
    /// ```
    pub fn start() -> Scheduler {
        SchedulerBuilder::default().start()
    }

    /// A builder for a scheduler with non-default settings.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sched = chime::Scheduler::builder().shards(1).start();
    /// # drop(sched); }
    /// ```
    pub fn builder() -> SchedulerBuilder {
        SchedulerBuilder::default()
    }

    /// A timer builder: `interval` is the delay of a one-shot, the period of a recurring timer.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// use std::time::Duration;
    /// let sched = chime::Scheduler::start();
    /// let timer = sched.timer(Duration::from_millis(100)).recurring().on_expire(|_| {}).arm()?;
    /// assert_eq!(timer.remaining(), Some(Duration::from_millis(100)));
    /// # Ok(()) }
    /// ```
    pub fn timer(&self, interval: Duration) -> TimerBuilder<'_> {
        TimerBuilder::new(self, interval)
    }

    /// Knot's `event.after`: runs `callback` once after `delay`, detached; returns its id.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] (`delay`) past chime's 584-year range; [`Error::Shutdown`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let id = sched.after(std::time::Duration::from_secs(60), |_| println!("Hi!"))?;
    /// sched.cancel(id)?;
    /// # Ok(()) }
    /// ```
    pub fn after(
        &self,
        delay: Duration,
        callback: impl FnMut(&Fire) + Send + 'static,
    ) -> Result<TimerId, Error> {
        let deadline = self.inner.deadline_in("delay", delay)?;
        self.inner.insert(deadline, Record { expire: Box::new(callback), extras: None })
    }

    /// Knot's `event.recurrent`: runs `callback` every `interval`, detached; returns its id.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] (`interval`) for a zero interval or one past chime's range;
    /// [`Error::Shutdown`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let every = sched.recurrent(std::time::Duration::from_secs(5), |fire| println!("Hi #{}", fire.count()))?;
    /// # sched.cancel(every)?;
    /// # Ok(()) }
    /// ```
    pub fn recurrent(
        &self,
        interval: Duration,
        callback: impl FnMut(&Fire) + Send + 'static,
    ) -> Result<TimerId, Error> {
        let interval_ns =
            crate::clock::nanos(interval).ok_or_else(|| Error::invalid("interval", "exceeds 584 years"))?;
        let plan = Plan { interval: interval_ns, recurring: true, ..Plan::default() };
        plan.validate()?;
        let (deadline, grid) = plan.start(self.inner.time.now(), 0)?;
        let extras = Extras { plan, grid, ..Extras::default() };
        self.inner.insert(deadline, Record { expire: Box::new(callback), extras: Some(Box::new(extras)) })
    }

    /// Knot's `event.reschedule`: the timer's next run is `delay` from now; a recurring timer then
    /// keeps its interval from there. Works from inside the timer's own callback (a one-shot is armed
    /// again) and on an idle one-shot [`Timer`](crate::Timer).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an id that is gone; [`Error::InvalidOption`] (`delay`) past chime's
    /// range; [`Error::Shutdown`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let every = sched.recurrent(std::time::Duration::from_secs(5), |_| {})?;
    /// sched.reschedule(every, std::time::Duration::from_secs(1))?;
    /// # Ok(()) }
    /// ```
    pub fn reschedule(&self, id: TimerId, delay: Duration) -> Result<(), Error> {
        self.inner.reschedule(id, delay)
    }

    /// Knot's `event.cancel`: cancels the timer; its cancel callback runs (with
    /// [`CancelReason::User`]) if a run was still to come.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an id that is gone (ids are never reused); [`Error::Shutdown`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let e = sched.after(std::time::Duration::from_secs(60), |_| {})?;
    /// sched.cancel(e)?;
    /// assert_eq!(sched.cancel(e), Err(chime::Error::NotFound));
    /// # Ok(()) }
    /// ```
    pub fn cancel(&self, id: TimerId) -> Result<(), Error> {
        self.inner.cancel(id, CancelReason::User)
    }

    /// Timers and sleeping tasks pending, over all shards.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// sched.after(std::time::Duration::from_secs(1), |_| {})?;
    /// assert_eq!(sched.pending(), 1);
    /// # Ok(()) }
    /// ```
    pub fn pending(&self) -> usize {
        self.inner.pending()
    }

    /// Whether [`shutdown`](Self::shutdown) has run (or the driver's runtime went away).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// assert!(!sched.is_shut_down());
    /// sched.shutdown().await;
    /// assert!(sched.is_shut_down());
    /// # }
    /// ```
    pub fn is_shut_down(&self) -> bool {
        self.inner.is_stopped()
    }

    /// Stops the scheduler, in this order: [`Lifecycle::Stopping`](crate::Lifecycle::Stopping) is
    /// dispatched and its handlers waited for; every pending timer's cancel callback runs with
    /// [`CancelReason::Shutdown`] and sleeping tasks wake; workers are closed and drained (what they
    /// did not process is handed back through their [`Worker::join`](crate::Worker::join)); fd watches
    /// stop; [`Lifecycle::Stopped`](crate::Lifecycle::Stopped) is dispatched and its handlers waited
    /// for; the driver exits. Later calls that arm or cancel return [`Error::Shutdown`]; a second
    /// shutdown reports nothing.
    ///
    /// Shutdown waits for every worker to end, as Copas' workers drain: a worker that keeps running
    /// after its `pop` returned `None` holds shutdown up (bound it with
    /// [`timeout`](Self::timeout) if that can happen).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// sched.after(std::time::Duration::from_secs(1), |_| {})?;
    /// assert_eq!(sched.shutdown().await.timers_cancelled, 1);
    /// assert_eq!(sched.after(std::time::Duration::from_secs(1), |_| {}), Err(chime::Error::Shutdown));
    /// # Ok(()) }
    /// ```
    pub async fn shutdown(&self) -> ShutdownReport {
        use crate::events::Lifecycle;
        if self.inner.begin_shutdown() {
            self.inner.driver_exited().await;
            return ShutdownReport::default();
        }
        let lifecycle = self.lifecycle();
        lifecycle.dispatch(Lifecycle::Stopping).wait().await;
        let timers_cancelled = self.inner.stop();
        let (workers, items_unprocessed) = self.inner.registry.close_workers(false).await;
        let watches_stopped = self.inner.registry.stop_watches();
        lifecycle.dispatch(Lifecycle::Stopped).wait().await;
        let (handlers, _) = self.inner.registry.close_workers(true).await;
        self.inner.driver_exited().await;
        ShutdownReport {
            timers_cancelled,
            workers_closed: workers + handlers,
            items_unprocessed,
            watches_stopped,
        }
    }
}
