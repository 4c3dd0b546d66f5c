//! The timer builder's cluster options (resty.timer's `key_name`, `shm_name` and `sub_interval`,
//! made safe): which store, how often to check, how long a lease lasts, what a misfire does.

use std::sync::Arc;
use std::time::Duration;

use super::TimerBuilder;
use crate::cluster::{Coordinator, Misfire};

impl TimerBuilder<'_> {
    /// resty.timer's `key_name`: makes this recurring timer cluster-wide. Each tick runs on exactly
    /// one member of all the schedulers (processes, hosts) whose timers share this key and
    /// [`coordinator`](Self::coordinator). See [`crate::cluster`].
    ///
    /// The returned [`Timer`](crate::Timer) cancels, drops and shuts down like any other; what it schedules locally
    /// is the member's checks, so its [`remaining`](crate::Timer::remaining) and [`count`](crate::Timer::count)
    /// are those of the checks. The runs themselves carry [`Fire::tick`](crate::Fire::tick)(crate::Fire::tick), [`Fire::fence`](crate::Fire::fence)(crate::Fire::fence) and their
    /// own count. Its interval cannot be changed with [`Timer::arm`](crate::Timer::arm)(crate::Timer::arm) (every member must agree).
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
        self.cluster_plan().key = Some(name.into());
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
        self.cluster_plan().coordinator = Some(Arc::new(coordinator));
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
        self.cluster_plan().sub_interval = Some(sub_interval);
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
        self.cluster_plan().lease = Some(lease);
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
        self.cluster_plan().misfire = misfire;
        self
    }
}
