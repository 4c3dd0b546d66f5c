//! The ticker on chime's own clock: expirations are counted by arithmetic on a grid, so nothing is
//! armed in the wheel until a reader waits, and paused-time tests are exact.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::times::{Arming, Start, Times};
use crate::clock::nanos;
use crate::error::Error;
use crate::record::Missed;
use crate::scheduler::Scheduler;
use crate::sleep::Sleep;

/// A monotonic ticker driven by a [`Scheduler`].
#[derive(Debug)]
pub(crate) struct WheelTicker {
    sched: Scheduler,
    /// The next expiration not yet counted (wheel nanoseconds); `None` when disarmed or spent.
    next: Option<u64>,
    /// Nanoseconds between expirations; `None` for a one-shot.
    interval: Option<u64>,
    /// Expirations counted and not yet read.
    pending: u64,
    missed: Missed,
    sleep: Option<Sleep>,
}

impl WheelTicker {
    pub(crate) fn new(sched: Scheduler) -> Self {
        WheelTicker { sched, next: None, interval: None, pending: 0, missed: Missed::Skip, sleep: None }
    }

    pub(crate) fn set_missed(&mut self, missed: Missed) {
        self.missed = missed;
    }

    fn now(&self) -> u64 {
        self.sched.driver().time.now()
    }

    /// Counts the expirations that have passed by `now`.
    fn collect(&mut self, now: u64) {
        let Some(next) = self.next.filter(|&n| n <= now) else { return };
        match self.interval {
            Some(interval) => {
                let passed = (now - next) / interval + 1;
                self.pending = self.pending.saturating_add(passed);
                self.next = next.checked_add(passed.saturating_mul(interval));
            }
            None => {
                self.pending = self.pending.saturating_add(1);
                self.next = None;
            }
        }
    }

    pub(crate) fn gettime(&self) -> Times {
        let now = self.now();
        let remaining = self.next.and_then(|next| match (next <= now, self.interval) {
            (false, _) => Some(next - now),
            (true, Some(i)) => Some(i - (now - next) % i),
            (true, None) => None,
        });
        Times {
            remaining: remaining.map(Duration::from_nanos),
            interval: self.interval.map(Duration::from_nanos),
        }
    }

    /// Arms (or disarms) the ticker; resets the count; returns the previous times.
    pub(crate) fn arm(&mut self, arming: Arming) -> Result<Times, Error> {
        let first = match arming.start {
            Start::Disarm => None,
            Start::After(initial) => Some(
                nanos(initial)
                    .and_then(|i| self.now().checked_add(i))
                    .ok_or_else(|| Error::out_of_range("initial"))?,
            ),
            // A deadline at or before the start of the scheduler's clock is simply due.
            Start::At(deadline) => Some(self.sched.driver().time.to_nanos(deadline).max(1)),
            Start::AtSystem(_) => {
                return Err(Error::invalid(
                    "deadline",
                    "a SystemTime deadline needs a Clock::Realtime ticker",
                ));
            }
        };
        let interval =
            arming.interval.map(|i| nanos(i).ok_or_else(|| Error::out_of_range("interval"))).transpose()?;
        let old = self.gettime();
        self.next = first;
        self.interval = interval;
        self.pending = 0;
        self.sleep = None;
        Ok(old)
    }

    pub(crate) fn try_read(&mut self) -> u64 {
        let now = self.now();
        self.collect(now);
        self.take(now)
    }

    /// Hands out what is pending, under the ticker's policy.
    fn take(&mut self, now: u64) -> u64 {
        match self.missed {
            Missed::Burst => {
                let one = self.pending.min(1);
                self.pending -= one;
                one
            }
            Missed::Skip => std::mem::take(&mut self.pending),
            Missed::Delay => {
                let all = std::mem::take(&mut self.pending);
                if all > 0
                    && let (Some(interval), Some(_)) = (self.interval, self.next)
                {
                    self.next = now.checked_add(interval);
                }
                all
            }
        }
    }

    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<u64, Error>> {
        loop {
            let now = self.now();
            self.collect(now);
            let count = self.take(now);
            if count > 0 {
                self.sleep = None;
                return Poll::Ready(Ok(count));
            }
            let Some(next) = self.next else {
                return Poll::Ready(Err(Error::NotArmed));
            };
            let at = self.sched.driver().time.to_instant(next);
            match self.sleep.as_mut() {
                Some(sleep) if sleep.deadline() == Some(at) => {}
                Some(sleep) => sleep.reset(at),
                None => self.sleep = Some(self.sched.sleep_until(at)),
            }
            let sleep = self.sleep.as_mut().expect("just set");
            if Pin::new(sleep).poll(cx).is_pending() {
                return Poll::Pending;
            }
            if self.sched.is_shut_down() && self.sched.driver().time.now() < next {
                return Poll::Ready(Err(Error::Shutdown));
            }
        }
    }
}
