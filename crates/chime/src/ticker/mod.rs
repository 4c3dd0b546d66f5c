//! [`Ticker`]: Ratchet's `timerfd`, a timer you ask "how many ticks passed since I last looked?"
//!
//! Two engines behind one type: [`Scheduler::ticker`] counts on chime's own clock (tokio's, so paused
//! tests are exact; monotonic only), and [`Ticker::new`] uses a kernel `timerfd` on Linux, on the
//! monotonic, realtime or boottime clock. Elsewhere `Ticker::new(Clock::Monotonic)` falls back to
//! the wheel (on a scheduler of its own) and the other clocks are an error.

#[cfg(target_os = "linux")]
mod kernel;
mod read;
mod times;
mod wheel;

use times::{Arming, Start};

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::clock::Clock;
use crate::error::Error;
use crate::record::Missed;
use crate::scheduler::Scheduler;

/// The previous `(remaining, interval)` of a ticker, as `settime` returns it.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
/// # use std::time::Duration;
/// # let secs = Duration::from_secs;
/// let sched = chime::Scheduler::start();
/// let mut ticker = sched.ticker();
/// let before: chime::TickerTimes = ticker.settime(Some(secs(5)), Some(secs(1)))?;
/// assert_eq!(before, (None, None));
/// assert_eq!(ticker.gettime(), (Some(secs(5)), Some(secs(1))));
/// # Ok(()) }
/// ```
pub type TickerTimes = (Option<Duration>, Option<Duration>);

/// A timer with `timerfd` semantics: arm it with [`settime`](Self::settime), and
/// [`read`](Self::read) returns how many expirations passed since the last read (waiting for one
/// when there are none), so a slow reader learns how much it missed instead of losing it (tokio's
/// `Interval` drops missed ticks silently).
///
/// # Examples
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
    /// A disarmed monotonic ticker on this scheduler's wheel, following tokio's clock (so paused-clock
    /// tests are exact).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let sched = chime::Scheduler::start();
    /// let ticker = sched.ticker();
    /// assert_eq!(ticker.gettime(), (None, None), "disarmed");
    /// assert!(!ticker.is_kernel());
    /// # }
    /// ```
    ///
    /// Ratchet's `ratchet.timerfd.new()`, whose default clock is the monotonic one.
    pub fn ticker(&self) -> Ticker {
        Ticker { engine: Engine::Wheel(wheel::WheelTicker::new(self.clone())) }
    }
}

impl Ticker {
    /// A disarmed ticker on `clock`: a kernel `timerfd` on Linux; elsewhere the monotonic clock on
    /// chime's wheel (a scheduler of its own).
    ///
    /// # Errors
    ///
    /// [`Error::NoRuntime`] outside a tokio runtime; [`Error::Io`] when the kernel refuses the timer
    /// (an old kernel without the clock, no descriptors left) or the runtime was built without I/O
    /// (tokio's `enable_io`: the `timerfd` is registered with the runtime's reactor). Elsewhere than
    /// Linux, [`Error::InvalidOption`] (`clock`) for a clock other than the monotonic one.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::{Clock, Ticker};
    /// let ticker = Ticker::new(Clock::Realtime)?;
    /// assert_eq!(ticker.clock(), Clock::Realtime);
    /// assert_eq!(ticker.gettime(), (None, None), "disarmed");
    /// # Ok(()) }
    /// ```
    ///
    /// Ratchet's `ratchet.timerfd.new("realtime")` (or `"monotonic"`, its default).
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
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use chime::{Clock, Ticker};
    /// let sched = chime::Scheduler::start();
    /// assert_eq!(sched.ticker().clock(), Clock::Monotonic);
    /// assert_eq!(Ticker::new(Clock::Boottime)?.clock(), Clock::Boottime);
    /// # Ok(()) }
    /// ```
    pub fn clock(&self) -> Clock {
        match &self.engine {
            Engine::Wheel(_) => Clock::Monotonic,
            #[cfg(target_os = "linux")]
            Engine::Kernel(k) => k.clock(),
        }
    }

