//! [`Ticker`]: Ratchet's `timerfd`, a timer you ask "how many ticks passed since I last looked?"
//!
//! Two engines behind one type: [`Scheduler::ticker`] counts on chime's own clock (tokio's, so paused
//! tests are exact; monotonic only), and [`Ticker::new`] uses a kernel `timerfd` on Linux, on the
//! monotonic, realtime or boottime clock. Elsewhere `Ticker::new(Clock::Monotonic)` falls back to
//! the wheel (on a scheduler of its own) and the other clocks are an error.

#[cfg(target_os = "linux")]
mod kernel;
mod times;
mod wheel;

use times::{Arming, Start};

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::clock::Clock;
use crate::error::Error;
use crate::record::Missed;
use crate::scheduler::Scheduler;

/// The previous `(remaining, interval)` of a ticker, as `settime` returns it.
pub type TickerTimes = (Option<Duration>, Option<Duration>);

/// A timer with `timerfd` semantics: arm it with [`settime`](Self::settime), and
/// [`read`](Self::read) returns how many expirations passed since the last read (waiting for one
/// when there are none), so a slow reader learns how much it missed instead of losing it (tokio's
/// `Interval` drops missed ticks silently).
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// use std::time::Duration;
/// let sched = chime::Scheduler::start();
/// let mut ticker = sched.ticker();
/// assert_eq!(ticker.gettime(), (None, None));
/// ticker.settime(Some(Duration::from_millis(100)), Some(Duration::from_millis(100)))?;
/// tokio::time::sleep(Duration::from_millis(1250)).await;   // a long job
/// assert_eq!(ticker.read().await?, 12);                     // 12 ticks passed meanwhile
/// assert_eq!(ticker.read().await?, 1);                      // waits 50 ms for the next
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Ticker {
    engine: Engine,
}

#[derive(Debug)]
enum Engine {
    Wheel(wheel::WheelTicker),
    #[cfg(target_os = "linux")]
    Kernel(kernel::KernelTicker),
}

impl Scheduler {
    /// A disarmed monotonic ticker on this scheduler's wheel, following tokio's clock.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let ticker = sched.ticker();
    /// assert!(!ticker.is_kernel());
    /// # }
    /// ```
    pub fn ticker(&self) -> Ticker {
        Ticker { engine: Engine::Wheel(wheel::WheelTicker::new(self.clone())) }
    }
}

impl Ticker {
    /// A disarmed ticker on `clock`: a kernel `timerfd` on Linux; elsewhere the monotonic clock on
    /// chime's wheel.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the kernel refuses the timer (or outside a tokio runtime with I/O enabled);
    /// [`Error::InvalidOption`] (`clock`) for a clock the platform lacks.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let ticker = chime::Ticker::new(chime::Clock::Realtime)?;
    /// assert_eq!(ticker.clock(), chime::Clock::Realtime);
    /// # Ok(()) }
    /// ```
    pub fn new(clock: Clock) -> Result<Ticker, Error> {
        #[cfg(target_os = "linux")]
        {
            Ok(Ticker { engine: Engine::Kernel(kernel::KernelTicker::new(clock)?) })
        }
        #[cfg(not(target_os = "linux"))]
        {
            if clock != Clock::Monotonic {
                return Err(Error::invalid("clock", "realtime and boottime tickers need Linux's timerfd"));
            }
            let sched = crate::scheduler::SchedulerBuilder::default().shards(1).try_start()?;
            Ok(sched.ticker())
        }
    }

    /// The clock the ticker follows.
    pub fn clock(&self) -> Clock {
        match &self.engine {
            Engine::Wheel(_) => Clock::Monotonic,
            #[cfg(target_os = "linux")]
            Engine::Kernel(k) => k.clock(),
        }
    }

    /// Whether a kernel `timerfd` backs the ticker.
    pub fn is_kernel(&self) -> bool {
        !matches!(self.engine, Engine::Wheel(_))
    }

