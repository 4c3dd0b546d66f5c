//! Time: the scheduler's time base (tokio's clock, so paused-time tests are exact; the CPU's counter
//! for arming, when tokio's clock is not paused), and the clocks a [`Ticker`](crate::Ticker) can
//! follow.

mod counter;

use std::time::Duration;
use tokio::time::Instant;

/// The clock a kernel-backed ticker follows (`timerfd`'s clock ids).
///
/// # Examples
///
/// ```
/// use chime::Clock;
/// assert_ne!(Clock::Monotonic, Clock::Realtime);
/// assert_eq!(Clock::default(), Clock::Monotonic);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Clock {
    /// Steady time since boot, not counting suspend; never jumps. The scheduler's own clock.
    #[default]
    Monotonic,
    /// Wall-clock time: jumps when the system time is set.
    Realtime,
    /// Like `Monotonic`, but keeps counting while the system is suspended.
    Boottime,
}

/// Where a scheduler reads wall-clock time (cluster timers number their ticks on it).
///
/// # Examples
///
/// ```
/// assert_eq!(chime::WallClock::default(), chime::WallClock::System);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WallClock {
    /// The system's realtime clock (`SystemTime::now()`), which all hosts keep in step (NTP).
    #[default]
    System,
    /// The system clock read once at start (rounded down to a whole minute, so schedulers started
    /// together agree to the millisecond), then advanced by tokio's clock: under tokio's paused clock
    /// (tests), wall time moves exactly as the test advances it.
    FollowTokio,
    /// The system clock plus this many milliseconds (negative: behind): a test hook that plays a host
    /// whose clock is off, e.g. to check that cluster and durable timers keep their promises when
    /// members' clocks disagree.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ahead = chime::Scheduler::builder().wall_clock(chime::WallClock::Skewed(300)).start();
    /// # drop(ahead); }
    /// ```
    Skewed(i64),
}

/// How a scheduler reads "now" when it arms a timer.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use chime::TimeSource;
/// assert_eq!(TimeSource::default(), TimeSource::Auto);
/// // A scheduler that follows tokio's clock even if the test pauses it after the start:
/// let sched = chime::Scheduler::builder().time_source(TimeSource::Tokio).start();
/// # drop(sched); }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimeSource {
    /// The CPU's time-stamp counter, anchored to the monotonic clock (a few nanoseconds instead of a
    /// `clock_gettime`; deadlines may be up to 2 µs late, never early), unless tokio's clock is
    /// paused when the scheduler starts (`#[tokio::test(start_paused = true)]`, or
    /// `tokio::time::pause()` before `Scheduler::start`): then tokio's clock, so paused tests stay
    /// exact. Machines without an invariant counter read the monotonic clock. In real time a
    /// driver with a millisecond or more to sleep sleeps on an alarm thread of its own, so such
    /// timers run tens of microseconds after their deadlines rather than on tokio's millisecond
    /// steps.
    #[default]
    Auto,
    /// Always tokio's clock: for a runtime whose clock is paused after the scheduler starts. The
    /// driver sleeps on tokio's timer, so in real time a timer runs up to a millisecond late.
    Tokio,
}

/// Maps tokio instants to the wheel's `u64` nanoseconds since the scheduler started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimeBase {
    epoch: Instant,
    wall: WallClock,
    /// Wall-clock milliseconds at `epoch`.
    wall_epoch_ms: i64,
    /// Arming reads the CPU's counter (tokio's clock was not paused at the start).
    counter: bool,
    /// `epoch` in the counter's nanoseconds (since the process's origin).
    epoch_ns: u64,
}

/// Milliseconds since the Unix epoch on the system clock.
pub(crate) fn system_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

impl TimeBase {
    pub(crate) fn new(wall: WallClock, source: TimeSource) -> Self {
        // The counter's origin first: counted from an origin set after it, the epoch would come out
        // as the origin itself, and every timer armed early by the gap between the two.
        counter::origin();
        let epoch = Instant::now();
        let counter = source == TimeSource::Auto && !tokio_paused();
        if counter {
            counter::calibrate();
        }
        let epoch_ns = counter::since_origin(epoch.into_std());
        TimeBase { epoch, wall, wall_epoch_ms: system_ms() / 60_000 * 60_000, counter, epoch_ns }
    }

    /// Wall-clock milliseconds since the Unix epoch, as this scheduler reads them.
    pub(crate) fn wall_ms(self) -> i64 {
        match self.wall {
            WallClock::System => system_ms(),
            WallClock::Skewed(ms) => system_ms().saturating_add(ms),
            WallClock::FollowTokio => {
                let elapsed = i64::try_from(self.now() / 1_000_000).unwrap_or(i64::MAX);
                self.wall_epoch_ms.saturating_add(elapsed)
            }
        }
    }

    /// Whether the scheduler keeps real time ([`TimeSource::Auto`] with tokio's clock running at the
    /// start): then nothing can pause its clock, and the driver's sleeps need not follow tokio's timer
    /// (whose millisecond steps would make every timer up to 1 ms late).
    pub(crate) fn is_real(self) -> bool {
        self.counter
    }

    /// Nanoseconds since the epoch now (tokio's clock: paused time is followed).
    pub(crate) fn now(self) -> u64 {
        self.to_nanos(Instant::now())
    }

    /// "Now" for computing a deadline: never before the true time, and cheap. With the counter it
    /// may be up to its margin (2 µs) ahead, so timers run that much late at most, never early.
    pub(crate) fn arm_now(self) -> u64 {
        if self.counter
            && let Some(ns) = counter::read()
        {
            return ns.saturating_sub(self.epoch_ns) + counter::MARGIN_NS;
        }
        self.now()
    }

    pub(crate) fn to_nanos(self, instant: Instant) -> u64 {
        let since = instant.saturating_duration_since(self.epoch);
        // u64 arithmetic rather than `as_nanos()`'s u128: this is on every arm.
        since.as_secs().saturating_mul(1_000_000_000).saturating_add(u64::from(since.subsec_nanos()))
    }

    pub(crate) fn to_instant(self, nanos: u64) -> Instant {
        self.epoch + Duration::from_nanos(nanos)
    }
}

/// Whether tokio's clock is paused here: it stands still while real time passes.
fn tokio_paused() -> bool {
    let tokio = Instant::now();
    let real = std::time::Instant::now();
    while real.elapsed() < Duration::from_micros(2) {
        std::hint::spin_loop();
    }
    Instant::now() == tokio
}

/// `duration` in nanoseconds, or `None` when it does not fit the wheel's 584-year range.
pub(crate) fn nanos(duration: Duration) -> Option<u64> {
    duration.as_secs().checked_mul(1_000_000_000)?.checked_add(u64::from(duration.subsec_nanos()))
}
