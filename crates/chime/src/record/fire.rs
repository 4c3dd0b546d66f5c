//! What a callback sees: one run ([`Fire`]), why a timer was cancelled ([`CancelReason`]), and what a
//! recurring timer does with ticks it overran ([`Missed`]).

use std::fmt;

use tokio::time::Instant;

use crate::id::TimerId;

/// One run of a timer, as its expire callback sees it.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// let sched = chime::Scheduler::start();
/// let start = tokio::time::Instant::now();
/// let runs = Arc::new(Mutex::new(Vec::new()));
/// let log = runs.clone();
/// sched.recurrent(Duration::from_millis(10), move |fire: &chime::Fire| {
///     log.lock().unwrap().push((fire.count(), fire.scheduled() - start, fire.missed(), fire.fence()));
/// })?;
/// sched.sleep(Duration::from_millis(25)).await;
/// let ms = Duration::from_millis;
/// assert_eq!(*runs.lock().unwrap(), [(1, ms(10), 0, None), (2, ms(20), 0, None)]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fire {
    pub(crate) id: TimerId,
    pub(crate) count: u64,
    pub(crate) missed: u64,
    pub(crate) scheduled: Instant,
    pub(crate) fence: Option<u64>,
    pub(crate) tick: Option<u64>,
}

impl Fire {
    /// The timer's id (pass it to [`Scheduler::cancel`](crate::Scheduler::cancel) or
    /// [`Scheduler::reschedule`](crate::Scheduler::reschedule) from inside the callback).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let id = sched.after(ms(10), move |fire: &chime::Fire| { let _ = tx.send(fire.id()); })?;
    /// assert_eq!(rx.recv().await, Some(id));
    /// # Ok(()) }
    /// ```
    ///
    /// Knot passes the event itself as the callback's first parameter: `function(ev) ... end`.
    pub fn id(&self) -> TimerId {
        self.id
    }

    /// Runs so far, this one included (1 on the first run).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// use std::sync::{Arc, Mutex};
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let _timer = sched.timer(ms(10)).recurring().on_expire(move |fire| log.lock().unwrap().push(fire.count())).arm()?;
    /// sched.sleep(ms(30)).await;
    /// assert_eq!(*seen.lock().unwrap(), [1, 2, 3]);
    /// # Ok(()) }
    /// ```
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Ticks skipped before this run because an earlier run (or the process) overran them: always 0
    /// under [`Missed::Burst`] and [`Missed::Delay`], which skip nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// use std::sync::{Arc, Mutex};
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let _timer = sched.timer(ms(100)).recurring().on_expire(move |fire| log.lock().unwrap().push(fire.missed())).arm()?;
    /// tokio::time::advance(ms(350)).await;   // the process stalls through ticks 100, 200 and 300
    /// sched.sleep(ms(100)).await;
    /// assert_eq!(*seen.lock().unwrap(), [2, 0], "one run for three ticks, then on time");
    /// # Ok(()) }
    /// ```
    ///
    /// Ratchet's timerfd tells "how many ticks of the timer have elapsed" in the same way, from
    /// [`Ticker::read`](crate::Ticker::read).
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// The deadline this run was due at (on tokio's clock). The run happens at or after it, never before.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// use std::sync::{Arc, Mutex};
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let start = tokio::time::Instant::now();
    /// let _timer = sched
    ///     .timer(ms(100))
    ///     .recurring()
    ///     .on_expire(move |fire| log.lock().unwrap().push((fire.scheduled() - start, start.elapsed())))
    ///     .arm()?;
    /// tokio::time::advance(ms(350)).await;   // a stall: the run is late
    /// sched.sleep(ms(1)).await;
    /// assert_eq!(*seen.lock().unwrap(), [(ms(300), ms(350))], "due at 300 ms, ran at 350 ms");
    /// # Ok(()) }
    /// ```
    pub fn scheduled(&self) -> Instant {
        self.scheduled
    }