    /// What [`read`](Self::read) does with a backlog, on a wheel ticker: [`Missed::Skip`] (default,
    /// `timerfd`'s way) returns every expiration at once; [`Missed::Burst`] returns them one per
    /// read, without waiting, until caught up; [`Missed::Delay`] returns them all and moves the next
    /// expiration to one interval after the read. Whatever the policy, the counts add up to the
    /// expirations that happened.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] (`missed`) for a policy other than `Skip` on a kernel ticker, which
    /// counts like `timerfd` does.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// let mut ticker = sched.ticker();
    /// ticker.set_missed(chime::Missed::Burst)?;
    /// # Ok(()) }
    /// ```
    pub fn set_missed(&mut self, missed: Missed) -> Result<(), Error> {
        match &mut self.engine {
            Engine::Wheel(w) => {
                w.set_missed(missed);
                Ok(())
            }
            #[cfg(target_os = "linux")]
            Engine::Kernel(_) if missed == Missed::Skip => Ok(()),
            #[cfg(target_os = "linux")]
            Engine::Kernel(_) => {
                Err(Error::invalid("missed", "a kernel timerfd counts every expiration (only Missed::Skip)"))
            }
        }
    }

    /// Arms the ticker: first expiration `initial` from now, then every `interval` (`None` or zero: a
    /// one-shot). `None` or zero `initial` disarms. Resets the count. Returns the previous
    /// `(remaining, interval)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] (`initial`, `interval`) for a duration the clock cannot hold;
    /// [`Error::Io`] if the kernel refuses.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// use std::time::Duration;
    /// let sched = chime::Scheduler::start();
    /// let mut ticker = sched.ticker();
    /// ticker.settime(Some(Duration::from_secs(30)), Some(Duration::from_secs(30)))?;
    /// let old = ticker.settime(None, None)?;   // disarm
    /// assert_eq!(old, (Some(Duration::from_secs(30)), Some(Duration::from_secs(30))));
    /// # Ok(()) }
    /// ```
    pub fn settime(
        &mut self,
        initial: Option<Duration>,
        interval: Option<Duration>,
    ) -> Result<TickerTimes, Error> {
        self.arm(Arming::after(initial, interval))
    }

    /// Arms the ticker at an absolute `deadline` of the monotonic clock (tokio's `Instant`), then every
    /// `interval`. A deadline in the past expires at once. Resets the count.
    ///
    /// # Errors
    ///
    /// As [`settime`](Self::settime).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// use std::time::Duration;
    /// let sched = chime::Scheduler::start();
    /// let mut ticker = sched.ticker();
    /// ticker.settime_at(tokio::time::Instant::now() + Duration::from_secs(2), None)?;
    /// assert_eq!(ticker.read().await?, 1);
    /// # Ok(()) }
    /// ```
    pub fn settime_at(
        &mut self,
        deadline: Instant,
        interval: Option<Duration>,
    ) -> Result<TickerTimes, Error> {
        self.arm(Arming::at(Start::At(deadline), interval))
    }

    /// Arms a realtime ticker at a wall-clock `deadline`, then every `interval`. If the wall clock is
    /// set meanwhile, [`read`](Self::read) returns [`Error::ClockChanged`] (`TFD_TIMER_CANCEL_ON_SET`);
    /// arm it again to go on.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] (`deadline`) on a ticker whose clock is not [`Clock::Realtime`], or
    /// for a deadline before 1970; [`Error::Io`] if the kernel refuses.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use std::time::{Duration, SystemTime};
    /// let mut ticker = chime::Ticker::new(chime::Clock::Realtime)?;
    /// ticker.settime_at_system(SystemTime::now() + Duration::from_secs(60), None)?;
    /// # Ok(()) }
    /// ```
    pub fn settime_at_system(
        &mut self,
        deadline: SystemTime,
        interval: Option<Duration>,
    ) -> Result<TickerTimes, Error> {
        self.arm(Arming::at(Start::AtSystem(deadline), interval))
    }

    /// `(remaining, interval)`: time to the next expiration (`None` when disarmed) and the interval
    /// (`None` for a one-shot).
    pub fn gettime(&self) -> TickerTimes {
        match &self.engine {
            Engine::Wheel(w) => w.gettime(),
            #[cfg(target_os = "linux")]
            Engine::Kernel(k) => k.gettime(),
        }
        .tuple()
    }

