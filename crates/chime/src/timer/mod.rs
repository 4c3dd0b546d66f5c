//! Timers: the builder, the [`Timer`] handle, ids, and what a callback sees of each run.
//!
//! A timer is one-shot or recurring. Recurring deadlines lie on a grid, `anchor + k * interval`, so
//! slow callbacks never make a timer drift; [`Missed`] says what happens when a run overruns ticks.

mod builder;
mod handle;
pub(crate) mod record;
mod spawned;

pub use builder::TimerBuilder;
pub use handle::Timer;

use std::fmt;
use tokio::time::Instant;

use crate::wheel::Key;

/// The id of a timer. Ids are generational: once the timer is gone, its id answers
/// [`Error::NotFound`](crate::Error::NotFound) forever and can never reach a newer timer.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// let sched = chime::Scheduler::start();
/// let id = sched.after(std::time::Duration::from_secs(1), |_| {})?;
/// sched.cancel(id)?;
/// assert_eq!(sched.cancel(id), Err(chime::Error::NotFound));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId {
    pub(crate) shard: u32,
    pub(crate) key: Key,
}

impl fmt::Debug for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimerId({}:{}v{})", self.shard, self.key.index(), self.key.generation())
    }
}

impl fmt::Display for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timer {}:{}v{}", self.shard, self.key.index(), self.key.generation())
    }
}

/// One run of a timer, as its expire callback sees it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// use std::time::Duration;
/// let sched = chime::Scheduler::start();
/// let started = tokio::time::Instant::now();
/// sched.recurrent(Duration::from_millis(10), move |fire: &chime::Fire| {
///     assert_eq!(fire.scheduled(), started + Duration::from_millis(10) * fire.count() as u32);
///     assert_eq!(fire.missed(), 0);
///     assert_eq!(fire.fence(), None);
/// })?;
/// tokio::time::sleep(Duration::from_millis(35)).await;
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
    pub fn id(&self) -> TimerId {
        self.id
    }

    /// Runs so far, this one included (1 on the first run).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Ticks skipped before this run because an earlier run (or the process) overran them: always 0
    /// under [`Missed::Burst`] and [`Missed::Delay`], which skip nothing.
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// The deadline this run was due at (on tokio's clock). The run happens at or after it, never before.
    pub fn scheduled(&self) -> Instant {
        self.scheduled
    }

    /// The fencing token of a cluster-wide run (strictly increasing per key); `None` for local timers.
    pub fn fence(&self) -> Option<u64> {
        self.fence
    }

    /// The tick a cluster-wide run runs (`wall-clock ms / interval`, the same on every member);
    /// `None` for local timers.
    pub fn tick(&self) -> Option<u64> {
        self.tick
    }
}

/// Why a timer's cancel callback ran.
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
    /// [`Timer::cancel`] or [`Scheduler::cancel`](crate::Scheduler::cancel) was called.
    User,
    /// The owning [`Timer`] handle was dropped without [`Timer::detach`].
    Dropped,
    /// The scheduler shut down (or its runtime went away) while the timer was pending.
    Shutdown,
    /// The expire callback panicked and the timer was built with
    /// [`TimerBuilder::cancel_on_panic`].
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

/// A callback panic, as the scheduler's panic hook sees it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// use std::sync::{Arc, Mutex};
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let hook = seen.clone();
/// let sched = chime::Scheduler::builder()
///     .on_panic(move |report: &chime::PanicReport| hook.lock().unwrap().push(report.message().to_string()))
///     .start();
/// sched.after(std::time::Duration::from_millis(1), |_| panic!("boom"))?;
/// tokio::time::sleep(std::time::Duration::from_millis(2)).await;
/// assert_eq!(*seen.lock().unwrap(), vec!["boom".to_string()]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PanicReport {
    pub(crate) timer: Option<TimerId>,
    pub(crate) source: String,
    pub(crate) message: String,
}

impl PanicReport {
    /// The timer whose callback panicked, if the panic came from a timer.
    pub fn timer(&self) -> Option<TimerId> {
        self.timer
    }

    /// What panicked, in words: `timer 0:3v0`, `worker "name"`, `watch 4`, ...
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The panic's message (its `&str` or `String` payload, or a placeholder).
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn new(timer: Option<TimerId>, source: String, payload: &(dyn std::any::Any + Send)) -> Self {
        let message = crate::unwind::message(payload);
        PanicReport { timer, source, message }
    }
}
