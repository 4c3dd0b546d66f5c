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
/// # Examples
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
    /// # Examples
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

    /// Repeat every interval, on a drift-free grid: run `k` is due at `start + k * interval`,
    /// however long the runs take.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// let timer = sched.timer(ms(100)).recurring().on_expire(|_| {}).arm()?;
    /// sched.sleep(ms(350)).await;
    /// assert_eq!(timer.count(), 3);   // at 100, 200 and 300 ms
    /// # Ok(()) }
    /// ```
    ///
    /// Copas' `recurring` argument of `copas.newtimer(arm, expire, cancel, recurring)`, TINN's
    /// `Period`, resty.timer's `recurring = true`.
    pub fn recurring(mut self) -> Self {
        self.recurring = true;
        self
    }

    /// First run at once (requires [`recurring`](Self::recurring)); jitter then applies from the
    /// second run on.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// let timer = sched.timer(ms(100)).recurring().immediate().on_expire(|_| {}).arm()?;
    /// sched.sleep(ms(1)).await;
    /// assert_eq!(timer.count(), 1);   // ran at once
    /// sched.sleep(ms(100)).await;
    /// assert_eq!(timer.count(), 2);   // then on the grid: 100 ms
    /// let one_shot = sched.timer(ms(100)).immediate().on_expire(|_| {}).arm();
    /// assert!(matches!(one_shot, Err(chime::Error::InvalidOption(o)) if o.option() == "immediate"));
    /// # Ok(()) }
    /// ```
    ///
    /// resty.timer's `immediate = true`, which also requires `recurring`.
    pub fn immediate(mut self) -> Self {
        self.immediate = true;
        self
    }

    /// The first run after `delay` instead of one interval; the grid runs on from there (requires
    /// [`recurring`](Self::recurring); conflicts with [`immediate`](Self::immediate)).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// let timer = sched.timer(ms(300)).recurring().first(ms(1000)).on_expire(|_| {}).arm()?;
    /// assert_eq!(timer.remaining(), Some(ms(1000)));
    /// sched.sleep(ms(1650)).await;
    /// assert_eq!(timer.count(), 3);   // at 1000, 1300 and 1600 ms
    /// # Ok(()) }
    /// ```
    ///
    /// TINN's `Timer {Delay = 1000, Period = 300, TimerFunc = f}`: `Delay` is `first`, `Period` the
    /// interval.
    pub fn first(mut self, delay: Duration) -> Self {
        self.first = Some(delay);
        self
    }

    /// A random delay, uniform in `[0, jitter)`, added once to the first run (with
    /// [`immediate`](Self::immediate), to the second), shifting the whole grid. Spreads many timers.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// use std::sync::{Arc, Mutex};
    /// let runs = Arc::new(Mutex::new(Vec::new()));
    /// let log = runs.clone();
    /// let start = tokio::time::Instant::now();
    /// let _timer = sched
    ///     .timer(ms(100))
    ///     .recurring()
    ///     .jitter(ms(20))
    ///     .on_expire(move |fire| log.lock().unwrap().push(fire.scheduled() - start))
    ///     .arm()?;
    /// sched.sleep(ms(250)).await;
    /// let runs = runs.lock().unwrap();
    /// assert!(runs[0] >= ms(100) && runs[0] < ms(120));
    /// assert_eq!(runs[1] - runs[0], ms(100), "the grid is shifted, not each run");
    /// # Ok(()) }
    /// ```
    ///
    /// resty.timer's `jitter`.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// What a recurring timer does after a run overruns ticks (default [`Missed::Skip`]); requires
    /// [`recurring`](Self::recurring).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// use chime::Missed;
    /// let skip = sched.timer(ms(100)).recurring().on_expire(|_| {}).arm()?;   // Missed::Skip
    /// let burst = sched.timer(ms(100)).recurring().missed(Missed::Burst).on_expire(|_| {}).arm()?;
    /// tokio::time::advance(ms(350)).await;   // the process stalls through three ticks
    /// sched.sleep(ms(1)).await;
    /// assert_eq!(skip.count(), 1);    // once, for the latest tick (its Fire::missed() is 2)
    /// assert_eq!(burst.count(), 3);   // every tick, back to back
    /// # Ok(()) }
    /// ```
    ///
    /// Copas and TINN re-arm a timer once its callback has returned: that is [`Missed::Delay`].
    pub fn missed(mut self, missed: Missed) -> Self {
        self.missed = missed;
        self
    }

    /// A callback that runs each time the timer is armed ([`arm`](Self::arm) and [`Timer::arm`]),
    /// just before it is armed.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// let arms = Arc::new(AtomicU32::new(0));
    /// let counter = arms.clone();
    /// let timer = sched
    ///     .timer(ms(100))
    ///     .on_arm(move || { counter.fetch_add(1, Ordering::SeqCst); })
    ///     .on_expire(|_| {})
    ///     .arm()?;
    /// assert_eq!(arms.load(Ordering::SeqCst), 1);
    /// timer.arm(ms(50))?;
    /// assert_eq!(arms.load(Ordering::SeqCst), 2);
    /// # Ok(()) }
    /// ```
    ///
    /// Copas' `arm_cb` of `copas.newtimer(arm_cb, expire_cb, cancel_cb, recurring)`.
    pub fn on_arm(mut self, on_arm: impl FnMut() + Send + 'static) -> Self {
        self.on_arm = Some(Box::new(on_arm));
        self
    }

    /// The expire callback: short and synchronous, it runs on the driver at each run, with the
    /// run's [`Fire`]. A timer has exactly one expire callback: this one or
    /// [`on_expire_async`](Self::on_expire_async).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// use std::sync::{Arc, Mutex};
    /// let runs = Arc::new(Mutex::new(Vec::new()));
    /// let log = runs.clone();
    /// let _timer = sched
    ///     .timer(ms(10))
    ///     .recurring()
    ///     .on_expire(move |fire: &chime::Fire| log.lock().unwrap().push(fire.count()))
    ///     .arm()?;
    /// sched.sleep(ms(35)).await;
    /// assert_eq!(*runs.lock().unwrap(), [1, 2, 3]);
    /// assert!(sched.timer(ms(10)).on_expire(|_| {}).on_expire(|_| {}).arm().is_err(), "two callbacks");
    /// # Ok(()) }
    /// ```
    ///
    /// Copas' `expire_cb`, resty.timer's `expire`, TINN's `TimerFunc`.
    pub fn on_expire(mut self, on_expire: impl FnMut(&Fire) + Send + 'static) -> Self {
        if self.expire.is_some() {
            self.conflict = Some(Error::invalid("on_expire", "set twice (or with .on_expire_async)"));
        }
        self.expire = Some(Run::Sync(Box::new(on_expire)));
        self
    }

    /// An asynchronous expire callback: each run is spawned as a tokio task, by the driver when the
    /// run is due, on the runtime the scheduler was started on; so this builder works from any thread,
    /// inside a runtime or not. Runs of one timer never overlap: a tick that comes while the previous
    /// run is still going is skipped and counted in the next run's [`Fire::missed`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// use std::sync::{Arc, Mutex};
    /// let missed = Arc::new(Mutex::new(Vec::new()));
    /// let log = missed.clone();
    /// let _timer = sched
    ///     .timer(ms(10))
    ///     .recurring()
    ///     .on_expire_async(move |fire: chime::Fire| {
    ///         let log = log.clone();
    ///         async move {
    ///             log.lock().unwrap().push(fire.missed());
    ///             tokio::time::sleep(ms(25)).await;   // a slow run
    ///         }
    ///     })
    ///     .arm()?;
    /// sched.sleep(ms(75)).await;
    /// assert_eq!(*missed.lock().unwrap(), [0, 2, 2]);   // runs at 10, 40 and 70 ms, never two at once
    /// # Ok(()) }
    /// ```
    ///
    /// The seeds' callbacks are coroutines that may yield; an async callback is their Rust form.
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
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// use std::sync::{Arc, Mutex};
    /// use chime::CancelReason;
    /// let reasons = Arc::new(Mutex::new(Vec::new()));
    /// let (log, log2) = (reasons.clone(), reasons.clone());
    /// let pending = sched.timer(ms(100)).on_expire(|_| {}).on_cancel(move |r| log.lock().unwrap().push(r)).arm()?;
    /// let done = sched.timer(ms(1)).on_expire(|_| {}).on_cancel(move |r| log2.lock().unwrap().push(r)).arm()?;
    /// sched.sleep(ms(2)).await;   // `done` has run its only run
    /// pending.cancel()?;
    /// done.cancel()?;
    /// assert_eq!(*reasons.lock().unwrap(), [CancelReason::User]);
    /// # Ok(()) }
    /// ```
    ///
    /// Copas' `cancel_cb`; resty.timer's `cancel` callback, `function(reason, ...)`.
    pub fn on_cancel(mut self, on_cancel: impl FnOnce(CancelReason) + Send + 'static) -> Self {
        self.on_cancel = Some(Box::new(on_cancel));
        self
    }

    /// Cancel the timer (with [`CancelReason::Panicked`]) when its expire callback panics, instead of
    /// letting it run again. Either way the panic is caught and reported to the scheduler's
    /// [panic hook](crate::SchedulerBuilder::on_panic).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// use std::sync::{Arc, Mutex};
    /// let reasons = Arc::new(Mutex::new(Vec::new()));
    /// let log = reasons.clone();
    /// let timer = sched
    ///     .timer(ms(10))
    ///     .recurring()
    ///     .cancel_on_panic()
    ///     .on_expire(|_| panic!("bad tick"))
    ///     .on_cancel(move |r| log.lock().unwrap().push(r))
    ///     .arm()?;
    /// sched.sleep(ms(35)).await;
    /// assert!(timer.is_cancelled());
    /// assert_eq!(*reasons.lock().unwrap(), [chime::CancelReason::Panicked]);
    /// # Ok(()) }
    /// ```
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
    ///
    /// # Examples
    ///
    /// Two members (here two schedulers in one process) share a key: each tick runs on one of them.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// use std::sync::{Arc, Mutex};
    /// use chime::{cluster::Local, Scheduler, WallClock};
    /// let store = Local::new();
    /// let ticks = Arc::new(Mutex::new(Vec::new()));
    /// let mut members = Vec::new();
    /// for _ in 0..2 {
    ///     let sched = Scheduler::builder().wall_clock(WallClock::FollowTokio).start();
    ///     let log = ticks.clone();
    ///     let timer = sched
    ///         .timer(ms(100))
    ///         .recurring()
    ///         .key("cache-cleanup")
    ///         .coordinator(store.clone())
    ///         .on_expire(move |fire| log.lock().unwrap().push(fire.tick().unwrap()))
    ///         .arm()?;
    ///     members.push((sched, timer));
    /// }
    /// tokio::time::sleep(ms(1000)).await;
    /// let mut ticks = ticks.lock().unwrap().clone();
    /// let runs = ticks.len();
    /// ticks.dedup();
    /// assert_eq!(ticks.len(), runs, "no tick ran twice");
    /// assert!(runs >= 9);
    /// # Ok(()) }
    /// ```
    ///
    /// resty.timer's `key_name`, with which "the timer will only be executed in a single worker".
    pub fn key(mut self, name: impl Into<String>) -> Self {
        self.cluster.key = Some(name.into());
        self
    }

    /// The store members of a [`key`](Self::key) claim ticks in: [`Sqlite`](crate::cluster::Sqlite),
    /// [`Local`](crate::cluster::Local), `Redis`, `Postgres`, or your own [`Coordinator`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// use chime::{cluster::Local, Scheduler, WallClock};
    /// let store = Local::new();
    /// let sched = Scheduler::builder().wall_clock(WallClock::FollowTokio).start();
    /// let _timer = sched.timer(ms(100)).recurring().key("report").coordinator(store.clone()).on_expire(|_| {}).arm()?;
    /// sched.sleep(ms(250)).await;
    /// assert!(store.row("report").is_some_and(|row| row.fence >= 2), "ticks were claimed in the store");
    /// let no_key = sched.timer(ms(100)).recurring().coordinator(store).on_expire(|_| {}).arm();
    /// assert!(matches!(no_key, Err(chime::Error::InvalidOption(o)) if o.option() == "key"));
    /// # Ok(()) }
    /// ```
    ///
    /// resty.timer's `shm_name`: where the workers that share a `key_name` meet.
    pub fn coordinator(mut self, coordinator: impl Coordinator) -> Self {
        self.cluster.coordinator = Some(Arc::new(coordinator));
        self
    }

    /// How often a member checks whether a tick is due and unclaimed (resty's `sub_interval`,
    /// default: the interval): failover after a member dies takes at most `lease + sub_interval`.
    /// Requires [`key`](Self::key); at most the interval.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// use chime::{cluster::Local, Scheduler, WallClock};
    /// let sched = Scheduler::builder().wall_clock(WallClock::FollowTokio).start();
    /// let checks = sched
    ///     .timer(ms(1000))
    ///     .recurring()
    ///     .key("report")
    ///     .coordinator(Local::new())
    ///     .sub_interval(ms(250))
    ///     .on_expire(|_| {})
    ///     .arm()?;
    /// assert!(checks.remaining().unwrap() <= ms(250), "the member checks every 250 ms");
    /// let too_long = sched.timer(ms(1000)).recurring().key("k").coordinator(Local::new()).sub_interval(ms(2000));
    /// assert!(too_long.on_expire(|_| {}).arm().is_err());
    /// # Ok(()) }
    /// ```
    ///
    /// resty.timer's `sub_interval`.
    pub fn sub_interval(mut self, sub_interval: Duration) -> Self {
        self.cluster.sub_interval = Some(sub_interval);
        self
    }

    /// How long a run's claim lasts unless renewed (async runs renew it every third of it); default:
    /// the interval. Requires [`key`](Self::key).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// use chime::{cluster::Local, Scheduler, WallClock};
    /// let store = Local::new();
    /// let sched = Scheduler::builder().wall_clock(WallClock::FollowTokio).start();
    /// let _timer = sched
    ///     .timer(ms(100))
    ///     .recurring()
    ///     .key("report")
    ///     .coordinator(store.clone())
    ///     .lease(ms(5000))
    ///     .on_expire_async(|_| std::future::pending())   // a run that never ends, renewing its lease
    ///     .arm()?;
    /// sched.sleep(ms(1000)).await;
    /// assert_eq!(store.row("report").unwrap().fence, 1, "no later tick while the run holds the lease");
    /// let local = sched.timer(ms(100)).recurring().lease(ms(5000)).on_expire(|_| {}).arm();
    /// assert!(matches!(local, Err(chime::Error::InvalidOption(o)) if o.option() == "lease"));
    /// # Ok(()) }
    /// ```
    pub fn lease(mut self, lease: Duration) -> Self {
        self.cluster.lease = Some(lease);
        self
    }

    /// What happens to a tick no member could run on time (default: run it once if no more than
    /// 60 s late). Requires [`key`](Self::key).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// use chime::cluster::{Local, Misfire};
    /// use chime::{Scheduler, WallClock};
    /// let sched = Scheduler::builder().wall_clock(WallClock::FollowTokio).start();
    /// let strict = sched
    ///     .timer(ms(60_000))
    ///     .recurring()
    ///     .key("hourly-report")
    ///     .coordinator(Local::new())
    ///     .misfire(Misfire::Skip)   // a tick nobody ran on time is not run late
    ///     .on_expire(|_| {})
    ///     .arm();
    /// assert!(strict.is_ok());
    /// let local = sched.timer(ms(100)).recurring().misfire(Misfire::Skip).on_expire(|_| {}).arm();
    /// assert!(matches!(local, Err(chime::Error::InvalidOption(o)) if o.option() == "misfire"));
    /// # Ok(()) }
    /// ```
    pub fn misfire(mut self, misfire: Misfire) -> Self {
        self.cluster.misfire = misfire;
        self
    }

    /// Arms the timer, owned by the returned handle (dropping it cancels the timer).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming the option: `immediate`, `first` or `missed` without
    /// `recurring`; `first` with `immediate`; a zero `interval` on a recurring timer; no expire
    /// callback (`on_expire`), or two (`on_expire`, `on_expire_async`); an `interval`, `first` or
    /// `jitter` past chime's 584-year range. For a cluster timer: a [`key`](Self::key) without a
    /// [`coordinator`](Self::coordinator) (`coordinator`) or the reverse (`key`); `sub_interval`,
    /// `lease` or `misfire` without a key; a key on a one-shot (`key`); an `interval`,
    /// `sub_interval` or `lease` under 1 ms; a `sub_interval` over the interval; `jitter`, `first`,
    /// or a `missed` policy other than [`Missed::Skip`].
    ///
    /// [`Error::Shutdown`] after shutdown.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// let timer = sched.timer(ms(100)).on_expire(|_| {}).arm()?;
    /// assert!(timer.is_armed());
    /// sched.sleep(ms(100)).await;
    /// assert_eq!(timer.count(), 1);
    /// let err = sched.timer(ms(100)).arm().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid option `on_expire`: a timer needs .on_expire(..) or .on_expire_async(..)");
    /// # Ok(()) }
    /// ```
    ///
    /// Copas' `copas.newtimer(..):arm(interval)`; resty.timer's `resty_timer(opts)`, which answers
    /// `nil, err` for bad options where chime answers an error naming the option.
    pub fn arm(self) -> Result<Timer, Error> {
        let driver = self.sched.driver().clone();
        let id = self.arm_with(true)?;
        Ok(Timer::new(driver, id))
    }

    /// Arms the timer detached: no handle owns it; it runs until cancelled by id (a detached
    /// one-shot is gone once it has run).
    ///
    /// # Errors
    ///
    /// As [`arm`](Self::arm).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// let id = sched.timer(ms(1000)).recurring().on_expire(|_| {}).arm_detached()?;
    /// sched.sleep(ms(2500)).await;
    /// assert_eq!(sched.pending(), 1, "still running, with no handle");
    /// sched.cancel(id)?;
    /// assert_eq!(sched.pending(), 0);
    /// # Ok(()) }
    /// ```
    ///
    /// resty.timer's `detached = true`.
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
        let (deadline, grid) = plan.start(driver.time.arm_now(), draw(plan.jitter))?;
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
