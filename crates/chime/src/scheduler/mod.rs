//! The [`Scheduler`]: the handle every chime facility hangs from. It owns the driver (through which
//! it arms and cancels) and the [registry](registry) of what shutdown must reach; the facilities
//! above it (workers, events, watches, cluster timers, the timer builder) add their own methods to
//! it from their modules.

mod builder;
mod lifecycle;
pub(crate) mod registry;
mod shutdown;

pub use builder::SchedulerBuilder;
pub use lifecycle::Lifecycle;
pub use shutdown::ShutdownReport;

use std::sync::Arc;
use std::time::Duration;

use crate::clock::nanos;
use crate::driver::Driver;
use crate::error::Error;
use crate::id::TimerId;
use crate::record::{CancelReason, Extras, Fire, Plan, Record};
use registry::Registry;

/// A timer scheduler driven by one tokio task, following tokio's clock.
///
/// Cheap to clone; every clone drives the same wheels. Arm and cancel from any thread or from inside
/// callbacks.
///
/// # Examples
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
#[derive(Clone)]
pub struct Scheduler {
    pub(crate) shared: Arc<Shared>,
}

/// What every clone of a scheduler shares. Its strong count is the number of handles: when the last
/// one goes, the driver may park (its rule 8).
pub(crate) struct Shared {
    pub(crate) driver: Arc<Driver>,
    pub(crate) registry: Registry,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.driver.release_handles();
    }
}

impl Scheduler {
    /// The driver, through which timers are armed and cancelled.
    pub(crate) fn driver(&self) -> &Arc<Driver> {
        &self.shared.driver
    }
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").field("stopped", &self.driver().is_stopped()).finish_non_exhaustive()
    }
}

impl Scheduler {
    /// Starts a scheduler with default settings on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Panics outside a tokio runtime (use [`SchedulerBuilder::try_start`] to get an error instead).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// sched.after(ms(5), |_| println!("Hi!"))?;
    /// assert_eq!(sched.pending(), 1);
    /// # Ok(()) }
    /// ```
    pub fn start() -> Scheduler {
        SchedulerBuilder::default().start()
    }

    /// A builder for a scheduler with non-default settings.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let sched = chime::Scheduler::builder().shards(1).on_panic(|report| eprintln!("{}", report.message())).start();
    /// assert!(!sched.is_shut_down());
    /// # }
    /// ```
    pub fn builder() -> SchedulerBuilder {
        SchedulerBuilder::default()
    }

    /// Runs `callback` once after `delay`, detached; returns its id. The timer is gone once it has
    /// run (its id then answers [`Error::NotFound`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] (`delay`) past chime's 584-year range; [`Error::Shutdown`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let secs = Duration::from_secs;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// let sched = chime::Scheduler::start();
    /// let runs = Arc::new(AtomicU32::new(0));
    /// let counter = runs.clone();
    /// let id = sched.after(secs(60), move |_| { counter.fetch_add(1, Ordering::SeqCst); })?;
    /// sched.sleep(secs(60)).await;
    /// assert_eq!(runs.load(Ordering::SeqCst), 1);
    /// assert_eq!(sched.cancel(id), Err(chime::Error::NotFound), "it ran: gone");
    /// # Ok(()) }
    /// ```
    ///
    /// Knot's `event.after(1 * minute, function() print('Hi!') end)`.
    pub fn after(
        &self,
        delay: Duration,
        callback: impl FnMut(&Fire) + Send + 'static,
    ) -> Result<TimerId, Error> {
        let deadline = self.driver().deadline_in("delay", delay)?;
        self.driver().insert(deadline, Record { expire: Box::new(callback), extras: None })
    }