    /// Arms (or disarms) either engine; returns the previous times.
    fn arm(&mut self, arming: Arming) -> Result<TickerTimes, Error> {
        let old = match &mut self.engine {
            Engine::Wheel(w) => w.arm(arming)?,
            #[cfg(target_os = "linux")]
            Engine::Kernel(k) => k.arm(arming)?,
        };
        Ok(old.tuple())
    }

    /// The expirations since the last read, resetting the count; waits for the next expiration when
    /// there are none.
    ///
    /// # Errors
    ///
    /// [`Error::NotArmed`] with nothing counted and nothing armed (it would wait forever);
    /// [`Error::ClockChanged`] after a wall-clock change under [`settime_at_system`](Self::settime_at_system);
    /// [`Error::Shutdown`] if a wheel ticker's scheduler shuts down while it waits; [`Error::Io`].
    pub async fn read(&mut self) -> Result<u64, Error> {
        std::future::poll_fn(|cx| self.poll_read(cx)).await
    }

    /// [`read`](Self::read) without waiting: 0 when nothing has expired.
    ///
    /// # Errors
    ///
    /// [`Error::ClockChanged`] and [`Error::Io`] as [`read`](Self::read).
    pub fn try_read(&mut self) -> Result<u64, Error> {
        match &mut self.engine {
            Engine::Wheel(w) => Ok(w.try_read()),
            #[cfg(target_os = "linux")]
            Engine::Kernel(k) => k.try_read(),
        }
    }

    /// The polling form of [`read`](Self::read), for hand-written futures.
    pub fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<u64, Error>> {
        match &mut self.engine {
            Engine::Wheel(w) => w.poll_read(cx),
            #[cfg(target_os = "linux")]
            Engine::Kernel(k) => k.poll_read(cx),
        }
    }

    #[cfg(all(test, target_os = "linux"))]
    fn kernel(&mut self) -> &mut kernel::KernelTicker {
        match &mut self.engine {
            Engine::Kernel(k) => k,
            Engine::Wheel(_) => panic!("not a kernel ticker"),
        }
    }
}

/// The counts, one per [`read`](Ticker::read); the stream ends when the ticker is disarmed with
/// nothing left to count, and yields the error otherwise.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// use futures_core::Stream;
/// let sched = chime::Scheduler::start();
/// let mut ticker = sched.ticker();
/// ticker.settime(Some(std::time::Duration::from_millis(10)), None)?;
/// let mut ticker = std::pin::pin!(ticker);
/// let first = std::future::poll_fn(|cx| ticker.as_mut().poll_next(cx)).await;
/// assert_eq!(first, Some(Ok(1)));
/// let end = std::future::poll_fn(|cx| ticker.as_mut().poll_next(cx)).await;
/// assert_eq!(end, None, "a spent one-shot ends the stream");
/// # Ok(()) }
/// ```
impl futures_core::Stream for Ticker {
    type Item = Result<u64, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut().poll_read(cx) {
            Poll::Ready(Err(Error::NotArmed)) => Poll::Ready(None),
            other => other.map(Some),
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use rustix::io::Errno;

    /// A wall-clock change cannot be made in a test without changing the machine's clock, so it is
    /// injected where the kernel reports it: `read` failing with `ECANCELED`.
    #[tokio::test]
    async fn a_clock_change_is_a_typed_error_and_the_ticker_works_once_rearmed() {
        let mut ticker = Ticker::new(Clock::Realtime).unwrap();
        ticker.settime_at_system(SystemTime::now() + Duration::from_secs(3600), None).unwrap();
        ticker.kernel().inject_read_error(Errno::CANCELED);
        assert_eq!(ticker.read().await, Err(Error::ClockChanged));
        ticker.settime(Some(Duration::from_millis(5)), None).unwrap();
        assert_eq!(ticker.read().await, Ok(1));
        assert_eq!(ticker.read().await, Err(Error::NotArmed));
    }

    #[tokio::test]
    async fn other_read_errors_are_io_errors() {
        let mut ticker = Ticker::new(Clock::Monotonic).unwrap();
        ticker.kernel().inject_read_error(Errno::BADF);
        assert!(matches!(ticker.try_read(), Err(Error::Io { op: "read(timerfd)", .. })));
    }
}
