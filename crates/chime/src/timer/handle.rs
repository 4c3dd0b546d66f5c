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
/// # Examples
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
    /// The interval it was built with: an owned one-shot's record does not keep it (see
    /// [`Owned`](crate::record::Owned)).
    interval: Duration,
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
    pub(crate) fn new(driver: Arc<Driver>, id: TimerId, interval: Duration) -> Self {
        Timer { driver, id, interval, detached: false }
    }

    /// The timer's id, valid for the [`Scheduler`](crate::Scheduler)'s id API too.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// let timer = sched.timer(ms(100)).on_expire(|_| {}).arm()?;
    /// sched.reschedule(timer.id(), ms(5))?;
    /// assert_eq!(timer.remaining(), Some(ms(5)));
    /// # Ok(()) }
    /// ```
    ///
    /// The id is what Knot's `event.after` returns, here generational: it never names another timer.
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
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// let timer = sched.timer(ms(100)).on_expire(|_| {}).arm()?;
    /// timer.cancel()?;
    /// assert!(timer.is_cancelled());
    /// assert_eq!(timer.cancel(), Err(chime::Error::AlreadyCancelled));
    /// # Ok(()) }
    /// ```
    ///
    /// Copas' and resty.timer's `t:cancel()`; resty.timer also answers a second cancel with
    /// `nil, "already cancelled"`.
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
    /// zero interval on a recurring timer, one past chime's range, or any new interval on a cluster
    /// timer (its grid is shared by every member); [`Error::Shutdown`] after the scheduler shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// let timer = sched.timer(ms(100)).on_expire(|_| {}).arm()?;
    /// sched.sleep(ms(60)).await;
    /// timer.arm(ms(100))?;   // restarts from now
    /// assert_eq!(timer.remaining(), Some(ms(100)));
    /// sched.sleep(ms(100)).await;
    /// assert_eq!(timer.count(), 1);
    /// timer.arm(ms(30))?;    // a one-shot that has run can run again
    /// assert_eq!(timer.remaining(), Some(ms(30)));
    /// # Ok(()) }
    /// ```
    ///
    /// Copas' `t:arm(interval)`.
    pub fn arm(&self, interval: Duration) -> Result<(), Error> {
        self.driver.rearm(self.id, interval)
    }

    /// Lets the timer run on without this handle (resty's `detached`); returns its id, with which
    /// [`Scheduler::cancel`](crate::Scheduler::cancel) still stops it. A one-shot that has already run is simply released.
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
    /// let runs = Arc::new(AtomicU32::new(0));
    /// let counter = runs.clone();
    /// let timer = sched.timer(ms(10)).recurring().on_expire(move |_| { counter.fetch_add(1, Ordering::SeqCst); }).arm()?;
    /// let id = timer.detach();
    /// sched.sleep(ms(25)).await;
    /// assert_eq!(runs.load(Ordering::SeqCst), 2, "it runs on without its handle");
    /// sched.cancel(id)?;
    /// # Ok(()) }
    /// ```
    ///
    /// resty.timer's `detached = true`, decided after arming.
    pub fn detach(mut self) -> TimerId {
        self.detached = true;
        self.driver.detach(self.id);
        self.id
    }

    /// Time until the next run; `None` when not armed (an idle one-shot, a cancelled timer, or during a
    /// one-shot's run).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// let timer = sched.timer(ms(100)).on_expire(|_| {}).arm()?;
    /// sched.sleep(ms(30)).await;
    /// assert_eq!(timer.remaining(), Some(ms(70)));
    /// sched.sleep(ms(70)).await;
    /// assert_eq!(timer.remaining(), None, "it has run: an idle one-shot");
    /// # Ok(()) }
    /// ```
    pub fn remaining(&self) -> Option<Duration> {
        let state = self.driver.timer_state(self.id).ok()?;
        let now = self.driver.time.now();
        state.deadline.map(|d| Duration::from_nanos(d.saturating_sub(now)))
    }

    /// The interval of a recurring timer, or the delay of a one-shot; zero once the timer is gone
    /// (cancelled, or the scheduler shut down).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// let timer = sched.timer(ms(100)).recurring().on_expire(|_| {}).arm()?;
    /// assert_eq!(timer.interval(), ms(100));
    /// timer.arm(ms(250))?;
    /// assert_eq!(timer.interval(), ms(250));
    /// timer.cancel()?;
    /// assert_eq!(timer.interval(), Duration::ZERO);
    /// # Ok(()) }
    /// ```
    pub fn interval(&self) -> Duration {
        self.driver
            .timer_state(self.id)
            .map_or(Duration::ZERO, |s| s.interval.map_or(self.interval, Duration::from_nanos))
    }

    /// Whether a run is scheduled.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// let timer = sched.timer(ms(10)).on_expire(|_| {}).arm()?;
    /// assert!(timer.is_armed());
    /// sched.sleep(ms(10)).await;
    /// assert!(!timer.is_armed(), "a one-shot that has run waits to be armed again");
    /// timer.arm(ms(10))?;
    /// assert!(timer.is_armed());
    /// # Ok(()) }
    /// ```
    pub fn is_armed(&self) -> bool {
        self.driver.timer_state(self.id).is_ok_and(|s| s.deadline.is_some())
    }

    /// Whether the timer is gone (cancelled, or the scheduler shut down). A one-shot that has run is
    /// not: it is idle, and can be armed again.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// let timer = sched.timer(ms(10)).on_expire(|_| {}).arm()?;
    /// sched.sleep(ms(10)).await;
    /// assert!(!timer.is_cancelled(), "it has run, and is idle");
    /// sched.shutdown().await;
    /// assert!(timer.is_cancelled());
    /// # Ok(()) }
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.driver.timer_state(self.id).is_err()
    }

    /// Runs so far; 0 once the timer is gone (cancelled, or the scheduler shut down).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// let timer = sched.timer(ms(100)).recurring().on_expire(|_| {}).arm()?;
    /// sched.sleep(ms(250)).await;
    /// assert_eq!(timer.count(), 2);
    /// timer.cancel()?;
    /// assert_eq!(timer.count(), 0);
    /// # Ok(()) }
    /// ```
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