    /// Runs `callback` every `interval`, detached, on a drift-free grid; returns its id.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] (`interval`) for a zero interval or one past chime's range;
    /// [`Error::Shutdown`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let secs = Duration::from_secs;
    /// use std::sync::{Arc, Mutex};
    /// let sched = chime::Scheduler::start();
    /// let said = Arc::new(Mutex::new(Vec::new()));
    /// let log = said.clone();
    /// let every = sched.recurrent(secs(5), move |fire| log.lock().unwrap().push(format!("Hi #{}", fire.count())))?;
    /// sched.sleep(secs(11)).await;
    /// assert_eq!(*said.lock().unwrap(), ["Hi #1", "Hi #2"]);
    /// sched.cancel(every)?;
    /// # Ok(()) }
    /// ```
    ///
    /// Knot's `event.recurrent(5 * sec, function(e) ... end)`.
    pub fn recurrent(
        &self,
        interval: Duration,
        callback: impl FnMut(&Fire) + Send + 'static,
    ) -> Result<TimerId, Error> {
        let interval_ns = nanos(interval).ok_or_else(|| Error::out_of_range("interval"))?;
        let plan = Plan { interval: interval_ns, recurring: true, ..Plan::default() };
        plan.validate()?;
        let (deadline, grid) = plan.start(self.driver().time.arm_now(), 0)?;
        let extras = Extras { plan, grid, ..Extras::default() };
        self.driver().insert(deadline, Record { expire: Box::new(callback), extras: Some(Box::new(extras)) })
    }

    /// Sets the timer's next run `delay` from now; a recurring timer then keeps its interval from
    /// there. Works from inside the timer's own callback (a one-shot is armed again) and on an idle
    /// one-shot [`Timer`](crate::Timer).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an id that is gone; [`Error::InvalidOption`] (`delay`) past chime's
    /// range; [`Error::Shutdown`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let secs = Duration::from_secs;
    /// use std::sync::{Arc, Mutex};
    /// let sched = chime::Scheduler::start();
    /// let start = tokio::time::Instant::now();
    /// let runs = Arc::new(Mutex::new(Vec::new()));
    /// let log = runs.clone();
    /// let me = sched.clone();
    /// let mut interval = secs(60);
    /// sched.after(interval, move |fire| {
    ///     log.lock().unwrap().push(start.elapsed());
    ///     interval /= 2;   // halve the interval each time
    ///     me.reschedule(fire.id(), interval).unwrap();
    /// })?;
    /// sched.sleep(secs(105)).await;
    /// assert_eq!(*runs.lock().unwrap(), [secs(60), secs(90), secs(105)]);
    /// # Ok(()) }
    /// ```
    ///
    /// Knot's `event.reschedule(ev, interval)`, here its own example of halving the interval.
    pub fn reschedule(&self, id: TimerId, delay: Duration) -> Result<(), Error> {
        self.driver().reschedule(id, delay)
    }

    /// Cancels the timer; its cancel callback runs (with [`CancelReason::User`]) if a run was still to
    /// come.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an id that is gone (ids are never reused); [`Error::Shutdown`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let e = sched.after(std::time::Duration::from_secs(60), |_| println!("Hi!"))?;
    /// sched.cancel(e)?;
    /// assert_eq!(sched.pending(), 0);
    /// assert_eq!(sched.cancel(e), Err(chime::Error::NotFound));
    /// # Ok(()) }
    /// ```
    ///
    /// Knot's `event.cancel(e)`; unlike Knot's, a stale id can never reach a newer timer.
    pub fn cancel(&self, id: TimerId) -> Result<(), Error> {
        self.driver().cancel(id, CancelReason::User)
    }

    /// Timers and sleeping tasks pending, over all shards.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// sched.after(std::time::Duration::from_secs(1), |_| {})?;
    /// assert_eq!(sched.pending(), 1);
    /// # Ok(()) }
    /// ```
    pub fn pending(&self) -> usize {
        self.driver().pending()
    }

    /// Whether [`shutdown`](Self::shutdown) has run (or the driver's runtime went away).
    ///
    /// # Examples
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
        self.driver().is_stopped()
    }
}
