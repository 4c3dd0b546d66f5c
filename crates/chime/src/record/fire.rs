//! What a callback sees: one run ([`Fire`]), why a timer was cancelled ([`CancelReason`]), and what a
//! recurring timer does with ticks it overran ([`Missed`]).

use std::fmt;

use tokio::time::Instant;

use crate::id::TimerId;

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
