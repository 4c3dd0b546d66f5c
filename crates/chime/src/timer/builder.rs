//! [`TimerBuilder`]: the union of the seeds' timer options, validated when armed.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Timer;
use crate::clock::nanos;
use crate::cluster::{self, ClusterPlan, Coordinator, Misfire};
use crate::driver::Driver;
use crate::driver::spawned::spawn_runs;
use crate::error::Error;
use crate::id::TimerId;
use crate::record::{
    ArmFn, AsyncRun, CancelFn, CancelReason, Extras, Fire, Missed, Plan, Record, Run, SharedArmFn, draw,
};
use crate::scheduler::Scheduler;

/// Builds a timer; made by [`Scheduler::timer`]. Nothing is checked until [`arm`](Self::arm), which
/// refuses any invalid option or combination with [`Error::InvalidOption`] naming it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// use std::time::Duration;
/// use chime::{Missed, CancelReason};
/// let sched = chime::Scheduler::start();
/// let timer = sched
///     .timer(Duration::from_millis(100))
///     .recurring()
///     .immediate()
///     .jitter(Duration::from_millis(20))
///     .missed(Missed::Skip)
///     .on_arm(|| println!("armed"))
///     .on_expire(|fire| println!("run {} (missed {})", fire.count(), fire.missed()))
///     .on_cancel(|reason: CancelReason| println!("stopped: {reason}"))
///     .arm()?;
/// timer.cancel()?;
/// assert!(sched.timer(Duration::ZERO).recurring().on_expire(|_| {}).arm().is_err());
/// # Ok(()) }
/// ```
#[must_use = "a timer builder does nothing until armed"]
pub struct TimerBuilder<'a> {
    sched: &'a Scheduler,
    interval: Duration,
    recurring: bool,
    immediate: bool,
    first: Option<Duration>,
    jitter: Duration,
    missed: Missed,
    on_arm: Option<ArmFn>,
    expire: Option<Run>,
    on_cancel: Option<CancelFn>,
    cancel_on_panic: bool,
    cluster: ClusterPlan,
    conflict: Option<Error>,
}

impl std::fmt::Debug for TimerBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerBuilder")
            .field("interval", &self.interval)
            .field("recurring", &self.recurring)
            .field("immediate", &self.immediate)
            .field("first", &self.first)
            .field("jitter", &self.jitter)
            .field("missed", &self.missed)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
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
}

impl<'a> TimerBuilder<'a> {
    pub(crate) fn new(sched: &'a Scheduler, interval: Duration) -> Self {
        TimerBuilder {
            sched,
            interval,
            recurring: false,
            immediate: false,
            first: None,
            jitter: Duration::ZERO,
            missed: Missed::Skip,
            on_arm: None,
            expire: None,
            on_cancel: None,
            cancel_on_panic: false,
            cluster: ClusterPlan::default(),
            conflict: None,
        }
    }

    /// Repeat every interval, on a drift-free grid.
    pub fn recurring(mut self) -> Self {
        self.recurring = true;
        self
    }

    /// First run at once (requires [`recurring`](Self::recurring)); jitter then applies from the
    /// second run on.
    pub fn immediate(mut self) -> Self {
        self.immediate = true;
        self
    }

    /// TINN's `Delay`: the first run after `delay` instead of one interval (requires
    /// [`recurring`](Self::recurring); conflicts with [`immediate`](Self::immediate)).
    pub fn first(mut self, delay: Duration) -> Self {
        self.first = Some(delay);
        self
    }

    /// A random delay, uniform in `[0, jitter)`, added once to the first run (with
    /// [`immediate`](Self::immediate), to the second), shifting the whole grid. Spreads many timers.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// What a recurring timer does after a run overruns ticks (default [`Missed::Skip`]).
    pub fn missed(mut self, missed: Missed) -> Self {
        self.missed = missed;
        self
    }

    /// Copas' arm callback: runs each time the timer is armed ([`arm`](Self::arm) and
    /// [`Timer::arm`]).
    pub fn on_arm(mut self, on_arm: impl FnMut() + Send + 'static) -> Self {
        self.on_arm = Some(Box::new(on_arm));
        self
    }

    /// The expire callback: short and synchronous, it runs on the driver at each run.
    pub fn on_expire(mut self, on_expire: impl FnMut(&Fire) + Send + 'static) -> Self {
        if self.expire.is_some() {
            self.conflict = Some(Error::invalid("on_expire", "set twice (or with .on_expire_async)"));
        }
        self.expire = Some(Run::Sync(Box::new(on_expire)));
        self
    }

