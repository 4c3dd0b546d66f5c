//! Time: the scheduler's time base (tokio's clock, so paused-time tests are exact) and the clocks a
//! [`Ticker`](crate::Ticker) can follow.

use std::time::Duration;
use tokio::time::Instant;

/// The clock a kernel-backed ticker follows (`timerfd`'s clock ids).
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

/// Maps tokio instants to the wheel's `u64` nanoseconds since the scheduler started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimeBase {
    epoch: Instant,
    wall: WallClock,
    /// Wall-clock milliseconds at `epoch`.
    wall_epoch_ms: i64,
}

/// Milliseconds since the Unix epoch on the system clock.
pub(crate) fn system_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

impl TimeBase {
    pub(crate) fn new(wall: WallClock) -> Self {
        TimeBase { epoch: Instant::now(), wall, wall_epoch_ms: system_ms() / 60_000 * 60_000 }
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

    /// Nanoseconds since the epoch now (tokio's clock: paused time is followed).
    pub(crate) fn now(self) -> u64 {
        self.to_nanos(Instant::now())
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

/// `duration` in nanoseconds, or `None` when it does not fit the wheel's 584-year range.
pub(crate) fn nanos(duration: Duration) -> Option<u64> {
    duration.as_secs().checked_mul(1_000_000_000)?.checked_add(u64::from(duration.subsec_nanos()))
}
