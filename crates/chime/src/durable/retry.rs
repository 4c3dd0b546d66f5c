//! What happens after a handler returns `Err`: the [`RetryPolicy`].

use std::time::Duration;

use crate::Error;

/// How many times a durable timer's handler is tried, and how long to wait between tries.
///
/// The wait after attempt `n` (1-based) is `initial * factor^(n-1)`, at most `max`. After the last
/// attempt fails, the timer is marked [`Failed`](super::State::Failed), kept in the store, and
/// reported. A run whose scheduler died counts as an attempt too.
///
/// The default: 5 attempts, waits of 1 s, 2 s, 4 s, 8 s (doubling, at most 10 min).
///
/// ```
/// use std::time::Duration;
/// use chime::durable::RetryPolicy;
///
/// let policy = RetryPolicy::exponential(Duration::from_millis(100), Duration::from_secs(1)).max_attempts(6);
/// let waits: Vec<_> = (1..6).map(|n| policy.delay(n).unwrap()).collect();
/// assert_eq!(waits, [100, 200, 400, 800, 1000].map(Duration::from_millis));
/// assert_eq!(policy.delay(6), None, "the sixth attempt was the last");
/// assert_eq!(RetryPolicy::none().delay(1), None);
/// assert_eq!(RetryPolicy::fixed(Duration::from_secs(5)).max_attempts(3).delay(2), Some(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial: Duration,
    factor: u32,
    max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::exponential(Duration::from_secs(1), Duration::from_secs(600))
    }
}

impl RetryPolicy {
    /// Waits doubling from `initial`, at most `max`; 5 attempts (change with
    /// [`max_attempts`](Self::max_attempts)).
    ///
    /// ```
    /// let p = chime::durable::RetryPolicy::exponential(std::time::Duration::from_secs(1), std::time::Duration::from_secs(3));
    /// assert_eq!(p.delay(3), Some(std::time::Duration::from_secs(3)));
    /// ```
    pub fn exponential(initial: Duration, max: Duration) -> RetryPolicy {
        RetryPolicy { max_attempts: 5, initial, factor: 2, max: max.max(initial) }
    }

    /// The same wait `delay` between attempts; 5 attempts.
    ///
    /// ```
    /// let p = chime::durable::RetryPolicy::fixed(std::time::Duration::from_secs(2));
    /// assert_eq!(p.delay(4), Some(std::time::Duration::from_secs(2)));
    /// ```
    pub fn fixed(delay: Duration) -> RetryPolicy {
        RetryPolicy { max_attempts: 5, initial: delay, factor: 1, max: delay }
    }

    /// One attempt: a failure marks the timer failed at once.
    ///
    /// ```
    /// assert_eq!(chime::durable::RetryPolicy::none().attempts(), 1);
    /// ```
    pub fn none() -> RetryPolicy {
        RetryPolicy { max_attempts: 1, ..RetryPolicy::default() }
    }

    /// Attempts in all, the first included (at least 1; checked when the scheduler starts).
    ///
    /// ```
    /// assert_eq!(chime::durable::RetryPolicy::default().max_attempts(9).attempts(), 9);
    /// ```
    pub fn max_attempts(mut self, attempts: u32) -> RetryPolicy {
        self.max_attempts = attempts;
        self
    }

    /// Attempts in all.
    ///
    /// ```
    /// assert_eq!(chime::durable::RetryPolicy::default().attempts(), 5);
    /// ```
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait after attempt `attempt` (1-based) failed, or `None` when it was the last.
    ///
    /// ```
    /// let p = chime::durable::RetryPolicy::default();
    /// assert_eq!(p.delay(1), Some(std::time::Duration::from_secs(1)));
    /// assert_eq!(p.delay(5), None);
    /// ```
    pub fn delay(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let mut wait = self.initial;
        for _ in 1..attempt {
            wait = wait.saturating_mul(self.factor);
            if wait >= self.max {
                return Some(self.max);
            }
        }
        Some(wait.min(self.max))
    }

    /// Refuses a policy that cannot work: no attempts, or waits past chime's range.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.max_attempts == 0 {
            return Err(Error::invalid("retry", "max_attempts must be at least 1"));
        }
        if crate::clock::nanos(self.max).is_none() {
            return Err(Error::invalid("retry", "the longest wait exceeds chime's range of 584 years"));
        }
        Ok(())
    }
}
