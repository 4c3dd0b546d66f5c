//! [`TimerBuilder`]: the union of the seeds' timer options, validated when armed.

use std::time::Duration;

use crate::cluster::ClusterPlan;
use crate::error::Error;
use crate::record::{ArmFn, CancelFn, Missed, Run};
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
///
/// Its methods are `#[inline]`: the builder is moved through each call by value, and inlined
/// calls build it in place instead of copying its 136 bytes at every step (measured on the
/// builder's arm + drop, `chime-bench` workload 1).
#[must_use = "a timer builder does nothing until armed"]
pub struct TimerBuilder<'a> {
    pub(super) sched: &'a Scheduler,
    pub(super) interval: Duration,
    pub(super) recurring: bool,
    pub(super) immediate: bool,
    pub(super) first: Option<Duration>,
    pub(super) jitter: Duration,
    pub(super) missed: Missed,
    pub(super) on_arm: Option<ArmFn>,
    pub(super) expire: Option<Run>,
    pub(super) on_cancel: Option<CancelFn>,
    pub(super) cancel_on_panic: bool,
    /// Boxed, and only once a cluster option is set: local timers (nearly all) carry one word.
    pub(super) cluster: Option<Box<ClusterPlan>>,
    /// A second expire callback was set (an error reported at arming); boxed for the same reason.
    pub(super) conflict: Option<Box<Error>>,
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
    #[inline]
    pub fn timer(&self, interval: Duration) -> TimerBuilder<'_> {
        TimerBuilder::new(self, interval)
    }
}

impl<'a> TimerBuilder<'a> {
    /// The cluster options, made on first use.
    pub(super) fn cluster_plan(&mut self) -> &mut ClusterPlan {
        self.cluster.get_or_insert_with(Box::default)
    }

    #[inline]
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
            cluster: None,
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
    #[inline]
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
    #[inline]
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
    #[inline]
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
    #[inline]
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
    #[inline]
    pub fn missed(mut self, missed: Missed) -> Self {
        self.missed = missed;
        self
    }
}
