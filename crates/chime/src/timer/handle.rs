//! [`Timer`]: the handle that owns a timer (Copas' and resty.timer's timer objects).

use std::time::Duration;

use std::sync::Arc;

use crate::driver::Driver;
use crate::error::Error;
use crate::id::TimerId;
use crate::record::CancelReason;

/// A timer owned by its handle: dropping the handle cancels the timer with
/// [`CancelReason::Dropped`], unless it was [detached](Self::detach). Made by
/// [`TimerBuilder::arm`](super::TimerBuilder::arm).
///
/// A one-shot that has run stays, idle, and can be armed again with [`arm`](Self::arm).
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// use std::time::Duration;
/// let sched = chime::Scheduler::start();
/// let timer = sched.timer(Duration::from_millis(10)).on_expire(|_| {}).arm()?;
/// sched.sleep(Duration::from_millis(10)).await;
/// assert_eq!((timer.count(), timer.is_armed()), (1, false));
/// timer.arm(Duration::from_millis(5))?;   // a fired one-shot can be armed again
/// assert_eq!(timer.remaining(), Some(Duration::from_millis(5)));
/// timer.cancel()?;
/// assert_eq!(timer.cancel(), Err(chime::Error::AlreadyCancelled));
/// # Ok(()) }
/// ```
#[must_use = "dropping a Timer cancels it; call .detach() to keep it running"]
pub struct Timer {
    /// The driver, not a scheduler handle: a timer handle alone lets the driver park, and arming it
    /// again starts the driver anew (the driver's rule 8).
    driver: Arc<Driver>,
    id: TimerId,
    detached: bool,
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timer")
            .field("id", &self.id)
            .field("detached", &self.detached)
            .finish_non_exhaustive()
    }
}

impl Timer {
    pub(crate) fn new(driver: Arc<Driver>, id: TimerId) -> Self {
        Timer { driver, id, detached: false }
    }

    /// The timer's id, valid for the [`Scheduler`](crate::Scheduler)'s id API too.
    pub fn id(&self) -> TimerId {
        self.id
    }

    /// Cancels the timer; the cancel callback runs (with [`CancelReason::User`]) if a run was still to
    /// come.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyCancelled`] if it was cancelled before (by this handle, by id, by a panic);
    /// [`Error::Shutdown`] after the scheduler shut down.
    pub fn cancel(&self) -> Result<(), Error> {
        match self.driver.cancel(self.id, CancelReason::User) {
            Err(Error::NotFound) => Err(Error::AlreadyCancelled),
            other => other,
        }
    }

    /// Re-arms the timer from now with interval (or delay) `interval`, keeping its other options: an
    /// armed timer restarts (its arm callback runs again, its cancel callback does not), a one-shot
    /// that has run runs again.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyCancelled`] for a cancelled timer; [`Error::InvalidOption`] (`interval`) for a
    /// zero interval on a recurring timer or one past chime's range; [`Error::Shutdown`].
    pub fn arm(&self, interval: Duration) -> Result<(), Error> {
        self.driver.rearm(self.id, interval)
    }

    /// Lets the timer run on without this handle (resty's `detached`); returns its id, with which
    /// [`Scheduler::cancel`](crate::Scheduler::cancel) still stops it. A one-shot that has already run is simply released.
    pub fn detach(mut self) -> TimerId {
        self.detached = true;
        self.driver.detach(self.id);
        self.id
    }

    /// Time until the next run; `None` when not armed (an idle one-shot, a cancelled timer, or during a
    /// one-shot's run).
    pub fn remaining(&self) -> Option<Duration> {
        let state = self.driver.timer_state(self.id).ok()?;
        let now = self.driver.time.now();
        state.deadline.map(|d| Duration::from_nanos(d.saturating_sub(now)))
    }

    /// The interval of a recurring timer, or the delay of a one-shot.
    pub fn interval(&self) -> Duration {
        self.driver.timer_state(self.id).map_or(Duration::ZERO, |s| Duration::from_nanos(s.interval))
    }

    /// Whether a run is scheduled.
    pub fn is_armed(&self) -> bool {
        self.driver.timer_state(self.id).is_ok_and(|s| s.deadline.is_some())
    }

    /// Whether the timer is gone (cancelled, or the scheduler shut down).
    pub fn is_cancelled(&self) -> bool {
        self.driver.timer_state(self.id).is_err()
    }

    /// Runs so far.
    pub fn count(&self) -> u64 {
        self.driver.timer_state(self.id).map_or(0, |s| s.count)
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if !self.detached {
            let _ = self.driver.cancel(self.id, CancelReason::Dropped);
        }
    }
}