    /// An asynchronous expire callback: each run is spawned as a tokio task. Runs of one timer never
    /// overlap: a tick that comes while the previous run is still going is skipped and counted in the
    /// next run's [`Fire::missed`].
    ///
    /// # Panics
    ///
    /// Panics outside a tokio runtime (builders are used inside one).
    pub fn on_expire_async<F, Fut>(mut self, on_expire: F) -> Self
    where
        F: FnMut(Fire) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if self.expire.is_some() {
            self.conflict = Some(Error::invalid("on_expire_async", "set twice (or with .on_expire)"));
        }
        let mut on_expire = on_expire;
        let boxed: AsyncRun = Box::new(move |fire| Box::pin(on_expire(fire)));
        self.expire = Some(Run::Async(boxed));
        self
    }

    /// The cancel callback: runs once, with the reason, if the timer is cancelled while a run is
    /// still to come (armed, recurring, or due and not started yet; that run then does not happen).
    /// A one-shot cancelled during (or after) its only run has nothing left to cancel.
    pub fn on_cancel(mut self, on_cancel: impl FnOnce(CancelReason) + Send + 'static) -> Self {
        self.on_cancel = Some(Box::new(on_cancel));
        self
    }

    /// Cancel the timer (with [`CancelReason::Panicked`]) when its expire callback panics, instead of
    /// letting it run again.
    pub fn cancel_on_panic(mut self) -> Self {
        self.cancel_on_panic = true;
        self
    }

    /// resty.timer's `key_name`: makes this recurring timer cluster-wide. Each tick runs on exactly
    /// one member of all the schedulers (processes, hosts) whose timers share this key and
    /// [`coordinator`](Self::coordinator). See [`crate::cluster`].
    ///
    /// The returned [`Timer`] cancels, drops and shuts down like any other; what it schedules locally
    /// is the member's checks, so its [`remaining`](Timer::remaining) and [`count`](Timer::count)
    /// are those of the checks. The runs themselves carry [`Fire::tick`], [`Fire::fence`] and their
    /// own count. Its interval cannot be changed with [`Timer::arm`] (every member must agree).
    pub fn key(mut self, name: impl Into<String>) -> Self {
        self.cluster.key = Some(name.into());
        self
    }

    /// The store members of a [`key`](Self::key) claim ticks in: [`Sqlite`](crate::cluster::Sqlite),
    /// [`Local`](crate::cluster::Local), `Redis`, `Postgres`, or your own [`Coordinator`].
    pub fn coordinator(mut self, coordinator: impl Coordinator) -> Self {
        self.cluster.coordinator = Some(Arc::new(coordinator));
        self
    }

    /// How often a member checks whether a tick is due and unclaimed (resty's `sub_interval`,
    /// default: the interval): failover after a member dies takes at most `lease + sub_interval`.
    /// Requires [`key`](Self::key); at most the interval.
    pub fn sub_interval(mut self, sub_interval: Duration) -> Self {
        self.cluster.sub_interval = Some(sub_interval);
        self
    }

    /// How long a run's claim lasts unless renewed (async runs renew it every third of it); default:
    /// the interval. Requires [`key`](Self::key).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.cluster.lease = Some(lease);
        self
    }

    /// What happens to a tick no member could run on time (default: run it once if no more than
    /// 60 s late). Requires [`key`](Self::key).
    pub fn misfire(mut self, misfire: Misfire) -> Self {
        self.cluster.misfire = misfire;
        self
    }

    /// Arms the timer, owned by the returned handle (dropping it cancels the timer).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming the option: `immediate` or `first` or `missed` without
    /// `recurring`, `first` with `immediate`, a zero `interval` on a recurring timer, a missing
    /// `on_expire`, or an `interval`, `first` or `jitter` past chime's 584-year range.
    /// [`Error::Shutdown`] after shutdown.
    pub fn arm(self) -> Result<Timer, Error> {
        let driver = self.sched.driver().clone();
        let id = self.arm_with(true)?;
        Ok(Timer::new(driver, id))
    }

    /// Arms the timer detached: it runs until cancelled by id (resty's `detached`).
    ///
    /// # Errors
    ///
    /// As [`arm`](Self::arm).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let id = sched.timer(std::time::Duration::from_secs(1)).recurring().on_expire(|_| {}).arm_detached()?;
    /// sched.cancel(id)?;
    /// # Ok(()) }
    /// ```
    pub fn arm_detached(self) -> Result<TimerId, Error> {
        self.arm_with(false)
    }

    fn arm_with(self, owned: bool) -> Result<TimerId, Error> {
        if let Some(conflict) = self.conflict {
            return Err(conflict);
        }
        let driver = self.sched.driver();
        if driver.is_stopped() {
            return Err(Error::Shutdown);
        }
        let plan = Plan {
            interval: nanos(self.interval).ok_or_else(|| Error::out_of_range("interval"))?,
            recurring: self.recurring,
            immediate: self.immediate,
            first: self.first.map(|f| nanos(f).ok_or_else(|| Error::out_of_range("first"))).transpose()?,
            jitter: nanos(self.jitter).ok_or_else(|| Error::out_of_range("jitter"))?,
            missed: self.missed,
        };
        plan.validate()?;
        let run = self.expire.ok_or_else(|| {
            Error::invalid("on_expire", "a timer needs .on_expire(..) or .on_expire_async(..)")
        })?;
        let (plan, expire, on_cancel, fixed) = if self.cluster.is_unset() {
            let expire = match run {
                Run::Sync(expire) => expire,
                Run::Async(start) => spawn_runs(driver, start),
            };
            (plan, expire, self.on_cancel, false)
        } else {
            let beat =
                cluster::heartbeat(self.sched, self.cluster, plan, self.interval, run, self.on_cancel)?;
            (beat.plan, beat.expire, Some(beat.on_cancel), true)
        };
        let (deadline, grid) = plan.start(driver.time.now(), draw(plan.jitter))?;
        let on_arm = self.on_arm.map(|on_arm| first_arm(driver, on_arm));
        let extras = Extras {
            plan,
            grid,
            on_cancel,
            on_arm,
            cancel_on_panic: self.cancel_on_panic,
            owned,
            fixed,
            ..Extras::default()
        };
        driver.insert(deadline, Record { expire, extras: Some(Box::new(extras)) })
    }
}

/// Runs the arm callback for the first arming (Copas' order: before the timer is armed), and keeps
/// it for re-arms.
fn first_arm(driver: &Driver, mut on_arm: ArmFn) -> SharedArmFn {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(&mut on_arm)) {
        driver.report_panic(None, &*payload);
    }
    Arc::new(Mutex::new(on_arm))
}