    /// The fencing token of a cluster-wide run (strictly increasing per key); `None` for local timers.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
    /// use std::sync::{Arc, Mutex};
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let local = Arc::new(Mutex::new(None));
    /// let local_log = local.clone();
    /// sched.after(ms(1), move |fire| *local_log.lock().unwrap() = Some(fire.fence()))?;
    /// let _cluster = sched
    ///     .timer(ms(100))
    ///     .recurring()
    ///     .key("report")
    ///     .coordinator(chime::cluster::Local::new())
    ///     .on_expire(move |fire| log.lock().unwrap().push(fire.fence()))
    ///     .arm()?;
    /// sched.sleep(ms(350)).await;
    /// assert_eq!(*local.lock().unwrap(), Some(None), "a local timer has no fence");
    /// assert_eq!(seen.lock().unwrap()[..3], [Some(1), Some(2), Some(3)]);
    /// # Ok(()) }
    /// ```
    pub fn fence(&self) -> Option<u64> {
        self.fence
    }

    /// The tick a cluster-wide run runs (`wall-clock ms / interval`, the same on every member);
    /// `None` for local timers.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::builder().wall_clock(chime::WallClock::FollowTokio).start();
    /// use std::sync::{Arc, Mutex};
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let _cluster = sched
    ///     .timer(ms(100))
    ///     .recurring()
    ///     .key("report")
    ///     .coordinator(chime::cluster::Local::new())
    ///     .on_expire(move |fire| log.lock().unwrap().push(fire.tick().unwrap()))
    ///     .arm()?;
    /// sched.sleep(ms(350)).await;
    /// let ticks = seen.lock().unwrap();
    /// assert!(ticks.len() >= 3 && ticks.windows(2).all(|t| t[1] == t[0] + 1), "consecutive ticks: {ticks:?}");
    /// # Ok(()) }
    /// ```
    pub fn tick(&self) -> Option<u64> {
        self.tick
    }
}

/// Why a timer's cancel callback ran.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// use std::sync::{Arc, Mutex};
/// let sched = chime::Scheduler::start();
/// let why = Arc::new(Mutex::new(None));
/// let seen = why.clone();
/// let timer = sched.timer(std::time::Duration::from_secs(1))
///     .on_expire(|_| {})
///     .on_cancel(move |reason| *seen.lock().unwrap() = Some(reason))
///     .arm()?;
/// drop(timer);
/// assert_eq!(*why.lock().unwrap(), Some(chime::CancelReason::Dropped));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CancelReason {
    /// [`Timer::cancel`](crate::Timer::cancel) or [`Scheduler::cancel`](crate::Scheduler::cancel) was called.
    User,
    /// The owning [`Timer`](crate::Timer) handle was dropped without [`Timer::detach`](crate::Timer::detach).
    Dropped,
    /// The scheduler shut down (or its runtime went away) while the timer was pending.
    Shutdown,
    /// The expire callback panicked and the timer was built with
    /// [`TimerBuilder::cancel_on_panic`](crate::TimerBuilder::cancel_on_panic).
    Panicked,
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CancelReason::User => "cancelled by the user",
            CancelReason::Dropped => "its handle was dropped",
            CancelReason::Shutdown => "the scheduler shut down",
            CancelReason::Panicked => "its callback panicked",
        })
    }
}

/// What a recurring timer does when a run overruns one or more ticks of its grid.
///
/// # Examples
///
/// ```
/// use chime::Missed;
/// assert_eq!(Missed::default(), Missed::Skip);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Missed {
    /// Run once at once for the latest missed tick, report the skipped ones in [`Fire::missed`], and
    /// continue on the grid.
    #[default]
    Skip,
    /// Run every missed tick, back to back, then continue on the grid.
    Burst,
    /// Forget the grid: the next run is one interval after the previous run ended (Copas and TINN).
    Delay,
}