    /// Whether a kernel `timerfd` backs the ticker.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// let sched = chime::Scheduler::start();
    /// assert!(!sched.ticker().is_kernel());
    /// assert!(chime::Ticker::new(chime::Clock::Monotonic)?.is_kernel(), "on Linux");
    /// # Ok(()) }
    /// ```
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
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let ms = Duration::from_millis;
    /// let sched = chime::Scheduler::start();
    /// use chime::{Clock, Missed, Ticker};
    /// let mut ticker = sched.ticker();
    /// ticker.set_missed(Missed::Burst)?;
    /// ticker.settime(Some(ms(100)), Some(ms(100)))?;
    /// sched.sleep(ms(350)).await;   // three expirations pass
    /// assert_eq!(ticker.try_read()?, 1);
    /// assert_eq!(ticker.try_read()?, 1);
    /// assert_eq!(ticker.try_read()?, 1);
    /// assert_eq!(ticker.try_read()?, 0, "caught up");
    /// assert!(Ticker::new(Clock::Monotonic)?.set_missed(Missed::Burst).is_err(), "a timerfd counts");
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
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let secs = Duration::from_secs;
    /// let sched = chime::Scheduler::start();
    /// let mut ticker = sched.ticker();
    /// ticker.settime(Some(secs(30)), Some(secs(30)))?;
    /// let old = ticker.settime(None, None)?;   // disarm
    /// assert_eq!(old, (Some(secs(30)), Some(secs(30))));
    /// assert_eq!(ticker.gettime(), (None, None));
    /// # Ok(()) }
    /// ```
    ///
    /// Ratchet's `tfd:settime(30.0, 30.0)`; `tfd:settime()` (no arguments, or zero) disarms.
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
    /// [`Error::InvalidOption`] (`deadline`, `interval`) for a time the clock cannot hold;
    /// [`Error::Io`] if the kernel refuses.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let secs = Duration::from_secs;
    /// let sched = chime::Scheduler::start();
    /// let mut ticker = sched.ticker();
    /// let start = tokio::time::Instant::now();
    /// ticker.settime_at(start + secs(2), None)?;
    /// assert_eq!(ticker.read().await?, 1);
    /// assert_eq!(start.elapsed(), secs(2));
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
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), chime::Error> {
    /// use std::time::{Duration, SystemTime};
    /// let mut ticker = chime::Ticker::new(chime::Clock::Realtime)?;
    /// ticker.settime_at_system(SystemTime::now() + Duration::from_secs(60), None)?;
    /// let (remaining, interval) = ticker.gettime();
    /// assert!(remaining.unwrap() > Duration::from_secs(50) && interval.is_none());
    /// let sched = chime::Scheduler::start();
    /// let refused = sched.ticker().settime_at_system(SystemTime::now(), None);
    /// assert!(matches!(refused, Err(chime::Error::InvalidOption(o)) if o.option() == "deadline"));
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
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), chime::Error> {
    /// # use std::time::Duration;
    /// # let secs = Duration::from_secs;
    /// let sched = chime::Scheduler::start();
    /// let mut ticker = sched.ticker();
    /// ticker.settime(Some(secs(30)), Some(secs(30)))?;
    /// sched.sleep(secs(10)).await;
    /// assert_eq!(ticker.gettime(), (Some(secs(20)), Some(secs(30))));
    /// # Ok(()) }
    /// ```
    ///
    /// Ratchet's `tfd:gettime()`.
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

    #[cfg(all(test, target_os = "linux"))]
    fn kernel(&mut self) -> &mut kernel::KernelTicker {
        match &mut self.engine {
            Engine::Kernel(k) => k,
            Engine::Wheel(_) => panic!("not a kernel ticker"),
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
