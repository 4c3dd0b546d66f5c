//! What a ticker is told ([`Arming`]) and what it reports ([`Times`]), normalised here once for
//! both engines, as `timerfd` has them: a zero or absent initial value disarms, a zero or absent
//! interval is a one-shot, and a disarmed ticker has no interval.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::TickerTimes;

/// When a ticker's first expiration comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Disarmed: no expiration.
    Disarm,
    /// This long from now (never zero).
    After(Duration),
    /// At this instant of the monotonic clock.
    At(Instant),
    /// At this wall-clock time; a realtime ticker then notices clock changes.
    AtSystem(SystemTime),
}

/// A ticker's arming, normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arming {
    pub(crate) start: Start,
    /// `None`: a one-shot (never zero).
    pub(crate) interval: Option<Duration>,
}

impl Arming {
    /// `settime(initial, interval)`: a zero or absent `initial` disarms.
    pub(crate) fn after(initial: Option<Duration>, interval: Option<Duration>) -> Self {
        Arming::new(initial.filter(|d| !d.is_zero()).map_or(Start::Disarm, Start::After), interval)
    }

    /// An absolute first expiration (`settime_at`, `settime_at_system`).
    pub(crate) fn at(start: Start, interval: Option<Duration>) -> Self {
        Arming::new(start, interval)
    }

    fn new(start: Start, interval: Option<Duration>) -> Self {
        let interval = interval.filter(|d| !d.is_zero() && start != Start::Disarm);
        Arming { start, interval }
    }
}

/// A ticker's times: to the next expiration (`None`: disarmed) and between expirations (`None`: a
/// one-shot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Times {
    pub(crate) remaining: Option<Duration>,
    pub(crate) interval: Option<Duration>,
}

impl Times {
    /// The times as the public API returns them, `(remaining, interval)`.
    pub(crate) fn tuple(self) -> TickerTimes {
        (self.remaining, self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_disarms_and_a_zero_interval_is_a_one_shot() {
        let s = Duration::from_secs(1);
        assert_eq!(Arming::after(None, Some(s)), Arming { start: Start::Disarm, interval: None });
        assert_eq!(Arming::after(Some(Duration::ZERO), Some(s)).start, Start::Disarm);
        assert_eq!(
            Arming::after(Some(s), Some(Duration::ZERO)),
            Arming { start: Start::After(s), interval: None }
        );
        assert_eq!(Arming::after(Some(s), Some(s)).interval, Some(s));
    }
}
